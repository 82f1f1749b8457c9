"""LoRA fine-tuning of a causal LM (Phi-2 by default) on exported multiple-choice items.

A plain loop: ``loss.backward()`` every micro-batch, an optimizer step every ``grad_accum``
micro-batches, a scheduler step after it. Objectives: ``lm`` (the loss on the gold ending's
tokens only, given the query evaluate uses) or ``mc`` (softmax cross-entropy over the
choices' summed log-probs). After every epoch the validation items are scored with
``evaluate``'s scorer. ``OUT/checkpoint`` (adapter, optimizer, scheduler, step) is rewritten
atomically every ``save_every`` steps and at each epoch's end, so ``--resume`` continues from
the saved step with the same data order.
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from advfilter.errors import ConfigError, RunError
from advfilter.evaluate import Doc, Scorer, batches, summarize
from advfilter.hub import from_pretrained
from advfilter.lm import continuation_logprobs
from advfilter.seeds import derive_seed
from advfilter.store import atomic_dir, write_json, write_jsonl

log = logging.getLogger(__name__)
PHI2_TARGETS = ["q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"]
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "reduce_lr_on_plateau")


@dataclass
class FinetuneConfig:
    """Hyper-parameters of one fine-tuning run (saved in ``metrics.json``)."""

    model: str = "microsoft/phi-2"
    objective: str = "lm"  # lm | mc
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = tuple(PHI2_TARGETS)
    epochs: int = 1
    max_steps: int = 0  # optimizer steps; 0 = run all epochs
    lr: float = 2e-4
    scheduler: str = "linear"
    warmup_steps: int = 0
    batch_size: int = 4
    grad_accum: int = 4
    eval_batch_size: int = 16
    save_every: int = 50
    load_4bit: bool = False
    seed: int = 0


def load_for_training(cfg: FinetuneConfig):
    """The base model wrapped with a fresh LoRA adapter, and its tokenizer."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cuda = torch.cuda.is_available()
    kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if cuda else torch.float32}
    if cfg.load_4bit:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise ConfigError("--4bit needs bitsandbytes (pip install bitsandbytes)") from None
        if not cuda:
            raise ConfigError("--4bit needs a CUDA GPU; none is visible")
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                           bnb_4bit_compute_dtype=torch.bfloat16)
    tok = from_pretrained(AutoTokenizer, cfg.model)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    torch.manual_seed(cfg.seed)
    base = from_pretrained(AutoModelForCausalLM, cfg.model, **kwargs)
    model = get_peft_model(base, LoraConfig(task_type="CAUSAL_LM", r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                                            lora_dropout=cfg.lora_dropout,
                                            target_modules=list(cfg.target_modules)))
    if not cfg.load_4bit:  # 4-bit weights are placed by bitsandbytes itself
        model = model.to("cuda" if cuda else "cpu")
    return model, tok


def _choice_logprobs(scorer: Scorer, docs: list[Doc],
                     which: Callable[[Doc], list[int]]) -> tuple[list[torch.Tensor], int]:
    """Summed log-probs (with gradients) of the chosen choices of each doc, in one padded pass,
    and the number of continuation tokens they cover."""
    rows = [scorer.encode_pair(d.query, " " + d.choices[j]) for d in docs for j in which(d)]
    sums = continuation_logprobs(scorer.model, rows, scorer.pad)
    counts = [len(which(d)) for d in docs]
    return list(torch.split(sums, counts)), sum(len(cont) for _, cont in rows)


def loss_of(scorer: Scorer, docs: list[Doc], objective: str) -> torch.Tensor:
    """``lm``: mean negative log-prob per gold-ending token; ``mc``: cross-entropy over choices."""
    if objective == "lm":
        sums, tokens = _choice_logprobs(scorer, docs, lambda d: [d.gold])
        return -torch.stack([s[0] for s in sums]).sum() / max(tokens, 1)
    sums, _ = _choice_logprobs(scorer, docs, lambda d: list(range(len(d.choices))))
    gold = torch.tensor([d.gold for d in docs], device=sums[0].device)
    return torch.nn.functional.cross_entropy(torch.stack(sums), gold)


def make_scheduler(cfg: FinetuneConfig, opt: torch.optim.Optimizer, total_steps: int):
    if cfg.scheduler == "reduce_lr_on_plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=0)
    from transformers import get_scheduler

    return get_scheduler(cfg.scheduler, opt, num_warmup_steps=cfg.warmup_steps,
                         num_training_steps=max(total_steps, 1))


def evaluate_docs(scorer: Scorer, docs: list[Doc], batch_size: int) -> dict[str, Any]:
    scorer.model.eval()
    lls = [s for batch in batches(docs, batch_size) for s in scorer.loglikelihoods(batch)]
    scorer.model.train()
    return summarize(docs, lls)


