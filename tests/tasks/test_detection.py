"""Detection metrics against an independent pycocotools evaluation and hand-derived values; SSD
anchors and decoding, NMS, box agreement, and the decoder's errors."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from harness.datasets import Dataset
from harness.errors import HarnessError, NotApplicable
from harness.tasks import TASKS
from harness.tasks.boxes import iou_matrix, nms
from harness.tasks.detection import Detections, box_agreement
from harness.tasks.ssd import AnchorOptions, BoxCoding, decode_boxes, decode_scores, ssd_anchors

TASK = TASKS.get("detection")
WIDTH, HEIGHT = 1000, 800
BLAZEFACE_ANCHORS = AnchorOptions(input_size=(128, 128), num_layers=4, strides=[8, 16, 16, 16],
                                  min_scale=0.1484375, max_scale=0.75, fixed_anchor_size=True)


# -- hand-made detection cases ------------------------------------------------------------
def dataset(boxes_per_image: list[list[list[float]]]) -> Dataset:
    """Images of WIDTH x HEIGHT pixels with these [x, y, w, h] face boxes (stretched to the input)."""
    y = np.empty(len(boxes_per_image), dtype=object)
    y[:] = [{"image_id": i + 1, "width": WIDTH, "height": HEIGHT, "boxes": boxes,
             "category_ids": [1] * len(boxes), "box_transform": {"scale": [WIDTH, HEIGHT], "offset": [0, 0]}}
            for i, boxes in enumerate(boxes_per_image)]
    return Dataset("hand", np.zeros((len(y), 1), np.float32), y, 1, "hand-made")


def model_outputs(detections_per_image: list[list[tuple[list[float], float]]]) -> list[np.ndarray]:
    """What a model with TFLite_Detection_PostProcess would output for ([x, y, w, h] pixels, score) lists:
    boxes (N, K, 4) as normalised y_min, x_min, y_max, x_max; classes; scores; count."""
    slots = max(1, max(len(d) for d in detections_per_image))
    boxes = np.zeros((len(detections_per_image), slots, 4), np.float32)
    scores = np.zeros((len(detections_per_image), slots), np.float32)
    for i, found in enumerate(detections_per_image):
        for k, ((x, y, w, h), score) in enumerate(found):
            boxes[i, k] = [y / HEIGHT, x / WIDTH, (y + h) / HEIGHT, (x + w) / WIDTH]
            scores[i, k] = score
    count = np.array([len(d) for d in detections_per_image], np.float32)
    return [boxes, np.zeros_like(scores), scores, count]


def options(**extra):
    return TASK.Options.model_validate({"decoder": {"kind": "boxes"}, "nms": "none", "min_score": 0.0, **extra})


def pycocotools_reference(tmp_path: Path, boxes_per_image, detections_per_image) -> dict[str, float]:
    """The textbook pycocotools evaluation: annotation JSON on disk, loadRes, COCOeval."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    annotations = [{"id": len(boxes_per_image) * 100 + k * 10 + i, "image_id": i + 1, "category_id": 1,
                    "bbox": box, "area": box[2] * box[3], "iscrowd": 0}
                   for i, boxes in enumerate(boxes_per_image) for k, box in enumerate(boxes)]
    document = {"images": [{"id": i + 1, "width": WIDTH, "height": HEIGHT} for i in range(len(boxes_per_image))],
                "annotations": annotations, "categories": [{"id": 1, "name": "face"}]}
    (tmp_path / "gt.json").write_text(json.dumps(document))
    results = [{"image_id": i + 1, "category_id": 1, "bbox": box, "score": score}
               for i, found in enumerate(detections_per_image) for box, score in found]
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(tmp_path / "gt.json"))
        evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {"map": evaluation.stats[0], "ap50": evaluation.stats[1]}


def shifted(box: list[float], dx: float) -> list[float]:
    return [box[0] + dx, *box[1:]]


