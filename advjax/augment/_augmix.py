"""AugMix (Hendrycks et al. 2020) with every operation in JAX.

Reference: D. Hendrycks, N. Mu, E. D. Cubuk, B. Zoph, J. Gilmer, B.
Lakshminarayanan, "AugMix: A Simple Data Processing Method to Improve Robustness
and Uncertainty", ICLR 2020, https://arxiv.org/abs/1912.02781, code
https://github.com/google-research/augmix (`augmentations.py`, `augment_and_mix`).

Each operation below is the JAX counterpart of the PIL call the reference makes
(ImageOps.autocontrast/equalize/posterize/solarize, Image.rotate/transform with
bilinear resampling, ImageEnhance.Color/Contrast/Brightness/Sharpness) and keeps
PIL's conventions. Differences: values stay float (no uint8 rounding between
operations), so results agree with PIL to about one grey level (see
tests/test_augment.py for the stated tolerance). The magnitude sampling of the
reference is kept: `level ~ U(0.1, severity)`, integer parameters truncated,
random sign for rotate/shear/translate; translations are up to width/3 (the
reference hard-codes 32/3 for CIFAR).

All functions expect one image `[H, W, C]` with values in [0, 1]; batch with
`jax.vmap` over split keys.
"""

import functools

import jax
from jax import custom_batching
import jax.numpy as jnp
import numpy as np

from advjax import _fusion
from advjax import _validate
from advjax.augment import _ops


# --------------------------------------------------------------------------- #
# Deterministic operations (explicit parameters), PIL semantics
# --------------------------------------------------------------------------- #
def autocontrast(image: jax.Array) -> jax.Array:
  """ImageOps.autocontrast (cutoff 0): per channel, stretch [min, max] to [0, 1].

  Also takes a batch [..., H, W, C].
  """
  h, w, c = image.shape[-3:]

  # Rows, then columns: XLA:CPU reduces [H, W * C] much faster than (H, W) of [H, W, C].
  def extreme(fn):
    cols = fn(image.reshape(image.shape[:-3] + (h, w * c)), axis=-2)
    return fn(cols.reshape(cols.shape[:-1] + (w, c)), axis=-2)[..., None, None, :]

  lo, hi = extreme(jnp.min), extreme(jnp.max)
  span = hi - lo
  stretched = (image - lo) / jnp.where(span > 0, span, 1.0)
  return jnp.where(span > 0, jnp.clip(stretched, 0.0, 1.0), image)


