"""ACE: adversarial colour enhancement with a piecewise-linear colour filter.

Reference: Z. Zhao, Z. Liu, M. Larson, "Adversarial Color Enhancement:
Generating Unrestricted Adversarial Images by Optimizing a Color Filter",
BMVC 2020, https://arxiv.org/abs/2002.01008.

The filter has K pieces per channel with non-negative slopes theta:

  F(x) = (K / sum_k theta_k) * sum_{k=0}^{K-1} theta_k * clip(x - k / K, 0, 1 / K),

a monotone map of [0, 1] onto [0, 1] that is the identity at theta_k = 1 / K.
`ace` optimizes theta per image and channel with Adam (optax) to maximize the
Carlini-Wagner margin (`advjax.losses.cw_margin`) minus the paper's
regularizer `reg * sum_k (theta_k / sum(theta) - 1 / K)^2`, which keeps the
curve close to the identity. For adversarial training, `bounds` confines theta
to a box around the identity.
"""

from typing import NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from advjax import _validate
from advjax import losses

_MIN_THETA = 1e-6


def apply_color_filter(image: jax.Array, theta: jax.Array) -> jax.Array:
  """Applies the piecewise-linear colour filter to one image.

  Args:
    image: [H, W, C] float image in [0, 1].
    theta: [C, K] non-negative slopes (theta = 1 / K everywhere is the identity).

  Returns:
    [H, W, C] filtered image in [0, 1] (differentiable in image and theta).
  """
  k = theta.shape[-1]
  starts = jnp.arange(k, dtype=image.dtype) / k
  pieces = jnp.clip(image[..., None] - starts, 0.0, 1.0 / k)  # [H, W, C, K]
  total = jnp.sum(theta, axis=-1)  # [C]
  out = jnp.sum(pieces * theta, axis=-1) * (k / jnp.maximum(total, 1e-12))
  return jnp.clip(out, 0.0, 1.0).astype(image.dtype)


def _check_bounds(bounds):
  if bounds is None:
    return
  if len(bounds) != 2 or not 0 <= bounds[0] <= 1 <= bounds[1]:
    raise ValueError(
      "`bounds` must be (low, high) slopes in units of 1 / K with "
      f"0 <= low <= 1 <= high (the identity inside); got {bounds!r}."
    )


def _project(theta, bounds):
  k = theta.shape[-1]
  if bounds is None:
    return jnp.maximum(theta, _MIN_THETA)
  return jnp.clip(theta, max(bounds[0], _MIN_THETA * k) / k, bounds[1] / k)


def random_color_filter(
  key: jax.Array,
  image: jax.Array,
  *,
  num_pieces: int = 64,
  bounds: Tuple[float, float] = (0.5, 1.5),
) -> jax.Array:
  """A random ACE colour curve per channel: theta_k ~ U(bounds) / K.

  Args:
    key: a JAX RNG key.
    image: [H, W, C] float image in [0, 1].
    num_pieces: K.
    bounds: (low, high) range of the slopes in units of 1 / K ((1, 1) is the
      identity).

  Returns:
    [H, W, C] filtered image in [0, 1].

  Raises:
    ValueError: for a bad image, num_pieces or bounds.
  """
  _validate.check_images(image, "image", rank=3)
  _validate.check_positive_int(num_pieces, "num_pieces")
  _check_bounds(bounds)
  c = image.shape[-1]
  theta = jax.random.uniform(key, (c, num_pieces), jnp.float32, bounds[0], bounds[1])
  return apply_color_filter(image, _project(theta / num_pieces, bounds))


class AceResult(NamedTuple):
  """What `ace_with_info` returns.

  Attributes:
    images: [B, H, W, C] the filtered images, as `ace` returns them.
    theta: [B, C, K] the colour filter applied to each image.
  """

  images: jax.Array
  theta: jax.Array


