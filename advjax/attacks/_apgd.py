"""Auto-PGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness
with an ensemble of diverse parameter-free attacks", ICML; arXiv:2003.01690).

APGD is PGD with momentum and a step size that adapts itself: it starts at
`2 * eps`, and at checkpoints w_j (w_0 = 0, first period 0.22 N, then each
period 0.03 N shorter, at least 0.06 N) it halves the step and restarts from
the best point when (1) the objective increased in fewer than `rho` = 0.75 of
the steps since the last checkpoint, or (2) the step was not halved at the
last checkpoint and the best objective has not improved since. Momentum:
`z = P(x_k + eta * d(g_k))`, `x_{k+1} = P(x_k + alpha (z - x_k) + (1 - alpha)
(x_k - x_{k-1}))`, alpha = 0.75 (1 on the first step).
APGD-T runs the targeted DLR loss against the top-k other classes in turn.
"""

import functools
from typing import Optional, Tuple

import jax
import jax.numpy as jnp

from advjax import _validate
from advjax.attacks import _parts
from advjax.attacks import _registry


def checkpoint_schedule(num_steps: int) -> Tuple[int, int, int]:
  """(first period, minimal period, decrement) of the APGD checkpoints, in steps.

  The first checkpoint is after `0.22 N` steps; each following period is
  `0.03 N` shorter than the previous one but at least `0.06 N` (each at least 1).
  """
  return (
    max(int(0.22 * num_steps), 1),
    max(int(0.06 * num_steps), 1),
    max(int(0.03 * num_steps), 1),
  )


def init_apgd(key, images, eps, norm: str, bounds=(0.0, 1.0), *, example_ids=None):
  """The APGD random start: a random point on the surface of the eps-ball.

  Linf: `x + eps * t / ||t||_inf`, t ~ U(-1, 1); L2: `x + eps * n / ||n||_2`,
  n ~ N(0, I); then clipped to the box (as in the reference implementation).
  Example b draws from `fold_in(key, example_ids[b])` (default `arange(B)`).
  """
  keys = _parts.per_example_keys(key, example_ids, images.shape[0])
  return init_apgd_each(keys, images, eps, norm, bounds)


def init_apgd_each(keys, images, eps, norm: str, bounds=(0.0, 1.0)):
  """`init_apgd` from per-example keys [B] (`_parts.per_example_keys`)."""
  shape = images.shape[1:]
  if norm == "linf":
    t = _parts.draw_each(keys, lambda k: jax.random.uniform(k, shape, images.dtype, -1.0, 1.0))
  else:
    t = _parts.draw_each(keys, lambda k: jax.random.normal(k, shape, images.dtype))
  t = t / _parts._bcast(jnp.maximum(_parts.norm_per_example(t, norm), _parts._TINY), t)
  return _parts.clip_box(images + _parts._bcast(eps, images) * t, bounds)


