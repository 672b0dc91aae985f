"""AutoAttack (Croce & Hein 2020, "Reliable evaluation of adversarial robustness
with an ensemble of diverse parameter-free attacks", ICML; arXiv:2003.01690).

The versions are those of the reference code's `AutoAttack._set_version`
(`AUTOATTACK_VERSIONS`): "standard" runs APGD-CE (no restarts), APGD-T (targeted
DLR, 9 target classes), FAB-T (9 target classes, accepted where its minimal
adversarial is within eps) and Square (5000 queries); "plus" runs APGD-CE and
APGD-DLR with 5 restarts, FAB with 5 restarts, Square, APGD-T and FAB-T; "rand"
runs APGD-CE and APGD-DLR on a randomized model through EOT over 20 draws.
Each later attack only counts on the points the earlier ones left robust, so the
result is the worst case per point.
"""

import warnings
from typing import Callable, Dict, NamedTuple, Optional, Sequence, Tuple, Union

import jax
import jax.numpy as jnp

from advjax import _validate
from advjax.attacks import _adaptive
from advjax.attacks import _apgd
from advjax.attacks import _fab
from advjax.attacks import _parts
from advjax.attacks import _registry
from advjax.attacks import _square

# Stage names are those of the attack registry (`attacks.ATTACK_NAMES`).
AUTOATTACK_STAGES = ("apgd_ce", "apgd_dlr", "apgd_t", "fab", "fab_t", "square")
# The stages that run one target class after another (`autoattack_stage(target=...)`).
AUTOATTACK_TARGETED_STAGES = ("apgd_t", "fab_t")
# version -> ((stage, restarts), ...), as the reference's `_set_version` for Linf and L2
# (its "plus" gives APGD and untargeted FAB 5 restarts; its FAB-T always runs 1).
AUTOATTACK_VERSIONS = {
  "standard": (("apgd_ce", 1), ("apgd_t", 1), ("fab_t", 1), ("square", 1)),
  "plus": (("apgd_ce", 5), ("apgd_dlr", 5), ("fab", 5), ("square", 1), ("apgd_t", 1), ("fab_t", 1)),
  "rand": (("apgd_ce", 1), ("apgd_dlr", 1)),
}
STANDARD_ATTACKS = tuple(name for name, _ in AUTOATTACK_VERSIONS["standard"])
# The "rand" version's EOT draws (the reference's `eot_iter`).
AUTOATTACK_EOT_DRAWS = 20
_EOT_KEY = 0x7F4A7C15  # folded into `key` for the EOT draws, apart from the stages' keys

