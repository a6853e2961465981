"""The Slurm cluster the sweep tests submit to: the one .ci/slurm_cluster.sh starts (SLURM_CONF, else its default
location), or none. Without a cluster the Slurm tests skip with the reason; under CI (CI=true) they fail instead,
since CI starts the cluster before the tests."""
import os
import shutil
import subprocess
import time

import pytest

DEFAULT_CONF = "/tmp/harness-slurm/slurm.conf"
START_HINT = "start one with `bash .ci/slurm_cluster.sh start` (Debian packages, root)"


def cluster_conf():
    """The slurm.conf of a responding cluster, or (None, why not)."""
    conf = os.environ.get("SLURM_CONF") or (DEFAULT_CONF if os.path.isfile(DEFAULT_CONF) else None)
    if shutil.which("sbatch") is None:
        return None, f"Slurm's client tools are not installed; {START_HINT}"
    environment = {**os.environ, **({"SLURM_CONF": conf} if conf else {})}
    try:
        result = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30,
                                env=environment)
    except subprocess.TimeoutExpired:
        return None, "sinfo did not answer within 30 s"
    if result.returncode != 0 or not result.stdout.strip():
        return None, f"no Slurm cluster answers ({result.stderr.strip() or 'no nodes'}); {START_HINT}"
    return conf, ""


@pytest.fixture(scope="session")
def slurm_environment():
    """os.environ plus SLURM_CONF of the running cluster; skips (fails under CI=true) when there is none."""
    conf, reason = cluster_conf()
    if conf is None and reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but no Slurm cluster: {reason}")
        pytest.skip(reason)
    return {**os.environ, **({"SLURM_CONF": conf} if conf else {})}


def wait_until(predicate, timeout, what, interval=0.5):
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
