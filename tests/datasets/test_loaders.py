"""Each dataset kind loads real files, and a missing dataset says where it looked."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from harness.datasets import DATASETS
from harness.errors import HarnessError
from tests.kit import failed_run


def load(kind: str, tmp_path: Path, **options):
    loader = DATASETS.get(kind)
    return loader.load("d", loader.Options.model_validate(options), tmp_path)


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_idx_files(tmp_path: Path) -> None:
    images = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([7, 0, 3]))
    data = load("mnist", tmp_path, dir=".", split="test")
    assert data.x.shape == (3, 28, 28, 1) and data.x.dtype == np.float32
    assert data.x[0, 0, 5, 0] == pytest.approx(5 / 255)
    assert data.y.tolist() == [7, 0, 3] and data.num_classes == 10


def test_truncated_idx_is_an_error(tmp_path: Path) -> None:
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((2, 28, 28)))
    raw = gzip.decompress((tmp_path / "t10k-images-idx3-ubyte.gz").read_bytes())
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw[:-10]))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(2))
    with pytest.raises(HarnessError, match="truncated"):
        load("mnist", tmp_path, dir=".")


def test_missing_fashion_mnist_names_path_and_package(tmp_path: Path) -> None:
    with pytest.raises(HarnessError) as caught:
        load("fashion_mnist", tmp_path, dir="absent")
    assert str(tmp_path / "absent") in str(caught.value)
    assert "apt-get install dataset-fashion-mnist" in str(caught.value)


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").exists(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist_test_split() -> None:
    loader = DATASETS.get("fashion_mnist")
    data = loader.load("f", loader.Options(), Path("."))
    assert data.x.shape == (10_000, 28, 28, 1)
    assert np.bincount(data.y).tolist() == [1000] * 10


def test_digits_split_is_deterministic_and_disjoint(tmp_path: Path) -> None:
    train, test = load("digits", tmp_path, split="train"), load("digits", tmp_path, split="test")
    assert len(train) + len(test) == 1797 and train.x.shape[1:] == (8, 8, 1)
    assert load("digits", tmp_path, split="test").fingerprint == test.fingerprint
    assert float(train.x.max()) == 1.0


def test_npz(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", images=np.ones((4, 2, 2, 1)), labels=np.array([0, 1, 2, 1]))
    data = load("npz", tmp_path, path="a.npz", x_key="images", y_key="labels", scale=0.5)
    assert data.x.max() == 0.5 and data.num_classes == 3
    with pytest.raises(HarnessError, match="no array 'x'"):
        load("npz", tmp_path, path="a.npz")


def test_npz_whole_float_labels_are_taken_as_class_indices(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", x=np.ones((3, 2)), y=np.array([[0.0], [2.0], [1.0]]))
    data = load("npz", tmp_path, path="a.npz")
    assert data.y.tolist() == [0, 2, 1] and data.y.dtype == np.int64 and data.num_classes == 3


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(labels=arrays(np.float64, st.integers(1, 6),
                    elements=st.floats(-3, 12) | st.integers(-1, 12).map(float) | st.sampled_from([np.nan, np.inf])))
def test_npz_float_labels_are_whole_or_an_error_naming_the_key(tmp_path: Path, labels: np.ndarray) -> None:
    """A float label is never truncated (2.7 used to become class 2): whole values load, the rest stop."""
    np.savez(tmp_path / "h.npz", x=np.ones((len(labels), 2)), target=labels)
    whole = np.isfinite(labels) & (labels == np.round(labels))
    if whole.all() and (labels >= 0).all():
        assert load("npz", tmp_path, path="h.npz", y_key="target").y.tolist() == labels.astype(int).tolist()
        return
    with pytest.raises(HarnessError, match=r"h\.npz array 'target': labels (must be integer-valued|are class indices)"):
        load("npz", tmp_path, path="h.npz", y_key="target")


@pytest.mark.parametrize("labels, num_classes, message", [
    (np.array(["a", "b"]), None, "labels must be integer class indices, not <U1 values"),
    (np.array([0, 1, 1]), None, "3 labels for 2 samples"),
    (np.array([0, 3]), 3, "label 3 is not below num_classes 3"),
    (np.array([0.0, 0.5]), None, "1 are not (first: index 1, value 0.5)"),
])
def test_npz_labels_that_are_not_class_indices_are_refused(tmp_path: Path, labels: np.ndarray,
                                                           num_classes: int | None, message: str) -> None:
    np.savez(tmp_path / "b.npz", x=np.ones((2, 2)), y=labels)
    with pytest.raises(HarnessError, match=r"array 'y': ") as caught:
        load("npz", tmp_path, path="b.npz", num_classes=num_classes)
    assert message in str(caught.value)


def test_a_run_on_non_integral_npz_labels_records_the_reason_on_its_cells(tmp_path: Path) -> None:
    """Builds (does not train or convert) a tiny CNN: the evaluation data is refused before any cell work."""
    np.savez(tmp_path / "t.npz", x=np.ones((4, 8, 8, 1)), y=np.array([0.0, 1.0, 2.7, 1.0]))
    records = failed_run(tmp_path, """name: labels
