"""Batch-level mixing: mixup, CutMix, and the manifold-mixup model hook.

References:
- H. Zhang, M. Cisse, Y. N. Dauphin, D. Lopez-Paz, "mixup: Beyond Empirical Risk
  Minimization", ICLR 2018, https://arxiv.org/abs/1710.09412.
- S. Yun, D. Han, S. J. Oh, S. Chun, J. Choe, Y. Yoo, "CutMix: Regularization
  Strategy to Train Strong Classifiers with Localizable Features", ICCV 2019,
  https://arxiv.org/abs/1905.04899.
- V. Verma et al., "Manifold Mixup: Better Representations by Interpolating
  Hidden States", ICML 2019, https://arxiv.org/abs/1806.05236.
- N. B. Erichson, S. H. Lim et al., "NoisyMix: Boosting Model Robustness to
  Common Corruptions", 2022, https://arxiv.org/abs/2202.01263 (three views mixed
  with one lambda and one permutation, each view within itself).

The mixing functions act on a whole batch (hence `_batch` in their names) and
return soft targets `[B, K]` for `advjax.losses.cross_entropy`.
"""

from typing import Callable, NamedTuple, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp

from advjax import _validate


def _soft_targets(labels, num_classes):
  labels = jnp.asarray(labels)
  if labels.ndim == 2:
    return labels.astype(jnp.float32)
  if num_classes is None:
    raise ValueError("`num_classes` is required when `labels` are integer class indices.")
  return jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)


def _check_labels(labels, batch_size):
  shape = jnp.shape(labels)
  if len(shape) not in (1, 2) or shape[0] != batch_size:
    raise ValueError(
      f"`labels` must be int [batch] or soft targets [batch, classes] with "
      f"batch {batch_size}; got shape {tuple(shape)}."
    )


def _check_alpha(alpha):
  _validate.check_nonnegative(alpha, "alpha")
  if _validate.is_concrete(alpha) and float(alpha) == 0.0:
    raise ValueError("`alpha` must be > 0 (Beta(alpha, alpha)); got 0.")


def _batch_targets(images, labels, alpha, num_classes):
  """Checks the arguments of a batch-level mixing op; returns soft targets [B, K]."""
  _validate.check_images(images, "images", rank=4)
  _check_labels(labels, images.shape[0])
  _check_alpha(alpha)
  return _soft_targets(labels, num_classes)


def mixup_batch(
  key: jax.Array,
  images: jax.Array,
  labels: jax.Array,
  *,
  alpha: float = 1.0,
  num_classes: Optional[int] = None,
) -> Tuple[jax.Array, jax.Array]:
  """Batch-level mixup: `lam * x + (1 - lam) * x[perm]`, lam ~ Beta(alpha, alpha).

  One lambda and one random permutation for the whole batch, as in the
  reference implementation.

  Args:
    key: a JAX RNG key.
    images: [B, H, W, C] float images in [0, 1].
    labels: int [B] class indices or soft targets [B, K].
    alpha: Beta concentration (> 0); 1.0 gives lam ~ U(0, 1).
    num_classes: K, required for integer labels.

  Returns:
    (mixed images [B, H, W, C] in [0, 1], soft targets [B, K] summing to 1).

  Raises:
    ValueError: for a bad rank, dtype, range, labels shape or alpha.
  """
  targets = _batch_targets(images, labels, alpha, num_classes)
  k_lam, k_perm = jax.random.split(key)
  lam = jax.random.beta(k_lam, alpha, alpha).astype(images.dtype)
  perm = jax.random.permutation(k_perm, images.shape[0])
  mixed = lam * images + (1 - lam) * images[perm]
  return mixed, lam * targets + (1 - lam) * targets[perm]


