"""The `error` a cell's record carries (issue 21): an expected error (HarnessError) is the message the
user acts on, without Python's class name or source line; an unexpected one names both, as an internal
error says where it happened."""

from __future__ import annotations

import re

import pytest

from harness.devices.android.transport import DeviceLost
from harness.errors import ConfigError, HarnessError
from harness.runner.failures import SourceFailed, describe


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:  # noqa: BLE001 - the test wants it with its traceback
        return caught


@pytest.mark.parametrize("exc", [HarnessError("d.npz has no array 'labels' (has ['x', 'y'])"),
                                 ConfigError("s.yaml", 4, "threads", "must be at least 1"),
                                 DeviceLost("device lost: connection reset")])
def test_an_expected_error_is_its_message_alone(exc: HarnessError) -> None:
    assert describe(_raised(exc)) == str(exc)


def test_an_unexpected_error_names_its_type_and_where_it_happened() -> None:
    described = describe(_raised(ValueError("bad shape (3,)")))
    assert re.fullmatch(r"ValueError: bad shape \(3,\) \(at test_error_text\.py:\d+\)", described), described


def test_a_model_source_failure_keeps_what_the_source_said() -> None:
    source = describe(_raised(HarnessError("m.keras: not a valid Keras archive")))
    assert describe(_raised(SourceFailed(source))) == "model source failed: m.keras: not a valid Keras archive"


def test_a_huge_message_is_trimmed_in_the_middle() -> None:
    described = describe(_raised(HarnessError("a" * 1500 + "b" * 1500)))
    assert described.startswith("a" * 1000 + " … ") and described.endswith("b" * 900) and len(described) < 2000
