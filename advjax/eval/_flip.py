"""Flip rate in the style of ImageNet-P (Hendrycks & Dietterich 2019).

A sequence of frames applies a gradually increasing perturbation to each image;
the flip probability is how often the prediction changes between consecutive
frames, averaged over images and frame pairs.
"""

import jax
import jax.numpy as jnp
import numpy as np

from advjax import augment  # its bilinear affine warp, the one AugMix uses

PERTURBATIONS = ("gaussian_noise", "brightness", "translate", "rotate")


def perturbation_sequence(key, image, *, kind: str, num_frames: int = 10, strength: float = 1.0):
  """Frames [T, H, W, C] of one image [H, W, C] under a growing perturbation.

  Frame t (t = 0..T-1) has magnitude t / (T - 1) * max, with max: gaussian_noise
  sigma 0.2 (one fixed noise pattern scaled up), brightness +0.3, translate 3 px
  (sub-pixel steps), rotate 15 degrees; `strength` scales the max.

  Raises:
    ValueError: for an unknown kind.
  """
  if kind not in PERTURBATIONS:
    raise ValueError(f"Unknown perturbation {kind!r}; expected one of {list(PERTURBATIONS)}.")
  if image.ndim != 3:
    raise ValueError(f"`image` must be [H, W, C]; got shape {image.shape}.")
  ts = jnp.linspace(0.0, 1.0, num_frames) * strength
  if kind == "gaussian_noise":
    z = jax.random.normal(key, image.shape, image.dtype)
    frames = jax.vmap(lambda t: image + 0.2 * t * z)(ts)
  elif kind == "brightness":
    frames = jax.vmap(lambda t: image + 0.3 * t)(ts)
  elif kind == "translate":
    frames = jax.vmap(
      lambda t: augment.affine_transform(image, (1.0, 0.0, -3.0 * t, 0.0, 1.0, 0.0))
    )(ts)
  else:
    h, w = image.shape[:2]
    frames = jax.vmap(
      lambda t: augment.affine_transform(image, augment.rotation_matrix(15.0 * t, h, w))
    )(ts)
  return jnp.clip(frames, 0.0, 1.0)


def flip_probability(predictions) -> float:
  """Mean over examples and consecutive frame pairs of [pred_t != pred_{t-1}].

  Args:
    predictions: int [T, N] predicted classes for T frames of N sequences.

  Returns:
    The flip probability in [0, 1].
  """
  p = np.asarray(predictions)
  if p.ndim != 2 or p.shape[0] < 2:
    raise ValueError(f"`predictions` must be [frames >= 2, examples]; got {p.shape}.")
  return float(np.mean(p[1:] != p[:-1]))
