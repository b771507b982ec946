"""Where models run: device kinds (one module per kind, each registers itself), CPU topology, logs."""

from harness.devices._base import DEVICE_KINDS, BinaryDevice, Device, DeviceKind, load_device

__all__ = ["DEVICE_KINDS", "BinaryDevice", "Device", "DeviceKind", "load_device"]
