"""What the cells of a run share and load once: datasets and calibration samples."""

from __future__ import annotations

from harness.cache import ArtifactCache
from harness.config.schema import CalibrationSpec
from harness.datasets import DATASETS, Dataset
from harness.samples import Samples
from harness.suite.loader import LoadedSuite


class SharedInputs:
    """Datasets by name and calibration samples by spec, each loaded once (not thread-safe: host work)."""

    def __init__(self, loaded: LoadedSuite, cache: ArtifactCache) -> None:
        self.loaded, self.cache = loaded, cache
        self._datasets: dict[str, Dataset] = {}
        self._calibration: dict[CalibrationSpec, Samples] = {}

    def dataset(self, name: str) -> Dataset:
        if name not in self._datasets:
            spec = self.loaded.suite.datasets[name]
            loader = DATASETS.get(spec.kind)
            self._datasets[name] = loader.load(name, self.loaded.dataset_options[name], self.loaded.base_dir,
                                               self.cache)
        return self._datasets[name]

    def calibration(self, spec: CalibrationSpec) -> Samples:
        """The calibration samples a spec draws (the same array for every cell that shares it)."""
        if spec not in self._calibration:
            self._calibration[spec] = self.dataset(spec.dataset).sample(spec.samples, spec.seed)
        return self._calibration[spec]
