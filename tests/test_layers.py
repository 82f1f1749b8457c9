"""Layers import downward only, and turning a run into text needs no torch, Ray or spaCy."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from advfilter.core.config import load_config
from advfilter.filtering import adversarial_filter
from conftest import FAST_RUN

ROOT = Path(__file__).parent.parent
COMPONENTS = ("generators", "discriminators", "annotation", "advfilter.sources")


def imports_of(path: Path) -> set[str]:
    """Every module a file imports (absolute imports; this code base uses no relative ones)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def module_files(package: str) -> list[Path]:
    return sorted((ROOT / package.replace(".", "/")).rglob("*.py"))


def ours(name: str) -> bool:
    return name.split(".")[0] in ("advfilter", "generators", "discriminators", "annotation")


@pytest.mark.parametrize("path", module_files("advfilter.core"), ids=lambda p: p.name)
def test_the_bottom_package_imports_nothing_above_it(path):
    above = {m for m in imports_of(path) if ours(m) and not m.startswith("advfilter.core")}
    assert not above, f"{path.name} imports {above}"


@pytest.mark.parametrize("package", COMPONENTS)
def test_components_import_only_the_bottom_package_and_themselves(package):
    for path in module_files(package):
        other = {m for m in imports_of(path) if ours(m) and not m.startswith(("advfilter.core", package))}
        assert not other, f"{path.relative_to(ROOT)} imports {other}"


# Runs export, report and annotate push in a fresh interpreter and lists what got imported.
PROBE = """
import json, sys
from click.testing import CliRunner
from advfilter.cli import main
run, out, url = sys.argv[1:4]
runner = CliRunner()
for args in (["export", "--run", run, "--out", out], ["report", "--run", run],
             ["annotate", "push", "--run", run, "--url", url, "--limit", "2"]):
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
print(json.dumps(sorted(m for m in ("torch", "ray", "spacy") if m in sys.modules)))
"""


def test_export_report_and_annotate_import_neither_torch_ray_nor_spacy(
        generated_run, copy_run, label_studio, tmp_path):
    run = copy_run(generated_run)
    adversarial_filter(load_config(None, {**FAST_RUN, "filter.rounds": 1}), run)
    env = {**os.environ, "LABEL_STUDIO_API_KEY": label_studio.key}
    done = subprocess.run([sys.executable, "-c", PROBE, str(run.root), str(tmp_path / "items.jsonl"),
                           label_studio.url], capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == []
