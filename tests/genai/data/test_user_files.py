"""Your own data as files: CSV, NumPy .npy and folders of PNG/JPEG images (and Parquet's labels),
read with labels of any kind mapped to 0..K-1, and bad files refused with the field named."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from PIL import Image

from genai.config import DataConfig
from genai.data.sources import DataError, load_source, map_labels


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
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 3))
    uri = write_csv(tmp_path / "d.csv", {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2],
                                          "kind": ["red", "green", "blue"] * 30})  # fmt: skip
    src = load_source(DataConfig(source="csv", uri=uri, label_column="kind"))
    assert src.values.shape == (90, 3) and src.kind == "vector"
    np.testing.assert_allclose(src.values, x.astype(np.float32))
    assert src.params["label_names"] == ["blue", "green", "red"]
    assert src.labels[:3].tolist() == [2, 1, 0]
    shaped = load_source(DataConfig(source="csv", uri=uri, columns=("a", "b")))
    assert shaped.values.shape == (90, 2) and shaped.kind == "points" and shaped.labels is None


def test_npy_rows_flat_unless_shaped_and_labels_from_a_second_file(tmp_path):
    x = np.arange(40 * 16, dtype=np.float32).reshape(40, 4, 4)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.array(["odd", "even"] * 20))
    flat = load_source(DataConfig(source="npy", uri=str(tmp_path / "x.npy")))
    assert flat.values.shape == (40, 16) and flat.kind == "vector" and flat.labels is None
    cfg = DataConfig(source="npy", uri=str(tmp_path / "x.npy"), shape=(4, 4),
                     label_uri=str(tmp_path / "y.npy"))  # fmt: skip
    assert cfg.image and cfg.labelled_images
    images = load_source(cfg)
    assert images.values.shape == (40, 4, 4) and images.kind == "image"
    np.testing.assert_array_equal(images.values, x)
    assert images.params["label_names"] == ["even", "odd"] and images.labels[:2].tolist() == [1, 0]


def test_image_folder_labelled_by_subfolder_grey_and_colour(tmp_path):
    grey = load_source(DataConfig(source="images", uri=digit_images(tmp_path / "grey")))
    assert grey.values.shape == (60, 8, 8) and grey.kind == "image"
    assert grey.values.max() == 255 and grey.values.min() == 0
    assert grey.params["label_names"][:3] == ["eight", "five", "four"]  # sorted names
    assert len(set(grey.labels.tolist())) == len(grey.params["label_names"]) == 10
    colour = load_source(
        DataConfig(source="images", uri=digit_images(tmp_path / "rgb", colour=True))
    )
    assert colour.values.shape == (60, 3, 8, 8)
    np.testing.assert_array_equal(colour.values[:, 0], grey.values)  # grey in every channel
    flat = digit_images(tmp_path / "flat", labelled=False)
    unlabelled = load_source(DataConfig(source="images", uri=flat, image_labels=False))
    assert unlabelled.labels is None and unlabelled.values.shape == (60, 8, 8)


def bad_size(root):
    digit_images(root, n=5)
    Image.new("L", (9, 8)).save(root / "zero" / "odd.png")


BAD = {
    "loose images": (
        lambda root: digit_images(root, n=5, labelled=False),
        {},
        "data.image_labels: 5 images sit directly in .*; put each class in a subfolder",
    ),
    "sizes differ": (
        bad_size,
        {},
        "images of .* differ in size: .* is 8x8, 'zero/odd.png' is 9x8; resize them alike",
    ),
    "no images": (lambda root: root.mkdir(), {}, "holds no .png/.jpg/.jpeg images"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_image_folders_are_refused_naming_the_field(tmp_path, case):
    make, extra, message = BAD[case]
    make(tmp_path / "imgs")
    with pytest.raises(DataError, match=message):
        load_source(DataConfig(source="images", uri=str(tmp_path / "imgs"), **extra))


def test_bad_csv_and_npy_are_refused_naming_the_field(tmp_path):
    uri = write_csv(tmp_path / "d.csv", {"a": [1.0, 2.0], "b": [3.0, 4.0]})
    with pytest.raises(DataError, match="data.columns: 'z' not in .*; its columns are 'a', 'b'"):
        load_source(DataConfig(source="csv", uri=uri, columns=("z",)))
    with pytest.raises(DataError, match=r"data.shape: \[3\] holds 3 values but rows of .* have 2"):
        load_source(DataConfig(source="csv", uri=uri, shape=(3,)))
    np.save(tmp_path / "x.npy", np.zeros((10, 2)))
    np.save(tmp_path / "y.npy", np.zeros(9))
    with pytest.raises(
        DataError, match=r"data.label_uri: .* shape \[9\]; expected one label per row"
    ):
        load_source(DataConfig(source="npy", uri=str(tmp_path / "x.npy"),
                               label_uri=str(tmp_path / "y.npy")))  # fmt: skip
    with pytest.raises(DataError, match="data.uri: .*nowhere.npy does not exist"):
        load_source(DataConfig(source="npy", uri=str(tmp_path / "nowhere.npy")))


def test_a_csv_on_s3(bucket, tmp_path):
    import boto3

    local = write_csv(tmp_path / "pts.csv", {"u": np.arange(50.0), "v": -np.arange(50.0)})
    boto3.client("s3").upload_file(local, bucket, "in/pts.csv")
    src = load_source(DataConfig(source="csv", uri=f"s3://{bucket}/in/pts.csv"))
    assert src.values.shape == (50, 2) and src.values[3].tolist() == [3.0, -3.0]
