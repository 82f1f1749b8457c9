"""Typed run configuration: YAML file + dotted ``--set section.key=value`` overrides.

Unknown keys and wrong types are rejected before any model loads, with the dotted key in the
message. The resolved config is stored in the run's manifest.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from advfilter.core.errors import ConfigError
from advfilter.core.run_settings import AnnotateConfig, ContaminationConfig, ExportConfig
from advfilter.core.settings import ContextsConfig, FilterConfig, GenerateConfig, ProbeConfig, SourcesConfig, Strict


class Config(Strict):
    """The whole resolved configuration of a run."""

    seed: int = 0
    sources: SourcesConfig = SourcesConfig()
    contexts: ContextsConfig = ContextsConfig()
    generate: GenerateConfig = GenerateConfig()
    filter: FilterConfig = FilterConfig()
    export: ExportConfig = ExportConfig()
    probe: ProbeConfig = ProbeConfig()
    contamination: ContaminationConfig = ContaminationConfig()
    annotate: AnnotateConfig = AnnotateConfig()


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for key in parents:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted!r}: {key!r} is not a section")
        node = child
    node[leaf] = value


def _merge(tree: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(tree.get(key), dict):
            _merge(tree[key], value)
        else:
            tree[key] = value


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``section.key=value`` into the dotted key and its YAML-parsed value."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r}: expected section.key=value")
    return key.strip(), yaml.safe_load(raw)


S = TypeVar("S", bound=BaseModel)


PRESETS = Path(__file__).resolve().parent.parent / "presets"


def preset_names() -> list[str]:
    """The presets shipped with advfilter (``advfilter/presets/NAME.yaml``)."""
    return sorted(p.stem for p in PRESETS.glob("*.yaml"))


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None,
                base: dict[str, Any] | None = None, schema: type[S] = Config,
                preset: str | None = None) -> S:
    """Build a config of type ``schema`` (default: a run's ``Config``) from ``base`` (e.g. a
    run's stored config), a ``preset`` (one of ``preset_names``), an optional YAML file and
    dotted overrides, later ones winning.

    Raises ConfigError naming the file and the dotted key for unknown keys or bad values.
    """
    tree: dict[str, Any] = json.loads(json.dumps(base or {}))  # a deep copy
    where = "config"
    if preset is not None:
        if preset not in preset_names():
            raise ConfigError(f"--preset {preset}: no such preset; choose one of: {', '.join(preset_names())}")
        _merge(tree, yaml.safe_load((PRESETS / f"{preset}.yaml").read_text()))
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
        _merge(tree, loaded or {})
    for key, value in (overrides or {}).items():
        _set_dotted(tree, key, value)
    try:
        return schema.model_validate(tree)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise ConfigError(f"{where}: {key}: {first['msg']}") from None
