"""Carlini & Wagner L2 attack (Carlini & Wagner 2017, "Towards Evaluating the
Robustness of Neural Networks", IEEE S&P; arXiv:1608.04644).

Minimizes `||x' - x||_2^2 + c * f(x')` over `x' = lo + (hi - lo) (tanh(w) + 1) / 2`
(the box constraint disappears in tanh space) with Adam, where
`f = max(z_y - max_{j != y} z_j + kappa, 0)` (untargeted) or
`f = max(max_{j != t} z_j - z_t + kappa, 0)` (targeted). An outer binary
search over the constant c, per example, finds the smallest c that still
succeeds; over all iterates of all searches the smallest successful
perturbation is returned.
"""

from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import optax

from advjax import _validate
from advjax.attacks import _parts
from advjax.attacks import _registry

_UPPER = 1e10  # "no upper bound on c found yet"


def _cw_success(logits, labels, targets, confidence):
  """Success with margin: the winning class beats the label (or the target wins) by kappa."""
  if targets is not None:
    return _margin(logits, labels, targets) >= confidence
  return _margin(logits, labels, None) > confidence


def _margin(logits, labels, targets):
  """The uncapped CW margin (`cw_margin` with kappa = inf): > 0 where adversarial."""
  return _parts.cw_margin(logits, labels, targets, confidence=jnp.inf)


