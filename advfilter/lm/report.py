"""``report --finetune OUT``: the evaluation report of a fine-tuning run, as PNGs and one HTML page.

Reads what ``finetune-phi2`` wrote: ``metrics.jsonl`` (train loss per step; eval loss, acc and
acc_norm at step 0 — the base model — and after each epoch or ``eval_every`` steps),
``eval.json`` (the breakdowns of the base model and of the last evaluation) and
``metrics.json``. Writes ``loss.png`` (the curves), ``confusion.png`` (gold position × chosen
position, acc_norm's choice), ``activity.png`` (acc_norm per activity, base vs tuned) and
``report.html``, which shows them with the baseline-vs-tuned and per-activity tables.
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from advfilter.core.errors import RunError
from advfilter.core.store import atomic_path, read_jsonl

FIGURES = ("loss.png", "confusion.png", "activity.png")


def load(out: Path) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """(metrics rows, eval.json, metrics.json) of a finetune-phi2 output folder."""
    if not (out / "metrics.jsonl").exists():
        raise RunError(f"{out}: no metrics.jsonl; is it a finetune-phi2 --out folder?")
    if not (out / "eval.json").exists():
        raise RunError(f"{out}: no eval.json; fine-tune with a validation split to get a report")
    summary = json.loads((out / "metrics.json").read_text()) if (out / "metrics.json").exists() else {}
    return read_jsonl(out / "metrics.jsonl"), json.loads((out / "eval.json").read_text()), summary


def plots(out: Path, rows: list[dict[str, Any]], evals: dict[str, Any]) -> None:
    """The three PNGs, each written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    held = [(r["step"], r["eval_loss"]) for r in rows if "eval_loss" in r]
    fig, ax = plt.subplots(figsize=(6, 4))
    if train:
        ax.plot(*zip(*train), label="train loss (per step)")
    if held:
        ax.plot(*zip(*held), marker="o", label="eval loss")
    ax.set(xlabel="optimizer step", ylabel="loss", title="Loss curves")
    ax.legend()
    _save(fig, out / "loss.png")

    confusion = np.array(evals["tuned"]["confusion_gold_by_chosen_norm"])
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(confusion, cmap="Blues")
    for (i, j), n in np.ndenumerate(confusion):
        ax.text(j, i, str(n), ha="center", va="center",
                color="white" if n > confusion.max() / 2 else "black")  # readable on dark cells
    ax.set(xlabel="chosen position (acc_norm)", ylabel="gold position", title="Confusion (tuned)",
           xticks=range(len(confusion)), yticks=range(len(confusion)))
    _save(fig, out / "confusion.png")

    names = sorted(evals["tuned"]["by"]["activity"])
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.3 * len(names) + 1)))
    y = np.arange(len(names))
    for offset, key in ((-0.2, "baseline"), (0.2, "tuned")):
        by = evals[key]["by"]["activity"]
        ax.barh(y + offset, [by.get(n, {}).get("acc_norm", 0) for n in names], height=0.4, label=key)
    ax.set(yticks=y, yticklabels=[n or "-" for n in names], xlabel="acc_norm", xlim=(0, 1),
           title="Accuracy per activity")
    ax.legend()
    _save(fig, out / "activity.png")


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def page(out: Path, evals: dict[str, Any], summary: dict[str, Any]) -> str:
    """The HTML of ``report.html``: baseline vs tuned, per activity, the figures."""
    base, tuned = evals["baseline"], evals["tuned"]
    cfg = summary.get("config", {})

    def cells(*values: Any) -> str:
        return "".join(f"<td>{v:.3f}</td>" if isinstance(v, float) else f"<td>{html.escape(str(v))}</td>"
                       for v in values)

    overall = "".join(f"<tr><th>{name}</th>{cells(base[k], tuned[k], tuned[k] - base[k])}</tr>"
                      for name, k in (("acc", "acc"), ("acc_norm", "acc_norm"), ("eval loss", "loss")))
    activities = "".join(
        f"<tr><th>{html.escape(n or '-')}</th>"
        f"{cells(r['n'], base['by']['activity'].get(n, {}).get('acc_norm', float('nan')), r['acc_norm'])}</tr>"
        for n, r in sorted(tuned["by"]["activity"].items()))
    setup = ", ".join(f"{k} {html.escape(str(cfg[k]))}" for k in ("model", "objective", "lr", "scheduler", "epochs",
                                                                 "max_steps") if k in cfg)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fine-tuning report: {html.escape(out.name)}</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:2em auto}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}th{{text-align:left}}img{{max-width:100%}}</style>
</head><body>
<h1>Fine-tuning report: {html.escape(out.name)}</h1>
<p>{setup}; LoRA r {cfg.get('lora', {}).get('r', '-')}; {summary.get('steps', '-')} steps on
{summary.get('train_examples', '-')} items, evaluated on {evals.get('items', '-')} validation items.
Baseline: the base model before the first step.</p>
<h2>Baseline vs tuned</h2>
<table id="overall"><tr><th></th><th>baseline</th><th>tuned</th><th>change</th></tr>{overall}</table>
<h2>Loss curves</h2><img id="loss" src="loss.png" alt="train and eval loss per step">
<h2>Confusion and per-activity accuracy</h2>
<img id="confusion" src="confusion.png" alt="gold position by chosen position">
<img id="activity" src="activity.png" alt="acc_norm per activity, baseline and tuned">
<table id="activities"><tr><th>activity</th><th>n</th><th>baseline acc_norm</th><th>tuned acc_norm</th></tr>
{activities}</table>
</body></html>
"""


def finetune_report(out: Path) -> Path:
    """Write the PNGs and ``OUT/report.html``; its path."""
    rows, evals, summary = load(out)
    plots(out, rows, evals)
    with atomic_path(out / "report.html") as tmp:
        tmp.write_text(page(out, evals, summary))
    return out / "report.html"
