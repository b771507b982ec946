"""The local device: LiteRT on this machine, timed in a separate process pinned to one core."""

from harness.devices.local.device import Local, LocalDevice, LocalOptions

__all__ = ["Local", "LocalDevice", "LocalOptions"]
