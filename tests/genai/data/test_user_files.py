"""Your own data as files: CSV, NumPy .npy, Parquet and folders of PNG/JPEG images, read in Ray
tasks with labels of any kind mapped to 0..K-1, and bad files refused with the file named and
nothing written."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from PIL import Image

from genai.config import DataConfig
from genai.data.dataset import SplitReader, read_split
from genai.data.feature_spec import features_key, scale_rows
from genai.data.features import first_rows
from genai.data.prepare import find_prepared, locate, prepare
from genai.data.sources import DataError, map_labels
from genai.data.split import SPLITS, permute
from genai.storage import ArtifactStore

pytestmark = pytest.mark.usefixtures("ray_cluster")


def write_csv(path, columns: dict) -> str:
    pacsv.write_csv(pa.table(columns), path)
    return str(path)


def digit_images(root, n: int = 60, *, colour: bool = False, labelled: bool = True) -> str:
    """n 8x8 PNGs of scikit-learn's digits, in a subfolder per class name when labelled."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    for i in range(n):
        pixels = (digits.images[i] * 255 / 16).astype(np.uint8)
        img = Image.fromarray(pixels, "L").convert("RGB" if colour else "L")
        folder = root / names[digits.target[i]] if labelled else root
        folder.mkdir(parents=True, exist_ok=True)
        img.save(folder / f"{i:04d}.png")
    return str(root)


def every_row(store: ArtifactStore, key: str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """All splits' rows back in the source's order: (values, labels, split code per row)."""
    parts = [read_split(store, key, s) for s in SPLITS]
    rows = [store.read_table(f"{key}/split={s}").column("row").to_numpy() for s in SPLITS]
    ids = np.concatenate([np.sort(r) for r in rows])
    n = len(ids)
    source_index = np.argsort(permute(np.arange(n), n, 0 * 7919 + 17))  # row id -> source row
    order = np.argsort(source_index[ids])
    values = np.concatenate([p[0] for p in parts])[order]
    labels = np.concatenate([p[1] for p in parts])[order] if parts[0][1] is not None else None
    codes = np.concatenate([np.full(len(r), i) for i, r in enumerate(rows)])[order]
    return values, labels, codes


def test_labels_of_any_kind_map_to_codes_in_sorted_order():
    codes, names = map_labels(np.array(["cat", "dog", "cat", "ant"]), "labels")
    assert codes.tolist() == [1, 2, 1, 0] and names == ["ant", "cat", "dog"]
    codes, names = map_labels(np.array([7, 3, 7]), "labels")
    assert codes.tolist() == [1, 0, 1] and names == [3, 7]
    codes, names = map_labels(np.array([0.5, 1.5]), "labels")
    assert codes.tolist() == [0, 1] and names == [0.5, 1.5]
    codes, names = map_labels(np.array([2, 0, 1]), "labels")  # already 0..K-1: kept, no names
    assert codes.tolist() == [2, 0, 1] and names is None
    with pytest.raises(DataError, match="labels holds NaN or inf; row 1 is nan"):
        map_labels(np.array([0.0, np.nan]), "labels")


def test_csv_every_column_but_the_named_labels(tmp_path):
    store = ArtifactStore(f"file://{tmp_path}/store")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 3))
    uri = write_csv(tmp_path / "d.csv", {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2],
                                          "kind": ["red", "green", "blue"] * 30})  # fmt: skip
    cfg = DataConfig(source="csv", uri=uri, label_column="kind", normalise="none")
    prepared = prepare(cfg, store)
    assert prepared.manifest["shape"] == [3] and prepared.manifest["kind"] == "vector"
    assert prepared.manifest["labels"]["names"] == ["blue", "green", "red"]
    values, labels, codes = every_row(store, prepared.key)
    np.testing.assert_allclose(values, x.astype(np.float32), rtol=1e-6)
    assert labels[:3].tolist() == [2, 1, 0]
    for c in range(3):  # 30 rows a class: 24 / 3 / 3, stratified
        assert np.bincount(codes[labels == c], minlength=3).tolist() == [24, 3, 3]
    shaped = prepare(DataConfig(source="csv", uri=uri, columns=("a", "b")), store)
    assert shaped.manifest["kind"] == "points" and shaped.manifest["labels"] is None


