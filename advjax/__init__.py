"""advjax: robust image classification in JAX/Flax.

Pure-functional attacks (`advjax.attacks`), augmentations (`advjax.augment`),
metrics (`advjax.metrics`), losses (`advjax.losses`), Flax models
(`advjax.models`) and in-memory data pipelines (`advjax.data`) need only the core
install (`pip install advjax`); `checked_jit` compiles a function with advjax's value
checks kept. Training (`advjax.train`), evaluation (`advjax.eval`), figures
(`advjax.plots`) and data's dataset loaders need the training extra
(`pip install 'advjax[train]'`): they are imported on first use (`advjax.train`
after `import advjax`), and without the extra that import says what to install.
"""

import importlib

from advjax import attacks
from advjax import augment
from advjax import data
from advjax import losses
from advjax import metrics
from advjax import models
from advjax._checked import checked_jit

__version__ = "0.1.0"

__all__ = [
  "attacks",
  "augment",
  "data",
  "losses",
  "metrics",
  "models",
  "checked_jit",
  "__version__",
]

# Packages that need the training extra: imported on first attribute access.
_TRAINING_PACKAGES = ("eval", "plots", "train")


def __getattr__(name):
  if name in _TRAINING_PACKAGES:
    return importlib.import_module(f"advjax.{name}")
  raise AttributeError(f"module 'advjax' has no attribute {name!r}")


def __dir__():
  return sorted(set(globals()) | set(_TRAINING_PACKAGES))
