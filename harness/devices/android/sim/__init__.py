"""The ADB device simulator: the real wire protocol, a sandboxed shell and file system, and a
`benchmark_model` that runs LiteRT on the host and prints the tool's log. For tests only."""
