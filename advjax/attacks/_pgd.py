"""Projected gradient descent (Madry et al. 2018), Linf and L2, with restarts."""

from typing import Optional, Tuple

import jax
import jax.numpy as jnp

from advjax import _validate
from advjax.attacks import _parts
from advjax.attacks import _registry


def pgd_with_info(
  key: jax.Array,
  logits_fn,
  images: jax.Array,
  labels: jax.Array,
  *,
  eps,
  norm: str = "linf",
  num_steps: int = 10,
  step_size=None,
  num_restarts: int = 1,
  random_start: bool = True,
  loss: str = "ce",
  targeted: bool = False,
  targets: Optional[jax.Array] = None,
  confidence: float = 0.0,
  early_stop: bool = False,
  bounds: Tuple[float, float] = (0.0, 1.0),
  example_ids: Optional[jax.Array] = None,
) -> _parts.AttackResult:
  """Projected gradient attack, keeping the best iterate per example.

  Each step moves by `step_size * eps` along the steepest-ascent direction of the
  per-example objective (sign of the gradient for Linf, normalized gradient for
  L2) and projects onto the eps-ball and the box. Over all iterates and all
  restarts the attack returns, per example, the best point: a successful one if
  any (largest objective among them), else the one with the largest objective.

  Args:
    key: a JAX PRNG key for the random starts; example b's start in restart r
      comes from `fold_in(fold_in(key, example_ids[b]), r)`.
    logits_fn: `images [B, H, W, C] -> logits [B, K]`; never updates state.
    images: float images [B, H, W, C] in `bounds`.
    labels: int true labels [B].
    eps: budget, a scalar or per-example [B], >= 0.
    norm: "linf" or "l2".
    num_steps: gradient steps per restart, >= 1.
    step_size: the step as a fraction of eps (a scalar or per-example [B]), >= 0;
      default `2.5 / num_steps` (Madry et al. 2018).
    num_restarts: independent random restarts, >= 1.
    random_start: start uniformly inside the ball (else at the images).
    loss: "ce", "margin" (CW margin with `confidence`) or "dlr".
    targeted: move towards `targets` instead of away from `labels`.
    targets: int target classes [B], required when `targeted`.
    confidence: kappa of the margin loss.
    early_stop: stop moving an example once it is successful (it stays
      frozen); the loop ends when all are.
    bounds: the valid pixel range.
    example_ids: int [B], each example's identity for its random draws (e.g.
      its dataset index), so that its result does not depend on the batch;
      default `arange(B)`.

  Returns:
    An `AttackResult`: the adversarial images [B, H, W, C] of the input dtype
    inside the ball and the bounds, under `stop_gradient`, and their `AttackInfo`.

  Raises:
    ValueError: for a bad argument, named in the message.
  """
  _parts.check_attack_args(
    logits_fn, images, labels, eps=eps, norm=norm, num_steps=num_steps, targets=targets, loss=loss
  )
  _validate.check_positive_int(num_restarts, "num_restarts")
  if targeted and targets is None:
    raise ValueError("`targets` is required when `targeted=True`.")
  if step_size is None:
    step_size = 2.5 * jnp.asarray(eps, images.dtype) / num_steps
  else:
    _validate.check_nonnegative(step_size, "step_size")
    step_size = step_size * jnp.asarray(eps, images.dtype)
  objective = _parts.get_objective(loss, targeted=targeted, confidence=confidence)
  x_adv, info = _pgd_loop(
    key,
    logits_fn,
    objective,
    images,
    labels,
    targets if targeted else None,
    eps,
    norm,
    num_steps,
    step_size,
    num_restarts,
    random_start,
    early_stop,
    tuple(bounds),
    example_ids=example_ids,
  )
  return _parts.attack_result(images, x_adv, info)


