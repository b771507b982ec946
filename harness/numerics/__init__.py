"""Numerics tools above the schemes and tasks: `bench diagnose` (diagnose.py, per-tensor drift vs the float
model), litert-quantizer's cross-check (_validate.py) and `recover:` (recover.py, automatic float layers).
The per-output fidelity numbers themselves are harness.fidelity, at the bottom."""