Stages = Tuple[Tuple[str, int], ...]


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
    broken_by: [B] int32, per point: -1 if the clean image is misclassified, i if
      stage i broke it, the number of stages if it is robust to all of them
      (so `broken_by == len(stages)` is exactly `~success`).
  """

  images: jax.Array
  success: jax.Array
  robust_accuracy: Dict[str, jax.Array]
  zero_grad: jax.Array
  broken_by: jax.Array


def autoattack_stages(
  version: str = "custom",
  *,
  attacks: Optional[Sequence[Union[str, Tuple[str, int]]]] = None,
  num_restarts: Optional[int] = None,
) -> Stages:
  """The stages of an AutoAttack version, as `((name, restarts), ...)`.

  Args:
    version: "standard", "plus", "rand" (`AUTOATTACK_VERSIONS`, fixed stage lists
      and restarts) or "custom" (`attacks` and `num_restarts`).
    attacks: "custom" only: stage names from `AUTOATTACK_STAGES`, or any other
      eps-bounded attack of the registry (one added with `register`, optionally with
      options: "my_attack(scale=0.5)"), or `(name, restarts)` pairs; default
      `STANDARD_ATTACKS`. A registry attack runs per example (each with its own key,
      `example_ids` 0) and takes `restarts` as its `num_restarts` option, or 1.
    num_restarts: "custom" only: the restarts of stages given by name (default 1;
      per target class for APGD-T and FAB-T; Square has none).

  Returns:
    A tuple of `(name, restarts)` pairs.

  Raises:
    ValueError: for an unknown version or stage, or `attacks` / `num_restarts` given
      with a named version.
  """
  _validate.check_choice(version, "version", tuple(AUTOATTACK_VERSIONS) + ("custom",))
  if version != "custom":
    if attacks is not None or num_restarts is not None:
      raise ValueError(
        f"version={version!r} fixes the stages and restarts; give "
        f"`attacks` / `num_restarts` only with version='custom'."
      )
    return AUTOATTACK_VERSIONS[version]
  default_restarts = 1 if num_restarts is None else num_restarts
  _validate.check_positive_int(default_restarts, "num_restarts")
  stages = []
  for item in STANDARD_ATTACKS if attacks is None else tuple(attacks):
    name, restarts = (item, default_restarts) if isinstance(item, str) else tuple(item)
    if name not in AUTOATTACK_STAGES:
      _check_registry_stage(name, restarts)
    _validate.check_positive_int(restarts, f"restarts of {name!r} in `attacks`")
    stages.append((name, 1 if name == "square" else int(restarts)))
  if not stages:
    raise ValueError("`attacks` must name at least one attack.")
  return tuple(stages)


def _check_registry_stage(spec: str, restarts) -> None:
  """A stage that is an attack of the registry: bounded, not AutoAttack itself, and
  taking `num_restarts` where `restarts` > 1."""
  name, _ = _registry.parse_attack(spec)
  entry = _registry.get_attack(name)
  if name == "autoattack" or not entry.bounded:
    raise ValueError(
      f"`attacks`: {spec!r} cannot be a stage of AutoAttack; its stages are "
      f"{list(AUTOATTACK_STAGES)} or another eps-bounded attack of the registry."
    )
  if restarts != 1 and "num_restarts" not in entry.options:
    raise ValueError(
      f"`attacks`: {spec!r} takes no `num_restarts`; give it 1 restart, not {restarts!r}."
    )


def _registry_stage(keys, images, labels, eps, *, logits_fn, norm, spec, restarts):
  """A registry attack as a stage: run per example (vmapped, batch 1), example b with
  key `keys[b]`, so that its result does not depend on the batch, as a built-in stage's."""
  name, options = _registry.parse_attack(spec)
  takes = _registry.get_attack(name).options
  if "norm" in takes:
    options.setdefault("norm", norm)
  if restarts != 1:
    options["num_restarts"] = restarts
  attack = _registry.build_attack(name, **options)
  ids = jnp.zeros(1, jnp.int32)

  def one(k, x, y, e):
    return attack(k, logits_fn, x[None], y[None], e, example_ids=ids)[0]

  eps = jnp.asarray(eps, images.dtype)
  return jax.vmap(one, in_axes=(0, 0, 0, 0 if eps.ndim else None))(keys, images, labels, eps)


def autoattack_model(key: jax.Array, logits_fn: Callable, *, version: str = "custom") -> Callable:
  """The deterministic `logits_fn` that the stages of `version` attack.

  For "rand", `logits_fn` is a randomized model `f(key, images) -> logits` and the
  result is `eot_logits_fn(fold_in(key, c), f, num_draws=20)` (mean probabilities
  over 20 draws). The reference code averages the loss gradient over 20 fresh
  draws at every APGD iteration; here the 20 draws are one fixed set for the whole
  attack (EOT needs a deterministic function for APGD's best-iterate bookkeeping
  and for the re-prediction that decides success, which is the EOT model's vote),
  so the attack may overfit these draws: check the images under fresh draws. For
  the other versions `logits_fn` is returned unchanged.
  """
  if version != "rand":
    return logits_fn
  return _adaptive.eot_logits_fn(
    jax.random.fold_in(key, _EOT_KEY), logits_fn, num_draws=AUTOATTACK_EOT_DRAWS
  )


