"""Ray on this machine: a real cluster of a head and two worker nodes (``ray start``, one CPU
each, every node on this machine) runs ``generate``, ``filter`` and ``sweep`` with the results
of the local runtime and loses a worker node mid-run at the cost of its unfinished shard; a node
that cannot see the run directory is named before any work; a cluster already up here never
stops a command run without ``--ray-address``."""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from advfilter.core.cluster import ray_session
from advfilter.core.config import load_config
from advfilter.core.layout import read_round
from advfilter.core.store import RunStore
from advfilter.pipeline.contexts import build_contexts
from advfilter.pipeline.filter import adversarial_filter
from advfilter.pipeline.generate import generate_candidates
from advfilter.sources.demo import make_corpus
from conftest import FAST_RUN

RAY = str(Path(sys.executable).parent / "ray")
# pools scored by one Ray actor: it asked for the driver's 2 CPUs, which no 1-CPU node has
ON_CLUSTER = {**FAST_RUN, "filter.rounds": 2}


# `ray start --head` turns Ray's token authentication on by default; a driver in this process
# presents no token (it read RAY_AUTH_MODE when ray was imported), so the test cluster is
# started without it (on a real one the driver exports RAY_AUTH_MODE=token: see the README)
NO_TOKEN = {**os.environ, "RAY_AUTH_MODE": "disabled"}


def ray_cli(*args: str) -> None:
    subprocess.run([RAY, *args], check=True, capture_output=True, timeout=180, env=NO_TOKEN)


@contextlib.contextmanager
def cluster(workers: int, blind_to: Path | None = None) -> Iterator[str]:
    """A head and ``workers`` worker nodes with one CPU each (worker ``i``'s node manager on
    port ``manager_port(address, i)``); a last node started in its own mount namespace with an
    empty folder over ``blind_to`` when given. Yields the address."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths have a limit
    address, node = f"127.0.0.1:{port}", ("--node-ip-address=127.0.0.1", "--num-cpus=1")
    try:
        ray_cli("start", "--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}", *node)
        for i in range(workers):
            ray_cli("start", f"--address={address}", f"--node-manager-port={manager_port(address, i)}", *node)
        if blind_to is not None:
            hide = f"mount -t tmpfs none {blind_to} && exec {RAY} start --address={address} {' '.join(node)}"
            subprocess.run(["unshare", "-m", "sh", "-c", hide], check=True, capture_output=True, timeout=180,
                           env=NO_TOKEN)
        yield address
    finally:
        stop_cluster(temp)
        shutil.rmtree(temp, ignore_errors=True)


def stop_cluster(temp: str) -> None:
    """SIGKILL every process of the cluster whose temp dir is ``temp``, and no other: its
    nodes' services name that dir in their command lines, their agents and workers are their
    children. (``ray stop`` stops every Ray process on the machine: a user's runs too.)"""
    def pids(*args: str) -> list[int]:
        return [int(p) for p in subprocess.run(["pgrep", *args], capture_output=True, text=True).stdout.split()]

    own = pids("-f", f"{temp}/")
    for pid in own:  # the list grows by each one's children as it goes
        own += [child for child in pids("-P", str(pid)) if child not in own]
    for pid in own:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def manager_port(address: str, worker: int) -> int:
    return int(address.rsplit(":", 1)[1]) + 101 + worker


def kill_node(address: str, worker: int) -> None:
    """SIGKILL every process of worker node ``worker`` (its raylet, agents and workers all
    carry its node manager's port): a lost machine."""
    port = manager_port(address, worker)
    done = subprocess.run(["pkill", "-9", "-f", f"node.manager.port={port}( |$)"], capture_output=True)
    assert done.returncode == 0, "no process of the node found"


@pytest.fixture(scope="module")
def three_nodes() -> Iterator[str]:
    with cluster(workers=2) as address:
        yield address


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "train.json"
    path.write_text(json.dumps(make_corpus(videos=24, seed=3)))
    return path


def advfilter(*args: str) -> subprocess.CompletedProcess:
    """The command as a user runs it: a process of its own (Ray keeps state per process)."""
    sets = [f"--set={k}={json.dumps(v)}" for k, v in ON_CLUSTER.items()]
    return subprocess.run([str(Path(sys.executable).parent / "advfilter"), *args, *sets],
                          capture_output=True, text=True, timeout=600, env=NO_TOKEN)


def test_generate_and_filter_on_a_three_node_cluster_give_the_local_runtimes_results(
        three_nodes, corpus, tmp_path):
    cfg = load_config(None, ON_CLUSTER)
    with RunStore.open(tmp_path / "local") as local:
        build_contexts(cfg, local, "activitynet", [corpus])
        generate_candidates(cfg, local)
        adversarial_filter(cfg, local)
    remote = RunStore(tmp_path / "remote")
    for command in (["generate", "--source", "activitynet", "--input", str(corpus), "--out", str(remote.root)],
                    ["filter", "--run", str(remote.root)]):
        done = advfilter(*command, "--ray-address", three_nodes)
        assert done.returncode == 0, done.stderr[-3000:]
    shards = sorted(p.name for p in (local.root / "candidates").glob("part-*.parquet"))
    assert shards and shards == sorted(p.name for p in (remote.root / "candidates").glob("part-*.parquet"))
    for name in shards:
        assert (local.root / "candidates" / name).read_bytes() == (remote.root / "candidates" / name).read_bytes()
    for r in (1, 2):
        assert read_round(local, r)["negatives"].map(list).tolist() == \
            read_round(remote, r)["negatives"].map(list).tolist()
    assert not list(remote.root.rglob(".node-check-*"))


@pytest.mark.slow  # two sweeps (a minute); generate and filter on the cluster stay on the fast path
def test_a_sweep_on_the_cluster_fits_its_trials_on_one_cpu_nodes_with_the_local_results(
        three_nodes, tiny_phi, tmp_path):
    """One trial at a time asks for a node's CPUs, not the cluster's 3 (no node has them: it
    waited for ever); each trial's results equal a local sweep's (one thread per trial there
    too: two at a time on this machine's 2 CPUs)."""
    item = {"activity_label": "Cooking", "ctx_b": "the cook", "label": 0,
            "endings": ["stirs the soup.", "flies over the moon.", "sings to a rock.", "paints the sky."]}
    rows = [{**item, "ctx_a": f"A cook number {i} stands at a stove.", "split": "train"} for i in range(8)]
    rows += [{**item, "ctx_a": f"A baker number {i} stands at an oven.", "split": "validation"} for i in range(4)]
    data = tmp_path / "items.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")

    def sweep(out: Path, *extra: str) -> list[dict]:
        done = subprocess.run([str(Path(sys.executable).parent / "advfilter"), "sweep", "--data", str(data),
                               "--model", str(tiny_phi), "--out", str(out), "--search", "grid",
                               "--set", "space={lr: [0.01, 0.005]}", "--max-steps", "2", "--set", "asha.enabled=false",
                               "--set", "finetune.batch_size=4", "--set", "finetune.grad_accum=1",
                               "--set", "finetune.eval_items=4", *extra],
                              capture_output=True, text=True, timeout=240, env=NO_TOKEN)
        assert done.returncode == 0, done.stderr[-3000:]
        rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        return sorted(((r["config"]["lr"], r["metrics"]["eval_loss"]) for r in rows))

    local = sweep(tmp_path / "local", "--max-concurrent", "2")
    assert len(local) == 2
    assert sweep(tmp_path / "cluster", "--ray-address", three_nodes) == local


