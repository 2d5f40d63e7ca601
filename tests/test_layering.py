"""The layers of DESIGN section 2: cli -> flows -> genai; genai never imports prefect or flows
(not even inside a function); ray only where DESIGN allows; every store key formatted in
genai/layout.py."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Ray start-up (genai/cluster.py) is shared by preparation, training and sweeps.
RAY_ALLOWED = (
    "genai/train/", "genai/tune/", "genai/cluster.py",
    "genai/data/prepare.py", "genai/data/in_memory.py", "genai/data/streamed.py",
)  # fmt: skip


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


def test_genai_never_imports_prefect_or_flows():
    offenders = [
        (str(p.relative_to(ROOT)), sorted(imported_roots(p) & {"prefect", "flows"}))
        for p in library_files()
        if imported_roots(p) & {"prefect", "flows"}
    ]
    assert offenders == []


def test_importing_every_library_module_loads_neither_flows_nor_prefect():
    """The same at run time: import every genai module in a fresh interpreter."""
    modules = [
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in library_files()
    ]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flows', 'prefect')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_the_cli_lives_with_the_flows():
    assert not (ROOT / "genai" / "cli.py").exists()
    assert 'genai = "flows.cli:main"' in (ROOT / "pyproject.toml").read_text()


KEY_ROOTS = ("datasets/", "features/", "runs/", "sweeps/", "evaluations/", "samples/",
             "pipelines/")  # fmt: skip
KEY_FILES = ("manifest.json", "meta.json", "model.pt", "config.json", "metrics.parquet",
             "result.json", "trials.parquet", "best.json", "plot.png", "summary.json",
             "samples.parquet", "state.pt", "/checkpoints", "split=")  # fmt: skip


def key_literals(path: Path) -> list[str]:
    """String constants (f-string parts included) that look like a piece of a store key."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            keyish = text.startswith(KEY_ROOTS) or any(f in text for f in KEY_FILES)
            if keyish and "\n" not in text and " " not in text.strip():  # not a message
                found.append(text)
    return found


def test_store_keys_are_formatted_in_layout_only():
    files = library_files() + sorted((ROOT / "flows").rglob("*.py"))
    offenders = {
        str(p.relative_to(ROOT)): key_literals(p)
        for p in files
        if p.name != "layout.py" and key_literals(p)
    }
    assert offenders == {}
    assert key_literals(ROOT / "genai" / "layout.py")  # the scan sees keys where they are


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


def test_the_key_scan_catches_a_key_formatted_elsewhere(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('key = f"runs/{run_id}/result.json"\nmsg = "no run at runs/ in the store"\n')
    assert key_literals(bad) == ["runs/", "/result.json"]
