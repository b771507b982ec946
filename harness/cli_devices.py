"""`bench devices`: what each device profile (and the adb server) reaches; `bench devices simulate`.

Registered in harness/cli.py with `app.add_typer(devices_app, name="devices")`;
also runnable alone as `python -m harness.cli_devices`.
"""

from __future__ import annotations

import json
import signal
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from harness._console import plain_console
from harness.errors import HarnessError

devices_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                          help="Devices the harness can reach: model, ABI, Android version, cores, big-core mask.")
console = plain_console()

SUITES_DIR = Path("suites")  # profiles are looked up as for `bench run suites/...` (devices/ in the cwd)
SAMPLE_PROFILE = """\
# devices/{name}.yaml — an ADB simulator on this machine (`bench devices simulate`)
kind: adb
connection: 127.0.0.1:{port}
transport: adb-shell                # or: adb (Debian's adb client)
# the simulator runs any pushed file named benchmark_model* as the tool (LiteRT on this host)
benchmark_binary: {binary}
work_dir: /data/local/tmp/quantbench
core: auto                          # one core of the fastest cluster
threads: 1
"""


def profile_names() -> list[str]:
    """Profile names in the folders `bench run` looks in (first folder wins for a name)."""
    from harness.devices._base import profile_dirs

    names: dict[str, None] = {}
    for directory in profile_dirs(SUITES_DIR):
        if directory.is_dir():
            for path in sorted(directory.glob("*.yaml")):
                names.setdefault(path.stem, None)
    return list(names)


def profile_rows() -> list[dict[str, Any]]:
    """One row per profile; adb devices are connected to and probed."""
    from harness.devices import DEVICE_KINDS, load_device

    def row(name: str) -> dict[str, Any]:
        try:
            device = load_device(name, SUITES_DIR)
        except HarnessError as exc:
            return {"name": name, "source": "profile", "reachable": False, "error": str(exc)}
        try:
            facts = device.inventory()
        finally:
            device.close()
        return {"name": name, "source": "profile", **facts}

    names = profile_names()
    DEVICE_KINDS.names()  # load the registry before the threads do (its lazy load is not thread-safe)
    with ThreadPoolExecutor(max(1, min(8, len(names)))) as pool:  # unreachable phones wait in parallel
        return list(pool.map(row, names))


def server_rows(known: set[str], adb: str, timeout: float) -> list[dict[str, Any]]:
    """Devices of the user's adb server (`adb devices -l`) that no profile names."""
    from harness.devices.android.connection import ServerCliTransport, list_server_devices
    from harness.devices.android.probe import probe
    from harness.devices.android.transport import DeviceLost, DeviceTimeout

    rows = []
    for listed in list_server_devices(adb, timeout=timeout):
        if listed.serial in known:
            continue
        row: dict[str, Any] = {"name": listed.serial, "source": "adb devices", "kind": "adb",
                               "connection": listed.serial, "transport": "adb", "state": listed.state,
                               "details": listed.details}
        if listed.state != "device":
            rows.append({**row, "reachable": False, "error": f"state {listed.state}"})
            continue
        try:
            transport = ServerCliTransport(listed.serial, adb=adb, connect_timeout=timeout)
            try:
                row.update(probe(transport, "auto", timeout).to_dict(), reachable=True)
            finally:
                transport.close()
        except (DeviceLost, DeviceTimeout, HarnessError) as exc:
            row.update(reachable=False, error=str(exc))
        rows.append(row)
    return rows


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table(header_style="bold")
    for column in ("device", "source", "connection", "model", "ABI", "Android", "cores (max freq)", "big core",
                   "mask", "note"):
        table.add_column(column)
    for row in rows:
        android = row.get("android")
        if android and row.get("sdk"):
            android = f"{android} (SDK {row['sdk']})"
        note = row.get("error") if not row.get("reachable") else row.get("core_reason")
        cells = [row["name"], row.get("source", ""), row.get("connection") or row.get("kind", ""),
                 row.get("model") or "–", row.get("abi") or "–", android or "–", row.get("clusters") or "–",
                 row.get("core") if row.get("core") is not None else "–", row.get("mask") or "–", note or ""]
        table.add_row(*(Text(str(c)) for c in cells))  # device strings are never markup
    return table


