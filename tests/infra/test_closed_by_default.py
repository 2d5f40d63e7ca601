"""Closed by default, checked without Docker or Kubernetes.

compose.yaml: every port published on 127.0.0.1 only (no host network), every secret a required
`${VAR:?message naming VAR}` with no default, Prefect's API auth string on the server and on every
client, Ray's token mode and token on every node and client. The public override example opens only
Prefect and MinIO's S3 API. KubeRay: token auth from a Secret, the head service never a LoadBalancer
or NodePort, no host ports. Each checker is run on mutated copies of the real files.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from compose_spec import PyCompose

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"

SECRET = re.compile(r"PASSWORD|SECRET|TOKEN|AUTH_STRING|API_KEY")
# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ... ($${VAR} is a literal, not a reference)
REF = re.compile(r"(?<!\$)\$\{(\w+)(?:(:?[-?+])([^}]*))?\}")
PORT = re.compile(r"^(?:(?:(?P<ip>.+):)?(?P<published>[\d-]*):)?(?P<target>[\d-]+)(?:/\w+)?$")
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
# what a public override may open to a reverse proxy: Prefect's API/UI and MinIO's S3 API
PUBLIC_OK = {("prefect-server", "4200"), ("minio", "9000")}


class Override(list):
    """A sequence tagged `!override` (or `!reset`): it replaces the base file's one."""


class ComposeLoader(yaml.SafeLoader):
    pass


ComposeLoader.add_constructor("!override", lambda ld, node: Override(ld.construct_sequence(node)))
ComposeLoader.add_constructor("!reset", lambda ld, node: Override())


def load(text: str) -> dict:
    return yaml.load(text, Loader=ComposeLoader)  # a SafeLoader that knows compose's two tags


def env_of(svc: dict) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def required_var(value: str) -> str | None:
    """VAR when the value is exactly `${VAR:?message}`, else None."""
    m = REF.fullmatch(value)
    return m.group(1) if m and m.group(2) == ":?" else None


def secret_problems(text: str) -> list[str]:
    """A secret never has a default, never lacks a message naming it, is never a literal."""
    problems = []
    for m in REF.finditer(text):
        name, op, arg = m.groups()
        if not SECRET.search(name):
            continue
        if op in (":-", "-"):
            problems.append(f"{m.group(0)}: the secret {name} has a default value")
        elif op != ":?":
            problems.append(f"{m.group(0)}: the secret {name} must be ${{{name}:?message}}")
        elif name not in arg:
            problems.append(f"{m.group(0)}: the message must name {name}")
    for name, svc in (load(text).get("services") or {}).items():
        for key, value in env_of(svc).items():
            if SECRET.search(key) and not REF.fullmatch(value):
                problems.append(f"{name}: {key} is a literal, not ${{VAR:?message}}")
            for password in re.findall(r"://[^/:@\s]+:([^@\s]+)@", value):
                if not REF.fullmatch(password):
                    problems.append(f"{name}: {key} holds a literal password")
    return problems


def exposure_problems(spec: dict, public_ok=frozenset()) -> list[str]:
    """Every published port on 127.0.0.1, but the (service, port) pairs of public_ok."""
    problems = []
    for name, svc in (spec.get("services") or {}).items():
        if svc.get("network_mode") == "host":
            problems.append(f"{name}: network_mode host publishes every port it listens on")
        seen = set()
        for port in svc.get("ports") or []:
            if isinstance(port, dict):
                ip, published, target = port.get("host_ip"), port.get("published"), port["target"]
            else:
                m = PORT.match(str(port))
                if not m:
                    problems.append(f"{name}: cannot read the port {port!r}")
                    continue
                ip, published, target = m.group("ip", "published", "target")
            ip, published, target = ip or "", str(published or ""), str(target)
            if published and published in seen:
                problems.append(f"{name}: host port {published} is published twice")
            seen.add(published)
            ref = REF.fullmatch(ip)
            if ref and ref.group(2) != ":?":
                problems.append(f"{name}: {port!r}: the address must be ${{VAR:?message}}")
            elif ip in LOOPBACK or (
                (name, target) in public_ok and ip not in ("", "0.0.0.0", "::")
            ):
                continue
            else:
                where = ip if ip not in ("", "0.0.0.0", "::") else "every interface"
                problems.append(f"{name}: {port!r} is published on {where}; bind 127.0.0.1")
    return problems


