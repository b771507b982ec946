"""A face-detection set built from real images: LFW faces on real textures, plus the astronaut.

scikit-image ships real photographs offline: `lfw_subset()` (100 tight 25x25 grayscale
face crops from Labeled Faces in the Wild, then 100 non-faces), the `brick`, `grass` and
`gravel` textures (512x512 grayscale) and `astronaut()` (a 512x512 colour portrait). Each
scene is a random crop of a texture with one or more faces pasted at random sizes and
places, never overlapping, so every face box is exact: the pasted crop's square. The
astronaut's face box was annotated by hand (see ASTRONAUT_FACE). The scenes are written
once, as PNGs and a COCO annotation JSON, to a content-addressed folder of the quantbench
cache, and loaded through the `coco` loader.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from harness.cache import DEFAULT_ROOT, ArtifactCache, content_key
from harness.datasets._base import DATASETS, Dataset, DatasetLoader, LoaderOptions
from harness.datasets.coco import Coco, CocoOptions

# Bump when the generated scenes change for the same options.
GENERATOR_VERSION = 1
LFW_FACES = 100  # lfw_subset(): the first 100 images are faces, the other 100 are not
FACE_CATEGORY = {"id": 1, "name": "face"}
# COCO [x, y, width, height] in astronaut()'s 512x512 pixels, annotated by hand on a 3x
# zoom: left edge = left cheek contour at eye level (under the strand of hair), right edge =
# right cheek contour, top = hairline at the middle of the forehead, bottom = tip of the chin
# (the extent of the tight LFW crops).
ASTRONAUT_FACE = [178, 80, 90, 94]
_GAP = 4  # pixels kept between pasted faces


class FaceScenesOptions(LoaderOptions):
    scenes: int = Field(40, ge=1, description="number of texture scenes")
    seed: int = 0
    faces: tuple[int, int] = Field((0, LFW_FACES), description="LFW face indices [start, stop) to draw from")
    faces_per_scene: tuple[int, int] = Field((1, 3), description="min, max faces pasted on a scene")
    face_size: tuple[float, float] = Field((0.25, 0.5), description="face side as a fraction of the scene side")
    scene_size: int = Field(256, ge=32, description="scene side in pixels")
    textures: list[Literal["brick", "grass", "gravel"]] = Field(["brick", "grass", "gravel"], min_length=1)
    astronaut: bool = Field(True, description="add skimage's astronaut portrait with its hand-annotated face")
    directory: str | None = Field(None, description="where the scenes are written (default: the quantbench cache)")
    # how the model sees them (passed to the coco loader)
    image_size: tuple[int, int] = (128, 128)
    range: tuple[float, float] = (0.0, 1.0)
    resize: Literal["letterbox", "stretch"] = "letterbox"

    @model_validator(mode="after")
    def _consistent(self) -> FaceScenesOptions:
        start, stop = self.faces
        if not 0 <= start < stop <= LFW_FACES:
            raise ValueError(f"`faces` must be a range [start, stop) within [0, {LFW_FACES}]")
        if not 1 <= self.faces_per_scene[0] <= self.faces_per_scene[1]:
            raise ValueError("`faces_per_scene` must be [min, max] with 1 <= min <= max")
        if not 0 < self.face_size[0] <= self.face_size[1] <= 1:
            raise ValueError("`face_size` must be [min, max] fractions with 0 < min <= max <= 1")
        return self


def _place(rng: np.random.Generator, side: int, size: int, taken: list[list[int]]) -> list[int] | None:
    """A free square [x, y, size, size] inside the scene, or None after 100 tries."""
    for _ in range(100):
        x, y = (int(v) for v in rng.integers(0, side - size + 1, size=2))
        if all(x + size + _GAP <= bx or bx + bw + _GAP <= x or y + size + _GAP <= by or by + bh + _GAP <= y
               for bx, by, bw, bh in taken):
            return [x, y, size, size]
    return None


def _scene(rng: np.random.Generator, options: FaceScenesOptions, texture: np.ndarray,
           faces: list[np.ndarray]) -> tuple[np.ndarray, list[tuple[int, list[int]]]]:
    """One grayscale scene (uint8) with the given faces pasted, and (face position, box) of each placed one."""
    side = options.scene_size
    top, left = (int(v) for v in rng.integers(0, np.array(texture.shape) - side + 1))
    canvas = np.rot90(texture[top:top + side, left:left + side], k=int(rng.integers(4))).copy()
    placed: list[tuple[int, list[int]]] = []
    for position, face in enumerate(faces):
        size = int(round(rng.uniform(*options.face_size) * side))
        box = _place(rng, side, size, [b for _, b in placed])
        if box is None:
            continue
        x, y = box[0], box[1]
        canvas[y:y + size, x:x + size] = resized_face(face, size)
        placed.append((position, box))
    return canvas, placed


def resized_face(face: np.ndarray, size: int) -> np.ndarray:
    """An LFW face (float in [0, 1]) as uint8 pixels, resized to size x size (bicubic)."""
    from PIL import Image

    return np.asarray(Image.fromarray(np.round(face * 255).astype(np.uint8)).resize((size, size), Image.Resampling.BICUBIC))


def build_scenes(options: FaceScenesOptions, target: Path) -> dict[str, Any]:
    """Write the scenes' PNGs and `annotations.json` into `target`; return the COCO document."""
    import skimage.data
    from PIL import Image

    rng = np.random.default_rng(options.seed)
    lfw = skimage.data.lfw_subset()[options.faces[0]:options.faces[1]]
    textures = {name: getattr(skimage.data, name)() for name in options.textures}
    (target / "images").mkdir(parents=True)
    queue: list[int] = []
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []

    def add(file_name: str, pixels: np.ndarray, boxes: list[tuple[str, int | None, list[int]]]) -> None:
        image_id = len(images) + 1
        Image.fromarray(pixels).save(target / "images" / file_name)
        images.append({"id": image_id, "file_name": f"images/{file_name}",
                       "width": pixels.shape[1], "height": pixels.shape[0]})
        annotations.extend({"id": len(annotations) + 1 + k, "image_id": image_id, "category_id": 1, "bbox": box,
                            "area": box[2] * box[3], "iscrowd": 0, "source": source, "lfw_index": index}
                           for k, (source, index, box) in enumerate(boxes))

    for index in range(options.scenes):
        count = int(rng.integers(options.faces_per_scene[0], options.faces_per_scene[1] + 1))
        while len(queue) < count:  # every face is used once before any is used again
            queue += rng.permutation(len(lfw)).tolist()
        chosen, queue = queue[:count], queue[count:]
        texture = options.textures[index % len(options.textures)]
        pixels, placed = _scene(rng, options, textures[texture], [lfw[i] for i in chosen])
        add(f"scene_{index:04d}_{texture}.png", pixels,
            [("lfw_subset", options.faces[0] + chosen[k], box) for k, box in placed])
    if options.astronaut:
        add("astronaut.png", skimage.data.astronaut(), [("astronaut", None, ASTRONAUT_FACE)])
    document = {"images": images, "annotations": annotations, "categories": [FACE_CATEGORY],
                "info": {"description": "LFW faces (skimage lfw_subset) on skimage textures, plus astronaut",
                         "generator_version": GENERATOR_VERSION}}
    (target / "annotations.json").write_text(json.dumps(document, indent=1))
    return document


@DATASETS.register("face_scenes", "LFW faces pasted on real textures with exact boxes, plus the astronaut (COCO)")
class FaceScenes(DatasetLoader):
    Options = FaceScenesOptions

    def load(self, name: str, options: FaceScenesOptions, base_dir: Path,
             cache: ArtifactCache | None = None) -> Dataset:
        generation = options.model_dump(mode="json", exclude={"directory", "image_size", "range", "resize"})
        key = content_key(kind="face-scenes", options=generation, version=GENERATOR_VERSION,
                          skimage=version("scikit-image"))
        store = ArtifactCache(base_dir / options.directory) if options.directory else cache or ArtifactCache(DEFAULT_ROOT)
        folder, _ = store.get_or_create("datasets", key, "", lambda t: build_scenes(options, t))
        coco = CocoOptions(annotations=str(folder / "annotations.json"), image_size=options.image_size,
                           range=options.range, resize=options.resize)
        return Coco().load(name, coco, base_dir)
