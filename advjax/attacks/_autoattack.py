"""AutoAttack (Croce & Hein 2020, "Reliable evaluation of adversarial robustness
with an ensemble of diverse parameter-free attacks", ICML; arXiv:2003.01690).

The standard suite runs APGD-CE, APGD-T (targeted DLR, 9 target classes), FAB-T
(9 target classes, accepted where its minimal adversarial is within eps) and
Square (5000 queries) in turn, as the reference's "standard" version; each later
attack only counts on the points the earlier ones left robust, so the result is
the worst case per point.
"""
import warnings
from typing import Dict, NamedTuple, Sequence, Tuple

import jax
import jax.numpy as jnp

from advjax import _validate
from advjax.attacks import _apgd
from advjax.attacks import _fab
from advjax.attacks import _parts
from advjax.attacks import _square

# Stage names are those of the attack registry (`attacks.ATTACK_NAMES`).
STANDARD_ATTACKS = ("apgd_ce", "apgd_t", "fab_t", "square")
AUTOATTACK_STAGES = ("apgd_ce", "apgd_dlr", "apgd_t", "fab", "fab_t", "square")


class AutoAttackResult(NamedTuple):
  """What `autoattack` returns.

  Attributes:
    images: [B, H, W, C] adversarial images inside the eps-ball and the bounds;
      the clean image where no attack succeeded.
    success: [B] bool, exactly `argmax(logits_fn(images)) != labels`
      (re-predicted; clean mistakes count as successes).
    robust_accuracy: {"clean": acc, stage: acc after that stage, ...} scalars;
      the value of the last stage equals `1 - mean(success)`.
    zero_grad: [B] bool, True where the cross-entropy input gradient at the
      clean image is exactly zero (gradient masking; the numbers are then not
      to be trusted).
  """
  images: jax.Array
  success: jax.Array
  robust_accuracy: Dict[str, jax.Array]
  zero_grad: jax.Array


def autoattack(key: jax.Array, logits_fn, images: jax.Array, labels: jax.Array, *,
               eps, norm: str = "linf", attacks: Sequence[str] = STANDARD_ATTACKS,
               num_steps: int = 100, num_restarts: int = 1, num_target_classes: int = 9,
               num_queries: int = 5000, p_init: float = 0.8,
               bounds: Tuple[float, float] = (0.0, 1.0)) -> AutoAttackResult:
  """The AutoAttack worst case over an ensemble of parameter-free attacks.

  The attacks run in order on the whole batch (one compiled program, so it
  works inside `jax.jit` and on sharded batches), but each is told which points
  are already broken: its loop stops as soon as every still-robust point is
  broken, and its output is adopted only for points that were robust before
  it and that it breaks on re-prediction. Standard budgets: MNIST Linf 0.3,
  CIFAR-10 Linf 8/255 and L2 0.5, ImageNet Linf 4/255.

  Args:
    key: a JAX PRNG key.
    logits_fn: `images [B, H, W, C] -> logits [B, K]`.
    images: float images [B, H, W, C] in `bounds`.
    labels: int true labels [B].
    eps: budget, a scalar or per-example [B], >= 0.
    norm: "linf" or "l2".
    attacks: stages, from "apgd_ce", "apgd_dlr", "apgd_t", "fab" (untargeted,
      one backward pass per class and step), "fab_t", "square" (the names of
      the attack registry, `attacks.ATTACK_NAMES`).
    num_steps: APGD and FAB iterations (100 in AutoAttack).
    num_restarts: APGD and FAB restarts (per target class for APGD-T, FAB-T).
    num_target_classes: APGD-T and FAB-T targets (9), capped at K - 1.
    num_queries: Square's query budget (5000).
    p_init: Square's initial fraction (0.8).
    bounds: the valid pixel range.

  Returns:
    An `AutoAttackResult`.

  Raises:
    ValueError: for a bad argument, named in the message.
  """
  num_classes = _parts.check_attack_args(logits_fn, images, labels, eps=eps, norm=norm,
                                         num_steps=num_steps)
  attacks = tuple(attacks)
  if not attacks:
    raise ValueError("`attacks` must name at least one attack.")
  for name in attacks:
    _validate.check_choice(name, "attack in `attacks`", AUTOATTACK_STAGES)
  _validate.check_positive_int(num_restarts, "num_restarts")
  _validate.check_positive_int(num_target_classes, "num_target_classes")
  _validate.check_positive_int(num_queries, "num_queries")
  if "apgd_t" in attacks and num_classes < 4:
    raise ValueError(f"`attacks` contains 'apgd_t', whose targeted DLR loss needs at "
                     f"least 4 classes; the model has {num_classes}.")
  if "apgd_dlr" in attacks and num_classes < 3:
    raise ValueError(f"`attacks` contains 'apgd_dlr', whose DLR loss needs at least 3 "
                     f"classes; the model has {num_classes}.")

  result = _run_stages(
      key, images, labels, eps, logits_fn=logits_fn, norm=norm, attacks=attacks,
      num_steps=num_steps, num_restarts=num_restarts,
      num_target_classes=min(num_target_classes, num_classes - 1),
      num_queries=num_queries, p_init=float(p_init), bounds=tuple(bounds))
  zero_grad = result.zero_grad
  if _validate.is_concrete(zero_grad) and bool(jnp.any(zero_grad)):
    warnings.warn(f"autoattack: the input gradient is exactly zero on "
                  f"{int(jnp.sum(zero_grad))} of {zero_grad.shape[0]} examples; the "
                  f"model may mask gradients and the robust accuracy may be "
                  f"overestimated.", RuntimeWarning, stacklevel=2)
  return result


