"""The speech task: greedy CTC decoding, WER/CER (checked by hand and against jiwer), fidelity."""

from __future__ import annotations

import jiwer
import numpy as np
import pytest
from pydantic import ValidationError

from harness.datasets import Dataset
from harness.errors import HarnessError, NotApplicable
from harness.tasks import TASKS
from harness.tasks.speech import SpeechOptions, error_rates, greedy_ctc

ALPHABET = " abcdefghijklmnopqrstuvwxyz'"


def scores_for(path: list[int], classes: int) -> np.ndarray:
    """(1, frames, classes) scores whose per-frame argmax is `path`."""
    scores = np.full((1, len(path), classes), 0.01, np.float32)
    scores[0, np.arange(len(path)), path] = 0.9
    return scores


def spelled(text: str, frames: int = 80) -> np.ndarray:
    """(frames, classes) scores spelling `text`: each character twice then a blank, blanks after."""
    path = [c for char in text for c in (ALPHABET.index(char) + 1,) * 2 + (0,)]
    return scores_for(path + [0] * (frames - len(path)), len(ALPHABET) + 1)[0]


def test_greedy_ctc_collapses_repeats_and_drops_blanks() -> None:
    a, b, space = 1, 2, 3  # alphabet "ab ", blank 0
    path = [0, a, a, 0, a, b, b, 0, 0, space, space, 0, space, b, 0]
    assert greedy_ctc(scores_for(path, 4), "ab ") == ["aab b"]  # two spaces become one
    assert greedy_ctc(scores_for([space, a, a, a, space, 0], 4), "ab ") == ["a"]  # stripped, repeats merged
    assert greedy_ctc(scores_for([0, 0, 0], 4), "ab ") == [""]


def test_greedy_ctc_with_blank_last_and_a_batch() -> None:
    a, b, blank = 0, 1, 2  # alphabet "ab", blank is the last class
    batch = np.concatenate([scores_for([a, blank, a, b], 3), scores_for([b, b, blank, b], 3)])
    assert greedy_ctc(batch, "ab", blank=2) == ["aab", "bb"]


def test_greedy_ctc_rejects_a_wrong_class_count() -> None:
    with pytest.raises(HarnessError, match=r"expected \(N, frames, 4\)"):
        greedy_ctc(np.zeros((2, 10, 5), np.float32), "ab ")


REFERENCES = ["one two three four", "five six", "seven eight nine zero"]
HYPOTHESES = ["one too three four five", "five", "seven eight nine zero"]  # 1 sub + 1 ins, 1 del, exact


def test_error_rates_by_hand() -> None:
    rates = error_rates(REFERENCES, HYPOTHESES)
    # words: 10 in the references; one substitution, one deletion, one insertion
    assert rates["wer"] == pytest.approx(3 / 10)
    assert rates["wer_substitutions"] == pytest.approx(1 / 10)
    assert rates["wer_deletions"] == pytest.approx(1 / 10)
    assert rates["wer_insertions"] == pytest.approx(1 / 10)
    # characters: 18 + 8 + 21 = 47; "two"→"too" 1, " five" inserted 5, " six" deleted 4
    assert rates["cer"] == pytest.approx(10 / 47)


def test_error_rates_match_independent_jiwer_calls() -> None:
    rates = error_rates(REFERENCES, HYPOTHESES)
    assert rates["wer"] == pytest.approx(jiwer.wer(REFERENCES, HYPOTHESES))
    assert rates["cer"] == pytest.approx(jiwer.cer(REFERENCES, HYPOTHESES))
    # corpus level: all errors over all reference words, not a mean of per-utterance rates
    pairs = [jiwer.process_words(r, h) for r, h in zip(REFERENCES, HYPOTHESES)]
    errors = sum(p.substitutions + p.deletions + p.insertions for p in pairs)
    assert rates["wer"] == pytest.approx(errors / sum(len(r.split()) for r in REFERENCES))
    assert rates["wer"] != pytest.approx(np.mean([p.wer for p in pairs]))


