"""Contexts per second on a generated 20k-sentence corpus: batched nlp.pipe vs one nlp() each.

Run by hand: ``python benchmarks/bench_contexts.py [--sentences 20000]``. The last line is one
JSON object with ``batched_cps`` and ``single_cps`` (contexts per second) and their ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

from advfilter.core.config import Config
from advfilter.pipeline.contexts import contexts_from_records
from advfilter.sources.demo import make_corpus
from advfilter.core.nlp import load_pipeline
from advfilter.sources import Story


class OneCallPerSentence:
    """Presents ``nlp.pipe``'s interface but parses each sentence with its own ``nlp()`` call."""

    def __init__(self, nlp) -> None:
        self.nlp = nlp
        self.meta = nlp.meta  # the parser's name, as the contexts table records it

    def pipe(self, texts, as_tuples: bool, batch_size: int):
        for text, context in texts:
            yield self.nlp(text), context


def corpus_of(sentences: int) -> list[Story]:
    """Demo-style stories totalling at least ``sentences`` sentences."""
    stories, total, videos = [], 0, max(sentences // 4, 1)
    while total < sentences:
        for video_id, video in make_corpus(videos, seed=len(stories)).items():
            stories.append(Story("activitynet", f"{len(stories)}-{video_id}", video["activity_label"],
                                 tuple(s.strip() for s in video["sentences"]), "bench.json"))
            total += len(video["sentences"])
            if total >= sentences:
                break
    return stories


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that it runs (CI)")
    args = parser.parse_args()
    if args.quick:
        args.sentences = 300
    cfg = Config()
    nlp = load_pipeline(cfg.contexts.spacy_model, cfg.contexts.spacy_fallbacks)
    stories = corpus_of(args.sentences)
    figures = {}
    for name, parser_ in [("batched", nlp), ("single", OneCallPerSentence(nlp))]:
        start = time.perf_counter()
        table, _ = contexts_from_records(stories, cfg, parser_)
        seconds = time.perf_counter() - start
        figures[f"{name}_cps"] = round(len(table) / seconds, 1)
        print(f"{name}: {len(table)} contexts from {sum(len(s.sentences) for s in stories)} "
              f"sentences in {seconds:.1f} s")
    figures["ratio"] = round(figures["batched_cps"] / figures["single_cps"], 2)
    figures["machine"] = f"{platform.machine()} {os.cpu_count()} cores, batch {cfg.contexts.batch_size}"
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
