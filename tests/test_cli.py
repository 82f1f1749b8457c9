"""The command line: the generate contract, one-line errors with exit code 2, honest stubs."""
from __future__ import annotations

import click
import pandas as pd
import pytest

from advfilter.cli import expand_multi_value, main
from advfilter.cli.options import SettingOption, shown, default_of, shortcuts
from advfilter.sources.demo import DEMO_CORPUS
from conftest import anet_video
from discriminators import discriminators

VIDEO = anet_video("A woman is standing in a kitchen next to a stove.",
                   "The woman in an apron cracks two eggs into a bowl.")


def test_generate_on_the_demo_corpus_writes_contexts_and_prints_a_summary(runner, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(main, ["generate", "--source", "activitynet", "--input",
                                  str(DEMO_CORPUS), "--out", str(out), "--stage", "contexts"])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out / "contexts.parquet")
    assert {"id", "source", "video_id", "fold", "activity_label", "ctx_a", "ctx_b",
            "ending"} <= set(table.columns)
    assert f"contexts: {len(table)} from" in result.stdout
    assert "skipped pairs:" in result.stdout


def test_several_inputs_follow_one_flag(runner, write, tmp_path):
    a, b = write("a.json", {"v1": VIDEO}), write("b.json", {"v2": VIDEO})
    result = runner.invoke(main, ["generate", "--input", str(a), str(b), "--out", str(tmp_path / "r"),
                                  "--stage", "contexts"])
    assert result.exit_code == 0, result.output
    assert set(pd.read_parquet(tmp_path / "r" / "contexts.parquet")["input_file"]) == {"a.json", "b.json"}


def test_multi_value_flags_are_expanded_until_the_next_option():
    assert expand_multi_value(["generate", "--input", "a", "b", "--out", "r", "--seed", "-1"]) == \
        ["generate", "--input", "a", "--input", "b", "--out", "r", "--seed", "-1"]


def test_bad_input_is_one_line_with_exit_2_and_no_run_directory(runner, write, tmp_path):
    bad = write("val_1.json", {"v_9": {"timestamps": [[0, 1]], "sentences": ["a", "b"]}})
    result = runner.invoke(main, ["generate", "--input", str(bad), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert result.stderr == f"error: {bad}: video v_9: 1 timestamps but 2 sentences\n"
    assert not (tmp_path / "r").exists()


def test_unknown_source_is_refused_with_the_valid_names(runner, write, tmp_path):
    result = runner.invoke(main, ["generate", "--source", "youtube", "--input",
                                  str(write("a.json", {})), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "activitynet" in result.stderr


def test_rerun_with_other_settings_is_one_line_and_exit_2(runner, write, tmp_path):
    args = ["generate", "--input", str(write("a.json", {"v1": VIDEO})), "--out", str(tmp_path / "r"),
            "--stage", "contexts"]
    assert runner.invoke(main, args).exit_code == 0
    result = runner.invoke(main, [*args, "--folds", "3"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "changed: contexts" in result.stderr
    assert runner.invoke(main, [*args, "--folds", "3", "--overwrite"]).exit_code == 0


def test_bad_override_is_one_line_and_exit_2(runner, write, tmp_path):
    result = runner.invoke(main, ["generate", "--input", str(write("a.json", {"v1": VIDEO})),
                                  "--out", str(tmp_path / "r"), "--set", "contexts.fold=3"])
    assert result.exit_code == 2 and "contexts.fold" in result.stderr


def command_paths(group: click.Group = main, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and subcommand of the CLI, as the words that call it."""
    paths = [prefix]
    for name, command in sorted(group.commands.items()):
        paths += command_paths(command, (*prefix, name)) if isinstance(command, click.Group) else [(*prefix, name)]
    return paths


@pytest.mark.parametrize("command", command_paths(), ids=lambda c: " ".join(c) or "advfilter")
def test_every_command_and_subcommand_has_help(runner, command):
    result = runner.invoke(main, [*command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.stdout


@pytest.mark.parametrize("command", command_paths(), ids=lambda c: " ".join(c) or "advfilter")
def test_a_setting_flag_shows_its_config_key_and_the_default_of_that_key(runner, command):
    target = main
    for word in command:
        target = target.commands[word]
    for option in (p for p in target.params if isinstance(p, SettingOption)):
        record = " ".join(option.get_help_record(click.Context(target))[1].split())
        default = " ".join(shown(default_of(option.schema, option.key)).split())
        assert f"(config: {option.key}; default {default})" in record, record


def test_help_names_the_config_default_and_the_registry(runner):
    help_text = " ".join(runner.invoke(main, ["filter", "--help"]).stdout.split())
    assert "(config: filter.max_swaps; default 3)" in help_text
    assert f"One of: {', '.join(discriminators.names())}." in help_text


def test_generate_split_is_the_older_name_of_captions():
    command = main.commands["generate"]
    for flag in ("--captions", "--split"):
        ctx = command.make_context("generate", [flag, "val_2"])
        assert shortcuts(ctx) == {"sources.activitynet.captions": "val_2"}


def test_videos_without_an_activity_label_are_counted_and_named_in_one_line(runner, write, tmp_path):
    unlabelled = anet_video("A woman is standing in a kitchen next to a stove.",
                            "The woman in an apron cracks two eggs into a bowl.", label="")
    corpus = write("a.json", {"v1": VIDEO, "v_nolabel": unlabelled})
    result = runner.invoke(main, ["generate", "--input", str(corpus), "--out", str(tmp_path / "r"), "--stage",
                                  "contexts", "--set", "sources.activitynet.fetch_labels=false"])
    assert result.exit_code == 0, result.output
    [line] = [x for x in result.stderr.splitlines() if "no activity label" in x]
    assert "1 videos have no activity label (v_nolabel)" in line


def test_an_item_without_an_activity_label_is_asked_its_context_alone():
    from advfilter.core.lm import to_doc

    doc = to_doc({"activity_label": "", "ctx_a": "A man walks in.", "ctx_b": "he", "endings": ["sits."], "label": 0})
    assert doc.query == "A man walks in. He"
