"""Configs: every shipped YAML validates, defaults agree, bad keys are named."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from advfilter.config import Config, load_config, parse_override
from advfilter.errors import ConfigError

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_validates(path):
    load_config(path)


def test_default_yaml_spells_out_the_built_in_defaults():
    assert yaml.safe_load(Path(CONFIGS[0].parent / "default.yaml").read_text()) == \
        Config().model_dump()


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("contexts:\n  fold: 3\n")
    with pytest.raises(ConfigError, match=r"c.yaml: contexts.fold: Extra inputs"):
        load_config(path)


def test_wrong_type_in_override_is_named():
    with pytest.raises(ConfigError, match="contexts.folds"):
        load_config(None, {"contexts.folds": "many"})


def test_inconsistent_bounds_are_rejected():
    with pytest.raises(ConfigError, match="min_ending_tokens is larger"):
        load_config(None, {"contexts.min_ending_tokens": 30})


def test_override_values_are_parsed_as_yaml():
    assert parse_override("contexts.folds=3") == ("contexts.folds", 3)
    assert parse_override("contexts.spacy_fallbacks=[a, b]") == ("contexts.spacy_fallbacks", ["a", "b"])
    with pytest.raises(ConfigError, match="expected section.key=value"):
        parse_override("contexts.folds")
