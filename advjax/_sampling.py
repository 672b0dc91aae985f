"""Bilinear sampling: the one implementation the augmentations, corruptions and ECC share.

Pixel i has its centre at index i. The value at fractional (row, col) is
`interpolate` of the four taps around it,

  ((1 - fc) x[r0, c0] + fc x[r0, c0 + 1]) (1 - fr)
    + ((1 - fc) x[r0 + 1, c0] + fc x[r0 + 1, c0 + 1]) fr

with r0 = floor(row), fr = row - r0 (c0, fc likewise), and taps outside the
image given by the border mode (`jnp.pad`'s names):

  "constant"   zeros (OpenCV's BORDER_CONSTANT, scipy's "grid-constant")
  "edge"       the nearest edge pixel (OpenCV's BORDER_REPLICATE, scipy's "nearest")
  "symmetric"  half-sample symmetric, d c b a | a b c d (scipy's "reflect")
  "reflect"    whole-sample symmetric, d c b | a b c d (OpenCV's BORDER_REFLECT_101,
               scipy's "mirror")

It comes in two forms of one computation:

- `bilinear_sample(image, rows, cols, border=...)`: one image [H, W, C], any
  border mode, any coordinates. The affine warps of AugMix and the corruptions'
  zoom and elastic warps use it.
- The bordered-table form, for many images sampled at many points and several
  tables read at the same points (ECC's Gauss-Newton steps sample the image and
  its gradient at every iteration): `bordered_table` lays images [B, H, W] out
  flat with a one-pixel border, `bordered_taps` clips the coordinates onto the
  region that border covers ("constant" and "edge" only) and returns one flat
  index per point, and `sample_bordered` reads the four taps at fixed offsets
  from it. Four scalar gathers of a flat table are cheaper on XLA:CPU than
  gathers of [..., C] rows, and the taps are computed once for all the tables.
  It equals `bilinear_sample` to float rounding, bit for bit inside the image
  (tests/test_augment_sampling.py): with "edge", a point beyond the last pixel
  centre reads that pixel with weight 1 instead of twice with weights summing to 1.
"""

import jax
import jax.numpy as jnp
import numpy as np

BORDERS = ("constant", "edge", "symmetric", "reflect")


def interpolate(t00, t01, t10, t11, fr, fc):
  """The bilinear combination of the taps at (r0, c0), (r0, c0 + 1), (r0 + 1, c0),
  (r0 + 1, c0 + 1) with fractional offsets fr, fc in [0, 1]."""
  return (t00 * (1 - fc) + t01 * fc) * (1 - fr) + (t10 * (1 - fc) + t11 * fc) * fr


def fold_index(i, n: int, border: str):
  """Integer indices `i` folded into 0 .. n - 1 by `border` ("constant" clamps:
  the caller zeroes the taps outside)."""
  if border in ("constant", "edge"):
    return jnp.clip(i, 0, n - 1)
  if border == "symmetric":
    period = 2 * n
    i = jnp.mod(i, period)
    return jnp.where(i >= n, period - 1 - i, i)
  if border == "reflect":
    if n == 1:
      return jnp.zeros_like(i)
    period = 2 * n - 2
    i = jnp.mod(i, period)
    return jnp.where(i >= n, period - i, i)
  raise ValueError(f"`border` must be one of {list(BORDERS)}; got {border!r}.")


def bilinear_sample(
  image: jax.Array, rows: jax.Array, cols: jax.Array, *, border: str = "edge"
) -> jax.Array:
  """Bilinear interpolation of one image at fractional pixel indices.

  Args:
    image: [H, W, C].
    rows, cols: [...] fractional indices (pixel i has its centre at index i).
    border: "constant", "edge", "symmetric" or "reflect" (see the module docstring).

  Returns:
    [..., C] interpolated values.
  """
  h, w = image.shape[0], image.shape[1]
  r0, c0 = jnp.floor(rows), jnp.floor(cols)
  fr, fc = (rows - r0)[..., None], (cols - c0)[..., None]
  r0, c0 = r0.astype(jnp.int32), c0.astype(jnp.int32)
  ra, rb = fold_index(r0, h, border), fold_index(r0 + 1, h, border)
  ca, cb = fold_index(c0, w, border), fold_index(c0 + 1, w, border)
  if border == "constant":
    inside = lambda r, c, n, m: ((r >= 0) & (r < n))[..., None] & ((c >= 0) & (c < m))[..., None]
    tap = lambda r, c, ri, ci: jnp.where(inside(ri, ci, h, w), image[r, c], 0)
    return interpolate(
      tap(ra, ca, r0, c0),
      tap(ra, cb, r0, c0 + 1),
      tap(rb, ca, r0 + 1, c0),
      tap(rb, cb, r0 + 1, c0 + 1),
      fr,
      fc,
    )
  return interpolate(image[ra, ca], image[ra, cb], image[rb, ca], image[rb, cb], fr, fc)


def bordered_table(images: jax.Array, border: str = "constant") -> jax.Array:
  """[B, H, W] -> [B * (H + 2) * (W + 2)]: each image with a one-pixel border (zeros
  for "constant", its edge for "edge"), flattened: the layout `sample_bordered` reads.

  Any table with this layout works (ECC builds its own, smoothed, with a zero border).
  """
  mode = {"constant": "constant", "edge": "edge"}[border]
  return jnp.pad(images, ((0, 0), (1, 1), (1, 1)), mode=mode).reshape(-1)


def bordered_taps(
  rows: jax.Array,
  cols: jax.Array,
  ids: jax.Array,
  height: int,
  width: int,
  border: str = "constant",
):
  """Where `sample_bordered` reads: image `ids[k]` of a `bordered_table` at rows[k], cols[k].

  Coordinates are clipped onto the region the one-pixel border covers
  ([-1, H] x [-1, W] for "constant", where bilinear weights reach nothing but
  zeros beyond; the image itself for "edge"); non-finite ones land on the border.

  Args:
    rows, cols: [K, P] fractional indices.
    ids: [K] integer image indices into the table.
    height, width: the images' size (static).
    border: "constant" or "edge".

  Returns:
    (idx, fr, fc): uint32 flat indices [K, P] of the top-left taps and the
    fractional offsets [K, P].
  """
  h, w = height, width
  lo, hr, hc = (-1.0, h, w) if border == "constant" else (0.0, h - 1.0, w - 1.0)
  rc = jnp.clip(jnp.where(jnp.isfinite(rows), rows, lo), lo, hr)  # NaN too
  cc = jnp.clip(jnp.where(jnp.isfinite(cols), cols, lo), lo, hc)
  # At col == W the top-left tap is W - 1 with weight 0 (the right tap exists).
  r0, c0 = jnp.minimum(jnp.floor(rc), h - 1.0), jnp.minimum(jnp.floor(cc), w - 1.0)
  idx = ((r0 + 1) * (w + 2) + c0 + 1).astype(jnp.uint32)
  idx = idx + (ids.astype(jnp.uint32) * np.uint32((h + 2) * (w + 2)))[:, None]
  return idx, rc - r0, cc - c0


def sample_bordered(
  table: jax.Array, idx: jax.Array, fr: jax.Array, fc: jax.Array, width: int
) -> jax.Array:
  """`bilinear_sample` of a `bordered_table` (any dtype, complex too) at the taps of
  `bordered_taps`: four scalar gathers (cheap on XLA:CPU, unlike one gather of a
  [..., C] row)."""
  tap = lambda o: table.at[idx + np.uint32(o)].get(mode="promise_in_bounds")
  return interpolate(tap(0), tap(1), tap(width + 2), tap(width + 3), fr, fc)
