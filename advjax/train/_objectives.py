"""The loss of the generated views, L_views, as parts: one builder per objective.

The train step's loss is `alpha * L_clean + (1 - alpha) * L_views (+ L2)`; an objective
gives L_views. Each is a builder registered by name (`register_objective`), whose
keyword-only arguments are its options, returning an `Objective`; a config names it with
its options as attacks are named: `config.objective = "trades(beta=6.0)"`. The built-ins:

- "ce": the views' cross-entropy (MaxUp's worst copy, PASS weights).
- "trades": CE(f(x), y) + beta * KL(p(x) || p(x')) (Zhang et al. 2019,
  https://arxiv.org/abs/1901.08573; beta 6 in the paper and github.com/yaodongyu/TRADES);
  its views come from its own PGD on the KL term (`attacks.trades_attack`).
- "mart": BCE(p(x'), y) + beta * KL(p(x) || p(x')) * (1 - p_y(x)) (Wang et al. 2020,
  https://openreview.net/forum?id=rklOg6EFwS; beta 6 in github.com/YisenWang/MART).

With alpha = 0 the loss is the paper's. To add an objective, register one builder (see
`register_objective`); `tests/test_train_objectives.py` adds one and trains with it.
"""

import inspect
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple

from advjax import _validate
from advjax import attacks, losses
from advjax.train import _views

# The built-in objectives (each registered below).
OBJECTIVES = ("ce", "trades", "mart")


class Objective(NamedTuple):
  """One objective: the loss of the views.

  Attributes:
    loss: `(logits_clean, labels, logits_views, views, maxup) -> (l_views, metrics)`:
      logits_clean [B, K] of the clean images in training mode (None unless
      `uses_clean_logits`), labels [B], logits_views [maxup * N, K] of `views`
      (`Views`, copy-major MaxUp copies); l_views a scalar; metrics a dict of scalars
      with at least "acc_adv" (and "pass_kept" for weighted views).
    uses_clean_logits: the loss reads the clean logits (the step computes them once,
      shared with the clean term when that is a plain CE forward).
    attack: None, or `(attack spec) -> attack_fn` when the objective finds its views
      with an attack of its own instead of the registry's (TRADES' PGD on its KL term).
  """

  loss: Callable
  uses_clean_logits: bool = False
  attack: Optional[Callable] = None


_REGISTRY: Dict[str, Callable[..., Objective]] = {}


def register_objective(name: str) -> Callable:
  """Registers an objective builder `(**options) -> Objective` under `name`; used as a
  decorator. Its keyword-only arguments, with their defaults, are the options.

  Example (adversarial logit pairing, Kannan et al. 2018):

    @train.register_objective("logit_pairing")
    def logit_pairing(*, weight: float = 0.5):
      def loss(logits_clean, labels, logits_views, views, maxup):
        l, acc, _ = train.view_loss(logits_views, views, maxup)
        lc = train.clean_logits_of_views(logits_clean, logits_views.shape[0], maxup)
        pair = jnp.mean(jnp.sum((lc - logits_views) ** 2, -1))
        return l + weight * pair, {"acc_adv": acc, "loss_pair": pair}
      return train.Objective(loss, uses_clean_logits=True)

  Raises:
    ValueError: for a name that is taken or not an identifier.
  """
  if not isinstance(name, str) or not name.isidentifier():
    raise ValueError(f"register_objective: `name` must be an identifier; got {name!r}.")
  if name in _REGISTRY:
    raise ValueError(f"register_objective: objective {name!r} is already registered.")

  def decorator(builder):
    for p in inspect.signature(builder).parameters.values():
      if p.kind != inspect.Parameter.KEYWORD_ONLY or p.default is inspect.Parameter.empty:
        raise ValueError(
          f"register_objective({name!r}): every argument of the builder is a keyword-only "
          f"option with a default; got {p.name!r}."
        )
    _REGISTRY[name] = builder
    return builder

  return decorator


def unregister_objective(name: str) -> None:
  """Removes an objective added by `register_objective` (the built-ins stay).

  Raises:
    ValueError: for a built-in or unknown name.
  """
  if name in OBJECTIVES or name not in _REGISTRY:
    raise ValueError(f"unregister_objective: {name!r} is not an objective added by register.")
  del _REGISTRY[name]


def objective_names() -> Tuple[str, ...]:
  """The built-in `OBJECTIVES`, then those added by `register_objective`."""
  return OBJECTIVES + tuple(n for n in _REGISTRY if n not in OBJECTIVES)


