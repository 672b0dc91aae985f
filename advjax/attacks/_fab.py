"""FAB, the fast adaptive boundary attack (Croce & Hein 2020, "Minimally distorted
adversarial examples with a fast adaptive boundary attack", ICML; arXiv:1907.02044).

FAB is a minimum-norm attack. At the current iterate x it linearizes the
decision boundary between the true class y and a class j (untargeted: the j
whose linearized boundary is closest in the chosen norm; targeted: the target
class), `f_j - f_y + <grad(f_j - f_y), z - x> = 0`, and projects both x and
the original image x0 onto that hyperplane intersected with the box (d1, d2).
The next iterate is a biased step towards x0,

  x <- clip((1 - a) (x + eta d1) + a (x0 + eta d2)),  a = min(|d1| / (|d1| + |d2|), a_max),

and whenever x is adversarial it is recorded (if its norm is the smallest so
far) and pulled back towards x0, `x <- x0 + beta (x - x0)`. Defaults are the
paper's and AutoAttack's: 100 iterations, a_max = 0.1, eta = 1.05, beta = 0.9;
FAB-T attacks the 9 classes ranked highest by the clean logits, one after the
other. Restarts after the first start at a random point at half the best norm
found so far (or eps) around x0.

The projection onto a hyperplane intersected with a box is solved exactly
(bisection to the piece, then the closed form on it; the reference sorts the
coordinates' break points instead, which is slow on XLA:CPU); no library
provides it, so it is written here.
"""

from typing import Optional, Tuple

import jax
import jax.numpy as jnp

from advjax import _validate
from advjax.attacks import _apgd
from advjax.attacks import _parts
from advjax.attacks import _registry

_NOT_FOUND = jnp.inf


_BISECTION_STEPS = 40


def project_hyperplane_box(points, w, b, norm: str, bounds=(0.0, 1.0)):
  """The smallest step onto the hyperplane `<w, z> = b` that stays in the box.

  Solves `min ||d||  s.t.  <w, p + d> = b,  lo <= p + d <= hi` per row, in the
  Linf or L2 norm. Both have the solution `d_i = -s_i min(lam c_i, r_i)` with
  s = the sign that moves towards the plane, r_i the room to the box in that
  direction and c_i = 1 (Linf) or |w_i| (L2). The distance covered,
  `D(lam) = sum_i |w_i| min(lam c_i, r_i)`, is piecewise linear and increasing
  in lam; the reference sorts the break points `r_i / c_i` to find the piece,
  but a sort is slow on XLA:CPU, so lam is bracketed by bisection and then
  solved exactly on its piece (the coordinates at the box are known from the
  bracket). When the box does not reach the plane, the result is the box
  corner nearest to it.

  Args:
    points: [N, D] points inside the box.
    w: [N, D] normals.
    b: [N] offsets.
    norm: "linf" or "l2".
    bounds: the box (lo, hi).

  Returns:
    d [N, D]: the step; zero where `w` is zero.
  """
  lo, hi = bounds
  gap = jnp.sum(w * points, axis=-1) - b  # > 0: <w, z> must decrease
  sgn = jnp.where(gap >= 0, 1.0, -1.0).astype(points.dtype)
  w = w * sgn[:, None]
  need = (gap * sgn)[:, None]  # the decrease needed, >= 0
  aw = jnp.abs(w)
  room = jnp.where(w > 0, points - lo, hi - points)  # movement along -sign(w)
  room = jnp.where(aw > 0, jnp.maximum(room, 0.0), 0.0)
  c = jnp.ones_like(aw) if norm == "linf" else aw
  brk = jnp.where(aw > 0, room / jnp.where(aw > 0, c, 1.0), 0.0)  # where i hits the box
  reach = lambda lam: jnp.sum(aw * jnp.minimum(lam * c, room), -1, keepdims=True)  # noqa: E731
  top = jnp.max(brk, -1, keepdims=True)
  feasible = reach(top) >= need

  def bisect(_, bracket):
    a, z = bracket
    mid = 0.5 * (a + z)
    below = reach(mid) < need
    return jnp.where(below, mid, a), jnp.where(below, z, mid)

  a, z = jax.lax.fori_loop(0, _BISECTION_STEPS, bisect, (jnp.zeros_like(top), top))
  # Exact on the piece: coordinates with break point <= a are at the box.
  at_box = brk <= a
  covered = jnp.sum(jnp.where(at_box, aw * room, 0.0), -1, keepdims=True)
  slope = jnp.sum(jnp.where(at_box, 0.0, aw * c), -1, keepdims=True)
  lam = jnp.clip((need - covered) / jnp.maximum(slope, 1e-30), a, z)
  lam = jnp.where(feasible, lam, jnp.inf)  # unreachable: the corner
  d = -jnp.sign(w) * jnp.minimum(lam * c, room)
  return jnp.where(aw > 0, d, 0.0)


