"""The `speech_ctc` builder's recurrent option: the model converts under float32, int8 and 16x8 and
the .tflite computes the recurrence (unrolled) in the scheme's activation type."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from harness.models import BUILDERS
from harness.schemes import SCHEMES
from harness.tflite.runtime import load_interpreter

pytestmark = pytest.mark.slow  # builds and converts recurrent models

FRAMES, MELS = 16, 8
TINY = {"frames": FRAMES, "n_mels": MELS, "width": 8, "dilations": [1], "stride": 2}
CALIBRATION = np.random.default_rng(0).normal(size=(4, FRAMES, MELS)).astype(np.float32)


def export(tmp_path: Path, **options: object) -> tuple[Path, object]:
    """Build an untrained speech_ctc with `options`, export it as a SavedModel; the path and model."""
    import keras

    builder = BUILDERS.get("speech_ctc")
    keras.utils.set_random_seed(0)
    model = builder.build(keras, builder.Options(**TINY, **options))
    path = tmp_path / "saved"
    model.export(str(path), format="tf_saved_model", verbose=False)
    return path, model


def ops_and_types(saved_model: Path, scheme_name: str) -> tuple[Counter, set[str]]:
    """Operator counts and the types of the tensors LOGISTIC and TANH (the gates) read and write."""
    scheme = SCHEMES.get(scheme_name)
    data = scheme.from_saved_model(saved_model, scheme.Options(), CALIBRATION if scheme.needs_calibration else None)
    interpreter = load_interpreter(data)
    tensors = {t["index"]: np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()
    gates = {tensors[i] for op in ops if op["op_name"] in ("LOGISTIC", "TANH")
             for i in (*op["inputs"], *op["outputs"])}
    return Counter(op["op_name"] for op in ops), gates


@pytest.mark.parametrize(("scheme", "gate_type"), [("float32", "float32"), ("int8", "int8"), ("int16x8", "int16")])
def test_lstm_converts_with_the_recurrence_in_the_scheme_type(tmp_path: Path, scheme: str, gate_type: str) -> None:
    saved_model, _ = export(tmp_path, recurrent="lstm", recurrent_units=4)
    ops, gates = ops_and_types(saved_model, scheme)
    steps = FRAMES // TINY["stride"]
    assert ops["LOGISTIC"] == 3 * steps and ops["TANH"] == 2 * steps  # input, forget, output gates; cell, output
    assert gates == {gate_type}


def test_bidirectional_gru_layers_build_and_convert(tmp_path: Path) -> None:
    saved_model, model = export(tmp_path, recurrent="gru", recurrent_units=4, recurrent_layers=2, bidirectional=True)
    classes = len(BUILDERS.get("speech_ctc").Options().alphabet) + 1
    assert model.output.shape == (None, FRAMES // TINY["stride"], classes)
    ops, gates = ops_and_types(saved_model, "int8")
    assert ops["REVERSE_V2"] > 0 and ops["LOGISTIC"] == 2 * 2 * 2 * FRAMES // TINY["stride"]  # reset, update gates
    assert gates == {"int8"}


def test_no_recurrent_fields_in_a_convolutional_models_cache_key() -> None:
    options = BUILDERS.get("speech_ctc").Options
    fields = {"recurrent", "recurrent_units", "recurrent_layers", "bidirectional"}
    assert not fields & set(options(**TINY).model_dump(mode="json"))
    assert fields <= set(options(**TINY, recurrent="lstm").model_dump(mode="json"))
