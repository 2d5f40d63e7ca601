"""One writer per run, on local disk and on S3 (moto): two identical `genai train` commands at
once both finish with the same result and every epoch recorded once; `--no-wait` refuses naming
the holder; a holder SIGKILLed mid-run loses its lease (at once: it ran on this machine; the
expiry that frees a lease of another machine is tested in tests/genai/test_lease.py), and the
next command takes it over and resumes from the last checkpoint. The commands share one local Ray (the first starts it)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genai.storage import ArtifactStore
from genai.train.runs import history_of

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
GENAI = str(Path(sys.executable).parent / "genai")
EPOCHS = 4
LONG = 12  # the killed holder's run: it is killed within ~0.3 s of its first epoch's metrics
TRAIN = ["train", "configs/gan.yaml", "--set", f"train.epochs={EPOCHS}", "--set", "data.n=2000",
         "--set", "train.num_workers=1", "--json"]  # fmt: skip


@pytest.fixture(params=["file", "s3"])
def uri(request, tmp_path) -> str:
    if request.param == "file":
        return f"file://{tmp_path}/store"
    return f"s3://{request.getfixturevalue('bucket')}/root"


def start(uri: str, api: str, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PREFECT_API_URL": api}
    return subprocess.Popen(
        [GENAI, *TRAIN, *extra, "--store", uri], cwd=ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip


def finish(proc: subprocess.Popen, timeout: float = 400) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"a command did not finish within {timeout:.0f}s:\n{err[-3000:]}")
    return proc.returncode, out, err


def run_keys(store: ArtifactStore, suffix: str) -> list[str]:
    return [k for k in store.list("runs") if k.endswith(suffix)]


def wait_for(check, timeout: float, what: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        assert proc.poll() is None, f"the holder ended before {what}: {proc.stderr.read()[-3000:]}"
        time.sleep(0.3)
    pytest.fail(f"{what} did not happen within {timeout:.0f}s")


def epochs_recorded(store: ArtifactStore) -> list[int]:
    (key,) = run_keys(store, "/metrics.parquet")
    table = store.read_table(key).to_pylist()
    return [row["epoch"] for row in table if row["term"] == "epoch_s"]


@pytest.mark.parametrize("uri", ["file"], indirect=True)  # the S3 lease: the killed holder below
def test_two_identical_trains_at_once_both_finish_with_one_result(uri, prefect_server):
    store = ArtifactStore(uri)
    procs = [start(uri, prefect_server), start(uri, prefect_server)]
    (rc1, out1, err1), (rc2, out2, err2) = finish(procs[0]), finish(procs[1])
    assert rc1 == 0 and rc2 == 0, (err1[-3000:], err2[-3000:])
    one, two = json.loads(out1.splitlines()[-1]), json.loads(out2.splitlines()[-1])
    assert one == two
    assert sorted(epochs_recorded(store)) == list(range(EPOCHS))  # each epoch once
    history = history_of(store.read_table(run_keys(store, "/metrics.parquet")[0]))
    assert len(history) == EPOCHS
    waited = [err for err in (err1, err2) if f"waiting for run {one['run_id']} held by" in err]
    assert len(waited) == 1, (err1[-2000:], err2[-2000:])
    # one Ray on this machine: both ran on the same local head (the first to need it started it)
    heads = {re.search(r"the local Ray at (\S+)", err).group(1) for err in (err1, err2)}
    assert len(heads) == 1, (err1[-2000:], err2[-2000:])


def test_no_wait_refuses_naming_the_holder(tmp_path, prefect_server):
    uri = f"file://{tmp_path}/store"
    store = ArtifactStore(uri)
    holder = start(uri, prefect_server)
    try:
        wait_for(lambda: any("/lease-" in k for k in store.list("leases/runs")), 240,
                 "the holder's run lease", holder)  # fmt: skip
        refused = subprocess.run(
            [GENAI, *TRAIN, "--no-wait", "--store", uri], cwd=ROOT, capture_output=True,
            text=True, env={**os.environ, "PREFECT_API_URL": prefect_server}, timeout=300,
        )  # fmt: skip
        assert refused.returncode == 2, refused.stderr[-3000:]
        assert f"is being produced by {os.uname().nodename}/{holder.pid}" in refused.stderr
        assert "--no-wait" in refused.stderr
    finally:
        rc, _, err = finish(holder)
    assert rc == 0, err[-3000:]
    assert sorted(epochs_recorded(store)) == list(range(EPOCHS))


@pytest.mark.parametrize("uri", ["s3"], indirect=True)  # the file lease: two trains at once above
def test_a_killed_holder_is_taken_over_and_the_run_resumes(uri, prefect_server):
    store = ArtifactStore(uri)
    holder = start(uri, prefect_server, "--set", f"train.epochs={LONG}")
    try:
        wait_for(lambda: run_keys(store, "/metrics.parquet"), 300, "a first epoch", holder)
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.communicate()
    done_before = len(epochs_recorded(store))
    assert 0 < done_before < LONG
    again = start(uri, prefect_server, "--set", f"train.epochs={LONG}")
    rc, out, err = finish(again)
    assert rc == 0, err[-3000:]
    assert "waiting for run" not in err  # its holder died on this machine: taken over at once
    result = store.read_json(run_keys(store, "/result.json")[0])
    assert result["resumed_from_epoch"] and result["resumed_from_epoch"] >= done_before - 1
    assert sorted(epochs_recorded(store)) == list(range(LONG))  # none lost, none twice
    assert json.loads(out.splitlines()[-1])["epochs"] == LONG