def _equalize_table(pixels: int, dtype, hist):
  """ImageOps.equalize's lookup table [R * 256] in [0, 1] (`dtype`) from R
  histograms [R, 256] of `pixels` pixels each."""
  r = hist.shape[0]
  # Pixels strictly below each level, as two small exact matmuls over 16 x 16
  # levels: XLA:CPU fuses a cumsum into the per-pixel lookup and redoes it per pixel.
  below = jnp.asarray(np.triu(np.ones((16, 16), np.float32), 1))
  hist16 = hist.reshape(r, 16, 16)
  highest = jax.lax.Precision.HIGHEST
  cum = (
    jnp.dot(hist16, below, precision=highest)
    + jnp.dot(jnp.sum(hist16, axis=2), below, precision=highest)[:, :, None]
  )
  cum = cum.reshape(r, 256).astype(jnp.int32)
  nonzero = hist > 0
  last = jnp.max(jnp.where(nonzero, jnp.arange(256), -1), axis=1)
  hist_last = jnp.max(jnp.where(jnp.arange(256) == last[:, None], hist, 0.0), axis=1)
  step = (pixels - hist_last.astype(jnp.int32)) // 255
  safe_step = jnp.maximum(step, 1)[:, None]
  lut = jnp.minimum(jax.lax.div(safe_step // 2 + cum, safe_step), 255)
  keep = (jnp.sum(nonzero, axis=1) <= 1) | (step == 0)
  return (jnp.where(keep[:, None], jnp.arange(256), lut).astype(dtype) / 255.0).reshape(-1)


def _equalize_batch(images: jax.Array) -> jax.Array:
  """ImageOps.equalize of each channel of each image of [K, H, W, C]."""
  k, h, w, c = images.shape
  levels = _ops.to_levels(images)
  # One histogram per (image, channel), all in one scatter.
  bins = (jnp.arange(k)[:, None, None, None] * c + jnp.arange(c)) * 256 + levels
  r = k * c
  hist = (
    jnp.zeros(r * 256, jnp.float32)
    .at[bins.reshape(-1)]
    .add(1.0, mode="promise_in_bounds")
    .reshape(r, 256)
  )
  # Materialized: XLA:CPU would fuse the table's computation (a cumsum, an integer
  # division) into the per-pixel lookup and redo it for every pixel.
  lut = _fusion.materialize(functools.partial(_equalize_table, h * w, images.dtype), hist)
  return lut.reshape(-1)[bins]


def equalize(image: jax.Array) -> jax.Array:
  """ImageOps.equalize: per-channel histogram equalization on 256 grey levels."""
  return _equalize_batch(image[None])[0]


def posterize(image: jax.Array, bits) -> jax.Array:
  """ImageOps.posterize: keep the `bits` most significant bits of each level."""
  levels = _ops.to_levels(image)
  shift = 8 - jnp.asarray(bits, jnp.int32)
  out = jnp.right_shift(levels, shift) << shift
  return out.astype(image.dtype) / 255.0


def solarize(image: jax.Array, threshold) -> jax.Array:
  """ImageOps.solarize: invert levels >= threshold (threshold in 0..256 grey levels)."""
  # Compared on grey levels so that `threshold` means the same as in PIL.
  return jnp.where(_ops.to_levels(image) < jnp.asarray(threshold), image, 1.0 - image)


def rotate(image: jax.Array, degrees) -> jax.Array:
  """Image.rotate(degrees, resample=BILINEAR): counter-clockwise, zero fill."""
  h, w = image.shape[0], image.shape[1]
  return _ops.affine_transform(image, _ops.rotation_matrix(degrees, h, w))


def shear_x(image: jax.Array, level) -> jax.Array:
  """Image.transform(AFFINE, (1, level, 0, 0, 1, 0), BILINEAR)."""
  return _ops.affine_transform(image, (1.0, level, 0.0, 0.0, 1.0, 0.0))


def shear_y(image: jax.Array, level) -> jax.Array:
  """Image.transform(AFFINE, (1, 0, 0, level, 1, 0), BILINEAR)."""
  return _ops.affine_transform(image, (1.0, 0.0, 0.0, level, 1.0, 0.0))


def translate_x(image: jax.Array, pixels) -> jax.Array:
  """Image.transform(AFFINE, (1, 0, pixels, 0, 1, 0)): content moves left."""
  return _ops.affine_transform(image, (1.0, 0.0, pixels, 0.0, 1.0, 0.0))


def translate_y(image: jax.Array, pixels) -> jax.Array:
  """Image.transform(AFFINE, (1, 0, 0, 0, 1, pixels)): content moves up."""
  return _ops.affine_transform(image, (1.0, 0.0, 0.0, 0.0, 1.0, pixels))


def color(image: jax.Array, factor) -> jax.Array:
  """ImageEnhance.Color: blend with the greyscale image (factor 0: grey, 1: same)."""
  return _ops.blend(jnp.broadcast_to(_ops.grayscale(image), image.shape), image, factor)


def contrast(image: jax.Array, factor) -> jax.Array:
  """ImageEnhance.Contrast: blend with the mean grey level of the image."""
  mean = jnp.mean(_ops.grayscale(image))
  return _ops.blend(jnp.full_like(image, mean), image, factor)


def brightness(image: jax.Array, factor) -> jax.Array:
  """ImageEnhance.Brightness: blend with black."""
  return _ops.blend(jnp.zeros_like(image), image, factor)


def sharpness(image: jax.Array, factor) -> jax.Array:
  """ImageEnhance.Sharpness: blend with ImageFilter.SMOOTH (border pixels kept)."""
  kernel = jnp.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], image.dtype) / 13.0
  smooth = _ops.filter_valid(image, kernel)
  degenerate = image.at[1:-1, 1:-1].set(smooth)
  return _ops.blend(degenerate, image, factor)


