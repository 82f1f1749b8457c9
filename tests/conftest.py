"""Shared fixtures: one real spaCy pipeline per session, file writers, the CLI runner."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import CliRunner

from advfilter.config import Config
from advfilter.nlp import load_pipeline


@pytest.fixture(scope="session")
def nlp():
    """The real spaCy pipeline the default config resolves to."""
    cfg = Config().contexts
    return load_pipeline(cfg.spacy_model, cfg.spacy_fallbacks)


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
    from advfilter.tiny import build_tiny_phi

    return build_tiny_phi(tmp_path_factory.mktemp("tiny-phi"))