GT = [[[100, 100, 100, 100], [500, 300, 200, 160]], [[50, 400, 120, 120], [700, 100, 80, 100]]]
# (name, detections per image, expected map, expected ap50) — expectations derived by hand:
# COCO AP is the mean over IoU thresholds .50:.05:.95 of the 101-point interpolated precision.
CASES = [
    ("perfect", [[(b, 0.9) for b in boxes] for boxes in GT], 1.0, 1.0),
    # a 100-wide box shifted by d has IoU (100 - d) / (100 + d); all four boxes get IoU ~0.626:
    # a match at thresholds .50, .55, .60 → map 3/10
    ("iou_0.626", [[(shifted(b, b[2] * 0.23), 0.9) for b in boxes] for boxes in GT], 0.3, 1.0),
    ("iou_just_above_0.5", [[(shifted(b, b[2] * 0.33), 0.9) for b in boxes] for boxes in GT], 0.1, 1.0),  # 0.504
    ("iou_just_below_0.5", [[(shifted(b, b[2] * 0.34), 0.9) for b in boxes] for boxes in GT], 0.0, 0.0),  # 0.493
    # two of four boxes found: precision 1 up to recall 0.5 → 51 of the 101 recall points
    ("half_missing", [[(GT[0][0], 0.9)], [(GT[1][1], 0.8)]], 51 / 101, 51 / 101),
    # a false positive ranked first: precision 4/5 once all four are found, and the interpolated
    # precision (the best at any higher recall) is 4/5 at every recall point
    ("false_positive_first", [[(GT[0][0], 0.8), (GT[0][1], 0.7), ([300, 600, 90, 90], 0.95)],
                              [(b, 0.9) for b in GT[1]]], 0.8, 0.8),
    # the same false positive scored below every true one costs nothing
    ("false_positive_last", [[(GT[0][0], 0.8), (GT[0][1], 0.7), ([300, 600, 90, 90], 0.05)],
                             [(b, 0.9) for b in GT[1]]], 1.0, 1.0),
    ("nothing_found", [[], []], 0.0, 0.0),
]


@pytest.mark.parametrize("name, found, expected_map, expected_ap50", CASES, ids=[c[0] for c in CASES])
def test_metrics_match_pycocotools_and_hand_derivation(tmp_path: Path, name, found, expected_map,
                                                     expected_ap50) -> None:
    metrics = TASK.score(model_outputs(found), dataset(GT), options())
    if any(found):
        reference = pycocotools_reference(tmp_path, GT, found)
        assert metrics["map"] == pytest.approx(reference["map"], abs=1e-9)
        assert metrics["ap50"] == pytest.approx(reference["ap50"], abs=1e-9)
    assert metrics["map"] == pytest.approx(expected_map, abs=1e-9)
    assert metrics["ap50"] == pytest.approx(expected_ap50, abs=1e-9)


def test_letterbox_transform_maps_boxes_back() -> None:
    """A 1000x800 image letterboxed into 100x100: scale 0.1, 10 px bands above and below."""
    data = dataset([[[100, 100, 100, 100]]])
    data.y[0]["box_transform"] = {"scale": [1000, 1000], "offset": [0, -100]}
    normalised = [[(100 + 100) / 1000, 100 / 1000, (100 + 200) / 1000, 200 / 1000]]  # y_min, x_min, ...
    outputs = [np.array([normalised], np.float32), np.zeros((1, 1)), np.ones((1, 1)), np.ones(1)]
    assert TASK.score(outputs, data, options())["map"] == pytest.approx(1.0)


def test_unlabelled_dataset_is_not_applicable() -> None:
    data = Dataset("noise", np.zeros((2, 1), np.float32), None, None, "synthetic")
    with pytest.raises(NotApplicable, match="no box annotations"):
        TASK.score(model_outputs([[], []]), data, options())