def _apgd_run(
  keys,
  logits_fn,
  objective,
  images,
  labels,
  targets,
  success_fn,
  eps,
  norm,
  num_steps,
  rho,
  momentum,
  bounds,
  done,
):
  """One APGD run on a batch.

  Args:
    keys: [B] per-example keys of the random starts.
    done: [B] bool, examples nobody needs any more. An example that is done or
      successful is frozen (its state no longer changes), so stopping the loop
      once every example is frozen changes no example's result: each result
      depends on its own example and key only, whatever the batch.

  Returns:
    (x [B, ...], found [B], value [B], zero_grad [B]): the first successful
    iterate where one was found, else the iterate of largest objective; its
    objective; whether the gradient at the start was exactly zero.
  """
  batch = images.shape[0]
  first, min_period, decrement = checkpoint_schedule(num_steps)

  def proj(x):
    return _parts.project(x, images, eps, norm, bounds)

  def evaluate(x):
    v, logits, g = _parts.value_and_input_grad(logits_fn, objective, x, labels, targets)
    return v, success_fn(logits), g

  x0 = init_apgd_each(keys, images, eps, norm, bounds)
  v0, s0, g0 = evaluate(x0)
  eta0 = jnp.broadcast_to(2.0 * jnp.asarray(eps, images.dtype), (batch,))
  b = lambda m, x: _parts._bcast(m, x)  # noqa: E731

  init = dict(
    i=jnp.int32(0),
    x=x0,
    x_prev=x0,
    g=g0,
    v_prev=v0,
    eta=eta0,
    x_best=x0,
    v_best=v0,
    g_best=g0,
    x_adv=x0,
    v_adv=v0,
    found=s0,
    counter=jnp.int32(0),
    period=jnp.int32(first),
    n_incr=jnp.zeros(batch, jnp.int32),
    v_best_check=v0,
    reduced_check=jnp.ones(batch, bool),
  )

  def cond(c):
    return (c["i"] < num_steps) & ~jnp.all(c["found"] | done)

  def body(c):
    new = step(c)
    active = ~(c["found"] | done)
    return {k: (v if k in _SHARED else jnp.where(b(active, v), v, c[k])) for k, v in new.items()}

  def step(c):
    x, x_prev = c["x"], c["x_prev"]
    a = jnp.where(c["i"] == 0, 1.0, momentum).astype(images.dtype)
    z = proj(x + b(c["eta"], x) * _parts.steepest_step(c["g"], norm))
    x_new = proj(x + a * (z - x) + (1.0 - a) * (x - x_prev))
    v, s, g = evaluate(x_new)
    x_adv = jnp.where(b(s, x), x_new, c["x_adv"])
    v_adv = jnp.where(s, v, c["v_adv"])
    improved = v > c["v_best"]
    x_best = jnp.where(b(improved, x), x_new, c["x_best"])
    g_best = jnp.where(b(improved, x), g, c["g_best"])
    v_best = jnp.where(improved, v, c["v_best"])
    n_incr = c["n_incr"] + (v > c["v_prev"]).astype(jnp.int32)
    counter = c["counter"] + 1
    # Checkpoint: halve the step and go back to the best point where progress
    # stalled (conditions 1 and 2 of Croce & Hein 2020, Sec. 3.2).
    at_check = counter == c["period"]
    oscillating = n_incr.astype(images.dtype) <= c["period"].astype(images.dtype) * rho
    no_improvement = ~c["reduced_check"] & (c["v_best_check"] >= v_best)
    reduce = at_check & (oscillating | no_improvement)
    return dict(
      i=c["i"] + 1,
      x=jnp.where(b(reduce, x), x_best, x_new),
      x_prev=x,
      g=jnp.where(b(reduce, x), g_best, g),
      v_prev=v,
      eta=jnp.where(reduce, 0.5 * c["eta"], c["eta"]),
      x_best=x_best,
      v_best=v_best,
      g_best=g_best,
      x_adv=x_adv,
      v_adv=v_adv,
      found=c["found"] | s,
      counter=jnp.where(at_check, 0, counter),
      period=jnp.where(at_check, jnp.maximum(c["period"] - decrement, min_period), c["period"]),
      n_incr=jnp.where(at_check, 0, n_incr),
      v_best_check=jnp.where(at_check, v_best, c["v_best_check"]),
      reduced_check=jnp.where(at_check, oscillating | no_improvement, c["reduced_check"]),
    )

  c = jax.lax.while_loop(cond, body, init)
  found = c["found"]
  x = jnp.where(b(found, images), c["x_adv"], c["x_best"])
  v = jnp.where(found, c["v_adv"], c["v_best"])
  return x, found, v, _parts.is_zero(g0)


# The loop's scalars: functions of the iteration count alone, the same for every
# example (a frozen example no longer reads them).
_SHARED = ("i", "counter", "period")


def _keep(best, new):
  """Combines runs per example: the first success stays; else larger objective."""
  bx, bs, bv = best
  nx, ns, nv = new
  take = (ns & ~bs) | (~ns & ~bs & (nv > bv))
  return (jnp.where(_parts._bcast(take, bx), nx, bx), bs | ns, jnp.where(take, nv, bv))