def test_parquet_defaults_to_every_numeric_and_list_column_but_the_label(tmp_path):
    store = ArtifactStore(f"file://{tmp_path}/store")
    n = 120
    table = pa.table({"u": np.arange(n, dtype=np.float64), "v": list(np.ones((n, 2))),
                      "name": ["p"] * n, "y": np.arange(n) % 2})  # fmt: skip
    path = tmp_path / "mixed.parquet"
    pq.write_table(table, path, row_group_size=50)  # three row groups, three read units
    prepared = prepare(DataConfig(source="parquet", uri=str(path), label_column="y"), store)
    assert prepared.manifest["shape"] == [3]  # u and the two values of v; not name, not y
    assert sum(prepared.rows.values()) == n
    assert prepared.manifest["source"]["columns"] is None  # the default, hashed as given


def test_npy_rows_flat_unless_shaped_and_labels_from_a_second_file(tmp_path):
    store = ArtifactStore(f"file://{tmp_path}/store")
    x = np.arange(40 * 16, dtype=np.float32).reshape(40, 4, 4)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.array(["odd", "even"] * 20))
    flat = prepare(DataConfig(source="npy", uri=str(tmp_path / "x.npy")), store)
    assert flat.manifest["shape"] == [16] and flat.manifest["kind"] == "vector"
    cfg = DataConfig(source="npy", uri=str(tmp_path / "x.npy"), shape=(4, 4), normalise="none",
                     label_uri=str(tmp_path / "y.npy"))  # fmt: skip
    assert cfg.image and cfg.labelled
    images = prepare(cfg, store, features=False)
    assert images.manifest["kind"] == "image" and images.manifest["shape"] == [4, 4]
    values, labels, _ = every_row(store, images.key)
    np.testing.assert_array_equal(values, x)
    assert images.manifest["labels"]["names"] == ["even", "odd"] and labels[:2].tolist() == [1, 0]


def test_image_folder_labelled_by_subfolder_grey_and_colour(tmp_path):
    store = ArtifactStore(f"file://{tmp_path}/store")
    grey = prepare(DataConfig(source="images", uri=digit_images(tmp_path / "grey")), store,
                   features=False)  # fmt: skip
    assert grey.manifest["shape"] == [8, 8] and grey.manifest["kind"] == "image"
    assert grey.manifest["normalisation"]["method"] == "pixel_range"  # 8-bit: / 255
    assert grey.manifest["labels"]["names"][:3] == ["eight", "five", "four"]  # sorted names
    values, labels, _ = every_row(store, grey.key)
    assert values.max() == 1.0 and values.min() == 0.0
    assert len(set(labels.tolist())) == 10
    colour = prepare(
        DataConfig(source="images", uri=digit_images(tmp_path / "rgb", colour=True)), store,
        features=False,
    )  # fmt: skip
    assert colour.manifest["shape"] == [3, 8, 8]
    rgb, _, _ = every_row(store, colour.key)
    np.testing.assert_array_equal(rgb[:, 0], values)  # grey in every channel, same order
    flat = digit_images(tmp_path / "flat", labelled=False)
    unlabelled = prepare(DataConfig(source="images", uri=flat, image_labels=False), store,
                         features=False)  # fmt: skip
    assert unlabelled.manifest["labels"] is None and sum(unlabelled.rows.values()) == 60


