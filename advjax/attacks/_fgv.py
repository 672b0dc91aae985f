"""Fast gradient value (Rozsa, Rudd & Boult 2016, "Adversarial Diversity and
Hard Positive Generation"): one step along the raw input gradient."""

from typing import Optional, Tuple

import jax

from advjax.attacks import _fgsm
from advjax.attacks import _parts
from advjax.attacks import _registry


def fgv_direction(grad: jax.Array, norm: str) -> jax.Array:
  """The raw gradient scaled to unit `norm` per example: g / ||g||_p.

  Unlike the sign step of FGSM this keeps the relative magnitudes of the
  gradient (FGV of Rozsa et al. 2016). A zero gradient gives a zero direction.

  Args:
    grad: input gradients [B, ...].
    norm: "linf" (divide by max |g|) or "l2" (divide by ||g||_2).

  Returns:
    Directions [B, ...] with per-example norm 1 (0 where the gradient is 0).
  """
  return _parts.normalize_per_example(grad, norm)


def fgv_with_info(
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
  bounds: Tuple[float, float] = (0.0, 1.0),
  example_ids: Optional[jax.Array] = None,
) -> _parts.AttackResult:
  """Fast gradient value attack: `x' = clip(x + eps * g / ||g||_p)`.

  FGV (Rozsa et al. 2016) moves along the raw input gradient g of the
  per-example objective instead of its sign. Here the direction is scaled so
  that the step uses the whole budget in the chosen norm: `||x' - x||_p = eps`
  before clipping to the box. (Rozsa et al. instead scale it by a line search;
  see the hot/cold line search for that use.)

  Args:
    key: a JAX PRNG key (unused: FGV is deterministic; kept for a uniform
      signature).
    logits_fn: `images [B, H, W, C] -> logits [B, K]`.
    images: float images [B, H, W, C] in `bounds`.
    labels: int labels [B].
    eps: budget, a scalar or per-example [B], >= 0.
    norm: "linf" or "l2".
    loss: attack objective, "ce", "margin" or "dlr".
    targeted: if True, move towards `targets` instead of away from `labels`.
    targets: int target classes [B], required when `targeted`.
    bounds: the valid pixel range.
    example_ids: int [B] example identities (unused, like `key`; checked and
      kept for a uniform signature).

  Returns:
    An `AttackResult`: the adversarial images [B, H, W, C] (same dtype, inside
    the eps-ball and bounds, under `stop_gradient`) and their `AttackInfo`.

  Raises:
    ValueError: for a bad argument, named in the message.
  """
  return _fgsm.single_step(
    key,
    logits_fn,
    images,
    labels,
    fgv_direction,
    eps=eps,
    norm=norm,
    loss=loss,
    targeted=targeted,
    targets=targets,
    random_start=False,
    step_size=None,
    bounds=bounds,
    example_ids=example_ids,
  )


fgv = _registry.register("fgv", label="FGV")(_parts.images_only(fgv_with_info))
