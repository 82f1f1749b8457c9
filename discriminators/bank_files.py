"""The bank on disk: each input built in parts of whole contexts, then one folder of arrays.

An input whose feature is ``sliceable`` (its result on a slice of the contexts is that slice
of its result on all of them: word pieces, POS tags, frozen-encoder embeddings) is built in
parts of about ``PART_ROWS`` rows, fixed by the run's offsets alone; each finished part is a
file (``<key>.parts/part-XXXXX.npz``, written atomically), so a killed build resumes where it
stopped and the parts can be built anywhere (Ray workers: ``Bank(..., map=...)``). Once every
part exists they are streamed into ``<key>/`` (one ``.npy`` per array, ``meta.json``),
whose per-row arrays are then read memory-mapped: a round touches only the rows it asks for.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from advfilter.core.store import atomic_dir, atomic_path
from discriminators.inputs import Arrays, Corpus, Input, features

PART_ROWS = 65536
# Map(fn, jobs, on_device): fn(*job) for every job, yielded as (job index, result) in any
# order; on_device: the jobs run a model (a GPU each where there are GPUs)
Map = Callable[[Callable[..., Any], list[tuple[Any, ...]], bool], Iterator[tuple[int, Any]]]
SLICEABLE: dict[str, bool] = {}  # feature name -> whether it runs an encoder (on a device)


def sliceable(name: str, on_device: bool = False) -> Callable[[Callable[..., Arrays]], Callable[..., Arrays]]:
    """Register feature ``name`` as sliceable (see the module docstring); ``on_device``: it
    runs a model, on a GPU where one is given."""

    def add(fn: Callable[..., Arrays]) -> Callable[..., Arrays]:
        SLICEABLE[name] = on_device
        return features.register(name)(fn)

    return add


def in_process(fn: Callable[..., Any], jobs: list[tuple[Any, ...]], on_device: bool = False
               ) -> Iterator[tuple[int, Any]]:
    """The default ``Map``: one job after another, here."""
    for i, job in enumerate(jobs):
        yield i, fn(*job)


def plan_parts(offsets: np.ndarray, rows_per_part: int | None = None) -> list[tuple[int, int]]:
    """Context ranges ``[start, end)``: a part starts at each context whose first row opens a
    new block of ``rows_per_part`` (``PART_ROWS``) rows, so parts depend on the offsets alone."""
    blocks = offsets[:-1] // (rows_per_part or PART_ROWS)
    starts = np.flatnonzero(np.diff(blocks, prepend=-1)).tolist()
    return list(zip(starts, [*starts[1:], len(offsets) - 1]))


def build_part(inp: Input, corpus: Corpus) -> Arrays:
    """``inp``'s arrays over ``corpus`` (a part of the run's)."""
    return features.get(inp.feature)(corpus, **dict(inp.params))


def save_arrays(path: Path, arrays: Arrays) -> None:
    """``arrays`` as one ``.npz`` file, written whole or not at all."""
    flat = {f"rows.{k}": v for k, v in arrays.rows.items()}
    flat |= {f"contexts.{k}": v for k, v in arrays.contexts.items()}
    flat |= {f"meta.{k}": np.asarray(v) for k, v in arrays.meta.items()}
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **flat)


def load_arrays(path: Path) -> Arrays:
    """An ``.npz`` written by ``save_arrays`` (a part, or a whole input of an older run)."""
    out = Arrays()
    with np.load(path, allow_pickle=False) as data:
        for name in data.files:
            part, key = name.split(".", 1)
            value = data[name]
            if part == "meta":
                out.meta[key] = value.item()
            else:
                getattr(out, part)[key] = value
    return out


def build_input(inp: Input, corpus: Corpus, folder: Path, map_fn: Map,
                progress: Callable[[Iterable[Any], int, str], Iterable[Any]]) -> None:
    """Build ``inp`` into ``folder``: its missing parts through ``map_fn``, then one folder."""
    offsets = corpus.rows.offsets
    parts = (plan_parts(offsets) if inp.feature in SLICEABLE else [(0, len(offsets) - 1)])
    where = folder.with_name(f"{folder.name}.parts")
    where.mkdir(parents=True, exist_ok=True)
    paths = [where / f"part-{i:05d}.npz" for i in range(len(parts))]
    todo = [i for i, p in enumerate(paths) if not p.exists()]
    jobs = [(inp, corpus.part(*parts[i])) for i in todo]
    built = map_fn(build_part, jobs, SLICEABLE.get(inp.feature, False))
    for k, arrays in progress(built, len(jobs), f"bank: {inp.feature}"):
        save_arrays(paths[todo[k]], arrays)
    _assemble(folder, paths)
    shutil.rmtree(where)


def _assemble(folder: Path, paths: list[Path]) -> None:
    """Stream the parts into one ``.npy`` per array (never all in memory at once)."""
    first = load_arrays(paths[0])
    sizes = {"rows": 0, "contexts": 0}
    for path in paths:
        with np.load(path) as data:
            for kind in sizes:
                names = [n for n in data.files if n.startswith(f"{kind}.")]
                sizes[kind] += len(data[names[0]]) if names else 0
    with atomic_dir(folder) as tmp:
        outs = {f"{kind}.{k}": np.lib.format.open_memmap(tmp / f"{kind}.{k}.npy", mode="w+", dtype=v.dtype,
                                                         shape=(sizes[kind], *v.shape[1:]))
                for kind in sizes for k, v in getattr(first, kind).items()}
        at = {"rows": 0, "contexts": 0}
        for path in paths:
            part = load_arrays(path)
            if part.meta != first.meta:
                raise ValueError(f"{path}: meta {part.meta} differs from the first part's {first.meta}")
            for kind in sizes:
                arrays = getattr(part, kind)
                for k, v in arrays.items():
                    outs[f"{kind}.{k}"][at[kind]:at[kind] + len(v)] = v
                at[kind] += len(next(iter(arrays.values()))) if arrays else 0
        for out in outs.values():
            out.flush()
        del outs
        (tmp / "meta.json").write_text(json.dumps(first.meta))


def load_folder(folder: Path) -> Arrays:
    """An input's folder: per-row arrays memory-mapped, per-context ones in memory."""
    out = Arrays(meta=json.loads((folder / "meta.json").read_text()))
    for path in sorted(folder.glob("*.npy")):
        kind, key = path.stem.split(".", 1)
        if kind == "rows":
            out.rows[key] = np.load(path, mmap_mode="r")
        else:
            out.contexts[key] = np.load(path)
    return out
