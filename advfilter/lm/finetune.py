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
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import yaml

from advfilter.lm.config import FinetuneConfig
from advfilter.core.errors import ConfigError, RunError
from advfilter.core.lm import continuation_logprobs
from advfilter.core.models import load_causal_lm
from advfilter.core.seeds import derive_seed
from advfilter.core.store import RunStore, atomic_dir, atomic_path, write_json, write_jsonl
from advfilter.lm.evaluate import Doc, Scorer, batches, summarize

log = logging.getLogger(__name__)


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


def plan_steps(cfg: FinetuneConfig, n_train: int) -> tuple[int, int]:
    """(optimizer steps per epoch, steps in all) for ``n_train`` training items."""
    per_epoch = math.ceil(n_train / (cfg.batch_size * cfg.grad_accum))
    return per_epoch, cfg.max_steps or per_epoch * cfg.epochs


def evaluate_docs(scorer: Scorer, docs: list[Doc], batch_size: int, objective: str) -> dict[str, Any]:
    """``summarize``'s accuracy figures on ``docs`` plus ``loss``: the training objective's
    loss on them (no gradients), averaged over batches."""
    scorer.model.eval()
    with torch.no_grad():
        lls = [s for batch in batches(docs, batch_size) for s in scorer.loglikelihoods(batch)]
        losses = [float(loss_of(scorer, list(batch), objective)) for batch in batches(docs, batch_size)]
    scorer.model.train()
    return {**summarize(docs, lls), "loss": float(np.mean(losses))}


