"""Square attack (Andriushchenko, Croce, Flammarion & Hein 2020, "Square Attack:
a query-efficient black-box adversarial attack via random search", ECCV;
arXiv:1912.00049).

A score-based random search: it never uses gradients, only `logits_fn`. Linf:
start from vertical stripes of +-eps, then each query redraws one random square
window (side shrinking on the schedule of the paper) to +-eps per channel and
keeps it if the loss decreased. L2: the perturbation is a sum of "pseudo-
Gaussian" square blocks; each query moves mass between two windows while
keeping the norm at eps (Alg. 3 of the paper). Examples stop once successful.
"""

from typing import Optional, Tuple

import jax
import jax.numpy as jnp

from advjax import _validate
from advjax.attacks import _parts
from advjax.attacks import _registry

_P_THRESHOLDS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def p_selection(p_init: float, i, num_queries: int):
  """Fraction of pixels changed at query i: p_init halved at the paper's schedule.

  The iteration is rescaled to a 10,000-query budget; p is halved after 10, 50,
  200, 500, 1000, 2000, 4000, 6000 and 8000 (rescaled) queries.
  """
  it = jnp.floor(jnp.asarray(i, jnp.float32) / num_queries * 10000.0)
  halvings = sum((it > t).astype(jnp.float32) for t in _P_THRESHOLDS)
  return p_init / (2.0**halvings)


def _window_side(p, n_features, channels, side_max):
  s = jnp.round(jnp.sqrt(p * n_features / channels)).astype(jnp.int32)
  return jnp.clip(s, 1, side_max)


def _window(keys, h, w, s):
  """Per-example mask [B, H, W, 1] of an s x s window at a random position
  (example b's position drawn from `keys[b]`)."""
  kh, kw = _parts.split_each(keys)
  vh = _parts.draw_each(kh, lambda k: jax.random.randint(k, (1, 1, 1), 0, h - s + 1))
  vw = _parts.draw_each(kw, lambda k: jax.random.randint(k, (1, 1, 1), 0, w - s + 1))
  rows = jnp.arange(h)[None, :, None, None]
  cols = jnp.arange(w)[None, None, :, None]
  return (rows >= vh) & (rows < vh + s) & (cols >= vw) & (cols < vw + s)


def _rectangle_pert(height, width, r0, rows, cols, dtype):
  """Pseudo-Gaussian rectangle of Andriushchenko et al. 2020 (top at row r0).

  Concentric rectangular rings around the center (height // 2, width // 2);
  the value at ring distance d is sum_{n=d}^{N-1} 1 / (n + 1)^2 with
  N = max(height // 2, width // 2). Sizes may be traced; the grid is static.
  """
  ch = jnp.floor(height / 2.0)
  cw = jnp.floor(width / 2.0)
  n_rings = jnp.maximum(ch, cw)
  rr = rows - r0
  inside = (rr >= 0) & (rr < height) & (cols >= 0) & (cols < width)
  dist = jnp.maximum(jnp.abs(rr - ch), jnp.abs(cols - cw))
  size = rows.shape[0] + cols.shape[1] + 2
  tail = jnp.concatenate(
    [jnp.zeros(1, dtype), jnp.cumsum(1.0 / jnp.arange(1, size, dtype=dtype) ** 2)]
  )
  value = jnp.take(tail, n_rings.astype(jnp.int32)) - jnp.take(
    tail, jnp.minimum(dist, n_rings).astype(jnp.int32)
  )
  return jnp.where(inside, value, 0.0)


def _meta_pseudo_gaussian(h, w, s, dtype):
  """The s x s block of the L2 Square attack, placed top-left in an h x w grid.

  Upper half a pseudo-Gaussian rectangle, lower half its negative, normalized
  to unit L2 norm. `s` may be traced; the result has the static shape [h, w].
  """
  rows = jnp.arange(h, dtype=dtype)[:, None]
  cols = jnp.arange(w, dtype=dtype)[None, :]
  sf = jnp.asarray(s, dtype)
  half = jnp.floor(sf / 2.0)
  block = _rectangle_pert(half, sf, 0.0, rows, cols, dtype) - _rectangle_pert(
    sf - half, sf, half, rows, cols, dtype
  )
  return block / jnp.maximum(jnp.sqrt(jnp.sum(block**2)), _parts._TINY)