# --------------------------------------------------------------------------- #
# Random operations with the reference's magnitude sampling
# --------------------------------------------------------------------------- #
def _sample_level(key, severity):
  return jax.random.uniform(key, (), jnp.float32, 0.1, severity)


def _int_parameter(level, maxval):
  return jnp.floor(level * maxval / 10.0)


def _float_parameter(level, maxval):
  return level * maxval / 10.0


def _random_sign(key, value):
  return jnp.where(jax.random.uniform(key) > 0.5, -value, value)


# How each operation applies its drawn (value, affine matrix); see `_op_parameters`.
_APPLY = {
  "autocontrast": lambda im, v, mt: autocontrast(im),
  "equalize": lambda im, v, mt: equalize(im),
  "posterize": lambda im, v, mt: posterize(im, v.astype(jnp.int32)),
  "solarize": lambda im, v, mt: solarize(im, v.astype(jnp.int32)),
  "color": lambda im, v, mt: color(im, v),
  "contrast": lambda im, v, mt: contrast(im, v),
  "brightness": lambda im, v, mt: brightness(im, v),
  "sharpness": lambda im, v, mt: sharpness(im, v),
}
_GEOMETRIC = ("rotate", "shear_x", "shear_y", "translate_x", "translate_y")
_APPLY.update({n: lambda im, v, mt: _ops.affine_transform(im, tuple(mt)) for n in _GEOMETRIC})


def _random_op(name):
  """AugMix operation `name` with the reference's random magnitude (drawn by
  `_op_parameters`, the one place the magnitudes are sampled)."""

  def op(key, image, severity):
    value, matrix = _op_parameters(key, [name], severity, image.shape[0], image.shape[1])
    return _APPLY[name](image, value[0], matrix[0])

  return op


AUGMENTATIONS = {
  n: _random_op(n)
  for n in (
    "autocontrast",
    "equalize",
    "posterize",
    "rotate",
    "solarize",
    "shear_x",
    "shear_y",
    "translate_x",
    "translate_y",
  )
}
AUGMENTATIONS_ALL = dict(
  AUGMENTATIONS, **{n: _random_op(n) for n in ("color", "contrast", "brightness", "sharpness")}
)


def augmix_op_names(all_ops: bool = False):
  """Names of the operations AugMix samples from (in `lax.switch` order)."""
  return list((AUGMENTATIONS_ALL if all_ops else AUGMENTATIONS).keys())


def augmix_op(key: jax.Array, image: jax.Array, *, name: str, severity: float = 3.0) -> jax.Array:
  """Applies one AugMix operation with a random magnitude, as in the reference.

  Args:
    key: a JAX RNG key.
    image: [H, W, C] float image in [0, 1].
    name: one of `augmix_op_names(all_ops=True)`.
    severity: magnitude bound (level ~ U(0.1, severity), on the reference's 0-10 scale).

  Returns:
    [H, W, C] image in [0, 1].

  Raises:
    ValueError: for an unknown name or an image that is not rank 3.
  """
  _validate.check_images(image, "image", rank=3)
  _validate.check_choice(name, "AugMix operation", list(AUGMENTATIONS_ALL))
  return AUGMENTATIONS_ALL[name](key, image, severity)


