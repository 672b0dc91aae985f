"""Perturbation directions of Rozsa, Rudd & Boult 2016 ("Adversarial Diversity
and Hard Positive Generation"): hot/cold, FGS and FGV.

Every function returns directions in one form, `[B, D, H, W, C]` (D directions
per image), ready for `minimal_adversarial`; they are unnormalized input-space
derivatives (or their signs) and carry no gradient (`lax.stop_gradient`).
"""

from typing import Tuple

import jax
import jax.numpy as jnp

from advjax import _validate
from advjax.attacks import _parts


def hot_cold_weights(logits: jax.Array, labels: jax.Array, hot: jax.Array) -> jax.Array:
  """The hot/cold vector w [B, K] for one hot class per example.

  `w_hot = |h_hot(x)|`, `w_y = -h_y(x)` for the cold (true) class y, 0 elsewhere
  (Rozsa et al. 2016, Sec. 4.2).

  Args:
    logits: pre-softmax scores h(x) [B, K].
    labels: true classes [B].
    hot: hot (target) classes [B], different from `labels`.

  Returns:
    w [B, K], constant with respect to the logits (stop_gradient).
  """
  k = logits.shape[-1]
  h_hot = jnp.take_along_axis(logits, hot[:, None], axis=-1)
  h_y = jnp.take_along_axis(logits, labels[:, None], axis=-1)
  w = (
    jax.nn.one_hot(hot, k, dtype=logits.dtype) * jnp.abs(h_hot)
    - jax.nn.one_hot(labels, k, dtype=logits.dtype) * h_y
  )
  return jax.lax.stop_gradient(w)


def closest_classes(logits: jax.Array, labels: jax.Array, num: int) -> jax.Array:
  """The `num` highest-scoring classes other than the label, closest first [B, num]."""
  onehot = jax.nn.one_hot(labels, logits.shape[-1], dtype=bool)
  masked = jnp.where(onehot, -jnp.inf, logits)
  return jax.lax.top_k(masked, num)[1].astype(jnp.int32)


def hot_cold_directions(
  logits_fn, images: jax.Array, labels: jax.Array, *, num_hot: int, use_sign: bool = False
) -> Tuple[jax.Array, jax.Array]:
  """Hot/cold perturbation directions, one per hot class (HC-1 ... HC-num_hot).

  For hot class j (the j-th closest-scoring class other than the label y), the
  direction is the vector-Jacobian product of the logits h at x with the
  hot/cold vector w (`w_j = |h_j(x)|`, `w_y = -h_y(x)`, 0 elsewhere), i.e.
  the gradient of `<w, h(x)>` with w held fixed: moving along it raises the hot
  class and lowers the true one. HC-D uses these raw derivatives, HC-S
  (`use_sign=True`) their signs. Rozsa, Rudd & Boult 2016, Sec. 4.2.

  Args:
    logits_fn: `images [B, H, W, C] -> logits [B, K]`, examples independent.
    images: float images [B, H, W, C] in [0, 1].
    labels: int true classes [B].
    num_hot: number of hot classes, 1 <= num_hot <= K - 1.
    use_sign: return sign(direction) (HC-S) instead of the derivative (HC-D).

  Returns:
    (directions [B, num_hot, H, W, C] float32, hot_classes [B, num_hot] int32),
    ordered by how close the hot class scores to the top (HC-1 first).

  Raises:
    ValueError: for bad images, labels, or num_hot outside [1, K - 1].
  """
  num_classes = _parts.check_attack_args(logits_fn, images, labels)
  _validate.check_positive_int(num_hot, "num_hot")
  if num_hot > num_classes - 1:
    raise ValueError(
      f"`num_hot` must be at most {num_classes - 1} (the classes other "
      f"than the label); got {num_hot}."
    )
  logits, vjp = jax.vjp(logits_fn, images)
  hot = closest_classes(logits, labels, num_hot)
  w = jax.vmap(lambda h: hot_cold_weights(logits, labels, h), in_axes=1)(hot)  # [D, B, K]
  (dirs,) = jax.vmap(vjp)(w)  # [D, B, H, W, C]
  dirs = jnp.moveaxis(dirs, 0, 1)
  if use_sign:
    dirs = jnp.sign(dirs)
  return jax.lax.stop_gradient(dirs.astype(jnp.float32)), hot


def _ce_gradient(logits_fn, images, labels):
  _parts.check_attack_args(logits_fn, images, labels)
  objective = _parts.get_objective("ce")
  _, _, g = _parts.value_and_input_grad(logits_fn, objective, images, labels)
  return g


def fgs_directions(logits_fn, images: jax.Array, labels: jax.Array) -> jax.Array:
  """Fast gradient sign direction `sign(grad_x CE(h(x), y))` as [B, 1, H, W, C].

  Goodfellow et al. 2015; "FGS" in Rozsa et al. 2016.

  Args:
    logits_fn: `images [B, H, W, C] -> logits [B, K]`.
    images: float images [B, H, W, C] in [0, 1].
    labels: int true classes [B].

  Returns:
    Directions [B, 1, H, W, C] with entries in {-1, 0, 1}.

  Raises:
    ValueError: for bad images or labels.
  """
  g = _ce_gradient(logits_fn, images, labels)
  return jax.lax.stop_gradient(jnp.sign(g)[:, None].astype(jnp.float32))


def fgv_directions(logits_fn, images: jax.Array, labels: jax.Array) -> jax.Array:
  """Fast gradient value direction `grad_x CE(h(x), y)` as [B, 1, H, W, C].

  The raw input gradient of the cross-entropy ("FGV", Rozsa et al. 2016).

  Args:
    logits_fn: `images [B, H, W, C] -> logits [B, K]`.
    images: float images [B, H, W, C] in [0, 1].
    labels: int true classes [B].

  Returns:
    Directions [B, 1, H, W, C].

  Raises:
    ValueError: for bad images or labels.
  """
  g = _ce_gradient(logits_fn, images, labels)
  return jax.lax.stop_gradient(g[:, None].astype(jnp.float32))
