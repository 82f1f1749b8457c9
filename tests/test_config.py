"""Configs: every shipped YAML validates, defaults agree, bad keys are named."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from advfilter.core.config import Config, load_config, parse_override
from advfilter.lm.config import EvaluateConfig, FinetuneConfig, SweepConfig
from advfilter.core.errors import ConfigError
from discriminators import check_sections, discriminators
from generators import check_sections as check_generator_sections
from generators import generators

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))
SCHEMAS = {"default.yaml": Config, "finetune_phi2.yaml": FinetuneConfig, "evaluate.yaml": EvaluateConfig,
           "wikihow.yaml": Config, "sweep_phi2.yaml": SweepConfig}
OVERLAYS = {"wikihow.yaml"}  # merged over the defaults: only the keys a domain changes


def load_shipped(path: Path):
    """A shipped YAML validated whole: its schema, and each generator's and discriminator's
    own section."""
    cfg = load_config(path, schema=SCHEMAS[path.name])
    if isinstance(cfg, Config):
        check_sections(cfg.filter.discriminator)
        check_generator_sections(cfg.generate)
    return cfg


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_validates_with_no_unknown_key(path):
    assert path.name in SCHEMAS, f"{path.name}: add its schema to SCHEMAS"
    load_shipped(path)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_opens_with_the_command_that_runs_it(path):
    lines = path.read_text().splitlines()
    assert lines[1].startswith("#   advfilter ")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_a_misspelt_key_in_a_shipped_config_is_named(path, tmp_path):
    tree = yaml.safe_load(path.read_text())
    section = "filter" if "filter" in tree else None
    (tree[section] if section else tree)["bogus_key"] = 1
    bad = tmp_path / path.name
    bad.write_text(yaml.safe_dump(tree))
    with pytest.raises(ConfigError, match=r"bogus_key: Extra inputs"):
        load_shipped(bad)


def test_a_misspelt_key_in_a_discriminator_section_is_named():
    cfg = load_config(None, {"filter.discriminator.bert.learning_rate": 1e-5})
    with pytest.raises(ConfigError, match=r"filter.discriminator.bert.learning_rate: Extra inputs"):
        check_sections(cfg.filter.discriminator)


@pytest.mark.parametrize("path", [p for p in CONFIGS if p.name not in OVERLAYS], ids=lambda p: p.name)
def test_shipped_yaml_spells_out_the_built_in_defaults(path):
    tree = yaml.safe_load(path.read_text())
    if SCHEMAS[path.name] is not Config:
        assert tree == SCHEMAS[path.name]().model_dump()
        return
    sections = {("discriminator", name): values for name, values in tree["filter"].pop("discriminator").items()}
    sections |= {("generator", name): tree["generate"].pop(name) for name in generators.names()
                 if name in tree["generate"]}
    built_in = Config().model_dump()
    built_in["filter"].pop("discriminator")
    assert tree == built_in
    for (kind, name), values in sections.items():  # each listed knob at its component's default
        registry = discriminators if kind == "discriminator" else generators
        defaults = registry.get(name).Config().model_dump()
        assert {k: defaults[k] for k in values} == values, name


def test_a_misspelt_key_in_a_generator_section_is_named():
    cfg = load_config(None, {"generate.lstm.hidden_size": 64})
    with pytest.raises(ConfigError, match=r"generate.lstm.hidden_size: Extra inputs"):
        check_generator_sections(cfg.generate)


def test_a_section_for_no_generator_is_named_with_the_generators():
    cfg = load_config(None, {"generate.lsmt.hidden_dim": 64})
    with pytest.raises(ConfigError, match=r"generate.lsmt: neither a generate setting .*lstm"):
        check_generator_sections(cfg.generate)


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


README = Path(__file__).parent.parent / "README.md"


def built_in_default(key: str):
    """The default of dotted ``key``, through generator and discriminator sections."""
    parts = key.split(".")
    if parts[0] == "generate" and parts[1] in generators.names():
        value, rest = generators.get(parts[1]).Config(), parts[2:]
    elif parts[:2] == ["filter", "discriminator"]:
        value, rest = discriminators.get(parts[2]).Config(), parts[3:]
    else:
        value, rest = Config(), parts
    for part in rest:
        value = getattr(value, part)
    return value


def readme_defaults() -> list[tuple[str, str]]:
    """(key, default) of each row of the README's tables headed ``| setting | default |``."""
    rows, in_table = [], False
    for line in README.read_text().splitlines():
        if line.startswith("| setting | default |"):
            in_table = True
        elif not line.startswith("|"):
            in_table = False
        elif in_table and not line.startswith("|---"):
            key, default = (cell.strip().strip("`") for cell in line.split("|")[1:3])
            rows.append((key, default))
    return rows


def test_the_readme_has_a_table_of_defaults():
    assert len(readme_defaults()) >= 10


@pytest.mark.parametrize("key,default", readme_defaults(), ids=[k for k, _ in readme_defaults()])
def test_the_readme_tables_of_defaults_match_the_config(key, default):
    assert yaml.safe_load(default) == built_in_default(key)


def test_default_yaml_documents_every_component_with_settings():
    tree = yaml.safe_load((Path(__file__).parent.parent / "configs" / "default.yaml").read_text())
    for name in generators.names():
        if generators.get(name).Config.model_fields:
            assert name in tree["generate"], f"configs/default.yaml: no generate.{name} section"
    for name in discriminators.names():
        assert name in tree["filter"]["discriminator"], f"configs/default.yaml: no filter.discriminator.{name}"