datasets:
  test: {kind: npz, path: t.npz}
models:
  - {name: cnn, builder: tutorial_cnn, input_shape: [8, 8, 1], filters: 2}
task: {kind: classification, dataset: test}
schemes: [float32, dynamic_range]
""")
    assert [r["status"] for r in records] == ["failed", "failed"]
    assert all("array 'y': labels must be integer-valued; 1 are not (first: index 2, value 2.7)" in r["error"]
               for r in records)


def test_image_folder(tmp_path: Path) -> None:
    for label, colour in (("cat", 255), ("dog", 0)):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        Image.new("RGB", (10, 6), (colour, colour, colour)).save(tmp_path / "imgs" / label / "a.png")
    data = load("image_folder", tmp_path, path="imgs", image_size=[4, 4], range=[-1, 1])
    assert data.x.shape == (2, 4, 4, 3) and data.y.tolist() == [0, 1]
    assert data.x[0].min() == pytest.approx(1.0) and data.x[1].max() == pytest.approx(-1.0)


def test_image_folder_without_classes(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="no class sub-folders"):
        load("image_folder", tmp_path, path="nothing")


def test_synthetic_is_seeded_and_unlabelled(tmp_path: Path) -> None:
    a = load("synthetic", tmp_path, shape=[4, 4, 3], count=5, low=-1, high=1)
    b = load("synthetic", tmp_path, shape=[4, 4, 3], count=5, low=-1, high=1)
    assert a.y is None and a.x.shape == (5, 4, 4, 3) and a.fingerprint == b.fingerprint
    assert -1 <= a.x.min() and a.x.max() <= 1


def test_head_and_sample(tmp_path: Path) -> None:
    data = load("digits", tmp_path, split="test")
    assert len(data.head(10)) == 10 and data.head(None) is data
    assert np.array_equal(data.sample(5, seed=1), data.sample(5, seed=1))
    assert len(data.sample(10_000, seed=0)) == len(data)


def test_fingerprint_of_object_targets() -> None:
    from harness.datasets import fingerprint_arrays

    a = np.array(["one two", "three"], dtype=object)
    assert fingerprint_arrays(a) == fingerprint_arrays(a.copy())
    assert fingerprint_arrays(a) != fingerprint_arrays(np.array(["one two", "four"], dtype=object))


def test_npz_with_one_array_per_input(tmp_path: Path) -> None:
    np.savez(tmp_path / "m.npz", image=np.ones((3, 4)), extra_values=np.zeros((3, 2)), y=np.array([0, 1, 0]))
    data = load("npz", tmp_path, path="m.npz", inputs={"image": "image", "extra": "extra_values"})
    assert sorted(data.x) == ["extra", "image"] and data.x["extra"].shape == (3, 2) and len(data) == 3
    same = load("npz", tmp_path, path="m.npz", inputs=["image", "extra_values"])
    assert sorted(same.x) == ["extra_values", "image"] and data.fingerprint != same.fingerprint
    assert len(data.head(2)) == 2 and data.sample(2, seed=0)["image"].shape == (2, 4)
    with pytest.raises(HarnessError, match="no array 'missing'"):
        load("npz", tmp_path, path="m.npz", inputs={"image": "missing"})


def test_synthetic_inputs_per_name(tmp_path: Path) -> None:
    data = load("synthetic", tmp_path, count=4, inputs={"image": {"shape": [2, 2], "low": -1, "high": 1},
                                                        "extra": {"shape": [3], "low": 5, "high": 6}})
    assert data.x["image"].shape == (4, 2, 2) and data.x["extra"].shape == (4, 3) and data.y is None
    assert 5 <= data.x["extra"].min() and data.x["extra"].max() <= 6 and -1 <= data.x["image"].min()
    with pytest.raises(ValueError, match="either"):
        load("synthetic", tmp_path, count=4, shape=[2], inputs={"a": {"shape": [2]}})


def test_synthetic_from_the_model_signature(tmp_path: Path) -> None:
    from harness.samples import FromSignature

    data = load("synthetic", tmp_path, count=6, low=-1, high=1, inputs={"extra": {"low": 5, "high": 6}})
    assert isinstance(data.x, FromSignature) and len(data) == 6 and data.y is None
    arrays = data.x.generate([("image", (2, 2)), ("extra", (3,))])
    assert arrays["image"].shape == (6, 2, 2) and -1 <= arrays["image"].min() and arrays["image"].max() <= 1
    assert 5 <= arrays["extra"].min() and arrays["extra"].max() <= 6
    head = data.head(4).x.generate([("extra", (3,)), ("image", (2, 2))])  # order does not matter
    assert np.array_equal(head["image"], arrays["image"][:4]) and data.head(4).fingerprint != data.fingerprint
    picked = data.x.select(np.array([1, 3])).generate([("image", (2, 2)), ("extra", (3,))])
    assert np.array_equal(picked["extra"], arrays["extra"][[1, 3]])
    with pytest.raises(HarnessError, match=r"\['extra'\] are not inputs"):
        data.x.generate([("image", (2, 2))])
    with pytest.raises(ValueError, match="every input's `shape`, or none"):
        load("synthetic", tmp_path, inputs={"a": {"shape": [2]}, "b": {}})


# -- the image options every image dataset shares ------------------------------------------------
def _idx_folder(tmp_path: Path) -> Path:
    images = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([1, 2]))
    return tmp_path


def test_idx_default_is_unchanged_bytes(tmp_path: Path) -> None:
    """0–1 as before, to the byte (cached models keyed by the data fingerprint stay valid)."""
    raw = (np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256).astype(np.float32)
    data = load("mnist", _idx_folder(tmp_path), dir=".")
    np.testing.assert_array_equal(data.x, (raw / 255.0)[..., np.newaxis])


@pytest.mark.parametrize(("options", "shape", "low", "high"), [
    ({"range": [0, 255]}, (2, 28, 28, 1), 0.0, 255.0),            # a model with its own Rescaling(1/255)
    ({"scale": 1.0}, (2, 28, 28, 1), 0.0, 255.0),
    ({"range": [-1, 1], "channels": 3, "image_size": [32, 32]}, (2, 32, 32, 3), -1.0, 1.0),
    ({"mean": [0.5], "std": [0.25]}, (2, 28, 28, 1), -2.0, 2.0),
    ({"channels": 3, "layout": "nchw"}, (2, 3, 28, 28), 0.0, 1.0),
])
def test_idx_image_options(tmp_path: Path, options: dict, shape: tuple, low: float, high: float) -> None:
    data = load("fashion_mnist", _idx_folder(tmp_path), dir=".", **options)
    assert data.x.shape == shape and data.x.dtype == np.float32
    assert float(data.x.min()) == pytest.approx(low, abs=1e-3) and float(data.x.max()) == pytest.approx(high, abs=1e-2)


def test_digits_and_npz_take_the_same_options(tmp_path: Path) -> None:
    digits = load("digits", tmp_path, split="test", range=[0, 255], channels=3)
    assert digits.x.shape[1:] == (8, 8, 3) and float(digits.x.max()) == 255.0
    np.savez(tmp_path / "a.npz", x=np.full((2, 4, 4, 1), 255.0), y=np.array([0, 1]))
    arrays = load("npz", tmp_path, path="a.npz", range=[-1, 1], mean=[0.5], std=[0.5])
    assert float(arrays.x.max()) == pytest.approx(1.0)
    assert load("npz", tmp_path, path="a.npz").x.max() == 255.0  # as stored unless asked


def test_image_folder_mean_std_per_channel(tmp_path: Path) -> None:
    (tmp_path / "imgs" / "a").mkdir(parents=True)
    Image.new("RGB", (4, 4), (255, 0, 255)).save(tmp_path / "imgs" / "a" / "x.png")
    data = load("image_folder", tmp_path, path="imgs", image_size=[4, 4], mean=[0.5, 0.5, 0.0], std=[0.5, 1, 2])
    np.testing.assert_allclose(data.x[0, 0, 0], [1.0, -0.5, 0.5])


@pytest.mark.parametrize(("options", "message"), [
    ({"range": [0, 1], "scale": 2.0}, "give `range` or `scale`, not both"),
    ({"std": [0.0]}, "std must not be 0"),
    ({"channels": 2}, "channels"),
])
def test_bad_image_options_are_clear(tmp_path: Path, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DATASETS.get("mnist").Options.model_validate(options)


def test_mean_with_the_wrong_channel_count_names_it(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match=r"`mean` has 3 values; the images have 1 channels"):
        load("mnist", _idx_folder(tmp_path), dir=".", mean=[0.1, 0.2, 0.3])
