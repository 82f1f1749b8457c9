"""The records of a sweep folder: a finished trial's ``results.jsonl`` line read from its own
files, the best trial and ``best.yaml``, and the tables and lines printed about them."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from advfilter.core.store import atomic_path, read_jsonl

EVAL_KEYS = ("step", "eval_loss", "eval_acc", "eval_acc_norm")


def metrics_rows(trial_dir: Path) -> list[dict[str, Any]]:
    path = trial_dir / "metrics.jsonl"
    return read_jsonl(path) if path.exists() else []


def trial_result(root: Path, trial_id: str, params: dict[str, Any], status: str) -> dict[str, Any]:
    """A ``results.jsonl`` line, read from the trial's own files (``completed`` wins over the
    status Tune gives when the trial wrote its ``metrics.json``)."""
    trial_dir = root / "trials" / trial_id
    rows = metrics_rows(trial_dir)
    evals = [r for r in rows if "eval_loss" in r]
    train = [r for r in rows if "loss" in r]
    metrics: dict[str, Any] = {k: evals[-1][k] if evals else None for k in EVAL_KEYS}
    base = evals[0] if evals and evals[0]["step"] == 0 else {}
    metrics |= {"baseline_eval_loss": base.get("eval_loss"), "baseline_acc_norm": base.get("eval_acc_norm"),
                "train_loss": train[-1]["loss"] if train else None,
                "seconds": train[-1]["seconds"] if train else None}
    if (trial_dir / "metrics.json").exists():
        status = "completed"
    return {"trial": trial_id, "config": params, "metrics": metrics, "status": status,
            "dir": f"trials/{trial_id}"}


def read_results(root: Path) -> list[dict[str, Any]]:
    """The finished trials of the sweep in ``root``."""
    path = root / "results.jsonl"
    return read_jsonl(path) if path.exists() else []


def best_result(rows: list[dict[str, Any]], metric: str, mode: str) -> dict[str, Any] | None:
    """The best completed trial by ``metric`` (trials stopped early only when none completed)."""
    scored = [r for r in rows if r["metrics"].get(metric) is not None and r["status"] != "error"]
    completed = [r for r in scored if r["status"] == "completed"] or scored
    if not completed:
        return None
    sign = 1 if mode == "min" else -1
    return min(completed, key=lambda r: sign * r["metrics"][metric])


def write_best(root: Path, best: dict[str, Any], metric: str, n: int) -> Path:
    """``ROOT/best.yaml``: the best trial's whole finetune config, with a comment saying why."""
    config = yaml.safe_load((root / best["dir"] / "config.yaml").read_text())
    head = (f"# The best of {n} sweep trials by {metric}: trial {best['trial']} "
            f"({metric} {best['metrics'][metric]:.4f}, eval_acc_norm {best['metrics']['eval_acc_norm']}).\n"
            f"# Train with it: advfilter finetune-phi2 --config {root / 'best.yaml'} --out OUT\n")
    with atomic_path(root / "best.yaml") as tmp:
        tmp.write_text(head + yaml.safe_dump(config, sort_keys=False))
    return root / "best.yaml"


def results_table(rows: list[dict[str, Any]], space: list[str], best: dict[str, Any] | None) -> str:
    """A fixed-width table of finished trials: searched settings, status, step, eval figures."""
    head = ["trial", *space, "status", "step", "eval_loss", "eval_acc", "eval_acc_norm"]

    def cell(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else "-" if v is None else str(v)

    table = [head] + [[("* " if best and r["trial"] == best["trial"] else "  ") + r["trial"],
                       *(cell(r["config"].get(k)) for k in space), r["status"],
                       *(cell(r["metrics"].get(k)) for k in EVAL_KEYS)] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table)


def trial_line(row: dict[str, Any]) -> str:
    """One line for a trial as it ends."""
    m = row["metrics"]
    figures = " ".join(f"{k}={m[k]:.4f}" for k in ("eval_loss", "eval_acc_norm") if m.get(k) is not None)
    settings = " ".join(f"{k}={v}" for k, v in row["config"].items())
    return f"trial {row['trial']} {row['status']} at step {m.get('step')}: {figures} ({settings})" + (
        f" error: {row['error']}" if row.get("error") else "")
