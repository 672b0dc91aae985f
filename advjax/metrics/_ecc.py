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

from advjax import _validate

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


def _smooth(gray):
  """5x5 binomial Gaussian blur, reflect-101 border (OpenCV `GaussianBlur` default)."""
  k = jnp.asarray(_SMOOTH_KERNEL)
  p = jnp.pad(gray, 2, mode="reflect")
  h, w = gray.shape
  rows = sum(k[i] * p[:, i:i + w] for i in range(5))
  return sum(k[i] * rows[i:i + h, :] for i in range(5))


def _gradients(gray):
  """Central differences [-0.5, 0, 0.5], reflect-101 border (as OpenCV's ECC)."""
  p = jnp.pad(gray, 1, mode="reflect")
  gx = 0.5 * (p[1:-1, 2:] - p[1:-1, :-2])
  gy = 0.5 * (p[2:, 1:-1] - p[:-2, 1:-1])
  return gx, gy


def _grid(h, w):
  ys, xs = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32),
                       indexing="ij")
  return jnp.asarray(xs.ravel()), jnp.asarray(ys.ravel())


def _project(warp, xs, ys):
  """Maps grid points through `warp`; returns (xw, yw, den)."""
  den = warp[2, 0] * xs + warp[2, 1] * ys + warp[2, 2]
  den = jnp.where(jnp.abs(den) < 1e-6, jnp.where(den < 0, -1e-6, 1e-6), den)
  xw = (warp[0, 0] * xs + warp[0, 1] * ys + warp[0, 2]) / den
  yw = (warp[1, 0] * xs + warp[1, 1] * ys + warp[1, 2]) / den
  return xw, yw, den


def _quad_table(table):
  """[H, W, C] -> [(H + 2) * (W + 2), 4 C]: each pixel's 2x2 neighbourhood, zero border.

  Built once per image so that bilinear sampling is a single gather.
  """
  c = table.shape[-1]
  p = jnp.pad(table, ((1, 2), (1, 2), (0, 0)))
  quad = jnp.concatenate([p[:-1, :-1], p[:-1, 1:], p[1:, :-1], p[1:, 1:]], axis=-1)
  return quad.reshape(-1, 4 * c)


def _bilinear_quad(quad, shape, xw, yw, border: str):
  """Samples an image of `shape` (H, W, C), given as `_quad_table`, at (xw, yw) [N].

  border "constant": zero outside (OpenCV BORDER_CONSTANT); "edge": replicate.
  Returns [N, C].
  """
  h, w, c = shape
  xw = jnp.where(jnp.isfinite(xw), xw, -1.5)
  yw = jnp.where(jnp.isfinite(yw), yw, -1.5)
  if border == "edge":
    xw = jnp.clip(xw, 0.0, w - 1.0)
    yw = jnp.clip(yw, 0.0, h - 1.0)
  else:  # one pixel of zeros around the image is all bilinear weights can reach
    xw = jnp.clip(xw, -1.0, float(w))
    yw = jnp.clip(yw, -1.0, float(h))
  x0 = jnp.floor(xw)
  y0 = jnp.floor(yw)
  fx = (xw - x0)[:, None]
  fy = (yw - y0)[:, None]
  idx = (y0.astype(jnp.int32) + 1) * (w + 2) + x0.astype(jnp.int32) + 1
  q = quad[idx]
  tl, tr, bl, br = q[:, :c], q[:, c:2 * c], q[:, 2 * c:3 * c], q[:, 3 * c:]
  return (1 - fy) * ((1 - fx) * tl + fx * tr) + fy * ((1 - fx) * bl + fx * br)


def _bilinear(table, xw, yw, border: str):
  """Samples table [H, W, C] at points (xw, yw) [N]; returns [N, C]."""
  return _bilinear_quad(_quad_table(table), table.shape, xw, yw, border)


def _warp_one(image, warp, border: str):
  h, w, c = image.shape
  xs, ys = _grid(h, w)
  xw, yw, _ = _project(warp, xs, ys)
  return _bilinear(image, xw, yw, border).reshape(h, w, c)


