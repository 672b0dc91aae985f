"""NoisyMix sparse noise injection (Erichson, Lim et al. 2022).

Reference: N. B. Erichson, S. H. Lim, W. Xu, F. Utrera, Z. Cao, M. W. Mahoney,
"NoisyMix: Boosting Model Robustness to Common Corruptions", 2022,
https://arxiv.org/abs/2202.01263, code https://github.com/erichson/NoisyMix
(`_noise` and `do_noisy_mixup`).

Additive noise `add * b * N(0, 1)` and multiplicative noise
`1 + mult * b' * U(-1, 1)` with b, b' ~ Beta(2, 5) drawn once per call; each
noise is switched off (0, resp. 1) on a random fraction `sparsity` of the
entries; the result is `mult_noise * x + add_noise`. With three views (clean and
two AugMix views) view i = 1, 2, 3 gets additive level `add * i`. The noise acts
on activations (or normalized inputs), so the output is not clipped to [0, 1].
"""

from typing import Callable, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp

from advjax import _validate
from advjax.augment import _mixing


def _additive(key, x, level, sparsity, b=None):
  k_b, k_n, k_s = jax.random.split(key, 3)
  if b is None:
    b = jax.random.beta(k_b, 2.0, 5.0)
  noise = level * b.astype(x.dtype) * jax.random.normal(k_n, x.shape, x.dtype)
  return jnp.where(jax.random.uniform(k_s, x.shape) < sparsity, 0.0, noise)


def _multiplicative(key, x, level, sparsity, b=None):
  k_b, k_n, k_s = jax.random.split(key, 3)
  if b is None:
    b = jax.random.beta(k_b, 2.0, 5.0)
  factor = 1.0 + level * b.astype(x.dtype) * jax.random.uniform(k_n, x.shape, x.dtype, -1.0, 1.0)
  return jnp.where(jax.random.uniform(k_s, x.shape) < sparsity, 1.0, factor)


def _noise_with_betas(key, x, betas, add, mult, sparsity):
  k_a, k_m = jax.random.split(key)
  return _multiplicative(k_m, x, mult, sparsity, betas[1]) * x + _additive(
    k_a, x, add, sparsity, betas[0]
  )


def additive_noise(
  key: jax.Array, x: jax.Array, *, level: float = 0.5, sparsity: float = 0.65
) -> jax.Array:
  """Sparse additive noise `level * b * N(0, 1)`, b ~ Beta(2, 5), zero on a fraction.

  Args:
    key: a JAX RNG key.
    x: any array (a batch of activations); one Beta draw for the whole array.
    level: noise level (>= 0).
    sparsity: fraction of entries whose noise is set to 0, in [0, 1].

  Returns:
    `x + noise`, same shape and dtype.
  """
  _validate.check_nonnegative(level, "level")
  return x + _additive(key, x, level, sparsity)


def multiplicative_noise(
  key: jax.Array, x: jax.Array, *, level: float = 0.5, sparsity: float = 0.65
) -> jax.Array:
  """Sparse multiplicative noise `1 + level * b * U(-1, 1)`, b ~ Beta(2, 5).

  Args:
    key: a JAX RNG key.
    x: any array; one Beta draw for the whole array.
    level: noise level (>= 0).
    sparsity: fraction of entries whose factor is set to 1, in [0, 1].

  Returns:
    `x * factor`, same shape and dtype.
  """
  _validate.check_nonnegative(level, "level")
  return x * _multiplicative(key, x, level, sparsity)


def sparse_noise(
  key: jax.Array, x: jax.Array, *, add: float = 0.5, mult: float = 0.5, sparsity: float = 0.65
) -> jax.Array:
  """NoisyMix's `_noise`: `mult_noise * x + add_noise` (defaults of the paper).

  Args:
    key: a JAX RNG key.
    x: any array; independent Beta(2, 5) draws for the two noises.
    add: additive level (0 disables it).
    mult: multiplicative level (0 disables it).
    sparsity: fraction of entries left without each noise.

  Returns:
    Noisy array, same shape and dtype.
  """
  k_b, k_n = jax.random.split(key)
  # One Beta(2, 5) draw per noise (a single sampler call: gamma sampling is costly to compile).
  return _noise_with_betas(k_n, x, jax.random.beta(k_b, 2.0, 5.0, (2,)), add, mult, sparsity)


