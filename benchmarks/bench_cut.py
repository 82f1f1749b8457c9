"""Agreement of the context/ending cut with HellaSwag's own on real ActivityNet captions.

Run by hand: ``python benchmarks/bench_cut.py [--data ../shared/data/anet_dev]``. The folder's
``hellaswag_split.jsonl`` holds HellaSwag's ``ctx_b`` and ``gold`` per video, ``captions.json``
the real second caption (HellaSwag lower-cased its ``ctx_b``); we cut the caption with the
default pipeline and compare. A sentence we find no subject in counts as a disagreement. ``exact``: same ending; ``lenient``: the same
ending but for a leading adverbial HellaSwag cut off and we keep with the subject ("Then, the
man" | "walks" vs "then" | "the man walks" is counted there too). Prints disagreements with
``--show N``; the last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import time
from pathlib import Path

from advfilter.core.config import Config
from advfilter.core.nlp import load_pipeline
from advfilter.pipeline.cut import analyse

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "anet_dev"


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"\s+([,.!?;:])", r"\1", text)).strip().lower()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--show", type=int, default=0, help="print this many disagreements")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that it runs (CI)")
    args = parser.parse_args()
    rows = [json.loads(line) for line in (args.data / "hellaswag_split.jsonl").read_text().splitlines()
            if line.strip()][:100 if args.quick else None]
    captions = json.loads((args.data / "captions.json").read_text())
    rows = [r for r in rows if r["ctx_b"].strip() and r["video_id"] in captions]
    cfg = Config().contexts
    nlp = load_pipeline(cfg.spacy_model, cfg.spacy_fallbacks)
    start = time.perf_counter()
    texts = [captions[r["video_id"]]["sentences"][1].strip() for r in rows]
    exact = lenient = none = 0
    shown = 0
    for r, text, doc in zip(rows, texts, nlp.pipe(texts, batch_size=256)):
        parsed = analyse(doc)
        if parsed.cut is None:
            none += 1
            continue
        ours, theirs = norm(text[parsed.cut:]), norm(r["gold"])
        if ours == theirs:
            exact += 1
            lenient += 1
        elif theirs.endswith(ours) and not ours == "":
            lenient += 1  # HellaSwag's ending also holds a leading adverbial + subject
        elif shown < args.show:
            shown += 1
            print(f"ours  : {text[:parsed.cut].strip()} | {text[parsed.cut:].strip()}")
            print(f"theirs: {r['ctx_b'].strip()} | {r['gold'].strip()}\n")
    n = len(rows)
    print(json.dumps({"pairs": n, "exact": round(exact / n, 4), "lenient": round(lenient / n, 4),
                      "no_cut": round(none / n, 4), "seconds": round(time.perf_counter() - start, 1),
                      "parser": f"{nlp.meta.get('lang')}_{nlp.meta.get('name')}-{nlp.meta.get('version')}",
                      "machine": f"{platform.machine()} {os.cpu_count()} cores"}))


if __name__ == "__main__":
    main()