@devices_app.callback(invoke_without_command=True)
def devices(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="print the devices as JSON", show_default="off")] = False,
    scan: Annotated[bool, typer.Option("--scan/--no-scan",
                                       help="also list the devices of the adb server (`adb devices -l`)")] = True,
    adb: Annotated[str, typer.Option(help="the adb client used for --scan")] = "adb",
    timeout: Annotated[float, typer.Option(help="seconds per device for the scan")] = 20.0,
) -> None:
    """Every device: the profiles in devices/, plus what `adb devices -l` lists (`reachable` says which answered)."""
    if ctx.invoked_subcommand is not None:
        return
    rows = profile_rows()
    if scan:
        known = {str(r.get("connection")) for r in rows if r.get("connection")}
        rows += server_rows(known, adb, timeout)
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
    elif rows:
        console.print(_table(rows))
    else:
        console.print("no device profiles in devices/ and no device on the adb server")


@devices_app.command()
def simulate(
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1 (0: a free one)")] = 0,
    cpus: Annotated[str, typer.Option(help="CPU topology, cpu0 first, e.g. 4x1.9GHz+4x2.45GHz")] = "4x1.9GHz+4x2.45GHz",
    model: Annotated[str, typer.Option(help="what getprop ro.product.model answers")] = "ADB Simulator",
    sandbox: Annotated[Path | None, typer.Option(help="folder for the device files",
                                                    show_default="a temporary folder")] = None,
    perturb_outputs: Annotated[str | None, typer.Option(help=(
        "what --output_filepath gets: fp16 (float outputs rounded to float16) or noise:R (Gaussian noise, "
        "R x the output's RMS), as a delegate computing something else would"), show_default="the exact outputs")] = None,
    old_benchmark: Annotated[bool, typer.Option("--old-benchmark", help=(
        "benchmark_model lacks --input_layer_value_files and --output_filepath (an old binary)"),
        show_default="off")] = False,
) -> None:
    """Run one ADB device simulator in the foreground (Ctrl-C stops it) to try the adb flow without a phone."""
    from harness.devices.android.sim.fs import parse_cpu_spec
    from harness.devices.android.sim.simulator import AdbSimulator, DeviceSpec

    if not 0 <= port <= 65535:
        raise HarnessError(f"--port {port}: a TCP port is 0 to 65535 (0: a free one)")
    try:
        parse_cpu_spec(cpus)
    except ValueError as exc:
        raise HarnessError(f"--cpus: {exc}") from None
    try:
        spec = DeviceSpec(model=model, cpus=cpus, perturb_outputs=perturb_outputs, old_benchmark=old_benchmark)
    except ValueError as exc:
        raise HarnessError(f"--perturb-outputs: {exc}") from None
    with tempfile.TemporaryDirectory(prefix="quantbench-sim-") as scratch:
        root = sandbox or Path(scratch) / "device"
        binary = Path(scratch) / "benchmark_model"
        binary.write_bytes(b"stand-in benchmark_model: the ADB simulator runs LiteRT on the host\n")
        try:
            simulator = AdbSimulator(root, device=spec, port=port).start()
        except (OSError, OverflowError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise HarnessError(f"cannot listen on 127.0.0.1:{port}: {reason}") from None
        try:
            outputs = f"; outputs {perturb_outputs}" if perturb_outputs else ""
            old = "; an old benchmark_model (no --output_filepath)" if old_benchmark else ""
            print(f"ADB simulator {model!r} ({cpus}{outputs}{old}) listening on {simulator.serial}; Ctrl-C stops it.")
            print(f"  adb connect {simulator.serial}")
            print()
            print(SAMPLE_PROFILE.format(name="simulator", port=simulator.port, binary=binary), flush=True)
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
            signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
            while not stop.wait(1.0):
                pass
            print("simulator stopped")
        finally:
            simulator.stop()


def main() -> None:
    """`python -m harness.cli_devices`: the same commands before they are wired into `bench`."""
    errors = plain_console(stderr=True)
    try:
        devices_app()
    except HarnessError as exc:
        errors.print(Text.assemble(("error:", "bold red"), " ", str(exc)), highlight=False, soft_wrap=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
