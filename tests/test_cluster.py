"""Ray on this machine: a cluster already up here never stops a command run without
``--ray-address`` (it starts its own local runtime)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from advfilter.core.cluster import ray_session

RAY = str(Path(sys.executable).parent / "ray")


def test_a_cluster_already_up_on_the_machine_leaves_a_local_run_alone(tmp_path):
    import ray

    subprocess.run([RAY, "start", "--head", "--num-cpus", "1", "--include-dashboard=false"],
                   check=True, capture_output=True, cwd=tmp_path, timeout=120)
    try:
        with ray_session(None, cpus=1):  # ray.init found the cluster and refused num_cpus before
            assert ray.get(ray.remote(lambda: 41 + 1).remote()) == 42
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)