def _square_core(
  keys,
  logits_fn,
  images,
  labels,
  targets,
  objective,
  *,
  eps,
  norm,
  num_queries,
  p_init,
  bounds,
  done,
):
  """Returns (x, success, value) where value is the attacker's ascent value.

  Example b's draws come from `keys[b]` alone (per query, folded with its index), the
  window schedule depends on the query index alone, and an example that is
  successful or `done` is frozen: its result does not depend on the batch.
  """
  _, h, w, c = images.shape
  n_features = h * w * c
  side_max = max(min(h, w) - 1, 1)
  eps_b = _parts._bcast(eps, images)

  def evaluate(x):
    logits = logits_fn(x)
    return (
      -objective.ascent_value(logits, labels, targets),
      _parts.is_successful(logits, labels, targets),
    )

  def proj(x):
    return _parts.project(x, images, eps, norm, bounds)

  k_init, k_loop = _parts.split_each(keys)
  if norm == "linf":
    stripes = _parts.draw_each(k_init, lambda k: jax.random.rademacher(k, (1, w, c), images.dtype))
    x_best = proj(images + eps_b * stripes)
  else:
    x_best = proj(images + _l2_init(k_init, images, eps))
  loss_min, succ = evaluate(x_best)

  def cond(carry):
    i, _, _, succ = carry
    return (i < num_queries - 1) & ~jnp.all(succ | done)

  def body(carry):
    i, x_best, loss_min, succ = carry
    k_win, k_sign, k_win2 = _parts.split_each(_parts.fold_in_each(k_loop, i), 3)
    p = p_selection(p_init, i, num_queries)
    s = _window_side(p, n_features, c, side_max)
    if norm == "linf":
      mask = _window(k_win, h, w, s)
      sign = _parts.draw_each(k_sign, lambda k: jax.random.rademacher(k, (1, 1, c), images.dtype))
      # Redraw (flip) a window that would not change the image.
      same = jnp.all(jnp.where(mask, proj(images + eps_b * sign) == x_best, True), axis=(1, 2, 3))
      sign = jnp.where(_parts._bcast(same, sign), -sign, sign)
      x_new = proj(jnp.where(mask, images + eps_b * sign, x_best))
    else:
      s = jnp.minimum(jnp.maximum(s, 3), side_max)
      s = jnp.where(s % 2 == 0, jnp.maximum(s - 1, 1), s)
      x_new = proj(_l2_step(k_win, k_sign, k_win2, images, x_best, eps, s))
    loss_new, succ_new = evaluate(x_new)
    active = ~(succ | done)
    improved = active & (loss_new < loss_min)
    x_best = jnp.where(_parts._bcast(improved, images), x_new, x_best)
    loss_min = jnp.where(improved, loss_new, loss_min)
    succ = succ | (improved & succ_new)
    return i + 1, x_best, loss_min, succ

  _, x_best, loss_min, succ = jax.lax.while_loop(cond, body, (jnp.int32(0), x_best, loss_min, succ))
  return x_best, succ, -loss_min


