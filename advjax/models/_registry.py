"""Models by name, and the `logits_fn` view of a model that attacks use."""
from typing import Any, Callable, Dict

import jax
import jax.numpy as jnp

from advjax.models._lenet import LeNet5
from advjax.models._resnet import ResNet18

MODELS: Dict[str, Callable[..., Any]] = {"lenet5": LeNet5, "resnet18": ResNet18}


def get_model(name: str, *, num_classes: int, **kwargs):
  """Builds a Flax module by name ("lenet5", "resnet18").

  Raises:
    ValueError: for an unknown model name.
  """
  if name not in MODELS:
    raise ValueError(f"Unknown model {name!r}; expected one of {sorted(MODELS)}.")
  return MODELS[name](num_classes=num_classes, **kwargs)


def init_variables(model, key: jax.Array, image_shape) -> Dict[str, Any]:
  """Initial variables ({'params', maybe 'batch_stats'}) for one input shape (H, W, C)."""
  return dict(model.init({"params": key, "dropout": key},
                         jnp.zeros((1,) + tuple(image_shape), jnp.float32), train=False))


def make_logits_fn(model, variables) -> Callable[[jax.Array], jax.Array]:
  """`images -> logits` in inference mode: running batch statistics, no dropout.

  Batch statistics are read, never updated, so the function is pure and every
  example is treated independently (what per-example attack objectives need).
  """
  variables = dict(variables)
  def logits_fn(images):
    return model.apply(variables, images, train=False)
  return logits_fn
