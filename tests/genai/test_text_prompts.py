"""`prompts: text` (issue 26): a text file tokenized (UTF-8 bytes for the toy family, a SentencePiece model
otherwise), cut into sequences, and perplexity of the teacher-forced logits; suite errors are one line."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from harness.errors import HarnessError
from harness.models.generative import BYTE_OFFSET, byte_tokens, sentencepiece_tokens
from harness.tasks.generation import GenerationOptions, cut_sequences, perplexity, prompt_sequences
from tests.genai.test_generative_config import TOY, _one_line, _validate

README = Path(__file__).parents[2] / "README.md"


def _options(tmp_path: Path, text: str, **options: object) -> GenerationOptions:
    (tmp_path / "prompt.txt").write_text(text, encoding="utf-8")
    return GenerationOptions.model_validate({"prompts": "text", "text": "prompt.txt", **options},
                                            context={"base_dir": tmp_path})


def test_perplexity_of_three_tokens_is_the_hand_computed_one() -> None:
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0], [1.0, 3.0, 0.5]])
    targets = np.array([0, 2, 1])
    by_hand = [2 - math.log(math.e ** 2 + 1 + math.e ** -1), -math.log(3), 3 - math.log(math.e + math.e ** 3
                                                                                        + math.e ** 0.5)]
    assert perplexity(logits, targets) == pytest.approx(math.exp(-sum(by_hand) / 3), rel=1e-12)


def test_perplexity_is_stable_on_large_logits_and_uniform_logits_give_the_vocabulary_size() -> None:
    huge = np.array([[1e4, 0.0, -1e4]], dtype=np.float32)
    assert perplexity(huge, np.array([0])) == pytest.approx(1.0)
    assert perplexity(np.zeros((2, 5, 7), dtype=np.float32), np.zeros((2, 5), dtype=np.int64)) == pytest.approx(7)


def test_text_is_cut_into_samples_of_prefill_decode_plus_one_byte_tokens(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    options = _options(tmp_path, text, prefill=4, decode_tokens=3, samples=3)
    sequences = prompt_sequences(options, 512)
    expected = np.frombuffer(text.encode()[:24], dtype=np.uint8).reshape(3, 8) + BYTE_OFFSET
    assert np.array_equal(sequences, expected)
    assert np.array_equal(sequences, prompt_sequences(options, 512))  # deterministic


def test_too_short_text_and_too_small_vocabulary_are_one_line() -> None:
    with pytest.raises(HarnessError) as short:  # after tokenizing (a SentencePiece text is checked here)
        cut_sequences(np.arange(5), 2, 8, "prompt.txt")
    assert "prompt.txt is too short: 5 tokens" in str(short.value) and "= 16 needed" in str(short.value)
    with pytest.raises(HarnessError) as small:
        byte_tokens("abc", 258)
    assert "at least 259 tokens" in str(small.value)
    for error in (short.value, small.value):
        assert len(str(error).splitlines()) == 1


def test_a_changed_text_file_fails_loudly(tmp_path: Path) -> None:
    options = _options(tmp_path, "a" * 100, prefill=4, decode_tokens=3, samples=1)
    (tmp_path / "prompt.txt").write_text("b" * 100)
    with pytest.raises(HarnessError, match="changed since the suite was loaded"):
        prompt_sequences(options, 512)


def test_a_sentencepiece_tokenizer_tokenizes_the_text(tmp_path: Path) -> None:
    sentencepiece = pytest.importorskip("sentencepiece")
    sentencepiece.SentencePieceTrainer.train(input=str(README), model_prefix=str(tmp_path / "sp"), vocab_size=200,
                                             model_type="bpe", minloglevel=2)
    text = README.read_text(encoding="utf-8")
    (tmp_path / "prompt.txt").write_text(text, encoding="utf-8")
    options = GenerationOptions.model_validate({"prompts": "text", "text": "prompt.txt", "tokenizer": "sp.model",
                                                "prefill": 4, "decode_tokens": 3, "samples": 2},
                                               context={"base_dir": tmp_path})
    tokens = sentencepiece_tokens(text, tmp_path / "sp.model", 256)
    assert len(tokens) < len(text.encode()) and tokens.max() < 200
    assert np.array_equal(prompt_sequences(options, 256), tokens[:16].reshape(2, 8))
    with pytest.raises(HarnessError, match="more than the model's vocabulary of 100"):
        sentencepiece_tokens(text, tmp_path / "sp.model", 100)


@pytest.mark.parametrize(("model", "task", "says"), [
    (TOY, "{kind: generation, prompts: text, text: missing.txt, prefill: 8, decode_tokens: 8}",
     "missing.txt does not exist"),
    (TOY, "{kind: generation, prompts: text, prefill: 8, decode_tokens: 8}", "`prompts: text` needs one"),
    (TOY, "{kind: generation, text: suite.yaml, prefill: 8, decode_tokens: 8}", "goes with `prompts: text`"),
    ("{name: q, generative: {family: qwen3-0.6b, max_tokens: 32}}",
     "{kind: generation, prompts: text, text: suite.yaml, prefill: 8, decode_tokens: 8}", "need its `tokenizer`"),
])
def test_a_wrong_text_prompt_is_one_line(tmp_path: Path, model: str, task: str, says: str) -> None:
    text = _one_line(*_validate(tmp_path, model, task))
    assert says in text and "suite.yaml:4" in text, text


def test_a_too_short_byte_level_text_fails_validation_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "prompt.txt").write_text("sixteen bytes ..")
    task = "{kind: generation, prompts: text, text: prompt.txt, samples: 2, prefill: 8, decode_tokens: 8}"
    text = _one_line(*_validate(tmp_path, TOY, task))
    assert "suite.yaml:4" in text and "prompt.txt is too short: 16 tokens" in text and "= 34 needed" in text


def test_the_missing_text_file_names_the_field(tmp_path: Path) -> None:
    task = "{kind: generation, prompts: text, text: missing.txt, prefill: 8, decode_tokens: 8}"
    assert "task.text" in _one_line(*_validate(tmp_path, TOY, task))


@settings(max_examples=50, deadline=None)
@given(arrays(np.float32, (3, 5), elements=st.floats(-1e4, 1e4, width=32)), st.lists(st.integers(0, 4), min_size=3,
                                                                                      max_size=3))
def test_perplexity_is_finite_and_at_least_one_for_any_finite_logits(logits: np.ndarray, targets: list[int]) -> None:
    value = perplexity(logits, np.array(targets))
    assert value >= 1 - 1e-9 and (math.isfinite(value) or value == math.inf)
