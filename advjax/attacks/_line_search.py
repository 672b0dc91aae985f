"""Minimal adversarial examples along given directions and scaled hard positives.

Rozsa, Rudd & Boult 2016, "Adversarial Diversity and Hard Positive
Generation", Sec. 4: along a perturbation direction (FGS, FGV, hot/cold), a
line search with increasing step sizes finds the first scale that changes the
label, and a binary search in the last interval finds the minimal adversarial;
every image is quantized to integer pixel values (k/255). Hard positives are the
minimal perturbation scaled by 1.05 or 1.10.

Scale convention: each direction is divided by its Linf norm, so a scale s adds
at most s to any pixel (before clipping to [0, 1] and quantization).
"""

import math
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp

from advjax import _validate
from advjax import metrics
from advjax.attacks import _parts


class MinimalAdversarial(NamedTuple):
  """Result of `minimal_adversarial`; leading axes [B, D] (image, direction).

  Attributes:
    scale: [B, D] minimal scale found (0 where not `success`).
    images: [B, D, H, W, C] the minimal adversarial images on the k/levels grid
      (the quantized original where not `success`).
    success: [B, D] bool, the original was classified correctly and some scale
      <= max_scale changes the label.
    pass_score: [B, D] PASS(adversarial, original) (1 where not `success`).
    l2: [B, D] L2 norm per pixel of the perturbation.
    linf: [B, D] Linf norm of the perturbation.
    tolerance: [B, D] width of the last binary-search interval: the label does
      not change at `scale - tolerance`.
    predictions: [B, D] int32 predicted class of `images`.
  """

  scale: jax.Array
  images: jax.Array
  success: jax.Array
  pass_score: jax.Array
  l2: jax.Array
  linf: jax.Array
  tolerance: jax.Array
  predictions: jax.Array


class HardPositives(NamedTuple):
  """Result of `hard_positives`; leading axes [B, D, S] (image, direction, factor).

  Attributes:
    images: [B, D, S, H, W, C] the perturbation of the minimal adversarial
      scaled by each factor, clipped, on the k/levels grid.
    factors: [S] the scaling factors.
    scale: [B, D, S] factor * minimal scale.
    valid: [B, D, S] bool, the minimal adversarial exists (`success`).
    misclassified: [B, D, S] bool, the model gets the label wrong.
    pass_score, l2, linf: [B, D, S] PASS, L2 norm per pixel, Linf norm.
    predictions: [B, D, S] int32.
    minimal: the `MinimalAdversarial` they were scaled from.
  """

  images: jax.Array
  factors: jax.Array
  scale: jax.Array
  valid: jax.Array
  misclassified: jax.Array
  pass_score: jax.Array
  l2: jax.Array
  linf: jax.Array
  predictions: jax.Array
  minimal: MinimalAdversarial


def line_scales(init_scale: float, growth: float, max_scale: float) -> Sequence[float]:
  """The increasing step sizes of the line search: init * growth^k, capped at max."""
  if not (init_scale > 0 and growth > 1 and max_scale >= init_scale):
    raise ValueError(
      f"need init_scale > 0, growth > 1 and max_scale >= init_scale; got "
      f"{init_scale}, {growth}, {max_scale}."
    )
  n = int(math.ceil(math.log(max_scale / init_scale) / math.log(growth) - 1e-9)) + 1
  return [min(init_scale * growth**k, max_scale) for k in range(n)]


def _unit_linf(d):
  n = _parts._bcast(_parts.norm_per_example(d, "linf"), d)
  return jnp.where(n > 0, d / jnp.maximum(n, 1e-30), 0.0)


def _perturb(x, d, s, levels):
  return _parts.quantize(_parts.clip_box(x + _parts._bcast(s, x) * d), levels)


def _check(logits_fn, images, labels, directions):
  _parts.check_attack_args(logits_fn, images, labels)
  shape = jnp.shape(directions)
  if len(shape) != 5 or shape[0] != images.shape[0] or tuple(shape[2:]) != images.shape[1:]:
    raise ValueError(
      f"`directions` must have shape [batch, num_directions, H, W, C] = "
      f"[{images.shape[0]}, D, {', '.join(map(str, images.shape[1:]))}]; "
      f"got {tuple(shape)}."
    )
  if not jnp.issubdtype(jnp.result_type(directions), jnp.floating):
    raise ValueError(f"`directions` must be floating point; got {jnp.result_type(directions)}.")


