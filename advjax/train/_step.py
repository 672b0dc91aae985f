"""One jitted update: alpha * L_clean (+ NoisyMix) + (1 - alpha) * L_views (+ L2), with
L_views the CE, TRADES or MART objective, optionally under AWP."""

from typing import Any, Callable, Optional, Tuple

import jax
import jax.numpy as jnp
import optax

from advjax import _validate
from advjax import attacks, data, losses
from advjax.models import make_logits_fn
from advjax.train import _objectives
from advjax.train import _views
from advjax.train._state import TrainState

RECIPES = ("standard", "adversarial", "hybrid")
OBJECTIVES = _objectives.OBJECTIVES  # the built-in losses of the views
TRAIN_ATTACKS = _views.SOURCES  # the built-in view sources (attacks, augmentations, ...)


def make_attack_fn(spec: str, *, objective="ce", **options) -> Callable:
  """The training attack `spec` from the attack registry, as `(key, logits_fn, images,
  labels, eps) -> images`.

  `attacks.build_attack(spec, **options)`: the attack with its own options, e.g.
  `make_attack_fn("pgd(num_steps=7)")` or `make_attack_fn("pgd", num_steps=7)` (step
  sizes as fractions of eps; defaults: 2.5 / num_steps for "pgd", Madry et al. 2018;
  1.25 for "fgsm_rs", Wong et al. 2020). An objective with an attack of its own
  (`Objective.attack`) builds it from `spec` instead: with "trades", "pgd" is TRADES' PGD
  on the KL term (`attacks.trades_attack`), which takes PGD's `num_steps`, `step_size`
  and `norm`.

  Args:
    spec: a registered attack (`attacks.attack_names()`), optionally with options.
    objective: an objective (`objective_names()`, with options) or an `Objective`.
    **options: more of the attack's options.

  Raises:
    ValueError: for an unknown attack, objective or option (naming both), "free" or
      another view source, or an attack the objective's own attack cannot be.
  """
  obj = _objectives.build_objective(objective)
  name, _ = _validate.parse_call(spec, "attack")
  if name == "free":
    raise ValueError(
      "free adversarial training is a step of its own: use "
      "`make_free_train_step`, not an attack_fn."
    )
  if name in _views.VIEW_SOURCES:
    raise ValueError(f"{name!r} is a view source, not an eps-bounded attack: use `make_source`.")
  name, given = attacks.parse_attack(spec)
  both = sorted(set(given) & set(options))
  if both:
    raise ValueError(f"attack {spec!r}: option {both[0]!r} is given twice.")
  given.update(options)
  full = attacks.format_attack(name, given)
  return attacks.build_attack(full) if obj.attack is None else obj.attack(full)


def awp_perturbation(params, grads, gamma) -> Any:
  """The adversarial weight perturbation v of AWP (Wu et al. 2020), a pytree like params.

  Per parameter tensor w with gradient g of the training loss (one ascent step,
  layer-wise relative size): `v = gamma * ||w|| * g / (||g|| + 1e-20)`, Frobenius
  norms per tensor, for tensors of more than one dimension (kernels; as the
  reference code, biases and normalization scales get 0).

  References: Wu, Xia & Wang 2020, "Adversarial Weight Perturbation Helps Robust
  Generalization", https://arxiv.org/abs/2004.05884; github.com/csdongxian/AWP
  (`utils_awp.py`; gamma 5e-3 with TRADES, 1e-2 with PGD-AT).

  Args:
    params: the weights w.
    grads: the gradient of the training loss at w (same structure).
    gamma: the relative size (>= 0).

  Returns:
    v, a pytree of the structure of `params`.
  """

  def v(w, g):
    if jnp.ndim(w) <= 1:
      return jnp.zeros_like(w)
    return gamma * jnp.linalg.norm(w) * g / (jnp.linalg.norm(g) + 1e-20)

  return jax.tree_util.tree_map(v, params, grads)


def l2_penalty(params) -> jax.Array:
  """0.5 * sum of squared weights (kernels only; biases and norms excluded)."""
  leaves = jax.tree_util.tree_leaves_with_path(params)
  sq = [jnp.sum(jnp.square(p)) for path, p in leaves if getattr(path[-1], "key", "") == "kernel"]
  return 0.5 * sum(sq) if sq else jnp.float32(0)


