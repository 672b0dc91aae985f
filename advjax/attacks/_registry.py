"""The attack registry: one name per attack, for training, evaluation and AutoAttack.

`build_attack(name, **options)` returns an `attack_fn(key, logits_fn, images, labels,
eps, *, example_ids=None) -> images`: the adversarial batch [B, H, W, C], same shape and
dtype as `images`, inside the eps-ball (Linf unless `norm="l2"`) and [0, 1], under
`jax.lax.stop_gradient`. `eps` may be a traced scalar, so one compiled attack serves a
whole eps grid; `example_ids` (int [B], default `arange(B)`) are the examples' identities
for their random draws (`fold_in(key, example_ids[b])`). The one
exception is "cw" (`AttackSpec.bounded` is False): Carlini-Wagner L2 finds the smallest
perturbation it can and ignores eps. Minimum-norm attacks ("fab", "fab_t") count within
eps only, as in AutoAttack (`within_eps`); where diagnostics are needed call the
attack's `*_with_info` twin or its own function directly.

Options are the keyword arguments of the attack, with one shared convention for the step
size: `step_size` is the step at budget `step_size_eps` and scales with eps (with the
default `step_size_eps=1` it is a fraction of eps). An unknown option is an error.

The names are the spelling used everywhere: `config.train_attack.name`,
`config.eval.attacks` and AutoAttack's `attacks=` stages.
"""

import inspect
from typing import Callable, Dict, NamedTuple, Optional, Sequence, Tuple

from advjax.attacks import _apgd
from advjax.attacks import _autoattack
from advjax.attacks import _cw
from advjax.attacks import _fab
from advjax.attacks import _fgsm
from advjax.attacks import _fgv
from advjax.attacks import _pgd
from advjax.attacks import _square


class AttackSpec(NamedTuple):
  """One entry of the registry.

  Attributes:
    build: `(**options) -> attack_fn`, options keyword-only.
    label: the attack's name in reports ("APGD-T (DLR)").
    bounded: whether the result stays inside the eps-ball (False for "cw" only).
    options: the option names `build` accepts.
  """

  build: Callable[..., Callable]
  label: str
  bounded: bool
  options: Tuple[str, ...]


def _step(step_size, step_size_eps, default):
  """`eps -> step`: `step_size * eps / step_size_eps`, `default * eps` for None."""
  s = default if step_size is None else step_size
  return lambda eps: s * eps / step_size_eps


def fgsm(*, norm: str = "linf"):
  """FGSM (Goodfellow et al. 2015): one signed-gradient step of size eps."""

  def attack(k, f, x, y, eps, *, example_ids=None):
    return _fgsm.fgsm(k, f, x, y, eps=eps, norm=norm, example_ids=example_ids)

  return attack


def fgsm_rs(*, step_size: Optional[float] = None, step_size_eps: float = 1.0, norm: str = "linf"):
  """FGSM with a random start and step 1.25 eps by default (Wong et al. 2020)."""
  step = _step(step_size, step_size_eps, 1.25)

  def attack(k, f, x, y, eps, *, example_ids=None):
    return _fgsm.fgsm(
      k,
      f,
      x,
      y,
      eps=eps,
      norm=norm,
      random_start=True,
      step_size=step(eps),
      example_ids=example_ids,
    )

  return attack


def fgv(*, norm: str = "linf"):
  """FGV (Rozsa et al. 2016): one step along the raw input gradient, scaled to eps."""

  def attack(k, f, x, y, eps, *, example_ids=None):
    return _fgv.fgv(k, f, x, y, eps=eps, norm=norm, example_ids=example_ids)

  return attack


def pgd(
  *,
  num_steps: int = 10,
  step_size: Optional[float] = None,
  step_size_eps: float = 1.0,
  num_restarts: int = 1,
  norm: str = "linf",
):
  """PGD with a random start (Madry et al. 2018); step 2.5 eps / num_steps by default."""
  step = _step(step_size, step_size_eps, 2.5 / num_steps)

  def attack(k, f, x, y, eps, *, example_ids=None):
    return _pgd.pgd(
      k,
      f,
      x,
      y,
      eps=eps,
      norm=norm,
      num_steps=num_steps,
      step_size=step(eps),
      num_restarts=num_restarts,
      example_ids=example_ids,
    )

  return attack


def cw(
  *,
  num_steps: int = 1000,
  binary_search_steps: int = 9,
  initial_const: float = 1e-3,
  learning_rate: float = 1e-2,
):
  """Carlini-Wagner L2 (2017), unbounded: eps is ignored."""

  def attack(k, f, x, y, eps, *, example_ids=None):
    del eps
    return _cw.cw_l2(
      k,
      f,
      x,
      y,
      num_steps=num_steps,
      binary_search_steps=binary_search_steps,
      initial_const=initial_const,
      learning_rate=learning_rate,
      example_ids=example_ids,
    ).images

  return attack


def _apgd_builder(loss):
  def build(*, num_steps: int = 100, num_restarts: int = 1, norm: str = "linf"):
    def attack(k, f, x, y, eps, *, example_ids=None):
      return _apgd.apgd(
        k,
        f,
        x,
        y,
        eps=eps,
        norm=norm,
        num_steps=num_steps,
        num_restarts=num_restarts,
        loss=loss,
        example_ids=example_ids,
      )

    return attack

  build.__doc__ = f"APGD on the {loss.upper()} loss (Croce & Hein 2020)."
  return build


