"""COCO box evaluation with pycocotools: mAP@[.5:.95] and AP50 of detections vs annotations."""

from __future__ import annotations

import contextlib
import io
from typing import Any


def coco_box_metrics(targets: list[dict[str, Any]], detections: list[dict[str, Any]]) -> dict[str, float]:
    """COCOeval (bbox) of `detections` against per-image `targets`.

    targets: {image_id, width, height, boxes: [[x, y, w, h]], category_ids, areas?, iscrowd?}
    detections: {image_id, category_id, bbox: [x, y, w, h], score}
    Returns `map` (AP averaged over IoU .50:.05:.95) and `ap50`; 0 for both without detections."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images = [{"id": t["image_id"], "width": t["width"], "height": t["height"]} for t in targets]
    annotations: list[dict[str, Any]] = []
    for target in targets:
        count = len(target["boxes"])
        areas = target.get("areas") or [w * h for _, _, w, h in target["boxes"]]
        crowd = target.get("iscrowd") or [0] * count
        annotations += [{"id": len(annotations) + 1 + k, "image_id": target["image_id"], "bbox": list(box),
                         "category_id": category, "area": area, "iscrowd": flag}
                        for k, (box, category, area, flag)
                        in enumerate(zip(target["boxes"], target["category_ids"], areas, crowd))]
    categories = [{"id": c} for c in sorted({a["category_id"] for a in annotations})]
    if not detections:
        return {"map": 0.0, "ap50": 0.0}
    results = [{"id": k + 1, "image_id": d["image_id"], "category_id": d["category_id"], "bbox": list(d["bbox"]),
                "score": d["score"], "area": d["bbox"][2] * d["bbox"][3], "iscrowd": 0}
               for k, d in enumerate(detections)]
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress and a table
        ground_truth, predicted = COCO(), COCO()
        ground_truth.dataset = {"images": images, "annotations": annotations, "categories": categories}
        predicted.dataset = {"images": images, "annotations": results, "categories": categories}
        ground_truth.createIndex()
        predicted.createIndex()
        evaluation = COCOeval(ground_truth, predicted, iouType="bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {"map": float(evaluation.stats[0]), "ap50": float(evaluation.stats[1])}