def _edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Plain Levenshtein distance (the test's own, independent of jiwer)."""
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        previous, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ref != hyp))
    return row[-1]


def test_error_rates_match_an_own_edit_distance_on_random_edits() -> None:
    rng = np.random.default_rng(0)
    words = "zero one two three four five six seven eight nine".split()
    references, hypotheses = [], []
    for _ in range(50):
        reference = list(rng.choice(words, size=rng.integers(1, 7)))
        hypothesis = list(reference)
        for _ in range(rng.integers(0, 4)):
            edit, at = rng.integers(3), int(rng.integers(len(hypothesis) + 1))
            if edit == 0 and at < len(hypothesis):
                hypothesis[at] = str(rng.choice(words))
            elif edit == 1 and at < len(hypothesis):
                del hypothesis[at]
            else:
                hypothesis.insert(at, str(rng.choice(words)))
        references.append(" ".join(reference))
        hypotheses.append(" ".join(hypothesis))
    rates = error_rates(references, hypotheses)
    word_errors = sum(_edit_distance(r.split(), h.split()) for r, h in zip(references, hypotheses))
    char_errors = sum(_edit_distance(list(r), list(h)) for r, h in zip(references, hypotheses))
    assert rates["wer"] == pytest.approx(word_errors / sum(len(r.split()) for r in references))
    assert rates["cer"] == pytest.approx(char_errors / sum(len(r) for r in references))
    assert rates["wer"] == pytest.approx(rates["wer_substitutions"] + rates["wer_deletions"]
                                         + rates["wer_insertions"])


def test_empty_hypotheses_are_all_deletions_and_empty_references_an_error() -> None:
    assert error_rates(["one two"], [""])["wer_deletions"] == 1.0
    with pytest.raises(HarnessError, match="reference transcript is empty"):
        error_rates(["", "one"], ["one", "one"])


def test_score_normalises_references_and_reads_the_first_output() -> None:
    task = TASKS.get("speech")
    outputs = [np.stack([spelled("one two"), spelled("three"), spelled("four")])]
    dataset = Dataset("d", np.zeros((3, 4), np.float32), np.array(["One  Two", "three", "five"], dtype=object),
                      None, "test")
    scores = task.score(outputs, dataset, SpeechOptions())
    assert scores["wer"] == pytest.approx(1 / 4) and scores["wer_substitutions"] == pytest.approx(1 / 4)
    assert scores["cer"] == pytest.approx(jiwer.cer(["one two", "three", "five"], ["one two", "three", "four"]))
    with pytest.raises(NotApplicable):
        task.score(outputs, Dataset("d", np.zeros((3, 4), np.float32), None, None, "test"), SpeechOptions())


def test_fidelity_compares_transcripts_and_frames() -> None:
    task = TASKS.get("speech")
    reference = [np.stack([spelled("one"), spelled("two")])]
    same = task.fidelity([reference[0].copy()], reference, SpeechOptions())
    assert same == {"transcript_agreement": 1.0, "frame_agreement": 1.0}
    changed = reference[0].copy()
    changed[1] = spelled("too")  # one frame differs: t-t-_-w-w-_-o-o vs t-t-_-o-o-_-o-o
    result = task.fidelity([changed], reference, SpeechOptions())
    assert result["transcript_agreement"] == 0.5
    assert result["frame_agreement"] == pytest.approx(1 - 2 / 160)


def test_options_are_checked() -> None:
    assert SpeechOptions(alphabet="ab", blank=2).blank == 2
    with pytest.raises(ValidationError, match="blank must be a class index"):
        SpeechOptions(alphabet="ab", blank=3)
    with pytest.raises(ValidationError, match="unique"):
        SpeechOptions(alphabet="abca")
    with pytest.raises(ValidationError):
        SpeechOptions(decoder="beam")