def cutmix_batch(
  key: jax.Array,
  images: jax.Array,
  labels: jax.Array,
  *,
  alpha: float = 1.0,
  num_classes: Optional[int] = None,
) -> Tuple[jax.Array, jax.Array]:
  """Batch-level CutMix: paste a box of `x[perm]` into `x`; targets by area.

  lam ~ Beta(alpha, alpha); the box has side `sqrt(1 - lam)` of the image, a
  uniform centre, and is clipped at the borders; the target weight is then the
  exact kept area fraction (Yun et al. 2019, Algorithm A1). One box and one
  permutation for the whole batch.

  Args:
    key: a JAX RNG key.
    images: [B, H, W, C] float images in [0, 1].
    labels: int [B] or soft targets [B, K].
    alpha: Beta concentration (> 0).
    num_classes: K, required for integer labels.

  Returns:
    (mixed images [B, H, W, C], soft targets [B, K]).

  Raises:
    ValueError: for a bad rank, dtype, range, labels shape or alpha.
  """
  targets = _batch_targets(images, labels, alpha, num_classes)
  _, h, w, _ = images.shape
  k_lam, k_perm, k_y, k_x = jax.random.split(key, 4)
  lam = jax.random.beta(k_lam, alpha, alpha)
  cut = jnp.sqrt(1.0 - lam)
  ch, cw = jnp.floor(h * cut).astype(jnp.int32), jnp.floor(w * cut).astype(jnp.int32)
  cy = jax.random.randint(k_y, (), 0, h)
  cx = jax.random.randint(k_x, (), 0, w)
  y0, y1 = jnp.clip(cy - ch // 2, 0, h), jnp.clip(cy + ch // 2, 0, h)
  x0, x1 = jnp.clip(cx - cw // 2, 0, w), jnp.clip(cx + cw // 2, 0, w)
  r, c = jnp.arange(h), jnp.arange(w)
  box = ((r >= y0) & (r < y1))[:, None] & ((c >= x0) & (c < x1))[None, :]
  perm = jax.random.permutation(k_perm, images.shape[0])
  mixed = jnp.where(box[None, :, :, None], images[perm], images)
  kept = 1.0 - jnp.sum(box) / (h * w)
  return mixed, kept * targets + (1.0 - kept) * targets[perm]


# --------------------------------------------------------------------------- #
# Manifold mixup as a model hook
# --------------------------------------------------------------------------- #
class MixupPlan(NamedTuple):
  """The random choices of one manifold-mixup step (shared by all views).

  Attributes:
    block: int32 scalar, the hook index where mixing happens (0 = input).
    lam: float32 scalar mixing weight.
    perm: int32 [B] permutation within one view.
  """

  block: jax.Array
  lam: jax.Array
  perm: jax.Array


def sample_mixup_plan(
  key: jax.Array, batch_size: int, *, alpha: float = 1.0, blocks: Sequence[int] = (0, 1, 2)
) -> MixupPlan:
  """Draws the block, lambda ~ Beta(alpha, alpha) and permutation of manifold mixup.

  Args:
    key: a JAX RNG key.
    batch_size: B, the size of one view.
    alpha: Beta concentration (> 0).
    blocks: candidate hook indices (0 = input), chosen uniformly. (0, 1, 2) is
      the choice of Verma et al. and NoisyMix for ResNets.

  Returns:
    A `MixupPlan`.
  """
  _check_alpha(alpha)
  if not blocks:
    raise ValueError("`blocks` must name at least one hook index.")
  k_b, k_l, k_p = jax.random.split(key, 3)
  block = jnp.asarray(blocks, jnp.int32)[jax.random.randint(k_b, (), 0, len(blocks))]
  return MixupPlan(
    block, jax.random.beta(k_l, alpha, alpha), jax.random.permutation(k_p, batch_size)
  )


def mix_views(h: jax.Array, plan: MixupPlan, num_views: int = 1) -> jax.Array:
  """Mixes each of `num_views` equal parts of the batch within itself.

  Args:
    h: [V * B, ...] activations (views concatenated along the batch axis).
    plan: the `MixupPlan` (its permutation has length B).
    num_views: V.

  Returns:
    [V * B, ...] with view v replaced by `lam * h_v + (1 - lam) * h_v[perm]`.
  """
  v = h.reshape((num_views, -1) + h.shape[1:])
  lam = plan.lam.astype(h.dtype)
  return (lam * v + (1 - lam) * v[:, plan.perm]).reshape(h.shape)


def mixup_targets(
  labels: jax.Array, plan: MixupPlan, *, num_classes: Optional[int] = None
) -> jax.Array:
  """Soft targets `lam * y + (1 - lam) * y[perm]` [B, K] for one view's labels."""
  t = _soft_targets(labels, num_classes)
  return plan.lam * t + (1 - plan.lam) * t[plan.perm]


def manifold_mixup_hook(
  key: jax.Array,
  labels: jax.Array,
  *,
  alpha: float = 1.0,
  blocks: Sequence[int] = (0, 1, 2),
  num_views: int = 1,
  num_classes: Optional[int] = None,
  then: Optional[Callable[[int, jax.Array], jax.Array]] = None,
) -> Tuple[Callable[[int, jax.Array], jax.Array], jax.Array]:
  """Builds a `block_hook(i, h) -> h` for manifold mixup, and its soft targets.

  Use it with the models' `block_hook` argument (`LeNet5`, `ResNet18`): the
  hook mixes the activations after a randomly chosen block (or the input, for
  block 0) and leaves the others unchanged; the model's loss is then
  `cross_entropy(logits[:B], targets)`. The block is a traced value, so the
  hook works inside `jax.jit` (the mix is computed at every candidate block and
  selected with `jnp.where`).

  Args:
    key: a JAX RNG key.
    labels: int [B] or soft [B, K] labels of one view.
    alpha: Beta concentration of lambda (> 0).
    blocks: candidate hook indices (0 = input; see the model's `num_blocks`).
    num_views: V, the number of views concatenated along the batch (3 for
      NoisyMix's clean + two AugMix views); all are mixed with the same lambda
      and permutation, each within itself.
    num_classes: K, required for integer labels.
    then: optional `(i, h) -> h` applied right after the mix at the chosen
      block only (NoisyMix's noise injection uses this).

  Returns:
    (hook, targets [B, K]).

  Example:
    >>> hook, t = manifold_mixup_hook(key, y, num_classes=10)  # doctest: +SKIP
    >>> loss = cross_entropy(model.apply(v, x, block_hook=hook), t)  # doctest: +SKIP
  """
  b = jnp.shape(labels)[0]
  plan = sample_mixup_plan(key, b, alpha=alpha, blocks=blocks)
  targets = mixup_targets(labels, plan, num_classes=num_classes)
  candidates = tuple(int(i) for i in blocks)

  def hook(i, h):
    if i not in candidates:
      return h
    mixed = mix_views(h, plan, num_views)
    if then is not None:
      mixed = then(i, mixed)
    return jnp.where(plan.block == i, mixed, h)

  return hook, targets
