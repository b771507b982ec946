"""Object detection: COCO mAP@[.5:.95] and AP50 (pycocotools), and box agreement with the float model.

How a model's outputs become boxes is declared in the suite's `task:` block as a decoder:
`ssd` for raw per-anchor regressors and scores (anchors generated from SSD options, e.g.
MediaPipe BlazeFace), or `boxes` for models that already output boxes, scores and classes
(e.g. TFLite_Detection_PostProcess). Outputs are named by their index in the interpreter's
output order; a wrong index or shape stops with the shapes the model has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from harness.datasets import Dataset
from harness.errors import HarnessError, NotApplicable
from harness.tasks._base import OUTPUT_FIDELITY, TASKS, Metric, Task, TaskOptions
from harness.tasks.boxes import NmsKind, greedy_matches, nms
from harness.tasks.coco_eval import coco_box_metrics
from harness.tasks.ssd import AnchorOptions, BoxCoding, decode_boxes, decode_scores, ssd_anchors


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SsdDecoder(_Strict):
    """Raw per-anchor outputs: box regressors (N, anchors, >=4) and class logits (N, anchors, classes)."""

    kind: Literal["ssd"]
    boxes: int = Field(0, ge=0, description="index of the box regressors output")
    scores: int = Field(1, ge=0, description="index of the class scores output")
    anchors: AnchorOptions
    coding: BoxCoding = BoxCoding()
    sigmoid: bool = Field(True, description="scores are logits")
    score_clip: float | None = Field(None, gt=0, description="clip logits to ±this before the sigmoid")


class BoxesDecoder(_Strict):
    """Decoded outputs: boxes (N, K, 4) normalised to [0, 1], scores (N, K), classes (N, K), count (N,)."""

    kind: Literal["boxes"]
    boxes: int = Field(0, ge=0)
    classes: int | None = Field(1, ge=0, description="None: every box is class 0")
    scores: int = Field(2, ge=0)
    count: int | None = Field(3, ge=0, description="valid boxes per image; None: all")
    box_format: Literal["yxyx", "xyxy"] = "yxyx"


class DetectionOptions(TaskOptions):
    decoder: Annotated[SsdDecoder | BoxesDecoder, Field(discriminator="kind")]
    min_score: float = Field(0.05, ge=0, le=1, description="detections scored for mAP (COCO practice: low)")
    nms: NmsKind = "hard"
    nms_iou: float = Field(0.5, gt=0, le=1)
    max_detections: int = Field(100, ge=1, description="per image (COCO's maxDets)")
    category_ids: list[int] | None = Field(
        None, description="COCO category id of each model class (default: the annotations' ids, sorted)")
    agreement_score: float = Field(0.5, ge=0, le=1, description="detections compared with the float model's")
    agreement_iou: float = Field(0.5, gt=0, le=1)


@dataclass(frozen=True)
class Detections:
    """One image's detections: normalised (x_min, y_min, x_max, y_max) boxes, scores, class indices."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    def above(self, score: float) -> Detections:
        keep = self.scores >= score
        return Detections(self.boxes[keep], self.scores[keep], self.classes[keep])


def _output(outputs: list[np.ndarray], index: int, role: str, ndim: int) -> np.ndarray:
    shapes = ", ".join(f"{i}: {tuple(o.shape)}" for i, o in enumerate(outputs))
    if index >= len(outputs):
        raise HarnessError(f"detection decoder: `{role}: {index}` but the model has {len(outputs)} outputs ({shapes})")
    if outputs[index].ndim != ndim:
        raise HarnessError(f"detection decoder: `{role}` output {index} should have {ndim} dimensions, "
                           f"the model's outputs are {shapes}")
    return outputs[index]


def _ssd_candidates(outputs: list[np.ndarray], decoder: SsdDecoder) -> tuple[np.ndarray, np.ndarray]:
    raw_boxes = _output(outputs, decoder.boxes, "boxes", 3)
    raw_scores = _output(outputs, decoder.scores, "scores", 3)
    anchors = ssd_anchors(decoder.anchors)
    if raw_boxes.shape[1] != len(anchors) or raw_boxes.shape[2] < 4 or raw_scores.shape[1] != len(anchors):
        raise HarnessError(f"detection decoder: the anchor options give {len(anchors)} anchors; `boxes` output "
                           f"{decoder.boxes} has shape {raw_boxes.shape}, `scores` output {decoder.scores} "
                           f"{raw_scores.shape} (expected (N, {len(anchors)}, >=4) and (N, {len(anchors)}, classes))")
    return decode_boxes(raw_boxes, anchors, decoder.coding), decode_scores(raw_scores, decoder.sigmoid,
                                                                           decoder.score_clip)


