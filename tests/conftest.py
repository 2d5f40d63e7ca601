"""Real parts for tests: a local Ray, moto's S3 server and Prefect's test server, all on 127.0.0.1.

The AWS variables are set before anything starts, so Ray workers inherit them and reach the same
S3 endpoint as the test process. Every server started here is stopped here.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
import uuid
from pathlib import Path

import pytest

SECRET = "sEcReT-never-printed-0123456789"
STARTED = pytest.StashKey[float]()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


S3_PORT = free_port()


def pytest_configure(config: pytest.Config) -> None:
    home = tempfile.mkdtemp(prefix="genai-home-")  # the shared local services' state and logs
    os.environ.update(
        {
            "GENAI_STATE_DIR": home,
            "GENAI_LOG_DIR": os.path.join(home, "logs"),
            "AWS_ACCESS_KEY_ID": "testing-access-key",
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{S3_PORT}",
            "RAY_AUTH_MODE": "disabled",
        }
    )
    os.environ.pop("GENAI_STORE", None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    item.stash[STARTED] = time.time()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    """A failed test's report carries the tail of every command log and service log written
    while it ran: a command run as a subprocess sends all but its progress to those logs."""
    outcome = yield
    report = outcome.get_result()
    started = item.stash.get(STARTED, None)
    if report.when != "call" or not report.failed or started is None:
        return
    home = Path(os.environ["GENAI_STATE_DIR"])
    for path in sorted(home.rglob("*.log"), key=lambda p: p.stat().st_mtime):
        if path.stat().st_mtime >= started:
            tail = path.read_text(errors="replace")[-4000:]
            report.sections.append((f"log {path.name} (tail)", tail))


@pytest.fixture(scope="session", autouse=True)
def shared_services():
    """Commands the tests run start the local Ray and Prefect server genai commands share (in
    this session's GENAI_STATE_DIR); stop them at the end, as `genai down` does."""
    yield
    from flows.services import down

    down()


class S3Control:
    """moto's S3 server on 127.0.0.1; stop() and start() again keep its buckets (moto's state
    lives in this process), which is what fault tests need."""

    def __init__(self) -> None:
        self.server = None

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=S3_PORT, verbose=False)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


@pytest.fixture(scope="session")
def s3_control():
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    control = S3Control()
    control.start()
    yield control
    control.stop()


@pytest.fixture(scope="session")
def s3_server(s3_control):
    """moto's S3 server on 127.0.0.1 at the endpoint the environment names."""
    return os.environ["AWS_ENDPOINT_URL"]


@pytest.fixture
def bucket(s3_server) -> str:
    """A fresh, empty bucket."""
    import boto3

    name = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["file", "s3"])
def store(request, tmp_path):
    """An empty ArtifactStore on local disk, then on S3 (moto)."""
    from genai.storage import ArtifactStore

    if request.param == "file":
        return ArtifactStore(f"file://{tmp_path}/store")
    name = request.getfixturevalue("bucket")
    return ArtifactStore(f"s3://{name}/root")


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray for the whole session (num_cpus=2), started as the product starts it."""
    import ray

    from genai.cluster import ensure_ray

    ensure_ray(num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def prefect_server():
    """Prefect's test server for the session; yields its API URL (for subprocesses too)."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


@pytest.fixture
def mlflow_server(tmp_path):
    """`mlflow server` on 127.0.0.1 (SQLite backend, artifacts served through it); its URL."""
    import signal
    import subprocess
    import sys
    import urllib.request

    port, home = free_port(), tmp_path / "mlflow-server"
    home.mkdir()
    mlflow = Path(sys.executable).with_name("mlflow")
    server = subprocess.Popen(
        [mlflow, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{home}/mlflow.db",
         "--artifacts-destination", (home / "artifacts").as_uri()],
        stdout=(home / "server.log").open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((home / "server.log").read_text()[-3000:]) from None
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # uvicorn and MLflow's job runner with it
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