def make_train_step(
  model,
  tx: optax.GradientTransformation,
  *,
  recipe: str,
  attack_fn: Optional[Callable] = None,
  eps_fn: Callable,
  weight_decay: float = 0.0,
  mesh=None,
  source: Optional[Callable] = None,
  maxup: int = 1,
  noisymix: Optional[_views.NoisyMix] = None,
  skip_clean: bool = False,
  objective="ce",
  awp_gamma: float = 0.0,
) -> Callable:
  """Builds the jitted update `(state, (images, labels)) -> (state, metrics)`.

  loss = alpha * L_clean + (1 - alpha) * L_views + weight_decay * L2, where
  L_clean is the mean CE of the clean batch, or with `noisymix` the NoisyMix
  loss of the clean batch and two augmented views (CE on mixed targets + 12 *
  JSD), and L_views is the mean CE of the generated views (adversarial examples
  at `eps_fn(state.step)`, hard positives, augmentations; weight-0 views such as
  those the PASS filter drops excluded; with `maxup` > 1 the worst of `maxup`
  draws per view). Views are generated in inference mode (batch statistics read,
  not updated). `state.alpha` is 1 for "standard" (no views are generated),
  fixed for "adversarial", and set by the loop from validation accuracies for
  "hybrid" (adaptive alpha = acc_adv / (acc_adv + acc_clean)).

  The `objective` (an `Objective` part, `train/_objectives.py`) sets L_views, with x
  the clean images in training mode and x' their views (the reductions, MaxUp and the
  PASS weights as above): "ce": CE(f(x'), y); "trades(beta=6.0)": mean CE(f(x), y) +
  beta * KL(p(x) || p(x')) (Zhang et al. 2019; the views should come from
  `attacks.trades_attack`, see `make_attack_fn`); "mart(beta=6.0)": the MART loss
  BCE(p(x'), y) + beta * KL(p(x) || p(x')) * (1 - p_y(x)) (Wang et al. 2020; views from
  PGD on the CE). With alpha = 0 the loss is the paper's. The clean logits an objective
  reads are those of the clean branch when it is a plain CE forward, else one more
  forward of x.

  With `awp_gamma` > 0 (AWP, Wu et al. 2020) the weights are first moved by one
  ascent step on this loss (without the L2 term), `v = awp_perturbation(w, g,
  awp_gamma)`; the gradient of the loss at w + v is then given to the optimizer
  and applied to w (the perturbation is removed). Batch statistics are those of
  the forward passes at w + v.

  Args:
    model: a Flax module `apply(variables, x, train, block_hook=...)`.
    tx: the optax optimizer.
    recipe: "standard", "adversarial" or "hybrid".
    attack_fn: `(key, logits_fn, x, y, eps) -> x_adv` (`attacks.build_attack`,
      `make_attack_fn`); used when `source` is None.
    eps_fn: `step -> eps`, see `eps_schedule`.
    weight_decay: coefficient of the L2 term added to the loss.
    mesh: a `jax.sharding.Mesh`; if given, the batch is split over 'data' and the
      state replicated.
    source: a view source `(key, logits_fn, x, y, eps) -> Views`, see `make_source`.
    maxup: MaxUp copies of the views (1 = off; Gong et al. 2021).
    noisymix: the NoisyMix terms of the clean branch, or None.
    skip_clean: alpha is fixed at 0 (plain adversarial training): the clean branch,
      whose gradient is multiplied by 0, is not computed at all (one forward and
      backward pass less per step; the loss and update are the same).
    objective: the loss of the views: a registered objective with its options
      ("trades(beta=6.0)", `objective_names()`) or an `Objective`.
    awp_gamma: AWP's relative weight perturbation (0 = off; 5e-3 with TRADES,
      1e-2 with PGD-AT in the reference code).

  Returns:
    The jitted step. Metrics: loss, loss_clean, loss_adv, acc_clean, acc_adv,
    alpha, eps (scalars, means over the batch), plus pass_kept (fraction of
    views kept) for weighted sources, loss_ce, loss_jsd with NoisyMix and the
    objective's own (loss_kl, the mean KL(p(x) || p(x')) of the views, with "trades"
    and "mart"). With AWP they are measured at w + v.

  Raises:
    ValueError: for an unknown recipe or objective, a missing attack, maxup < 1,
      an objective other than "ce" without adversarial views, or awp_gamma < 0.
  """
  if recipe not in RECIPES:
    raise ValueError(f"Unknown recipe {recipe!r}; expected one of {list(RECIPES)}.")
  adversarial = recipe != "standard"
  if adversarial and source is None and attack_fn is None:
    raise ValueError(f"recipe {recipe!r} needs an `attack_fn` or a `source`.")
  if not isinstance(maxup, int) or maxup < 1:
    raise ValueError(f"`maxup` must be an integer >= 1; got {maxup!r}.")
  if source is None and attack_fn is not None:
    source = _views.attack_source(attack_fn)
  if source is not None:
    source = _views.maxup_views(source, maxup)
  if noisymix is not None:
    noisymix.check()
  if skip_clean and (not adversarial or noisymix is not None):
    raise ValueError("`skip_clean` needs an adversarial recipe without NoisyMix.")
  obj = _objectives.build_objective(objective)
  if objective != "ce" and not adversarial:
    raise ValueError(
      f"objective {objective!r} trains on adversarial views: it needs the "
      f"recipe 'adversarial' or 'hybrid', not {recipe!r}."
    )
  if awp_gamma < 0:
    raise ValueError(f"`awp_gamma` must be >= 0; got {awp_gamma}.")
  num_classes = getattr(model, "num_classes", None)

  def step(state: TrainState, batch: Tuple[jax.Array, jax.Array]):
    images, labels = batch
    key = jax.random.fold_in(state.key, state.step)
    k_attack, k_clean, k_adv = jax.random.split(key, 3)
    eps = eps_fn(state.step)
    alpha = state.alpha if adversarial else jnp.float32(1.0)
    if adversarial:
      logits_fn = make_logits_fn(model, state.variables())
      views = source(k_attack, logits_fn, images, labels, eps)
    if noisymix is not None:
      k_aug, k_hook = jax.random.split(jax.random.fold_in(key, 1))
      x3 = _views.noisymix_inputs(k_aug, images, noisymix)
      hook, targets = _views.noisymix_hook(k_hook, labels, noisymix, num_classes)

    def loss_fn(params, with_l2=True):
      logits = None
      if skip_clean:
        new_stats, aux, total = state.batch_stats, {}, 0.0
      elif noisymix is None:
        logits, new_stats = _train_forward(model, params, state.batch_stats, images, k_clean)
        l_clean = losses.cross_entropy(logits, labels).mean()
        aux = {"loss_clean": l_clean, "acc_clean": losses.accuracy(logits, labels).mean()}
      else:
        logits3, new_stats = _train_forward(
          model, params, state.batch_stats, x3, k_clean, block_hook=hook
        )
        l_clean, ce, jsd, acc = _views.noisymix_loss(logits3, targets, labels, noisymix.jsd_weight)
        aux = {"loss_clean": l_clean, "acc_clean": acc, "loss_ce": ce, "loss_jsd": jsd}
      if not skip_clean:
        total = alpha * l_clean
      if adversarial and obj.uses_clean_logits and logits is None:
        logits, new_stats = _train_forward(
          model, params, new_stats, images, jax.random.fold_in(key, 2)
        )
      if adversarial:
        logits_adv, new_stats = _train_forward(model, params, new_stats, views.images, k_adv)
        l_adv, objective_metrics = obj.loss(logits, labels, logits_adv, views, maxup)
        total = total + (1.0 - alpha) * l_adv
        aux.update(objective_metrics, loss_adv=l_adv)
      if weight_decay and with_l2:
        total = total + weight_decay * l2_penalty(params)
      aux["loss"] = total
      return total, (aux, new_stats)

    at = state.params
    if awp_gamma:
      # AWP's ascent step on the weights (the reference code's proxy model: its
      # batch statistics are discarded, it has no weight decay)
      g_awp = jax.grad(lambda p: loss_fn(p, with_l2=False)[0])(state.params)
      at = jax.tree_util.tree_map(
        jnp.add, state.params, awp_perturbation(state.params, g_awp, awp_gamma)
      )
    (_, (metrics, new_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(at)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = state.replace(
      step=state.step + 1,
      params=params,
      opt_state=opt_state,
      batch_stats=new_stats,
      eps=jnp.asarray(eps, jnp.float32),
      alpha=alpha,
    )
    metrics = dict(metrics, alpha=alpha, eps=jnp.asarray(eps, jnp.float32))
    return new_state, metrics

  return _jit_step(step, mesh)


def _train_forward(model, params, batch_stats, x, key, block_hook=None):
  """Logits in training mode (dropout on, batch statistics of x) and the updated
  statistics ({} for models without BatchNorm)."""
  rngs = {"dropout": key}
  kw = {} if block_hook is None else {"block_hook": block_hook}
  if batch_stats:
    logits, updates = model.apply(
      {"params": params, "batch_stats": batch_stats},
      x,
      train=True,
      rngs=rngs,
      mutable=["batch_stats"],
      **kw,
    )
    return logits, updates["batch_stats"]
  return model.apply({"params": params}, x, train=True, rngs=rngs, **kw), batch_stats


def _jit_step(step, mesh):
  """jit a `(state, batch) -> (state, metrics)` step; with a mesh, the batch is split
  over 'data' and the state and metrics replicated. The state is donated."""
  if mesh is None:
    return jax.jit(step, donate_argnums=0)
  rep, dat = data.replicated(mesh), data.data_sharding(mesh)
  return jax.jit(step, in_shardings=(rep, dat), out_shardings=(rep, rep), donate_argnums=0)


def make_eval_step(
  model, *, attack_fn: Optional[Callable] = None, source: Optional[Callable] = None, mesh=None
) -> Callable:
  """`(variables, images, labels, key, eps) -> (correct_clean [B], correct_adv [B])`.

  Used every epoch on the validation slice (for the adaptive alpha) with the
  training attack or view source at the current eps; an image's adversarial
  correctness is the fraction of its views classified correctly.
  """
  if source is None and attack_fn is not None:
    source = _views.attack_source(attack_fn)

  def step(variables, images, labels, key, eps):
    logits_fn = make_logits_fn(model, variables)
    clean = losses.accuracy(logits_fn(images), labels)
    if source is None:
      return clean, clean
    views = source(key, logits_fn, images, labels, eps)
    return clean, _views.per_example_correct(logits_fn(views.images), views, images.shape[0])

  if mesh is None:
    return jax.jit(step)
  rep, dat = data.replicated(mesh), data.data_sharding(mesh)
  return jax.jit(step, in_shardings=(rep, dat, dat, rep, rep), out_shardings=(dat, dat))


def make_free_train_step(
  model,
  tx: optax.GradientTransformation,
  *,
  replays: int,
  eps_fn: Callable,
  weight_decay: float = 0.0,
  mesh=None,
) -> Callable:
  """Free adversarial training (Shafahi et al. 2019): `(state, batch) -> (state, metrics)`.

  Each batch is replayed `replays` (m) times. Every replay takes ONE backward pass
  of CE(x + delta) and uses it twice: the parameter gradient for an optimizer
  update, and the input gradient for the perturbation, `delta <- clip(delta + eps *
  sign(g_x), -eps, eps)` (then clipped so that x + delta stays in [0, 1]). delta is
  carried to the next batch in `state.delta`. There are m optimizer updates per
  batch, so train for `epochs / m` epochs to match the cost of clean training.

  Args:
    model, tx, eps_fn, weight_decay, mesh: as in `make_train_step`.
    replays: m >= 1.

  Returns:
    The jitted step. Metrics are those of the last replay: loss, loss_adv, acc_adv,
    eps, plus replays.
  """
  if not isinstance(replays, int) or replays < 1:
    raise ValueError(f"`replays` must be an integer >= 1; got {replays!r}.")

  def step(state: TrainState, batch):
    images, labels = batch
    key = jax.random.fold_in(state.key, state.step)
    eps = eps_fn(state.step)

    def replay(i, carry):
      params, opt_state, batch_stats, delta, _ = carry

      def loss_fn(params, delta):
        logits, new_stats = _train_forward(
          model, params, batch_stats, jnp.clip(images + delta, 0.0, 1.0), jax.random.fold_in(key, i)
        )
        ce = losses.cross_entropy(logits, labels).mean()
        total = ce + (weight_decay * l2_penalty(params) if weight_decay else 0.0)
        return total, (ce, losses.accuracy(logits, labels).mean(), new_stats)

      (total, (ce, acc, new_stats)), (g_params, g_x) = jax.value_and_grad(
        loss_fn, argnums=(0, 1), has_aux=True
      )(params, delta)
      updates, opt_state = tx.update(g_params, opt_state, params)
      params = optax.apply_updates(params, updates)
      delta = jnp.clip(delta + eps * jnp.sign(g_x), -eps, eps)
      delta = jnp.clip(images + delta, 0.0, 1.0) - images
      return params, opt_state, new_stats, delta, (total, ce, acc)

    zero = jnp.float32(0)
    # unrolled: a rolled loop body runs several times slower on CPU (measured in
    # benchmarks/train_recipes.py); m is small
    params, opt_state, stats, delta, (total, ce, acc) = jax.lax.fori_loop(
      0,
      replays,
      replay,
      (state.params, state.opt_state, state.batch_stats, state.delta, (zero, zero, zero)),
      unroll=True,
    )
    new_state = state.replace(
      step=state.step + 1,
      params=params,
      opt_state=opt_state,
      batch_stats=stats,
      delta=delta,
      eps=jnp.asarray(eps, jnp.float32),
      alpha=jnp.float32(0.0),
    )
    return new_state, {
      "loss": total,
      "loss_adv": ce,
      "acc_adv": acc,
      "alpha": jnp.float32(0.0),
      "eps": jnp.asarray(eps, jnp.float32),
      "replays": jnp.int32(replays),
    }

  return _jit_step(step, mesh)
