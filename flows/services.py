"""The services a command needs, paid for once: a Prefect server and a Ray cluster.

Yours when you name them (``PREFECT_API_URL``, ``--ray-address``); otherwise the local ones genai
commands share (:mod:`genai.daemon`): started detached by the first command that needs them, found
by later and concurrent ones, stopped by ``genai down``. The Prefect server and the Ray head
start in the background while the command imports its flow; the command waits for them only
then.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from genai import daemon
from genai.cluster import HEAD, start_head, stop_head
from genai.progress import say

PREFECT = "prefect"
STARTING_S = 120  # a server that has not answered this long after its start never will


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@dataclass
class PrefectServer:
    url: str
    pid: int | None
    started: bool

    def wait(self, timeout: float = 120) -> None:
        if self.pid is not None:
            daemon.wait_until(lambda: _healthy(self.url), timeout, "the Prefect server", self.pid)


def prefect_server() -> PrefectServer:
    """``PREFECT_API_URL`` if set, else the shared local server (started now if none runs)."""
    own = os.environ.get("PREFECT_API_URL")
    if own:
        return PrefectServer(own, None, False)
    with daemon.locked(PREFECT):
        state = daemon.read_state(PREFECT)
        if state is not None and (
            _healthy(state["url"]) or time.time() - state["started"] < STARTING_S
        ):  # up, or another command started it a moment ago
            return PrefectServer(state["url"], state["pid"], False)
        if state is not None:  # its pid lives on (or again, reused) but no server answers
            daemon.stop(PREFECT)
        port = daemon.free_port()
        env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        argv = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                "--port", str(port)]  # fmt: skip
        url = f"http://127.0.0.1:{port}/api"
        state = daemon.start(PREFECT, argv, env, url=url)
        return PrefectServer(url, state["pid"], True)


def services(ray_address: str | None, meanwhile: Callable[[], object] = lambda: None) -> str:
    """Make sure a Prefect server and a Ray cluster are there; point this process at them and
    say which. Returns the Ray address the flows should join. ``meanwhile`` runs while a server
    and a Ray head started now come up (the command's flow module imports: 6 s of a cold
    ``genai run`` beside the services' start, which waited for the head before)."""
    prefect = prefect_server()  # starts in the background ...
    head = start_head() if ray_address is None else None  # ... as does Ray's head
    before = os.environ.get("PREFECT_API_URL")
    use_prefect(prefect.url)  # before the flow's imports
    try:
        meanwhile()
        if head is not None:
            ray_address = head.wait()
            verb = "started" if head.started else "joined"
            say("ray", f"{verb} the local Ray at {ray_address} (shared by genai commands)")
        else:
            say("ray", f"joining the Ray at {ray_address}")
        prefect.wait()
    except BaseException:
        use_prefect(before)  # a server that never came up is not this process's from now on
        raise
    if prefect.pid is None:
        say("prefect", f"using the server at {prefect.url}")
    else:
        verb = "started" if prefect.started else "using"
        say("prefect", f"{verb} the local server, UI at {prefect.url.removesuffix('/api')}")
    return ray_address


def use_prefect(url: str | None) -> None:
    """Point this process at the Prefect API ``url`` (None: none set): ``PREFECT_API_URL``, and
    Prefect's settings when it is already imported, since it reads them once, at import."""
    if url is None:
        os.environ.pop("PREFECT_API_URL", None)
    else:
        os.environ["PREFECT_API_URL"] = url
    if "prefect.context" in sys.modules:
        from prefect.context import refresh_global_settings_context  # imported already

        refresh_global_settings_context()


def down() -> list[str]:
    """Stop the shared local services; the names of those that were running."""
    stopped = [HEAD] if stop_head() else []
    return stopped + ([PREFECT] if daemon.stop(PREFECT) else [])
