"""Probes: models outside the AF loop that gauge how hard a set of items is.

Each probe is trained on the items of half the videos and tested on the other half (the
halves come from a hash of (seed, video), so a video never sits on both sides), and reports
its held-out accuracy with a binomial standard error; chance is 1 / endings per item.

- ``tfidf``: TF-IDF + logistic regression scoring each ending on its own
  (``tfidf_ending``) and with the context (``tfidf_context``: the ending's n-grams plus
  their overlap with the context's and a cosine similarity), the cheap lexical gauge;
- ``encoder``: a pretrained encoder (all-MiniLM-L6-v2 from its PyPI package by default, any
  HF encoder by name) fine-tuned as a multiple-choice cross-encoder, the strong gauge;
- ``lm``: a pretrained causal LM (SmolLM2-135M from its PyPI package by default, any HF causal
  LM by name) zero-shot, scored as lm-evaluation-harness scores HellaSwag (``acc_norm``): the
  other model family, trained on nothing here (``n_train`` 0), tested on a seeded sample.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from advfilter.core.config import Config
from advfilter.core.settings import ProbeConfig
from advfilter.core.errors import InputError, RunError
from advfilter.core.layout import items, last_round, read_probes, write_probes
from advfilter.core.registry import Registry
from advfilter.core.seeds import derive_seed
from advfilter.core.store import RunStore
from advfilter.sources.base import iter_json_lines

Item = dict[str, Any]  # a HellaSwag-format record


@dataclass
class ProbeResult:
    """One probe's held-out accuracy on one set of items (a line of ``af/probe.jsonl``)."""

    probe: str
    acc: float
    stderr: float
    n_train: int
    n_test: int
    chance: float
    seconds: float
    round: int | None = None
    by_source: dict[str, dict[str, float | None]] | None = None  # see ``by_source``

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def video_of(item: Item) -> str:
    """The video an item comes from (``video_id``, else HellaSwag's ``source_id``)."""
    return str(item.get("video_id") or item.get("source_id") or item.get("ind"))


def halves(items: Sequence[Item], seed: int) -> tuple[list[Item], list[Item]]:
    """(train, test): the items of one half of the videos and of the other. Items of a run
    carry their ``fold``: then the halves are made of whole folds (alternate folds), so a
    negative retrieved from another item of its fold is never a gold on the other side."""
    folds = sorted({it["fold"] for it in items}) if all("fold" in it for it in items) else []
    if len(folds) >= 2:
        first = set(folds[::2])
        side = [0 if it["fold"] in first else 1 for it in items]
    else:
        side = [derive_seed(seed, "probe", video_of(it)) % 2 for it in items]
    return ([it for it, s in zip(items, side) if s == 0], [it for it, s in zip(items, side) if s == 1])


def context_of(item: Item) -> str:
    return f"{item['ctx_a']} {item['ctx_b']}".strip()


def accuracy(picks: np.ndarray, test: Sequence[Item]) -> tuple[float, float]:
    """Accuracy of ``picks`` against the labels, and its binomial standard error."""
    correct = picks == np.array([int(it["label"]) for it in test])
    p = float(correct.mean())
    return p, math.sqrt(p * (1 - p) / len(correct))


def by_source(picks: np.ndarray, test: Sequence[Item]) -> dict[str, dict[str, float | None]] | None:
    """What each writer of negatives contributes to a probe's accuracy, from the items'
    ``ending_sources`` (None where an item lacks them or one writer wrote every negative).
    Per source: ``share`` of the negatives; ``picked``: its share of the probe's wrong picks
    over its share of the negatives (1: picked as often as its share; well below 1: the probe
    sees through that source's endings); ``items`` whose negatives are mostly that source's,
    and the probe's ``acc`` on them."""
    if not test or not all("ending_sources" in it for it in test):
        return None
    labels = [int(it["label"]) for it in test]
    negatives = [[s for j, s in enumerate(it["ending_sources"]) if j != y] for it, y in zip(test, labels)]
    wrong = [it["ending_sources"][p] for p, it, y in zip(picks, test, labels) if p != y]
    names, counts = np.unique([s for n in negatives for s in n], return_counts=True)
    if len(names) < 2:
        return None
    total = counts.sum()
    out = {}
    for name, count in zip(names, counts):
        share = count / total
        mostly = [i for i, n in enumerate(negatives) if n.count(name) * 2 > len(n)]
        out[str(name)] = {
            "share": round(float(share), 3),
            "picked": round(float(wrong.count(name) / len(wrong) / share), 3) if wrong else 0.0,
            "items": len(mostly),
            "acc": round(float(np.mean([picks[i] == labels[i] for i in mostly])), 3) if mostly else None}
    return out


