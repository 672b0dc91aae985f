"""Structural similarity (Wang et al. 2004) as a thin wrapper over `dm_pix.ssim`.

All functions expect float-encoded images with values in [0, 1], NHWC.
"""

import dm_pix
import jax
import jax.numpy as jnp
import numpy as np

from advjax import _validate

_SIZE = 11
_SIGMA = 1.5


def _valid_filter_matrix(n: int) -> np.ndarray:
  """[n - 10, n]: the valid 11-tap Gaussian (sigma 1.5) filter of a length-n signal."""
  taps = np.exp(-0.5 * ((np.arange(_SIZE) - _SIZE // 2) / _SIGMA) ** 2)
  taps /= taps.sum()
  m = np.zeros((n - _SIZE + 1, n), np.float32)
  for i in range(n - _SIZE + 1):
    m[i, i : i + _SIZE] = taps
  return m


def _gaussian_filter(z: jax.Array) -> jax.Array:
  """dm-pix's default SSIM window (separable 11-tap Gaussian, sigma 1.5, "valid"),
  written as two matmuls: the same filter, but dm-pix's `jnp.convolve` per row is
  slow on XLA:CPU."""
  my = jnp.asarray(_valid_filter_matrix(z.shape[-3]))
  mx = jnp.asarray(_valid_filter_matrix(z.shape[-2]))
  hi = jax.lax.Precision.HIGHEST
  return jnp.einsum("uh,...hwc,vw->...uvc", my, z, mx, precision=hi)


def ssim_unchecked(a: jax.Array, b: jax.Array, max_val: float = 1.0) -> jax.Array:
  """`ssim` without argument checks (for use inside other metrics)."""
  return dm_pix.ssim(
    a,
    b,
    max_val=max_val,
    filter_size=_SIZE,
    filter_sigma=_SIGMA,
    k1=0.01,
    k2=0.03,
    filter_fn=_gaussian_filter,
  )


def ssim(a: jax.Array, b: jax.Array, *, max_val: float = 1.0) -> jax.Array:
  """Per-example SSIM with an 11x11 Gaussian window, sigma 1.5, K1=0.01, K2=0.03.

  The mean of the SSIM map over the valid (unpadded) window positions and the
  channels: what Wang et al. 2004 define and what scikit-image's
  `structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1, channel_axis=-1)` returns.

  Args:
    a: float images [B, H, W, C] in [0, 1], H and W >= 11.
    b: float images of the same shape as `a`.
    max_val: the dynamic range of the pixel values.

  Returns:
    SSIM per example [B], in [-1, 1]; 1 iff `a == b`.

  Raises:
    ValueError: if the images are not rank 4 floats in [0, 1], differ in shape,
      or are smaller than the 11x11 window.
  """
  _validate.check_images(a, "a")
  _validate.check_images(b, "b")
  if a.shape != b.shape:
    raise ValueError(f"`a` and `b` must have the same shape; got {a.shape} and {b.shape}.")
  if a.shape[1] < 11 or a.shape[2] < 11:
    raise ValueError(f"SSIM needs images of at least 11x11 pixels; got {a.shape[1:3]}.")
  return ssim_unchecked(a, b, max_val)
