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

from advjax import _validate
from advjax.augment import _ops


# --------------------------------------------------------------------------- #
# Deterministic operations (explicit parameters), PIL semantics
# --------------------------------------------------------------------------- #
def autocontrast(image: jax.Array) -> jax.Array:
  """ImageOps.autocontrast (cutoff 0): per channel, stretch [min, max] to [0, 1]."""
  lo = jnp.min(image, axis=(0, 1), keepdims=True)
  hi = jnp.max(image, axis=(0, 1), keepdims=True)
  span = hi - lo
  stretched = (image - lo) / jnp.where(span > 0, span, 1.0)
  return jnp.where(span > 0, jnp.clip(stretched, 0.0, 1.0), image)


def _equalize_channel(levels: jax.Array) -> jax.Array:
  """ImageOps.equalize of one channel of integer levels [H, W] -> levels."""
  hist = jnp.bincount(levels.reshape(-1), length=256)
  nonzero = hist > 0
  last = jnp.max(jnp.where(nonzero, jnp.arange(256), -1))
  step = (jnp.sum(hist) - hist[last]) // 255
  cum = jnp.cumsum(hist) - hist  # pixels strictly below each level
  safe_step = jnp.maximum(step, 1)
  lut = jnp.minimum((safe_step // 2 + cum) // safe_step, 255)
  keep = (jnp.sum(nonzero) <= 1) | (step == 0)
  return jnp.where(keep, levels, lut[levels])


def equalize(image: jax.Array) -> jax.Array:
  """ImageOps.equalize: per-channel histogram equalization on 256 grey levels."""
  levels = _ops.to_levels(image)
  out = jax.vmap(_equalize_channel, in_axes=-1, out_axes=-1)(levels)
  return out.astype(image.dtype) / 255.0


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


def _op_autocontrast(key, image, severity):
  del key, severity
  return autocontrast(image)


def _op_equalize(key, image, severity):
  del key, severity
  return equalize(image)


def _op_posterize(key, image, severity):
  level = _int_parameter(_sample_level(key, severity), 4)
  return posterize(image, (4 - level).astype(jnp.int32))


def _op_rotate(key, image, severity):
  k1, k2 = jax.random.split(key)
  degrees = _random_sign(k2, _int_parameter(_sample_level(k1, severity), 30))
  return rotate(image, degrees)


def _op_solarize(key, image, severity):
  level = _int_parameter(_sample_level(key, severity), 256)
  return solarize(image, (256 - level).astype(jnp.int32))


def _op_shear_x(key, image, severity):
  k1, k2 = jax.random.split(key)
  return shear_x(image, _random_sign(k2, _float_parameter(_sample_level(k1, severity), 0.3)))


def _op_shear_y(key, image, severity):
  k1, k2 = jax.random.split(key)
  return shear_y(image, _random_sign(k2, _float_parameter(_sample_level(k1, severity), 0.3)))


def _op_translate_x(key, image, severity):
  k1, k2 = jax.random.split(key)
  level = _int_parameter(_sample_level(k1, severity), image.shape[1] / 3)
  return translate_x(image, _random_sign(k2, level))


def _op_translate_y(key, image, severity):
  k1, k2 = jax.random.split(key)
  level = _int_parameter(_sample_level(k1, severity), image.shape[0] / 3)
  return translate_y(image, _random_sign(k2, level))


def _enhance(fn):
  def op(key, image, severity):
    return fn(image, _float_parameter(_sample_level(key, severity), 1.8) + 0.1)
  return op


AUGMENTATIONS = {
    "autocontrast": _op_autocontrast,
    "equalize": _op_equalize,
    "posterize": _op_posterize,
    "rotate": _op_rotate,
    "solarize": _op_solarize,
    "shear_x": _op_shear_x,
    "shear_y": _op_shear_y,
    "translate_x": _op_translate_x,
    "translate_y": _op_translate_y,
}
AUGMENTATIONS_ALL = dict(AUGMENTATIONS, color=_enhance(color), contrast=_enhance(contrast),
                         brightness=_enhance(brightness), sharpness=_enhance(sharpness))


def augmix_op_names(all_ops: bool = False):
  """Names of the operations AugMix samples from (in `lax.switch` order)."""
  return list((AUGMENTATIONS_ALL if all_ops else AUGMENTATIONS).keys())


def augmix_op(key: jax.Array, image: jax.Array, *, name: str, severity: float = 3.0
              ) -> jax.Array:
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


def augmix(key: jax.Array, image: jax.Array, *, severity: float = 3.0, width: int = 3,
           depth: int = -1, alpha: float = 1.0, all_ops: bool = False) -> jax.Array:
  """AugMix of one image (Hendrycks et al. 2020, Algorithm 1).

  `width` chains of `depth` random operations (depth uniform in {1, 2, 3} when
  `depth <= 0`) are mixed with Dirichlet(alpha) weights, and the mixture is
  combined with the original with m ~ Beta(alpha, alpha):
  `(1 - m) * image + m * sum_i w_i chain_i(image)`. The operation of each step
  is chosen per example with `lax.switch`, so the function jits and vmaps.

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
    batching rule runs only the chosen operation of each example (see
    `_augmix_fn`); AugMix is a data transform and is not differentiated
    (`custom_vmap` functions do not support reverse-mode autodiff).

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


def _augmix_one(key, image, severity, width, depth, alpha, all_ops):
  """AugMix of one image with true conditionals (only the chosen operation runs)."""
  ops = list((AUGMENTATIONS_ALL if all_ops else AUGMENTATIONS).values())
  # The last branch is the identity, taken by the steps beyond the chain's depth.
  branches = [lambda kk, xx, f=f: f(kk, xx, severity) for f in ops] + [lambda kk, xx: xx]
  max_depth = depth if depth > 0 else 3
  k_w, k_m, k_chains = jax.random.split(key, 3)
  weights = jax.random.dirichlet(k_w, jnp.full((width,), alpha, jnp.float32))
  m = jax.random.beta(k_m, alpha, alpha)

  def chain(k):
    k_d, k_ops = jax.random.split(k)
    d = jax.random.randint(k_d, (), 1, 4) if depth <= 0 else depth

    def step(x, inputs):
      i, k_step = inputs
      k_idx, k_op = jax.random.split(k_step)
      idx = jax.random.randint(k_idx, (), 0, len(ops))
      idx = jnp.where(i < d, idx, len(ops))
      return jax.lax.switch(idx, branches, k_op, x), None

    x, _ = jax.lax.scan(step, image, (jnp.arange(max_depth),
                                      jax.random.split(k_ops, max_depth)))
    return x

  chains = jax.lax.map(chain, jax.random.split(k_chains, width))
  mix = jnp.tensordot(weights.astype(image.dtype), chains, axes=1)
  out = (1.0 - m) * image + m * mix
  return jnp.clip(out, 0.0, 1.0).astype(image.dtype)


@functools.lru_cache(maxsize=None)
def _augmix_fn(severity, width, depth, alpha, all_ops):
  """`augmix` for fixed options, with a vmap rule that keeps the conditionals.

  Under a plain `jax.vmap`, `lax.switch` with a batched index evaluates every
  operation for every example and selects. The custom rule maps over the batch
  with `lax.map` instead, so each example runs only its chosen operations
  (about 9x less work for 9 operations). The values are identical either way.
  """
  args = (severity, width, depth, alpha, all_ops)

  @custom_batching.custom_vmap
  def fn(key, image):
    return _augmix_one(key, image, *args)

  @fn.def_vmap
  def _rule(axis_size, in_batched, key, image):
    key_batched, image_batched = in_batched
    if not key_batched:
      key = jnp.broadcast_to(key, (axis_size,) + jnp.shape(key))
    if not image_batched:
      image = jnp.broadcast_to(image, (axis_size,) + image.shape)
    out = jax.lax.map(lambda a: _augmix_one(a[0], a[1], *args), (key, image))
    return out, True

  return fn