def _defaults(name: str) -> Dict[str, Any]:
  params = inspect.signature(_REGISTRY[name]).parameters.values()
  return {p.name: p.default for p in params}


def parse_objective(spec: str) -> Tuple[str, Dict[str, Any]]:
  """`"trades(beta=6.0)"` -> ("trades", {"beta": 6.0}).

  Raises:
    ValueError: for an unknown objective or an option it does not take, naming both.
  """
  name, options = _validate.parse_call(spec, "objective")
  if name not in _REGISTRY:
    raise ValueError(f"Unknown objective {name!r}; expected one of {list(objective_names())}.")
  _validate.check_options("objective", name, options, list(_defaults(name)))
  return name, options


def canonical_objective(spec: str, **options) -> str:
  """`spec` with `options` set, written with the options that differ from their
  defaults: the one spelling of an objective ("trades" for "trades(beta=6.0)")."""
  name, given = parse_objective(spec)
  given.update(options)
  text = _validate.minimal_call(name, given, _defaults(name))
  parse_objective(text)
  return text


def build_objective(spec) -> Objective:
  """The `Objective` that `spec` names (an `Objective` is returned as it is).

  Raises:
    ValueError: as `parse_objective`, or for a bad option value.
  """
  if isinstance(spec, Objective):
    return spec
  name, options = parse_objective(spec)
  return _REGISTRY[name](**options)


def _metrics(acc, kept) -> Dict:
  return {"acc_adv": acc} if kept is None else {"acc_adv": acc, "pass_kept": kept}


def _check_beta(beta) -> None:
  if not isinstance(beta, (int, float)) or beta < 0:
    raise ValueError(f"`beta` must be a number >= 0; got {beta!r}.")


@register_objective("ce")
def ce() -> Objective:
  """The views' cross-entropy."""

  def loss(logits_clean, labels, logits_views, views, maxup):
    del logits_clean, labels
    l_views, acc, kept = _views.view_loss(logits_views, views, maxup)
    return l_views, _metrics(acc, kept)

  return Objective(loss)


def _trades_pgd(spec: str) -> Callable:
  """TRADES' own PGD on its KL term (`attacks.trades_attack`: Gaussian start, the last
  iterate) with PGD's `num_steps`, `step_size` and `norm` from the training attack."""
  name, given = attacks.parse_attack(spec)
  if name != "pgd":
    raise ValueError(
      f"objective 'trades' maximizes its own KL term with PGD "
      f"(`attacks.trades_attack`): the attack must be 'pgd'; got {name!r}."
    )
  takes = ("num_steps", "step_size", "norm")
  unknown = sorted(set(given) - set(takes))
  if unknown:
    raise ValueError(
      f"objective 'trades' runs its own PGD (`attacks.trades_attack`), which takes "
      f"{list(takes)} of PGD's options; got {unknown[0]!r}."
    )

  def attack_fn(key, logits_fn, images, labels, eps):
    return attacks.trades_attack(key, logits_fn, images, labels, eps=eps, **given)

  return attack_fn


@register_objective("trades")
def trades(*, beta: float = 6.0) -> Objective:
  """TRADES: CE(f(x), y) + beta * KL(p(x) || p(x')), x' from its PGD on the KL."""
  _check_beta(beta)

  def loss(logits_clean, labels, logits_views, views, maxup):
    lc = _views.clean_logits_of_views(logits_clean, logits_views.shape[0], maxup)
    kl = losses.trades_kl(lc, logits_views)
    l_kl, acc, kept = _views.view_loss(logits_views, views, maxup, per_view=kl)
    l_views = losses.cross_entropy(logits_clean, labels).mean() + beta * l_kl
    return l_views, dict(_metrics(acc, kept), loss_kl=kl.mean())

  return Objective(loss, uses_clean_logits=True, attack=_trades_pgd)


@register_objective("mart")
def mart(*, beta: float = 6.0) -> Objective:
  """MART: BCE(p(x'), y) + beta * KL(p(x) || p(x')) * (1 - p_y(x)), x' from PGD on the CE."""
  _check_beta(beta)

  def loss(logits_clean, labels, logits_views, views, maxup):
    del labels
    lc = _views.clean_logits_of_views(logits_clean, logits_views.shape[0], maxup)
    kl = losses.trades_kl(lc, logits_views)
    per_view = losses.mart_loss(lc, logits_views, views.labels, lam=beta)
    l_views, acc, kept = _views.view_loss(logits_views, views, maxup, per_view=per_view)
    return l_views, dict(_metrics(acc, kept), loss_kl=kl.mean())

  return Objective(loss, uses_clean_logits=True)