def test_a_prepared_folder_is_found_again_without_ray_or_reading_a_pixel(tmp_path):
    """The version hashes the listing: found with no Ray call and no image opened; a changed file
    (size or modification time) is a new version."""
    import subprocess
    import sys

    store = ArtifactStore(f"file://{tmp_path}/store")
    folder = digit_images(tmp_path / "imgs", n=30)
    cfg = DataConfig(source="images", uri=folder)
    prepared = prepare(cfg, store, features=False)
    code = (
        "import sys, PIL.Image\n"
        "PIL.Image.open = None  # any image opened would fail here\n"
        "from genai.config import DataConfig\n"
        "from genai.data.prepare import find_prepared\n"
        "from genai.storage import ArtifactStore\n"
        f"found = find_prepared(DataConfig(source='images', uri={folder!r}),"
        f" ArtifactStore({store.uri!r}))\n"
        "print(found.version, 'ray' in sys.modules, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [prepared.version, "False", "False"]
    Image.new("L", (8, 8), 255).save(tmp_path / "imgs" / "zero" / "0000.png")  # a change
    assert locate(cfg).version != prepared.version
    assert find_prepared(cfg, store) is None


def bad_size(root):
    digit_images(root, n=30)
    Image.new("L", (9, 8)).save(root / "zero" / "odd.png")


def corrupt(root):
    digit_images(root, n=30)
    (root / "zero" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image at all")


def grey_then_colour(root):
    digit_images(root, n=30)
    Image.new("RGB", (8, 8), (200, 10, 10)).save(root / "zero" / "red.png")


def depth_16_after_8(root):
    digit_images(root, n=30)
    Image.fromarray(np.full((8, 8), 40000, np.uint16)).save(root / "zero" / "z16.png")  # I;16


BAD = {
    "loose images": (
        lambda root: digit_images(root, n=5, labelled=False),
        "data.image_labels: 5 images sit directly in .*; put each class in a subfolder",
    ),
    "sizes differ": (
        bad_size,
        "images of .* differ in size: .* is 8x8, 'zero/odd.png' is 9x8; resize them alike",
    ),
    "corrupt file": (corrupt, "data.uri: zero/broken.png in .* is not a readable image"),
    "grey and colour": (grey_then_colour, "'zero/red.png' in .* is colour .* is grey"),
    "no images": (lambda root: root.mkdir(), "holds no .png/.jpg/.jpeg images"),
    "8-bit and 16-bit": (depth_16_after_8, "'zero/z16.png' in .* has I;16 pixels but .* has L"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_image_folders_are_refused_naming_the_file_and_nothing_is_written(tmp_path, case):
    make, message = BAD[case]
    make(tmp_path / "imgs")
    store = ArtifactStore(f"file://{tmp_path}/store")
    with pytest.raises(DataError, match=message):
        prepare(DataConfig(source="images", uri=str(tmp_path / "imgs")), store)
    assert store.fs.find(store.base) == []


def test_bad_csv_and_npy_are_refused_naming_the_field(tmp_path):
    store = ArtifactStore(f"file://{tmp_path}/store")
    uri = write_csv(tmp_path / "d.csv", {"a": [1.0, 2.0], "b": [3.0, 4.0]})
    with pytest.raises(DataError, match="data.columns: 'z' not in .*; its columns are 'a', 'b'"):
        prepare(DataConfig(source="csv", uri=uri, columns=("z",)), store)
    with pytest.raises(DataError, match=r"data.shape: \[3\] holds 3 values but rows of .* have 2"):
        prepare(DataConfig(source="csv", uri=uri, shape=(3,)), store)
    np.save(tmp_path / "x.npy", np.zeros((10, 2)))
    np.save(tmp_path / "y.npy", np.zeros(9))
    with pytest.raises(
        DataError, match=r"data.label_uri: .* shape \[9\]; expected one label per row"
    ):
        prepare(DataConfig(source="npy", uri=str(tmp_path / "x.npy"),
                           label_uri=str(tmp_path / "y.npy")), store)  # fmt: skip
    with pytest.raises(DataError, match="data.uri: .*nowhere.npy does not exist"):
        prepare(DataConfig(source="npy", uri=str(tmp_path / "nowhere.npy")), store)
    assert store.fs.find(store.base) == []


def test_bad_parquet_and_csv_files_are_named(tmp_path):
    store = ArtifactStore(f"file://{tmp_path}/store")
    folder = tmp_path / "pq"
    folder.mkdir()
    empty = pa.table({"a": pa.array([], pa.float64()), "y": pa.array([], pa.int64())})
    pq.write_table(empty, folder / "0-empty.parquet")  # sorts first, holds no row
    pq.write_table(pa.table({"a": np.arange(30.0), "y": np.arange(30) % 2}), folder / "1.parquet")
    prepared = prepare(DataConfig(source="parquet", uri=str(folder), label_column="y"), store)
    assert prepared.manifest["shape"] == [1] and sum(prepared.rows.values()) == 30
    mixed = tmp_path / "mixed"  # rows of 2 values in a.parquet, of 3 in b.parquet
    mixed.mkdir()
    for name, width in (("a", 2), ("b", 3)):
        lists = pa.table({"v": list(np.ones((30, width))), "y": np.arange(30) % 2})
        pq.write_table(lists, mixed / f"{name}.parquet")
    with pytest.raises(DataError, match="rows of b.parquet .* have 3 values, the first file's"
                                        " have 2"):  # fmt: skip
        prepare(DataConfig(source="parquet", uri=str(mixed), label_column="y"), store)
    csvs = tmp_path / "csvs"
    csvs.mkdir()
    (csvs / "0.csv").write_text("a,b\n")
    write_csv(csvs / "1.csv", {"a": [1.0, 2.0], "b": [3.0, 4.0]})
    with pytest.raises(DataError, match="0.csv in .* has a header but no rows"):
        prepare(DataConfig(source="csv", uri=str(csvs)), store)


def test_a_saved_pandas_index_is_not_a_feature(tmp_path):
    frame = pd.DataFrame({"a": np.arange(40.0), "b": -np.arange(40.0), "y": np.arange(40) % 2})
    frame[frame.a % 3 > 0].to_parquet(tmp_path / "f.parquet")  # saves __index_level_0__
    assert "__index_level_0__" in pq.read_schema(tmp_path / "f.parquet").names
    store = ArtifactStore(f"file://{tmp_path}/store")
    prepared = prepare(DataConfig(source="parquet", uri=str(tmp_path / "f.parquet"),
                                  label_column="y"), store)  # fmt: skip
    assert prepared.manifest["shape"] == [2]


def test_samples_of_a_large_split_are_drawn_over_its_row_groups(tmp_path):
    """A class-sorted file: the scaling rows and the judge's reference set are random samples
    of the split (not its first rows in file order), and as many as asked for even when the
    row groups are small."""
    n, k = 9000, 3  # 7,200 train rows: the first 5,000 in file order hold 4% of class 2
    x = np.repeat(np.arange(k, dtype=np.float32), n // k)[:, None] * np.ones((1, 64), np.float32)
    table = pa.table({"x": list(x), "y": np.repeat(np.arange(k), n // k)})
    pq.write_table(table, tmp_path / "sorted.parquet", row_group_size=60)  # 120 small units
    store = ArtifactStore(f"file://{tmp_path}/store")
    cfg = DataConfig(source="parquet", uri=str(tmp_path / "sorted.parquet"), label_column="y",
                     shape=(8, 8), normalise="none")  # fmt: skip
    prepared = prepare(cfg, store, features=False)
    train = SplitReader(store, prepared.key, "train", budget_bytes=1 << 16)
    assert train.rows > scale_rows(prepared.manifest) and not train.whole
    labels = np.concatenate([y for _, y in first_rows(train, prepared.manifest)])
    assert len(labels) == scale_rows(prepared.manifest)
    shares = np.bincount(labels, minlength=k) / len(labels)
    assert np.all(shares > 0.25), shares  # a sample of whole small groups: about 1/3 +- 0.02
    val = SplitReader(store, prepared.key, "val", budget_bytes=1 << 10)
    assert max(p.rows for p in val.parts) < 16  # many small groups: 32 of them hold < 500 rows
    values, labels = val.head(500)
    assert len(values) == len(labels) == 500
    assert len(np.unique(values[:, 0, 0])) == k


def test_a_folder_smaller_than_one_batch_gets_its_feature_network(tmp_path):
    """Fewer train rows than the network's batch of 64: one batch of them (it used to loop
    forever, never yielding a batch)."""
    store = ArtifactStore(f"file://{tmp_path}/store")
    prepared = prepare(DataConfig(source="images", uri=digit_images(tmp_path / "imgs", n=60,
                                                                   colour=True)), store)  # fmt: skip
    assert prepared.rows["train"] < 64
    meta = store.read_json(f"{features_key(prepared.manifest)}/meta.json")
    assert 0 <= meta["pretext_accuracy"] <= 1 and meta["spec"]["steps"] == 20


def test_one_command_trains_a_feature_network_and_another_waits(tmp_path):
    """Its lease: a second command meanwhile waits (or, with --no-wait, says who holds it)."""
    from genai import layout
    from genai.data.feature_spec import trained
    from genai.data.prepare import ensure_feature_net
    from genai.lease import LeaseHeld, hold

    store = ArtifactStore(f"file://{tmp_path}/store")
    cfg = DataConfig(source="images", uri=digit_images(tmp_path / "imgs", n=60))
    prepared = prepare(cfg, store, features=False)
    key = features_key(prepared.manifest)
    with (
        hold(store, layout.lease(key), "another command's feature network"),
        pytest.raises(LeaseHeld, match="feature network .* is being produced by"),
    ):
        ensure_feature_net(store, prepared.key, wait=False)
    assert not trained(store, prepared.manifest)  # nothing written by the one that stopped
    assert ensure_feature_net(store, prepared.key).net.num_features == 64  # free: trains


def test_a_csv_on_s3(bucket, tmp_path):
    import boto3

    local = write_csv(tmp_path / "pts.csv", {"u": np.arange(50.0), "v": -np.arange(50.0)})
    boto3.client("s3").upload_file(local, bucket, "in/pts.csv")
    store = ArtifactStore(f"s3://{bucket}/out")
    cfg = DataConfig(source="csv", uri=f"s3://{bucket}/in/pts.csv", normalise="none")
    prepared = prepare(cfg, store)
    values, _, _ = every_row(store, prepared.key)
    assert values.shape == (50, 2) and values[3].tolist() == [3.0, -3.0]
