"""Without the `torch` extra the harness works, and a torch source is one error line naming the extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.config.schema import ModelSpec
from harness.errors import HarnessError
from harness.models.source import resolve_source
from harness.results import read_results
from tests.conftest import BENCH_ENV, ROOT

pytestmark = pytest.mark.slow  # runs `bench` in a fresh interpreter without torch

HERE = Path(__file__).parent
EXTRA = "pip install 'quantbench[torch]'"
# torch, litert_torch and torchao cannot be found, as when the extra is not installed (a finder, not None in
# sys.modules: other libraries, Keras among them, look there for torch)
BLOCK = """import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'litert_torch', 'torchao'):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoTorch())
"""


@pytest.mark.parametrize("blocked", ["torch", "litert_torch"])
def test_torch_source_without_the_extra_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     blocked: str) -> None:
    from harness.cache import ArtifactCache

    monkeypatch.setitem(sys.modules, blocked, None)  # `import torch` raises ImportError, as when not installed
    spec = ModelSpec.model_validate({"torch": {"module": str(HERE / "tiny_torch.py"), "factory": "tiny_cnn",
                                               "input_shape": [1, 1, 28, 28]}})
    with pytest.raises(HarnessError) as caught:
        resolve_source(spec, None, tmp_path, ArtifactCache(tmp_path / "cache"), None)
    message = str(caught.value)
    assert "\n" not in message and EXTRA in message and f"{blocked} is not installed" in message


def test_bench_run_without_torch_records_the_extra_and_runs_the_rest(tmp_path: Path) -> None:
    """A fresh interpreter where torch cannot be imported: the suite loads (no harness module imports torch
    at import time), the torch model's cells fail with the one line, the Keras model beside it runs (and
    records its own `conversion`: TFLiteConverter's float .tflite vs the Keras model)."""
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"""
datasets:
  images: {{kind: synthetic, count: 4, seed: 1}}
models:
  - {{name: keras_cnn, builder: tutorial_cnn, input_shape: [28, 28, 1], filters: 4}}
  - {{name: tiny, torch: {{module: {HERE / 'tiny_torch.py'}, factory: tiny_cnn, input_shape: [1, 1, 28, 28]}}}}
task: {{kind: fidelity, dataset: images, batch_size: 1}}
schemes: [float32, pt2e_int8_dynamic]
""")
    out = tmp_path / "run"
    code = (f"{BLOCK}\nfrom harness.cli import main; sys.argv = ['bench', 'run', {str(suite)!r}, '--out', "
            f"{str(out)!r}, '--cache', {str(tmp_path / 'cache')!r}, '--no-history']; main()")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**__import__("os").environ, **BENCH_ENV},
                            capture_output=True, text=True, timeout=600, check=False)
    assert "Traceback" not in result.stderr, result.stderr
    cells = read_results(out)
    status = {(c["model"], c["scheme"]): c for c in cells}
    assert status["keras_cnn", "float32"]["status"] == "ok"
    conversion = status["keras_cnn", "float32"]["conversion"]
    assert conversion["framework"] == "keras" and conversion["converter"] == "TFLiteConverter", conversion
    assert float(conversion["snr_db"]) >= 60 and conversion["samples"] == 4
    assert "PT2E quantizes a torch model" in status["keras_cnn", "pt2e_int8_dynamic"]["error"]
    for scheme in ("float32", "pt2e_int8_dynamic"):
        cell = status["tiny", scheme]
        assert cell["status"] == "failed" and EXTRA in cell["error"] and "\n" not in cell["error"], cell["error"]
