"""Where runs live when the command line names none: ``runs/<source>-<name>`` for a new one,
the most recently finished one for every command that reads a run."""
from __future__ import annotations

import json
import re
from pathlib import Path

from advfilter.core.errors import RunError
from advfilter.core.store import MANIFEST

RUNS_DIR = Path("runs")


def default_run_dir(source: str, name: str, root: Path = RUNS_DIR) -> Path:
    """``runs/<source>-<name>`` (``name``: the split, or the first input's file stem)."""
    return root / f"{source}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', name).strip('_') or 'run'}"


def latest_run(needs: str, root: Path = RUNS_DIR) -> Path:
    """The run under ``root`` whose stage ``needs`` (``candidates``, ``filter``) finished last.

    Raises RunError when there is none: the user then names one with ``--run``.
    """
    finished = []
    for manifest in root.glob(f"*/{MANIFEST}"):
        try:
            stage = json.loads(manifest.read_text()).get("stages", {}).get(needs) or {}
        except (OSError, json.JSONDecodeError):
            continue
        if stage.get("status") == "done":
            finished.append((stage.get("updated", ""), manifest.stat().st_mtime, manifest.parent))
    if not finished:
        raise RunError(f"no run under {root}/ has a finished {needs} stage; pass --run RUN_DIR")
    return max(finished)[2]
