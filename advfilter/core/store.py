"""The run directory: the only state a run has.

Every file is written atomically (a temp file in the same folder, then ``os.replace``), so a
crash never leaves a partial file under its final name. ``manifest.json`` records the command,
resolved config, seed, package versions, input hashes and, per finished stage, a fingerprint
of everything that stage depended on. A rerun reuses a finished stage whose fingerprint
matches and refuses (``RunError``) when it does not, so configs are never silently mixed.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import sys
import uuid
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Iterator

from advfilter.core.errors import RunError
from advfilter.core.upgrade import LAYOUT, upgrade

MANIFEST = "manifest.json"
_VERSIONED = ("advfilter", "spacy", "torch", "transformers", "pandas", "pyarrow", "numpy", "ray")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temp folder beside ``path``; on success it takes ``path``'s place whole.

    The old folder is moved aside (``.NAME.old``) before the new one is renamed in and deleted
    only after: a failure in the body leaves the old folder as it was, and a crash between the
    two renames leaves it whole beside, put back by the next write."""
    path = Path(path)
    tmp, old = path.with_name(f".{path.name}.tmp-{os.getpid()}"), path.with_name(f".{path.name}.old")
    if old.exists() and not path.exists():
        os.replace(old, path)  # an earlier write died between its two renames
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Atomically write ``rows`` as JSON lines (streamed); returns how many."""
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        for row in rows:
            fh.write(json.dumps(row, sort_keys=True) + "\n")
            n += 1
    return n


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file written by ``write_jsonl`` ([] if it does not exist)."""
    path = Path(path)
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []


def write_json(path: str | Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(obj: Any) -> str:
    """A short stable hash of any JSON-serialisable object (key order does not matter)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages that shape a run's results."""
    versions = {"python": platform.python_version()}
    for name in _VERSIONED:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


class RunStore:
    """A run directory and its manifest.

    Args:
        root: the run directory (``--out`` / ``--run``).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.manifest_path = self.root / MANIFEST
        stored = json.loads(self.manifest_path.read_text()) if self.manifest_path.exists() else {}
        self.manifest: dict[str, Any] = upgrade(stored, fingerprint)  # older runs in today's layout

    def path(self, name: str) -> Path:
        """Path of a file inside the run directory."""
        return self.root / name

    def atomic(self, name: str) -> contextlib.AbstractContextManager[Path]:
        """``atomic_path`` for a file inside the run directory."""
        return atomic_path(self.path(name))

    @classmethod
    @contextlib.contextmanager
    def open(cls, root: str | Path, overwrite: bool = False) -> Iterator["RunStore"]:
        """Open (creating if needed) a run directory for writing.

        A directory this call created is removed again if the body raises before any stage
        finished, so bad input never leaves a half-made run behind. ``overwrite`` wipes an
        existing run first.
        """
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise RunError(f"{root}: exists and is not a directory")
        if overwrite and root.exists():
            shutil.rmtree(root)
        if root.exists() and any(root.iterdir()) and not (root / MANIFEST).exists():
            raise RunError(f"{root}: not empty and has no {MANIFEST}; refusing to write into it")
        created = not root.exists()
        root.mkdir(parents=True, exist_ok=True)
        store = cls(root)
        try:
            yield store
        except BaseException:
            if created and not store.manifest.get("stages"):
                shutil.rmtree(root, ignore_errors=True)
            raise

    @property
    def run_id(self) -> str:
        """A random id given to the run on first use and kept in its manifest."""
        if "run_id" not in self.manifest:
            self.manifest["run_id"] = uuid.uuid4().hex[:12]
            self.save_manifest()
        return self.manifest["run_id"]

    def stage(self, name: str) -> dict[str, Any] | None:
        """The manifest entry of a finished stage, or None."""
        return self.manifest.get("stages", {}).get(name)

    def open_stage(self, name: str, settings: dict[str, Any], after: str | None = None,
                   hint: str = "", redo: str = "use a new --out or pass --overwrite") -> "Stage":
        """The bookkeeping of stage ``name``, in one call.

        ``after`` names the upstream stage, which must have finished (else RunError with
        ``hint``); its fingerprint joins ``settings`` in what this stage depends on. Raises
        RunError if the stage was started or finished with other settings or inputs (naming
        the keys that changed, and ``redo``: how to make it again), so a run never mixes configs.
        """
        depends_on = dict(settings)
        if after is not None:
            upstream = self.stage(after)
            if upstream is None or upstream.get("status") != "done":
                raise RunError(f"{self.root}: no finished {after} stage; {hint}")
            depends_on[after] = upstream["fingerprint"]
        stage = Stage(self, name, depends_on, fingerprint(depends_on))
        done = self.stage(name)
        if done is not None and done["fingerprint"] != stage.fingerprint:
            changed = sorted(key for key in set(depends_on) | set(done["depends_on"])
                             if depends_on.get(key) != done["depends_on"].get(key))
            raise RunError(
                f"{self.root}: stage {name!r} was made with other settings "
                f"(changed: {', '.join(changed) or 'upstream stage'}); {redo}")
        return stage

    def drop_stage(self, name: str) -> None:
        """Forget stage ``name`` (its files are the caller's to remove first)."""
        if self.manifest.get("stages", {}).pop(name, None) is not None:
            self.save_manifest()

    def save_manifest(self) -> None:
        """Write the manifest (atomically), marked with the layout this version writes."""
        self.manifest["layout"] = LAYOUT
        write_json(self.manifest_path, self.manifest)

    def _write_stage(self, name: str, stage_fingerprint: str, depends_on: dict[str, Any],
                     status: str, outputs: dict[str, Any]) -> None:
        self.manifest.setdefault("stages", {})[name] = {
            "fingerprint": stage_fingerprint,
            "depends_on": depends_on,
            "status": status,
            "updated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            **outputs,
        }
        self.save_manifest()

    def record_invocation(self, config: dict[str, Any], inputs: list[dict[str, Any]]) -> None:
        """Store the command line, resolved config, inputs and versions of this invocation."""
        self.manifest.update(
            command=sys.argv,
            config=config,
            seed=config.get("seed"),
            inputs=inputs,
            versions=package_versions(),
        )


@dataclass
class Stage:
    """One stage of a run: what it depends on, and its manifest entry once finished."""

    run: RunStore
    name: str
    depends_on: dict[str, Any]
    fingerprint: str

    @property
    def done(self) -> dict[str, Any] | None:
        """The finished entry made with these settings (reuse it), else None."""
        entry = self.run.stage(self.name)
        finished = entry is not None and entry["status"] == "done"
        return entry if finished and entry["fingerprint"] == self.fingerprint else None

    def begin(self) -> None:
        """Record that the stage started, so partial outputs are tied to its settings."""
        self.run._write_stage(self.name, self.fingerprint, self.depends_on, "running", {})

    def finish(self, outputs: dict[str, Any]) -> None:
        """Record the finished stage and its ``outputs`` in the manifest (atomically)."""
        self.run._write_stage(self.name, self.fingerprint, self.depends_on, "done", outputs)
