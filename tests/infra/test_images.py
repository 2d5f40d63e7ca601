"""The cluster images fit the manifests that use them, checked without Docker.

infra/docker-bake.json builds the `cpu` and `gpu` targets of infra/Dockerfile under the tags the
manifests name: every image of a KubeRay manifest is one of them, groups asking for GPUs run the gpu
image and the others the cpu one. Each target installs the project with constraints.txt (so
ray[default,train,tune,data] from pyproject.toml), torch from the index of its build, and runs
infra/check_image.py, which this venv (the cpu image's resolution) passes.
"""

from __future__ import annotations

import importlib.util
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def stages(dockerfile: str) -> dict[str, list[str]]:
    """Each `FROM ... AS name` stage's instructions (continuation lines joined)."""
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in re.sub(r"\\\n", " ", dockerfile).splitlines():
        line = line.strip()
        if m := re.match(r"(?i)FROM\s+\S+(?:\s+AS\s+(\S+))?", line):
            current = found.setdefault(m.group(1) or f"stage{len(found)}", [])
        if line and not line.startswith("#"):
            current.append(line)
    return found


def stage_text(all_stages: dict[str, list[str]], name: str) -> str:
    """A stage's instructions with those of the stages it is built FROM."""
    lines = all_stages.get(name, [])
    parent = lines[0].split()[1] if lines else ""
    return (stage_text(all_stages, parent) if parent in all_stages else "") + "\n".join(lines)


def check_dockerfile(dockerfile: str, pyproject: str) -> list[str]:
    problems = []
    ray = [
        Requirement(d)
        for d in tomllib.loads(pyproject)["project"]["dependencies"]
        if Requirement(d).name == "ray"
    ]
    if not ray or "default" not in ray[0].extras:
        problems.append("pyproject.toml: ray must be required with its `default` extra")
    all_stages = stages(dockerfile)
    for variant in ("cpu", "gpu"):
        text = stage_text(all_stages, variant)
        if variant not in all_stages:
            problems.append(f"Dockerfile: no `{variant}` target")
            continue
        if not re.search(r"COPY .*\bconstraints\.txt\b", text):
            problems.append(f"{variant}: constraints.txt is not copied")
        if not re.search(r"pip install .*-c constraints\.txt \.(\s|$)", text):
            problems.append(f"{variant}: the project is not installed with `-c constraints.txt .`")
        index = re.search(r"ARG TORCH_INDEX=(\S+)", text)
        if (index and index.group(1) == CPU_INDEX) != (variant == "cpu"):
            problems.append(f"{variant}: TORCH_INDEX must be {CPU_INDEX} in the cpu target only")
        if not re.search(rf"python infra/check_image\.py {variant}\b", text):
            problems.append(f"{variant}: does not run infra/check_image.py {variant}")
    return problems


def built_images(bake: dict) -> dict[str, str]:
    """tag -> Dockerfile target, for each target of the bake file."""
    return {tag: t["target"] for t in bake["target"].values() for tag in t.get("tags", [])}


def check_manifest_images(doc: dict, images: dict[str, str]) -> list[str]:
    spec = doc["spec"].get("rayClusterSpec", doc["spec"])
    groups = [("head", spec["headGroupSpec"])]
    groups += [(g["groupName"], g) for g in spec.get("workerGroupSpecs") or []]
    problems = []
    for name, group in groups:
        for c in group["template"]["spec"]["containers"]:
            res = c.get("resources") or {}
            gpu = any("gpu" in k for part in res.values() for k in part)
            wanted = "gpu" if gpu else "cpu"
            if c["image"] not in images:
                problems.append(f"{name}: {c['image']} is not built by infra/docker-bake.json")
            elif images[c["image"]] != wanted:
                problems.append(
                    f"{name}: {c['image']} is the {images[c['image']]} image, {wanted} wanted"
                )
    return problems


DOCKERFILE = (INFRA / "Dockerfile").read_text()
PYPROJECT = (ROOT / "pyproject.toml").read_text()
BAKE = json.loads((INFRA / "docker-bake.json").read_text())
MANIFESTS = ["raycluster.yaml", "rayjob.yaml"]


def test_the_dockerfile_installs_the_project_with_ray_default():
    assert check_dockerfile(DOCKERFILE, PYPROJECT) == []


