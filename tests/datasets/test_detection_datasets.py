"""Detection data: the COCO loader (letterbox transform, clear errors) and the face scenes (deterministic,
exact boxes)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.datasets import DATASETS
from harness.datasets.face_scenes import ASTRONAUT_FACE, resized_face
from harness.errors import HarnessError


def load(kind: str, base: Path, **options):
    loader = DATASETS.get(kind)
    return loader.load("d", loader.Options.model_validate(options), base)


def write_coco(folder: Path, document: dict) -> Path:
    (folder / "ann.json").write_text(json.dumps(document))
    return folder / "ann.json"


@pytest.fixture
def coco_folder(tmp_path: Path) -> Path:
    """One 200x100 image whose left half is white, annotated with that half's box."""
    pixels = np.zeros((100, 200, 3), np.uint8)
    pixels[:, :100] = 255
    (tmp_path / "img").mkdir()
    Image.fromarray(pixels).save(tmp_path / "img" / "a.png")
    write_coco(tmp_path, {"images": [{"id": 7, "file_name": "img/a.png", "width": 200, "height": 100}],
                          "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [0, 0, 100, 100]}],
                          "categories": [{"id": 3, "name": "white"}]})
    return tmp_path


@pytest.mark.parametrize("resize", ["letterbox", "stretch"])
def test_coco_boxes_map_back_through_the_resize(coco_folder: Path, resize: str) -> None:
    data = load("coco", coco_folder, annotations="ann.json", image_size=[50, 50], range=[-1, 1], resize=resize)
    assert data.x.shape == (1, 50, 50, 3) and data.num_classes == 1
    target = data.y[0]
    assert target["boxes"] == [[0.0, 0.0, 100.0, 100.0]] and target["category_ids"] == [3]
    assert (target["width"], target["height"]) == (200, 100)
    image = data.x[0, :, :, 0]
    rows = np.flatnonzero(np.any(image > -1, axis=1))  # the image between the letterbox bands
    white_width = float(((image[rows[len(rows) // 2]] + 1) / 2).sum())  # input pixels (the filter keeps mass)
    low = np.array([0.0, rows[0]]) / 50  # normalised (x, y) corners of the white half in the input
    high = np.array([white_width, rows[-1] + 1]) / 50
    scale, offset = np.array(target["box_transform"]["scale"]), np.array(target["box_transform"]["offset"])
    assert np.allclose(low * scale + offset, [0, 0], atol=0.5)  # back in the original's pixels
    assert np.allclose(high * scale + offset, [100, 100], atol=0.5)
    if resize == "letterbox":  # 200x100 → 50x25 between two black bands of 12 and 13 rows
        assert np.all(data.x[0, :12] == -1) and np.all(data.x[0, 37:] == -1)


def test_coco_missing_image_names_the_file(coco_folder: Path) -> None:
    (coco_folder / "img" / "a.png").unlink()
    with pytest.raises(HarnessError, match=r"image .*img/a\.png \(listed in .*ann\.json\) does not exist"):
        load("coco", coco_folder, annotations="ann.json")


def test_coco_bad_json_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "ann.json").write_text('{"images": [}')
    with pytest.raises(HarnessError, match=r"ann\.json is not valid JSON: .*line 1"):
        load("coco", tmp_path, annotations="ann.json")


@pytest.mark.parametrize("document, message", [
    ({"images": []}, "is not a COCO file"),
    ({"images": [{"id": 1}], "annotations": []}, r"image #0 needs an `id` and a `file_name`"),
    ({"images": [{"id": 1, "file_name": "a.png"}], "annotations": [{"image_id": 1, "bbox": [1, 2]}]},
     r"annotation #0 has no \[x, y, width, height\] bbox"),
    ({"images": [{"id": 1, "file_name": "a.png"}], "annotations": [{"image_id": 9, "bbox": [1, 2, 3, 4]}]},
     "annotation #0 names unknown image 9"),
])
def test_coco_malformed_annotations(tmp_path: Path, document: dict, message: str) -> None:
    write_coco(tmp_path, document)
    with pytest.raises(HarnessError, match=message):
        load("coco", tmp_path, annotations="ann.json")


def test_coco_missing_annotation_file(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match=r"cannot read .*absent\.json"):
        load("coco", tmp_path, annotations="absent.json")


# -- face scenes --------------------------------------------------------------------------
SCENES = {"scenes": 6, "faces": [10, 20], "image_size": [64, 64]}


def test_face_scenes_are_deterministic(tmp_path: Path) -> None:
    first = load("face_scenes", tmp_path, directory="one", **SCENES)
    second = load("face_scenes", tmp_path, directory="two", **SCENES)
    assert first.fingerprint == second.fingerprint
    assert first.source != second.source  # built twice, in two folders
    other = load("face_scenes", tmp_path, directory="one", seed=1, **SCENES)
    assert other.fingerprint != first.fingerprint


def test_face_scene_boxes_are_exact(tmp_path: Path) -> None:
    import skimage.data

    data = load("face_scenes", tmp_path, directory="s", **SCENES)
    document = json.loads(Path(data.source).read_text())
    folder = Path(data.source).parent
    lfw = skimage.data.lfw_subset()
    assert len(document["images"]) == 7 and data.x.shape == (7, 64, 64, 3)
    scenes = [a for a in document["annotations"] if a["source"] == "lfw_subset"]
    assert len(scenes) >= 6 and all(10 <= a["lfw_index"] < 20 for a in scenes)
    by_image = {i["id"]: i for i in document["images"]}
    for annotation in scenes:
        x, y, w, h = annotation["bbox"]
        assert w == h and 0.25 * 256 - 1 <= w <= 0.5 * 256 + 1
        pixels = np.asarray(Image.open(folder / by_image[annotation["image_id"]]["file_name"]))
        assert 0 <= x and x + w <= pixels.shape[1] and 0 <= y and y + h <= pixels.shape[0]
        assert np.array_equal(pixels[y:y + h, x:x + w], resized_face(lfw[annotation["lfw_index"]], w))
    for image_id in by_image:  # pasted faces never overlap
        boxes = [a["bbox"] for a in scenes if a["image_id"] == image_id]
        for i, (x1, y1, w1, h1) in enumerate(boxes):
            for x2, y2, w2, h2 in boxes[i + 1:]:
                assert x1 + w1 <= x2 or x2 + w2 <= x1 or y1 + h1 <= y2 or y2 + h2 <= y1
    [astronaut] = [a for a in document["annotations"] if a["source"] == "astronaut"]
    assert astronaut["bbox"] == ASTRONAUT_FACE and data.y[-1]["width"] == 512


def test_face_scenes_options_are_checked() -> None:
    from pydantic import ValidationError

    loader = DATASETS.get("face_scenes")
    with pytest.raises(ValidationError, match=r"`faces` must be a range"):
        loader.Options(faces=(50, 150))
    with pytest.raises(ValidationError, match="extra"):
        loader.Options(faces_per_image=2)
