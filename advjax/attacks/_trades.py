"""TRADES' inner maximization (Zhang et al. 2019): PGD on KL(p(x) || p(x'))."""

from typing import Tuple

import jax
import jax.numpy as jnp

from advjax import _validate
from advjax import losses
from advjax.attacks import _parts


def trades_attack_with_info(
  key: jax.Array,
  logits_fn,
  images: jax.Array,
  labels: jax.Array,
  *,
  eps,
  norm: str = "linf",
  num_steps: int = 10,
  step_size=None,
  init_std: float = 0.001,
  example_ids=None,
  bounds: Tuple[float, float] = (0.0, 1.0),
) -> _parts.AttackResult:
  """The adversarial examples TRADES trains on: x' maximizing KL(p(x) || p(x')).

  Starts at `x + init_std * N(0, 1)` (the KL and its gradient vanish at x' = x),
  then takes `num_steps` steepest-ascent steps of `step_size * eps` on
  `losses.trades_kl(logits_fn(x), logits_fn(x'))` (sign steps for Linf,
  normalized gradient for L2), each projected onto the eps-ball and the bounds,
  and returns the last iterate, as the reference code does. p(x) is computed once
  and held fixed. Labels serve only the success flag of the info: the objective
  does not use them.

  References: Zhang et al. 2019, "Theoretically Principled Trade-off between
  Robustness and Accuracy", https://arxiv.org/abs/1901.08573; reference code
  github.com/yaodongyu/TRADES (`trades.py`; CIFAR-10 Linf 8/255, 10 steps of
  2/255; MNIST 0.3, 40 steps of 0.01).

  Args:
    key: a JAX PRNG key for the Gaussian start.
    logits_fn: `images [B, H, W, C] -> logits [B, K]` in inference mode (batch
      statistics read, never updated).
    images: float images [B, H, W, C] in `bounds`.
    labels: int true labels [B].
    eps: budget, a scalar or per-example [B], >= 0.
    norm: "linf" or "l2".
    num_steps: ascent steps, >= 1.
    step_size: the step as a fraction of eps (a scalar or per-example [B]), >= 0;
      default `2.5 / num_steps` (2/255 at 8/255 with 10 steps, the CIFAR-10 setting).
    init_std: standard deviation of the Gaussian start (0.001 in the reference).
    example_ids: int [B], the examples' identities: example b's start is drawn
      from `fold_in(key, example_ids[b])` (default: its position in the batch), so
      it does not depend on the batch it is in or on sharding.
    bounds: the valid pixel range.

  Returns:
    An `AttackResult`: the images [B, H, W, C] of the input dtype inside the ball
    and the bounds, under `stop_gradient`, and their `AttackInfo` (objective: the
    KL at the returned images).

  Raises:
    ValueError: for a bad argument, named in the message.
  """
  _parts.check_attack_args(logits_fn, images, labels, eps=eps, norm=norm, num_steps=num_steps)
  _validate.check_nonnegative(init_std, "init_std")
  if step_size is None:
    step_size = 2.5 * jnp.asarray(eps, images.dtype) / num_steps
  else:
    _validate.check_nonnegative(step_size, "step_size")
    step_size = step_size * jnp.asarray(eps, images.dtype)
  step = _parts._bcast(step_size, images)  # pylint: disable=protected-access
  logits_clean = jax.lax.stop_gradient(logits_fn(images))

  def value_and_grad(x):
    def total(x):
      v = losses.trades_kl(logits_clean, logits_fn(x))
      return jnp.sum(v), v

    (_, v), g = jax.value_and_grad(total, has_aux=True)(x)
    return v, g

  # the reference leaves the start unclipped; every step projects
  keys = _parts.per_example_keys(key, example_ids, images.shape[0])
  noise = _parts.draw_each(keys, lambda k: jax.random.normal(k, images.shape[1:], images.dtype))
  x0 = images + init_std * noise

  def body(i, carry):
    x, zero_grad = carry
    _, g = value_and_grad(x)
    zero_grad = jnp.where(i == 0, _parts.is_zero(g), zero_grad)
    x = _parts.project(x + step * _parts.steepest_step(g, norm), images, eps, norm, tuple(bounds))
    return x, zero_grad

  x, zero_grad = jax.lax.fori_loop(0, num_steps, body, (x0, jnp.zeros(images.shape[0], bool)))
  logits = logits_fn(x)
  info = _parts.AttackInfo(
    success=_parts.is_successful(logits, labels),
    objective=losses.trades_kl(logits_clean, logits),
    zero_grad=zero_grad,
  )
  return _parts.attack_result(images, x, info)


trades_attack = _parts.images_only(trades_attack_with_info)
