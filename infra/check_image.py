"""Fail an image build whose torch is the wrong build or that lacks ray's `default` extra.

`python infra/check_image.py cpu|gpu` runs last in each target of infra/Dockerfile (tests/infra runs
it too): `cpu` wants torch's CPU build, `gpu` a CUDA build; both want every requirement of
`ray[default]` (the dashboard and the Jobs API that the RayJob and `ray job submit` use) installed.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, distribution, version

from packaging.requirements import Requirement


def problems(variant: str) -> list[str]:
    import torch

    found = []
    cuda = torch.version.cuda
    if variant == "cpu" and cuda:
        found.append(f"torch {torch.__version__} is a CUDA {cuda} build, the cpu image wants CPU")
    if variant == "gpu" and not cuda:
        found.append(f"torch {torch.__version__} is not a CUDA build, the gpu image needs one")
    for line in distribution("ray").requires or []:
        req = Requirement(line)
        if "extra" not in str(req.marker) or not req.marker.evaluate({"extra": "default"}):
            continue  # a requirement of plain ray, or of another extra
        try:
            have = version(req.name)
        except PackageNotFoundError:
            found.append(f"ray[default] needs {req}: not installed")
            continue
        if not req.specifier.contains(have, prereleases=True):
            found.append(f"ray[default] needs {req}: {req.name} {have} is installed")
    return found


if __name__ == "__main__":
    if sys.argv[1:] not in (["cpu"], ["gpu"]):
        raise SystemExit("usage: check_image.py cpu|gpu")
    bad = problems(sys.argv[1])
    print("\n".join(bad) or f"{sys.argv[1]} image: torch build and ray[default] as wanted")
    raise SystemExit(1 if bad else 0)
