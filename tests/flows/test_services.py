"""The shared local services: a record whose process no longer serves is replaced, not joined,
and stopping the Ray head forgets it as the machine's current cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from genai import daemon


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A GENAI_STATE_DIR of the test's own, so the session's shared services stay untouched."""
    monkeypatch.setenv("GENAI_STATE_DIR", str(tmp_path / "home"))
    return tmp_path / "home"


def impostor() -> subprocess.Popen:
    """A live process in its own session that serves nothing (a reused pid, a wedged server)."""
    return subprocess.Popen(["sleep", "600"], start_new_session=True)


def test_a_prefect_record_that_does_not_answer_is_replaced(home):
    from flows.services import PREFECT, prefect_server

    stale = impostor()
    try:
        daemon.start(PREFECT, ["true"], {}, url="http://127.0.0.1:9/api")  # the record only
        record = daemon.read_state(PREFECT, dead_too=True)
        record |= {"pid": stale.pid, "started": 0.0}
        (home / f"{PREFECT}.json").write_text(json.dumps(record))

        server = prefect_server()
        try:
            assert server.started and server.pid != stale.pid
            assert server.url != "http://127.0.0.1:9/api"
            assert stale.wait(timeout=30) is not None  # the impostor's group was stopped
            server.wait()  # and the new one answers
        finally:
            daemon.stop(PREFECT)
    finally:
        if stale.poll() is None:
            stale.kill()


def test_a_prefect_server_still_starting_is_joined(home):
    from flows.services import PREFECT, prefect_server

    starting = impostor()
    try:
        daemon.start(PREFECT, ["true"], {}, url="http://127.0.0.1:9/api")
        record = daemon.read_state(PREFECT, dead_too=True) | {"pid": starting.pid}
        (home / f"{PREFECT}.json").write_text(json.dumps(record))
        server = prefect_server()  # started a moment ago: wait for it rather than start another
        assert (server.pid, server.started) == (starting.pid, False)
    finally:
        starting.kill()


def test_a_ray_head_still_starting_is_joined(home):
    """A command starts the shared head and imports its flow while the head comes up: a
    concurrent command joins that head rather than stopping it or starting another."""
    from genai.cluster import HEAD, start_head

    starting = impostor()
    try:
        daemon.start(HEAD, ["true"], {}, address="127.0.0.1:9", auth_mode="token")
        record = daemon.read_state(HEAD, dead_too=True) | {"pid": starting.pid}
        (home / f"{HEAD}.json").write_text(json.dumps(record))
        head = start_head()  # started a moment ago: wait for it rather than start another
        assert (head.address, head.pid, head.started) == ("127.0.0.1:9", starting.pid, False)
        assert starting.poll() is None  # not stopped
        starting.kill()
        with pytest.raises(RuntimeError, match="the local Ray head start: the process exited"):
            head.wait(timeout=30)
    finally:
        if starting.poll() is None:
            starting.kill()


def test_stopping_the_head_forgets_it_as_the_current_cluster(home):
    from ray._common.utils import get_ray_address_file, reset_ray_address
    from ray._private.utils import read_ray_address, write_ray_address

    from genai.cluster import HEAD, stop_head

    path = get_ray_address_file(None)
    saved = open(path).read() if os.path.exists(path) else None  # noqa: SIM115
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        for current, forgotten in (("127.0.0.1:9", True), ("10.0.0.1:6379", False)):
            gone = impostor()
            daemon.start(HEAD, ["true"], {}, address="127.0.0.1:9", auth_mode="disabled")
            record = daemon.read_state(HEAD, dead_too=True) | {"pid": gone.pid}
            (home / f"{HEAD}.json").write_text(json.dumps(record))
            write_ray_address(current)
            assert stop_head() is True
            assert gone.wait(timeout=30) is not None
            assert (read_ray_address() is None) == forgotten, current
            assert daemon.read_state(HEAD, dead_too=True) is None
        assert stop_head() is False  # nothing left to stop
    finally:
        if saved is None:
            reset_ray_address()
        else:
            write_ray_address(saved)


def test_pointing_at_a_server_reaches_a_prefect_already_imported(tmp_path):
    """Prefect reads PREFECT_API_URL once, when imported: `genai serve` imports it before the
    server is known, and a command imports its flow while a new server starts."""
    code = (
        "import prefect\n"
        "from prefect.settings import get_current_settings\n"
        "from flows.services import use_prefect\n"
        "use_prefect('http://127.0.0.1:9/api'); print(get_current_settings().api.url)\n"
        "use_prefect(None); print(get_current_settings().api.url)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["http://127.0.0.1:9/api", "None"]