def _check_warps(warps, batch):
  shape = jnp.shape(warps)
  if shape not in ((3, 3), (batch, 3, 3)):
    raise ValueError(f"`warps` must have shape [3, 3] or [batch={batch}, 3, 3]; "
                     f"got {tuple(shape)}.")


def warp_homography(images: jax.Array, warps: jax.Array, *,
                    border: str = "constant") -> jax.Array:
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
  out = jax.vmap(lambda im, wp: _warp_one(im, wp, border))(
      images.astype(jnp.float32), warps)
  return jnp.clip(out, 0.0, 1.0)


def _ecc_statistics(warp, tmpl, quad, xs, ys):
  """Zero-mean warped image, template and Jacobian at `warp`.

  quad is the `_quad_table` of [H, W, 3]: smoothed moving image and its x / y
  gradients.
  """
  h, w = tmpl.shape
  xw, yw, den = _project(warp, xs, ys)
  # The barrier materializes the gather once; XLA CPU would re-fuse it into
  # every consumer and recompute it per Jacobian column.
  sampled = jax.lax.optimization_barrier(
      _bilinear_quad(quad, (h, w, 3), xw, yw, "constant"))
  # Valid pixels: the nearest input pixel exists (OpenCV warps an all-ones mask
  # with INTER_NEAREST).
  xr, yr = jnp.round(xw), jnp.round(yw)
  mask = ((xr >= 0) & (xr <= w - 1) & (yr >= 0) & (yr <= h - 1)).astype(jnp.float32)
  count = jnp.maximum(jnp.sum(mask), 1.0)
  img = sampled[:, 0]
  t = tmpl.reshape(-1)
  img_zm = (img - jnp.sum(img * mask) / count) * mask
  tmp_zm = (t - jnp.sum(t * mask) / count) * mask
  gx = sampled[:, 1] * mask
  gy = sampled[:, 2] * mask
  # d(xw, yw)/dp for p = (h00, h01, h02, h10, h11, h12, h20, h21), OpenCV's order.
  inv = 1.0 / den
  g_dot = gx * xw + gy * yw
  jac = jnp.stack([gx * xs * inv, gx * ys * inv, gx * inv,
                   gy * xs * inv, gy * ys * inv, gy * inv,
                   -g_dot * xs * inv, -g_dot * ys * inv], axis=-1)
  return img_zm, tmp_zm, jac


def _rho(img_zm, tmp_zm):
  num = jnp.dot(img_zm, tmp_zm)
  den = jnp.sqrt(jnp.dot(img_zm, img_zm) * jnp.dot(tmp_zm, tmp_zm))
  rho = jnp.where(den > 1e-12, num / jnp.maximum(den, 1e-12), 0.0)
  return jnp.where(jnp.isfinite(rho), rho, -1.0), num


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
      off = a[r, c] - sum((low[r][k] * low[c][k] for k in range(c)),
                          jnp.zeros((), a.dtype))
      low[r][c] = off / d
  z = []
  for r in range(n):  # L z = rhs
    z.append((rhs[r] - sum((low[r][k] * z[k] for k in range(r)),
                           jnp.zeros_like(rhs[r]))) / low[r][r])
  x = [None] * n
  for r in reversed(range(n)):  # L^T x = z
    x[r] = (z[r] - sum((low[k][r] * x[k] for k in range(r + 1, n)),
                       jnp.zeros_like(rhs[r]))) / low[r][r]
  out = jnp.stack(x)
  return jnp.where(ok & jnp.all(jnp.isfinite(out)), out, 0.0)


