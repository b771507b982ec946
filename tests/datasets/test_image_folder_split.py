"""image_folder splits (by a stable hash of each file's relative path, or a file list), and the warning
when a cell's calibration samples are among its evaluation samples."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from harness.datasets import DATASETS, Dataset
from harness.datasets.image_folder import hash_fraction
from harness.datasets.overlap import overlap_note
from harness.errors import HarnessError
from harness.samples import FromSignature
from tests.conftest import run_bench


def write_folder(root: Path, per_class: int = 20) -> None:
    """Two classes of distinct 8x8 gray images: cls_a/img00.png ... cls_b/img19.png."""
    for label, cls in enumerate(("cls_a", "cls_b")):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.full((8, 8), 10 * i + label, np.uint8)
            pixels[label * 4:(label + 1) * 4] = 200
            Image.fromarray(pixels).save(root / cls / f"img{i:02}.png")


def load(base: Path, **options: object) -> Dataset:
    loader = DATASETS.get("image_folder")
    values = {"path": "imgs", "image_size": [8, 8], "color": "grayscale", **options}
    return loader.load("photos", loader.Options.model_validate(values), base)


def names(data: Dataset) -> set[str]:
    assert data.ids is not None
    return {"/".join(Path(i).parts[-2:]) for i in data.ids}


def test_train_and_test_split_the_folder_without_overlap(tmp_path: Path) -> None:
    write_folder(tmp_path / "imgs")
    every, train, test = load(tmp_path), load(tmp_path, split="train"), load(tmp_path, split="test")
    assert names(train) | names(test) == names(every) and not names(train) & names(test)
    assert len(every) == 40 and 0 < len(test) < len(train)
    assert load(tmp_path, split="test").fingerprint == test.fingerprint  # deterministic
    expected = {n for n in names(every) if hash_fraction(n) < 0.2}
    assert names(test) == expected
    assert names(load(tmp_path, split="test", test_fraction=0.5)) > names(test)


def test_a_fraction_without_a_split_is_refused_in_the_suite(tmp_path: Path) -> None:
    from harness.suite import load_suite

    write_folder(tmp_path / "imgs", per_class=1)
    (tmp_path / "suite.yaml").write_text(SUITE.replace("color: grayscale}", "color: grayscale, test_fraction: 0.3}", 1))
    with pytest.raises(HarnessError, match=r"suite\.yaml:3: datasets\.photos.*test_fraction applies with split"):
        load_suite(tmp_path / "suite.yaml")


def test_the_hash_is_of_the_relative_path_and_stable() -> None:
    digest = hashlib.sha256(b"cls_a/img00.png").digest()
    assert hash_fraction("cls_a/img00.png") == int.from_bytes(digest[:8], "big") / 2.0**64


def test_a_file_keeps_its_split_when_others_are_added(tmp_path: Path) -> None:
    write_folder(tmp_path / "imgs", per_class=10)
    before = names(load(tmp_path, split="test", test_fraction=0.5))
    write_folder(tmp_path / "imgs", per_class=20)
    after = names(load(tmp_path, split="test", test_fraction=0.5))
    assert before == {n for n in after if int(n[-6:-4]) < 10}


def test_a_file_list_selects_the_images(tmp_path: Path) -> None:
    write_folder(tmp_path / "imgs")
    (tmp_path / "cal.txt").write_text("# calibration\ncls_a/img03.png\n\ncls_b/img07.png  # a note\n")
    data = load(tmp_path, files="cal.txt")
    assert names(data) == {"cls_a/img03.png", "cls_b/img07.png"} and data.y.tolist() == [0, 1]


@pytest.mark.parametrize("line", ["cls_a/absent.png", "../imgs/cls_a/img00.png", "/etc/passwd"])
def test_a_bad_file_list_line_is_named(tmp_path: Path, line: str) -> None:
    write_folder(tmp_path / "imgs", per_class=2)
    (tmp_path / "cal.txt").write_text(f"cls_a/img00.png\n{line}\n")
    with pytest.raises(HarnessError, match=r"cal\.txt:2: files: .* is not an image under"):
        load(tmp_path, files="cal.txt")


def test_overlap_by_files_whatever_the_preprocessing(tmp_path: Path) -> None:
    write_folder(tmp_path / "imgs")
    calibration, evaluation = load(tmp_path, range=[-1, 1]), load(tmp_path)
    note = overlap_note(calibration, 10, 0, evaluation)
    assert note is not None and "10 of the 10 calibration samples" in note and "same files" in note
    assert overlap_note(load(tmp_path, split="train"), 10, 0, load(tmp_path, split="test")) is None


def test_overlap_by_arrays() -> None:
    x = np.arange(5 * 4, dtype=np.float32).reshape(5, 4)
    scored = Dataset("test", x[3:], None, None, "arrays")
    assert "same arrays" in (overlap_note(Dataset("train", x, None, None, "arrays"), 5, 0, scored) or "")
    assert overlap_note(Dataset("train", x[:3], None, None, "arrays"), 5, 0, scored) is None
    inputs = Dataset("pairs", {"a": x, "b": x[:, :2]}, None, None, "arrays")
    assert overlap_note(inputs, 2, 1, inputs) is not None


def test_overlap_of_generated_samples() -> None:
    noise = Dataset("noise", FromSignature(8, 0, (-1.0, 1.0)), None, None, "synthetic")
    other = Dataset("noise2", FromSignature(8, 1, (-1.0, 1.0)), None, None, "synthetic")
    assert overlap_note(noise, 4, 0, noise) is not None and overlap_note(noise, 4, 0, other) is None


@settings(max_examples=25, deadline=None)
@given(st.text(min_size=1, max_size=40), st.floats(0.01, 0.99))
def test_split_membership_is_a_partition(relative: str, fraction: float) -> None:
    from harness.datasets.image_folder import _FolderOptions, in_split

    options = {"path": "x", "test_fraction": fraction}
    test = in_split(relative, _FolderOptions(split="test", **options))
    assert test != in_split(relative, _FolderOptions(split="train", **options))
    assert in_split(relative, _FolderOptions(path="x"))


SUITE = """\
name: overlap
datasets:
  photos: {kind: image_folder, path: imgs, image_size: [8, 8], color: grayscale}
  photos_train: {kind: image_folder, path: imgs, image_size: [8, 8], color: grayscale, split: train}
models:
  - {name: cnn, builder: tutorial_cnn, input_shape: [8, 8, 1], filters: 2, num_classes: 2,
     train: {dataset: photos_train, epochs: 1}}
task: {kind: classification, dataset: photos}
calibration: {dataset: photos_train, samples: 8}
schemes: [float32, int8]
latency: {float_pairs: 0, warmup_runs: 1, num_runs: 2, min_secs: 0}
"""


def test_a_run_records_and_prints_the_overlap(tmp_path: Path, session_cache: Path) -> None:
    write_folder(tmp_path / "imgs")
    (tmp_path / "suite.yaml").write_text(SUITE)
    done = run_bench("run", "suite.yaml", "--cache", str(session_cache), "--out", "out", "--no-history",
                     cwd=tmp_path)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    assert "warning: calibration overlaps evaluation: 8 of the 8 calibration samples" in " ".join(done.stdout.split())
    records = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    int8 = next(r for r in records if r["scheme"] == "int8")
    assert "same files" in int8["notes"][0]
    assert not next(r for r in records if r["scheme"] == "float32").get("notes")
