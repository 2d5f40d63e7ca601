"""The artifact store on file:// and on a real S3 endpoint (moto's server on 127.0.0.1)."""

from __future__ import annotations

import logging
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genai.storage import ArtifactStore, StoreError
from tests.conftest import SECRET, free_port


def sample_table(n: int = 10) -> pa.Table:
    return pa.table({"i": list(range(n)), "x": [float(i) / 2 for i in range(n)]})


def test_round_trips(store):
    uri = store.write_table("runs/r1/metrics.parquet", sample_table(), metadata={"shape": [2]})
    assert uri == f"{store.uri}/runs/r1/metrics.parquet"
    table = store.read_table("runs/r1/metrics.parquet")
    assert table.equals(sample_table().replace_schema_metadata(table.schema.metadata))
    assert ArtifactStore.table_metadata(table) == {"shape": [2]}
    schema = store.read_schema("runs/r1/metrics.parquet")  # the footer alone
    assert schema.names == ["i", "x"] and ArtifactStore.table_metadata(schema) == {"shape": [2]}
    store.write_json("runs/r1/config.json", {"a": 1, "b": [1, 2]})
    assert store.read_json("runs/r1/config.json") == {"a": 1, "b": [1, 2]}
    store.write_bytes("samples/r1/grid.png", b"\x89PNG")
    assert store.read_bytes("samples/r1/grid.png") == b"\x89PNG"


def test_listing_and_exists(store):
    assert store.list() == [] and not store.exists("runs")
    store.write_json("runs/a/config.json", {})
    store.write_json("runs/b/config.json", {})
    store.write_json("sweeps/s/best.json", {})
    assert store.list("runs") == ["runs/a/config.json", "runs/b/config.json"]
    assert len(store.list()) == 3
    assert store.exists("runs/a/config.json") and store.exists("runs/a")
    assert not store.exists("runs/c/config.json")


def test_arrow_filesystem_reads_what_the_store_wrote(store):
    store.write_table("t/part.parquet", sample_table())
    fs, path = store.arrow_filesystem("t/part.parquet")
    assert pq.read_table(path, filesystem=fs).num_rows == 10


def test_a_table_rewritten_while_it_is_read_comes_whole(store):
    """A running train rewrites its metrics.parquet every epoch while `genai status`, a test or
    a sweep reads it: each read is one version, never the footer of one and the pages of the next
    (ranged S3 reads of a replaced object raised FileExpired or a short page: CI, 2026-12-01)."""
    import threading

    def version(n: int) -> pa.Table:
        return pa.table({"i": list(range(n)), "tag": [f"version {n}" * 4] * n})

    store.write_table("runs/r/metrics.parquet", version(1))
    stop, written = threading.Event(), [1]

    def rewrite():
        while not stop.is_set():
            written.append(written[-1] % 3000 + 1)
            store.write_table("runs/r/metrics.parquet", version(written[-1]))

    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        seen = [store.read_table("runs/r/metrics.parquet").to_pydict() for _ in range(40)]
    finally:
        stop.set()
        writer.join()
    assert len(set(written)) > 10  # the writer really was rewriting it meanwhile
    for table in seen:
        n = len(table["i"])
        assert table == version(n).to_pydict()


def failing_reader(fail_after: int) -> pa.RecordBatchReader:
    schema = sample_table().schema

    def batches():
        for k in range(100):
            if k == fail_after:
                raise OSError("disk on fire midway through the write")
            yield sample_table().to_batches()[0]

    return pa.RecordBatchReader.from_batches(schema, batches())


def test_failed_write_leaves_nothing_visible(store):
    with pytest.raises(OSError, match="midway"):
        store.write_table("runs/r/metrics.parquet", failing_reader(fail_after=3))
    assert not store.exists("runs/r/metrics.parquet")
    assert store.list() == []
    assert store.fs.find(store.base) == []  # not even a hidden temporary


def test_failed_overwrite_keeps_the_old_artifact(store):
    store.write_table("runs/r/metrics.parquet", sample_table(4))
    with pytest.raises(OSError):
        store.write_table("runs/r/metrics.parquet", failing_reader(fail_after=2))
    assert store.read_table("runs/r/metrics.parquet").num_rows == 4


def test_staging_commits_whole_or_not_at_all(store):
    with pytest.raises(RuntimeError, match="crash"), store.staging("datasets/d/v1") as tmp:
        store.write_json(f"{tmp}/part-0.json", {"half": True})
        assert store.list() == []  # staged files are never listed
        raise RuntimeError("crash")
    assert store.fs.find(store.base) == []
    with store.staging("datasets/d/v1") as tmp:
        store.write_json(f"{tmp}/part-0.json", {"whole": True})
    assert store.list("datasets") == ["datasets/d/v1/part-0.json"]


@pytest.mark.parametrize("key", ["../escape", "a/../../b", "/etc/passwd", "s3://other/x", "~/x"])
def test_keys_that_escape_the_root_are_rejected(store, key):
    with pytest.raises(StoreError, match="escape|relative"):
        store.write_json(key, {})
    with pytest.raises(StoreError):
        store.read_json(key)


def test_missing_artifact_names_its_uri(store):
    with pytest.raises(StoreError, match=f"no artifact at {store.uri}/nothing.json"):
        store.read_json("nothing.json")
    with pytest.raises(StoreError, match="no Parquet artifact"):
        store.read_table("nothing")


def test_missing_bucket_is_a_clear_error(s3_server):
    start = time.monotonic()
    with pytest.raises(StoreError) as info:
        ArtifactStore("s3://no-such-bucket/prefix")
    assert "s3://no-such-bucket/prefix" in str(info.value)
    assert "does not exist" in str(info.value)
    assert time.monotonic() - start < 10


def test_unreachable_endpoint_is_bounded_and_names_the_uri(monkeypatch, caplog):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    start = time.monotonic()
    with caplog.at_level(logging.DEBUG), pytest.raises(StoreError) as info:
        ArtifactStore("s3://some-bucket/prefix")
    elapsed = time.monotonic() - start
    assert "cannot reach the store: s3://some-bucket/prefix" in str(info.value)
    assert elapsed < 30, f"took {elapsed:.1f}s: retries must be bounded"
    assert SECRET not in str(info.value)
    assert SECRET not in caplog.text


def test_credentials_never_appear(store, caplog, tmp_path):
    with caplog.at_level(logging.DEBUG):
        store.write_table("runs/r/metrics.parquet", sample_table())
        store.write_json("runs/r/config.json", {"store": store.uri})
        with pytest.raises(StoreError) as info:
            store.read_json("runs/missing.json")
    assert SECRET not in repr(store) and SECRET not in store.uri
    assert SECRET not in str(info.value) and SECRET not in caplog.text
    for key in store.list():
        assert SECRET.encode() not in store.read_bytes(key)
    with pytest.raises(StoreError, match="carries credentials") as info:
        ArtifactStore(f"s3://AKIA:{SECRET}@bucket/x")
    assert SECRET not in str(info.value)


def test_default_and_env_root(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert ArtifactStore().uri == f"file://{tmp_path}/artifacts"
    monkeypatch.setenv("GENAI_STORE", f"file://{tmp_path}/elsewhere")
    assert ArtifactStore().uri == f"file://{tmp_path}/elsewhere"
    with pytest.raises(StoreError, match="scheme 'gs' is not one of 'file', 's3'"):
        ArtifactStore("gs://bucket/x")
