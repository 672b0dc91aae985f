"""advjax: robust image classification in JAX/Flax.

Pure-functional attacks (`advjax.attacks`), augmentations (`advjax.augment`),
metrics (`advjax.metrics`), losses (`advjax.losses`), Flax models
(`advjax.models`), offline data (`advjax.data`), training (`advjax.train`) and
evaluation (`advjax.eval`).
"""
from advjax import attacks
from advjax import augment
from advjax import data
from advjax import losses
from advjax import metrics
from advjax import models

__version__ = "0.1.0"

__all__ = ["attacks", "augment", "data", "losses", "metrics", "models", "__version__"]
