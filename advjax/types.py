"""Type aliases shared by the packages of advjax.

Images are float32 arrays in NHWC layout with values in [0, 1]; normalization lives
inside models.
"""

from typing import Callable

import jax

# A classifier as attacks and evaluation see it: `logits_fn(images [B, H, W, C] float32 in
# [0, 1]) -> logits [B, K]`, a pure function of the images (a Flax, NNX, Equinox or Haiku
# model applied in inference mode, or `eval.ensemble_logits_fn` of several).
LogitsFn = Callable[[jax.Array], jax.Array]