@dataclass
class Picks:
    """What one probe did on one half: the ending it picked for each item it was ``tested`` on,
    and how many items it was ``trained`` on."""

    picks: np.ndarray
    tested: list[Item]
    trained: int


Probe = Callable[[list[Item], list[Item], ProbeConfig], dict[str, Picks]]
probes: Registry[Probe] = Registry("probe")


def sample(items: Sequence[Item], k: int, seed: int, what: str) -> list[Item]:
    """At most ``k`` of ``items``: a seeded random sample (in their order), not the first k."""
    if len(items) <= k:
        return list(items)
    keep = np.random.default_rng(derive_seed(seed, "probe-sample", what)).permutation(len(items))[:k]
    return [items[i] for i in sorted(keep)]


@probes.register("tfidf")
def tfidf_probes(train: list[Item], test: list[Item], cfg: ProbeConfig) -> dict[str, Picks]:
    """Picks of the ending-only and the with-context TF-IDF + logistic-regression probes."""
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    def rows(items: list[Item]) -> tuple[list[str], list[str], list[int]]:
        endings = [e for it in items for e in it["endings"]]
        contexts = [context_of(it) for it in items for _ in it["endings"]]
        labels = [int(j == int(it["label"])) for it in items for j in range(len(it["endings"]))]
        return endings, contexts, labels

    endings, contexts, labels = rows(train)
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit(endings + contexts)

    def features(e: list[str], c: list[str], with_context: bool):
        x = vec.transform(e)
        if not with_context:
            return x
        xc = vec.transform(c)
        overlap = x.multiply(xc > 0)  # the ending's n-grams that also occur in its context
        cosine = csr_matrix(np.asarray(x.multiply(xc).sum(1)))
        return hstack([x, overlap, cosine]).tocsr()

    te, tc, _ = rows(test)
    out = {}
    for name, with_context in (("tfidf_ending", False), ("tfidf_context", True)):
        model = LogisticRegression(max_iter=2000, C=cfg.tfidf_c).fit(features(endings, contexts, with_context), labels)
        scores = model.decision_function(features(te, tc, with_context))
        out[name] = Picks(_pick(scores, test), list(test), len(train))
    return out


def _pick(flat_scores: np.ndarray, items: Sequence[Item]) -> np.ndarray:
    """The argmax per item of scores laid out item by item, ending by ending."""
    bounds = np.cumsum([0] + [len(it["endings"]) for it in items])
    return np.array([int(np.argmax(flat_scores[a:b])) for a, b in zip(bounds[:-1], bounds[1:])])


@probes.register("encoder")
def encoder_probe(train: list[Item], test: list[Item], cfg: ProbeConfig) -> dict[str, Picks]:
    """Picks of a pretrained encoder fine-tuned as a multiple-choice cross-encoder, on seeded
    random samples of ``encoder.max_train`` and ``encoder.max_test`` items of the halves."""
    from advfilter.gauges.encoder_probe import train_and_pick

    fit_on = sample(train, cfg.encoder.max_train, cfg.seed, "train")
    tested = sample(test, cfg.encoder.max_test, cfg.seed, "test")
    return {"encoder": Picks(train_and_pick(fit_on, tested, cfg.encoder, cfg.device, cfg.seed), tested, len(fit_on))}


@probes.register("lm")
def lm_probe(train: list[Item], test: list[Item], cfg: ProbeConfig) -> dict[str, Picks]:
    """Picks of a causal LM zero-shot (``acc_norm``) on a seeded random sample of
    ``lm.max_test`` items of the test half; ``train`` is not used."""
    from advfilter.gauges.lm_probe import lm_picks

    tested = sample(test, cfg.lm.max_test, cfg.seed, "test")
    return {"lm": Picks(lm_picks(tested, cfg.lm, cfg.device), tested, 0)}