def test_unknown_decoder_key_is_rejected() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="extra"):
        TASK.Options.model_validate({"decoder": {"kind": "boxes", "box": 0}})


def test_wrong_output_index_names_the_model_outputs() -> None:
    wrong = options(decoder={"kind": "boxes", "scores": 7})
    with pytest.raises(HarnessError, match=r"`scores: 7` but the model has 4 outputs \(0: \(2, 1, 4\), 1"):
        TASK.score(model_outputs([[(GT[0][0], 0.9)], []]), dataset(GT), wrong)


# -- SSD anchors and decoding -------------------------------------------------------------
def test_blazeface_short_range_anchors() -> None:
    anchors = ssd_anchors(BLAZEFACE_ANCHORS)
    assert anchors.shape == (896, 4)  # 16x16 cells x 2 anchors + 8x8 cells x 6 anchors
    assert np.allclose(anchors[:2], [[0.5 / 16, 0.5 / 16, 1, 1]] * 2)  # two anchors per stride-8 cell
    assert np.allclose(anchors[2, :2], [1.5 / 16, 0.5 / 16])  # then the next cell along x
    assert np.allclose(anchors[511, :2], [15.5 / 16, 15.5 / 16])
    assert np.allclose(anchors[512:518], [[0.5 / 8, 0.5 / 8, 1, 1]] * 6)  # three stride-16 layers x 2
    assert np.allclose(anchors[-1], [7.5 / 8, 7.5 / 8, 1, 1])


def test_anchor_sizes_follow_the_layer_scales() -> None:
    anchors = ssd_anchors(AnchorOptions(input_size=(64, 64), num_layers=2, strides=[32, 64], min_scale=0.2,
                                        max_scale=0.6, aspect_ratios=[1.0, 4.0]))
    # layer 0: 2x2 cells x (ratio 1, ratio 4, interpolated sqrt(0.2 * 0.6)); layer 1: 1 cell x 3
    assert anchors.shape == (15, 4)
    assert np.allclose(anchors[0:3, 2:], [[0.2, 0.2], [0.4, 0.1], [np.sqrt(0.12)] * 2])
    assert np.allclose(anchors[12:15, 2:], [[0.6, 0.6], [1.2, 0.3], [np.sqrt(0.6)] * 2])


def test_decoding_a_hand_made_anchor_offset() -> None:
    anchors = np.array([[0.25, 0.75, 1.0, 1.0], [0.5, 0.5, 0.2, 0.4]], np.float32)
    raw = np.array([[[12.8, -6.4, 32.0, 16.0, 99, 99]] * 2], np.float32)  # keypoints (99) are ignored
    boxes = decode_boxes(raw, anchors, BoxCoding(scale=(128, 128, 128, 128)))
    # fixed-size anchor: centre (0.25 + 0.1, 0.75 - 0.05), size (0.25, 0.125)
    assert np.allclose(boxes[0, 0], [0.225, 0.6375, 0.475, 0.7625])
    # anchor (0.5, 0.5, w 0.2, h 0.4), y-first and log-encoded sizes:
    # y = 0.5 + 12.8/10 * 0.4, x = 0.5 - 6.4/10 * 0.2, h = exp(32/5) * 0.4, w = exp(16/5) * 0.2
    log = decode_boxes(raw, anchors, BoxCoding(order="yxhw", scale=(10, 10, 5, 5), log_size=True))
    centre, size = np.array([0.372, 1.012]), np.array([np.exp(3.2) * 0.2, np.exp(6.4) * 0.4])
    assert np.allclose(log[0, 1], [*(centre - size / 2), *(centre + size / 2)])


def test_scores_are_clipped_logits() -> None:
    assert np.allclose(decode_scores(np.array([0.0, 2.0, -500.0]), True, 100.0),
                       [0.5, 1 / (1 + np.exp(-2)), 1 / (1 + np.exp(100))])