def _check_dlr(loss: str, num_classes: int, targeted: bool) -> None:
  need = 4 if targeted else 3
  if loss == "dlr" and num_classes < need:
    raise ValueError(
      f"`loss`='dlr'{' (targeted)' if targeted else ''} needs at least "
      f"{need} classes; the model has {num_classes}."
    )


def _check_apgd(num_restarts, rho, momentum):
  _validate.check_positive_int(num_restarts, "num_restarts")
  if not 0.0 < float(rho) <= 1.0:
    raise ValueError(f"`rho` must be in (0, 1]; got {rho}.")
  if not 0.0 <= float(momentum) <= 1.0:
    raise ValueError(f"`momentum` must be in [0, 1]; got {momentum}.")


def _finish(images, x, v, zero_grad, logits_fn, success_fn) -> _parts.AttackResult:
  info = _parts.AttackInfo(success=success_fn(logits_fn(x)), objective=v, zero_grad=zero_grad)
  return _parts.attack_result(images, x, info)


def _apgd_core(
  keys,
  logits_fn,
  images,
  labels,
  *,
  eps,
  norm,
  num_steps,
  num_restarts,
  loss,
  targeted,
  targets,
  rho,
  momentum,
  bounds,
  done,
):
  """APGD with restarts from per-example keys [B] (restart r: `fold_in(keys[b], r)`);
  returns (x, found, value, zero_grad, objective, success_fn)."""
  tgt = targets if targeted else None
  objective = _parts.get_objective(loss, targeted=targeted)
  success_fn = functools.partial(_parts.is_successful, labels=labels, targets=tgt)
  run = functools.partial(
    _apgd_run,
    logits_fn=logits_fn,
    objective=objective,
    images=images,
    labels=labels,
    targets=tgt,
    success_fn=lambda lg: success_fn(lg),
    eps=eps,
    norm=norm,
    num_steps=num_steps,
    rho=rho,
    momentum=momentum,
    bounds=bounds,
  )
  x, found, v, zero_grad = run(_parts.fold_in_each(keys, 0), done=done)

  def restart(r, best):
    new = run(_parts.fold_in_each(keys, r), done=done | best[1])
    return _keep(best, new[:3])

  x, found, v = jax.lax.fori_loop(1, num_restarts, restart, (x, found, v))
  return x, found, v, zero_grad, objective, success_fn


def apgd_with_info(
  key: jax.Array,
  logits_fn,
  images: jax.Array,
  labels: jax.Array,
  *,
  eps,
  norm: str = "linf",
  num_steps: int = 100,
  num_restarts: int = 1,
  loss: str = "ce",
  targeted: bool = False,
  targets: Optional[jax.Array] = None,
  rho: float = 0.75,
  momentum: float = 0.75,
  bounds: Tuple[float, float] = (0.0, 1.0),
  example_ids: Optional[jax.Array] = None,
) -> _parts.AttackResult:
  """APGD (Croce & Hein 2020): parameter-free PGD with momentum and step halving.

  With `loss="ce"` this is APGD-CE, with `loss="dlr"` APGD-DLR of AutoAttack.
  For APGD-T (targeted DLR against the top-k classes) see `apgd_t`. Restarts
  run only while some example is still not successful; per example the first
  successful point is kept (the example then stops), else the point of largest
  objective.

  Args:
    key: a JAX PRNG key for the random starts; example b's start in restart r
      comes from `fold_in(fold_in(key, example_ids[b]), r)`.
    logits_fn: `images [B, H, W, C] -> logits [B, K]`; never updates state.
    images: float images [B, H, W, C] in `bounds`.
    labels: int true labels [B].
    eps: budget, a scalar or per-example [B], >= 0.
    norm: "linf" or "l2".
    num_steps: iterations per restart (100 in AutoAttack), >= 1.
    num_restarts: random restarts, >= 1.
    loss: "ce", "margin" or "dlr" (DLR needs >= 3 classes).
    targeted: reach `targets` instead of leaving `labels`.
    targets: int target classes [B], required when `targeted`.
    rho: checkpoint condition 1 threshold (0.75).
    momentum: alpha (0.75).
    bounds: the valid pixel range.
    example_ids: int [B], each example's identity for its random draws (e.g.
      its dataset index), so that its result does not depend on the batch;
      default `arange(B)`.

  Returns:
    An `AttackResult`: the adversarial images [B, H, W, C] of the input dtype
    inside the eps-ball and the bounds, under `stop_gradient`, and their
    `AttackInfo`.

  Raises:
    ValueError: for a bad argument, named in the message.
  """
  num_classes = _parts.check_attack_args(
    logits_fn, images, labels, eps=eps, norm=norm, num_steps=num_steps, targets=targets, loss=loss
  )
  _check_apgd(num_restarts, rho, momentum)
  if targeted and targets is None:
    raise ValueError("`targets` is required when `targeted=True`.")
  _check_dlr(loss, num_classes, targeted)
  keys = _parts.per_example_keys(key, example_ids, images.shape[0])
  x, _, v, zero_grad, _, success_fn = _apgd_core(
    keys,
    logits_fn,
    images,
    labels,
    eps=eps,
    norm=norm,
    num_steps=num_steps,
    num_restarts=num_restarts,
    loss=loss,
    targeted=targeted,
    targets=targets,
    rho=float(rho),
    momentum=float(momentum),
    bounds=tuple(bounds),
    done=jnp.zeros(images.shape[0], bool),
  )
  return _finish(images, x, v, zero_grad, logits_fn, success_fn)


