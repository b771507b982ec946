"""Speech recognition: word and character error rates (jiwer) of greedy CTC transcripts.

The model's first output holds per-frame class scores (N, frames, classes): the blank class
and, in order, the alphabet's characters. Transcripts are compared after lower-casing and
collapsing whitespace; rates are corpus-level (all errors over all reference words/characters).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from harness.datasets import Dataset
from harness.errors import HarnessError, NotApplicable
from harness.tasks._base import OUTPUT_FIDELITY, TASKS, Metric, Task, TaskOptions


class SpeechOptions(TaskOptions):
    alphabet: str = Field(" abcdefghijklmnopqrstuvwxyz'", min_length=1,
                          description="the characters of the non-blank classes, in class order")
    blank: int = Field(0, ge=0, description="class index of the CTC blank")
    decoder: Literal["greedy_ctc"] = "greedy_ctc"

    @model_validator(mode="after")
    def _blank_in_range(self) -> SpeechOptions:
        if self.blank > len(self.alphabet):
            raise ValueError(f"blank must be a class index, 0..{len(self.alphabet)}")
        if len(set(self.alphabet)) != len(self.alphabet):
            raise ValueError("alphabet characters must be unique")
        return self


def normalize(text: str) -> str:
    """Lower case, single spaces, no leading or trailing space."""
    return " ".join(text.lower().split())


def greedy_ctc(scores: np.ndarray, alphabet: str, blank: int = 0) -> list[str]:
    """Best-path CTC transcripts of (N, frames, classes) scores: argmax per frame, repeats
    collapsed, blanks dropped."""
    if scores.ndim != 3 or scores.shape[2] != len(alphabet) + 1:
        raise HarnessError(f"speech task: model output has shape {scores.shape}; expected (N, frames, "
                           f"{len(alphabet) + 1}) for an alphabet of {len(alphabet)} characters plus blank")
    best = np.argmax(scores, axis=2)
    keep = best != blank
    keep[:, 1:] &= best[:, 1:] != best[:, :-1]
    symbols = np.array(list(alphabet[:blank]) + [""] + list(alphabet[blank:]))
    return [normalize("".join(symbols[row[mask]])) for row, mask in zip(best, keep)]


def error_rates(references: list[str], hypotheses: list[str]) -> dict[str, float]:
    """Corpus-level WER and CER, and the WER's substitution, deletion and insertion shares."""
    import jiwer

    if any(not r for r in references):
        raise HarnessError("speech task: a reference transcript is empty")
    words = jiwer.process_words(references, hypotheses)
    total = words.hits + words.substitutions + words.deletions
    return {
        "wer": float(words.wer),
        "cer": float(jiwer.cer(references, hypotheses)),
        "wer_substitutions": words.substitutions / total,
        "wer_deletions": words.deletions / total,
        "wer_insertions": words.insertions / total,
    }


@TASKS.register("speech", "speech recognition: WER/CER (jiwer) of greedy CTC transcripts; transcript agreement "
                "and per-output numerics vs float")
class Speech(Task):
    Options = SpeechOptions
    metrics = (
        Metric("wer", False, "word error rate (corpus level)"),
        Metric("cer", False, "character error rate (corpus level)"),
        Metric("wer_substitutions", False, "substituted words / reference words"),
        Metric("wer_deletions", False, "deleted words / reference words"),
        Metric("wer_insertions", False, "inserted words / reference words"),
        Metric("transcript_agreement", True, "share of utterances transcribed exactly as the float model does", vs_float=True),
        Metric("frame_agreement", True, "share of output frames whose best class is the float model's", vs_float=True),
        *OUTPUT_FIDELITY,
    )
    headline = ("wer", "cer")
    agreement = "transcript_agreement"

    def score(self, outputs: list[np.ndarray], dataset: Dataset, options: SpeechOptions) -> dict[str, float]:
        if dataset.y is None:
            raise NotApplicable(f"dataset {dataset.name!r} has no transcripts")
        hypotheses = greedy_ctc(outputs[0], options.alphabet, options.blank)
        return error_rates([normalize(str(t)) for t in dataset.y], hypotheses)

    def fidelity(self, outputs: list[np.ndarray], reference: list[np.ndarray],
                 options: SpeechOptions) -> dict[str, float]:
        ours, theirs = outputs[0], reference[0]
        same = [a == b for a, b in zip(greedy_ctc(ours, options.alphabet, options.blank),
                                       greedy_ctc(theirs, options.alphabet, options.blank))]
        return {
            "transcript_agreement": float(np.mean(same)),
            "frame_agreement": float(np.mean(np.argmax(ours, axis=2) == np.argmax(theirs, axis=2)))
        }
