"""The layers of docs/architecture.md: cli -> flows -> genai; genai never imports prefect or flows
(not even inside a function); inside genai every import runs down the floors below, but one;
no two files import each other; ray only where the docs allow; every store key formatted in
genai/layout.py."""

from __future__ import annotations

import ast
import graphlib
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
             "pipelines/", "comparisons/", "cells/")  # fmt: skip
KEY_FILES = ("manifest.json", "meta.json", "model.pt", "config.json", "metrics.parquet",
             "result.json", "trials.parquet", "best.json", "plot.png", "summary.json",
             "samples.parquet", "state.pt", "/checkpoints", "split=", "cells.parquet",
             "leaderboard.parquet", "record.json", "samples.npy")  # fmt: skip


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


# genai's floors, lowest first: a unit (a module, or a package's whole folder) imports only units
# on floors below its own (imports inside functions and under TYPE_CHECKING count too)
FLOORS = (
    ("genai.errors", "genai.layout", "genai.progress", "genai.daemon", "genai.plots"),
    ("genai.strict", "genai.storage", "genai.cluster"),
    (
        "genai.lease",
        "genai.tracking",
        "genai.losses",
        "genai.configfile",
        "genai.forms",
        "genai.plugins",
    ),
    ("genai.model_config",),
    ("genai.config",),
    ("genai.models",),
    ("genai.data",),
    ("genai.train",),
    ("genai.evaluate",),
    ("genai.tune", "genai.generate"),
    ("genai.pipeline", "genai.compare"),
)
# the one import that runs back up: model.class_path is checked to name a GenerativeModel when
# the config is validated, before anything starts (genai.plugins.family_class)
UPWARD = {("genai.plugins", "genai.models")}


def module_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def unit_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "genai" or len(parts) < 2:
        return None
    return "genai." + parts[1]


def genai_imports(path: Path) -> set[str]:
    """Every genai module (or name in one) ``path`` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("genai.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "genai":  # from genai import layout
                found |= {f"genai.{a.name}" for a in node.names}
            elif node.module.startswith("genai."):
                found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return found


def test_imports_run_down_the_floors_but_one():
    floor = {unit: i for i, units in enumerate(FLOORS) for unit in units}
    units = {unit_of(module_of(p)) for p in library_files()} - {None}
    assert units == set(floor)  # every unit has its floor: a new module must be placed
    wrong = set()
    for path in library_files():
        here = unit_of(module_of(path))
        for name in genai_imports(path):
            there = unit_of(name)
            if there in floor and there != here and floor[there] >= floor[here]:
                wrong.add((here, there, str(path.relative_to(ROOT))))
    assert {(a, b) for a, b, _ in wrong} == UPWARD, sorted(wrong)


def test_no_two_files_import_each_other():
    """No circle of files (train/checkpoint.py and train/loop.py were one)."""
    modules = {module_of(p): p for p in library_files()}
    edges = {m: (genai_imports(p) & set(modules)) - {m} for m, p in modules.items()}
    assert sum(map(len, edges.values())) > len(modules)  # the scan sees the imports
    assert circle(edges) is None


def circle(edges: dict[str, set[str]]) -> list[str] | None:
    """A circle of modules in ``edges`` (module -> modules it imports), or None."""
    try:
        graphlib.TopologicalSorter(edges).prepare()
    except graphlib.CycleError as err:
        return err.args[1]
    return None


def test_the_circle_scan_catches_two_files_importing_each_other():
    assert circle({"a": {"b"}, "b": {"a"}, "c": {"a"}}) in (["a", "b", "a"], ["b", "a", "b"])
    assert circle({"a": {"b"}, "b": set()}) is None


def test_the_floor_scan_catches_an_import_back_up(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from genai.train.loop import fit\n")
    assert unit_of(sorted(genai_imports(bad))[0]) == "genai.train"


def test_the_answer_from_the_store_loads_neither_torch_ray_nor_prefect(tmp_path):
    """What `genai train|sweep|run|prepare|compare` runs before it knows there is work: the API module,
    the configs, and each stage's stored-result lookup (on an empty store: nothing found)."""
    code = f"""
import sys
from flows import api
from genai.compare.cells import finished_comparison, primary_metric
from genai.config import CompareConfig, DataConfig, PipelineConfig, RunConfig
from genai.data.prepare import find_prepared
from genai.pipeline import finished_pipeline
from genai.storage import ArtifactStore
from genai.train.runs import find_finished
from genai.tune.record import finished_sweep, sweep_id_for

store = ArtifactStore("file://{tmp_path}/store")
run = api.load(RunConfig, "configs/vae.yaml")
pipeline = api.load(PipelineConfig, "configs/demo.yaml")
assert find_finished(run, store) is None and find_prepared(DataConfig(), store) is None
assert finished_sweep(store, sweep_id_for(run, pipeline.sweep.space, pipeline.sweep)) is None
assert finished_pipeline(pipeline, store) is None
comparison = api.load(CompareConfig, {{"data": {{"source": "ring8"}}, "families": ["gan"]}})
assert primary_metric(comparison) == "high_quality"
assert finished_comparison(store, comparison) is None
print(sorted(m for m in ("torch", "ray", "prefect") if m in sys.modules))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