def run_probes(items: Sequence[Item], cfg: ProbeConfig, names: Sequence[str],
               round_n: int | None = None,
               on_result: Callable[[ProbeResult], None] = lambda _: None) -> list[ProbeResult]:
    """Every named probe (``tfidf``, ``encoder``, ``lm``) trained on one half of ``items``' videos and
    tested on the other (with ``cfg.both_ways`` also the other way round, the accuracy over
    both test halves); ``on_result`` is called with each result as soon as it exists."""
    train, test = halves(items, cfg.seed)
    if not train or not test:
        raise InputError("items", None, f"{len(items)} items from too few videos to split in halves")
    ways = [(train, test), (test, train)] if cfg.both_ways else [(train, test)]
    results = []
    for name in names:
        start = time.perf_counter()
        done: dict[str, list[Picks]] = {}
        for fit_on, test_on in ways:
            for probe, picks in probes.get(name)(fit_on, test_on, cfg).items():
                done.setdefault(probe, []).append(picks)
        seconds = (time.perf_counter() - start) / len(done)
        for probe, parts in done.items():
            pick, seen = np.concatenate([p.picks for p in parts]), [it for p in parts for it in p.tested]
            acc, err = accuracy(pick, seen)
            chance = float(np.mean([1 / len(it["endings"]) for it in seen]))
            results.append(ProbeResult(probe, round(acc, 4), round(err, 4), sum(p.trained for p in parts),
                                       len(pick), round(chance, 4), round(seconds, 2), round_n,
                                       by_source(pick, seen)))
            on_result(results[-1])
    return results


def parse_rounds(spec: str, last: int) -> list[int]:
    """``0,last`` → [0, last]; ``all`` → 0..last; numbers beyond ``last`` are refused."""
    if spec == "all":
        return list(range(last + 1))
    rounds = sorted({last if part == "last" else int(part) for part in spec.split(",")})
    if rounds[-1] > last:
        raise RunError(f"round {rounds[-1]} does not exist; the last finished round is {last}")
    return rounds


def probe_run(cfg: Config, run: RunStore, on_result: Callable[[ProbeResult], None] = lambda _: None
              ) -> list[ProbeResult]:
    """The ``probe --run`` recipe: ``cfg.probe``'s probes on the items of its rounds, each
    result merged into ``af/probe.jsonl`` (one line per round and probe, newest wins)."""
    def done(result: ProbeResult) -> None:
        record_probe(run, result)
        on_result(result)

    results = []
    for r in parse_rounds(cfg.probe.rounds, last_round(run)):
        results += run_probes(list(items(run, r, sources=True)), cfg.probe, cfg.probe.probes, r, done)
    return results


def record_probe(run: RunStore, result: ProbeResult) -> None:
    """Add ``result`` to ``af/probe.jsonl``, replacing an earlier line for its round and probe."""
    rows = [p for p in read_probes(run) if (p["round"], p["probe"]) != (result.round, result.probe)]
    write_probes(run, sorted([*rows, result.as_dict()], key=lambda p: (p["round"], p["probe"])))


REQUIRED = ("ctx_a", "ctx_b", "endings", "label")


def read_items(path: Path) -> list[Item]:
    """HellaSwag-format records of a JSONL file; a record that cannot be probed is an
    InputError naming its line."""
    records = []
    for lineno, record in iter_json_lines(path):
        missing = [k for k in REQUIRED if k not in record]
        if missing:
            raise InputError(path, f"line {lineno}", f"missing {', '.join(missing)}")
        endings, label = record["endings"], record["label"]
        if not isinstance(endings, list) or len(endings) < 2 or not all(isinstance(e, str) for e in endings):
            raise InputError(path, f"line {lineno}", "endings must be a list of two or more strings")
        if not isinstance(label, (int, str)) or not str(label).isdigit() or int(label) >= len(endings):
            raise InputError(path, f"line {lineno}", f"label {label!r} is not an index into the endings")
        records.append(record)
    if not records:
        raise InputError(path, None, "no items")
    return records


def probe_items(cfg: Config, path: Path, on_result: Callable[[ProbeResult], None] = lambda _: None
                ) -> list[ProbeResult]:
    """The ``probe --items`` recipe: ``cfg.probe``'s probes on a HellaSwag-format file."""
    return run_probes(read_items(path), cfg.probe, cfg.probe.probes, on_result=on_result)
