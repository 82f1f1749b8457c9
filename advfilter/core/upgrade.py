"""Manifests written by older versions, brought to today's layout when a run is opened.

A run records its config and, per stage, the settings its outputs depend on, with their
fingerprint. When a setting is renamed or moves, an older run's record is rewritten here, so
it still opens, is reused and extends as before. Each step is the whole of one change:

1. (December 2026) ``filter.split`` became ``filter.holdout`` and
   ``sources.activitynet.split`` became ``sources.activitynet.captions`` ("split" now means
   train / validation / test only); the candidates stage records the sections of the
   generators it ran only (it recorded ``lstm``, ``hf`` and ``retrieval`` whatever ran); an
   ``annotate.flag_votes`` above ``annotate.overlap`` (the old defaults, 2 and 1, under which
   no distractor could be replaced) becomes the new default: more than half of the answers.
2. (December 2026) ``filter.strong`` (a cross-encoder driving the last rounds) is on by
   default; a run made before it continues as it was made, without one
   (``filter.strong.discriminator: null`` in its config; ask for one with ``--set``).
3. (December 2026) ``generate.verb_number`` (drop candidates whose leading verb disagrees in
   number with the gold's): a run made before it checked nothing, which is the setting's
   default (false), so its candidates stage records it as false and is reused as it is.
"""
from __future__ import annotations

import copy
from typing import Any

LAYOUT = 4  # the manifest layout this version writes (``manifest["layout"]``)

# Layout 1's generator sections, and which spec parts ran each.
_V1_SECTIONS = {"lstm": ("lstm",), "retrieval": ("retrieval",), "hf": ("phi2", "hf")}


def _rename(tree: dict[str, Any] | None, section: str, old: str, new: str) -> None:
    node = tree
    for part in section.split(".") if section else []:
        node = (node or {}).get(part)
    if isinstance(node, dict) and old in node:
        node[new] = node.pop(old)


def _v1_generate(settings: dict[str, Any]) -> dict[str, Any]:
    ran = {part.strip().partition(":")[0] for part in str(settings.get("generator", "")).split(",")}
    return {k: v for k, v in settings.items()
            if k not in _V1_SECTIONS or ran & set(_V1_SECTIONS[k])}


def _from_v1(manifest: dict[str, Any]) -> None:
    config = manifest.get("config")
    _rename(config, "filter", "split", "holdout")
    _rename(config, "sources.activitynet", "split", "captions")
    annotate = (config or {}).get("annotate", {})
    if (annotate.get("flag_votes") or 0) > annotate.get("overlap", 2):
        annotate["flag_votes"] = None
    stages = manifest.get("stages", {})
    candidates = stages.get("candidates", {}).get("depends_on", {})
    if "generate" in candidates:
        candidates["generate"] = _v1_generate(candidates["generate"])
    _rename(stages.get("filter", {}).get("depends_on"), "filter", "split", "holdout")


def _from_v2(manifest: dict[str, Any]) -> None:
    config = manifest.get("config")
    if config is not None:
        config.setdefault("filter", {}).setdefault("strong", {})["discriminator"] = None


def _from_v3(manifest: dict[str, Any]) -> None:
    config = manifest.get("config")
    if config is not None:
        config.setdefault("generate", {}).setdefault("verb_number", False)
    generate = manifest.get("stages", {}).get("candidates", {}).get("depends_on", {}).get("generate")
    if generate is not None:
        generate.setdefault("verb_number", False)


_STEPS = ((1, _from_v1), (2, _from_v2), (3, _from_v3))  # (the layout a step upgrades from, the step)


def upgrade(manifest: dict[str, Any], fingerprint: Any) -> dict[str, Any]:
    """``manifest`` in today's layout (a copy; the same object when it already is). Stage
    fingerprints are recomputed with ``fingerprint`` (the store's), upstream first, so a
    stage that depends on an upgraded one still matches it."""
    if not manifest or manifest.get("layout", 1) >= LAYOUT:
        return manifest
    layout = manifest.get("layout", 1)
    manifest = copy.deepcopy(manifest)
    for since, step in _STEPS:
        if layout <= since:
            step(manifest)
    stages = manifest.get("stages", {})
    for name, upstream in (("contexts", None), ("candidates", "contexts"), ("filter", "candidates")):
        entry = stages.get(name)
        if entry is None:
            continue
        if upstream in stages:
            entry["depends_on"][upstream] = stages[upstream]["fingerprint"]
        entry["fingerprint"] = fingerprint(entry["depends_on"])
    manifest["layout"] = LAYOUT
    return manifest