@pytest.mark.slow
def test_a_worker_node_lost_mid_run_costs_only_its_unfinished_shards(corpus, tmp_path):
    """Its actor is restarted on a node still up and its shard redone; the shards finished
    before stay as they were, and every file is the one an uninterrupted run writes."""
    small = {"generate.shard_size": 4}
    run = tmp_path / "run"
    with cluster(workers=2) as address:
        job = subprocess.Popen([str(Path(sys.executable).parent / "advfilter"), "generate", "--source",
                                "activitynet", "--input", str(corpus), "--out", str(run), "--ray-address",
                                address, *[f"--set={k}={json.dumps(v)}" for k, v in {**ON_CLUSTER, **small}.items()]],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=NO_TOKEN)
        deadline = time.monotonic() + 300
        while not list((run / "candidates").glob("part-*.parquet")) and time.monotonic() < deadline:
            time.sleep(0.02)
        kill_node(address, 1)
        before = {p.name: p.stat().st_mtime_ns for p in (run / "candidates").glob("part-*.parquet")}
        _, err = job.communicate(timeout=300)
    assert job.returncode == 0, err[-3000:]
    cfg = load_config(None, {**ON_CLUSTER, **small})
    with RunStore.open(tmp_path / "reference") as reference:
        build_contexts(cfg, reference, "activitynet", [corpus])
        generate_candidates(cfg, reference)
    shards = sorted((reference.root / "candidates").glob("part-*.parquet"))
    assert 0 < len(before) < len(shards), "the node was lost before the first or after the last shard"
    for path in shards:
        assert (run / "candidates" / path.name).read_bytes() == path.read_bytes()
    assert {n: (run / "candidates" / n).stat().st_mtime_ns for n in before} == before


def test_a_node_that_cannot_see_the_run_directory_is_named_before_any_work(corpus, tmp_path):
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
        pytest.skip("needs unshare -m (root) to start a node with its own view of the filesystem")
    shared = tmp_path / "shared"
    shared.mkdir()
    with cluster(workers=0, blind_to=shared) as address:
        done = advfilter("generate", "--source", "activitynet", "--input", str(corpus),
                         "--out", str(shared / "run"), "--ray-address", address)
    assert done.returncode == 2, done.stderr[-3000:]
    line = done.stderr.strip().splitlines()[-1]
    assert re.fullmatch(rf"error: {re.escape(str(shared / 'run'))}: not visible on Ray node \S+ \(\w+\); .*", line)
    assert not list((shared / "run" / "candidates").glob("part-*"))


def test_a_cluster_already_up_on_the_machine_leaves_a_local_run_alone_and_is_stopped_alone(
        three_nodes, tmp_path):
    """Stopping the test's cluster leaves every other Ray runtime on the machine up (``ray stop
    --force`` in the teardown killed a user's runs, and the module's cluster)."""
    import ray

    with cluster(workers=0):
        with ray_session(None, cpus=1):  # ray.init found the cluster and refused num_cpus before
            assert ray.get(ray.remote(lambda: 41 + 1).remote()) == 42
    ray_cli("status", f"--address={three_nodes}")  # fails once that cluster is gone
