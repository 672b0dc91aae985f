"""advjax: robust image classification in JAX/Flax.

Pure-functional attacks (`advjax.attacks`), augmentations (`advjax.augment`),
metrics (`advjax.metrics`), losses (`advjax.losses`), Flax models
(`advjax.models`), offline data (`advjax.data`), training (`advjax.train`) and
evaluation (`advjax.eval`); `checked_jit` compiles a function with advjax's value
checks kept.
"""
from advjax import attacks
from advjax import augment
from advjax import data
from advjax import losses
from advjax import metrics
from advjax import models
from advjax._checked import checked_jit

__version__ = "0.1.0"

__all__ = ["attacks", "augment", "data", "losses", "metrics", "models", "checked_jit", "__version__"]
