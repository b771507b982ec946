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

from harness.schemes._base import SCHEMES
from harness.schemes.training._layers import TechniqueOptions, Verdict, clone_wrapped, declined_kernel, plan
from harness.schemes.training._tfmot import Technique, register_technique, tfmot, training_scheme
from harness.schemes.training.prune import PRUNE

_INIT = {"linear": "LINEAR", "kmeans++": "KMEANS_PLUS_PLUS", "density": "DENSITY_BASED", "random": "RANDOM"}


class ClusterOptions(TechniqueOptions):
    clusters: int = Field(16, ge=2, description="distinct values per kernel (number_of_clusters)")
    init: Literal["linear", "kmeans++", "density", "random"] = Field("kmeans++", description="centroid initialisation")
    per_channel: bool = Field(False, description="cluster each Conv2D output channel separately")


class Cluster(Technique):
    name = "cluster"
    Options = ClusterOptions
    default_learning_rate = 1e-5  # TFMOT's clustering guide: centroids move with summed gradients
    pairs_with_post_training = True  # a stripped float model: cluster+int8, cluster+float16, ...

    def wrap(self, model: Any, options: ClusterOptions, before: tuple[str, ...], steps: int,
             info: dict[str, Any]) -> Any:
        clustering = tfmot().clustering.keras
        chosen = plan(model, "cluster", _clusterable, options.layers)
        info.update(chosen.record())
        preserve_sparsity = "prune" in before  # after pruning, keep the zeros (sparsity-preserving clustering)
        info["preserve_sparsity"] = preserve_sparsity
        init = getattr(clustering.CentroidInitialization, _INIT[options.init])
        return clone_wrapped(model, chosen, lambda layer: clustering.cluster_weights(
            layer, number_of_clusters=options.clusters, cluster_centroids_init=init,
            preserve_sparsity=preserve_sparsity, cluster_per_channel=options.per_channel))

    def strip(self, wrapped: Any) -> Any:
        return tfmot().clustering.keras.strip_clustering(wrapped)


def _clusterable(layer: Any) -> Verdict:
    """Wrap layers with clusterable weights; TFMOT's registry (or ClusterableLayer) says which."""
    clustering = tfmot().clustering.keras
    from tensorflow_model_optimization.python.core.clustering.keras import clustering_registry

    registry = clustering_registry.ClusteringRegistry
    if isinstance(layer, clustering.ClusterableLayer):
        return True if layer.get_clusterable_weights() else None
    if not registry.supports(layer):
        return f"TFMOT has no clustering config for {type(layer).__name__}"
    if layer.__class__ not in registry._LAYERS_WEIGHTS_MAP:
        return True if layer.trainable_weights else None  # RNN and attention layers
    return True if registry._weight_names(layer) else declined_kernel(layer, "clustering")


CLUSTER = register_technique(Cluster())

SCHEMES.register("cluster", "weight clustering to `clusters` shared values per kernel (init linear/kmeans++/"
                            "density/random), fine-tuned, stripped; float model")(training_scheme("cluster", [CLUSTER]))
SCHEMES.register("prune+cluster", "pruning, then sparsity-preserving clustering; float model")(
    training_scheme("prune+cluster", [PRUNE, CLUSTER]))
