"""The filter stage: cached features, rounds of Algorithm 1, resume, manifest entry."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
from tqdm import tqdm

from advfilter.af import (
    BANK_FILE, initial_assignment, model_names, read_metrics, read_round, round_file, run_round,
    set_threads, write_metrics, write_round,
)
from advfilter.config import Config
from advfilter.contexts import CONTEXTS_FILE
from advfilter.errors import RunError
from advfilter.generate import CANDIDATES_DIR
from advfilter.nlp import load_pipeline
from advfilter.store import RunStore, fingerprint
from discriminators import Bank, discriminators
from discriminators.bank import add_bert_tokens, add_pos, build_bank, read_texts

log = logging.getLogger(__name__)


@dataclass
class FilterSummary:
    rounds: int
    contexts: int
    short_pool: int
    resumed_from: int
    seconds: float
    reused: bool = False


def load_bank(cfg: Config, run: RunStore) -> Bank:
    """The run's feature bank, built on first use and extended when a model needs more."""
    path = run.path(BANK_FILE)
    path.parent.mkdir(exist_ok=True)
    shards = sorted(run.path(CANDIDATES_DIR).glob("part-*.parquet"))
    contexts = pd.read_parquet(run.path(CONTEXTS_FILE))
    changed = not path.exists()
    bank = build_bank(contexts, shards) if changed else Bank.load(path)
    names = set(cfg.filter.discriminators)
    texts = None
    if "bilstm" in names and bank.pos is None:
        texts = read_texts(shards)
        c = cfg.contexts
        add_pos(bank, contexts, texts, load_pipeline(c.spacy_model, c.spacy_fallbacks))
        changed = True
    if "bert" in names and bank.bert_ids is None:
        from discriminators.bert import load_tokenizer

        texts = texts or read_texts(shards)
        d = cfg.filter.discriminator
        add_bert_tokens(bank, contexts, texts, load_tokenizer(d.bert_model), d.bert_max_length)
        changed = True
    if changed:
        bank.save(path)
    return bank


def _completed_rounds(run: RunStore) -> tuple[int, list[dict[str, Any]]]:
    """The last round whose assignment and metrics line are both on disk, and the metrics."""
    metrics = read_metrics(run)
    last = 0
    while last < len(metrics) and run.path(round_file(last + 1)).exists():
        last += 1
    return last, metrics[:last]


def adversarial_filter(cfg: Config, run: RunStore,
                       on_round: Callable[[dict[str, Any]], None] = lambda _: None) -> FilterSummary:
    """Run (or resume, or extend) Adversarial Filtering up to ``cfg.filter.rounds`` rounds."""
    start = time.perf_counter()
    candidates = run.require_done("candidates", "run advfilter generate first")
    f = cfg.filter
    depends_on = {"candidates": candidates["fingerprint"], "seed": cfg.seed,
                  "filter": f.model_dump(exclude={"rounds", "threads", "min_changed"})}
    for name in f.discriminators:  # unknown names fail here, before the stage is recorded
        discriminators.get(name)
    stage_fp = fingerprint(depends_on)
    run.check_stage("filter", stage_fp, depends_on)  # refuses other settings
    done = run.stage("filter")
    if done and done["status"] == "done" and done["rounds"] >= f.rounds:
        return FilterSummary(done["rounds"], done["contexts"], done["short_pool"], done["rounds"],
                             0.0, reused=True)
    run.begin_stage("filter", stage_fp, depends_on)
    set_threads(f)
    bank = load_bank(cfg, run)
    if not run.path(round_file(0)).exists():
        write_round(run, 0, bank.context_ids, initial_assignment(bank.pool_sizes, f.negatives, cfg.seed))
    last, metrics = _completed_rounds(run)
    assignment = np.stack(read_round(run, last)["negatives"].to_numpy()).astype(np.int32)
    active = np.flatnonzero(assignment[:, 0] >= 0)
    if len(active) < 2:
        raise RunError(f"{run.root}: fewer than 2 contexts have {f.negatives} candidates to filter")
    r = last
    for r in range(last + 1, f.rounds + 1):
        with tqdm(total=len(model_names(f)) + 1, desc=f"round {r}", leave=False, disable=None) as bar:
            result = run_round(r, bank, assignment, active, f, cfg.seed,
                               progress=lambda msg: (bar.set_postfix_str(msg), bar.update(1)))
        assignment = result.assignment
        write_round(run, r, bank.context_ids, assignment)
        metrics.append(result.metrics)
        write_metrics(run, metrics)
        on_round(result.metrics)
        if result.metrics["changed_frac"] < f.min_changed:
            break
    summary = FilterSummary(r, len(active), len(bank.context_ids) - len(active), last,
                            time.perf_counter() - start)
    run.finish_stage("filter", stage_fp, depends_on, {"rounds": r, "contexts": summary.contexts,
                                                      "short_pool": summary.short_pool})
    return summary
