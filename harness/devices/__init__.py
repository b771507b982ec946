"""Where models run: device kinds (local LiteRT, adb), CPU topology, benchmark_model logs."""
