"""Every infra and deployment file is valid, checked without Docker or Kubernetes.

compose.yaml: parsed by compose-spec (the Compose Specification's strict parser) plus references
between services; KubeRay manifests: the required fields of the RayCluster / RayJob CRDs and of the
pod templates inside; the work pool: Prefect's process-worker template and JSON Schema; prefect.yaml:
every entrypoint imports to a flow and matches `genai serve`'s deployments.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from compose_spec import PyCompose

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"


def check_compose(text: str, base: Path) -> list[str]:
    """Problems in a compose file (empty when valid)."""
    try:
        PyCompose.from_yaml(text)
    except ValueError as err:
        return [str(err)]
    spec = yaml.safe_load(text)
    services = spec.get("services", {})
    volumes = set(spec.get("volumes", {}))
    problems = []
    for name, svc in services.items():
        if "image" not in svc and "build" not in svc:
            problems.append(f"{name}: neither image nor build")
        deps = svc.get("depends_on", [])
        for dep in deps if isinstance(deps, list) else list(deps):
            if dep not in services:
                problems.append(f"{name}: depends_on unknown service {dep!r}")
        for vol in svc.get("volumes", []):
            source = vol.split(":", 1)[0] if isinstance(vol, str) else vol.get("source")
            if source and not source.startswith((".", "/")) and source not in volumes:
                problems.append(f"{name}: volume {source!r} is not declared")
        build = svc.get("build")
        if isinstance(build, dict):
            context = (base / build.get("context", ".")).resolve()
            if not (context / build.get("dockerfile", "Dockerfile")).is_file():
                problems.append(
                    f"{name}: no Dockerfile at {context / build.get('dockerfile', 'Dockerfile')}"
                )
    return problems


def test_compose_is_valid_and_complete():
    text = (INFRA / "compose.yaml").read_text()
    assert check_compose(text, INFRA) == []
    services = set(yaml.safe_load(text)["services"])
    assert {
        "postgres",
        "prefect-server",
        "prefect-worker",
        "minio",
        "minio-setup",
        "ray-head",
        "ray-worker",
        "mlflow",
    } <= services
    assert "mc mb" in text  # the bucket is created at start


@pytest.mark.parametrize(
    ("broken", "problem"),
    [
        ("services:\n  a:\n    imagee: x\n", "imagee"),
        ("services:\n  a:\n    image: x\n    depends_on: [b]\n", "unknown service 'b'"),
        (
            "services:\n  a:\n    image: x\n    volumes: [data:/d]\n",
            "volume 'data' is not declared",
        ),
        ("services:\n  a:\n    image: x\n    ports: ['not:a:port:x']\n", "ports"),
    ],
)
def test_the_compose_check_catches_mistakes(broken, problem):
    assert any(problem in p for p in check_compose(broken, INFRA))


def container_problems(containers, where: str) -> list[str]:
    if not containers:
        return [f"{where}: no containers"]
    return [
        f"{where}.containers[{i}]: needs {k}"
        for i, c in enumerate(containers)
        for k in ("name", "image")
        if not c.get(k)
    ]


def check_raycluster_spec(spec: dict, where: str) -> list[str]:
    """RayCluster spec: headGroupSpec.template required; each worker group: groupName, template."""
    problems = []
    head = spec.get("headGroupSpec") or {}
    if "template" not in head:
        return [f"{where}.headGroupSpec.template: required"]
    problems += container_problems(
        head["template"].get("spec", {}).get("containers"), f"{where}.headGroupSpec"
    )
    for i, group in enumerate(spec.get("workerGroupSpecs") or []):
        w = f"{where}.workerGroupSpecs[{i}]"
        if not group.get("groupName"):
            problems.append(f"{w}.groupName: required")
        if "template" not in group:
            problems.append(f"{w}.template: required")
            continue
        problems += container_problems(group["template"].get("spec", {}).get("containers"), w)
        lo, hi = group.get("minReplicas", 0), group.get("maxReplicas", 2**31)
        if not lo <= group.get("replicas", lo) <= hi:
            problems.append(f"{w}: replicas outside [minReplicas, maxReplicas]")
    return problems


def check_kuberay(doc: dict) -> list[str]:
    if doc.get("apiVersion") != "ray.io/v1":
        return [f"apiVersion {doc.get('apiVersion')!r} is not ray.io/v1"]
    if not (doc.get("metadata") or {}).get("name"):
        return ["metadata.name: required"]
    spec = doc.get("spec") or {}
    if doc.get("kind") == "RayCluster":
        return check_raycluster_spec(spec, "spec")
    if doc.get("kind") == "RayJob":
        problems = [] if isinstance(spec.get("entrypoint"), str) else ["spec.entrypoint: required"]
        if "rayClusterSpec" not in spec and "clusterSelector" not in spec:
            problems.append("spec: rayClusterSpec or clusterSelector required")
        return problems + check_raycluster_spec(
            spec.get("rayClusterSpec", {}), "spec.rayClusterSpec"
        )
    return [f"kind {doc.get('kind')!r} is not RayCluster or RayJob"]


@pytest.mark.parametrize("name", ["raycluster.yaml", "rayjob.yaml"])
def test_kuberay_manifests(name):
    doc = yaml.safe_load((INFRA / "kuberay" / name).read_text())
    assert check_kuberay(doc) == []
    broken = yaml.safe_load((INFRA / "kuberay" / name).read_text())
    spec = broken["spec"].get("rayClusterSpec", broken["spec"])
    del spec["headGroupSpec"]["template"]["spec"]["containers"][0]["image"]
    assert any("needs image" in p for p in check_kuberay(broken))


def test_rayjob_runs_the_pipeline_command():
    doc = yaml.safe_load((INFRA / "kuberay" / "rayjob.yaml").read_text())
    assert doc["spec"]["entrypoint"].startswith("genai run ")


def test_work_pool_matches_prefects_process_worker():
    from prefect.workers.process import ProcessWorker

    pool = json.loads((INFRA / "prefect" / "work-pool.json").read_text())
    assert pool["type"] == "process" == ProcessWorker.type
    default = ProcessWorker.get_default_base_job_template()
    assert set(pool["base_job_template"]["job_configuration"]) <= set(default["job_configuration"])
    jsonschema.Draft7Validator.check_schema(pool["base_job_template"]["variables"])


def test_prefect_yaml_entrypoints_are_the_served_flows():
    from prefect import Flow

    from flows.deployments import deployments

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    declared = {}
    for dep in spec["deployments"]:
        module, attr = dep["entrypoint"].split(":")
        flow = getattr(importlib.import_module(module.removesuffix(".py").replace("/", ".")), attr)
        assert isinstance(flow, Flow)
        assert dep["enforce_parameter_schema"] is True
        assert dep["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
        declared[dep["name"]] = flow.name
    served = {d.name: d.flow_name for d in deployments()}
    for d in deployments():  # genai serve queues a burst the same way
        assert (d.concurrency_limit, d.concurrency_options.collision_strategy) == (1, "ENQUEUE")
    assert (
        declared
        == served
        == {
            "nightly-pipeline": "pipeline",
            "pipeline": "pipeline",
            "sweep": "sweep",
            "train": "train",
            "compare": "compare",
        }
    )
    nightly = next(d for d in spec["deployments"] if d["name"] == "nightly-pipeline")
    from prefect.client.schemas.schedules import CronSchedule

    assert CronSchedule(cron=nightly["schedules"][0]["cron"]).cron == "0 3 * * *"
    with pytest.raises(ValueError):
        CronSchedule(cron="every night")