def apgd_t(
  *, num_steps: int = 100, num_restarts: int = 1, num_target_classes: int = 9, norm: str = "linf"
):
  """APGD-T on the targeted DLR loss over the top `num_target_classes` classes."""

  def attack(k, f, x, y, eps, *, example_ids=None):
    return _apgd.apgd_t(
      k,
      f,
      x,
      y,
      eps=eps,
      norm=norm,
      num_steps=num_steps,
      num_restarts=num_restarts,
      num_target_classes=num_target_classes,
      example_ids=example_ids,
    )

  return attack


def fab(*, num_steps: int = 100, num_restarts: int = 1, norm: str = "linf"):
  """FAB (Croce & Hein 2020), untargeted; a point is broken only within eps (also the
  radius of the random restarts)."""

  def attack(k, f, x, y, eps, *, example_ids=None):
    return _fab.within_eps(
      _fab.fab(
        k,
        f,
        x,
        y,
        norm=norm,
        num_steps=num_steps,
        num_restarts=num_restarts,
        eps=eps,
        example_ids=example_ids,
      ),
      x,
      eps,
    )

  return attack


def fab_t(
  *, num_steps: int = 100, num_restarts: int = 1, num_target_classes: int = 9, norm: str = "linf"
):
  """FAB-T, targeted over the top classes; a point is broken only within eps."""

  def attack(k, f, x, y, eps, *, example_ids=None):
    return _fab.within_eps(
      _fab.fab_t(
        k,
        f,
        x,
        y,
        norm=norm,
        num_steps=num_steps,
        num_restarts=num_restarts,
        eps=eps,
        num_target_classes=num_target_classes,
        example_ids=example_ids,
      ),
      x,
      eps,
    )

  return attack


def square(*, num_queries: int = 5000, p_init: float = 0.8, norm: str = "linf"):
  """Square (Andriushchenko et al. 2020): score-based random search."""

  def attack(k, f, x, y, eps, *, example_ids=None):
    return _square.square(
      k,
      f,
      x,
      y,
      eps=eps,
      norm=norm,
      num_queries=num_queries,
      p_init=p_init,
      example_ids=example_ids,
    )

  return attack


def autoattack(
  *,
  attacks: Sequence[str] = _autoattack.STANDARD_ATTACKS,
  num_steps: int = 100,
  num_restarts: int = 1,
  num_target_classes: int = 9,
  num_queries: int = 5000,
  norm: str = "linf",
):
  """AutoAttack (Croce & Hein 2020): the worst case over `attacks`, run in turn."""

  def attack(k, f, x, y, eps, *, example_ids=None):
    return _autoattack.autoattack(
      k,
      f,
      x,
      y,
      eps=eps,
      norm=norm,
      attacks=attacks,
      num_steps=num_steps,
      num_restarts=num_restarts,
      num_target_classes=num_target_classes,
      num_queries=num_queries,
      example_ids=example_ids,
    ).images

  return attack


def _spec(build, label, bounded=True):
  params = inspect.signature(build).parameters
  return AttackSpec(build, label, bounded, tuple(params))


_REGISTRY: Dict[str, AttackSpec] = {
  "fgsm": _spec(fgsm, "FGSM"),
  "fgsm_rs": _spec(fgsm_rs, "FGSM-RS"),
  "fgv": _spec(fgv, "FGV"),
  "pgd": _spec(pgd, "PGD"),
  "cw": _spec(cw, "CW-L2 (unbounded)", bounded=False),
  "apgd_ce": _spec(_apgd_builder("ce"), "APGD-CE"),
  "apgd_dlr": _spec(_apgd_builder("dlr"), "APGD-DLR"),
  "apgd_t": _spec(apgd_t, "APGD-T (DLR)"),
  "fab": _spec(fab, "FAB (within eps)"),
  "fab_t": _spec(fab_t, "FAB-T (within eps)"),
  "square": _spec(square, "Square"),
  "autoattack": _spec(autoattack, "AutoAttack"),
}

ATTACK_NAMES = tuple(_REGISTRY)


def get_attack(name: str) -> AttackSpec:
  """The registry entry of `name`.

  Raises:
    ValueError: for an unknown name, listing the known ones.
  """
  if name not in _REGISTRY:
    raise ValueError(f"Unknown attack {name!r}; expected one of {list(ATTACK_NAMES)}.")
  return _REGISTRY[name]


def build_attack(name: str, *, only_accepted: bool = False, **options) -> Callable:
  """`attack_fn(key, logits_fn, images, labels, eps) -> images` of the attack `name`.

  The result is the adversarial batch (see the module docstring); the caller jits.
  `attack_fn` also takes the keyword `example_ids` (int [B], default `arange(B)`):
  example b's random draws come from `fold_in(key, example_ids[b])`, so passing
  each example's dataset index makes its result independent of the batching.

  Example (`logits_fn` a model, `x` [B, H, W, C] in [0, 1], `y` [B] labels):

    attack = build_attack("pgd", num_steps=7)
    x_adv = jax.jit(attack, static_argnums=1)(key, logits_fn, x, y, 8 / 255)

  Args:
    name: one of `ATTACK_NAMES`.
    only_accepted: drop the options this attack does not take (for a caller that holds
      one set of options for several attacks, such as a config section) instead of
      rejecting them.
    **options: the attack's options (`get_attack(name).options`).

  Raises:
    ValueError: for an unknown name, or an unknown option unless `only_accepted`.
  """
  spec = get_attack(name)
  if only_accepted:
    options = {k: v for k, v in options.items() if k in spec.options}
  unknown = sorted(set(options) - set(spec.options))
  if unknown:
    raise ValueError(
      f"attack {name!r} takes no option {unknown[0]!r}; its options are {list(spec.options)}."
    )
  return spec.build(**options)