def _norms_and_pass(adv, orig, compute_pass, pass_iterations):
  l2, linf = metrics.l2_per_pixel(adv, orig), metrics.linf_norm(adv, orig)
  if compute_pass:
    ps = metrics.pass_score(adv, orig, num_iterations=pass_iterations)
  else:
    ps = jnp.full(adv.shape[:1], jnp.nan, jnp.float32)
  return ps, l2, linf


def minimal_adversarial(
  logits_fn,
  images: jax.Array,
  labels: jax.Array,
  directions: jax.Array,
  *,
  init_scale: float = 1.0 / 255,
  growth: float = 2.0,
  max_scale: float = 1.0,
  num_binary_steps: int = 10,
  levels: int = 255,
  compute_pass: bool = True,
  pass_iterations: int = 50,
) -> MinimalAdversarial:
  """Minimal adversarial example along each direction (line + binary search).

  Each direction d is normalized to unit Linf norm; the candidate at scale s is
  `quantize(clip(x + s * d, 0, 1))` on the k/levels grid. The line search tries
  s = init_scale * growth^k (capped at max_scale) and stops at the first scale
  whose prediction differs from the label; `num_binary_steps` bisections of the
  last interval [previous scale, that scale] keep the invariant "label kept at
  the lower end, changed at the upper end", so the returned scale changes the
  label and `scale - tolerance` does not. Rozsa, Rudd & Boult 2016, Sec. 4.
  Batched over images and directions; jit-able (wrap it with the model fixed,
  e.g. `jax.jit(functools.partial(minimal_adversarial, logits_fn))`).

  Args:
    logits_fn: `images [N, H, W, C] -> logits [N, K]`, examples independent.
    images: float images [B, H, W, C] in [0, 1].
    labels: int true classes [B].
    directions: float [B, D, H, W, C], e.g. from `hot_cold_directions`.
    init_scale: first line-search scale (Linf units, default one gray level).
    growth: factor between line-search scales (> 1).
    max_scale: largest scale tried.
    num_binary_steps: bisections of the last interval.
    levels: quantization levels (255: 8-bit images).
    compute_pass: also compute PASS (the ECC alignment dominates the cost).
    pass_iterations: ECC iterations for PASS.

  Returns:
    A `MinimalAdversarial` with leading axes [B, D]. Originals that are already
    misclassified, and directions that never change the label up to max_scale,
    have `success=False`, scale 0 and the original image.

  Raises:
    ValueError: for bad images, labels, directions or search parameters.
  """
  _check(logits_fn, images, labels, directions)
  _validate.check_positive_int(num_binary_steps, "num_binary_steps")
  _validate.check_positive_int(levels, "levels")
  scales = jnp.asarray(line_scales(init_scale, growth, max_scale), jnp.float32)
  b, nd = directions.shape[:2]
  n = b * nd
  x = jnp.repeat(images.astype(jnp.float32), nd, axis=0)
  y = jnp.repeat(labels, nd, axis=0)
  d = _unit_linf(directions.reshape((n,) + directions.shape[2:]).astype(jnp.float32))
  x0 = _parts.quantize(x, levels)

  def flips(s):
    return jnp.argmax(logits_fn(_perturb(x, d, s, levels)), axis=-1) != y

  clean_ok = jnp.argmax(logits_fn(x0), axis=-1) == y
  line = jax.lax.map(lambda s: flips(jnp.full((n,), s)), scales)  # [L, N]
  found = jnp.any(line, axis=0) & clean_ok
  first = jnp.argmax(line, axis=0)
  hi = scales[first]
  lo = jnp.where(first > 0, scales[jnp.maximum(first - 1, 0)], 0.0)

  def bisect(_, lohi):
    lo, hi = lohi
    mid = 0.5 * (lo + hi)
    f = flips(mid)
    return jnp.where(f, lo, mid), jnp.where(f, mid, hi)

  lo, hi = jax.lax.fori_loop(0, num_binary_steps, bisect, (lo, hi))
  scale = jnp.where(found, hi, 0.0)
  adv = jnp.where(found[:, None, None, None], _perturb(x, d, scale, levels), x0)
  preds = jnp.argmax(logits_fn(adv), axis=-1).astype(jnp.int32)
  ps, l2, linf = _norms_and_pass(adv, x0, compute_pass, pass_iterations)
  ps = jnp.where(found, ps, 1.0)
  out = MinimalAdversarial(
    scale=scale,
    images=adv,
    success=found,
    pass_score=ps,
    l2=l2,
    linf=linf,
    tolerance=jnp.where(found, hi - lo, 0.0),
    predictions=preds,
  )
  out = jax.tree_util.tree_map(lambda a: a.reshape((b, nd) + a.shape[1:]), out)
  return jax.tree_util.tree_map(jax.lax.stop_gradient, out)


