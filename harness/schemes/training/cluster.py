"""Weight clustering (TFMOT `cluster_weights`): each kernel keeps `clusters` distinct values.

Fine-tuned, stripped (`strip_clustering`), exported as a float model. After pruning
(`prune+cluster`) clustering preserves the zeros (TFMOT's sparsity-preserving clustering).
TFMOT leaves depthwise kernels unclustered (by design: large accuracy loss), and the
converter folds batch normalization into the preceding kernel, which scales each output
channel: there the count of distinct values holds per output channel.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from harness.schemes._base import SCHEMES, SchemeOptions
from harness.schemes.training._tfmot import Technique, ensure_wrappable, tfmot, training_scheme

_INIT = {"linear": "LINEAR", "kmeans++": "KMEANS_PLUS_PLUS", "density": "DENSITY_BASED", "random": "RANDOM"}


class ClusterOptions(SchemeOptions):
    clusters: int = Field(16, ge=2, description="distinct values per kernel (number_of_clusters)")
    init: Literal["linear", "kmeans++", "density", "random"] = Field("kmeans++", description="centroid initialisation")
    per_channel: bool = Field(False, description="cluster each Conv2D output channel separately")


class Cluster(Technique):
    name = "cluster"
    Options = ClusterOptions
    default_learning_rate = 1e-5  # TFMOT's clustering guide: centroids move with summed gradients

    def wrap(self, model: Any, options: ClusterOptions, before: tuple[str, ...], steps: int,
             info: dict[str, Any]) -> Any:
        clustering = tfmot().clustering.keras
        from tensorflow_model_optimization.python.core.clustering.keras import clustering_registry

        ensure_wrappable(model, "cluster", lambda layer: isinstance(layer, clustering.ClusterableLayer)
                         or clustering_registry.ClusteringRegistry.supports(layer),
                         "make it a tfmot.clustering.keras.ClusterableLayer or leave it out of the model")
        preserve_sparsity = "prune" in before  # after pruning, keep the zeros (sparsity-preserving clustering)
        info["preserve_sparsity"] = preserve_sparsity
        return clustering.cluster_weights(
            model, number_of_clusters=options.clusters,
            cluster_centroids_init=getattr(clustering.CentroidInitialization, _INIT[options.init]),
            preserve_sparsity=preserve_sparsity, cluster_per_channel=options.per_channel)

    def strip(self, wrapped: Any) -> Any:
        return tfmot().clustering.keras.strip_clustering(wrapped)


CLUSTER = Cluster()

SCHEMES.register("cluster", "weight clustering to `clusters` shared values per kernel (init linear/kmeans++/"
                            "density/random), fine-tuned, stripped; float model")(training_scheme("cluster", [CLUSTER]))