def auth_problems(spec: dict) -> list[str]:
    """Prefect's auth string on the server and its clients, Ray's token on nodes and clients."""
    problems, prefect_vars, ray_vars = [], set(), set()
    for name, svc in (spec.get("services") or {}).items():
        env = env_of(svc)
        parts = [svc.get("entrypoint") or [], svc.get("command") or []]
        command = " ".join(p if isinstance(p, str) else " ".join(map(str, p)) for p in parts)
        if "prefect server start" in command:
            var = required_var(env.get("PREFECT_SERVER_API_AUTH_STRING", ""))
            if not var:
                problems.append(f"{name}: needs PREFECT_SERVER_API_AUTH_STRING: ${{VAR:?...}}")
            prefect_vars.add(var)
        if "PREFECT_API_URL" in env:
            var = required_var(env.get("PREFECT_API_AUTH_STRING", ""))
            if not var:
                problems.append(f"{name}: a Prefect client needs PREFECT_API_AUTH_STRING")
            prefect_vars.add(var)
        if "ray start" in command or "RAY_ADDRESS" in env:
            if env.get("RAY_AUTH_MODE") != "token":
                problems.append(f"{name}: Ray needs RAY_AUTH_MODE: token")
            var = required_var(env.get("RAY_AUTH_TOKEN", ""))
            if not var:
                problems.append(f"{name}: Ray needs RAY_AUTH_TOKEN: ${{VAR:?...}}")
            ray_vars.add(var)
    for what, found in (("Prefect's auth string", prefect_vars), ("Ray's token", ray_vars)):
        if len(found - {None}) > 1:
            problems.append(f"{what} comes from different variables: {sorted(found - {None})}")
    return problems


def check_closed(text: str) -> list[str]:
    spec = load(text)
    return secret_problems(text) + exposure_problems(spec) + auth_problems(spec)


def merge(base: dict, override: dict) -> dict:
    """Compose's merge for what the override uses: `!override` lists replace, mappings merge."""
    merged = copy.deepcopy(base)
    for name, svc in (override.get("services") or {}).items():
        target = merged["services"].setdefault(name, {})
        for key, value in svc.items():
            if key == "environment":
                target[key] = {**env_of(target), **env_of(svc)}
            elif isinstance(value, list) and not isinstance(value, Override):
                target[key] = list(target.get(key) or []) + value
            else:
                target[key] = list(value) if isinstance(value, Override) else value
    return merged


def check_public(base_text: str, override_text: str) -> list[str]:
    merged = merge(load(base_text), load(override_text))
    return secret_problems(override_text) + exposure_problems(merged, PUBLIC_OK)


COMPOSE = (INFRA / "compose.yaml").read_text()
PUBLIC = (INFRA / "compose.public.example.yaml").read_text()


def mutate(text: str, pattern: str, new: str) -> str:
    changed, n = re.subn(pattern, new, text, count=1, flags=re.M)
    assert n == 1, f"{pattern!r} is not in the file any more"
    return changed


def test_the_compose_file_is_closed_by_default():
    assert check_closed(COMPOSE) == []
    published = [p for s in load(COMPOSE)["services"].values() for p in s.get("ports", [])]
    assert published and all(p.startswith("127.0.0.1:") for p in published)


