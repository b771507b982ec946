"""Any bytes given as a suite give `file:line: message` (ConfigError, exit 2), never a traceback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import ConfigError, HarnessError
from harness.suite import load_suite
from tests.conftest import DATA, run_bench

TINY = (DATA / "tiny.yaml").read_text()

ALIAS_BOMB = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def load_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "suite.yaml"
    path.write_bytes(data)
    load_suite(path)


def test_an_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    started = time.perf_counter()
    with pytest.raises(ConfigError, match="expands to more than 100,000 nodes"):
        load_bytes(tmp_path, ALIAS_BOMB.encode())
    assert time.perf_counter() - started < 5  # not a timing test: a bomb would take minutes and GBs


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nodes|nested"):
        load_bytes(tmp_path, b"models: &m [*m]\n")


@pytest.mark.parametrize("data, message", [
    (TINY.encode("utf-16"), "looks like UTF-16"),
    (b"name: x\n\xff\xfe\x00garbage", "suite.yaml:2: not UTF-8"),
    (b"models: [" * 500 + b"]" * 500, "nested more than"),
    (b"a:\n  - " + b"[" * 300, "nested more than|malformed"),
    (b"name: \x07bell\n", "malformed YAML"),
    (b"\x00\x01\x02", "malformed YAML|not UTF-8"),
    (b"- 1\n- 2\n", "a suite must be a mapping"),
])
def test_hostile_bytes_name_the_file_and_line(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_bytes(tmp_path, data)


@pytest.mark.parametrize("edit, message", [
    (("name: tiny", "name: ../../../x"), "name: '../../../x' is not a valid name"),
    (("name: tiny", "name: /abs/path"), "is not a valid name"),
    (("devices: [local]", "devices: [../elsewhere/evil]"), "devices: '../elsewhere/evil' is not a valid name"),
    (("devices: [local]", "devices: [no_such_phone]"), "no device profile 'no_such_phone'"),
    (("top1: {max_abs_drop: 0.2}", "top1: {min: 0.9, max: 0.5}"), "min (0.9) is above max (0.5)"),
    (("top1: {max_abs_drop: 0.2}", "top1: {max_abs_drop: -0.1}"), "greater than or equal to 0"),
    (("min_secs: 0}", "min_secs: 9, max_secs: 1}"), "min_secs (9) is above max_secs (1)"),
    (("input_shape: [8, 8, 1]", "input_shape: [8, -8, 1]"), "models[0].input_shape"),
    (("test: {kind: digits, split: test}", "test: {kind: npz, path: nowhere.npz}"), "nowhere.npz does not exist"),
    (("test: {kind: digits, split: test}", "test: {kind: mnist, dir: no/such/dir, split: test}"),
     "no/such/dir does not exist"),
])
def test_validation_gaps_are_caught_by_validate(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    old, new = edit
    assert old in TINY
    with pytest.raises(ConfigError) as caught:
        load_bytes(tmp_path, TINY.replace(old, new).encode())
    assert message in str(caught.value) and str(caught.value).startswith(str(tmp_path / "suite.yaml") + ":")


def test_device_names_given_on_the_command_line_are_not_paths(tmp_path: Path) -> None:
    done = run_bench("run", str(DATA / "tiny.yaml"), "--devices", "../elsewhere/evil", "--reports", str(tmp_path))
    assert done.returncode == 2 and "--devices: '../elsewhere/evil' is not a valid name" in done.stderr
    assert "Traceback" not in done.stderr and not any(tmp_path.iterdir())


def test_validate_of_an_alias_bomb_exits_2_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "bomb.yaml").write_text(ALIAS_BOMB)
    done = run_bench("validate", str(tmp_path / "bomb.yaml"))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(
    st.binary(max_size=400),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.builds(lambda cut, junk: TINY.encode()[:cut] + junk, st.integers(0, len(TINY)), st.binary(max_size=40)),
))
def test_fuzz_any_bytes_give_a_config_error(tmp_path: Path, data: bytes) -> None:
    try:
        load_bytes(tmp_path, data)
    except HarnessError as exc:
        assert str(exc).startswith(str(tmp_path / "suite.yaml"))
