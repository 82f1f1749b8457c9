"""Ray, the only way work is spread: a local runtime by default, a cluster by address.

What a worker may assume about the filesystem: the run directory (and a sweep's output
folder) at the same path as on the driver. Workers read the run's files and write their
shards there, so on a cluster it must be on a filesystem every node mounts (NFS, a shared
volume); ``ray_session`` checks that every node sees it before any work is sent.
"""
from __future__ import annotations

import contextlib
import logging
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

from advfilter.core.errors import RunError


@contextlib.contextmanager
def ray_session(address: str | None, cpus: int, shared: Path | None = None) -> Iterator[None]:
    """Join ``address`` (a cluster) or start a local Ray runtime with ``cpus`` CPUs.

    On a cluster, every node with CPUs must see the folder ``shared`` (RunError naming the
    first that does not). A runtime that is already up is reused and left running.
    """
    import ray

    if ray.is_initialized():
        yield
        return
    if address:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    else:
        # "local": a runtime of our own even when a cluster is already up on this machine (ray
        # would join it, and refuse num_cpus); a cluster is joined only by --ray-address.
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, logging_level=logging.WARNING,
                 log_to_driver=False)
    try:
        if address and shared is not None:
            check_shared(shared)
        yield
    finally:
        ray.shutdown()


def _nodes() -> list[dict]:
    import ray

    return [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) > 0]


def largest_node_cpus() -> int:
    """The most CPUs one node of the connected Ray cluster has: no actor may ask for more."""
    return max([int(n["Resources"]["CPU"]) for n in _nodes()] or [1])


def _reads(path: str, token: str) -> bool:
    try:
        return Path(path).read_text() == token
    except OSError:
        return False


def check_shared(folder: Path, timeout_s: float = 120.0) -> None:
    """Raise RunError unless every node of the connected cluster that has CPUs reads the
    file the driver has just written into ``folder``."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    token = uuid.uuid4().hex
    marker = Path(folder).resolve() / f".node-check-{token}"
    marker.write_text(token)
    try:
        nodes = _nodes()
        reads = ray.remote(num_cpus=0)(_reads)
        refs = [reads.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                .remote(str(marker), token) for n in nodes]
        for node, seen in zip(nodes, ray.get(refs, timeout=timeout_s)):
            if not seen:
                raise RunError(
                    f"{folder}: not visible on Ray node {node['NodeManagerAddress']} "
                    f"({node['NodeID'][:12]}); workers read and write the run there: put it on a "
                    "filesystem every node mounts at the same path")
    finally:
        marker.unlink(missing_ok=True)


def ray_map(fn: Callable[..., Any], jobs: list[tuple[Any, ...]], on_device: bool = False,
            in_flight: int = 0) -> Iterator[tuple[int, Any]]:
    """``fn(*job)`` for every job as Ray tasks (one CPU each; one GPU each for ``on_device``
    jobs where the cluster has GPUs; at most ``in_flight`` at a time, 0 = all), yielded as
    (job index, result) as they finish. The results travel to the driver through Ray."""
    import ray

    gpus = 1.0 if on_device and ray.cluster_resources().get("GPU", 0) else 0.0
    task = ray.remote(fn).options(num_cpus=1, num_gpus=gpus, max_retries=2)
    waiting, running = list(enumerate(jobs)), {}
    limit = in_flight or len(jobs)
    while waiting or running:
        while waiting and len(running) < limit:
            i, job = waiting.pop(0)
            running[task.remote(*job)] = i
        [ref], _ = ray.wait(list(running), num_returns=1)
        yield running.pop(ref), ray.get(ref)