def noise_views(
  key: jax.Array,
  h: jax.Array,
  *,
  num_views: int = 3,
  add: float = 0.5,
  mult: float = 0.5,
  sparsity: float = 0.65,
) -> jax.Array:
  """Applies `sparse_noise` to each view v = 1..V with additive level `add * v`.

  Args:
    key: a JAX RNG key.
    h: [V * B, ...] activations, views concatenated along the batch axis.
    num_views: V.
    add, mult, sparsity: as in `sparse_noise`.

  Returns:
    [V * B, ...] noisy activations.
  """
  k_b, k_n = jax.random.split(key)
  return _noise_views(
    k_n, h, jax.random.beta(k_b, 2.0, 5.0, (num_views, 2)), num_views, add, mult, sparsity
  )


def _noise_views(key, h, betas, num_views, add, mult, sparsity):
  views = h.reshape((num_views, -1) + h.shape[1:])
  keys = jax.random.split(key, num_views)
  out = [
    _noise_with_betas(keys[v], views[v], betas[v], add * (v + 1), mult, sparsity)
    for v in range(num_views)
  ]
  return jnp.stack(out).reshape(h.shape)


def noise_hook(
  key: jax.Array,
  *,
  blocks: Sequence[int] = (0,),
  num_views: int = 1,
  add: float = 0.5,
  mult: float = 0.5,
  sparsity: float = 0.65,
) -> Callable[[int, jax.Array], jax.Array]:
  """A `block_hook(i, h) -> h` that injects NoisyMix noise at hook indices `blocks`.

  Args:
    key: a JAX RNG key (folded with the block index).
    blocks: hook indices to perturb (0 = the normalized input).
    num_views: views concatenated along the batch (additive level `add * v`).
    add, mult, sparsity: as in `sparse_noise`.

  Returns:
    The hook, for the models' `block_hook` argument.
  """
  candidates = tuple(int(i) for i in blocks)

  def hook(i, h):
    if i not in candidates:
      return h
    return noise_views(
      jax.random.fold_in(key, i), h, num_views=num_views, add=add, mult=mult, sparsity=sparsity
    )

  return hook


def noisy_mixup_hook(
  key: jax.Array,
  labels: jax.Array,
  *,
  alpha: float = 1.0,
  blocks: Sequence[int] = (0, 1, 2),
  num_views: int = 3,
  add: float = 0.5,
  mult: float = 0.5,
  sparsity: float = 0.65,
  num_classes: Optional[int] = None,
) -> Tuple[Callable[[int, jax.Array], jax.Array], jax.Array]:
  """The NoisyMix hook: manifold mixup then sparse noise at one random block.

  The batch given to the model is `concat([clean, augmix1, augmix2])` ([3B, ...]);
  one lambda ~ Beta(alpha, alpha), one permutation and one block (among
  `blocks`) are shared by the views; each view is mixed within itself and then
  perturbed with `noise_views` (additive level `add * v` for view v). The loss
  of the paper is `cross_entropy(logits[:B], targets) + 12 * jsd_consistency(
  *jnp.split(logits, 3))`.

  Args:
    key: a JAX RNG key.
    labels: int [B] or soft [B, K] labels of one view.
    alpha: Beta concentration of lambda.
    blocks: candidate hook indices (0 = input).
    num_views: V (3 in NoisyMix; 1 for noisy manifold mixup without AugMix views).
    add, mult, sparsity: noise levels (paper defaults 0.5, 0.5, 0.65).
    num_classes: K, required for integer labels.

  Returns:
    (hook, targets [B, K]).
  """
  k_mix, k_noise, k_b = jax.random.split(key, 3)
  # Only one block is perturbed, so one set of Beta(2, 5) draws serves all candidates.
  betas = jax.random.beta(k_b, 2.0, 5.0, (num_views, 2))

  def then(i, h):
    return _noise_views(jax.random.fold_in(k_noise, i), h, betas, num_views, add, mult, sparsity)

  return _mixing.manifold_mixup_hook(
    k_mix,
    labels,
    alpha=alpha,
    blocks=blocks,
    num_views=num_views,
    num_classes=num_classes,
    then=then,
  )
