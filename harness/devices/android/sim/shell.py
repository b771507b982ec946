"""The ADB simulator's shell: a small interpreter over the sandbox, never the host shell.

Words follow POSIX quoting (unquoted with `shlex`); `;`, `&&`, `||`, `|`, `>`, `>>`, `<`
and `N>&M` are understood; globs expand in the last path component. Parameter expansion
and command substitution are refused with a syntax error rather than run or passed on.
`$?` (the last exit status) is the one parameter expanded. The only host code ever run is the simulated
`benchmark_model`, which benchmarks the pushed .tflite for real with LiteRT (see sim_benchmark.py).
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import posixpath
import re
import shlex
import shutil
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.devices.android.sim._numerics import NumericsSpec
from harness.devices.android.sim._thermal import thermalservice_dump
from harness.devices.android.sim.fs import Sandbox, SandboxEscape

KILLED_EXIT = 137  # what sh reports for a SIGKILLed child


class ShellSyntaxError(Exception):
    """The command line cannot be parsed (or uses a feature the simulator refuses)."""


class StreamClosed(Exception):
    """The command's stream is gone: the host closed it or the connection dropped."""


class Killed(Exception):
    """The running command was cancelled (stream closed, connection lost, simulator stopped)."""


class _Exit(Exception):
    """The `exit` builtin: stop the command line with a status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@dataclass(frozen=True)
class TasksetCall:
    """One `taskset MASK CMD...` the simulator ran; tests assert on the mask."""

    mask: int
    argv: tuple[str, ...]


@dataclass
class DeviceState:
    """What every shell on one simulated device shares."""

    fs: Sandbox
    props: dict[str, str]
    machine: str
    cpu_count: int
    hang_benchmark: bool = False
    hang_benchmark_from: int = 0  # >0: the Nth benchmark_model run (counted by taskset_log) and later ones hang
    drop_during_benchmark: bool = False
    numerics: NumericsSpec = NumericsSpec()  # benchmark_model's input/output flags (sim._numerics)
    thermal_status: int | None = 0  # `dumpsys thermalservice`'s Thermal Status (None: no such service)
    taskset_log: list[TasksetCall] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Session:
    """Per-command hooks into the connection that runs it."""

    cancelled: threading.Event
    drop_connection: Callable[[], None]


@dataclass
class ShellIO:
    """Where a command reads and writes."""

    out: Callable[[bytes], object]
    err: Callable[[bytes], object]
    stdin: bytes = b""


# --- parsing ------------------------------------------------------------------------------

_OPERATORS = ("&&", "||", ">>", ">&", ";", "|", "&", "<", ">")
_REDIRECTS = (">", ">>", "<", ">&")
_EXPANSION = re.compile(r"\$[A-Za-z_0-9{(?@*#!$-]")
_STATUS = "\0"  # stands for an unquoted `$?` until the word runs (NUL cannot occur in argv)


@dataclass
class Word:
    """A parsed word; `glob` is set when it has unquoted *, ? or [."""

    text: str
    glob: bool = False


@dataclass
class Redirect:
    fd: int
    op: str
    target: str


@dataclass
class Command:
    argv: list[Word] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)


Pipeline = list[Command]


def _refuse_expansion(text: str) -> None:
    if "`" in text or "$(" in text:
        raise ShellSyntaxError("command substitution is not supported by the ADB simulator")
    if _EXPANSION.search(text):
        raise ShellSyntaxError("parameter expansion is not supported by the ADB simulator")


def _closing_double_quote(line: str, start: int) -> int:
    """Index of the `"` closing the double-quoted string opened at `start`."""
    j = start + 1
    while j < len(line) and line[j] != '"':
        j += 2 if line[j] == "\\" else 1
    if j >= len(line):
        raise ShellSyntaxError("unterminated quoted string")
    return j


def _lex(line: str) -> list[tuple[str, str, int | None]]:
    """Split into ("word", raw_text, glob) and ("op", operator, fd) tokens."""
    tokens: list[tuple[str, str, int | None]] = []
    word: list[str] = []
    glob = False

    def flush() -> None:
        nonlocal glob
        if word:
            tokens.append(("word", "".join(word), int(glob)))
            word.clear()
            glob = False

    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c in " \t":
            flush()
            i += 1
        elif c == "\n":
            flush()
            tokens.append(("op", ";", None))
            i += 1
        elif c == "#" and not word:
            end = line.find("\n", i)
            i = n if end < 0 else end
        elif c == "'":
            end = line.find("'", i + 1)
            if end < 0:
                raise ShellSyntaxError("unterminated quoted string")
            word.append(line[i:end + 1])
            i = end + 1
        elif c == '"':
            end = _closing_double_quote(line, i)
            quoted = re.sub(r"(?<!\\)\$\?", _STATUS, line[i:end + 1])
            _refuse_expansion(re.sub(r"\\.", "", quoted))
            word.append(quoted)
            i = end + 1
        elif c == "\\":
            word.append(line[i:i + 2])
            i += 2
        elif c in ";&|<>":
            op = next(o for o in _OPERATORS if line.startswith(o, i))
            text = "".join(word)
            if op in _REDIRECTS and text.isdigit():
                word.clear()
                tokens.append(("op", op, int(text)))
            else:
                flush()
                tokens.append(("op", op, None))
            i += len(op)
        elif line.startswith("$?", i):
            word.append(_STATUS)
            i += 2
        else:
            _refuse_expansion(line[i:i + 2])
            glob = glob or c in "*?["
            word.append(c)
            i += 1
    flush()
    return tokens


def _unquote(raw: str) -> str:
    parts = shlex.split(raw, posix=True)
    return parts[0] if parts else ""


def parse(line: str) -> list[tuple[str, Pipeline]]:
    """Parse a command line into (connector, pipeline) pairs; connector is ;, && or ||."""
    program: list[tuple[str, Pipeline]] = []
    connector, pipeline, command = ";", [], Command()
    tokens = _lex(line)
    i = 0
    while i < len(tokens):
        kind, value, extra = tokens[i]
        if kind == "word":
            command.argv.append(Word(_unquote(value), bool(extra)))
            i += 1
            continue
        if value in _REDIRECTS:
            if i + 1 >= len(tokens) or tokens[i + 1][0] != "word":
                raise ShellSyntaxError(f"syntax error: '{value}' needs a target")
            default_fd = 0 if value == "<" else 1
            command.redirects.append(Redirect(default_fd if extra is None else extra, value,
                                              _unquote(tokens[i + 1][1])))
            i += 2
            continue
        if value == "&":
            raise ShellSyntaxError("background jobs are not supported by the ADB simulator")
        if not command.argv and not command.redirects:
            raise ShellSyntaxError(f"syntax error: '{value}' unexpected")
        pipeline.append(command)
        command = Command()
        if value != "|":
            program.append((connector, pipeline))
            connector, pipeline = value, []
        i += 1
    if command.argv or command.redirects:
        pipeline.append(command)
    elif pipeline or connector in ("&&", "||"):
        raise ShellSyntaxError("syntax error: unexpected end of input")
    if pipeline:
        program.append((connector, pipeline))
    return program


# --- the interpreter ----------------------------------------------------------------------


def text_bytes(data: str) -> bytes:
    """Text as the bytes a shell writes (undecodable bytes kept as they came)."""
    return data.encode("utf-8", "surrogateescape")


def _flags(args: list[str]) -> tuple[set[str], list[str]]:
    """Split leading single-dash option clusters (`-rf`) from operands."""
    flags: set[str] = set()
    rest = list(args)
    while rest and rest[0].startswith("-") and len(rest[0]) > 1:
        arg = rest.pop(0)
        if arg == "--":
            break
        flags.update(arg[1:])
    return flags, rest


def _format_stat(fmt: str, fields: dict[str, str]) -> str:
    """Expand `stat -c` directives (%s, %n, ...); unknown ones stay as written."""
    return re.sub(r"%(.)", lambda match: fields.get(match[1], match[0]), fmt)


def _parse_mode(spec: str, current: int) -> int:
    if re.fullmatch(r"[0-7]{1,4}", spec):
        return int(spec, 8)
    mode = current
    for clause in spec.split(","):
        match = re.fullmatch(r"([ugoa]*)([-+=])([rwx]*)", clause)
        if not match:
            raise ValueError(f"bad mode '{spec}'")
        who = match[1].replace("a", "ugo") or "ugo"
        bits = sum({"r": 4, "w": 2, "x": 1}[p] for p in match[3])
        mask = sum(bits << {"u": 6, "g": 3, "o": 0}[w] for w in set(who))
        span = sum(7 << {"u": 6, "g": 3, "o": 0}[w] for w in set(who))
        mode = {"+": mode | mask, "-": mode & ~mask, "=": (mode & ~span) | mask}[match[2]]
    return mode


class Shell:
    """Runs one command line for one ADB stream; keeps the cwd and CPU affinity."""

    PATH = ("/system/bin", "/system/xbin", "/vendor/bin")

    def __init__(self, device: DeviceState, session: Session) -> None:
        self.device, self.session = device, session
        self.fs = device.fs
        self.cwd = "/"
        self.affinity = (1 << device.cpu_count) - 1
        self.status = 0  # $?
        self._builtins: dict[str, Callable[[list[str], ShellIO], int]] = {
            "echo": self._echo, "cat": self._cat, "ls": self._ls, "mkdir": self._mkdir,
            "rm": self._rm, "chmod": self._chmod, "test": self._test, "[": self._bracket,
            "getprop": self._getprop, "sha256sum": self._sha256sum, "md5sum": self._md5sum,
            "stat": self._stat, "uname": self._uname, "nproc": self._nproc,
            "true": lambda args, io: 0, "false": lambda args, io: 1, "taskset": self._taskset,
            "cd": self._cd, "pwd": self._pwd, "sleep": self._sleep, "exit": self._exit,
            "sh": self._sh, "dumpsys": self._dumpsys,
        }

    def run(self, line: str, io: ShellIO) -> int:
        """Run a command line; returns its exit status (137 if it was killed)."""
        try:
            program = parse(line)
        except ShellSyntaxError as exc:
            io.err(text_bytes(f"sh: {exc}\n"))
            return 2
        try:
            for connector, pipeline in program:
                if (connector == "&&" and self.status != 0) or (connector == "||" and self.status == 0):
                    continue
                self.status = self._pipeline(pipeline, io)
        except Killed:
            return KILLED_EXIT
        except _Exit as done:
            return done.status
        return self.status

    def execute(self, argv: list[str], io: ShellIO) -> int:
        """Run one already-expanded command: a builtin, or an executable file."""
        if self.session.cancelled.is_set():
            raise Killed
        name, args = argv[0], argv[1:]
        if "/" in name:
            return self._exec_file(name, args, io)
        if name in self._builtins:
            return self._builtins[name](args, io)
        for directory in self.PATH:
            try:
                if self.fs.host_path(f"{directory}/{name}").is_file():
                    return self._exec_file(f"{directory}/{name}", args, io)
            except SandboxEscape:
                continue
        io.err(text_bytes(f"sh: {name}: not found\n"))
        return 127

    # -- plumbing ------------------------------------------------------------------------

    def _pipeline(self, pipeline: Pipeline, io: ShellIO) -> int:
        stdin = io.stdin
        for command in pipeline[:-1]:
            buffer = bytearray()
            self._command(command, ShellIO(buffer.extend, io.err, stdin))
            stdin = bytes(buffer)
        return self._command(pipeline[-1], ShellIO(io.out, io.err, stdin))

    def _command(self, command: Command, io: ShellIO) -> int:
        with contextlib.ExitStack() as files:
            for redirect in command.redirects:
                try:
                    io = self._redirect(redirect, io, files)
                except OSError as exc:
                    io.err(text_bytes(f"sh: can't open {redirect.target}: {exc.strerror}\n"))
                    return 1
            argv = [text for word in command.argv for text in self._expand(word)]
            return self.execute(argv, io) if argv else 0

    def _redirect(self, redirect: Redirect, io: ShellIO, files: contextlib.ExitStack) -> ShellIO:
        if redirect.op == ">&":
            if redirect.target not in ("1", "2"):
                raise OSError(9, "Bad file descriptor", redirect.target)
            sink = io.out if redirect.target == "1" else io.err
        elif redirect.op == "<":
            return ShellIO(io.out, io.err, self._host(redirect.target).read_bytes())
        else:
            sink = files.enter_context(open(self._host(redirect.target), "ab" if redirect.op == ">>" else "wb")).write
        if redirect.fd == 2:
            return ShellIO(io.out, sink, io.stdin)
        return ShellIO(sink, io.err, io.stdin)

    def _expand(self, word: Word) -> list[str]:
        text = word.text.replace(_STATUS, str(self.status))
        if not word.glob:
            return [text]
        directory, pattern = posixpath.split(text)
        try:
            names = sorted(os.listdir(self._host(directory or ".")))
        except OSError:
            return [text]
        matches = [posixpath.join(directory, name) for name in names
                   if fnmatch.fnmatchcase(name, pattern) and (pattern.startswith(".") or name[0] != ".")]
        return matches or [text]

    def _host(self, path: str) -> Path:
        return self.fs.host_path(path, self.cwd)

    def _exec_file(self, path: str, args: list[str], io: ShellIO) -> int:
        try:
            host = self._host(path)
        except SandboxEscape:
            io.err(text_bytes(f"sh: {path}: Permission denied\n"))
            return 126
        if not host.exists():
            io.err(text_bytes(f"sh: {path}: not found\n"))
            return 127
        if host.is_dir() or not host.stat().st_mode & 0o111:
            io.err(text_bytes(f"sh: {path}: Permission denied\n"))
            return 126
        if host.name.startswith("benchmark_model"):
            from harness.devices.android.sim.benchmark import BenchmarkModel  # it imports this module

            return BenchmarkModel(self, io, host).run(args)
        io.err(text_bytes(f"sh: {path}: cannot execute: the ADB simulator only runs benchmark_model\n"))
        return 126

    def _file_error(self, io: ShellIO, tool: str, path: str, exc: OSError) -> int:
        io.err(text_bytes(f"{tool}: {path}: {exc.strerror}\n"))
        return 1

    # -- builtins ------------------------------------------------------------------------

    def _echo(self, args: list[str], io: ShellIO) -> int:
        newline = not (args and args[0] == "-n")
        io.out(text_bytes(" ".join(args[0 if newline else 1:]) + ("\n" if newline else "")))
        return 0

    def _cat(self, args: list[str], io: ShellIO) -> int:
        status = 0
        for path in args or ["-"]:
            if path == "-":
                io.out(io.stdin)
                continue
            try:
                io.out(self._host(path).read_bytes())
            except OSError as exc:
                status = self._file_error(io, "cat", path, exc)
        return status

    def _ls(self, args: list[str], io: ShellIO) -> int:
        flags, paths = _flags(args)
        paths, status, listed = paths or ["."], 0, []
        for path in paths:
            try:
                host = self._host(path)
                host.stat()
            except OSError as exc:
                status = self._file_error(io, "ls", path, exc)
                continue
            listed.append((path, host))
        for path, host in listed:
            if not host.is_dir():
                io.out(text_bytes(self._ls_line(host, path, "l" in flags)))
                continue
            if len(paths) > 1:
                io.out(text_bytes(f"{path}:\n"))
            for name in sorted(os.listdir(host)):
                if "a" in flags or not name.startswith("."):
                    io.out(text_bytes(self._ls_line(host / name, name, "l" in flags)))
        return status

    @staticmethod
    def _ls_line(host: Path, name: str, long: bool) -> str:
        if not long:
            return name + "\n"
        st = host.stat()
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(st.st_mtime))
        return f"{stat.filemode(st.st_mode)} {st.st_nlink} root root {st.st_size} {when} {name}\n"

    def _mkdir(self, args: list[str], io: ShellIO) -> int:
        flags, paths = _flags(args)
        status = 0
        for path in paths:
            try:
                self._host(path).mkdir(parents="p" in flags, exist_ok="p" in flags)
            except OSError as exc:
                status = self._file_error(io, "mkdir", path, exc)
        return status

    def _rm(self, args: list[str], io: ShellIO) -> int:
        flags, paths = _flags(args)
        force, recursive = "f" in flags, bool({"r", "R"} & flags)
        status = 0
        for path in paths:
            try:
                host = self._host(path)
                if host == self.fs.root:
                    raise PermissionError(13, "Permission denied", path)
                if host.is_dir():
                    if not recursive:
                        raise IsADirectoryError(21, "Is a directory", path)
                    shutil.rmtree(host)
                else:
                    host.unlink()
            except FileNotFoundError as exc:
                if not force:
                    status = self._file_error(io, "rm", path, exc)
            except OSError as exc:
                status = self._file_error(io, "rm", path, exc)
        return status

    def _chmod(self, args: list[str], io: ShellIO) -> int:
        if len(args) < 2:
            io.err(b"chmod: needs MODE FILE...\n")
            return 1
        status = 0
        for path in args[1:]:
            try:
                host = self._host(path)
                os.chmod(host, _parse_mode(args[0], stat.S_IMODE(host.stat().st_mode)))
            except ValueError as exc:
                io.err(text_bytes(f"chmod: {exc}\n"))
                return 1
            except OSError as exc:
                status = self._file_error(io, "chmod", path, exc)
        return status

    def _bracket(self, args: list[str], io: ShellIO) -> int:
        if not args or args[-1] != "]":
            io.err(b"[: missing ]\n")
            return 2
        return self._test(args[:-1], io)

    def _test(self, args: list[str], io: ShellIO) -> int:
        negate = bool(args) and args[0] == "!"
        try:
            result = self._test_expr(args[1:] if negate else args)
        except ValueError as exc:
            io.err(text_bytes(f"test: {exc}\n"))
            return 2
        return 0 if result != negate else 1

    def _test_expr(self, args: list[str]) -> bool:
        if len(args) <= 1:
            return bool(args and args[0])
        if len(args) == 2:
            op, operand = args
            if op in ("-n", "-z"):
                return bool(operand) == (op == "-n")
            checks: dict[str, Callable[[Path], bool]] = {
                "-e": Path.exists, "-f": Path.is_file, "-d": Path.is_dir,
                "-s": lambda p: p.is_file() and p.stat().st_size > 0,
                "-x": lambda p: p.exists() and bool(p.stat().st_mode & 0o111),
                "-r": Path.exists, "-w": Path.exists,
            }
            if op not in checks:
                raise ValueError(f"unknown operator {op}")
            try:
                return checks[op](self._host(operand))
            except OSError:
                return False
        if len(args) == 3:
            left, op, right = args
            if op in ("=", "!="):
                return (left == right) == (op == "=")
            compare = {"-eq": int.__eq__, "-ne": int.__ne__, "-lt": int.__lt__,
                       "-le": int.__le__, "-gt": int.__gt__, "-ge": int.__ge__}
            if op in compare:
                return compare[op](int(left), int(right))
        raise ValueError("unsupported expression")

    def _getprop(self, args: list[str], io: ShellIO) -> int:
        props = self.device.props
        if not args:
            io.out(text_bytes("".join(f"[{k}]: [{v}]\n" for k, v in sorted(props.items()))))
        else:
            io.out(text_bytes(props.get(args[0], args[1] if len(args) > 1 else "") + "\n"))
        return 0

    def _dumpsys(self, args: list[str], io: ShellIO) -> int:
        if args[:1] == ["thermalservice"] and self.device.thermal_status is not None:
            io.out(text_bytes(thermalservice_dump(self.fs, self.device.thermal_status)))
            return 0
        io.err(text_bytes(f"Can't find service: {args[0] if args else ''}\n"))  # as dumpsys does; exit 0
        return 0

    def _digest(self, tool: str, algorithm: str, args: list[str], io: ShellIO) -> int:
        status = 0
        for path in args or ["-"]:
            try:
                data = io.stdin if path == "-" else self._host(path).read_bytes()
            except OSError as exc:
                status = self._file_error(io, tool, path, exc)
                continue
            io.out(text_bytes(f"{hashlib.new(algorithm, data).hexdigest()}  {path}\n"))
        return status

    def _sha256sum(self, args: list[str], io: ShellIO) -> int:
        return self._digest("sha256sum", "sha256", args, io)

    def _md5sum(self, args: list[str], io: ShellIO) -> int:
        return self._digest("md5sum", "md5", args, io)

    def _stat(self, args: list[str], io: ShellIO) -> int:
        if len(args) < 3 or args[0] != "-c":
            io.err(b"stat: the ADB simulator supports only: stat -c FORMAT FILE...\n")
            return 1
        fmt, status = args[1], 0
        for path in args[2:]:
            try:
                st = self._host(path).stat()
            except OSError as exc:
                status = self._file_error(io, "stat", path, exc)
                continue
            fields = {"s": str(st.st_size), "n": path, "a": f"{stat.S_IMODE(st.st_mode):o}",
                      "A": stat.filemode(st.st_mode), "Y": str(int(st.st_mtime)), "%": "%"}
            io.out(text_bytes(_format_stat(fmt, fields) + "\n"))
        return status

    def _uname(self, args: list[str], io: ShellIO) -> int:
        flags, _ = _flags(args)
        fields = {"s": "Linux", "n": "localhost", "r": "6.1.0-adbsim", "m": self.device.machine}
        wanted = "snrm" if "a" in flags else "".join(f for f in "snrm" if f in flags) or "s"
        io.out(text_bytes(" ".join(fields[f] for f in wanted) + "\n"))
        return 0

    def _nproc(self, args: list[str], io: ShellIO) -> int:
        io.out(text_bytes(f"{bin(self.affinity).count('1')}\n"))
        return 0

    def _taskset(self, args: list[str], io: ShellIO) -> int:
        if len(args) < 2 or args[0].startswith("-"):
            io.err(b"taskset: the ADB simulator supports only: taskset MASK COMMAND...\n")
            return 1
        try:
            mask = int(args[0], 16)
        except ValueError:
            io.err(text_bytes(f"taskset: bad mask '{args[0]}'\n"))
            return 1
        allowed = mask & ((1 << self.device.cpu_count) - 1)
        if not allowed:
            io.err(b"taskset: sched_setaffinity: Invalid argument\n")
            return 1
        with self.device.lock:
            self.device.taskset_log.append(TasksetCall(mask, tuple(args[1:])))
        saved, self.affinity = self.affinity, allowed
        try:
            return self.execute(args[1:], io)
        finally:
            self.affinity = saved

    def _cd(self, args: list[str], io: ShellIO) -> int:
        target = args[0] if args else "/"
        try:
            if not self._host(target).is_dir():
                raise NotADirectoryError(20, "No such directory", target)
        except OSError as exc:
            return self._file_error(io, "sh: cd", target, exc)
        self.cwd = self.fs.normalize(target, self.cwd)
        return 0

    def _pwd(self, args: list[str], io: ShellIO) -> int:
        io.out(text_bytes(self.cwd + "\n"))
        return 0

    def _sh(self, args: list[str], io: ShellIO) -> int:
        if len(args) < 2 or args[0] != "-c":
            io.err(b"sh: the ADB simulator supports only: sh -c COMMAND\n")
            return 2
        child = Shell(self.device, self.session)
        child.cwd, child.affinity = self.cwd, self.affinity
        return child.run(args[1], io)

    def _exit(self, args: list[str], io: ShellIO) -> int:
        try:
            status = int(args[0]) & 0xFF if args else 0
        except ValueError:
            io.err(text_bytes(f"sh: exit: bad number: {args[0]}\n"))
            status = 2
        raise _Exit(status)

    def _sleep(self, args: list[str], io: ShellIO) -> int:
        try:
            seconds = float(args[0])
        except (IndexError, ValueError):
            io.err(b"sleep: needs a number of seconds\n")
            return 1
        if self.session.cancelled.wait(seconds):
            raise Killed
        return 0
