"""Low-level image operations shared by the augmentations and corruptions.

All functions take one float image `[H, W, C]` with values in [0, 1] and are
pure JAX (they jit and vmap). Where an operation mirrors a PIL one, the PIL
convention is kept (pixel centres at `i + 0.5`, ITU-R 601 luma weights) so that
results can be compared with the NumPy/PIL references.
"""

import jax
import jax.numpy as jnp
import numpy as np

from advjax import _sampling

# PIL's "L" conversion: L = (19595 R + 38470 G + 7471 B) / 65536 (ITU-R 601-2).
# Not dm_pix.rgb_to_grayscale: its rec601 weights (0.2989, 0.587, 0.114) sum to
# 0.9999, so white becomes 0.9999 and ImageEnhance's fixed points (a grey image
# under Color) move; these are PIL's, which the AugMix references use.
_LUMA = np.array([19595.0, 38470.0, 7471.0], np.float32) / 65536.0


def grayscale(image: jax.Array) -> jax.Array:
  """Luma `[H, W, 1]` of an RGB image (ITU-R 601-2), or the image itself if C == 1.

  Images with another number of channels use the mean over channels.
  """
  c = image.shape[-1]
  if c == 1:
    return image
  if c == 3:
    return jnp.sum(image * jnp.asarray(_LUMA, image.dtype), axis=-1, keepdims=True)
  return jnp.mean(image, axis=-1, keepdims=True)


def blend(degenerate: jax.Array, image: jax.Array, factor) -> jax.Array:
  """PIL's `Image.blend(degenerate, image, factor)`, clipped to [0, 1]."""
  return jnp.clip(degenerate + factor * (image - degenerate), 0.0, 1.0)


def to_levels(image: jax.Array) -> jax.Array:
  """Integer grey levels 0..255 (int32) of a [0, 1] image, rounded."""
  return jnp.clip(jnp.round(image * 255.0), 0, 255).astype(jnp.int32)


def affine_transform(image: jax.Array, matrix, *, fill: float = 0.0) -> jax.Array:
  """PIL's `Image.transform(size, AFFINE, matrix, resample=BILINEAR)`.

  The output pixel with centre (x, y) = (col + .5, row + .5) takes the input at
  (a x + b y + c, d x + e y + f); points outside the image get `fill`.

  Args:
    image: [H, W, C].
    matrix: (a, b, c, d, e, f), scalars or traced values (output -> input map).
    fill: value outside the image.

  Returns:
    [H, W, C] warped image.
  """
  h, w = image.shape[0], image.shape[1]
  a, b, c, d, e, f = matrix
  ys, xs = jnp.meshgrid(
    jnp.arange(h, dtype=jnp.float32) + 0.5, jnp.arange(w, dtype=jnp.float32) + 0.5, indexing="ij"
  )
  xin = a * xs + b * ys + c
  yin = d * xs + e * ys + f
  inside = (xin >= 0) & (xin < w) & (yin >= 0) & (yin < h)
  out = _sampling.bilinear_sample(image, yin - 0.5, xin - 0.5, border="edge")
  return jnp.where(inside[..., None], out, jnp.asarray(fill, image.dtype))


def rotation_matrix(degrees, height: int, width: int):
  """The output -> input affine matrix of PIL's `Image.rotate(degrees)`.

  Counter-clockwise rotation about the image centre (w / 2, h / 2).
  """
  angle = -jnp.deg2rad(degrees)
  cos, sin = jnp.cos(angle), jnp.sin(angle)
  cx, cy = width / 2.0, height / 2.0
  # Matrix [cos, sin, 0, -sin, cos, 0] applied to (-cx, -cy), then + centre.
  c = cos * (-cx) + sin * (-cy) + cx
  f = -sin * (-cx) + cos * (-cy) + cy
  return (cos, sin, c, -sin, cos, f)


