"""Per-round report of a filter run: a table and a PNG (accuracy per round of the
discriminators and of the probes outside the loop, ending lengths). A ``!`` marks a
discriminator below chance by more than ``filter.stop.margin``: an overshoot."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from advfilter.core.config import load_config
from advfilter.core.errors import RunError
from advfilter.core.layout import (
    AF_DIR, ANNOTATORS_FILE, last_round, read_metrics, read_probes, read_rows, round_assignment,
)
from advfilter.core.scores import latest_margins
from advfilter.core.store import RunStore, atomic_path
from advfilter.core.text import word_tokenize
from annotation.quality import kappa_text


def table(run: RunStore) -> str:
    """A fixed-width table: one line per round, test accuracy of every discriminator."""
    metrics = read_metrics(run)
    if not metrics:
        raise RunError(f"{run.root}: no {AF_DIR}/metrics.jsonl; run advfilter filter first")
    names = list(dict.fromkeys(n for m in metrics for n in m["accuracy"]))  # the strong one joins late
    lines = ["round  " + "  ".join(f"{n:>8}" for n in names) + "    driver  changed  swaps  ambiguous  seconds"]
    for m in metrics:
        low = m.get("below_chance", [])
        accs = "  ".join(f"{m['accuracy'][n]:7.3f}{'!' if n in low else ' '}" if n in m["accuracy"]
                         else f"{'-':>7} " for n in names)
        secs = m["train_s"] + m["score_s"] + m["bookkeeping_s"]
        ambiguous = f"{m['ambiguous']:9.3f}" if "ambiguous" in m else f"{'-':>9}"
        lines.append(f"{m['round']:5d}  {accs}  {m['driver']:>8}  {m['changed_frac']:7.3f}  "
                     f"{m['swaps']:5d}  {ambiguous}  {secs:7.1f}")
    lines += ambiguity(run, metrics[-1]["round"])
    if any(m.get("below_chance") for m in metrics):
        lines.append("! below chance by more than filter.stop.margin: an overshoot, not success")
    lines += sources(run)
    probes = read_probes(run)
    if probes:
        lines.append("")
        lines.append("probes (outside the loop; trained on half the videos, tested on the other half):")
        ends = {0, max(p["round"] for p in probes)}  # the per-source lines of the first and last
        for p in probes:
            lines.append(f"round {p['round']:3d}  {p['probe']:14} {p['acc']:.3f} ± {p['stderr']:.3f}  "
                         f"(chance {p['chance']:.2f}, test {p['n_test']})")
            lines += source_lines(p.get("by_source")) if p["round"] in ends else []
    lines += humans(run, metrics)
    return "\n".join(lines)


def ambiguity(run: RunStore, last: int) -> list[str]:
    """The share of round ``last``'s items the driver last scored a negative of at least
    ``filter.ambiguous_margin`` above the gold: the likeliest to have a second answer."""
    margin = load_config(None, base=run.manifest.get("config")).filter.ambiguous_margin
    scored = latest_margins(run, last)
    if not scored:
        return []
    n = sum(m >= margin for m in scored.values())
    return [f"likely ambiguous (a negative >= {margin} sd above the gold when last tested): "
            f"{n} of {len(scored)} items ({n / len(scored):.1%}); annotate push --order ambiguous "
            f"sends them first, export --drop-ambiguous leaves out those people have not kept"]


def source_lines(by_source: dict[str, dict] | None) -> list[str]:
    """Lines under a probe's result: its wrong picks per source against the source's share of
    the negatives, and its accuracy on items whose negatives are mostly that source's."""
    if not by_source:
        return []
    picked = ", ".join(f"{s} {v['picked']:.2f}x" for s, v in by_source.items())
    mostly = ", ".join(f"{s} {v['acc']:.3f} ({v['items']})" for s, v in by_source.items() if v["items"])
    return [f"{'':11}wrong picks / share of negatives: {picked}",
            f"{'':11}accuracy where most negatives are one source's: {mostly}"]


