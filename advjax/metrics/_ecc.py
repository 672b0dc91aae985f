"""Batched ECC image alignment with an 8-parameter homography.

Evangelidis & Psarakis 2008, "Parametric Image Alignment Using Enhanced
Correlation Coefficient Maximization" (IEEE TPAMI 30(10)), the forward-additive
Gauss-Newton scheme that OpenCV's `findTransformECC` implements, written so that
a whole batch aligns in one jitted `lax.while_loop` and never raises.

Conventions (as OpenCV's `WARP_INVERSE_MAP`): a warp `W` [3, 3] maps pixel
coordinates of the output (the fixed / template frame) to the input:
`warp_homography(image, W)(p) = image(W p)`, pixel centres at integer (x, y),
x the column. `ecc_homography(moving, fixed)` finds `W` with
`moving(W p) ~ fixed(p)`; if `moving = warp_homography(fixed, H)`, then
`W ~ H^-1`. Images are float NHWC in [0, 1]; colour images are aligned on their
luma (ITU-R 601, as `cv2.cvtColor`).
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from advjax import _backends
from advjax import _fusion
from advjax import _sampling
from advjax import _validate
from advjax._backends import cpu_sizes

# OpenCV's default 5x5 Gaussian for sigma=0 (`getGaussianKernel` small table).
_SMOOTH_KERNEL = np.array([1.0, 4.0, 6.0, 4.0, 1.0], np.float32) / 16.0
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
BORDERS = ("constant", "edge")


class EccResult(NamedTuple):
  """Result of `ecc_homography`, per example.

  Attributes:
    warp: [B, 3, 3] float32 homography (`warp[:, 2, 2] == 1`), fixed -> moving
      coordinates; the identity where `fallback`.
    correlation: [B] enhanced correlation coefficient in [-1, 1] of the
      smoothed images at `warp` (over the pixels that map inside `moving`).
    identity_correlation: [B] the same at the identity warp.
    fallback: [B] bool, True where the iterations did not improve the
      correlation over the identity (or broke down) and the identity was kept.
    num_iterations: [B] int32, Gauss-Newton iterations run.
  """

  warp: jax.Array
  correlation: jax.Array
  identity_correlation: jax.Array
  fallback: jax.Array
  num_iterations: jax.Array


def _to_gray(image):
  """[H, W, C] -> [H, W]."""
  c = image.shape[-1]
  if c == 3:
    return image @ jnp.asarray(_LUMA)
  return jnp.mean(image, axis=-1)


def _check_warps(warps, batch):
  shape = jnp.shape(warps)
  if shape not in ((3, 3), (batch, 3, 3)):
    raise ValueError(
      f"`warps` must have shape [3, 3] or [batch={batch}, 3, 3]; got {tuple(shape)}."
    )


def warp_homography(images: jax.Array, warps: jax.Array, *, border: str = "constant") -> jax.Array:
  """Warps images by homographies with bilinear interpolation.

  `out[b](p) = images[b](warps[b] @ p)` in homogeneous pixel coordinates
  (x = column, y = row, pixel centres at integers): the inverse-map convention of
  OpenCV's `warpPerspective(..., flags=INTER_LINEAR | WARP_INVERSE_MAP)`.

  Args:
    images: float images [B, H, W, C] in [0, 1].
    warps: [B, 3, 3] or one [3, 3] homography for the whole batch.
    border: "constant" (zeros outside, as OpenCV's default) or "edge".

  Returns:
    Warped images [B, H, W, C], float32, in [0, 1].

  Raises:
    ValueError: for non-image inputs, a bad warp shape or an unknown border.
  """
  _validate.check_images(images, "images")
  _validate.check_choice(border, "border", BORDERS)
  _check_warps(warps, images.shape[0])
  warps = jnp.broadcast_to(jnp.asarray(warps, jnp.float32), (images.shape[0], 3, 3))
  return _warp_batch(images.astype(jnp.float32), warps, border)


def _spd_solve(hess, rhs):
  """Solves hess [8, 8] x = rhs [8, R] by an unrolled Cholesky factorization.

  Plain elementwise ops instead of a LAPACK call: fast for a batch of 8x8
  systems under vmap, and never stalls on bad input. A ridge at float32
  resolution keeps flat images (zero Jacobian) finite; non-finite systems give 0.
  """
  n = hess.shape[0]
  ok = jnp.all(jnp.isfinite(hess)) & jnp.all(jnp.isfinite(rhs))
  hess = jnp.where(ok, hess, jnp.eye(n, dtype=hess.dtype))
  rhs = jnp.where(ok, rhs, 0.0)
  ridge = 1e-7 * jnp.trace(hess) / n + 1e-12
  a = hess + ridge * jnp.eye(n, dtype=hess.dtype)
  low = [[None] * n for _ in range(n)]
  for c in range(n):
    diag = a[c, c] - sum((low[c][k] ** 2 for k in range(c)), jnp.zeros((), a.dtype))
    d = jnp.sqrt(jnp.maximum(diag, 1e-30))
    low[c][c] = d
    for r in range(c + 1, n):
      off = a[r, c] - sum((low[r][k] * low[c][k] for k in range(c)), jnp.zeros((), a.dtype))
      low[r][c] = off / d
  z = []
  for r in range(n):  # L z = rhs
    z.append(
      (rhs[r] - sum((low[r][k] * z[k] for k in range(r)), jnp.zeros_like(rhs[r]))) / low[r][r]
    )
  x = [None] * n
  for r in reversed(range(n)):  # L^T x = z
    x[r] = (z[r] - sum((low[k][r] * x[k] for k in range(r + 1, n)), jnp.zeros_like(rhs[r]))) / low[
      r
    ][r]
  out = jnp.stack(x)
  return jnp.where(ok & jnp.all(jnp.isfinite(out)), out, 0.0)


class _Tables(NamedTuple):
  """Per-pair data of a batch of B pairs, built once before the iterations."""

  tmpl: jax.Array  # [B, H * W] smoothed template
  # The moving image in `_sampling.bordered_table`'s layout, read by
  # `_sampling.sample_bordered` at every Gauss-Newton step:
  img: jax.Array  # [B * (H + 2) * (W + 2)] smoothed moving image, zero border, flat
  grad: jax.Array  # the same for its gradient, complex64 gx + i gy (one gather for both)


def _blur_matrix(n, smooth: bool):
  """[n + 2, n]: smooths a length-n signal (5x5 binomial Gaussian, reflect-101,
  as OpenCV's `GaussianBlur`) and adds one zero at each end."""
  eye = np.eye(n, dtype=np.float64)
  blur = eye
  if smooth:
    p = np.pad(eye, ((2, 2), (0, 0)), mode="reflect")
    blur = sum(_SMOOTH_KERNEL[i] * p[i : i + n] for i in range(5))
  return np.pad(blur, ((1, 1), (0, 0))).astype(np.float32)


def _tables(mg, fg, smooth: bool) -> _Tables:
  # The blur (and zero border) is linear and separable: one batched pair of
  # matmuls for both images (much faster on CPU than shifted-slice filters).
  b, h, w = mg.shape
  row, col = _blur_matrix(h, smooth), _blur_matrix(w, smooth)
  both = jnp.einsum(
    "ij,bjk,lk->bil", row, jnp.concatenate([mg, fg]), col, precision=jax.lax.Precision.HIGHEST
  )  # [2B, H + 2, W + 2]
  img, tmpl = both[:b], both[b:, 1:-1, 1:-1]
  # Central differences [-0.5, 0, 0.5] with a reflect-101 border (OpenCV's ECC)
  # are zero on the image's first and last column (row); plus the zero border.
  gx = jnp.pad(0.5 * (img[:, 1:-1, 3:-1] - img[:, 1:-1, 1:-3]), ((0, 0), (1, 1), (2, 2)))
  gy = jnp.pad(0.5 * (img[:, 3:-1, 1:-1] - img[:, 1:-3, 1:-1]), ((0, 0), (2, 2), (1, 1)))
  gx, gy = (g if g.shape == img.shape else jnp.zeros_like(img) for g in (gx, gy))  # 1 px
  return _Tables(tmpl.reshape(b, -1), img.reshape(-1), jax.lax.complex(gx, gy).reshape(-1))


def _monomials(h, w):
  """[H * W, 6]: 1, x, y, x^2, x y, y^2 at each pixel."""
  ys, xs = (
    a.ravel()
    for a in np.meshgrid(
      np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij"
    )
  )
  return np.stack([np.ones_like(xs), xs, ys, xs * xs, xs * ys, ys * ys], -1)


def _geometry(warp, ids, h, w, border="constant"):
  """Bilinear taps of the grid mapped through warp [C, 3, 3] into pairs `ids` [C].

  Returns `_sampling.bordered_taps` of the mapped coordinates (flat uint32
  indices of the top-left taps into `_Tables`-layout images, the fractional row
  and column offsets), then the mapped coordinates, 1 / den and the valid mask,
  each [C, H * W].
  """
  mono = _monomials(h, w)
  xs, ys = jnp.asarray(mono[:, 1]), jnp.asarray(mono[:, 2])
  wp = warp.reshape(-1, 9, 1)
  den = wp[:, 6] * xs + wp[:, 7] * ys + wp[:, 8]
  den = jnp.where(jnp.abs(den) < 1e-6, jnp.where(den < 0, -1e-6, 1e-6), den)
  inv = 1.0 / den
  xw = (wp[:, 0] * xs + wp[:, 1] * ys + wp[:, 2]) * inv
  yw = (wp[:, 3] * xs + wp[:, 4] * ys + wp[:, 5]) * inv
  idx, fr, fc = _sampling.bordered_taps(yw, xw, ids, h, w, border)
  # Valid pixels: the nearest input pixel exists (OpenCV warps an all-ones mask
  # with INTER_NEAREST).
  xr, yr = jnp.round(xw), jnp.round(yw)
  mask = ((xr >= 0) & (xr <= w - 1) & (yr >= 0) & (yr <= h - 1)).astype(jnp.float32)
  return idx, fr, fc, xw, yw, inv, mask


def _warp_batch(images, warps, border, geometry=None):
  """warp_homography of [B, H, W, C] float32 images by warps [B, 3, 3], unchecked.

  `geometry`: the (idx, fr, fc) of `_geometry(warps, ...)`, if already computed.
  """
  b, h, w, c = images.shape
  if geometry is None:
    ids = jnp.arange(b, dtype=jnp.int32)
    geometry = _fusion.materialize(lambda wp: _geometry(wp, ids, h, w, border)[:3], warps)
  out = jnp.stack(
    [
      _sampling.sample_bordered(_sampling.bordered_table(images[..., k], border), *geometry, w)
      for k in range(c)
    ],
    -1,
  )
  return jnp.clip(out, 0.0, 1.0).reshape(b, h, w, c)


def _zero_mean(img, tmpl, mask):
  count = jnp.maximum(jnp.sum(mask, -1, keepdims=True), 1.0)
  i = (img - jnp.sum(img * mask, -1, keepdims=True) / count) * mask
  t = (tmpl - jnp.sum(tmpl * mask, -1, keepdims=True) / count) * mask
  return i, t


# The Jacobian of (xw, yw) in p = (h00, h01, h02, h10, h11, h12, h20, h21),
# OpenCV's order, times the warped gradients is J = [a x, a y, a, b x, b y, b,
# c x, c y] with a = gx / den, b = gy / den, c = -(a xw + b yw). Every moment the
# Gauss-Newton step needs is a sum over pixels of a product of one of (a, b, c)
# with one of (a, b, c, i, t), the zero-mean image and template, times one of
# the monomials (1, x, y, x^2, x y, y^2). The products are symmetric in (a, b, c):
# 12 of them, (a, b, c, i, t) a, (b, c, i, t) b and (c, i, t) c, give one
# [C * 12, H * W] x [H * W, 6] matmul; plus i.i, i.t and t.t.
_J = [(0, 1), (0, 2), (0, 0), (1, 1), (1, 2), (1, 0), (2, 1), (2, 2)]  # (factor, monomial)
_MONO = {(0, 0): 0, (0, 1): 1, (0, 2): 2, (1, 1): 3, (1, 2): 4, (2, 2): 5}
_ROW = lambda u, v: (0, 5, 9)[min(u, v)] + abs(v - u)  # row of the product of u and v
_HESS_ROW = np.array([_ROW(u, v) for u, _ in _J for v, _ in _J])
_HESS_COL = np.array([_MONO[(min(m, n), max(m, n))] for _, m in _J for _, n in _J])
_PROJ_ROW = np.array([_ROW(u, 3) for u, _ in _J])  # (+ 1: with t instead of i)
_PROJ_COL = np.array([m for _, m in _J])


def _identity_factors(start, chunk, tables: _Tables, h, w):
  """`_moments`' factors at the identity warp for pairs start .. start + chunk:
  no sampling, the images are read in place."""
  q = (h + 2) * (w + 2)
  # Materialized: contiguous copies; the fusion that builds the factors is
  # several times slower when it also slices the flat tables.
  img, grad = _fusion.materialize(
    lambda *t: tuple(jax.lax.dynamic_slice_in_dim(tab, start * q, chunk * q) for tab in t),
    tables.img,
    tables.grad,
  )
  img, grad = (
    x.reshape(chunk, h + 2, w + 2)[:, 1:-1, 1:-1].reshape(chunk, h * w) for x in (img, grad)
  )
  gx, gy = grad.real, grad.imag
  tmpl = jax.lax.dynamic_slice_in_dim(tables.tmpl, start, chunk)
  i = img - jnp.mean(img, -1, keepdims=True)
  t = tmpl - jnp.mean(tmpl, -1, keepdims=True)
  mono = _monomials(h, w)
  return jnp.stack([gx, gy, -(gx * mono[:, 1] + gy * mono[:, 2]), i, t], 1)


def _moments(warp, ids, tables: _Tables, h, w, identity_start=None):
  """Normal equations of the ECC at warp [C, 3, 3] for pairs `ids` [C].

  With `identity_start`, warp is the identity and ids = identity_start + range(C).
  Returns hess [C, 8, 8], J^T i and J^T t [C, 8], i.i, t.t and i.t [C].
  """

  def factors(warp):
    if identity_start is not None:
      return _identity_factors(identity_start, warp.shape[0], tables, h, w)
    idx, fr, fc, xw, yw, inv, mask = _fusion.materialize(lambda wp: _geometry(wp, ids, h, w), warp)
    # Materialized: a fusion that builds c = -(a xw + b yw) next to a and b
    # would gather the gradients twice.
    img, grad = _fusion.materialize(
      lambda *g: tuple(_sampling.sample_bordered(t, *g, w) for t in (tables.img, tables.grad)),
      idx,
      fr,
      fc,
    )
    gx, gy = grad.real, grad.imag
    i, t = _zero_mean(img, tables.tmpl[ids], mask)
    a = gx * mask * inv
    b = gy * mask * inv
    return jnp.stack([a, b, -(a * xw + b * yw), i, t], 1)

  f = _fusion.materialize(factors, warp)  # [C, 5, H * W]: a, b, c, i, t
  rows = jnp.concatenate([f[:, u : u + 1] * f[:, u:] for u in range(3)], 1)  # [C, 12, H * W]
  m = jnp.einsum(
    "crp,pk->crk", rows, jnp.asarray(_monomials(h, w)), precision=jax.lax.Precision.HIGHEST
  )
  hess = m[:, _HESS_ROW, _HESS_COL].reshape(-1, 8, 8)
  i, t = f[:, 3], f[:, 4]
  return (hess, m[:, _PROJ_ROW, _PROJ_COL], m[:, _PROJ_ROW + 1, _PROJ_COL], *_inner(i, t))


def _inner(i, t):
  """i.i, t.t and i.t per row of the zero-mean images i, t [C, H * W]."""
  return jnp.sum(i * i, -1), jnp.sum(t * t, -1), jnp.sum(i * t, -1)


def _rho(ii, tt, it):
  den = jnp.sqrt(ii * tt)
  rho = jnp.where(den > 1e-12, it / jnp.maximum(den, 1e-12), 0.0)
  return jnp.where(jnp.isfinite(rho), rho, -1.0)


def _gauss_newton(warp, ids, tables: _Tables, h, w, identity_start=None):
  """One forward-additive ECC step for pairs `ids`: (rho at warp, new warp, broke)."""
  hess, img_proj, tmp_proj, ii, tt, it = _moments(warp, ids, tables, h, w, identity_start)
  rho = _rho(ii, tt, it)
  # One factorization for both right-hand sides; J^T e = lam * tmp_proj - img_proj.
  sol = jax.vmap(_spd_solve)(hess, jnp.stack([img_proj, tmp_proj], -1))
  img_proj_h, tmp_proj_h = sol[..., 0], sol[..., 1]
  lam_n = ii - jnp.sum(img_proj * img_proj_h, -1)
  lam_d = it - jnp.sum(tmp_proj * img_proj_h, -1)
  lam = lam_n / jnp.where(lam_d > 0, lam_d, 1.0)
  dp = lam[:, None] * tmp_proj_h - img_proj_h
  new = warp + jnp.concatenate([dp, jnp.zeros_like(dp[:, :1])], -1).reshape(-1, 3, 3)
  # Breakdown (OpenCV raises here): keep the current warp and stop.
  broke = (lam_d <= 0) | ~jnp.all(jnp.isfinite(new), (1, 2))
  return rho, jnp.where(broke[:, None, None], warp, new), broke


def _check_pair(moving, fixed, names=("moving", "fixed")):
  _validate.check_images(moving, names[0])
  _validate.check_images(fixed, names[1])
  if moving.shape != fixed.shape:
    raise ValueError(
      f"`{names[0]}` and `{names[1]}` must have the same shape; got "
      f"{moving.shape} and {fixed.shape}."
    )


def ecc_homography(
  moving: jax.Array,
  fixed: jax.Array,
  *,
  num_iterations: int = 50,
  eps: float = 1e-3,
  smooth: bool = True,
) -> EccResult:
  """Homography that aligns `moving` to `fixed` by maximizing the ECC.

  Evangelidis & Psarakis 2008: Gauss-Newton iterations on the enhanced
  correlation coefficient of the zero-mean images, with the photometric factor
  lambda of their eq. (29), as in OpenCV's `findTransformECC(fixed, moving, W,
  MOTION_HOMOGRAPHY, (COUNT | EPS, num_iterations, eps), None, 5)`: both images
  are pre-smoothed with a 5x5 Gaussian, the iteration stops per example when the
  correlation changes by less than `eps`. Where OpenCV raises (the correlation
  would be minimized, or NaN), this keeps the last good warp; where the result
  does not improve on the identity, it returns the identity and sets `fallback`.
  Runs under `jax.jit` and `jax.vmap`; the batch shares one `lax.while_loop`.

  Args:
    moving: float images [B, H, W, C] in [0, 1] to be aligned (e.g. adversarial).
    fixed: float images [B, H, W, C] in [0, 1], the template (e.g. original).
    num_iterations: maximal Gauss-Newton iterations (OpenCV's default 50).
    eps: stop when |rho_k - rho_{k-1}| < eps (OpenCV's default 1e-3).
    smooth: apply OpenCV's 5x5 Gaussian pre-smoothing.

  Returns:
    An `EccResult` (warp [B, 3, 3], correlation [B], identity_correlation [B],
    fallback [B], num_iterations [B]); `warp_homography(moving, warp)` is the
    aligned image.

  Raises:
    ValueError: for mismatched shapes, non-float or rank != 4 images, values
      outside [0, 1] (when concrete) or num_iterations < 1.
  """
  _check_pair(moving, fixed)
  _validate.check_positive_int(num_iterations, "num_iterations")
  return _ecc_batch(
    moving.astype(jnp.float32), fixed.astype(jnp.float32), num_iterations, float(eps), bool(smooth)
  )


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _ecc_batch(moving, fixed, num_iterations, eps, smooth):
  """`ecc_homography` unchecked."""
  # Jitted so that eager calls compile once per shape (a no-op inside jit).
  state = _ecc_iterate(moving, fixed, num_iterations, eps, smooth)
  return _finish(state, 0, moving.shape[0])


class _State(NamedTuple):
  """The iterations' outcome for a batch of B pairs, before `_finish` (only
  inside a trace: `size` is static)."""

  tables: _Tables
  warp: jax.Array  # [B, 3, 3]
  rho0: jax.Array  # [B] correlation at the identity
  iters: jax.Array  # [B] int32
  size: tuple  # (H, W)


def _finish(state: _State, start, chunk: int, moving=None, border: str = "constant"):
  """`EccResult` of the pairs start .. start + chunk (start may be traced).

  With `moving`, those pairs' images [chunk, H, W, C], also returns
  `warp_homography(moving, warp, border=border)` at the iterations' warp (the
  caller keeps `moving` where `fallback`). The correlation at the final warp and
  the aligned image share the bilinear taps.
  """
  h, w = state.size
  q = (h + 2) * (w + 2)
  warp = jax.lax.dynamic_slice_in_dim(state.warp, start, chunk)
  rho0 = jax.lax.dynamic_slice_in_dim(state.rho0, start, chunk)
  img = jax.lax.dynamic_slice_in_dim(state.tables.img, start * q, chunk * q)
  tmpl = jax.lax.dynamic_slice_in_dim(state.tables.tmpl, start, chunk)
  ids = jnp.arange(chunk, dtype=jnp.int32)
  idx, fr, fc, _, _, _, mask = _fusion.materialize(lambda wp: _geometry(wp, ids, h, w), warp)
  i, t = _zero_mean(_sampling.sample_bordered(img, idx, fr, fc, w), tmpl, mask)
  rho_final = _rho(*_inner(i, t))
  # Strict: a warp that only matches the identity's correlation is not kept.
  ok = jnp.all(jnp.isfinite(warp), (1, 2)) & (rho_final > rho0)
  res = EccResult(
    warp=jnp.where(ok[:, None, None], warp, jnp.eye(3, dtype=warp.dtype)),
    correlation=jnp.where(ok, rho_final, rho0),
    identity_correlation=rho0,
    fallback=~ok,
    num_iterations=jax.lax.dynamic_slice_in_dim(state.iters, start, chunk),
  )
  if moving is None:
    return res
  aligned = _warp_batch(moving, warp, border, (idx, fr, fc) if border == "constant" else None)
  return res, aligned


def _ecc_iterate(moving, fixed, num_iterations: int, eps: float, smooth: bool) -> _State:
  """The per-pair Gauss-Newton iterations of a batch (unchecked float32 images).

  Each step takes the whole batch; on CPU, chunks of `cpu_sizes.ECC_*` pairs."""
  mg = jax.vmap(_to_gray)(moving)
  fg = jax.vmap(_to_gray)(fixed)
  b, h, w = mg.shape
  tables = _tables(mg, fg, smooth)
  iterate = lambda step, first: (
    lambda t: _iterations(t, (b, h, w), num_iterations, eps, min(step, b), min(first, b))
  )
  warp, rho0, iters = _backends.on_cpu(
    iterate(cpu_sizes.ECC_STEP_CHUNK, cpu_sizes.ECC_FIRST_CHUNK), iterate(b, b), tables
  )
  return _State(tables, warp, rho0, iters, (h, w))


def _iterations(
  tables: _Tables, size, num_iterations: int, eps: float, step_chunk: int, first_chunk: int
):
  """`_ecc_iterate`'s loop, `step_chunk` pairs per Gauss-Newton step (`first_chunk`
  in the first sweep): (warp [B, 3, 3], rho0 [B], iters [B])."""
  b, h, w = size
  eye = jnp.eye(3, dtype=jnp.float32)
  init = dict(
    warp=jnp.broadcast_to(eye, (b, 3, 3)),
    rho_prev=jnp.full((b,), -10.0),
    rho0=jnp.full((b,), -1.0),
    iters=jnp.zeros((b,), jnp.int32),
    done=jnp.zeros((b,), bool),
  )

  # Each sweep steps every pair that has not stopped yet, `chunk` at a time:
  # the pairs still iterating are moved to the front, so the work follows the
  # number of iterations each pair needs (most stop after 2-4 of them).
  def sweep(carry, first=False):
    k, st = carry
    chunk = first_chunk if first else step_chunk
    order = jnp.argsort(st["done"], stable=True).astype(jnp.int32)
    order = jnp.concatenate([order, jnp.zeros((chunk,), jnp.int32)])
    active = jnp.sum(~st["done"]).astype(jnp.int32)

    def step(carry):
      j, st = carry
      if first:  # every pair, in order, at the identity (the last chunk overlaps)
        start = jnp.minimum(j * chunk, b - chunk)
        ids = start + jnp.arange(chunk, dtype=jnp.int32)
        # (State is read from `init`: the overlap may already be updated.)
        rho, new, broke = _gauss_newton(init["warp"][ids], ids, tables, h, w, start)
      else:
        ids = jax.lax.dynamic_slice(order, (j * chunk,), (chunk,))
        rho, new, broke = _gauss_newton(st["warp"][ids], ids, tables, h, w)
      old = init if first else st
      done = broke | (jnp.abs(rho - old["rho_prev"][ids]) < eps) | (k + 1 >= num_iterations)
      # Slots past the active pairs are computed but not written back.
      sid = ids if first else jnp.where(j * chunk + jnp.arange(chunk) < active, ids, b)
      put = lambda a, v: a.at[sid].set(v, mode="drop")
      st = dict(
        warp=put(st["warp"], new),
        rho_prev=put(st["rho_prev"], rho),
        rho0=put(st["rho0"], jnp.where(k == 0, rho, old["rho0"][ids])),
        iters=put(st["iters"], old["iters"][ids] + 1),
        done=put(st["done"], done),
      )
      return j + 1, st

    _, st = jax.lax.while_loop(lambda c: c[0] * chunk < active, step, (jnp.int32(0), st))
    return k + 1, st

  first = sweep((jnp.int32(0), init), first=True)
  _, st = jax.lax.while_loop(
    lambda c: (c[0] < num_iterations) & ~jnp.all(c[1]["done"]), sweep, first
  )
  return st["warp"], st["rho0"], st["iters"]
