"""Preparation on a real local Ray, into file:// and s3:// stores."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genai.config import DataConfig
from genai.configfile import load_config
from genai.data.dataset import denormalise, read_manifest, read_split
from genai.data.prepare import prepare
from genai.data.sources import DataError, load_builtin
from genai.data.split import SPLITS, split_codes
from genai.storage import ArtifactStore
from genai.strict import ConfigError

pytestmark = pytest.mark.usefixtures("ray_cluster")


def snapshot(store: ArtifactStore) -> dict[str, object]:
    """Every file under the root (temporaries too) with what changes when it is rewritten."""
    info = store.fs.find(store.base, detail=True)
    return {k: (v.get("mtime") or v.get("LastModified"), v.get("size")) for k, v in info.items()}


def test_digits_splits_cover_every_class(store):
    prepared = prepare(DataConfig(source="digits"), store, features=False)
    assert sum(prepared.rows.values()) == 1797
    assert prepared.uri == f"{store.uri}/datasets/digits/{prepared.version}"
    for split in SPLITS:
        values, labels = read_split(store, prepared.key, split)
        assert values.shape == (prepared.rows[split], 8, 8)
        assert set(labels.tolist()) == set(range(10)), split
    manifest = read_manifest(store, prepared.key)
    assert manifest["rows"] == prepared.rows and manifest["shape"] == [8, 8]
    assert manifest["normalisation"]["method"] == "minmax"
    assert len(manifest["stats"]["train"]["mean"]) == 64
    assert manifest["content_hash"].startswith(prepared.version)
    # the Parquet files describe themselves
    files = [k for k in store.list(prepared.key) if k.endswith(".parquet")]
    fs, _ = store.arrow_filesystem()
    meta = ArtifactStore.table_metadata(pq.read_schema(store.path(files[0]), filesystem=fs))
    assert meta["shape"] == [8, 8] and meta["normalisation"] == manifest["normalisation"]


def test_values_map_back_to_data_units(store):
    prepared = prepare(DataConfig(source="digits"), store, features=False)
    source = load_builtin(DataConfig(source="digits"))
    values, _ = read_split(store, prepared.key, "train")
    table = store.read_table(f"{prepared.key}/split=train").sort_by("row")
    rows = table.column("row").to_numpy()
    assert values.min() >= 0.0 and values.max() <= 1.0
    np.testing.assert_allclose(
        denormalise(values, prepared.manifest), source.values[rows], atol=1e-4
    )


def test_preparing_twice_is_a_no_op(store):
    first = prepare(DataConfig(source="ring8", n=2000, seed=1), store)
    before = snapshot(store)
    second = prepare(DataConfig(source="ring8", n=2000, seed=1), store)
    assert (second.version, second.uri, second.created) == (first.version, first.uri, False)
    assert snapshot(store) == before  # nothing written, nothing touched
    other = prepare(DataConfig(source="ring8", n=2000, seed=2), store)
    assert other.version != first.version


def test_split_is_deterministic_and_stratified():
    labels = np.repeat(np.arange(5), 40)
    cfg = DataConfig()
    a, b = split_codes(labels, 200, cfg.split, 7), split_codes(labels, 200, cfg.split, 7)
    assert np.array_equal(a, b)
    for c in range(5):
        assert np.bincount(a[labels == c], minlength=3).tolist() == [32, 4, 4]


def write_parquet(path, table: pa.Table) -> str:
    pq.write_table(table, path)
    return str(path)


def parquet_config(uri: str, **kw) -> DataConfig:
    return DataConfig(source="parquet", uri=uri, **{"columns": ("x",), **kw})


def test_user_parquet_list_column_with_labels(store, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    uri = write_parquet(
        tmp_path / "mine.parquet",
        pa.table({"x": list(x), "y": np.repeat(np.arange(3), 100)}),
    )
    prepared = prepare(parquet_config(uri, label_column="y", name="mine"), store)
    assert prepared.rows == {"train": 240, "val": 30, "test": 30}
    values, labels = read_split(store, prepared.key, "val")
    assert values.shape == (30, 4) and sorted(set(labels.tolist())) == [0, 1, 2]


def test_user_parquet_from_s3_scalar_columns(bucket, tmp_path):
    import boto3

    local = write_parquet(
        tmp_path / "pts.parquet", pa.table({"a": np.arange(100.0), "b": -1.0 * np.arange(100)})
    )
    boto3.client("s3").upload_file(local, bucket, "in/pts.parquet")
    store = ArtifactStore(f"s3://{bucket}/out")
    prepared = prepare(
        DataConfig(source="parquet", uri=f"s3://{bucket}/in/pts.parquet", columns=("a", "b")), store
    )
    assert sum(prepared.rows.values()) == 100 and prepared.manifest["shape"] == [2]


BAD_PARQUET = {
    "nan": (
        lambda: pa.table({"x": [[1.0, 2.0], [float("nan"), 1.0], [3.0, 4.0]] * 5}),
        {},
        "rows in .* hold NaN or inf values \\(first rows: \\['bad.parquet row group 0 row 1',"
        " 'bad.parquet row group 0 row 4', 'bad.parquet row group 0 row 7'",
    ),
    "missing column": (
        lambda: pa.table({"values": [[1.0, 2.0]] * 10}),
        {},
        "data.columns: 'x' not in .*; its columns are 'values'",
    ),
    "missing label": (
        lambda: pa.table({"x": [[1.0, 2.0]] * 10}),
        {"label_column": "y"},
        "data.label_column: 'y' not in",
    ),
    "empty": (
        lambda: pa.table({"x": pa.array([], type=pa.list_(pa.float32()))}),
        {},
        "data.uri: .* has no rows",
    ),
    "mixed shapes": (
        lambda: pa.table({"x": [[1.0, 2.0], [1.0, 2.0], [1.0, 2.0, 3.0]]}),
        {},
        "mixed shapes: row 0 has 2 values, row 2 has 3",
    ),
    "labels not finite": (  # labels of any other kind are mapped (test_user_files.py)
        lambda: pa.table({"x": [[1.0, 2.0]] * 4, "y": [0.0, 1.0, float("inf"), 2.0]}),
        {"label_column": "y"},
        "data.label_column: 'y' in .*bad.parquet row group 0 holds NaN or inf",
    ),
    "text values": (
        lambda: pa.table({"x": ["a", "b"]}),
        {},
        "has type string; expected numbers",
    ),
}


@pytest.mark.parametrize("case", list(BAD_PARQUET))
def test_bad_user_parquet_is_rejected_and_nothing_written(store, tmp_path, case):
    make, extra, message = BAD_PARQUET[case]
    uri = write_parquet(tmp_path / "bad.parquet", make())
    with pytest.raises(DataError, match=message):
        prepare(parquet_config(uri, **extra), store)
    assert store.fs.find(store.base) == []


def test_missing_user_file_is_a_clear_error(store, tmp_path):
    with pytest.raises(DataError, match="data.uri: .*nowhere.parquet does not exist"):
        prepare(parquet_config(str(tmp_path / "nowhere.parquet")), store)
    assert store.fs.find(store.base) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"source": "mnist"},
            "data.source: 'mnist' is not one of 'digits', 'photos', 'shapes', 'ring8'",
        ),
        ({"sorce": "digits"}, "data.sorce: unknown field 'sorce'; allowed fields: source"),
        ({"source": "ring8", "n": -3}, "data.n: Input should be greater than 0 \\(got -3\\)"),
    ],
)
def test_bad_config_fails_before_any_work(data, message):
    with pytest.raises(ConfigError, match=message):
        load_config(DataConfig, data=data, prefix="data")
