"""Box geometry for detection: IoU, non-maximum suppression, and matching two sets of detections.

Boxes are arrays (M, 4) of (x_min, y_min, x_max, y_max), in any one coordinate system.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

NmsKind = Literal["hard", "weighted", "none"]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of `a` (M, 4) with every box of `b` (K, 4): (M, K); 0 for empty boxes."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
        kind: NmsKind = "hard") -> tuple[np.ndarray, np.ndarray]:
    """Suppress boxes overlapping a higher-scoring one by more than `iou_threshold`.

    `hard` drops them; `weighted` replaces the kept box with the score-weighted mean of
    itself and the boxes it suppresses (as MediaPipe's face detector does); `none` keeps
    all. Returns the kept boxes and scores, best first."""
    order = np.argsort(-scores, kind="stable")
    boxes, scores = np.asarray(boxes, np.float64)[order], np.asarray(scores, np.float64)[order]
    if kind == "none" or len(boxes) == 0:
        return boxes, scores
    overlaps = iou_matrix(boxes, boxes)
    alive = np.ones(len(boxes), dtype=bool)
    kept_boxes, kept_scores = [], []
    for i in range(len(boxes)):
        if not alive[i]:
            continue
        cluster = alive & (overlaps[i] > iou_threshold)
        cluster[i] = True
        if kind == "weighted":
            weights = scores[cluster]
            kept_boxes.append(weights @ boxes[cluster] / weights.sum())
        else:
            kept_boxes.append(boxes[i])
        kept_scores.append(scores[i])
        alive &= ~cluster
    return np.asarray(kept_boxes).reshape(-1, 4), np.asarray(kept_scores)


def greedy_matches(reference: np.ndarray, candidate: np.ndarray, iou_threshold: float) -> int:
    """How many reference boxes (in order, best first) find an unused candidate with IoU >= threshold."""
    if len(reference) == 0 or len(candidate) == 0:
        return 0
    overlaps = iou_matrix(reference, candidate)
    used = np.zeros(len(candidate), dtype=bool)
    matched = 0
    for row in overlaps:
        row = np.where(used, -1.0, row)
        best = int(np.argmax(row))
        if row[best] >= iou_threshold:
            used[best] = True
            matched += 1
    return matched
