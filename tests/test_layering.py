"""The import rules of STYLE.md: genai never imports prefect; ray only where DESIGN.md allows."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Ray start-up (genai/cluster.py) is shared by preparation, training and sweeps.
RAY_ALLOWED = ("genai/train/", "genai/tune/", "genai/data/prepare.py", "genai/cluster.py")


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def library_files() -> list[Path]:
    files = sorted((ROOT / "genai").rglob("*.py"))
    assert len(files) > 5  # the scan sees the package
    return files


def test_genai_never_imports_prefect():
    offenders = [
        str(p.relative_to(ROOT)) for p in library_files() if "prefect" in imported_roots(p)
    ]
    assert offenders == []


def test_ray_only_in_train_tune_and_data_preparation():
    offenders = []
    for path in library_files():
        rel = path.relative_to(ROOT).as_posix()
        if "ray" in imported_roots(path) and not rel.startswith(RAY_ALLOWED):
            offenders.append(rel)
    assert offenders == []


def test_models_and_losses_import_neither_ray_nor_prefect():
    for sub in ("models", "losses"):
        for path in (ROOT / "genai" / sub).rglob("*.py"):
            assert not imported_roots(path) & {"ray", "prefect"}, path


def test_the_scan_catches_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom prefect import flow\nimport ray.data\n")
    assert {"prefect", "ray"} <= imported_roots(bad)