def finetune(cfg: FinetuneConfig, train: list[Doc], valid: list[Doc], out: Path, resume: bool = False,
             on_log: Callable[[dict[str, Any]], None] = lambda _: None) -> dict[str, Any]:
    """Train a LoRA adapter; write ``OUT/adapter``, ``OUT/metrics.jsonl``, ``OUT/metrics.json``
    and the resolved ``OUT/config.yaml``."""
    from peft import get_peft_model_state_dict, set_peft_model_state_dict

    out.mkdir(parents=True, exist_ok=True)
    model, tok = load_causal_lm(cfg.model, dtype="auto", device=cfg.device, load_4bit=cfg.load_4bit,
                                lora=cfg.lora, seed=cfg.seed)
    scorer = Scorer(model, tok)
    per_epoch, total = plan_steps(cfg, len(train))
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
    with atomic_path(out / "config.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(cfg.model_dump(), sort_keys=False))
    metrics_path = out / "metrics.jsonl"
    # the log restarts from what the checkpoint knew: rows written after it are redone
    write_jsonl(metrics_path, history)

    def record(row: dict[str, Any]) -> None:
        history.append(row)
        with open(metrics_path, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        on_log(row)

    held_out = valid[:cfg.eval_items] if cfg.eval_items else valid

    def evaluate(epoch: int) -> None:
        """An ``eval_*`` row (loss, acc, acc_norm); the breakdowns of the first (the base model:
        step 0) and the latest go to ``OUT/eval.json`` for ``report --finetune``."""
        ev = evaluate_docs(scorer, held_out, cfg.eval_batch_size, cfg.objective)
        if cfg.scheduler == "reduce_lr_on_plateau" and step:
            sched.step(ev["acc_norm"])
        record({"step": step, "epoch": epoch, "eval_loss": ev["loss"], "eval_acc": ev["acc"],
                "eval_acc_norm": ev["acc_norm"]})
        kept = json.loads((out / "eval.json").read_text()) if (out / "eval.json").exists() else {}
        write_json(out / "eval.json", {"baseline": kept.get("baseline", ev) if step else ev, "tuned": ev,
                                       "items": len(held_out)})

    def save() -> None:
        with atomic_dir(ckpt) as tmp:
            torch.save({"adapter": get_peft_model_state_dict(model), "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(), "step": step, "history": history,
                        "rng": torch.get_rng_state()}, tmp / "state.pt")

    model.train()
    start = time.perf_counter()
    if held_out and step == 0:
        evaluate(0)  # the base model: what fine-tuning is compared with
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
            if held_out and cfg.eval_every and step % cfg.eval_every == 0:
                evaluate(epoch + 1)
            if step % cfg.save_every == 0:
                save()
        if held_out and not cfg.eval_every:
            evaluate(epoch + 1)
        save()
        if step >= total:
            break
    with atomic_dir(out / "adapter") as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    losses = [h["loss"] for h in history if "loss" in h]
    evals = [h for h in history if "eval_acc" in h]
    summary = {"config": cfg.model_dump(), "steps": step, "train_examples": len(train),
               "valid_examples": len(valid), "first_loss": losses[0] if losses else None,
               "last_loss": losses[-1] if losses else None, "min_loss": min(losses) if losses else None,
               "eval_acc": evals[-1]["eval_acc"] if evals else None,
               "eval_acc_norm": evals[-1]["eval_acc_norm"] if evals else None,
               "eval_loss": evals[-1]["eval_loss"] if evals else None,
               "baseline_acc": evals[0]["eval_acc"] if evals else None,
               "baseline_acc_norm": evals[0]["eval_acc_norm"] if evals else None}
    write_json(out / "metrics.json", summary)
    return summary


def load_training_docs(data: Path | RunStore, eval_data: Path | None) -> tuple[list[Doc], list[Doc]]:
    """(train, validation) Docs from a run (its last round's train and validation splits), a
    DatasetDict folder (``export --format hf``) or JSONL.

    JSONL: records whose ``split`` is ``train`` train (all records if none is marked), those
    marked ``validation``/``val`` validate unless ``eval_data`` is given.
    """
    from advfilter.lm.evaluate import read_docs, run_docs, to_doc

    if isinstance(data, RunStore):
        return run_docs(data, "train"), read_docs(eval_data) if eval_data else run_docs(data, "validation")

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


def wandb_run(cfg: FinetuneConfig, out: Path, group: str | None = None, name: str | None = None) -> Any:
    """A W&B run for ``cfg`` under ``out`` (offline unless ``WANDB_API_KEY`` or ``WANDB_MODE``
    say otherwise); ``group`` gathers a sweep's trials."""
    try:
        import wandb
    except ImportError:
        raise ConfigError("--wandb needs the wandb package (pip install 'advfilter[wandb]')") from None
    mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
    return wandb.init(project="advfilter", dir=str(out), mode=mode, config=cfg.model_dump(),
                      group=group, name=name)


def finetune_recipe(cfg: FinetuneConfig, data: Path | RunStore, out: Path, eval_data: Path | None = None,
                    resume: bool = False, use_wandb: bool = False,
                    on_log: Callable[[dict[str, Any]], None] = lambda _: None,
                    wandb_group: str | None = None) -> dict[str, Any]:
    """The ``finetune-phi2`` recipe: read the items, train, log (and to W&B if asked)."""
    train, valid = load_training_docs(data, eval_data)
    if not use_wandb:
        return finetune(cfg, train, valid, out, resume=resume, on_log=on_log)
    out.mkdir(parents=True, exist_ok=True)
    run = wandb_run(cfg, out, group=wandb_group, name=out.name)
    try:
        return finetune(cfg, train, valid, out, resume=resume,
                        on_log=lambda row: (on_log(row), run.log(row)))
    finally:
        run.finish()


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


METRICS = ("steps", "first_loss", "last_loss", "min_loss", "eval_loss", "eval_acc", "eval_acc_norm",
           "baseline_acc_norm")


def _summary_row(path: Path) -> dict[str, Any]:
    """A fine-tuning run's metrics and flattened config (``config.*``)."""
    if not (path / "metrics.json").exists():
        raise RunError(f"{path}: no metrics.json; is it a finetune-phi2 output folder?")
    metrics = json.loads((path / "metrics.json").read_text())
    return {k: metrics.get(k) for k in METRICS} | _flat(metrics["config"], "config.")


def _value(row: dict[str, Any], key: str) -> str:
    v = row.get(key)
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def compare_table(run_a: Path, run_b: Path) -> str:
    """A fixed-width table of two fine-tuning runs' metrics and configs (``*``: they differ)."""
    rows = [_summary_row(run_a), _summary_row(run_b)]
    lines = [f"{'':24} {str(run_a):>28} {str(run_b):>28}"]
    for key in rows[0]:
        a, b = _value(rows[0], key), _value(rows[1], key)
        lines.append(f"{key:24} {a:>28} {b:>28}{'' if a == b else '  *'}")
    return "\n".join(lines)


def compare_markdown(baseline: Path, others: list[Path]) -> str:
    """A Markdown table for a pull-request comment: a row per metric (and per setting that
    differs between the runs), a column per run, the baseline first; a number's change from
    the baseline is given beside it, and a setting that differs from the baseline is bold."""
    runs = [baseline, *others]
    rows = [_summary_row(p) for p in runs]
    settings = [k for k in rows[0] if k.startswith("config.")
                and any(_value(r, k) != _value(rows[0], k) for r in rows[1:])]
    lines = ["| | " + " | ".join(f"`{p.name}`" + (" (baseline)" if i == 0 else "") for i, p in enumerate(runs)) + " |",
             "|---|" + "---|" * len(runs)]
    for key in [*METRICS, *settings]:
        cells = [_value(rows[0], key)]
        for r in rows[1:]:
            v, b = r.get(key), rows[0].get(key)
            if isinstance(v, (int, float)) and isinstance(b, (int, float)) and not isinstance(v, bool) and v != b:
                cells.append(f"{_value(r, key)} ({v - b:+.4g})")
            elif _value(r, key) != _value(rows[0], key):
                cells.append(f"**{_value(r, key)}**")
            else:
                cells.append(_value(r, key))
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