def finetune(cfg: FinetuneConfig, train: list[Doc], valid: list[Doc], out: Path, resume: bool = False,
             on_log: Callable[[dict[str, Any]], None] = lambda _: None) -> dict[str, Any]:
    """Train a LoRA adapter; write ``OUT/adapter``, ``OUT/metrics.jsonl`` and ``OUT/metrics.json``."""
    from peft import get_peft_model_state_dict, set_peft_model_state_dict

    if cfg.objective not in ("lm", "mc") or cfg.scheduler not in SCHEDULERS:
        raise ConfigError(f"objective must be lm or mc and scheduler one of {', '.join(SCHEDULERS)}")
    out.mkdir(parents=True, exist_ok=True)
    model, tok = load_for_training(cfg)
    scorer = Scorer(model, tok)
    per_epoch = math.ceil(len(train) / (cfg.batch_size * cfg.grad_accum))
    total = cfg.max_steps or per_epoch * cfg.epochs
    epochs = math.ceil(total / per_epoch)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    sched = make_scheduler(cfg, opt, total)
    step, history = 0, []
    ckpt = out / "checkpoint"
    if resume:
        if not (ckpt / "state.pt").exists():
            raise RunError(f"{out}: no checkpoint to resume from")
        state = torch.load(ckpt / "state.pt", weights_only=False)
        set_peft_model_state_dict(model, state["adapter"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step, history = state["step"], state["history"]
        torch.set_rng_state(state["rng"])
    metrics_path = out / "metrics.jsonl"
    # the log restarts from what the checkpoint knew: rows written after it are redone
    write_jsonl(metrics_path, history)

    def record(row: dict[str, Any]) -> None:
        history.append(row)
        with open(metrics_path, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        on_log(row)

    def save() -> None:
        with atomic_dir(ckpt) as tmp:
            torch.save({"adapter": get_peft_model_state_dict(model), "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(), "step": step, "history": history,
                        "rng": torch.get_rng_state()}, tmp / "state.pt")

    model.train()
    start = time.perf_counter()
    for epoch in range(epochs):
        order = np.random.default_rng(derive_seed(cfg.seed, "finetune", epoch)).permutation(len(train))
        micro = [order[i:i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
        groups = [micro[i:i + cfg.grad_accum] for i in range(0, len(micro), cfg.grad_accum)]
        for g, group in enumerate(groups):
            if epoch * per_epoch + g < step:  # done before the checkpoint we resumed from
                continue
            if step >= total:
                break
            losses = []
            for idx in group:
                loss = loss_of(scorer, [train[i] for i in idx], cfg.objective)
                (loss / len(group)).backward()
                losses.append(float(loss.detach()))
            opt.step()
            opt.zero_grad()
            if cfg.scheduler != "reduce_lr_on_plateau":
                sched.step()
            step += 1
            record({"step": step, "epoch": epoch + 1, "loss": float(np.mean(losses)),
                    "lr": opt.param_groups[0]["lr"], "seconds": round(time.perf_counter() - start, 2)})
            if step % cfg.save_every == 0:
                save()
        if valid:
            ev = evaluate_docs(scorer, valid, cfg.eval_batch_size)
            if cfg.scheduler == "reduce_lr_on_plateau":
                sched.step(ev["acc_norm"])
            record({"step": step, "epoch": epoch + 1, "eval_acc": ev["acc"], "eval_acc_norm": ev["acc_norm"]})
        save()
        if step >= total:
            break
    with atomic_dir(out / "adapter") as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    losses = [h["loss"] for h in history if "loss" in h]
    evals = [h for h in history if "eval_acc" in h]
    summary = {"config": asdict(cfg), "steps": step, "train_examples": len(train),
               "valid_examples": len(valid), "first_loss": losses[0] if losses else None,
               "last_loss": losses[-1] if losses else None, "min_loss": min(losses) if losses else None,
               "eval_acc": evals[-1]["eval_acc"] if evals else None,
               "eval_acc_norm": evals[-1]["eval_acc_norm"] if evals else None}
    write_json(out / "metrics.json", summary)
    return summary


def load_training_docs(data: Path, eval_data: Path | None) -> tuple[list[Doc], list[Doc]]:
    """(train, validation) Docs from a DatasetDict folder (``export --format hf``) or JSONL.

    JSONL: records whose ``split`` is ``train`` train (all records if none is marked), those
    marked ``validation``/``val`` validate unless ``eval_data`` is given.
    """
    from advfilter.evaluate import read_docs, to_doc

    if data.is_dir():
        from datasets import load_from_disk

        dataset = load_from_disk(str(data))
        return ([to_doc(r) for r in dataset["train"]],
                [to_doc(r) for r in dataset["validation"]] if "validation" in dataset else [])
    docs = read_docs(data)
    splits = {d.split for d in docs}
    train = [d for d in docs if d.split == "train"] if "train" in splits else docs
    if eval_data is not None:
        return train, read_docs(eval_data)
    held = next((name for name in ("validation", "val") if name in splits), None)
    return train, [d for d in docs if d.split == held] if held else []