def _boundary(logits_fn, x, labels, targets):
  """Logit differences f_j - f_y [B, J] and their input gradients [B, J, D].

  Targeted: J = 1, j = the target. Untargeted: J = K, with the label's own
  column to be excluded by the caller (its difference is 0).
  """
  logits, vjp = jax.vjp(logits_fn, x)
  num_classes = logits.shape[-1]
  y1 = jax.nn.one_hot(labels, num_classes, dtype=logits.dtype)
  if targets is not None:
    cot = jax.nn.one_hot(targets, num_classes, dtype=logits.dtype) - y1
    g = vjp(cot)[0]
    df = jnp.sum(logits * cot, -1, keepdims=True)
    return df, g.reshape(g.shape[0], 1, -1)
  eye = jnp.eye(num_classes, dtype=logits.dtype)
  cots = eye[:, None, :] - y1[None]  # [K, B, K]
  g = jax.vmap(lambda ct: vjp(ct)[0])(cots)  # [K, B, ...]
  df = logits - jnp.sum(logits * y1, -1, keepdims=True)
  return df, jnp.moveaxis(g.reshape(num_classes, g.shape[1], -1), 0, 1)


def _fab_run(
  keys,
  logits_fn,
  images,
  labels,
  targets,
  *,
  norm,
  num_steps,
  alpha_max,
  eta,
  beta,
  bounds,
  random_start,
  start_radius,
  stop_norm,
  best,
):
  """One FAB run from the clean image or a random start; improves `best`.

  Args:
    keys: [B] per-example keys of the random start.
    best: (images [B, ...], norms [B]) the smallest adversarials so far
      (norm inf where none).
    start_radius: [B] the radius of the random start (when `random_start`).
    stop_norm: [B] the loop ends once every example has an adversarial of norm
      <= stop_norm (-inf: never; AutoAttack passes eps and inf for points that
      are done). Such an example is frozen from then on, so stopping the loop
      early changes no example's result, whatever the batch.

  Returns:
    (best images, best norms, zero_grad [B] at the start point).
  """
  batch = images.shape[0]
  x0 = images.reshape(batch, -1)
  # The random start on the sphere of half the radius (APGD's start, as the reference).
  x1 = (
    _apgd.init_apgd_each(keys, images, 0.5 * start_radius, norm, bounds).reshape(batch, -1)
    if random_start
    else x0
  )
  shape = images.shape
  f = lambda v: logits_fn(v.reshape(shape))  # noqa: E731

  def cond(c):
    i, _, _, res, _ = c
    return (i < num_steps) & ~jnp.all(res <= stop_norm)

  def body(c):
    i, x1, adv, res, zg = c
    active = ~(res <= stop_norm)
    _, x1_n, adv_n, res_n, zg_n = step(c)
    keep = lambda new, old: jnp.where(_parts._bcast(active, new), new, old)  # noqa: E731
    return i + 1, keep(x1_n, x1), keep(adv_n, adv), keep(res_n, res), keep(zg_n, zg)

  def step(c):
    i, x1, adv, res, zg = c
    df, dg = _boundary(f, x1, labels, targets)
    if targets is None:  # the closest linearized boundary among j != y
      dual = jnp.sum(jnp.abs(dg), -1) if norm == "linf" else jnp.sqrt(jnp.sum(dg * dg, -1))
      dist = jnp.abs(df) / (dual + 1e-12)
      dist = jnp.where(jax.nn.one_hot(labels, df.shape[-1], dtype=bool), jnp.inf, dist)
      j = jnp.argmin(dist, -1)
      df = jnp.take_along_axis(df, j[:, None], -1)[:, 0]
      w = jnp.take_along_axis(dg, j[:, None, None], 1)[:, 0]
    else:
      df, w = df[:, 0], dg[:, 0]
    zg = jnp.where(i == 0, jnp.all(w == 0, -1), zg)
    b = -df + jnp.sum(w * x1, -1)
    d = project_hyperplane_box(
      jnp.concatenate([x1, x0]), jnp.concatenate([w, w]), jnp.concatenate([b, b]), norm, bounds
    )
    d1, d2 = d[:batch], d[batch:]
    a = jnp.maximum(_parts.norm_per_example(d, norm), 1e-8)
    a1, a2 = a[:batch], a[batch:]
    alpha = jnp.clip(a1 / (a1 + a2), 0.0, alpha_max)[:, None]
    x1 = jnp.clip((x1 + eta * d1) * (1 - alpha) + (x0 + eta * d2) * alpha, *bounds)
    is_adv = jnp.argmax(f(x1), -1) != labels
    t = _parts.norm_per_example(x1 - x0, norm)
    better = is_adv & (t < res)
    adv = jnp.where(better[:, None], x1, adv)
    res = jnp.where(better, t, res)
    x1 = jnp.where(is_adv[:, None], x0 + (x1 - x0) * beta, x1)
    return i + 1, x1, adv, res, zg

  adv, res = best
  init = (jnp.int32(0), x1, adv.reshape(batch, -1), res, jnp.zeros(batch, bool))
  _, _, adv, res, zg = jax.lax.while_loop(cond, body, init)
  return adv.reshape(shape), res, zg


