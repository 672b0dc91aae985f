"""Single-step gradient attacks: FGSM (Goodfellow et al. 2015), FGSM with random
start (Wong et al. 2020, "Fast is better than free")."""

from typing import Optional, Tuple

import jax
import jax.numpy as jnp

from advjax import _validate
from advjax.attacks import _parts
from advjax.attacks import _registry


def fgsm_with_info(
  key: jax.Array,
  logits_fn,
  images: jax.Array,
  labels: jax.Array,
  *,
  eps,
  norm: str = "linf",
  loss: str = "ce",
  targeted: bool = False,
  targets: Optional[jax.Array] = None,
  random_start: bool = False,
  step_size=None,
  bounds: Tuple[float, float] = (0.0, 1.0),
  example_ids: Optional[jax.Array] = None,
) -> _parts.AttackResult:
  """Fast gradient sign method (Linf) or fast gradient L2 step.

  `x' = clip(x + eps * sign(grad))` for Linf and `x' = clip(x + eps * g/||g||_2)`
  for L2, where g is the input gradient of the per-example objective. With
  `random_start=True` the step starts from a uniform point in the ball and has
  size `step_size * eps` (default 1.25 * eps, Wong et al. 2020), then is projected.

  Args:
    key: a JAX PRNG key (used only with `random_start`: example b's start comes
      from `fold_in(key, example_ids[b])`).
    logits_fn: `images [B, H, W, C] -> logits [B, K]`.
    images: float images [B, H, W, C] in `bounds`.
    labels: int labels [B].
    eps: budget, a scalar or per-example [B], >= 0.
    norm: "linf" or "l2".
    loss: attack objective, "ce", "margin" or "dlr".
    targeted: if True, move towards `targets` instead of away from `labels`.
    targets: int target classes [B], required when `targeted`.
    random_start: FGSM-RS of Wong et al. 2020.
    step_size: the step as a fraction of eps (a scalar or per-example [B]), >= 0;
      default 1 (1.25 with `random_start`).
    bounds: the valid pixel range.
    example_ids: int [B], each example's identity for its random start (e.g.
      its dataset index); default `arange(B)`.

  Returns:
    An `AttackResult`: the adversarial images [B, H, W, C] (same dtype, inside
    the eps-ball and bounds, under `stop_gradient`) and their `AttackInfo`.

  Raises:
    ValueError: for a bad argument, named in the message.
  """
  return single_step(
    key,
    logits_fn,
    images,
    labels,
    _parts.steepest_step,
    eps=eps,
    norm=norm,
    loss=loss,
    targeted=targeted,
    targets=targets,
    random_start=random_start,
    step_size=step_size,
    bounds=bounds,
    example_ids=example_ids,
  )


fgsm = _parts.images_only(fgsm_with_info)
_registry.register("fgsm", label="FGSM", fixed={"random_start": False})(fgsm)
_registry.register("fgsm_rs", label="FGSM-RS", fixed={"random_start": True})(fgsm)


def single_step(
  key,
  logits_fn,
  images,
  labels,
  direction,
  *,
  eps,
  norm,
  loss,
  targeted,
  targets,
  random_start,
  step_size,
  bounds,
  example_ids=None,
) -> _parts.AttackResult:
  """One projected step `x0 + step_size * direction(grad at x0, norm)`: FGSM and FGV.

  `x0` is the image, or a uniform point in the ball with `random_start`; the
  step is `step_size * eps`, by default eps (1.25 * eps with a random start). Example b's start
  comes from `fold_in(key, example_ids[b])`.
  """
  _parts.check_attack_args(
    logits_fn, images, labels, eps=eps, norm=norm, targets=targets, loss=loss
  )
  if targeted and targets is None:
    raise ValueError("`targets` is required when `targeted=True`.")
  if step_size is not None:
    _validate.check_nonnegative(step_size, "step_size")
    step_size = step_size * jnp.asarray(eps)
  else:
    step_size = 1.25 * jnp.asarray(eps) if random_start else eps
  tgt = targets if targeted else None
  objective = _parts.get_objective(loss, targeted=targeted)
  x0 = images
  if random_start:
    x0 = _parts.project(
      _parts.random_init(key, images, eps, norm, example_ids=example_ids), images, eps, norm, bounds
    )
  else:
    _parts.check_example_ids(example_ids, images.shape[0])
  _, _, g = _parts.value_and_input_grad(logits_fn, objective, x0, labels, tgt)
  x = _parts.project(
    x0 + _parts._bcast(step_size, x0) * direction(g, norm), images, eps, norm, bounds
  )
  logits = logits_fn(x)
  return _parts.attack_result(
    images,
    x,
    _parts.AttackInfo(
      success=_parts.is_successful(logits, labels, tgt),
      objective=objective.ascent_value(logits, labels, tgt),
      zero_grad=_parts.is_zero(g),
    ),
  )
