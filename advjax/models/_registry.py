"""Models by name, and the `logits_fn` view of a model that attacks use."""

import dataclasses
import functools
import inspect
from typing import Any, Callable, Dict, NamedTuple, Tuple

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


def make_logits_fn(model, variables, **apply_kwargs) -> jax.tree_util.Partial:
  """`images -> logits` of a Flax linen module in inference mode.

  Batch statistics are read, never updated, so the function is pure and every
  example is treated independently (what per-example attack objectives need).

  Works for any linen module: when no `apply_kwargs` are given, the module's
  inference flag is found from its `__call__` signature -- `train=False`,
  `training=False`, `is_training=False` or `deterministic=True`, whichever it
  takes -- and a module without such an argument is called as
  `model.apply(variables, images)`.

  The result is a `jax.tree_util.Partial` whose leaves are `variables` (and any array
  in `apply_kwargs`, such as `rngs`): a function compiled with it as an argument
  (`jit_argument`) takes the weights as inputs, so one program serves every model of
  the same architecture, instead of one compile per model with its weights as constants.

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
  # flags (train=False) are part of the program; arrays (rngs) are its inputs
  static = {k: v for k, v in kwargs.items() if _hashable(v)}
  arrays = {k: v for k, v in kwargs.items() if k not in static}
  return jax.tree_util.Partial(
    _Apply(model, tuple(sorted(static.items()))), dict(variables), **arrays
  )


def _hashable(value) -> bool:
  try:
    hash(value)
  except TypeError:  # arrays, dicts of keys
    return False
  return True


class _Apply(NamedTuple):
  """`(variables, images, **arrays) -> model.apply(variables, images, **static, **arrays)`;
  equal for equal modules and flags, so programs compiled for one model serve another."""

  model: Any
  static: Tuple[Tuple[str, Any], ...]

  def __call__(self, variables, images, **arrays):
    return self.model.apply(variables, images, **dict(self.static), **arrays)


def jit_argument(logits_fn: Callable) -> jax.tree_util.Partial:
  """`logits_fn` in a form `jax.jit` takes as an argument.

  A function that `make_logits_fn` made is returned as it is: compiled with it as an
  argument, a program takes its weights as inputs and serves any model of the same
  architecture (evaluating many checkpoints compiles each attack once). Any other
  callable is wrapped with no leaves: its closure is compiled in, as under a plain
  `jax.jit(lambda x: logits_fn(x))`.

  Args:
    logits_fn: `images [B, H, W, C] -> logits [B, K]`.

  Returns:
    A `jax.tree_util.Partial` that calls `logits_fn`.
  """
  if isinstance(logits_fn, jax.tree_util.Partial):
    return logits_fn
  return jax.tree_util.Partial(logits_fn)


def jit_with_model(fun: Callable, logits_fn: Callable, **jit_kwargs) -> Callable:
  """`jax.jit(fun)` with `logits_fn` bound as its first argument (`jit_argument`).

  Args:
    fun: `(logits_fn, *args) -> outputs`, traced with the model as an argument.
    logits_fn: `images [B, H, W, C] -> logits [B, K]`; from `make_logits_fn`, its
      weights are inputs of the program, which then serves every model of that
      architecture.
    **jit_kwargs: passed to `jax.jit`.

  Returns:
    `(*args) -> outputs`, compiled.
  """
  return functools.partial(jax.jit(fun, **jit_kwargs), jit_argument(logits_fn))
