"""Ray, the only way work is spread: a local runtime by default, a cluster by address."""
from __future__ import annotations

import contextlib
import logging
from typing import Iterator


@contextlib.contextmanager
def ray_session(address: str | None, cpus: int) -> Iterator[None]:
    """Join ``address`` (a cluster) or start a local Ray runtime with ``cpus`` CPUs.

    A runtime that is already up is reused and left running.
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
        yield
    finally:
        ray.shutdown()