def augmix(
  key: jax.Array,
  image: jax.Array,
  *,
  severity: float = 3.0,
  width: int = 3,
  depth: int = -1,
  alpha: float = 1.0,
  all_ops: bool = False,
) -> jax.Array:
  """AugMix of one image (Hendrycks et al. 2020, Algorithm 1).

  `width` chains of `depth` random operations (depth uniform in {1, 2, 3} when
  `depth <= 0`) are mixed with Dirichlet(alpha) weights, and the mixture is
  combined with the original with m ~ Beta(alpha, alpha):
  `(1 - m) * image + m * sum_i w_i chain_i(image)`. The operation of each step
  is chosen per example; the function jits and vmaps.

  Args:
    key: a JAX RNG key.
    image: [H, W, C] float image in [0, 1] (C = 1 or 3).
    severity: operation magnitude (1-10 scale of the reference; default 3).
    width: number of augmentation chains (static).
    depth: operations per chain; <= 0 draws it from {1, 2, 3} per chain.
    alpha: Dirichlet and Beta concentration.
    all_ops: also sample color, contrast, brightness and sharpness (these overlap
      with the ImageNet-C / CIFAR-10-C corruptions, hence off by default).

  Returns:
    [H, W, C] augmented image in [0, 1], same dtype. Under `jax.vmap` a custom
    batching rule runs the whole batch at once, each image through only its
    chosen operations (see `_augmix_fn`); AugMix is a data transform and is not
    differentiated (`custom_vmap` functions do not support reverse-mode autodiff).

  Raises:
    ValueError: if `image` is not a rank-3 float image in [0, 1], `width` is
      not a positive integer, or `severity` / `alpha` are traced.

  Example:
    >>> keys = jax.random.split(jax.random.key(0), images.shape[0])
    >>> augmented = jax.jit(jax.vmap(augmix))(keys, images)  # doctest: +SKIP
  """
  _validate.check_images(image, "image", rank=3)
  _validate.check_positive_int(width, "width")
  if not isinstance(depth, int):
    raise ValueError(f"`depth` must be an integer (<= 0 for random 1-3); got {depth!r}.")
  if isinstance(severity, jax.Array) or isinstance(alpha, jax.Array):
    raise ValueError("`severity` and `alpha` must be Python numbers (they are static).")
  if not 0 < severity <= 10:
    raise ValueError(f"`severity` must be in (0, 10] (the reference's scale); got {severity}.")
  if not alpha > 0:
    raise ValueError(f"`alpha` must be > 0; got {alpha}.")
  fn = _augmix_fn(float(severity), int(width), int(depth), float(alpha), bool(all_ops))
  return fn(key, image)


# --------------------------------------------------------------------------- #
# Batched implementation: the examples are grouped by operation
# --------------------------------------------------------------------------- #
# Operations that share one batched kernel. Under `vmap`, `lax.switch` with a
# batched index would evaluate every operation for every example; instead each
# step of the chains sorts the (example, chain) pairs by kernel and runs every
# kernel only on the images that chose it, `_CHUNK` images at a time.
_KERNEL_OF = {
  "rotate": 0,
  "shear_x": 0,
  "shear_y": 0,
  "translate_x": 0,
  "translate_y": 0,
  "autocontrast": 1,
  "posterize": 1,
  "solarize": 1,
  "color": 1,
  "contrast": 1,
  "brightness": 1,
  "equalize": 2,
  "sharpness": 3,
}
_CHUNK = 32


def _draws(key, n_ops, alpha, width, depth):
  """The random draws of one example (`_augmix_batch`'s, and its per-example reference
  in tests/test_augment.py).

  Returns the chain weights [width], the mixing weight m, and per chain and step
  [width, max_depth] the operation index (n_ops, the identity, beyond the
  chain's depth) and the key the operation draws its magnitude from.
  """
  max_depth = depth if depth > 0 else 3
  k_w, k_m, k_chains = jax.random.split(key, 3)
  weights = jax.random.dirichlet(k_w, jnp.full((width,), alpha, jnp.float32))
  m = jax.random.beta(k_m, alpha, alpha)

  def chain(k):
    k_d, k_ops = jax.random.split(k)
    d = jax.random.randint(k_d, (), 1, 4) if depth <= 0 else depth

    def step(i, k_step):
      k_idx, k_op = jax.random.split(k_step)
      idx = jax.random.randint(k_idx, (), 0, n_ops)
      return jnp.where(i < d, idx, n_ops), k_op

    return jax.vmap(step)(jnp.arange(max_depth), jax.random.split(k_ops, max_depth))

  op, k_op = jax.vmap(chain)(jax.random.split(k_chains, width))
  return weights, m, op, k_op