@pytest.mark.parametrize(
    ("file", "old", "new", "problem"),
    [
        ("pyproject", '"ray[default,train,tune,data]', '"ray[train,tune,data]', "`default` extra"),
        ("dockerfile", "-c constraints.txt .", ".", "not installed with"),
        (
            "dockerfile",
            "COPY pyproject.toml constraints.txt README.md",
            "COPY pyproject.toml README.md",
            "not copied",
        ),
        (
            "dockerfile",
            "ARG TORCH_INDEX=https://pypi.org/simple",
            f"ARG TORCH_INDEX={CPU_INDEX}",
            "gpu: TORCH_INDEX",
        ),
        (
            "dockerfile",
            f"ARG TORCH_INDEX={CPU_INDEX}",
            "ARG TORCH_INDEX=https://pypi.org/simple",
            "cpu: TORCH_INDEX",
        ),
        ("dockerfile", "check_image.py gpu", "check_image.py cpu", "gpu: does not run"),
        ("dockerfile", "FROM base AS gpu", "FROM base AS cuda", "no `gpu` target"),
    ],
)
def test_the_dockerfile_check_catches_mistakes(file, old, new, problem):
    dockerfile, pyproject = DOCKERFILE, PYPROJECT
    if file == "pyproject":
        assert old in pyproject
        pyproject = pyproject.replace(old, new)
    else:
        assert old in dockerfile
        dockerfile = dockerfile.replace(old, new, 1)
    assert any(problem in p for p in check_dockerfile(dockerfile, pyproject))


def test_the_bake_file_builds_the_dockerfile_targets():
    all_stages = stages(DOCKERFILE)
    for name, target in BAKE["target"].items():
        assert (ROOT / target["context"] / target["dockerfile"]).resolve() == INFRA / "Dockerfile"
        assert target["target"] == name and name in all_stages
    assert set(BAKE["group"]["default"]["targets"]) == set(BAKE["target"])
    # compose builds the cpu target of the same Dockerfile
    services = yaml.safe_load((INFRA / "compose.yaml").read_text())["services"].values()
    assert {s["build"]["target"] for s in services if "build" in s} == {"cpu"}


def test_the_build_context_holds_what_the_dockerfile_copies():
    lines = (INFRA / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = [line for line in lines if line and not line.startswith("#")]
    assert allowed[0] == "*"  # all else (.venv, artifacts, .git) stays out of the context
    copied = [line.split()[1:-1] for line in DOCKERFILE.splitlines() if line.startswith("COPY ")]
    assert {f"!{src}" for srcs in copied for src in srcs} <= set(allowed)


@pytest.mark.parametrize("name", MANIFESTS)
def test_every_manifest_image_is_built_and_fits_its_group(name):
    doc = yaml.safe_load((INFRA / "kuberay" / name).read_text())
    assert check_manifest_images(doc, built_images(BAKE)) == []


def test_the_raycluster_has_a_gpu_group_on_the_gpu_image():
    spec = yaml.safe_load((INFRA / "kuberay" / "raycluster.yaml").read_text())["spec"]
    gpu = next(g for g in spec["workerGroupSpecs"] if g["groupName"] == "gpu")
    assert built_images(BAKE)[gpu["template"]["spec"]["containers"][0]["image"]] == "gpu"


@pytest.mark.parametrize(
    ("group", "image", "problem"),
    [
        ("gpu", "ghcr.io/genai-pipelines/genai:latest", "the cpu image, gpu wanted"),
        ("cpu", "ghcr.io/genai-pipelines/genai:latest-gpu", "the gpu image, cpu wanted"),
        ("cpu", "rayproject/ray:2.60.0", "not built by infra/docker-bake.json"),
    ],
)
def test_the_image_check_catches_a_wrong_image(group, image, problem):
    doc = yaml.safe_load((INFRA / "kuberay" / "raycluster.yaml").read_text())
    g = next(g for g in doc["spec"]["workerGroupSpecs"] if g["groupName"] == group)
    g["template"]["spec"]["containers"][0]["image"] = image
    assert any(problem in p for p in check_manifest_images(doc, built_images(BAKE)))


def load_check_image():
    spec = importlib.util.spec_from_file_location("check_image", INFRA / "check_image.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_check_image_passes_this_venv_as_the_cpu_image_and_catches_the_rest(monkeypatch):
    check_image = load_check_image()
    assert check_image.problems("cpu") == []  # this venv: the CPU wheel and ray[default]
    assert any("not a CUDA build" in p for p in check_image.problems("gpu"))
    real = check_image.version

    def missing_aiohttp_cors(name):
        if name.replace("-", "_").lower() == "aiohttp_cors":
            raise check_image.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(check_image, "version", missing_aiohttp_cors)
    assert any("aiohttp" in p and "not installed" in p for p in check_image.problems("cpu"))
