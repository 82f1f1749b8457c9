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

from advfilter.core.errors import ConfigError, RunError
from advfilter.core.lm import continuation_logprobs
from advfilter.core.models import load_causal_lm
from advfilter.core.seeds import derive_seed
from advfilter.core.store import RunStore, atomic_dir, atomic_path, write_json, write_jsonl
from advfilter.lm.config import FinetuneConfig, plan_steps
from advfilter.lm.data import training_data
from advfilter.core.lm import Doc, Scorer, batches
from advfilter.lm.evaluate import summarize

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


def evaluate_docs(scorer: Scorer, docs: list[Doc], batch_size: int, objective: str) -> dict[str, Any]:
    """``summarize``'s accuracy figures on ``docs`` plus ``loss``: the training objective's
    loss on them (no gradients), averaged over batches."""
    scorer.model.eval()
    with torch.no_grad():
        lls = [s for batch in batches(docs, batch_size) for s in scorer.loglikelihoods(batch)]
        losses = [float(loss_of(scorer, list(batch), objective)) for batch in batches(docs, batch_size)]
    scorer.model.train()
    return {**summarize(docs, lls), "loss": float(np.mean(losses))}


class Training:
    """One fine-tuning run's moving parts: the model and its scorer, optimizer, scheduler, the
    step reached and the log (``history``), and the steps that use them."""

    def __init__(self, cfg: FinetuneConfig, train: list[Doc], valid: list[Doc], out: Path,
                 on_log: Callable[[dict[str, Any]], None]) -> None:
        self.cfg, self.train, self.valid, self.out, self.on_log = cfg, train, valid, out, on_log
        self.held_out = valid[:cfg.eval_items] if cfg.eval_items else valid
        self.model, self.tok = load_causal_lm(cfg.model, dtype="auto", device=cfg.device,
                                              load_4bit=cfg.load_4bit, lora=cfg.lora, seed=cfg.seed)
        self.scorer = Scorer(self.model, self.tok)
        self.per_epoch, self.total = plan_steps(cfg, len(train))
        self.opt = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad], lr=cfg.lr)
        self.sched = make_scheduler(cfg, self.opt, self.total)
        self.step, self.history = 0, []
        self.checkpoint = out / "checkpoint" / "state.pt"

    def resume(self) -> None:
        """Continue from ``OUT/checkpoint``: adapter, optimizer, scheduler, step, log, RNG."""
        from peft import set_peft_model_state_dict

        if not self.checkpoint.exists():
            raise RunError(f"{self.out}: no checkpoint to resume from")
        state = torch.load(self.checkpoint, weights_only=False)
        set_peft_model_state_dict(self.model, state["adapter"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.step, self.history = state["step"], state["history"]
        torch.set_rng_state(state["rng"])

    def start_log(self) -> None:
        """``OUT/config.yaml``, ``OUT/splits.json`` (the ids of the items trained and evaluated
        on) and ``OUT/metrics.jsonl`` restarted from what the checkpoint knew (rows written
        after it are redone)."""
        with atomic_path(self.out / "config.yaml") as tmp:
            tmp.write_text(yaml.safe_dump(self.cfg.model_dump(), sort_keys=False))
        write_json(self.out / "splits.json", {"trained_on": [d.ident for d in self.train],
                                               "evaluated_on": [d.ident for d in self.held_out]})
        write_jsonl(self.out / "metrics.jsonl", self.history)

    def record(self, row: dict[str, Any]) -> None:
        """Add a row to the log; ``OUT/metrics.jsonl`` is replaced whole (atomically), so a
        crash never leaves half a line."""
        self.history.append(row)
        write_jsonl(self.out / "metrics.jsonl", self.history)
        self.on_log(row)

    def evaluate(self, epoch: int) -> None:
        """An ``eval_*`` row (loss, acc, acc_norm); the breakdowns of the first (the base model:
        step 0) and the latest go to ``OUT/eval.json`` for ``report --finetune``."""
        if not self.held_out:
            return
        ev = evaluate_docs(self.scorer, self.held_out, self.cfg.eval_batch_size, self.cfg.objective)
        if self.cfg.scheduler == "reduce_lr_on_plateau" and self.step:
            self.sched.step(ev["acc_norm"])
        self.record({"step": self.step, "epoch": epoch, "eval_loss": ev["loss"], "eval_acc": ev["acc"],
                     "eval_acc_norm": ev["acc_norm"]})
        path = self.out / "eval.json"
        kept = json.loads(path.read_text()) if path.exists() else {}
        write_json(path, {"baseline": kept.get("baseline", ev) if self.step else ev, "tuned": ev,
                          "items": len(self.held_out)})

    def save(self) -> None:
        """The checkpoint ``--resume`` reads, replaced atomically."""
        from peft import get_peft_model_state_dict

        with atomic_dir(self.checkpoint.parent) as tmp:
            torch.save({"adapter": get_peft_model_state_dict(self.model), "optimizer": self.opt.state_dict(),
                        "scheduler": self.sched.state_dict(), "step": self.step, "history": self.history,
                        "rng": torch.get_rng_state()}, tmp / self.checkpoint.name)

    def optimizer_step(self, group: list[np.ndarray], epoch: int, start: float) -> None:
        """One optimizer step over ``group``'s micro-batches (item indices), logged."""
        losses = []
        for idx in group:
            loss = loss_of(self.scorer, [self.train[i] for i in idx], self.cfg.objective)
            (loss / len(group)).backward()
            losses.append(float(loss.detach()))
        self.opt.step()
        self.opt.zero_grad()
        if self.cfg.scheduler != "reduce_lr_on_plateau":
            self.sched.step()
        self.step += 1
        self.record({"step": self.step, "epoch": epoch + 1, "loss": float(np.mean(losses)),
                     "lr": self.opt.param_groups[0]["lr"], "seconds": round(time.perf_counter() - start, 2)})

    def epoch_groups(self, epoch: int) -> list[list[np.ndarray]]:
        """The epoch's items in a seeded order, as micro-batches grouped per optimizer step."""
        cfg = self.cfg
        order = np.random.default_rng(derive_seed(cfg.seed, "finetune", epoch)).permutation(len(self.train))
        micro = [order[i:i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
        return [micro[i:i + cfg.grad_accum] for i in range(0, len(micro), cfg.grad_accum)]

    def run(self) -> None:
        """Evaluate the base model, then train epoch by epoch: an evaluation every
        ``eval_every`` steps (else after each epoch), a checkpoint every ``save_every`` steps
        and at each epoch's end; steps done before a resumed checkpoint are skipped."""
        cfg, start = self.cfg, time.perf_counter()
        self.model.train()
        if self.step == 0:
            self.evaluate(0)  # the base model: what fine-tuning is compared with
        epoch = 0
        for epoch in range(math.ceil(self.total / self.per_epoch)):
            for g, group in enumerate(self.epoch_groups(epoch)):
                if epoch * self.per_epoch + g < self.step or self.step >= self.total:
                    continue
                self.optimizer_step(group, epoch, start)
                if cfg.eval_every and self.step % cfg.eval_every == 0:
                    self.evaluate(epoch + 1)
                if self.step % cfg.save_every == 0:
                    self.save()
            if not cfg.eval_every:
                self.evaluate(epoch + 1)
            self.save()
            if self.step >= self.total:
                break
        last = self.history[-1] if self.history else {}
        if self.held_out and last.get("step") == self.step and "eval_loss" not in last:
            self.evaluate(epoch + 1)  # the last step is always evaluated: "final" means final
            self.save()

    def finish(self) -> dict[str, Any]:
        """``OUT/adapter`` (adapter + tokenizer) and ``OUT/metrics.json``; the summary."""
        with atomic_dir(self.out / "adapter") as tmp:
            self.model.save_pretrained(tmp)
            self.tok.save_pretrained(tmp)
        losses = [h["loss"] for h in self.history if "loss" in h]
        evals = [h for h in self.history if "eval_acc" in h]
        summary = {"config": self.cfg.model_dump(), "steps": self.step, "train_examples": len(self.train),
                   "valid_examples": len(self.valid),
                   "first_loss": losses[0] if losses else None,
                   "last_loss": losses[-1] if losses else None, "min_loss": min(losses) if losses else None,
                   **{f"eval_{k}": evals[-1][f"eval_{k}"] if evals else None for k in ("acc", "acc_norm", "loss")},
                   "baseline_acc": evals[0]["eval_acc"] if evals else None,
                   "baseline_acc_norm": evals[0]["eval_acc_norm"] if evals else None}
        write_json(self.out / "metrics.json", summary)
        return summary


def finetune(cfg: FinetuneConfig, train: list[Doc], valid: list[Doc], out: Path, resume: bool = False,
             on_log: Callable[[dict[str, Any]], None] = lambda _: None) -> dict[str, Any]:
    """Train a LoRA adapter; write ``OUT/adapter``, ``OUT/metrics.jsonl``, ``OUT/metrics.json``
    and the resolved ``OUT/config.yaml``."""
    out.mkdir(parents=True, exist_ok=True)
    training = Training(cfg, train, valid, out, on_log)
    if resume:
        training.resume()
    training.start_log()
    training.run()
    return training.finish()


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
    """The ``finetune-phi2`` recipe: read the items (never validating on one it trains on; a
    line on stderr says how they were split when the data did not say), train, log (and to
    W&B if asked)."""
    chosen = training_data(data, eval_data, cfg.valid_fraction, cfg.seed)
    if chosen.note:
        log.warning(chosen.note)
    train, valid = chosen.train, chosen.valid
    if not use_wandb:
        return finetune(cfg, train, valid, out, resume=resume, on_log=on_log)
    out.mkdir(parents=True, exist_ok=True)
    run = wandb_run(cfg, out, group=wandb_group, name=out.name)
    try:
        return finetune(cfg, train, valid, out, resume=resume,
                        on_log=lambda row: (on_log(row), run.log(row)))
    finally:
        run.finish()
