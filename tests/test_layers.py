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
from advfilter.pipeline.filter import adversarial_filter
from conftest import FAST_RUN

ROOT = Path(__file__).parent.parent
# Bottom to top. A package imports from the layers below it and from itself; within a layer,
# packages do not import each other.
LAYERS = [["advfilter.core"],
          ["advfilter.sources", "generators", "discriminators", "annotation"],
          ["advfilter.gauges", "advfilter.lm"],
          ["advfilter.pipeline"],
          ["advfilter.cli"]]
PACKAGES = [p for layer in LAYERS for p in layer]


def imports_of(path: Path) -> set[str]:
    """Every module a file imports (absolute imports; this code base uses no relative ones)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def package_of(module: str) -> str | None:
    """The layered package a module belongs to (``advfilter.pipeline.filter`` → ``advfilter.pipeline``)."""
    return next((p for p in PACKAGES if module == p or module.startswith(p + ".")), None)


def allowed(package: str) -> set[str]:
    level = next(i for i, layer in enumerate(LAYERS) if package in layer)
    return {p for layer in LAYERS[:level] for p in layer} | {package}


def test_every_module_of_ours_sits_in_a_layer():
    modules = [p for pkg in ("advfilter", "generators", "discriminators", "annotation")
               for p in (ROOT / pkg).rglob("*.py")]
    loose = [str(p.relative_to(ROOT)) for p in modules
             if package_of(".".join(p.relative_to(ROOT).with_suffix("").parts)) is None
             and p.relative_to(ROOT) != Path("advfilter/__init__.py")]
    assert not loose, loose


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_the_layers_below_it_and_itself(package):
    for path in sorted((ROOT / package.replace(".", "/")).rglob("*.py")):
        found = {package_of(m) for m in imports_of(path)} - {None}
        assert found <= allowed(package), f"{path.relative_to(ROOT)} imports {found - allowed(package)}"


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