def _l2_init(keys, images, eps):
  """L2 start of the Square attack: a grid of pseudo-Gaussian blocks of side
  H // 5 with random signs per block and channel (from per-example `keys`),
  scaled to norm eps."""
  _, h, w, c = images.shape
  s = max(h // 5, 1)
  block = _meta_pseudo_gaussian(s, s, s, images.dtype)
  nh, nw = -(-h // s), -(-w // s)
  signs = _parts.draw_each(keys, lambda k: jax.random.rademacher(k, (nh, nw, c), images.dtype))
  tiled = jnp.tile(block, (nh, nw))[None, :, :, None]
  up = jnp.repeat(jnp.repeat(signs, s, axis=1), s, axis=2)
  delta = (tiled * up)[:, :h, :w, :]
  return _parts.steepest_step(delta, "l2") * _parts._bcast(eps, images)


def _shift(grid, dh, dw):
  """Moves per-example [B, H, W, 1] arrays down by dh and right by dw rows/cols."""
  h, w = grid.shape[1], grid.shape[2]
  rows = (jnp.arange(h)[None, :] - dh[:, None]) % h  # [B, H]
  cols = (jnp.arange(w)[None, :] - dw[:, None]) % w  # [B, W]
  out = jnp.take_along_axis(grid, rows[:, :, None, None], axis=1)
  return jnp.take_along_axis(out, cols[:, None, :, None], axis=2)


def _l2_step(k_win, k_sign, k_win2, images, x_best, eps, s):
  """One proposal of the L2 Square attack (Andriushchenko et al. 2020, Alg. 3).

  Two random s x s windows W1, W2: W2 is cleared, W1 gets its old (normalized)
  content plus a pseudo-Gaussian block with a random sign per channel, rescaled
  per channel to the mass freed on W1 u W2 plus any unused budget; the whole
  perturbation is then rescaled to norm eps.
  """
  batch, h, w, c = images.shape
  dtype = images.dtype
  delta = x_best - images
  w1 = _window(k_win, h, w, s)  # [B, H, W, 1]
  w2 = _window(k_win2, h, w, s)
  per_channel = lambda a: jnp.sqrt(jnp.sum(a**2, axis=(1, 2), keepdims=True))  # noqa: E731
  norm_w1 = per_channel(jnp.where(w1, delta, 0.0))
  norm_w12 = per_channel(jnp.where(w1 | w2, delta, 0.0))
  norm_img = _parts._bcast(_parts.norm_per_example(delta, "l2"), delta)
  eps_b = _parts._bcast(eps, images)
  block = jnp.broadcast_to(_meta_pseudo_gaussian(h, w, s, dtype), (batch, h, w))
  if h == w:  # transposed with probability 1/2, per example
    upright = _parts.draw_each(_parts.fold_in_each(k_sign, 1), jax.random.bernoulli)
    block = jnp.where(upright[:, None, None], block, jnp.swapaxes(block, 1, 2))
  vh = jnp.argmax(jnp.any(w1[..., 0], axis=2), axis=1)
  vw = jnp.argmax(jnp.any(w1[..., 0], axis=1), axis=1)
  placed = _shift(block[..., None], vh, vw)
  signs = _parts.draw_each(k_sign, lambda k: jax.random.rademacher(k, (1, 1, c), dtype))
  new = jnp.where(w1, placed * signs + delta / (norm_w1 + 1e-12), 0.0)
  target = jnp.sqrt(jnp.maximum(eps_b**2 - norm_img**2, 0.0) / c + norm_w12**2)
  new = new / jnp.maximum(per_channel(new), _parts._TINY) * target
  delta = jnp.where(w1, new, jnp.where(w2, 0.0, delta))
  return images + _parts.steepest_step(delta, "l2") * eps_b


def square_with_info(
  key: jax.Array,
  logits_fn,
  images: jax.Array,
  labels: jax.Array,
  *,
  eps,
  norm: str = "linf",
  num_queries: int = 5000,
  p_init: float = 0.8,
  loss: str = "margin",
  targeted: bool = False,
  targets: Optional[jax.Array] = None,
  bounds: Tuple[float, float] = (0.0, 1.0),
  example_ids: Optional[jax.Array] = None,
) -> _parts.AttackResult:
  """Square attack: score-based random search inside the eps-ball.

  Linf follows Alg. 1 of Andriushchenko et al. 2020 with per-example windows;
  L2 follows their Alg. 3 (pseudo-Gaussian blocks, mass moved between two
  windows, the norm kept at eps). The window side
  is `round(sqrt(p * H * W * C / C))`, p following `p_selection`. Each example
  stops once successful; the loop ends when all are, or after `num_queries`
  forward passes (the start counts as one).

  Args:
    key: a JAX PRNG key; example b's stripes, windows and signs come from
      `fold_in(key, example_ids[b])` (then the query index).
    logits_fn: `images [B, H, W, C] -> logits [B, K]` (only its values are used).
    images: float images [B, H, W, C] in `bounds`.
    labels: int true labels [B].
    eps: budget, a scalar or per-example [B], >= 0.
    norm: "linf" or "l2".
    num_queries: forward passes per example (5000 in AutoAttack), >= 1.
    p_init: initial fraction of changed pixels (0.8 in AutoAttack for Linf).
    loss: "margin" (the paper's) or "ce"; minimized as the attacker's loss.
    targeted: reach `targets` instead of leaving `labels`.
    targets: int target classes [B], required when `targeted`.
    bounds: the valid pixel range.
    example_ids: int [B], each example's identity for its random draws (e.g.
      its dataset index), so that its result does not depend on the batch;
      default `arange(B)`.

  Returns:
    An `AttackResult`: the adversarial images [B, H, W, C] inside the eps-ball
    and the bounds, under `stop_gradient`, and their `AttackInfo`; its
    `zero_grad` is the gradient check at the clean images (informational: the
    attack needs no gradient).

  Raises:
    ValueError: for a bad argument, named in the message.
  """
  _parts.check_attack_args(
    logits_fn, images, labels, eps=eps, norm=norm, targets=targets, loss=loss
  )
  _validate.check_positive_int(num_queries, "num_queries")
  if not 0.0 < float(p_init) <= 1.0:
    raise ValueError(f"`p_init` must be in (0, 1]; got {p_init}.")
  if targeted and targets is None:
    raise ValueError("`targets` is required when `targeted=True`.")
  tgt = targets if targeted else None
  objective = _parts.get_objective(loss, targeted=targeted)
  keys = _parts.per_example_keys(key, example_ids, images.shape[0])
  x, _, v = _square_core(
    keys,
    logits_fn,
    images,
    labels,
    tgt,
    objective,
    eps=eps,
    norm=norm,
    num_queries=num_queries,
    p_init=float(p_init),
    bounds=tuple(bounds),
    done=jnp.zeros(images.shape[0], bool),
  )
  _, _, g = _parts.value_and_input_grad(
    logits_fn, _parts.get_objective("ce", targeted=targeted), images, labels, tgt
  )
  return _parts.attack_result(
    images,
    x,
    _parts.AttackInfo(
      success=_parts.is_successful(logits_fn(x), labels, tgt),
      objective=v,
      zero_grad=_parts.is_zero(g),
    ),
  )


square = _registry.register(
  "square",
  label="Square",
  describe=lambda o: f"Square{_parts.norm_tag(o['norm'])} ({o['num_queries']} queries)",
)(_parts.images_only(square_with_info))
