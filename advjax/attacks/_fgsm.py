"""Single-step gradient attacks: FGSM (Goodfellow et al. 2015), FGSM with random
start (Wong et al. 2020, "Fast is better than free")."""
from typing import Optional, Tuple

import jax
import jax.numpy as jnp

from advjax import _validate
from advjax.attacks import _parts


def fgsm(key: jax.Array, logits_fn, images: jax.Array, labels: jax.Array, *,
         eps, norm: str = "linf", loss: str = "ce", targeted: bool = False,
         targets: Optional[jax.Array] = None, random_start: bool = False,
         step_size=None, bounds: Tuple[float, float] = (0.0, 1.0),
         return_info: bool = False):
  """Fast gradient sign method (Linf) or fast gradient L2 step.

  `x' = clip(x + eps * sign(grad))` for Linf and `x' = clip(x + eps * g/||g||_2)`
  for L2, where g is the input gradient of the per-example objective. With
  `random_start=True` the step starts from a uniform point in the ball and has
  size `step_size` (default 1.25 * eps, Wong et al. 2020), then is projected.

  Args:
    key: a JAX PRNG key (used only with `random_start`).
    logits_fn: `images [B, H, W, C] -> logits [B, K]`.
    images: float images [B, H, W, C] in `bounds`.
    labels: int labels [B].
    eps: budget, a scalar or per-example [B], >= 0.
    norm: "linf" or "l2".
    loss: attack objective, "ce", "margin" or "dlr".
    targeted: if True, move towards `targets` instead of away from `labels`.
    targets: int target classes [B], required when `targeted`.
    random_start: FGSM-RS of Wong et al. 2020.
    step_size: step length; default eps (1.25 * eps with random start).
    bounds: the valid pixel range.
    return_info: also return an `AttackInfo`.

  Returns:
    Adversarial images [B, H, W, C], same dtype, inside the eps-ball and bounds
    (and an `AttackInfo` if `return_info`).

  Raises:
    ValueError: for a bad argument, named in the message.
  """
  _parts.check_attack_args(logits_fn, images, labels, eps=eps, norm=norm,
                           targets=targets, loss=loss)
  if targeted and targets is None:
    raise ValueError("`targets` is required when `targeted=True`.")
  if step_size is not None:
    _validate.check_nonnegative(step_size, "step_size")
  return _fgsm_core(key, images, labels, targets if targeted else None, eps, step_size,
                    logits_fn=logits_fn, norm=norm, loss=loss, targeted=targeted,
                    random_start=random_start, bounds=tuple(bounds),
                    return_info=return_info)


@_parts.jit_when_eager("logits_fn", "norm", "loss", "targeted", "random_start",
                       "bounds", "return_info")
def _fgsm_core(key, images, labels, targets, eps, step_size, *, logits_fn, norm, loss,
               targeted, random_start, bounds, return_info):
  objective = _parts.get_objective(loss, targeted=targeted)
  if step_size is None:
    step_size = 1.25 * jnp.asarray(eps) if random_start else eps
  x0 = images
  if random_start:
    x0 = _parts.project(_parts.random_init(key, images, eps, norm), images, eps, norm, bounds)
  _, _, g = _parts.value_and_input_grad(logits_fn, objective, x0, labels, targets)
  step = _parts.steepest_step(g, norm)
  x = _parts.project(x0 + _parts._bcast(step_size, x0) * step, images, eps, norm, bounds)
  x = jax.lax.stop_gradient(x.astype(images.dtype))
  if not return_info:
    return x
  logits = logits_fn(x)
  info = _parts.AttackInfo(
      success=_parts.is_successful(logits, labels, targets),
      objective=objective.ascent_value(logits, labels, targets),
      zero_grad=_parts.is_zero(g))
  return x, jax.tree_util.tree_map(jax.lax.stop_gradient, info)
