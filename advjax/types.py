"""Type aliases shared by every part of advjax.

All images are float32 arrays in NHWC layout (batch functions) or HWC layout
(per-example functions) with values in [0, 1]. Normalization lives inside models.
"""
from typing import Any, Callable, Protocol

import jax

Array = jax.Array
ArrayLike = jax.typing.ArrayLike
PRNGKey = jax.Array
PyTree = Any

# A model as attacks see it: images [B, H, W, C] in [0, 1] -> logits [B, classes].
LogitsFn = Callable[[Array], Array]

# A per-example objective: (logits [B, K], labels [B]) -> values [B].
ObjectiveFn = Callable[[Array, Array], Array]

# A projection onto the threat model: (x, origin) -> x.
ProjectFn = Callable[[Array, Array], Array]


class Attack(Protocol):
  """`attack(key, logits_fn, images, labels, *, eps, ...) -> images`."""

  def __call__(self, key: PRNGKey, logits_fn: LogitsFn, images: Array,
               labels: Array, **kwargs: Any) -> Any:
    ...


class Augment(Protocol):
  """`augment(key, image[..., H, W, C], **options) -> image` (one example)."""

  def __call__(self, key: PRNGKey, image: Array, **kwargs: Any) -> Array:
    ...
