"""Perturbation norms, per example, as reported by Rozsa et al. 2016 (Figure 2).

All functions take float images [B, H, W, C] in [0, 1] and return [B].
"""

import jax
import jax.numpy as jnp

from advjax import _validate


def _delta(adversarial, original):
  _validate.check_images(adversarial, "adversarial")
  _validate.check_images(original, "original")
  if adversarial.shape != original.shape:
    raise ValueError(
      f"`adversarial` and `original` must have the same shape; got "
      f"{adversarial.shape} and {original.shape}."
    )
  return (adversarial - original).reshape(adversarial.shape[0], -1)


def l2_per_pixel(adversarial: jax.Array, original: jax.Array) -> jax.Array:
  """L2 norm of the perturbation divided by the number of pixel values.

  `||x~ - x||_2 / (H * W * C)`, the "L2 norm per pixel" of Rozsa, Rudd & Boult
  2016 (their Figure 2 captions), on the [0, 1] scale.

  Args:
    adversarial: float images [B, H, W, C] in [0, 1].
    original: float images of the same shape.

  Returns:
    [B] non-negative values.

  Raises:
    ValueError: for mismatched shapes or non-image inputs.
  """
  d = _delta(adversarial, original)
  return jnp.sqrt(jnp.sum(d * d, axis=-1)) / d.shape[-1]


def l2_norm(adversarial: jax.Array, original: jax.Array) -> jax.Array:
  """L2 norm of the perturbation `||x~ - x||_2` per example [B] ([0, 1] scale)."""
  d = _delta(adversarial, original)
  return jnp.sqrt(jnp.sum(d * d, axis=-1))


def linf_norm(adversarial: jax.Array, original: jax.Array) -> jax.Array:
  """Linf norm of the perturbation `max |x~ - x|` per example [B] ([0, 1] scale)."""
  d = _delta(adversarial, original)
  return jnp.max(jnp.abs(d), axis=-1)
