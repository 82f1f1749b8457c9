"""``advfilter compare``: fine-tuning runs (``finetune-phi2 --out`` folders) side by side, as a
fixed-width table or as Markdown for a pull-request comment."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from advfilter.core.errors import RunError


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
