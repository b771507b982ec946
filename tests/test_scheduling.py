"""The order `make test` hands test units to its two xdist workers: the longest unit left first."""

from __future__ import annotations

from collections import OrderedDict

from tests.conftest import SECONDS_PER_TEST, UNIT_SECONDS, longest_first, unit_of, unit_seconds


def queue(*units: tuple[str, int]) -> OrderedDict[str, dict[str, bool]]:
    return OrderedDict((unit, {f"{unit}::t{i}": False for i in range(tests)}) for unit, tests in units)


def test_serial_paths_are_one_unit_and_other_tests_go_by_module() -> None:
    assert unit_of("tests/executors/test_ray_cluster.py::test_x") == unit_of("tests/report/test_browser.py::t") == "serial"
    assert unit_of("tests/report/test_html.py::test_x[a::b]") == "tests/report/test_html.py"


def test_the_longest_unit_goes_first_by_estimate_then_by_test_count() -> None:
    waiting = queue(("tests/a_test.py", 30), ("tests/test_signals.py", 10), ("serial", 5))
    taken = []
    while waiting:
        longest_first(waiting, {})
        taken.append(waiting.popitem(last=False)[0])
    assert taken == ["serial", "tests/test_signals.py", "tests/a_test.py"]
    assert unit_seconds("tests/a_test.py", ["x"] * 30, {}) == 30 * SECONDS_PER_TEST < UNIT_SECONDS["tests/test_signals.py"]


def test_what_the_tests_took_last_time_wins_when_every_test_of_the_unit_was_timed() -> None:
    waiting = queue(("tests/test_signals.py", 2), ("tests/a_test.py", 2))
    learned = {"tests/a_test.py::t0": 400.0, "tests/a_test.py::t1": 1.0, "tests/test_signals.py::t0": 500.0}
    longest_first(waiting, learned)  # test_signals.py::t1 was never timed: its estimate stands
    assert next(iter(waiting)) == "tests/a_test.py"
    assert unit_seconds("tests/a_test.py", list(waiting["tests/a_test.py"]), learned) == 401.0