def _run_stages(key, images, labels, eps, *, logits_fn, norm, attacks, num_steps,
                     num_restarts, num_target_classes, num_queries, p_init, bounds):
  def broken(x):
    return _parts.is_successful(logits_fn(x), labels)

  x_adv = images
  robust = ~broken(images)
  accuracy = {"clean": jnp.mean(robust.astype(jnp.float32))}
  apgd_kw = dict(eps=eps, norm=norm, num_steps=num_steps, num_restarts=num_restarts,
                 rho=0.75, momentum=0.75, bounds=bounds)
  for i, name in enumerate(attacks):
    k = jax.random.fold_in(key, i)
    done = ~robust
    if name in ("apgd_ce", "apgd_dlr"):
      x = _apgd._apgd_core(k, logits_fn, images, labels, loss=name[5:], targeted=False,
                           targets=None, done=done, **apgd_kw)[0]
    elif name == "apgd_t":
      x = _apgd._apgd_t_core(k, logits_fn, images, labels, loss="dlr", done=done,
                             num_target_classes=num_target_classes, **apgd_kw)[0]
    elif name in ("fab", "fab_t"):
      # FAB minimizes the norm; it breaks a point for AutoAttack within eps only.
      x = _fab.within_eps(_fab._fab_core(
          k, logits_fn, images, labels, norm=norm, num_steps=num_steps,
          num_restarts=num_restarts, eps=eps, targeted=name == "fab_t",
          num_target_classes=num_target_classes, alpha_max=0.1, eta=1.05, beta=0.9,
          bounds=bounds, stop_norm=jnp.where(done, jnp.inf, eps)), images, eps)
    else:
      x = _square._square_core(k, logits_fn, images, labels, None,
                               _parts.get_objective("margin"), eps=eps, norm=norm,
                               num_queries=num_queries, p_init=p_init, bounds=bounds,
                               done=done)[0]
    # Adopt only what re-predicts as broken, so the mask never disagrees.
    newly = robust & broken(x)
    x_adv = jnp.where(_parts._bcast(newly, images), x, x_adv)
    robust = robust & ~newly
    accuracy[name] = jnp.mean(robust.astype(jnp.float32))

  x_adv = x_adv.astype(images.dtype)
  _, _, g = _parts.value_and_input_grad(logits_fn, _parts.get_objective("ce"), images,
                                        labels)
  zero_grad = _parts.is_zero(g)
  result = AutoAttackResult(images=x_adv, success=broken(x_adv),
                            robust_accuracy=accuracy, zero_grad=zero_grad)
  return jax.tree_util.tree_map(jax.lax.stop_gradient, result)