def _boxes_candidates(outputs: list[np.ndarray], decoder: BoxesDecoder) -> tuple[np.ndarray, np.ndarray]:
    boxes = _output(outputs, decoder.boxes, "boxes", 3).astype(np.float64)
    scores = _output(outputs, decoder.scores, "scores", 2).astype(np.float64)
    if decoder.box_format == "yxyx":
        boxes = boxes[..., [1, 0, 3, 2]]
    classes = (np.zeros(scores.shape, np.int64) if decoder.classes is None
               else np.rint(_output(outputs, decoder.classes, "classes", 2)).astype(np.int64))
    if decoder.count is not None:
        count = _output(outputs, decoder.count, "count", 1)
        scores = np.where(np.arange(scores.shape[1])[None, :] < np.rint(count)[:, None], scores, -1.0)
    per_class = np.full((*scores.shape, int(classes.max(initial=0)) + 1), -1.0)  # (N, K, classes)
    np.put_along_axis(per_class, classes[..., None], scores[..., None], axis=2)
    return boxes, per_class


def decode(outputs: list[np.ndarray], options: DetectionOptions) -> list[Detections]:
    """Every image's detections: decoded, above `min_score`, suppressed per class, best `max_detections`."""
    decoder = options.decoder
    if isinstance(decoder, SsdDecoder):
        boxes, scores = _ssd_candidates(outputs, decoder)
    else:
        boxes, scores = _boxes_candidates(outputs, decoder)
    result = []
    for image_boxes, image_scores in zip(boxes, scores):
        kept_boxes, kept_scores, kept_classes = [], [], []
        for cls in range(image_scores.shape[1]):
            keep = image_scores[:, cls] >= options.min_score
            b, s = nms(image_boxes[keep], image_scores[keep, cls], options.nms_iou, options.nms)
            kept_boxes.append(b)
            kept_scores.append(s)
            kept_classes.append(np.full(len(s), cls))
        all_scores = np.concatenate(kept_scores)
        best = np.argsort(-all_scores, kind="stable")[:options.max_detections]
        result.append(Detections(np.concatenate(kept_boxes)[best], all_scores[best],
                                 np.concatenate(kept_classes)[best]))
    return result


def _targets(dataset: Dataset) -> list[dict[str, Any]]:
    if dataset.y is None or dataset.y.dtype != object or not all(
            isinstance(t, dict) and "boxes" in t and "box_transform" in t for t in dataset.y):
        raise NotApplicable(f"dataset {dataset.name!r} has no box annotations (use a `coco` or `face_scenes` dataset)")
    targets = list(dataset.y)
    if not any(t["boxes"] for t in targets):
        raise NotApplicable(f"dataset {dataset.name!r} has no annotated boxes")
    return targets


def to_coco(detections: Detections, target: dict[str, Any], categories: list[int]) -> list[dict[str, Any]]:
    """One image's detections as COCO results in the original image's pixels."""
    scale, offset = (np.asarray(target["box_transform"][k], np.float64) for k in ("scale", "offset"))
    corners = detections.boxes.reshape(-1, 2, 2) * scale + offset  # (M, [min, max], [x, y])
    results = []
    for (low, high), score, cls in zip(corners, detections.scores, detections.classes):
        if cls >= len(categories):
            raise HarnessError(f"detection: the model predicts class {cls}, and only {len(categories)} category "
                               "ids are known: set the task's `category_ids`")
        results.append({"image_id": target["image_id"], "category_id": categories[cls], "score": float(score),
                        "bbox": [float(low[0]), float(low[1]), float(high[0] - low[0]), float(high[1] - low[1])]})
    return results


def box_agreement(candidate: list[Detections], reference: list[Detections], iou: float) -> float:
    """F1 of the candidate's boxes against the reference's (same class, IoU >= iou) over all images; 1 when
    neither has any."""
    matched = total = 0
    for ours, theirs in zip(candidate, reference, strict=True):
        total += len(ours.scores) + len(theirs.scores)
        for cls in np.union1d(ours.classes, theirs.classes):
            matched += greedy_matches(theirs.boxes[theirs.classes == cls], ours.boxes[ours.classes == cls], iou)
    return 1.0 if total == 0 else 2 * matched / total


@TASKS.register("detection", "COCO mAP@[.5:.95] and AP50 (pycocotools); box agreement and per-output numerics vs float")
class Detection(Task):
    Options = DetectionOptions
    metrics = (
        Metric("map", True, "COCO mAP@[.5:.95] (pycocotools, bbox)"),
        Metric("ap50", True, "COCO AP at IoU 0.5"),
        Metric("box_agreement", True, "F1 of detections (score >= agreement_score) matched to the float "
               "model's (same class, IoU >= agreement_iou)", vs_float=True),
        *OUTPUT_FIDELITY,
    )
    headline = ("map",)
    agreement = "box_agreement"

    def score(self, outputs: list[np.ndarray], dataset: Dataset, options: DetectionOptions) -> dict[str, float]:
        targets = _targets(dataset)
        categories = options.category_ids or sorted({c for t in targets for c in t["category_ids"]})
        results = [r for found, target in zip(decode(outputs, options), targets, strict=True)
                   for r in to_coco(found, target, categories)]
        return coco_box_metrics(targets, results)

    def fidelity(self, outputs: list[np.ndarray], reference: list[np.ndarray],
                 options: DetectionOptions) -> dict[str, float]:
        ours = [d.above(options.agreement_score) for d in decode(outputs, options)]
        theirs = [d.above(options.agreement_score) for d in decode(reference, options)]
        return {"box_agreement": box_agreement(ours, theirs, options.agreement_iou)}