apgd = _parts.images_only(apgd_with_info)


def _describe(label: str):
  """`options -> "APGD-CE-100 (5 restarts)"`: the report label with the budget."""

  def describe(o) -> str:
    r = o["num_restarts"]
    targets = f"{o['num_target_classes']} target classes" if "num_target_classes" in o else ""
    extras = [e for e in (targets, f"{r} restarts" if r > 1 else "") if e]
    tail = f" ({', '.join(extras)})" if extras else ""
    return f"{label}-{o['num_steps']}{_parts.norm_tag(o['norm'])}{tail}"

  return describe


_registry.register("apgd_ce", label="APGD-CE", fixed={"loss": "ce"}, describe=_describe("APGD-CE"))(
  apgd
)
_registry.register(
  "apgd_dlr", label="APGD-DLR", fixed={"loss": "dlr"}, describe=_describe("APGD-DLR")
)(apgd)


def top_k_targets(logits: jax.Array, labels: jax.Array, k: int) -> jax.Array:
  """The k highest-scoring classes other than the label, best first: [B, k].

  As in AutoAttack, the classes are ranked by the clean logits; if the clean
  prediction is wrong its top class is the label's competitor and is kept.
  """
  order = jnp.argsort(logits, axis=-1)[:, ::-1]
  # Push the label to the end, keep the order of the rest.
  is_label = order == labels[:, None]
  rank = jnp.argsort(is_label, axis=-1, stable=True)
  return jnp.take_along_axis(order, rank, axis=-1)[:, :k]


def _apgd_t_core(
  keys,
  logits_fn,
  images,
  labels,
  *,
  eps,
  norm,
  num_steps,
  num_restarts,
  num_target_classes,
  loss,
  rho,
  momentum,
  bounds,
  done,
  target_range=None,
):
  """APGD-T over the targets `range(*target_range)` (default all `num_target_classes`);
  target t, restart r of example b draws from `fold_in(keys[b], t * num_restarts + r)`,
  so a host driver can run the targets one at a time on the still-robust points."""
  targets_all = top_k_targets(logits_fn(images), labels, num_target_classes)
  objective = _parts.get_objective(loss, targeted=True)
  success_fn = functools.partial(_parts.is_successful, labels=labels, targets=None)

  def one_target(t):
    tgt = targets_all[:, t]
    run = functools.partial(
      _apgd_run,
      logits_fn=logits_fn,
      objective=objective,
      images=images,
      labels=labels,
      targets=tgt,
      success_fn=lambda lg: success_fn(lg),
      eps=eps,
      norm=norm,
      num_steps=num_steps,
      rho=rho,
      momentum=momentum,
      bounds=bounds,
    )

    def restart(r, carry):
      best, zg = carry
      k = _parts.fold_in_each(keys, t * num_restarts + r)
      x, s, v, zero_grad = run(k, done=done | best[1])
      zg = jnp.where((t == 0) & (r == 0), zero_grad, zg)
      return _keep(best, (x, s, v)), zg

    return restart

  batch = images.shape[0]
  best = (images, jnp.zeros(batch, bool), jnp.full((batch,), -jnp.inf, images.dtype))
  zg = jnp.zeros(batch, bool)

  def per_target(t, carry):
    return jax.lax.fori_loop(0, num_restarts, one_target(t), carry)

  start, stop = (0, num_target_classes) if target_range is None else target_range
  (x, found, v), zg = jax.lax.fori_loop(start, stop, per_target, (best, zg))
  return x, found, v, zg, objective, success_fn, targets_all


