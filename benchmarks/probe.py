"""A held-out probe outside the AF ensemble: TF-IDF + logistic regression on the endings.

Run by hand on a filtered run: ``python benchmarks/probe.py --run runs/demo``. For round 0 (the
random assignment) and the last round it trains the probe on half of the exported items
(gold = 1, negatives = 0), picks the top-scored ending of each item in the other half, and
prints the accuracy; the last line is one JSON object with ``round0_acc`` and ``final_acc``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from advfilter.core.layout import items, last_round
from advfilter.core.store import RunStore


def probe_accuracy(records: list[dict], seed: int = 0) -> float:
    """Accuracy of the probe on a random half of ``records``, trained on the other half."""
    order = np.random.default_rng(seed).permutation(len(records))
    half = len(order) // 2
    train = [records[i] for i in order[:half]]
    test = [records[i] for i in order[half:]]
    texts = [e for r in train for e in r["endings"]]
    labels = [int(j == r["label"]) for r in train for j in range(len(r["endings"]))]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    model = LogisticRegression(max_iter=2000, C=4.0).fit(vectorizer.fit_transform(texts), labels)
    correct = 0
    for r in test:
        scores = model.decision_function(vectorizer.transform(r["endings"]))
        correct += int(np.argmax(scores) == r["label"])
    return correct / len(test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    args = parser.parse_args()
    run = RunStore(args.run)
    final = last_round(run)
    figures = {}
    for name, r in (("round0", 0), ("final", final)):
        records = list(items(run, r))
        figures[f"{name}_acc"] = round(probe_accuracy(records), 4)
        print(f"round {r}: probe accuracy {figures[f'{name}_acc']:.3f} on {len(records) // 2} held-out items")
    figures.update(final_round=final, chance=round(1 / len(records[0]["endings"]), 4))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