def _describe(o) -> str:
  step = 2.5 / o["num_steps"] if o["step_size"] is None else o["step_size"]
  r = o["num_restarts"]
  extra = "" if o["loss"] == "ce" else f", {o['loss']} loss"
  return (
    f"PGD-{o['num_steps']}{_parts.norm_tag(o['norm'])} (step {step:g} eps, {r} restart"
    f"{'s' if r > 1 else ''}{extra}, {'random' if o['random_start'] else 'no random'} start)"
  )


pgd = _registry.register("pgd", label="PGD", describe=_describe)(_parts.images_only(pgd_with_info))


def _better(v, s, best_v, best_s):
  """Successful beats unsuccessful; otherwise the larger objective wins."""
  return (s & ~best_s) | ((s == best_s) & (v > best_v))


def _pgd_loop(
  key,
  logits_fn,
  objective,
  images,
  labels,
  targets,
  eps,
  norm,
  num_steps,
  step_size,
  num_restarts,
  random_start,
  early_stop,
  bounds,
  *,
  example_ids=None,
):
  """The restarts-and-steps loop shared by `pgd` and the training recipes.

  `key` is one key; example b's start in restart r is drawn from
  `fold_in(fold_in(key, example_ids[b]), r)` (`example_ids` default `arange(B)`).
  """
  batch = images.shape[0]
  keys = _parts.per_example_keys(key, example_ids, batch)
  step_size = _parts._bcast(step_size, images)

  def keep_best(x, v, s, best):
    bx, bv, bs = best
    b = _better(v, s, bv, bs)
    return (jnp.where(_parts._bcast(b, x), x, bx), jnp.where(b, v, bv), jnp.where(b, s, bs))

  def one_restart(r, carry):
    best, zero_grad = carry
    x = images
    if random_start:
      x = _parts.project(
        _parts.random_init_each(_parts.fold_in_each(keys, r), images, eps, norm),
        images,
        eps,
        norm,
        bounds,
      )

    def cond(c):
      i, _, _, done, _ = c
      return (i < num_steps) & ~(early_stop & jnp.all(done))

    def body(c):
      i, x, best, done, zg = c
      v, logits, g = _parts.value_and_input_grad(logits_fn, objective, x, labels, targets)
      s = _parts.is_successful(logits, labels, targets)
      best = keep_best(x, v, s, best)
      zg = jnp.where(i == 0, _parts.is_zero(g), zg)
      x_new = _parts.project(
        x + step_size * _parts.steepest_step(g, norm), images, eps, norm, bounds
      )
      if early_stop:
        x_new = jnp.where(_parts._bcast(s, x), x, x_new)
        done = s
      return i + 1, x_new, best, done, zg

    init = (jnp.int32(0), x, best, jnp.zeros(batch, bool), jnp.zeros(batch, bool))
    if early_stop:
      _, x, best, _, zg = jax.lax.while_loop(cond, body, init)
    else:  # rolled: with LeNet's CPU convolution (`conv_pool_2x2`) each step costs one
      # standalone input gradient; unrolled, XLA:CPU fused its transposes badly
      _, x, best, _, zg = jax.lax.fori_loop(0, num_steps, lambda i, c: body(c), init)
    logits = logits_fn(x)
    best = keep_best(
      x,
      objective.ascent_value(logits, labels, targets),
      _parts.is_successful(logits, labels, targets),
      best,
    )
    zero_grad = jnp.where(r == 0, zg, zero_grad)
    return best, zero_grad

  best0 = (images, jnp.full((batch,), -jnp.inf, images.dtype), jnp.zeros(batch, bool))
  carry = (best0, jnp.zeros(batch, bool))
  if num_restarts == 1:  # no outer loop: XLA:CPU runs a nested while loop slower
    carry = one_restart(0, carry)
  else:
    carry = jax.lax.fori_loop(0, num_restarts, one_restart, carry)
  (x_adv, v, s), zero_grad = carry
  return x_adv, _parts.AttackInfo(success=s, objective=v, zero_grad=zero_grad)