@pytest.mark.parametrize(
    ("pattern", "new", "problem"),
    [
        (
            r"POSTGRES_PASSWORD: \$\{POSTGRES_PASSWORD:\?[^}]*\}",
            "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:-prefect}",
            "POSTGRES_PASSWORD has a default",
        ),
        (
            r"\$\{MINIO_ROOT_PASSWORD:\?[^}]*\}",
            "${MINIO_ROOT_PASSWORD-genai-secret}",
            "MINIO_ROOT_PASSWORD has a default",
        ),
        (
            r"\$\{RAY_AUTH_TOKEN:\?[^}]*\}",
            "${RAY_AUTH_TOKEN}",
            "must be ${RAY_AUTH_TOKEN:?message}",
        ),
        (
            r"\$\{MINIO_ROOT_PASSWORD:\?[^}]*\}",
            "${MINIO_ROOT_PASSWORD:?required}",
            "must name MINIO_ROOT_PASSWORD",
        ),
        (
            r"POSTGRES_PASSWORD: \$\{[^}]*\}",
            "POSTGRES_PASSWORD: prefect",
            "POSTGRES_PASSWORD is a literal",
        ),
        (
            r"prefect:\$\{POSTGRES_PASSWORD:\?[^}]*\}@",
            "prefect:prefect@",
            "holds a literal password",
        ),
        (r'"127\.0\.0\.1:4200:4200"', '"4200:4200"', "'4200:4200' is published on every interface"),
        (r'"127\.0\.0\.1:8265:8265"', '"0.0.0.0:8265:8265"', "published on every interface"),
        (r'"127\.0\.0\.1:10001:10001"', '"10001"', "published on every interface"),
        (
            r'"127\.0\.0\.1:9001:9001"',
            '{target: 9001, published: "9001", host_ip: 0.0.0.0}',
            "published on every interface",
        ),
        (r'"127\.0\.0\.1:9000:9000"', '"192.168.1.5:9000:9000"', "published on 192.168.1.5"),
        (r"^    shm_size: 2gb", "    shm_size: 2gb\n    network_mode: host", "network_mode host"),
        (
            r"^      PREFECT_SERVER_API_AUTH_STRING: .*\n",
            "",
            "needs PREFECT_SERVER_API_AUTH_STRING",
        ),
        (r"^  PREFECT_API_AUTH_STRING: .*\n", "", "a Prefect client needs PREFECT_API_AUTH_STRING"),
        (r"^  RAY_AUTH_TOKEN: .*\n", "", "Ray needs RAY_AUTH_TOKEN"),
        (r"RAY_AUTH_MODE: token", "RAY_AUTH_MODE: disabled", "Ray needs RAY_AUTH_MODE: token"),
        (r"^  RAY_AUTH_MODE: token\n", "", "Ray needs RAY_AUTH_MODE: token"),
        (
            r"PREFECT_SERVER_API_AUTH_STRING: \$\{PREFECT_API_AUTH_STRING:",
            "PREFECT_SERVER_API_AUTH_STRING: ${PREFECT_SERVER_AUTH:",
            "different variables",
        ),
    ],
)
def test_the_compose_check_catches_what_opens_the_stack(pattern, new, problem):
    broken = mutate(COMPOSE, pattern, new)
    PyCompose.from_yaml(
        broken
    )  # still a valid compose file: only the closed-by-default check fails
    assert any(problem in p for p in check_closed(broken)), check_closed(broken)


def test_the_public_override_opens_prefect_and_minio_only():
    # compose interpolates before it parses: the strict parser reads the file as `up` would
    PyCompose.from_yaml(
        REF.sub(lambda m: {"GENAI_BIND_ADDRESS": "10.0.0.5"}.get(m[1], "x"), PUBLIC)
    )
    assert check_public(COMPOSE, PUBLIC) == []
    merged = merge(load(COMPOSE), load(PUBLIC))
    assert merged["services"]["ray-head"]["ports"] == load(COMPOSE)["services"]["ray-head"]["ports"]
    assert exposure_problems(merged)  # public: the checker of the default file refuses it
    # compose loads compose.override.yaml by itself: the example must never be one
    assert not [
        p for p in INFRA.iterdir() if p.name.startswith(("compose.override", "docker-compose"))
    ]


@pytest.mark.parametrize(
    ("pattern", "new", "problem"),
    [
        (
            r"^  minio:\n",
            '  ray-head:\n    ports: !override\n      - "${GENAI_BIND_ADDRESS:?GENAI_BIND_ADDRESS}:8265:8265"\n\n  minio:\n',
            "ray-head",
        ),
        (r"ports: !override", "ports:", "host port 4200 is published twice"),
        (
            r"\$\{GENAI_BIND_ADDRESS:\?[^}]*\}:4200",
            "${GENAI_BIND_ADDRESS:-0.0.0.0}:4200",
            "the address must be ${VAR:?message}",
        ),
        (r"\$\{GENAI_BIND_ADDRESS:\?[^}]*\}:4200", "0.0.0.0:4200", "published on every interface"),
        (
            r'"127\.0\.0\.1:9001:9001"',
            '"${GENAI_BIND_ADDRESS:?GENAI_BIND_ADDRESS}:9001:9001"',
            "9001:9001",
        ),
    ],
)
def test_the_public_check_catches_what_opens_too_much(pattern, new, problem):
    broken = mutate(PUBLIC, pattern, new)
    assert any(problem in p for p in check_public(COMPOSE, broken)), check_public(COMPOSE, broken)


