"""Object detection data in COCO format: an annotation JSON and its image folder.

Each image is resized to the model input (letterboxed, keeping its aspect ratio, or
stretched) and scaled to `range`. Its target records the COCO annotations in the
original image's pixels and the affine map from normalised model-input coordinates back
to them, so detections are scored against the annotation file's own boxes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from harness.cache import ArtifactCache
from harness.datasets._base import DATASETS, Dataset, DatasetLoader, LoaderOptions
from harness.errors import HarnessError


class CocoOptions(LoaderOptions):
    annotations: str = Field(description="COCO annotation JSON (relative to the suite's folder)")
    images: str | None = Field(None, description="image folder (default: the JSON's folder)")
    image_size: tuple[int, int] = Field((224, 224), description="model input height, width")
    range: tuple[float, float] = Field((0.0, 1.0), description="pixel values are mapped to this range")
    resize: Literal["letterbox", "stretch"] = Field(
        "letterbox", description="letterbox: keep the aspect ratio, pad with black; stretch: resize to fit")
    color: Literal["rgb", "grayscale"] = "rgb"


def _read_json(path: Path, name: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise HarnessError(f"dataset {name!r}: cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise HarnessError(f"dataset {name!r}: {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise HarnessError(f"dataset {name!r}: {path} is not a COCO file (needs `images` and `annotations` lists)")
    return data


def _targets(data: dict[str, Any], path: Path, name: str) -> dict[int, dict[str, list]]:
    """Annotations grouped by image id, checked."""
    for position, image in enumerate(data["images"]):
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            raise HarnessError(f"dataset {name!r}: {path}: image #{position} needs an `id` and a `file_name`")
    ids = {image["id"] for image in data["images"]}
    grouped: dict[int, dict[str, list]] = {i: {"boxes": [], "category_ids": [], "areas": [], "iscrowd": []}
                                           for i in ids}
    for position, ann in enumerate(data["annotations"]):
        box = ann.get("bbox")
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
            raise HarnessError(f"dataset {name!r}: {path}: annotation #{position} has no [x, y, width, height] bbox")
        if ann.get("image_id") not in grouped:
            raise HarnessError(f"dataset {name!r}: {path}: annotation #{position} names unknown image "
                               f"{ann.get('image_id')!r}")
        target = grouped[ann["image_id"]]
        target["boxes"].append([float(v) for v in box])
        target["category_ids"].append(int(ann.get("category_id", 1)))
        target["areas"].append(float(ann.get("area", box[2] * box[3])))
        target["iscrowd"].append(int(ann.get("iscrowd", 0)))
    return grouped


def _fit(image: Any, size: tuple[int, int], resize: str) -> tuple[Any, dict[str, list[float]]]:
    """The resized image and the map from normalised input coordinates to original pixels."""
    from PIL import Image

    height, width = size
    if resize == "stretch":
        fitted = image.resize((width, height), Image.Resampling.BILINEAR)
        return fitted, {"scale": [image.width, image.height], "offset": [0.0, 0.0]}
    ratio = min(width / image.width, height / image.height)
    inner = (max(1, round(image.width * ratio)), max(1, round(image.height * ratio)))
    pad = ((width - inner[0]) // 2, (height - inner[1]) // 2)
    canvas = Image.new(image.mode, (width, height))
    canvas.paste(image.resize(inner, Image.Resampling.BILINEAR), pad)
    scale_x, scale_y = image.width / inner[0], image.height / inner[1]
    return canvas, {"scale": [width * scale_x, height * scale_y], "offset": [-pad[0] * scale_x, -pad[1] * scale_y]}


@DATASETS.register("coco", "COCO annotation JSON + image folder (detection): resized (letterbox|stretch), scaled")
class Coco(DatasetLoader):
    Options = CocoOptions
    files = ("annotations", "images")

    def load(self, name: str, options: CocoOptions, base_dir: Path, cache: ArtifactCache | None = None) -> Dataset:
        from PIL import Image, UnidentifiedImageError

        path = base_dir / options.annotations
        data = _read_json(path, name)
        folder = base_dir / options.images if options.images else path.parent
        targets = _targets(data, path, name)
        low, high = options.range
        mode = "RGB" if options.color == "rgb" else "L"
        pixels, records = [], []
        for image_info in sorted(data["images"], key=lambda i: i["id"]):
            file = folder / str(image_info["file_name"])
            try:
                with Image.open(file) as image:
                    fitted, transform = _fit(image.convert(mode), options.image_size, options.resize)
                    size = image.size
            except FileNotFoundError:
                raise HarnessError(f"dataset {name!r}: image {file} (listed in {path}) does not exist") from None
            except (OSError, UnidentifiedImageError) as exc:
                raise HarnessError(f"dataset {name!r}: cannot read image {file}: {exc}") from None
            array = np.asarray(fitted, dtype=np.float32) / 255.0
            pixels.append(array if array.ndim == 3 else array[..., np.newaxis])
            records.append({"image_id": image_info["id"], "file_name": image_info["file_name"],
                            "width": size[0], "height": size[1], "box_transform": transform,
                            **targets[image_info["id"]]})
        if not pixels:
            raise HarnessError(f"dataset {name!r}: {path} lists no images")
        x = (np.stack(pixels) * (high - low) + low).astype(np.float32)
        y = np.empty(len(records), dtype=object)
        y[:] = records
        categories = {c["id"] for c in data.get("categories", [])} or {c for r in records for c in r["category_ids"]}
        return Dataset(name, x, y, len(categories), str(path))