def _fab_core(
  keys,
  logits_fn,
  images,
  labels,
  *,
  norm,
  num_steps,
  num_restarts,
  eps,
  targeted,
  num_target_classes,
  alpha_max,
  eta,
  beta,
  bounds,
  stop_norm,
  target_range=None,
):
  """FAB / FAB-T over restarts (and target classes `range(*target_range)`, default all
  `num_target_classes`) from per-example keys [B]: a `MinNormResult` without `success`
  (None). Points the model already misclassifies get norm 0 and their own image.

  Target t, restart r of example b draws from `fold_in(fold_in(keys[b], t), r)`. For a
  point that earlier targets left without an adversarial within `eps` (= `stop_norm` in
  AutoAttack), what they found beyond `eps` changes neither its random starts (radius
  min(best, eps) = eps) nor the first adversarial within `eps`, at which it stops; so a
  host driver can run the targets one at a time on the points not yet broken."""
  batch = images.shape[0]
  logits = logits_fn(images)
  wrong = jnp.argmax(logits, -1) != labels
  best = (images, jnp.where(wrong, 0.0, _NOT_FOUND).astype(images.dtype))
  stop = jnp.where(wrong, jnp.inf, stop_norm)
  eps = jnp.broadcast_to(jnp.asarray(eps, images.dtype), (batch,))
  kw = dict(norm=norm, num_steps=num_steps, alpha_max=alpha_max, eta=eta, beta=beta, bounds=bounds)

  def run(k, r, targets, best):
    x, res, zg_r = _fab_run(
      k,
      logits_fn,
      images,
      labels,
      targets,
      random_start=r > 0,
      start_radius=jnp.minimum(best[1], eps),
      stop_norm=stop,
      best=best,
      **kw,
    )
    return (x, res), zg_r

  if not targeted:
    best, zg = run(_parts.fold_in_each(keys, 0), 0, None, best)
    for r in range(1, num_restarts):
      best, _ = run(_parts.fold_in_each(keys, r), r, None, best)
    return _parts.MinNormResult(best[0], best[1], None, zg)

  targets_all = _apgd.top_k_targets(logits, labels, num_target_classes)

  def per_target(ti, carry):
    best, zg = carry
    targets = targets_all[:, ti]
    for r in range(num_restarts):
      k = _parts.fold_in_each(_parts.fold_in_each(keys, ti), r)
      best, zg_r = run(k, r, targets, best)
      zg = jnp.where((ti == 0) & (r == 0), zg_r, zg)
    return best, zg

  start, stop_target = (0, num_target_classes) if target_range is None else target_range
  best, zg = jax.lax.fori_loop(start, stop_target, per_target, (best, jnp.zeros(batch, bool)))
  return _parts.MinNormResult(best[0], best[1], None, zg)