def _op_parameters(k_op, names, severity, height, width):
  """(value, affine matrix [6]) of every operation for the draws of key `k_op`.

  The one place the magnitudes are drawn (the reference's sampling): posterize,
  solarize and the enhance operations sample the level from `k_op`; the
  geometric operations split it into a level key and a sign key.
  """
  direct = _sample_level(k_op, severity)
  k1, k2 = jax.random.split(k_op)
  level = _sample_level(k1, severity)
  sign = lambda v: _random_sign(k2, v)
  one, zero = jnp.float32(1.0), jnp.float32(0.0)
  identity = (one, zero, zero, zero, one, zero)
  params = {
    "posterize": ((4 - _int_parameter(direct, 4)), identity),
    "solarize": ((256 - _int_parameter(direct, 256)), identity),
    "rotate": (zero, _ops.rotation_matrix(sign(_int_parameter(level, 30)), height, width)),
    "shear_x": (zero, (one, sign(_float_parameter(level, 0.3)), zero, zero, one, zero)),
    "shear_y": (zero, (one, zero, zero, sign(_float_parameter(level, 0.3)), one, zero)),
    "translate_x": (zero, (one, zero, sign(_int_parameter(level, width / 3)), zero, one, zero)),
    "translate_y": (zero, (one, zero, zero, zero, one, sign(_int_parameter(level, height / 3)))),
  }
  enhance = _float_parameter(direct, 1.8) + 0.1
  values, matrices = [], []
  for name in names:
    value, matrix = params.get(
      name,
      (enhance if name in ("color", "contrast", "brightness", "sharpness") else zero, identity),
    )
    values.append(jnp.asarray(value, jnp.float32))
    matrices.append(jnp.stack([jnp.asarray(v, jnp.float32) for v in matrix]))
  return jnp.stack(values), jnp.stack(matrices)


def _kernels(names):
  """Batched kernels [K, H, W, C] -> [K, H, W, C], indexed as in `_KERNEL_OF`."""
  index = {name: i for i, name in enumerate(names)}

  def warp(x, op, value, matrix):
    del op, value
    return jax.vmap(lambda im, mt: _ops.affine_transform(im, tuple(mt)))(x, matrix)

  def tone(x, op, value, matrix):
    out = x
    for name in ("autocontrast", "posterize", "solarize", "color", "contrast", "brightness"):
      if name in index:
        out = jnp.where(
          (op == index[name])[:, None, None, None], jax.vmap(_APPLY[name])(x, value, matrix), out
        )
    return out

  def equalize_(x, op, value, matrix):
    del op, value, matrix
    return _equalize_batch(x)

  def sharpness_(x, op, value, matrix):
    del op
    return jax.vmap(_APPLY["sharpness"])(x, value, matrix)

  return [warp, tone, equalize_, sharpness_][: max(_KERNEL_OF[n] for n in names) + 1]


def _apply_grouped(x, kernel, kernels, params, chunk):
  """Runs kernel `kernel[i]` on image `x[i]` ([N, H, W, C]); len(kernels) skips.

  The images are ordered by kernel and processed `chunk` at a time (a chunk
  that runs past its kernel's images is shifted back and its foreign images
  are left unchanged), so each image costs one evaluation of its own kernel.
  """
  n = x.shape[0]
  n_kernels = len(kernels)
  order = jnp.argsort(kernel, stable=True)
  counts = jnp.sum(kernel[:, None] == jnp.arange(n_kernels), axis=0)
  starts = jnp.cumsum(counts) - counts
  n_chunks = (counts + chunk - 1) // chunk
  chunk_end = jnp.cumsum(n_chunks)

  def body(t, x):
    k = jnp.sum(t >= chunk_end)
    begin = starts[k] + (t - chunk_end[k] + n_chunks[k]) * chunk
    p = jnp.minimum(begin, n - chunk)
    pos = p + jnp.arange(chunk)
    idx = jax.lax.dynamic_slice(order, (p,), (chunk,))
    valid = (pos >= begin) & (pos < starts[k] + counts[k])
    xs = x[idx]
    ys = jax.lax.switch(k, kernels, xs, *(a[idx] for a in params))
    # Foreign images are dropped by an out-of-range index (a `where` here would
    # make XLA:CPU evaluate the kernel twice).
    return x.at[jnp.where(valid, idx, n + jnp.arange(chunk))].set(
      ys, unique_indices=True, mode="drop"
    )

  return jax.lax.fori_loop(0, chunk_end[-1], body, x)