def _ecc_one(moving, fixed, num_iterations: int, eps: float, smooth: bool):
  """ECC for one pair of gray images [H, W]."""
  h, w = fixed.shape
  xs, ys = _grid(h, w)
  tmpl = _smooth(fixed) if smooth else fixed
  img = _smooth(moving) if smooth else moving
  gx, gy = _gradients(img)
  # Loop-invariant: built once, not per iteration.
  quad = _quad_table(jnp.stack([img, gx, gy], axis=-1))
  eye = jnp.eye(3, dtype=jnp.float32)

  def cond(state):
    i, _, _, _, done = state[:5]
    return (i < num_iterations) & ~done

  def body(state):
    i, warp, rho_prev, rho0, _ = state
    img_zm, tmp_zm, jac = _ecc_statistics(warp, tmpl, quad, xs, ys)
    rho, corr = _rho(img_zm, tmp_zm)
    hess = jac.T @ jac
    img_proj = jac.T @ img_zm
    tmp_proj = jac.T @ tmp_zm
    # One factorization for both right-hand sides; J^T e = lam * tmp_proj - img_proj.
    sol = _spd_solve(hess, jnp.stack([img_proj, tmp_proj], axis=-1))
    img_proj_h, tmp_proj_h = sol[:, 0], sol[:, 1]
    lam_n = jnp.dot(img_zm, img_zm) - jnp.dot(img_proj, img_proj_h)
    lam_d = corr - jnp.dot(tmp_proj, img_proj_h)
    lam = lam_n / jnp.where(lam_d > 0, lam_d, 1.0)
    dp = lam * tmp_proj_h - img_proj_h
    new = warp + jnp.concatenate([dp, jnp.zeros((1,), dp.dtype)]).reshape(3, 3)
    # Breakdown (OpenCV raises here): keep the current warp and stop.
    broke = (lam_d <= 0) | ~jnp.all(jnp.isfinite(new))
    rho0 = jnp.where(i == 0, rho, rho0)
    done = broke | (jnp.abs(rho - rho_prev) < eps)
    return (i + 1, jnp.where(broke, warp, new), rho, rho0, done)

  init = (jnp.int32(0), eye, jnp.float32(-10.0), jnp.float32(-1.0), jnp.bool_(False))
  iters, warp, _, rho0, _ = jax.lax.while_loop(cond, body, init)
  rho_final, _ = _rho(*_ecc_statistics(warp, tmpl, quad, xs, ys)[:2])
  # Strict: a warp that only matches the identity's correlation is not kept.
  ok = jnp.all(jnp.isfinite(warp)) & (rho_final > rho0)
  return EccResult(warp=jnp.where(ok, warp, eye),
                   correlation=jnp.where(ok, rho_final, rho0),
                   identity_correlation=rho0,
                   fallback=~ok,
                   num_iterations=iters)


def _check_pair(moving, fixed, names=("moving", "fixed")):
  _validate.check_images(moving, names[0])
  _validate.check_images(fixed, names[1])
  if moving.shape != fixed.shape:
    raise ValueError(f"`{names[0]}` and `{names[1]}` must have the same shape; got "
                     f"{moving.shape} and {fixed.shape}.")


def ecc_homography(moving: jax.Array, fixed: jax.Array, *, num_iterations: int = 50,
                   eps: float = 1e-3, smooth: bool = True) -> EccResult:
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
  return _ecc_batch(moving.astype(jnp.float32), fixed.astype(jnp.float32),
                    num_iterations, float(eps), bool(smooth))


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _ecc_batch(moving, fixed, num_iterations, eps, smooth):
  # Jitted so that eager calls compile once per shape (a no-op inside jit).
  mg = jax.vmap(_to_gray)(moving)
  fg = jax.vmap(_to_gray)(fixed)
  one = jax.vmap(lambda m, f: _ecc_one(m, f, num_iterations, eps, smooth))
  b = mg.shape[0]
  if b <= _CHUNK:
    return one(mg, fg)
  # Chunks of the batch iterate independently: each stops with its own slowest
  # pair instead of the whole batch waiting for the slowest one.
  nc = -(-b // _CHUNK)
  pad = nc * _CHUNK - b
  mg = jnp.concatenate([mg, jnp.repeat(mg[-1:], pad, 0)]) if pad else mg
  fg = jnp.concatenate([fg, jnp.repeat(fg[-1:], pad, 0)]) if pad else fg
  shape = lambda a: a.reshape((nc, _CHUNK) + a.shape[1:])
  out = jax.lax.map(lambda mf: one(*mf), (shape(mg), shape(fg)))
  return jax.tree_util.tree_map(lambda a: a.reshape((nc * _CHUNK,) + a.shape[2:])[:b], out)


_CHUNK = 16
