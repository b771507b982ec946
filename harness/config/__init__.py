"""The suite file's shape: its pydantic schema (schema.py) and YAML with line numbers (yaml_lines.py).

Below every plugin (it imports only harness.errors), so a device kind's profile options or a scheme's
`recover:` can use its specs; turning a suite file into cells is harness.suite's job (the loader)."""