def test_ssd_decoder_end_to_end_and_anchor_count_error() -> None:
    decoder = {"kind": "ssd", "anchors": BLAZEFACE_ANCHORS.model_dump(), "coding": {"scale": [128] * 4},
               "score_clip": 100}
    raw_boxes = np.zeros((1, 896, 16), np.float32)
    raw_boxes[0, 600, 2:4] = 32.0  # a 32x32-pixel box on the anchor at index 600
    logits = np.full((1, 896, 1), -10.0, np.float32)
    logits[0, 600] = 3.0
    data = dataset([[]])
    anchor = ssd_anchors(BLAZEFACE_ANCHORS)[600]
    x, y = anchor[0] * WIDTH - 0.125 * WIDTH, anchor[1] * HEIGHT - 0.125 * HEIGHT
    data.y[0].update(boxes=[[x, y, 0.25 * WIDTH, 0.25 * HEIGHT]], category_ids=[1])
    assert TASK.score([raw_boxes, logits], data, options(decoder=decoder))["ap50"] == pytest.approx(1.0)
    # (outputs are never folded: harness.tflite.batching runs such a model one sample at a time)
    wrong = [np.zeros((1, 896 * 3, 16), np.float32), np.zeros((1, 896 * 3, 1), np.float32)]
    with pytest.raises(HarnessError, match="the anchor options give 896 anchors; `boxes` output 0 has shape"):
        TASK.score(wrong, data, options(decoder=decoder))


# -- NMS and agreement --------------------------------------------------------------------
def test_iou_matrix() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]])
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10]])
    assert np.allclose(iou_matrix(a, b), [[50 / 150, 1.0], [0.0, 0.0]])


def test_hard_and_weighted_nms() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], float)
    scores = np.array([0.9, 0.6, 0.8])
    kept, kept_scores = nms(boxes, scores, 0.3, "hard")
    assert np.allclose(kept, boxes[[0, 2]]) and np.allclose(kept_scores, [0.9, 0.8])
    blended, blended_scores = nms(boxes, scores, 0.3, "weighted")
    assert np.allclose(blended[0], [0.6 / 1.5, 0, 10 + 0.6 / 1.5, 10]) and np.allclose(blended[1], boxes[2])
    assert np.allclose(blended_scores, [0.9, 0.8])
    assert len(nms(boxes, scores, 0.95, "hard")[0]) == 3  # IoU 0.82 stays below the threshold
    assert len(nms(boxes, scores, 0.3, "none")[0]) == 3


def test_box_agreement_is_an_f1_over_boxes() -> None:
    reference = [Detections(np.array([[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1]]), np.array([0.9, 0.8]), np.array([0, 0]))]
    candidate = [Detections(np.array([[0.02, 0, 0.52, 0.5], [0.8, 0.8, 1, 1], [0, 0.6, 0.2, 0.8]]),
                            np.array([0.9, 0.7, 0.6]), np.array([0, 0, 0]))]
    # one match (IoU 0.92), one reference box without an IoU >= 0.5 partner, one extra box: 2 * 1 / (2 + 3)
    assert box_agreement(candidate, reference, 0.5) == pytest.approx(0.4)
    assert box_agreement(reference, reference, 0.5) == 1.0
    other_class = [Detections(reference[0].boxes, reference[0].scores, np.array([1, 1]))]
    assert box_agreement(other_class, reference, 0.5) == 0.0
    empty = [Detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int))]
    assert box_agreement(empty, empty, 0.5) == 1.0


def test_fidelity_of_identical_and_degraded_outputs() -> None:
    found = [[(b, 0.9) for b in boxes] for boxes in GT]
    outputs = model_outputs(found)
    assert TASK.fidelity(outputs, outputs, options()) == {"box_agreement": 1.0}
    degraded = model_outputs([[(shifted(b, b[2] * 0.6), 0.9) for b in boxes] for boxes in GT])
    result = TASK.fidelity(degraded, outputs, options())
    assert result["box_agreement"] == 0.0