def within_eps(result: _parts.MinNormResult, images: jax.Array, eps) -> jax.Array:
  """A minimum-norm result as an eps-bounded attack: per example the adversarial
  where its norm is <= eps (scalar or [B]), else the original image [B, H, W, C]."""
  return jnp.where(_parts._bcast(result.norms <= eps, images), result.images, images)


def _check_fab(num_restarts, eps, alpha_max, eta, beta):
  _validate.check_positive_int(num_restarts, "num_restarts")
  if num_restarts > 1 and eps is None:
    raise ValueError(
      "`eps` (the radius of the random restarts) is required when `num_restarts` > 1."
    )
  if not 0.0 <= float(alpha_max) <= 1.0:
    raise ValueError(f"`alpha_max` must be in [0, 1]; got {alpha_max}.")
  if float(eta) < 1.0:
    raise ValueError(f"`eta` (overshoot) must be >= 1; got {eta}.")
  if not 0.0 < float(beta) <= 1.0:
    raise ValueError(f"`beta` (backward step) must be in (0, 1]; got {beta}.")


def fab(
  key: jax.Array,
  logits_fn,
  images: jax.Array,
  labels: jax.Array,
  *,
  norm: str = "linf",
  num_steps: int = 100,
  num_restarts: int = 1,
  eps=None,
  targeted: bool = False,
  num_target_classes: int = 9,
  alpha_max: float = 0.1,
  eta: float = 1.05,
  beta: float = 0.9,
  bounds: Tuple[float, float] = (0.0, 1.0),
  example_ids: Optional[jax.Array] = None,
) -> _parts.MinNormResult:
  """FAB (Croce & Hein 2020): the smallest Linf or L2 adversarial found per example.

  See the module docstring for the iteration. Untargeted FAB linearizes every
  class's boundary (one backward pass per class and iteration); FAB-T
  (`targeted=True`) linearizes only the boundary to each of the
  `num_target_classes` classes ranked highest by the clean logits, in turn, and
  keeps the smallest adversarial over all of them. Success means
  misclassification, as in AutoAttack. `within_eps` reads the result as an
  eps-bounded attack (what `autoattack`'s "fab_t" stage does).

  Args:
    key: a JAX PRNG key for the random restarts; example b's start for target t
      and restart r comes from `fold_in(fold_in(fold_in(key, example_ids[b]), t),
      r)` (untargeted: `fold_in(fold_in(key, example_ids[b]), r)`).
    logits_fn: `images [B, H, W, C] -> logits [B, K]`.
    images: float images [B, H, W, C] in `bounds`.
    labels: int true labels [B].
    norm: "linf" or "l2", the norm minimized.
    num_steps: iterations per run (100 in AutoAttack), >= 1.
    num_restarts: runs per target (the first from the image, the others from
      random points at half of min(best norm, eps)), >= 1.
    eps: the restarts' radius, a scalar or per-example [B] (needed when
      `num_restarts` > 1).
    targeted: FAB-T.
    num_target_classes: FAB-T's targets (9 in AutoAttack), capped at K - 1.
    alpha_max, eta, beta: the paper's constants (0.1, 1.05, 0.9).
    bounds: the valid pixel range.
    example_ids: int [B], each example's identity for its random draws (e.g.
      its dataset index); default `arange(B)`.

  Returns:
    A `MinNormResult`: images (the smallest adversarial found, else the
    original), norms (inf where none was found; 0 for clean mistakes),
    success (re-predicted), zero_grad (the boundary's gradient was exactly zero
    at the start).

  Raises:
    ValueError: for a bad argument, named in the message.
  """
  num_classes = _parts.check_attack_args(
    logits_fn, images, labels, eps=eps, norm=norm, num_steps=num_steps
  )
  _check_fab(num_restarts, eps, alpha_max, eta, beta)
  _validate.check_positive_int(num_target_classes, "num_target_classes")
  if num_classes < 2:
    raise ValueError(f"`logits_fn` must return at least 2 classes; got {num_classes}.")
  keys = _parts.per_example_keys(key, example_ids, images.shape[0])
  result = _fab_core(
    keys,
    logits_fn,
    images,
    labels,
    norm=norm,
    num_steps=num_steps,
    num_restarts=num_restarts,
    eps=0.0 if eps is None else eps,
    targeted=targeted,
    num_target_classes=min(num_target_classes, num_classes - 1),
    alpha_max=float(alpha_max),
    eta=float(eta),
    beta=float(beta),
    bounds=tuple(bounds),
    stop_norm=-jnp.inf,
  )
  x = result.images.astype(images.dtype)
  result = result._replace(images=x, success=_parts.is_successful(logits_fn(x), labels))
  return jax.tree_util.tree_map(jax.lax.stop_gradient, result)


