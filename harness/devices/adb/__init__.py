"""Android devices over adb: host transports, and an ADB device simulator for tests.

The simulator lives in `harness.devices.adb.simulator` and is imported explicitly, so
code that only talks to phones never loads it.
"""

from harness.devices.adb.transport import (
    AdbCliTransport,
    AdbShellTransport,
    DeviceAuthError,
    DeviceLost,
    DeviceTimeout,
    ShellResult,
    Transport,
    quote_args,
)

__all__ = ["AdbCliTransport", "AdbShellTransport", "DeviceAuthError", "DeviceLost", "DeviceTimeout",
           "ShellResult", "Transport", "quote_args"]