def test_env_example_lists_every_variable_without_a_secret():
    listed = dict(
        re.findall(r"^#? ?([A-Z_]+)=(.*)$", (INFRA / ".env.example").read_text(), flags=re.M)
    )
    wanted = {m.group(1) for m in REF.finditer(COMPOSE + PUBLIC)}
    assert wanted <= set(listed), wanted - set(listed)
    assert {name: v for name, v in listed.items() if SECRET.search(name) and v} == {}
    assert ".env" in (INFRA / ".gitignore").read_text().split()


def check_kuberay_closed(doc: dict) -> list[str]:
    """Token auth from a Secret (KubeRay authOptions), Ray >= 2.52, nothing on a node or LB port."""
    spec = doc["spec"].get("rayClusterSpec", doc["spec"])
    problems = []
    auth = spec.get("authOptions") or {}
    if auth.get("mode") != "token" or not auth.get("secretName"):
        problems.append("authOptions: needs mode: token and the secretName of the token's Secret")
    if tuple(int(x) for x in str(spec.get("rayVersion", "0")).split(".")[:2]) < (2, 52):
        problems.append("rayVersion: token auth needs Ray 2.52 or later")
    head = spec.get("headGroupSpec") or {}
    service_type = head.get("serviceType") or (head.get("headService") or {}).get("spec", {}).get(
        "type"
    )
    if service_type in ("LoadBalancer", "NodePort"):
        problems.append(
            f"headGroupSpec: a {service_type} service exposes the dashboard and client ports"
        )
    if head.get("enableIngress"):
        problems.append("headGroupSpec.enableIngress exposes the dashboard")
    for group in [head, *(spec.get("workerGroupSpecs") or [])]:
        pod = group.get("template", {}).get("spec", {})
        if pod.get("hostNetwork"):
            problems.append(f"{group.get('groupName', 'head')}: hostNetwork exposes every Ray port")
        for c in pod.get("containers") or []:
            if any(p.get("hostPort") for p in c.get("ports") or []):
                problems.append(f"{c['name']}: a hostPort exposes a Ray port on the node")
            for e in c.get("env") or []:
                if e.get("name") == "RAY_AUTH_MODE" and e.get("value") != "token":
                    problems.append(f"{c['name']}: RAY_AUTH_MODE={e.get('value')} turns auth off")
    return problems


@pytest.mark.parametrize("name", ["raycluster.yaml", "rayjob.yaml"])
def test_kuberay_manifests_are_closed(name):
    doc = yaml.safe_load((INFRA / "kuberay" / name).read_text())
    assert check_kuberay_closed(doc) == []


def _cluster(doc):
    return doc["spec"].get("rayClusterSpec", doc["spec"])


@pytest.mark.parametrize("name", ["raycluster.yaml", "rayjob.yaml"])
@pytest.mark.parametrize(
    ("mutation", "problem"),
    [
        (lambda s: s.pop("authOptions"), "needs mode: token"),
        (lambda s: s["authOptions"].update(mode="disabled"), "needs mode: token"),
        (lambda s: s["authOptions"].pop("secretName"), "secretName"),
        (lambda s: s.update(rayVersion="2.51.0"), "Ray 2.52 or later"),
        (lambda s: s["headGroupSpec"].update(serviceType="LoadBalancer"), "LoadBalancer"),
        (lambda s: s["headGroupSpec"].update(serviceType="NodePort"), "NodePort"),
        (lambda s: s["headGroupSpec"].update(enableIngress=True), "enableIngress"),
        (lambda s: s["headGroupSpec"]["template"]["spec"].update(hostNetwork=True), "hostNetwork"),
        (
            lambda s: (
                s["headGroupSpec"]["template"]["spec"]["containers"][0]
                .setdefault("ports", [])
                .append({"containerPort": 8265, "hostPort": 8265})
            ),
            "hostPort",
        ),
        (
            lambda s: (
                s["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
                .setdefault("env", [])
                .append({"name": "RAY_AUTH_MODE", "value": "disabled"})
            ),
            "turns auth off",
        ),
    ],
)
def test_the_kuberay_check_catches_what_opens_the_cluster(name, mutation, problem):
    doc = yaml.safe_load((INFRA / "kuberay" / name).read_text())
    mutation(_cluster(doc))
    assert any(problem in p for p in check_kuberay_closed(doc)), check_kuberay_closed(doc)
