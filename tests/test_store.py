"""The run directory: atomic files, no half-made runs, resume and refusal on rerun."""
from __future__ import annotations

import pandas as pd
import pytest

from advfilter.core.config import load_config
from advfilter.pipeline.contexts import CONTEXTS_FILE, build_contexts
from advfilter.core.errors import InputError, RunError
from advfilter.core.store import RunStore, atomic_path
from conftest import anet_video

GOOD = {"v1": anet_video("A woman is standing in a kitchen next to a stove.",
                         "The woman in an apron cracks two eggs into a bowl.")}


def test_a_failed_write_leaves_no_file_under_either_name(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_rewrite_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("new but partial")
        raise RuntimeError
    assert target.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_bad_input_leaves_no_run_directory(tmp_path, write):
    bad = write("bad.json", {"v1": {"sentences": ["x"]}})
    with pytest.raises(InputError), RunStore.open(tmp_path / "run") as run:
        build_contexts(load_config(), run, "activitynet", [bad])
    assert not (tmp_path / "run").exists()


def test_a_crash_while_writing_contexts_leaves_no_run_directory(tmp_path, write, monkeypatch):
    def half_write(self, path, **kwargs):
        path.write_bytes(b"PAR1 partial")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", half_write)
    with pytest.raises(OSError), RunStore.open(tmp_path / "run") as run:
        build_contexts(load_config(), run, "activitynet", [write("a.json", GOOD)])
    assert not (tmp_path / "run").exists()


def run_contexts(root, inputs, **overrides):
    with RunStore.open(root) as run:
        return build_contexts(load_config(None, overrides), run, "activitynet", inputs)


def test_rerun_with_same_settings_reuses_the_stage(tmp_path, write):
    inputs = [write("a.json", GOOD)]
    first = run_contexts(tmp_path / "run", inputs)
    written = (tmp_path / "run" / CONTEXTS_FILE).stat().st_mtime_ns
    again = run_contexts(tmp_path / "run", inputs, **{"contexts.batch_size": 8})
    assert (first.reused, again.reused, again.contexts) == (False, True, 1)
    assert (tmp_path / "run" / CONTEXTS_FILE).stat().st_mtime_ns == written


def test_rerun_with_other_settings_is_refused_naming_them(tmp_path, write):
    inputs = [write("a.json", GOOD)]
    run_contexts(tmp_path / "run", inputs)
    with pytest.raises(RunError, match="changed: contexts"):
        run_contexts(tmp_path / "run", inputs, **{"contexts.folds": 3})


def test_rerun_with_changed_input_is_refused(tmp_path, write):
    run_contexts(tmp_path / "run", [write("a.json", GOOD)])
    changed = write("a.json", {**GOOD, "v2": GOOD["v1"]})
    with pytest.raises(RunError, match="changed: inputs"):
        run_contexts(tmp_path / "run", [changed])


def test_a_foreign_non_empty_directory_is_not_written_into(tmp_path, write):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="has no manifest.json"):
        run_contexts(tmp_path / "run", [write("a.json", GOOD)])


def test_manifest_records_inputs_config_and_versions(tmp_path, write):
    run_contexts(tmp_path / "run", [write("a.json", GOOD)], seed=9)
    manifest = RunStore(tmp_path / "run").manifest
    assert manifest["seed"] == 9 and manifest["config"]["contexts"]["folds"] == 5
    assert len(manifest["inputs"][0]["sha256"]) == 64
    assert {"python", "spacy", "pandas"} <= set(manifest["versions"])
    assert manifest["stages"]["contexts"]["rows"] == 1


# --- folders replaced whole ----------------------------------------------------------------

def test_a_folder_write_that_fails_midway_leaves_the_old_folder_as_it_was(tmp_path):
    from advfilter.core.store import atomic_dir

    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "out") as tmp:
            (tmp / "a.txt").write_text("half")
            raise RuntimeError("killed midway")
    assert (tmp_path / "out" / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_crash_between_the_two_renames_loses_nothing(tmp_path):
    from advfilter.core.store import atomic_dir

    (tmp_path / ".out.old").mkdir()  # what a crash after moving the old folder aside leaves
    (tmp_path / ".out.old" / "a.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "out"):
            raise RuntimeError("the next write fails too")
    assert (tmp_path / "out" / "a.txt").read_text() == "old"
