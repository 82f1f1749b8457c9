"""What annotators see: the labeling config and one task per item, endings shuffled.

The annotator picks the most likely ending (``best``) and may flag each ending as "also
plausible" or "ungrammatical/nonsense" (``flags_a``, ``flags_b``, ...), the questions of
SWAG's crowd template. Task data carries the run id, context id, round and the shown order
of the exported endings, so every answer maps back exactly; it never carries the gold.
"""
from __future__ import annotations

from typing import Any, Iterable
from xml.sax.saxutils import quoteattr

import numpy as np

from advfilter.core.seeds import derive_seed

PLAUSIBLE, NONSENSE = "also plausible", "ungrammatical/nonsense"


def letters(k: int) -> list[str]:
    return [chr(ord("A") + i) for i in range(k)]


def label_config(k: int) -> str:
    """Label Studio XML for items with ``k`` endings."""
    parts = ['<View>', '  <Header value="What happens next? Read the context, then the endings."/>',
             '  <Text name="context" value="$context"/>']
    for letter in letters(k):
        low = letter.lower()
        parts += [f'  <Header value={quoteattr(letter)} size="5"/>',
                  f'  <Text name="ending_{low}" value="$ending_{low}"/>',
                  f'  <Choices name="flags_{low}" toName="ending_{low}" choice="multiple" showInline="true">',
                  f'    <Choice value={quoteattr(PLAUSIBLE)}/>', f'    <Choice value={quoteattr(NONSENSE)}/>',
                  '  </Choices>']
    parts += ['  <Header value="Which ending is the most likely continuation?"/>',
              '  <Choices name="best" toName="context" choice="single" showInline="true" required="true">',
              *[f'    <Choice value="{letter}"/>' for letter in letters(k)], '  </Choices>', '</View>']
    return "\n".join(parts)


def task_key(run_id: str, context_id: str, round_n: int, revision: int = 0) -> str:
    """The identity of a task: pushing the same key twice never creates a second task.
    ``run:context:round`` for an item as filtered, ``run:context:round:revision`` once people
    had a distractor replaced."""
    return f"{run_id}:{context_id}:{round_n}" + (f":{revision}" if revision else "")


def make_task(item: dict[str, Any], run_id: str, seed: int) -> dict[str, Any]:
    """Task data for one exported item; ``order[i]`` is the exported index shown as letter i."""
    k = len(item["endings"])
    rng = np.random.default_rng(derive_seed(seed, "annotate", item["context_id"]))
    order = [int(i) for i in rng.permutation(k)]
    revision = item.get("revision", 0)
    data = {"context": item["ctx"], "run_id": run_id, "context_id": item["context_id"],
            "round": item["round"], "revision": revision, "order": order,
            "key": task_key(run_id, item["context_id"], item["round"], revision)}
    for letter, index in zip(letters(k), order):
        data[f"ending_{letter.lower()}"] = item["endings"][index]
    return data


def read_answer(result: Iterable[dict[str, Any]], order: list[int]) -> dict[str, Any]:
    """One annotation's result, in exported indices: ``choice`` and per-flag index lists."""
    answer: dict[str, Any] = {"choice": None, "plausible": [], "nonsense": []}
    for region in result:
        name, picked = region.get("from_name", ""), region.get("value", {}).get("choices", [])
        if name == "best" and picked:
            answer["choice"] = order[ord(picked[0]) - ord("A")]
        elif name.startswith("flags_"):
            index = order[ord(name[-1].upper()) - ord("A")]
            answer["plausible"] += [index] if PLAUSIBLE in picked else []
            answer["nonsense"] += [index] if NONSENSE in picked else []
    return answer
