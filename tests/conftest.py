"""Shared fixtures: one real spaCy pipeline per session, file writers, the CLI runner."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import CliRunner

from advfilter.core.config import Config
from advfilter.core.nlp import load_pipeline


@pytest.fixture(scope="session")
def nlp():
    """The real spaCy pipeline the default config resolves to."""
    cfg = Config().contexts
    return load_pipeline(cfg.spacy_model, cfg.spacy_fallbacks)


ANET_DEV = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "anet_dev"


@pytest.fixture(scope="session")
def anet_dev() -> Path:
    """The real ActivityNet calibration captions (``../shared/data/anet_dev``): skipped with a
    reason in a clone outside the workspace, a failure on CI, which always has them."""
    if not (ANET_DEV / "captions.json").exists():
        if os.environ.get("CI"):
            pytest.fail(f"{ANET_DEV} is missing on CI")
        pytest.skip(f"{ANET_DEV} not here (a clone outside the workspace)")
    return ANET_DEV


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, Any], Path]:
    """write(name, content) -> path; dicts/lists become JSON, strings are written as-is."""

    def _write(name: str, content: Any) -> Path:
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        return path

    return _write


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def anet_video(*sentences: str, label: str = "Cooking") -> dict[str, Any]:
    """An ActivityNet Captions record with one-second timestamps in order."""
    return {"duration": float(len(sentences)), "activity_label": label,
            "timestamps": [[i, i + 1] for i in range(len(sentences))],
            "sentences": [f" {s}" for s in sentences]}


@pytest.fixture(scope="session")
def tiny_phi(tmp_path_factory) -> Path:
    """A 2-layer random PhiConfig model with a BPE tokenizer trained on the demo corpus."""
    from advfilter.lm.tiny import build_tiny_phi

    return build_tiny_phi(tmp_path_factory.mktemp("tiny-phi"))


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A tiny random BERT encoder folder (the packaged MiniLM's word pieces)."""
    from advfilter.lm.tiny import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory):
    """A real Label Studio server on a free loopback port, for the whole session."""
    from labelstudio import new_server

    server = new_server(tmp_path_factory.mktemp("label-studio"))
    server.start()
    yield server
    server.stop()


FAST_RUN = {"generate.generator": "random", "generate.num_candidates": 8, "contexts.folds": 2,
            "generate.workers": 2, "filter.discriminators": ["mlp", "bow", "cnn"],
            "filter.discriminator": {name: {"epochs": 1} for name in ("mlp", "bow", "cnn")},
            "filter.ensemble.epochs": 1, "filter.rounds": 3}


@pytest.fixture(scope="session")
def generated_run(tmp_path_factory) -> Path:
    """A generated run (random generator) over a 40-video corpus; copy it before changing it."""
    from advfilter.core.config import load_config
    from advfilter.pipeline.contexts import build_contexts
    from advfilter.sources.demo import make_corpus
    from advfilter.pipeline.generate import generate_candidates
    from advfilter.core.store import RunStore

    root = tmp_path_factory.mktemp("generated")
    corpus = root / "train.json"
    corpus.write_text(json.dumps(make_corpus(videos=40, seed=2)))
    cfg = load_config(None, FAST_RUN)
    with RunStore.open(root / "run") as run:
        build_contexts(cfg, run, "activitynet", [corpus])
        generate_candidates(cfg, run)
    return root / "run"


@pytest.fixture(scope="session")
def filtered_run(generated_run, tmp_path_factory) -> Path:
    """A copy of ``generated_run`` after one round of filtering, shared by tests that read it
    (exports and reports only add to it)."""
    import shutil

    from advfilter.core.config import load_config
    from advfilter.core.store import RunStore
    from advfilter.pipeline.filter import adversarial_filter

    root = tmp_path_factory.mktemp("filtered") / "run"
    shutil.copytree(generated_run, root)
    adversarial_filter(load_config(None, {**FAST_RUN, "filter.rounds": 1}), RunStore(root))
    return root


@pytest.fixture
def copy_run(tmp_path):
    """copy_run(src) -> RunStore over a private copy of run directory ``src``."""
    import shutil

    from advfilter.core.store import RunStore

    def _copy(src: Path, name: str = "run") -> RunStore:
        shutil.copytree(src, tmp_path / name)
        return RunStore(tmp_path / name)

    return _copy