def fab_t(
  key: jax.Array,
  logits_fn,
  images: jax.Array,
  labels: jax.Array,
  *,
  norm: str = "linf",
  num_steps: int = 100,
  num_restarts: int = 1,
  eps=None,
  num_target_classes: int = 9,
  alpha_max: float = 0.1,
  eta: float = 1.05,
  beta: float = 0.9,
  bounds: Tuple[float, float] = (0.0, 1.0),
  example_ids: Optional[jax.Array] = None,
) -> _parts.MinNormResult:
  """FAB-T: `fab(..., targeted=True)`, the variant in AutoAttack's standard suite.

  Args, Returns, Raises: as `fab`.
  """
  return fab(
    key,
    logits_fn,
    images,
    labels,
    norm=norm,
    num_steps=num_steps,
    num_restarts=num_restarts,
    eps=eps,
    targeted=True,
    num_target_classes=num_target_classes,
    alpha_max=alpha_max,
    eta=eta,
    beta=beta,
    bounds=bounds,
    example_ids=example_ids,
  )


def _within_eps_output(result, images, eps):
  return within_eps(result, images, eps)


def _describe(label: str):
  """`options -> "FAB-T-100 (9 target classes, within eps)"`."""

  def describe(o) -> str:
    extras = [f"{o['num_target_classes']} target classes"] if o.get("targeted", True) else []
    if o["num_restarts"] > 1:
      extras.append(f"{o['num_restarts']} restarts")
    inner = ", ".join(extras + ["within eps"])
    return f"{label}-{o['num_steps']}{_parts.norm_tag(o['norm'])} ({inner})"

  return describe


_registry.register(
  "fab", label="FAB (within eps)", output=_within_eps_output, describe=_describe("FAB")
)(fab)
_registry.register(
  "fab_t", label="FAB-T (within eps)", output=_within_eps_output, describe=_describe("FAB-T")
)(fab_t)