def hard_positives(
  logits_fn,
  images: jax.Array,
  labels: jax.Array,
  directions: jax.Array,
  *,
  scales: Sequence[float] = (1.05, 1.10),
  minimal: MinimalAdversarial = None,
  levels: int = 255,
  compute_pass: bool = True,
  pass_iterations: int = 50,
  **search_kwargs,
) -> HardPositives:
  """Hard positives: minimal adversarial perturbations scaled beyond the boundary.

  For each direction, the minimal scale s* from `minimal_adversarial` is
  multiplied by each factor (Rozsa et al. 2016 use 1.05 and 1.10; 1.0 gives the
  minimal adversarial itself) and `quantize(clip(x + factor * s* * d))` is
  returned. HC-D-9-1.05 in their Table 1 is `hot_cold_directions(num_hot=9)`
  with `scales=(1.05,)`.

  Args:
    logits_fn: `images [N, H, W, C] -> logits [N, K]`.
    images: float images [B, H, W, C] in [0, 1].
    labels: int true classes [B].
    directions: float [B, D, H, W, C].
    scales: the scaling factors (each > 0).
    minimal: a precomputed `minimal_adversarial` result for these inputs.
    levels: quantization levels.
    compute_pass: compute PASS of the hard positives.
    pass_iterations: ECC iterations for PASS.
    **search_kwargs: passed to `minimal_adversarial` when `minimal` is None.

  Returns:
    A `HardPositives` with leading axes [B, D, S].

  Raises:
    ValueError: for bad inputs or a non-positive factor.
  """
  _check(logits_fn, images, labels, directions)
  factors = tuple(float(f) for f in scales)
  if not factors or min(factors) <= 0:
    raise ValueError(f"`scales` must be positive factors; got {scales}.")
  if minimal is None:
    minimal = minimal_adversarial(
      logits_fn,
      images,
      labels,
      directions,
      levels=levels,
      compute_pass=compute_pass,
      pass_iterations=pass_iterations,
      **search_kwargs,
    )
  b, nd = directions.shape[:2]
  ns = len(factors)
  f = jnp.asarray(factors, jnp.float32)
  shape = images.shape[1:]
  x = jnp.broadcast_to(images.astype(jnp.float32)[:, None, None], (b, nd, ns) + shape)
  d = _unit_linf(directions.reshape((b * nd,) + shape).astype(jnp.float32))
  d = jnp.broadcast_to(d.reshape(b, nd, 1, *shape), (b, nd, ns) + shape)
  s = minimal.scale[:, :, None] * f[None, None, :]
  flat = lambda a: a.reshape((b * nd * ns,) + a.shape[3:])
  x0 = _parts.quantize(flat(x), levels)
  hp = _perturb(flat(x), flat(d), flat(s), levels)
  preds = jnp.argmax(logits_fn(hp), axis=-1).astype(jnp.int32)
  y = jnp.broadcast_to(labels[:, None, None], (b, nd, ns)).reshape(-1)
  ps, l2, linf = _norms_and_pass(hp, x0, compute_pass, pass_iterations)
  unflat = lambda a: a.reshape((b, nd, ns) + a.shape[1:])
  valid = jnp.broadcast_to(minimal.success[:, :, None], (b, nd, ns))
  out = HardPositives(
    images=unflat(hp),
    factors=f,
    scale=s,
    valid=valid,
    misclassified=unflat(preds != y),
    pass_score=unflat(ps),
    l2=unflat(l2),
    linf=unflat(linf),
    predictions=unflat(preds),
    minimal=minimal,
  )
  return jax.tree_util.tree_map(jax.lax.stop_gradient, out)
