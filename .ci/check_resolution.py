"""Check how pip resolves this project from scratch, without installing anything.

`pip install --dry-run --ignore-installed --report` with the same constraints `make` uses: the
resolution must not backtrack over the botocore family (that is what re-collected torch from the
index as a CUDA build) and, on a machine without a GPU, must not pull CUDA libraries. Exit 1 with
the offending packages otherwise. GENAI_ALLOW_CUDA=1 accepts a CUDA build (GPU machines).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
             "--report", str(report), "-c", str(ROOT / "constraints.txt"), "-e", f"{ROOT}[dev]"],
            capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        installs = json.loads(report.read_text())["install"]
    found = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in installs}
    cuda = sorted(n for n in found if n.startswith(("nvidia-", "cuda-", "triton")))
    print(f"resolution: torch {found.get('torch')}, {len(found)} packages, {len(cuda)} CUDA ones")
    if "looking at multiple versions" in proc.stdout + proc.stderr:
        print("pip backtracked: pin the conflicting family in constraints.txt", file=sys.stderr)
        return 1
    if cuda and os.environ.get("GENAI_ALLOW_CUDA") != "1":
        print(f"CUDA packages in a CPU resolution: {', '.join(cuda)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
