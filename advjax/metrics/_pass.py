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

from advjax import _backends
from advjax import _fusion
from advjax import _validate
from advjax._backends import cpu_sizes
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


class PassResult(NamedTuple):
  """What `pass_score_with_info` returns: the scores [B] and their `PassInfo`."""

  score: jax.Array
  info: PassInfo


def pass_score(
  adversarial: jax.Array,
  original: jax.Array,
  *,
  num_iterations: int = 50,
  eps: float = 1e-3,
  border: str = "constant",
) -> jax.Array:
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

  Returns:
    PASS [B] in [-1, 1] (1 for identical images). `pass_score_with_info` also
    returns the alignment's `PassInfo`.

  Raises:
    ValueError: for mismatched shapes, non-float or rank != 4 images, values
      outside [0, 1] (checked when concrete), or images smaller than 11x11.
  """
  return _pass(adversarial, original, num_iterations, eps, border, False)


def pass_score_with_info(
  adversarial: jax.Array,
  original: jax.Array,
  *,
  num_iterations: int = 50,
  eps: float = 1e-3,
  border: str = "constant",
) -> PassResult:
  """`pass_score` and its `PassInfo` (warp, correlation, fallback, unaligned SSIM).

  Args, Raises: as `pass_score`.

  Returns:
    A `PassResult(score [B], info)`.
  """
  return PassResult(*_pass(adversarial, original, num_iterations, eps, border, True))


def _pass(adversarial, original, num_iterations, eps, border, with_info):
  _ecc._check_pair(adversarial, original, ("adversarial", "original"))
  _validate.check_positive_int(num_iterations, "num_iterations")
  _validate.check_choice(border, "border", _ecc.BORDERS)
  if adversarial.shape[1] < 11 or adversarial.shape[2] < 11:
    raise ValueError(f"PASS needs images of at least 11x11 pixels; got {adversarial.shape[1:3]}.")
  return _pass_batch(
    adversarial.astype(jnp.float32),
    original.astype(jnp.float32),
    num_iterations,
    float(eps),
    border,
    with_info,
  )


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5))
def _pass_batch(adversarial, original, num_iterations, eps, border, with_info):
  state = _ecc._ecc_iterate(adversarial, original, num_iterations, eps, True)
  n = adversarial.shape[0]
  # The whole batch in one step; on CPU `cpu_sizes.PASS_CHUNK` pairs at a time.
  final = lambda chunk: lambda *a: _final(state, *a, border, with_info, min(chunk, n))
  out = _backends.on_cpu(final(cpu_sizes.PASS_CHUNK), final(n), adversarial, original)
  if not with_info:
    return out["score"]
  return out["score"], PassInfo(**{k: out[k] for k in _FIELDS[1:]})


_FIELDS = ("score", "warp", "correlation", "fallback", "ssim_unaligned")


def _final(state, adversarial, original, border, with_info, chunk):
  """The final correlation check, the aligned images and their SSIM, `chunk` pairs
  at a time: a dict of `_FIELDS` (only "score" unless `with_info`)."""
  n = adversarial.shape[0]
  shapes = dict(score=(), warp=(3, 3), correlation=(), fallback=(), ssim_unaligned=())
  out = {
    k: jnp.zeros((n,) + shapes[k], bool if k == "fallback" else jnp.float32)
    for k in _FIELDS[: (5 if with_info else 1)]
  }

  # The last chunk overlaps its predecessor.
  def body(j, out):
    start = jnp.minimum(j * chunk, n - chunk)
    adv = jax.lax.dynamic_slice_in_dim(adversarial, start, chunk)
    orig = jax.lax.dynamic_slice_in_dim(original, start, chunk)
    res, aligned = _ecc._finish(state, start, chunk, adv, border)
    # Where ECC fell back, the identity warp means PASS is the plain SSIM.
    # Materialized: SSIM reads it three times, a fusion would resample it each time.
    aligned = _fusion.materialize(
      lambda y, x, f: jnp.where(f[:, None, None, None], x, y), aligned, adv, res.fallback
    )
    new = dict(score=jnp.nan_to_num(_ssim_lib.ssim_unchecked(aligned, orig, 1.0), nan=0.0))
    if with_info:
      new.update(
        warp=res.warp,
        correlation=res.correlation,
        fallback=res.fallback,
        ssim_unaligned=_ssim_lib.ssim_unchecked(adv, orig, 1.0),
      )
    return {k: jax.lax.dynamic_update_slice_in_dim(out[k], new[k], start, 0) for k in out}

  return jax.lax.fori_loop(0, -(-n // chunk), body, out)
