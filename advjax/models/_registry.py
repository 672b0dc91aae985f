"""Models by name, and the `logits_fn` view of a model that attacks use."""

import dataclasses
import functools
import inspect
from typing import Any, Callable, Dict, Tuple

import jax
import jax.numpy as jnp

from advjax.models._efficientnet import EfficientNetB0
from advjax.models._lenet import LeNet5
from advjax.models._preact_resnet import PreActResNet18
from advjax.models._resnet import ResNet18
from advjax.models._resnet50 import ResNet50
from advjax.models._wide_resnet import WideResNet

MODELS: Dict[str, Callable[..., Any]] = {
  # MNIST
  "lenet5": LeNet5,
  # CIFAR (32x32)
  "resnet18": ResNet18,
  "preact_resnet18": PreActResNet18,
  "wide_resnet": WideResNet,
  "wrn28_10": functools.partial(WideResNet, depth=28, widen_factor=10),
  "wrn34_10": functools.partial(WideResNet, depth=34, widen_factor=10),
  # ImageNet (224x224)
  "resnet50": ResNet50,
  "efficientnet_b0": EfficientNetB0,
}


def model_attributes(name: str) -> Tuple[str, ...]:
  """The attributes model `name` takes as keyword arguments (besides `num_classes`).

  Raises:
    ValueError: for an unknown model name.
  """
  if name not in MODELS:
    raise ValueError(f"Unknown model {name!r}; expected one of {sorted(MODELS)}.")
  cls = getattr(MODELS[name], "func", MODELS[name])  # functools.partial or class
  fixed = set(getattr(MODELS[name], "keywords", None) or ())
  return tuple(
    f.name
    for f in dataclasses.fields(cls)
    if f.init and f.name not in ("parent", "name", "num_classes") and f.name not in fixed
  )


def get_model(name: str, *, num_classes: int, **kwargs):
  """Builds a Flax module by name.

  Args:
    name: one of `MODELS`: "lenet5", "resnet18", "preact_resnet18",
      "wide_resnet" (with `depth` and `widen_factor`), "wrn28_10", "wrn34_10",
      "resnet50", "efficientnet_b0".
    num_classes: K.
    **kwargs: the model's attributes (e.g. `dtype=jnp.bfloat16`, `mean`, `std`).

  Returns:
    The Flax module.

  Raises:
    ValueError: for an unknown model name, or an attribute the model does not have.
  """
  takes = model_attributes(name)
  unknown = sorted(set(kwargs) - set(takes))
  if unknown:
    raise ValueError(
      f"model {name!r} has no attribute {', '.join(unknown)}; it takes {list(takes)}."
    )
  return MODELS[name](num_classes=num_classes, **kwargs)


def init_variables(model, key: jax.Array, image_shape) -> Dict[str, Any]:
  """Initial variables ({'params', maybe 'batch_stats'}) for one input shape (H, W, C)."""
  return dict(
    model.init(
      {"params": key, "dropout": key},
      jnp.zeros((1,) + tuple(image_shape), jnp.float32),
      train=False,
    )
  )


# Inference-mode flags of common Flax conventions, with their inference value.
_INFERENCE_FLAGS = (
  ("train", False),
  ("training", False),
  ("is_training", False),
  ("deterministic", True),
)


def _inference_kwargs(model) -> Dict[str, Any]:
  """The inference flag `model.__call__` takes, if any (see `_INFERENCE_FLAGS`)."""
  try:
    params = inspect.signature(type(model).__call__).parameters
  except (TypeError, ValueError):  # not introspectable: pass nothing
    return {}
  for name, value in _INFERENCE_FLAGS:
    if name in params:
      return {name: value}
  return {}


def make_logits_fn(model, variables, **apply_kwargs) -> Callable[[jax.Array], jax.Array]:
  """`images -> logits` of a Flax linen module in inference mode.

  Batch statistics are read, never updated, so the function is pure and every
  example is treated independently (what per-example attack objectives need).

  Works for any linen module: when no `apply_kwargs` are given, the module's
  inference flag is found from its `__call__` signature -- `train=False`,
  `training=False`, `is_training=False` or `deterministic=True`, whichever it
  takes -- and a module without such an argument is called as
  `model.apply(variables, images)`.

  Args:
    model: a `flax.linen.Module` mapping images [B, H, W, C] in [0, 1] to
      logits [B, classes].
    variables: its variables (`{'params': ..., 'batch_stats': ...}`).
    **apply_kwargs: keyword arguments for `model.apply`, replacing the detected
      inference flag (e.g. `use_running_average=True`).

  Returns:
    `logits_fn(images) -> logits`.

  Raises:
    ValueError: if `model` has no `apply` method (pass your own callable to the
      attacks instead).
  """
  if not callable(getattr(model, "apply", None)):
    raise ValueError(
      f"`model` must be a Flax linen module with an `apply` method; got "
      f"{type(model).__name__}. Attacks take any `images -> logits` callable: "
      "pass that instead."
    )
  kwargs = apply_kwargs or _inference_kwargs(model)
  variables = dict(variables)

  def logits_fn(images):
    return model.apply(variables, images, **kwargs)

  return logits_fn