def apgd_t_with_info(
  key: jax.Array,
  logits_fn,
  images: jax.Array,
  labels: jax.Array,
  *,
  eps,
  norm: str = "linf",
  num_steps: int = 100,
  num_restarts: int = 1,
  num_target_classes: int = 9,
  loss: str = "dlr",
  rho: float = 0.75,
  momentum: float = 0.75,
  bounds: Tuple[float, float] = (0.0, 1.0),
  example_ids: Optional[jax.Array] = None,
) -> _parts.AttackResult:
  """APGD-T (Croce & Hein 2020): APGD with the targeted DLR loss, top-k targets.

  For each of the `num_target_classes` classes ranked highest by the clean
  logits (excluding the label) it runs targeted APGD (`num_restarts` times),
  only while some example is still correctly classified. Success means
  misclassification (any class), as in AutoAttack: the target only guides the
  search. Per example the first successful point is kept, else the point of
  largest objective.

  Args:
    key: a JAX PRNG key for the random starts; example b's start for target t
      and restart r comes from `fold_in(fold_in(key, example_ids[b]),
      t * num_restarts + r)`.
    logits_fn: `images [B, H, W, C] -> logits [B, K]`.
    images: float images [B, H, W, C] in `bounds`.
    labels: int true labels [B].
    eps: budget, a scalar or per-example [B], >= 0.
    norm: "linf" or "l2".
    num_steps: iterations per target and restart (100 in AutoAttack), >= 1.
    num_restarts: random restarts per target class, >= 1.
    num_target_classes: top-k target classes (9 in AutoAttack), capped at K - 1.
    loss: "dlr" (targeted DLR, needs >= 4 classes), "ce" or "margin".
    rho, momentum: the APGD constants (0.75, 0.75).
    bounds: the valid pixel range.
    example_ids: int [B], each example's identity for its random draws (e.g.
      its dataset index); default `arange(B)`.

  Returns:
    An `AttackResult`: the adversarial images [B, H, W, C] inside the eps-ball
    and the bounds, under `stop_gradient`, and their `AttackInfo` (objective:
    the targeted loss of the target class that produced the returned point).

  Raises:
    ValueError: for a bad argument, named in the message.
  """
  num_classes = _parts.check_attack_args(
    logits_fn, images, labels, eps=eps, norm=norm, num_steps=num_steps, loss=loss
  )
  _check_apgd(num_restarts, rho, momentum)
  _validate.check_positive_int(num_target_classes, "num_target_classes")
  _check_dlr(loss, num_classes, True)
  n_t = min(num_target_classes, num_classes - 1)
  keys = _parts.per_example_keys(key, example_ids, images.shape[0])
  x, _, v, zg, _, success_fn, _ = _apgd_t_core(
    keys,
    logits_fn,
    images,
    labels,
    eps=eps,
    norm=norm,
    num_steps=num_steps,
    num_restarts=num_restarts,
    num_target_classes=n_t,
    loss=loss,
    rho=float(rho),
    momentum=float(momentum),
    bounds=tuple(bounds),
    done=jnp.zeros(images.shape[0], bool),
  )
  return _finish(images, x, v, zg, logits_fn, success_fn)


apgd_t = _registry.register("apgd_t", label="APGD-T (DLR)", describe=_describe("APGD-T"))(
  _parts.images_only(apgd_t_with_info)
)
