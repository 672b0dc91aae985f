"""DiffAugment (Zhao et al. 2020): differentiable colour, translation and cutout.

Reference: S. Zhao, Z. Liu, J. Lin, J.-Y. Zhu, S. Han, "Differentiable
Augmentation for Data-Efficient GAN Training", NeurIPS 2020,
https://arxiv.org/abs/2006.10738, code https://github.com/mit-han-lab/data-efficient-gans
(`DiffAugment_pytorch.py`). Parameter ranges are the original ones:

- brightness: x + U(-0.5, 0.5)
- saturation: (x - mean over channels) * U(0, 2) + mean over channels
- contrast: (x - mean over the image) * U(0.5, 1.5) + mean over the image
- translation: integer shift in [-s, s] per axis, s = int(size / 8 + 0.5), zero fill
- cutout: a zeroed square of int(size / 2 + 0.5) pixels, centre uniform
  (clipped at the borders)

The original works on GAN images in [-1, 1] and does not clip; here the result
is clipped to [0, 1] to keep the image contract (the clip is the only
non-differentiable point). Parameters are drawn per example: batch with
`jax.vmap` over split keys.
"""

from typing import Sequence, Union

import jax
import jax.numpy as jnp

from advjax import _validate

POLICIES = ("color", "translation", "cutout")


def _brightness(key, x):
  return x + (jax.random.uniform(key, (), x.dtype) - 0.5)


def _saturation(key, x):
  mean = jnp.mean(x, axis=-1, keepdims=True)
  return (x - mean) * (jax.random.uniform(key, (), x.dtype) * 2.0) + mean


def _contrast(key, x):
  mean = jnp.mean(x)
  return (x - mean) * (jax.random.uniform(key, (), x.dtype) + 0.5) + mean


def color(key: jax.Array, image: jax.Array) -> jax.Array:
  """DiffAugment colour: brightness, saturation, contrast in that order (unclipped)."""
  k1, k2, k3 = jax.random.split(key, 3)
  return _contrast(k3, _saturation(k2, _brightness(k1, image)))


def translation(key: jax.Array, image: jax.Array, *, ratio: float = 0.125) -> jax.Array:
  """Shifts by integers in [-s, s] (s = int(size * ratio + 0.5)) per axis, zero fill."""
  h, w = image.shape[0], image.shape[1]
  sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
  k1, k2 = jax.random.split(key)
  ty = jax.random.randint(k1, (), -sh, sh + 1)
  tx = jax.random.randint(k2, (), -sw, sw + 1)
  rows = jnp.arange(h) - ty
  cols = jnp.arange(w) - tx
  valid = ((rows >= 0) & (rows < h))[:, None] & ((cols >= 0) & (cols < w))[None, :]
  out = image[jnp.clip(rows, 0, h - 1)][:, jnp.clip(cols, 0, w - 1)]
  return jnp.where(valid[..., None], out, 0.0)


def cutout(key: jax.Array, image: jax.Array, *, ratio: float = 0.5) -> jax.Array:
  """Zeroes a square of int(size * ratio + 0.5) pixels at a uniform centre."""
  h, w = image.shape[0], image.shape[1]
  ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
  k1, k2 = jax.random.split(key)
  oy = jax.random.randint(k1, (), 0, h + (1 - ch % 2))
  ox = jax.random.randint(k2, (), 0, w + (1 - cw % 2))
  r = jnp.arange(h) - (oy - ch // 2)
  c = jnp.arange(w) - (ox - cw // 2)
  inside = ((r >= 0) & (r < ch))[:, None] & ((c >= 0) & (c < cw))[None, :]
  return jnp.where(inside[..., None], 0.0, image)


_FNS = {"color": color, "translation": translation, "cutout": cutout}


def _parse(policy):
  return _validate.parse_names(
    policy, "policy", POLICIES, "DiffAugment policy", comma_string=True, distinct=False
  )


def diffaugment(
  key: jax.Array,
  image: jax.Array,
  *,
  policy: Union[str, Sequence[str]] = "color,translation,cutout",
) -> jax.Array:
  """DiffAugment of one image (Zhao et al. 2020), parameters drawn per call.

  Args:
    key: a JAX RNG key.
    image: [H, W, C] float image in [0, 1].
    policy: names from "color", "translation", "cutout", applied in the given
      order: a comma-separated string as in the paper's code, or a tuple such as
      `("color", "cutout")` ("" and `()` are the identity).

  Returns:
    [H, W, C] augmented image, clipped to [0, 1], same dtype. Differentiable
    with respect to `image` (almost everywhere).

  Raises:
    ValueError: for an unknown policy or an image that is not rank 3.

  Example:
    >>> keys = jax.random.split(key, images.shape[0])  # doctest: +SKIP
    >>> out = jax.vmap(diffaugment)(keys, images)      # doctest: +SKIP
  """
  names = _parse(policy)
  _validate.check_images(image, "image", rank=3)
  x = image
  for name, k in zip(names, jax.random.split(key, max(len(names), 1))):
    x = _FNS[name](k, x)
  return jnp.clip(x, 0.0, 1.0).astype(image.dtype)