def _augmix_batch(keys, images, severity, width, depth, alpha, all_ops):
  """AugMix of a batch [B, H, W, C] with keys [B]: the values of AugMix's per-example
  definition (`_augmix_one` in tests/test_augment.py)."""
  names = augmix_op_names(all_ops)
  b, h, w, c = images.shape
  max_depth = depth if depth > 0 else 3
  weights, m, op, k_op = jax.vmap(lambda k: _draws(k, len(names), alpha, width, depth))(keys)
  # The parameters of every operation per step ([B, width, D, n_ops]), then the chosen one's.
  value, matrix = jax.vmap(jax.vmap(jax.vmap(lambda k: _op_parameters(k, names, severity, h, w))))(
    k_op
  )
  pick = jnp.minimum(op, len(names) - 1)
  value = jnp.take_along_axis(value, pick[..., None], axis=-1)[..., 0]
  matrix = jnp.take_along_axis(matrix, pick[..., None, None], axis=-2)[..., 0, :]
  kernels = _kernels(names)
  kernel_of = jnp.array([_KERNEL_OF[n] for n in names] + [len(kernels)], jnp.int32)
  kernel = kernel_of[op]
  n = b * width
  x = jnp.broadcast_to(images[:, None], (b, width, h, w, c)).reshape(n, h, w, c)
  flat = lambda a, s: a[:, :, s].reshape((n,) + a.shape[3:])
  for s in range(max_depth):
    x = _apply_grouped(
      x, flat(kernel, s), kernels, (flat(op, s), flat(value, s), flat(matrix, s)), min(_CHUNK, n)
    )
  chains = x.reshape(b, width, h, w, c)
  weights = weights.astype(images.dtype)
  mix = sum(weights[:, i, None, None, None] * chains[:, i] for i in range(width))
  m = m.astype(images.dtype)[:, None, None, None]
  out = (1.0 - m) * images + m * mix
  return jnp.clip(out, 0.0, 1.0).astype(images.dtype)


def _broadcast_unbatched(axis_size, in_batched, *args):
  """The arguments of a custom vmap rule, each with the mapped axis in front."""
  return [
    a if batched else jnp.broadcast_to(a, (axis_size,) + jnp.shape(a))
    for a, batched in zip(args, in_batched)
  ]


def _flatten_vmap(fn):
  """`fn(keys [B], images [B, ...])` whose vmap runs it once on the flattened batch."""
  fn = custom_batching.custom_vmap(fn)

  @fn.def_vmap
  def _rule(axis_size, in_batched, keys, images):
    keys, images = _broadcast_unbatched(axis_size, in_batched, keys, images)
    n = axis_size * images.shape[1]
    out = fn(keys.reshape((n,) + keys.shape[2:]), images.reshape((n,) + images.shape[2:]))
    return out.reshape(images.shape), True

  return fn


@functools.lru_cache(maxsize=32)
def _augmix_fn(severity, width, depth, alpha, all_ops):
  """`augmix` for fixed options, with a vmap rule that runs `_augmix_batch`.

  Under a plain `jax.vmap`, `lax.switch` with a batched index evaluates every
  operation for every example and selects. The custom rule runs the batched
  implementation instead, in which each image runs only its chosen operations
  and the loops step over chunks of images rather than single examples.
  """
  args = (severity, width, depth, alpha, all_ops)
  batch = _flatten_vmap(lambda keys, images: _augmix_batch(keys, images, *args))

  @custom_batching.custom_vmap
  def fn(key, image):
    return batch(key[None], image[None])[0]

  @fn.def_vmap
  def _rule(axis_size, in_batched, key, image):
    return batch(*_broadcast_unbatched(axis_size, in_batched, key, image)), True

  # Compiled once per options: called eagerly, op by op, the loops would be slow.
  return jax.jit(fn)
