"""Schedules (eps and learning rate) and optimizers by name."""

import math
from typing import Callable

import jax.numpy as jnp
import optax

EPS_SCHEDULES = ("constant", "linear", "cosine", "step")
LR_SCHEDULES = ("constant", "cosine", "warmup_cosine", "piecewise", "cyclic")
OPTIMIZERS = ("sgd", "adam", "adamw")


def eps_schedule(
  kind: str, eps: float, warmup_steps: int, *, start_fraction: float = 0.1, num_stages: int = 4
) -> Callable:
  """The attack budget as a function of the step: from `start_fraction * eps` to eps.

  The hybrid preprint grows eps from eps/10 to eps. Kinds: "constant" (eps from
  the start), "linear", "cosine" (half-cosine ramp) and "step" (`num_stages`
  equal plateaus). After `warmup_steps` the budget stays at eps.

  Returns:
    `step -> eps` (jnp scalar), usable inside jit.

  Raises:
    ValueError: for an unknown kind or eps < 0.
  """
  if kind not in EPS_SCHEDULES:
    raise ValueError(f"Unknown eps_schedule {kind!r}; expected one of {list(EPS_SCHEDULES)}.")
  if eps < 0:
    raise ValueError(f"`eps` must be >= 0; got {eps}.")
  eps0 = start_fraction * eps

  def fn(step):
    if kind == "constant" or warmup_steps <= 0:
      return jnp.float32(eps)
    t = jnp.clip(jnp.asarray(step, jnp.float32) / warmup_steps, 0.0, 1.0)
    if kind == "linear":
      frac = t
    elif kind == "cosine":
      frac = 0.5 * (1.0 - jnp.cos(math.pi * t))
    else:
      frac = jnp.minimum(jnp.floor(t * num_stages) / (num_stages - 1), 1.0)
    return jnp.float32(eps0 + (eps - eps0) * frac)

  return fn


def lr_schedule(kind: str, base_lr: float, total_steps: int, *, warmup_steps: int = 0):
  """An optax learning-rate schedule by name.

  Kinds: "constant", "cosine" (decay to 0), "warmup_cosine", "piecewise" (x0.1 at
  50% and 75% of training), "cyclic" (Wong et al. 2020's one cycle: linear from 0 up to
  `base_lr` at 2/5 of training, then linear down to 0 at the end).
  """
  if kind not in LR_SCHEDULES:
    raise ValueError(f"Unknown lr_schedule {kind!r}; expected one of {list(LR_SCHEDULES)}.")
  if kind == "constant":
    return optax.constant_schedule(base_lr)
  if kind == "cosine":
    return optax.cosine_decay_schedule(base_lr, max(total_steps, 1))
  if kind == "warmup_cosine":
    return optax.warmup_cosine_decay_schedule(
      0.0, base_lr, max(warmup_steps, 1), max(total_steps, warmup_steps + 1)
    )
  if kind == "cyclic":
    total = max(total_steps, 2)
    peak = max(1, min(total - 1, round(total * 2 / 5)))
    return optax.join_schedules(
      [
        optax.linear_schedule(0.0, base_lr, peak),
        optax.linear_schedule(base_lr, 0.0, total - peak),
      ],
      [peak],
    )
  return optax.piecewise_constant_schedule(
    base_lr, {int(total_steps * 0.5): 0.1, int(total_steps * 0.75): 0.1}
  )


def make_optimizer(
  name: str,
  learning_rate,
  *,
  momentum: float = 0.9,
  weight_decay: float = 0.0,
  nesterov: bool = False,
) -> optax.GradientTransformation:
  """An optax optimizer by name: "sgd" (momentum, Nesterov's with `nesterov`), "adam",
  "adamw" (decoupled decay).

  For "sgd" and "adam", `weight_decay` is not applied here: the train step adds it
  as an L2 term to the loss (the classical regularization baseline).
  """
  if name not in OPTIMIZERS:
    raise ValueError(f"Unknown optimizer {name!r}; expected one of {list(OPTIMIZERS)}.")
  if name == "sgd":
    return optax.sgd(
      learning_rate, momentum=momentum or None, nesterov=bool(nesterov) and bool(momentum)
    )
  if name == "adam":
    return optax.adam(learning_rate)
  return optax.adamw(learning_rate, weight_decay=weight_decay)