def filter2d(image: jax.Array, kernel, *, mode: str = "reflect") -> jax.Array:
  """Correlates each channel with a 2-D kernel (same size output).

  Args:
    image: [H, W, C].
    kernel: [kh, kw] (odd sizes), a concrete or traced array.
    mode: border handling passed to `jnp.pad` ("reflect" is OpenCV's default
      BORDER_REFLECT_101; "symmetric", "edge", "constant" also work).

  Returns:
    [H, W, C].
  """
  kernel = jnp.asarray(kernel, image.dtype)
  kh, kw = kernel.shape
  ph, pw = kh // 2, kw // 2
  x = jnp.pad(image, ((ph, ph), (pw, pw), (0, 0)), mode=mode)
  x = jnp.moveaxis(x, -1, 0)[:, None]  # [C, 1, H, W]
  out = jax.lax.conv_general_dilated(
    x, kernel[None, None], (1, 1), "VALID", precision=jax.lax.Precision.HIGHEST
  )
  return jnp.moveaxis(out[:, 0], 0, -1)


def gaussian_kernel1d(sigma: float, truncate: float = 4.0) -> np.ndarray:
  """Normalized 1-D Gaussian taps (scipy.ndimage's radius = int(truncate*sigma+.5))."""
  radius = max(int(truncate * float(sigma) + 0.5), 1)
  t = np.arange(-radius, radius + 1, dtype=np.float64)
  k = np.exp(-0.5 * (t / float(sigma)) ** 2)
  return (k / k.sum()).astype(np.float32)


def gaussian_blur(
  image: jax.Array, sigma, *, mode: str = "nearest", truncate: float = 4.0
) -> jax.Array:
  """Separable Gaussian blur of each channel, as `skimage.filters.gaussian`.

  Args:
    image: [H, W, C].
    sigma: standard deviation in pixels, a Python number or (sigma_rows, sigma_cols).
    mode: scipy.ndimage border mode: "nearest" (skimage's default), "reflect"
      (scipy's half-sample symmetric) or "mirror".
    truncate: kernel radius in standard deviations.
  """
  sy, sx = (sigma, sigma) if np.isscalar(sigma) else tuple(sigma)
  pad_mode = {
    "nearest": "edge",
    "reflect": "symmetric",
    "mirror": "reflect",
    "constant": "constant",
  }[mode]

  def blur(x, s, axis):
    k = gaussian_kernel1d(s, truncate)
    r = len(k) // 2
    widths = [(0, 0)] * x.ndim
    widths[axis] = (r, r)
    # jnp.pad cannot reflect by more than the size; tile with edge values then.
    m = "edge" if pad_mode in ("symmetric", "reflect") and r >= x.shape[axis] else pad_mode
    x = jnp.pad(x, widths, mode=m)
    return filter_valid(x, k[:, None] if axis == 0 else k[None, :])

  return blur(blur(image, sy, 0), sx, 1)


def filter_valid(image: jax.Array, kernel) -> jax.Array:
  """'VALID' correlation of each channel of [H, W, C] with a [kh, kw] kernel."""
  kernel = jnp.asarray(kernel, image.dtype)
  x = jnp.moveaxis(image, -1, 0)[:, None]
  out = jax.lax.conv_general_dilated(
    x, kernel[None, None], (1, 1), "VALID", precision=jax.lax.Precision.HIGHEST
  )
  return jnp.moveaxis(out[:, 0], 0, -1)


def resize_bilinear_zoom(image: jax.Array, zoom: float) -> jax.Array:
  """`imagecorruptions.clipped_zoom`: crop the centre 1/zoom and enlarge by `zoom`.

  The enlargement follows `scipy.ndimage.zoom(order=1, grid_mode=False)`: output
  index i samples input index i * (n_in - 1) / (n_out - 1); the result is
  cropped to the top-left [H, W] as imagecorruptions does.
  """
  h, w = image.shape[0], image.shape[1]
  ch0 = int(np.ceil(h / float(zoom)))
  ch1 = int(np.ceil(w / float(zoom)))
  top0, top1 = (h - ch0) // 2, (w - ch1) // 2
  crop = image[top0 : top0 + ch0, top1 : top1 + ch1]
  out0, out1 = int(round(ch0 * zoom)), int(round(ch1 * zoom))
  rows = np.arange(h) * ((ch0 - 1) / max(out0 - 1, 1))
  cols = np.arange(w) * ((ch1 - 1) / max(out1 - 1, 1))
  rr, cc = np.meshgrid(rows, cols, indexing="ij")
  return _sampling.bilinear_sample(
    crop, jnp.asarray(rr, jnp.float32), jnp.asarray(cc, jnp.float32), border="edge"
  )