def autoattack(
  key: jax.Array,
  logits_fn,
  images: jax.Array,
  labels: jax.Array,
  *,
  eps,
  norm: str = "linf",
  version: str = "custom",
  attacks: Optional[Sequence[Union[str, Tuple[str, int]]]] = None,
  num_steps: int = 100,
  num_restarts: Optional[int] = None,
  num_target_classes: int = 9,
  num_queries: int = 5000,
  p_init: float = 0.8,
  bounds: Tuple[float, float] = (0.0, 1.0),
  example_ids: Optional[jax.Array] = None,
) -> AutoAttackResult:
  """The AutoAttack worst case over an ensemble of parameter-free attacks.

  The attacks run in order on the whole batch (one compiled program, so it
  works inside `jax.jit` and on sharded batches), but each is told which points
  are already broken: its loop stops as soon as every still-robust point is
  broken, and its output is adopted only for points that were robust before
  it and that it breaks on re-prediction. Every random draw of an example comes
  from its own key, and an example's stages stop only for itself, so its result
  does not depend on the batch, its position there or the sharding (given
  `example_ids`). `eval.run_autoattack` runs the same stages from the host on
  the still-robust points only, with the same result. Standard budgets: MNIST
  Linf 0.3, CIFAR-10 Linf 8/255 and L2 0.5, ImageNet Linf 4/255.

  Args:
    key: a JAX PRNG key; stage s of example b draws from
      `fold_in(fold_in(key, example_ids[b]), s)`.
    logits_fn: `images [B, H, W, C] -> logits [B, K]`; for version "rand" a
      randomized model `f(key, images) -> logits` (see `autoattack_model`).
    images: float images [B, H, W, C] in `bounds`.
    labels: int true labels [B].
    eps: budget, a scalar or per-example [B], >= 0.
    norm: "linf" or "l2".
    version: "standard", "plus", "rand" (`AUTOATTACK_VERSIONS`: the reference's
      stage lists and restarts) or "custom" (`attacks`, `num_restarts`; their
      defaults give the standard stages).
    attacks: "custom" stages, from "apgd_ce", "apgd_dlr", "apgd_t", "fab"
      (untargeted, one backward pass per class and step), "fab_t", "square" (the
      names of the attack registry), or `(name, restarts)` pairs.
    num_steps: APGD and FAB iterations (100 in AutoAttack).
    num_restarts: "custom": restarts of stages given by name (default 1; per
      target class for APGD-T and FAB-T).
    num_target_classes: APGD-T and FAB-T targets (9), capped at K - 1.
    num_queries: Square's query budget (5000).
    p_init: Square's initial fraction (0.8).
    bounds: the valid pixel range.
    example_ids: int [B], each example's identity for its random draws (e.g.
      its dataset index), so that its result does not depend on the batch;
      default `arange(B)`.

  Returns:
    An `AutoAttackResult`.

  Raises:
    ValueError: for a bad argument, named in the message.
  """
  stages = autoattack_stages(version, attacks=attacks, num_restarts=num_restarts)
  model = autoattack_model(key, logits_fn, version=version)
  num_classes = _parts.check_attack_args(
    model, images, labels, eps=eps, norm=norm, num_steps=num_steps
  )
  _check_stages(stages, num_classes, num_target_classes, num_queries)
  keys = _parts.per_example_keys(key, example_ids, images.shape[0])
  result = _run_stages(
    keys,
    images,
    labels,
    eps,
    logits_fn=model,
    norm=norm,
    stages=stages,
    num_steps=num_steps,
    num_target_classes=min(num_target_classes, num_classes - 1),
    num_queries=num_queries,
    p_init=float(p_init),
    bounds=tuple(bounds),
  )
  zero_grad = result.zero_grad
  if _validate.is_concrete(zero_grad) and bool(jnp.any(zero_grad)):
    warnings.warn(
      f"autoattack: the input gradient is exactly zero on "
      f"{int(jnp.sum(zero_grad))} of {zero_grad.shape[0]} examples; the "
      f"model may mask gradients and the robust accuracy may be "
      f"overestimated.",
      RuntimeWarning,
      stacklevel=2,
    )
  return result