def humans(run: RunStore, metrics: list[dict]) -> list[str]:
    """Lines: people's accuracy on the verified items next to the discriminators' in the
    round they saw (HellaSwag: 95.6 % human vs 47 % BERT-Large), and whose votes were dropped."""
    path = run.path(ANNOTATORS_FILE)
    if not path.exists():
        return []
    people = json.loads(path.read_text())
    seen = next((m for m in metrics if m["round"] == people["round"]), None)
    models = "  ".join(f"{k} {v:.3f}" for k, v in (seen or {}).get("accuracy", {}).items())
    lines = ["", f"human verification (round {people['round']}):",
             f"  people    {people['human_accuracy']:.3f}  ({people['human_answers']} answers; "
             f"Fleiss' kappa {kappa_text(people['kappa_kept'])})"]
    if models:
        lines.append(f"  models    {models}  (held-out accuracy in that round)")
    if people["dropped"]:
        lines.append(f"  votes dropped (accuracy below {people['min_annotator_accuracy']}): annotators "
                     + ", ".join(map(str, people["dropped"])))
    return lines


def sources(run: RunStore) -> list[str]:
    """Lines: which generator wrote the negatives, in the pools, in round 0 and the last round."""
    rows = read_rows(run, ["generator"])
    if "generator" not in rows.table:
        return []
    generator = rows.table["generator"].to_numpy()
    lines = ["", "negatives by generator:"]
    pool = generator[generator != "gold"]
    shares = {"pools": pool}
    for r in sorted({0, last_round(run)}):
        negatives = round_assignment(run, r)
        active = np.flatnonzero(negatives[:, 0] >= 0)
        shares[f"round {r}"] = generator[(rows.offsets[active, None] + 1 + negatives[active]).ravel()]
    for where, names in shares.items():
        kinds, counts = np.unique(names, return_counts=True)
        lines.append(f"  {where:9} " + "  ".join(f"{k} {c / len(names):.1%}" for k, c in zip(kinds, counts)))
    return lines


def ending_lengths(run: RunStore, round_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Lengths in tokens of the gold endings and of the assigned negatives in round ``round_n``."""
    rows = read_rows(run)
    lengths = np.array([len(word_tokenize(e)) for e in rows.endings])
    negatives = round_assignment(run, round_n)
    active = np.flatnonzero(negatives[:, 0] >= 0)
    gold = lengths[rows.offsets[active]]
    negs = lengths[(rows.offsets[active, None] + 1 + negatives[active]).ravel()]
    return gold, negs


def plot(run: RunStore, out: Path) -> None:
    """PNG: accuracy per round per discriminator (with chance), and ending lengths gold vs
    negatives in round 0 and the last round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = read_metrics(run)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    rounds = [m["round"] for m in metrics]
    for name in metrics[0]["accuracy"]:
        left.plot(rounds, [m["accuracy"][name] for m in metrics], marker="o", ms=3, label=name)
    by_probe: dict[str, list[tuple[int, float]]] = {}
    for p in read_probes(run):
        by_probe.setdefault(p["probe"], []).append((p["round"], p["acc"]))
    for name, points in by_probe.items():
        xs, ys = zip(*sorted(points))
        left.plot(xs, ys, ls="--", marker="s", ms=5, lw=2, label=f"probe: {name}")
    k = round_assignment(run, 0).shape[1] + 1
    left.axhline(1 / k, color="gray", ls="--", label=f"chance (1/{k})")
    left.xaxis.get_major_locator().set_params(integer=True)
    left.set(xlabel="round", ylabel="held-out accuracy", ylim=(0, 1.02),
             title="Discriminators (before swapping) and probes per round")
    left.legend(fontsize=8)
    last = last_round(run)
    bins = np.arange(0, 32) - 0.5
    for r, style in ((0, ":"), (last, "-")):
        gold, negs = ending_lengths(run, r)
        right.hist(gold, bins, histtype="step", ls=style, color="C0", density=True, label=f"gold (round {r})")
        right.hist(negs, bins, histtype="step", ls=style, color="C3", density=True,
                   label=f"negatives (round {r})")
    right.set(xlabel="ending length (words)", ylabel="share", title="Ending lengths")
    right.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
