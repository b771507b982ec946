"""A damaged Keras model file is named as such, not as "File not found" (issue 20, item 19)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.models.source import check_keras_file
from tests.kit import broken_model_suite, failed_run


def archive(path: Path, **members: bytes) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as handle:
        for name, data in members.items():
            handle.writestr(name, data)
    return path


def test_a_well_formed_archive_passes(tmp_path: Path) -> None:
    check_keras_file(archive(tmp_path / "m.keras", **{"config.json": b"{}", "metadata.json": b"{}"}))


@pytest.mark.parametrize("damage, message", [
    ("random", "not a valid Keras archive (.keras): not a zip file"),
    ("truncated", "not a valid Keras archive (.keras): not a zip file"),
    ("no_config", "not a valid Keras archive (.keras): it holds no config.json"),
    ("bad_crc", "not a valid Keras archive (.keras): member 'config.json' is damaged (CRC mismatch)"),
])
def test_a_damaged_archive_is_named(tmp_path: Path, damage: str, message: str) -> None:
    path = archive(tmp_path / "m.keras", **{"config.json": b'{"class_name": "Functional"}'})
    data = path.read_bytes()
    if damage == "random":
        path.write_bytes(bytes(range(256)) * 4)
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "no_config":
        archive(path, **{"model.weights.h5": b"x"})
    else:
        path.write_bytes(data.replace(b'"Functional"', b'"Functionxl"'))
    with pytest.raises(HarnessError, match="^" + str(path).replace(".", r"\.") + ": ") as caught:
        check_keras_file(path)
    assert message in str(caught.value)


def test_an_h5_file_must_be_hdf5(tmp_path: Path) -> None:
    (tmp_path / "m.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(HarnessError, match=r"m\.h5: not a valid Keras HDF5 file"):
        check_keras_file(tmp_path / "m.h5")


def test_a_run_records_the_reason_on_every_cell_of_that_model(tmp_path: Path) -> None:
    (tmp_path / "bad.keras").write_bytes(b"\x00" * 300)
    records = failed_run(tmp_path, broken_model_suite("bad.keras", "{kind: digits, split: test}", "classification"))
    assert [r["status"] for r in records] == ["failed", "failed"]
    for record in records:
        assert f"{tmp_path / 'bad.keras'}: not a valid Keras archive (.keras): not a zip file" in record["error"]
        assert "File not found" not in record["error"]