def autoattack_stage(
  key: jax.Array,
  logits_fn,
  images: jax.Array,
  labels: jax.Array,
  *,
  stage: Tuple[str, int],
  index: int,
  eps,
  norm: str = "linf",
  num_steps: int = 100,
  num_target_classes: int = 9,
  num_queries: int = 5000,
  p_init: float = 0.8,
  bounds: Tuple[float, float] = (0.0, 1.0),
  example_ids: Optional[jax.Array] = None,
  target: Optional[int] = None,
) -> jax.Array:
  """Stage `index` of `autoattack` alone, on points that are all still robust.

  An example's output equals what `autoattack` computes for it in that stage
  (the same keys, `fold_in(fold_in(key, example_ids[b]), index)`), whatever else
  is in the batch: a host driver (`eval.run_autoattack`) gathers the still-robust
  points into a smaller batch and adopts the outputs that re-predict as broken.

  Args:
    key, logits_fn, images, labels, eps, norm, num_steps, num_target_classes,
      num_queries, p_init, bounds, example_ids: as in `autoattack` (`logits_fn`
      deterministic: `autoattack_model` turns a randomized one into it).
    stage: `(name, restarts)`, an item of `autoattack_stages(...)`.
    index: the stage's position in the stage list.
    target: APGD-T and FAB-T only: run the stage's `target`-th target class alone (0 =
      the most likely other class; an int or a traced int scalar, so one compiled
      program serves every target), with the keys it has in the whole stage; None runs
      all. A point broken by target t is not attacked by later targets in `autoattack`
      either, so running the targets in turn on the still-robust points gives the
      stage's result.

  Returns:
    [B, H, W, C] the stage's images, inside the eps-ball and the bounds.

  Raises:
    ValueError: for a bad argument, named in the message.
  """
  num_classes = _parts.check_attack_args(
    logits_fn, images, labels, eps=eps, norm=norm, num_steps=num_steps
  )
  stage = autoattack_stages("custom", attacks=[tuple(stage)])[0]
  _check_stages((stage,), num_classes, num_target_classes, num_queries)
  num_target_classes = min(num_target_classes, num_classes - 1)
  if target is not None and (
    stage[0] not in AUTOATTACK_TARGETED_STAGES
    or (_validate.is_concrete(target) and not 0 <= int(target) < num_target_classes)
  ):
    raise ValueError(
      f"`target` must be None, or for the {list(AUTOATTACK_TARGETED_STAGES)} stages an "
      f"int in [0, {num_target_classes}); got {target!r} for {stage[0]!r}."
    )
  keys = _parts.per_example_keys(key, example_ids, images.shape[0])
  x = _stage(
    _parts.fold_in_each(keys, int(index)),
    images,
    labels,
    eps,
    jnp.zeros(images.shape[0], bool),
    logits_fn=logits_fn,
    norm=norm,
    stage=stage,
    num_steps=num_steps,
    num_target_classes=num_target_classes,
    num_queries=num_queries,
    p_init=float(p_init),
    bounds=tuple(bounds),
    target_range=None if target is None else (target, target + 1),
  )
  return jax.lax.stop_gradient(x.astype(images.dtype))


def _check_stages(stages, num_classes, num_target_classes, num_queries):
  _validate.check_positive_int(num_target_classes, "num_target_classes")
  _validate.check_positive_int(num_queries, "num_queries")
  names = [name for name, _ in stages]
  if "apgd_t" in names and num_classes < 4:
    raise ValueError(
      f"`attacks` contains 'apgd_t', whose targeted DLR loss needs at "
      f"least 4 classes; the model has {num_classes}."
    )
  if "apgd_dlr" in names and num_classes < 3:
    raise ValueError(
      f"`attacks` contains 'apgd_dlr', whose DLR loss needs at least 3 "
      f"classes; the model has {num_classes}."
    )