def cw_l2(
  key: jax.Array,
  logits_fn,
  images: jax.Array,
  labels: jax.Array,
  *,
  targeted: bool = False,
  targets: Optional[jax.Array] = None,
  confidence: float = 0.0,
  initial_const: float = 1e-3,
  binary_search_steps: int = 9,
  num_steps: int = 1000,
  learning_rate: float = 1e-2,
  abort_early: bool = True,
  bounds: Tuple[float, float] = (0.0, 1.0),
  example_ids: Optional[jax.Array] = None,
) -> _parts.MinNormResult:
  """Carlini-Wagner L2: the smallest L2 perturbation found per example.

  For each of `binary_search_steps` values of the per-example constant c
  (starting at `initial_const`; multiplied by 10 while no upper bound is known,
  else bisected), Adam runs `num_steps` steps in tanh space from the original
  image; with `abort_early` an example's search stops (the example is frozen)
  when its loss has not decreased by 0.01% over the last `num_steps // 10`
  steps. (The reference code checks the batch's total loss, which would make an
  example's result depend on the batch it is in.) The result keeps, per
  example, the successful iterate (margin > `confidence`) of smallest L2.

  Args:
    key: a JAX PRNG key (unused: the attack is deterministic; kept for a
      uniform signature).
    logits_fn: `images [B, H, W, C] -> logits [B, K]`.
    images: float images [B, H, W, C] in `bounds`.
    labels: int true labels [B].
    targeted: reach `targets` instead of leaving `labels`.
    targets: int target classes [B], required when `targeted`.
    confidence: kappa >= 0, the logit margin a success must have.
    initial_const: the first c (1e-3 in the paper), > 0.
    binary_search_steps: outer searches over c, >= 1.
    num_steps: Adam steps per search, >= 1.
    learning_rate: Adam's learning rate (1e-2 in the paper).
    abort_early: stop an example's search once its loss stalls.
    bounds: the valid pixel range.
    example_ids: int [B] example identities (unused, like `key`; checked and
      kept for a uniform signature).

  Returns:
    A `MinNormResult`: `images` [B, H, W, C] (the original where nothing was
    found), `norms` [B] L2 norms of the perturbation (`inf` where unsuccessful),
    `success` [B] by re-prediction, `zero_grad` [B].

  Raises:
    ValueError: for a bad argument, named in the message.
  """
  del key
  _parts.check_example_ids(example_ids, images.shape[0])
  _parts.check_attack_args(logits_fn, images, labels, num_steps=num_steps, targets=targets)
  _validate.check_positive_int(binary_search_steps, "binary_search_steps")
  _validate.check_nonnegative(confidence, "confidence")
  if not float(initial_const) > 0:
    raise ValueError(f"`initial_const` must be > 0; got {initial_const}.")
  if not float(learning_rate) > 0:
    raise ValueError(f"`learning_rate` must be > 0; got {learning_rate}.")
  if targeted and targets is None:
    raise ValueError("`targets` is required when `targeted=True`.")
  tgt = targets if targeted else None
  confidence = float(confidence)
  dtype = images.dtype
  batch = images.shape[0]
  lo, hi = bounds
  kappa = jnp.asarray(confidence, dtype)

  def to_image(w):
    return lo + (hi - lo) * (jnp.tanh(w) + 1.0) * 0.5

  unit = (images - lo) / (hi - lo) * 2.0 - 1.0
  w0 = jnp.arctanh(jnp.clip(unit, -1.0 + 1e-6, 1.0 - 1e-6))
  tx = optax.adam(learning_rate)

  def losses(w, const):
    x = to_image(w)
    logits = logits_fn(x)
    l2sq = jnp.sum(((x - images) ** 2).reshape(batch, -1), axis=-1)
    f = -_margin(logits, labels, tgt)
    total = l2sq + const * jnp.maximum(f + kappa, 0.0)
    return jnp.sum(total), (total, l2sq, logits, x)

  grad_fn = jax.value_and_grad(losses, has_aux=True)
  check_every = max(num_steps // 10, 1)

  def search(_, carry):
    const, c_lo, c_hi, best_l2, best_x = carry

    def cond(c):
      return (c[0] < num_steps) & ~jnp.all(c[4])

    def body(c):
      i, w, opt_state, prev, stopped, found, best_l2, best_x = c
      active = ~stopped
      (_, (loss, l2sq, logits, x)), g = grad_fn(w, const)
      ok = _cw_success(logits, labels, tgt, kappa) & active
      found = found | ok
      better = ok & (l2sq < best_l2)
      best_l2 = jnp.where(better, l2sq, best_l2)
      best_x = jnp.where(_parts._bcast(better, x), x, best_x)
      updates, new_state = tx.update(g, opt_state, w)
      # Adam is elementwise: a stopped example keeps its iterate and moments (the
      # step count is shared, and equal for every example still running).
      keep = lambda new, old: (
        new
        if new.ndim == 0  # noqa: E731
        else jnp.where(_parts._bcast(active, new), new, old)
      )
      w = keep(optax.apply_updates(w, updates), w)
      opt_state = jax.tree_util.tree_map(keep, new_state, opt_state)
      check = abort_early & (i % check_every == 0) & active
      stopped = stopped | (check & (loss > prev * 0.9999))
      prev = jnp.where(check, loss, prev)
      return i + 1, w, opt_state, prev, stopped, found, best_l2, best_x

    init = (
      jnp.int32(0),
      w0,
      tx.init(w0),
      jnp.full((batch,), jnp.inf, dtype),
      jnp.zeros(batch, bool),
      jnp.zeros(batch, bool),
      best_l2,
      best_x,
    )
    _, _, _, _, _, found, best_l2, best_x = jax.lax.while_loop(cond, body, init)
    c_hi = jnp.where(found, jnp.minimum(c_hi, const), c_hi)
    c_lo = jnp.where(found, c_lo, jnp.maximum(c_lo, const))
    const = jnp.where(c_hi < _UPPER * 0.1, 0.5 * (c_lo + c_hi), const * 10.0)
    return const, c_lo, c_hi, best_l2, best_x

  carry = (
    jnp.full((batch,), initial_const, dtype),
    jnp.zeros(batch, dtype),
    jnp.full((batch,), _UPPER, dtype),
    jnp.full((batch,), jnp.inf, dtype),
    images,
  )
  _, _, _, best_l2, best_x = jax.lax.fori_loop(0, binary_search_steps, search, carry)

  x = jnp.where(_parts._bcast(jnp.isfinite(best_l2), images), best_x, images)
  x = _parts.clip_box(x, bounds).astype(dtype)
  success = _parts.is_successful(logits_fn(x), labels, tgt)
  norms = jnp.where(success, _parts.norm_per_example(x - images, "l2"), jnp.inf)
  # The cross-entropy gradient vanishes only on a flat model (the capped margin
  # is flat wherever the clean image is already misclassified).
  objective = _parts.get_objective("ce", targeted=targeted)
  _, _, g0 = _parts.value_and_input_grad(logits_fn, objective, images, labels, tgt)
  result = _parts.MinNormResult(
    images=x, norms=norms.astype(dtype), success=success, zero_grad=_parts.is_zero(g0)
  )
  return jax.tree_util.tree_map(jax.lax.stop_gradient, result)


def _describe(o) -> str:
  return (
    f"CW-L2 ({o['num_steps']} steps x {o['binary_search_steps']} binary-search steps, "
    f"initial c {o['initial_const']:g}, lr {o['learning_rate']:g})"
  )


_registry.register(
  "cw",
  label="CW-L2 (unbounded)",
  bounded=False,
  output=lambda result, images, eps: result.images,
  describe=_describe,
)(cw_l2)