def ace_with_info(
  key: jax.Array,
  logits_fn,
  images: jax.Array,
  labels: jax.Array,
  *,
  num_pieces: int = 64,
  num_steps: int = 50,
  lr: float = 1e-2,
  reg: float = 1.0,
  bounds: Optional[Tuple[float, float]] = None,
  confidence: float = 0.0,
  random_start: bool = False,
) -> AceResult:
  """Adversarial colour enhancement of a batch (Zhao, Liu & Larson 2020).

  Starts from the identity filter (theta = 1 / K; or a random filter within
  `bounds` if `random_start`), then runs `num_steps` Adam steps on
  `sum_b [cw_margin_b - reg * R(theta_b)]`, projecting theta onto theta > 0
  (or the box) after each step. Per example, the filter with the highest
  objective seen is kept.

  Args:
    key: a JAX RNG key (used only when `random_start`).
    logits_fn: images [B, H, W, C] -> logits [B, K].
    images: [B, H, W, C] float images in [0, 1].
    labels: int [B] true classes.
    num_pieces: K, pieces of the curve (64 in the paper).
    num_steps: Adam steps (>= 0; 0 returns the identity filter).
    lr: Adam learning rate on theta (theta starts at 1 / K).
    reg: weight of the regularizer sum_k (theta_k / sum(theta) - 1 / K)^2.
    bounds: optional (low, high) box on theta in units of 1 / K (for training).
    confidence: kappa of the CW margin.
    random_start: start from `random_color_filter` within `bounds` (default
      (0.5, 1.5) if None).

  Returns:
    An `AceResult`: the filtered images [B, H, W, C] in [0, 1] and the filters
    theta [B, C, K], under stop_gradient.

  Raises:
    ValueError: for bad images, labels, num_pieces, num_steps or bounds.
  """
  _validate.check_classifier(logits_fn, images, labels)
  _validate.check_positive_int(num_pieces, "num_pieces")
  if not isinstance(num_steps, (int, np.integer)) or num_steps < 0:
    raise ValueError(f"`num_steps` must be an integer >= 0; got {num_steps!r}.")
  _check_bounds(bounds)
  _validate.check_nonnegative(reg, "reg")
  b, c = images.shape[0], images.shape[-1]
  k = num_pieces
  if random_start:
    lo, hi = bounds if bounds is not None else (0.5, 1.5)
    theta0 = jax.random.uniform(key, (b, c, k), jnp.float32, lo, hi) / k
  else:
    theta0 = jnp.full((b, c, k), 1.0 / k, jnp.float32)
  theta0 = _project(theta0, bounds)
  filt = jax.vmap(apply_color_filter)

  def objective(theta):
    x = filt(images, theta)
    margin = losses.cw_margin(logits_fn(x), labels, confidence=confidence)
    norm = theta / jnp.sum(theta, axis=-1, keepdims=True)
    penalty = jnp.sum((norm - 1.0 / k) ** 2, axis=(1, 2))
    return margin - reg * penalty

  def loss(theta):
    v = objective(theta)
    return -jnp.sum(v), v

  tx = optax.adam(lr)
  grad_fn = jax.value_and_grad(loss, has_aux=True)

  def step(_, carry):
    theta, opt_state, best_theta, best_v = carry
    (_, v), g = grad_fn(theta)
    better = v > best_v
    best_theta = jnp.where(better[:, None, None], theta, best_theta)
    best_v = jnp.where(better, v, best_v)
    updates, opt_state = tx.update(g, opt_state, theta)
    theta = _project(optax.apply_updates(theta, updates), bounds)
    return theta, opt_state, best_theta, best_v

  init = (theta0, tx.init(theta0), theta0, jnp.full((b,), -jnp.inf))
  theta, _, best_theta, best_v = jax.lax.fori_loop(0, num_steps, step, init)
  final_v = objective(theta)
  best_theta = jnp.where((final_v > best_v)[:, None, None], theta, best_theta)
  return jax.tree_util.tree_map(
    jax.lax.stop_gradient, AceResult(filt(images, best_theta), best_theta)
  )


def ace(
  key: jax.Array,
  logits_fn,
  images: jax.Array,
  labels: jax.Array,
  *,
  num_pieces: int = 64,
  num_steps: int = 50,
  lr: float = 1e-2,
  reg: float = 1.0,
  bounds: Optional[Tuple[float, float]] = None,
  confidence: float = 0.0,
  random_start: bool = False,
) -> jax.Array:
  """Adversarial colour enhancement: the images of `ace_with_info`.

  Args:
    key, logits_fn, images, labels, num_pieces, num_steps, lr, reg, bounds,
    confidence, random_start: as `ace_with_info`.

  Returns:
    Filtered images [B, H, W, C] in [0, 1], under stop_gradient.

  Raises:
    ValueError: as `ace_with_info`.
  """
  return ace_with_info(
    key,
    logits_fn,
    images,
    labels,
    num_pieces=num_pieces,
    num_steps=num_steps,
    lr=lr,
    reg=reg,
    bounds=bounds,
    confidence=confidence,
    random_start=random_start,
  ).images