def _stage(
  k,
  images,
  labels,
  eps,
  done,
  *,
  logits_fn,
  norm,
  stage,
  num_steps,
  num_target_classes,
  num_queries,
  p_init,
  bounds,
  target_range=None,
):
  name, restarts = stage
  if name not in AUTOATTACK_STAGES:
    return _registry_stage(
      k, images, labels, eps, logits_fn=logits_fn, norm=norm, spec=name, restarts=restarts
    )
  apgd_kw = dict(
    eps=eps,
    norm=norm,
    num_steps=num_steps,
    num_restarts=restarts,
    rho=0.75,
    momentum=0.75,
    bounds=bounds,
  )
  if name in ("apgd_ce", "apgd_dlr"):
    return _apgd._apgd_core(
      k,
      logits_fn,
      images,
      labels,
      loss=name[5:],
      targeted=False,
      targets=None,
      done=done,
      **apgd_kw,
    )[0]
  if name == "apgd_t":
    return _apgd._apgd_t_core(
      k,
      logits_fn,
      images,
      labels,
      loss="dlr",
      done=done,
      num_target_classes=num_target_classes,
      target_range=target_range,
      **apgd_kw,
    )[0]
  if name in ("fab", "fab_t"):
    # FAB minimizes the norm; it breaks a point for AutoAttack within eps only.
    return _fab.within_eps(
      _fab._fab_core(
        k,
        logits_fn,
        images,
        labels,
        norm=norm,
        num_steps=num_steps,
        num_restarts=restarts,
        eps=eps,
        targeted=name == "fab_t",
        num_target_classes=num_target_classes,
        alpha_max=0.1,
        eta=1.05,
        beta=0.9,
        bounds=bounds,
        stop_norm=jnp.where(done, jnp.inf, eps),
        target_range=target_range if name == "fab_t" else None,
      ),
      images,
      eps,
    )
  return _square._square_core(
    k,
    logits_fn,
    images,
    labels,
    None,
    _parts.get_objective("margin"),
    eps=eps,
    norm=norm,
    num_queries=num_queries,
    p_init=p_init,
    bounds=bounds,
    done=done,
  )[0]


def _run_stages(
  keys,
  images,
  labels,
  eps,
  *,
  logits_fn,
  norm,
  stages,
  num_steps,
  num_target_classes,
  num_queries,
  p_init,
  bounds,
):
  def broken(x):
    return _parts.is_successful(logits_fn(x), labels)

  x_adv = images
  robust = ~broken(images)
  accuracy = {"clean": jnp.mean(robust.astype(jnp.float32))}
  broken_by = jnp.where(robust, len(stages), -1).astype(jnp.int32)
  for i, stage in enumerate(stages):
    x = _stage(
      _parts.fold_in_each(keys, i),
      images,
      labels,
      eps,
      ~robust,
      logits_fn=logits_fn,
      norm=norm,
      stage=stage,
      num_steps=num_steps,
      num_target_classes=num_target_classes,
      num_queries=num_queries,
      p_init=p_init,
      bounds=bounds,
    )
    # Adopt only what re-predicts as broken, so the mask never disagrees.
    newly = robust & broken(x)
    x_adv = jnp.where(_parts._bcast(newly, images), x, x_adv)
    robust = robust & ~newly
    broken_by = jnp.where(newly, i, broken_by)
    accuracy[stage[0]] = jnp.mean(robust.astype(jnp.float32))

  x_adv = x_adv.astype(images.dtype)
  _, _, g = _parts.value_and_input_grad(logits_fn, _parts.get_objective("ce"), images, labels)
  zero_grad = _parts.is_zero(g)
  result = AutoAttackResult(
    images=x_adv,
    success=broken(x_adv),
    robust_accuracy=accuracy,
    zero_grad=zero_grad,
    broken_by=broken_by,
  )
  return jax.tree_util.tree_map(jax.lax.stop_gradient, result)


def _describe(o) -> str:
  version = "" if o["version"] == "custom" else f" {o['version']}"
  stages = "" if o["attacks"] is None else f"{', '.join(map(str, o['attacks']))}; "
  return (
    f"AutoAttack{version}{_parts.norm_tag(o['norm'])} ({stages}{o['num_steps']} steps, "
    f"{o['num_target_classes']} target classes, Square {o['num_queries']} queries)"
  )


_registry.register(
  "autoattack",
  label="AutoAttack",
  output=lambda result, images, eps: result.images,
  describe=_describe,
)(autoattack)
