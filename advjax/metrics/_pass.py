"""Perceptual adversarial similarity score (PASS) of Rozsa, Rudd & Boult 2016.

`PASS(x~, x) = SSIM(psi(x~, x), x)`, where `psi` aligns the adversarial image
x~ to the original x with the homography that maximizes the enhanced correlation
coefficient (Evangelidis & Psarakis 2008). Batched, jit-able, never raises
inside jit and never returns NaN. Images are float NHWC in [0, 1].
"""
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from advjax import _validate
from advjax.metrics import _ecc
from advjax.metrics import _ssim as _ssim_lib


class PassInfo(NamedTuple):
  """Auxiliary per-example output of `pass_score`.

  Attributes:
    warp: [B, 3, 3] the ECC homography used (identity where `fallback`).
    correlation: [B] final enhanced correlation coefficient.
    fallback: [B] bool, True where ECC did not improve on the identity warp
      and PASS is the plain SSIM of the unaligned images.
    ssim_unaligned: [B] plain SSIM(x~, x).
  """
  warp: jax.Array
  correlation: jax.Array
  fallback: jax.Array
  ssim_unaligned: jax.Array


def _ssim(a, b, chunk: int = 20):
  # Chunks of a large batch are filtered one after another: on CPU the small
  # working set is several times faster than one batch-wide convolution.
  n = a.shape[0]
  if n <= chunk:
    return _ssim_lib.ssim_unchecked(a, b, 1.0)
  nc = -(-n // chunk)
  pad = lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], nc * chunk - n, 0)])
  split = lambda x: pad(x).reshape((nc, chunk) + x.shape[1:])
  return jax.lax.map(lambda ab: _ssim_lib.ssim_unchecked(ab[0], ab[1], 1.0),
                     (split(a), split(b))).reshape(-1)[:n]


def pass_score(adversarial: jax.Array, original: jax.Array, *, num_iterations: int = 50,
               eps: float = 1e-3, border: str = "constant", return_info: bool = False):
  """PASS(x~, x) = SSIM(psi(x~, x), x), per example.

  Rozsa, Rudd & Boult 2016, "Adversarial Diversity and Hard Positive
  Generation", Sec. 3. psi is `ecc_homography(adversarial, original)` followed
  by `warp_homography` (bilinear); SSIM uses the 11x11 Gaussian window with
  sigma 1.5 (`dm_pix.ssim`). If the alignment does not improve the correlation,
  the identity is used (flagged in `PassInfo.fallback`), so PASS never drops
  below the plain SSIM for that reason and is always finite.

  Args:
    adversarial: float images [B, H, W, C] in [0, 1] (H, W >= 11).
    original: float images of the same shape.
    num_iterations: ECC iterations (see `ecc_homography`).
    eps: ECC stopping tolerance on the correlation.
    border: fill of the aligned image outside the adversarial's support,
      "constant" (zeros, as OpenCV's `warpPerspective`) or "edge".
    return_info: also return a `PassInfo`.

  Returns:
    PASS [B] in [-1, 1] (1 for identical images), and a `PassInfo` if
    `return_info`.

  Raises:
    ValueError: for mismatched shapes, non-float or rank != 4 images, values
      outside [0, 1] (checked when concrete), or images smaller than 11x11.
  """
  _ecc._check_pair(adversarial, original, ("adversarial", "original"))
  _validate.check_positive_int(num_iterations, "num_iterations")
  _validate.check_choice(border, "border", _ecc.BORDERS)
  if adversarial.shape[1] < 11 or adversarial.shape[2] < 11:
    raise ValueError(f"PASS needs images of at least 11x11 pixels; got "
                     f"{adversarial.shape[1:3]}.")
  return _pass_batch(adversarial.astype(jnp.float32), original.astype(jnp.float32),
                     num_iterations, float(eps), border, bool(return_info))


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5))
def _pass_batch(adversarial, original, num_iterations, eps, border, return_info):
  res, aligned = _ecc._ecc_batch(adversarial, original, num_iterations, eps, True, border)
  # Where ECC fell back, the identity warp means PASS is the plain SSIM.
  aligned = jnp.where(res.fallback[:, None, None, None], adversarial, aligned)
  score = jnp.nan_to_num(_ssim(aligned, original), nan=0.0)
  if not return_info:
    return score
  plain = _ssim(adversarial, original)
  return score, PassInfo(warp=res.warp, correlation=res.correlation,
                         fallback=res.fallback, ssim_unaligned=plain)
