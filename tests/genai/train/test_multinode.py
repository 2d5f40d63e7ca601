"""Two Ray nodes on 127.0.0.1: workers spread over them; losing a node does not fail the run.

`ray start --head` and a second `ray start --address` (its own resources, 1 CPU each) make a real
two-node cluster; a driver process joins it and trains on 2 workers. Mid-training the second node's
raylet and everything under it are killed with SIGKILL; the node is then started again, and Ray
Train restarts the workers from the last checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from genai.storage import ArtifactStore
from genai.train.runs import history_of
from tests.conftest import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]
RAY = str(Path(sys.executable).parent / "ray")

DRIVER = """
import json
import ray
from ray._private.state import actors  # the GCS actor table (the state API needs a dashboard)
from genai.cluster import ensure_ray
from genai.config import RunConfig
from genai.configfile import load_config
from genai.storage import ArtifactStore
from genai.train.launcher import train
ensure_ray({address!r})
cfg = load_config(RunConfig, data={data!r})
result = train(cfg, ArtifactStore({store!r}))
workers = [a for a in actors().values() if "RayTrainWorker" in a.get("ActorClassName", "")]
placed = [[a["Address"]["NodeID"], a["State"]] for a in workers]
print(json.dumps({{"result": result.summary(), "workers": placed}}))
"""


def ray_start(*args: str) -> None:
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}
    subprocess.run([RAY, "start", "--disable-usage-stats", *args], check=True, env=env,
                   capture_output=True, timeout=120)  # fmt: skip


def second_node_processes() -> list[psutil.Process]:
    """The second node's raylet (started with the resource `second_node`) and all under it."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "raylet" in cmd and "second_node" in cmd:
            found += [proc, *proc.children(recursive=True)]
    return found


def stop_cluster(port: int) -> None:
    """Kill this cluster's processes only (`ray stop` would also stop the test session's Ray)."""
    marks = (f":{port}", f"gcs_server_port={port}", "second_node")
    doomed = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if any(m in cmd for m in marks) and proc.pid != os.getpid():
            doomed += [proc, *proc.children(recursive=True)]
    for proc in doomed:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    current = Path("/tmp/ray/ray_current_cluster")  # `ray start` points later ray.init() here
    if current.exists() and current.read_text().strip().endswith(f":{port}"):
        current.unlink()


@pytest.fixture
def two_nodes():
    port = free_port()
    address = f"127.0.0.1:{port}"
    ray_start(
        "--head",
        f"--port={port}",
        "--num-cpus=1",
        "--node-ip-address=127.0.0.1",
        "--include-dashboard=false",
    )
    second = (
        f"--address={address}",
        "--num-cpus=1",
        "--node-ip-address=127.0.0.1",
        '--resources={"second_node": 1}',
    )
    try:
        ray_start(*second)
        yield address, second
    finally:
        stop_cluster(port)


def test_two_workers_one_per_node_and_a_lost_node_is_survived(two_nodes, tmp_path):
    address, second = two_nodes
    store = ArtifactStore(f"file://{tmp_path}/store")
    data = {
        "data.source": "ring8", "data.n": 20000, "train.epochs": 6, "train.num_workers": 2,
        "train.max_failures": 3, "train.run_id": "two-nodes", "model.arch.width": 256,
    }  # fmt: skip
    code = DRIVER.format(address=address, data=data, store=store.uri)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    log = tmp_path / "driver.log"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=log.open("w"), text=True, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        metrics = "runs/two-nodes/metrics.parquet"
        while not (store.exists(metrics) and len(history_of(store.read_table(metrics))) >= 2):
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "training made no progress"
            time.sleep(0.5)
        victims = second_node_processes()
        assert victims, "found the second node's processes"
        for p in victims:
            p.send_signal(signal.SIGKILL)
        time.sleep(3)
        ray_start(*second)  # the node comes back; Ray Train restarts from the checkpoint
        out, _ = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, log.read_text()[-4000:]
    report = json.loads(out.strip().splitlines()[-1])
    assert report["result"]["epochs"] == 6
    nodes = {node for node, _ in report["workers"]}
    assert len(nodes) >= 2, report["workers"]  # the workers ran on both nodes
    assert any(state == "DEAD" for _, state in report["workers"])  # the lost node's worker died
    history = history_of(store.read_table("runs/two-nodes/metrics.parquet"))
    assert [h["epoch"] for h in history] == list(range(6))  # none lost, none twice
