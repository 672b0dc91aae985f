"""The attack registry: one name per attack, for training, evaluation and AutoAttack.

An attack is registered where it is defined (`@register(name, label=...)` on the attack
function); its options are that function's keyword-only parameters with their defaults
(less `eps`, `example_ids` and the per-example `targets`), so nothing restates them.

`build_attack(name, **options)` binds the options and returns an `attack_fn(key,
logits_fn, images, labels, eps, *, example_ids=None) -> images`: the adversarial batch
[B, H, W, C], same shape and dtype as `images`, inside the eps-ball (Linf unless
`norm="l2"`) and [0, 1], under `jax.lax.stop_gradient`. `eps` may be a traced scalar, so
one compiled attack serves a whole eps grid; `example_ids` (int [B], default
`arange(B)`) are the examples' identities for their random draws (`fold_in(key,
example_ids[b])`). The one exception is "cw" (`AttackSpec.bounded` is False):
Carlini-Wagner L2 finds the smallest perturbation it can and ignores eps. Minimum-norm
attacks ("fab", "fab_t") count within eps only, as in AutoAttack (`within_eps`); where
diagnostics are needed call the attack's own function directly.

A config names an attack with its options in one string, `"pgd(num_steps=20,
step_size=0.25)"` (Python keyword syntax, literal values); `parse_attack` reads it,
`format_attack` writes it and `attack_label` describes it for a report. An option the
attack does not take is an error naming the attack and listing its options. Step sizes
have one convention: `step_size` is a fraction of eps.

The names are the spelling used everywhere: `config.train_attack.name`,
`config.eval.attacks` and AutoAttack's `attacks=` stages.
"""

import inspect
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple

from advjax import _validate

# The built-in attacks, in the order a report lists them (each registered in its module).
ATTACK_NAMES = (
  "fgsm",
  "fgsm_rs",
  "fgv",
  "pgd",
  "cw",
  "apgd_ce",
  "apgd_dlr",
  "apgd_t",
  "fab",
  "fab_t",
  "square",
  "autoattack",
)
# Keyword-only parameters of an attack function that are per call, not options.
_PER_CALL = ("eps", "example_ids", "targets")


class AttackSpec(NamedTuple):
  """One entry of the registry.

  Attributes:
    name: the registry name.
    fn: the attack function as defined, `fn(key, logits_fn, images, labels, *,
      [eps,] **options, example_ids)`.
    label: the attack's name in reports ("APGD-T (DLR)"); `attack_label` adds its budget.
    bounded: whether the result stays inside the eps-ball (False for "cw" only).
    options: option -> default, in the order of `fn`'s signature.
    fixed: keyword arguments bound by the registration (not options), e.g. APGD-CE's
      `loss="ce"`.
    output: `(result, images, eps) -> images` where `fn` returns more than the images
      (None: `fn` returns the images).
    describe: `(options) -> label` with the budget, every option filled in (None: the
      label and the options given that differ from their defaults).
  """

  name: str
  fn: Callable
  label: str
  bounded: bool
  options: Dict[str, Any]
  fixed: Dict[str, Any]
  output: Optional[Callable]
  describe: Optional[Callable]


_REGISTRY: Dict[str, AttackSpec] = {}


def register(
  name: str,
  *,
  label: str,
  bounded: bool = True,
  fixed: Optional[Dict[str, Any]] = None,
  output: Optional[Callable] = None,
  describe: Optional[Callable] = None,
) -> Callable:
  """Registers an attack function under `name`; used as a decorator where it is defined.

  The function has the attack signature `fn(key, logits_fn, images, labels, *, eps,
  <options with defaults>, example_ids=None)` (`eps` may be absent for an unbounded
  attack) and returns the adversarial images [B, H, W, C], or something `output` turns
  into them. Once registered, the name runs in the evaluation battery
  (`config.eval.attacks`) and as a training attack (`config.train_attack.name`).

  Example:

    @attacks.register("noise", label="uniform noise")
    def noise(key, logits_fn, images, labels, *, eps, scale=1.0, example_ids=None):
      del logits_fn, labels, example_ids
      d = jax.random.uniform(key, images.shape, images.dtype, -eps, eps)
      return jnp.clip(images + scale * d, 0, 1)

  Args:
    name: the registry name (an identifier, not already registered).
    label: the attack's name in reports.
    bounded: False for an attack that ignores eps (minimum-norm, like "cw").
    fixed: keyword arguments of `fn` this entry binds; they are not options. An
      attack with per-example `targets` has `targeted=False` fixed (an `attack_fn` is
      given no targets).
    output: `(result, images, eps) -> images` when `fn` returns a result tuple.
    describe: `(options) -> label` naming the budget (see `AttackSpec`).

  Returns:
    A decorator that registers `fn` and returns it unchanged.

  Raises:
    ValueError: for a name that is taken or not an identifier, or a function whose
      options lack defaults.
  """
  if not isinstance(name, str) or not name.isidentifier():
    raise ValueError(f"register: `name` must be an identifier; got {name!r}.")
  if name in _REGISTRY:
    raise ValueError(f"register: attack {name!r} is already registered.")
  fixed = dict(fixed or {})

  def decorator(fn):
    params = inspect.signature(fn).parameters
    kw = [p for p in params.values() if p.kind == inspect.Parameter.KEYWORD_ONLY]
    if "example_ids" not in params:
      raise ValueError(
        f"register({name!r}): the attack function must take the keyword `example_ids` "
        f"(int [B], the examples' identities for their random draws)."
      )
    if "targets" in params and "targeted" in params:
      fixed.setdefault("targeted", False)  # an attack_fn has no per-example targets
    unknown = sorted(set(fixed) - {p.name for p in kw})
    if unknown:
      raise ValueError(f"register({name!r}): `fixed` names no keyword of the function: {unknown}.")
    options = {}
    for p in kw:
      if p.name in _PER_CALL or p.name in fixed:
        continue
      if p.default is inspect.Parameter.empty:
        raise ValueError(f"register({name!r}): option {p.name!r} needs a default.")
      options[p.name] = p.default
    _REGISTRY[name] = AttackSpec(name, fn, label, bounded, options, fixed, output, describe)
    return fn

  return decorator


def unregister(name: str) -> None:
  """Removes an attack added by `register` (the built-in `ATTACK_NAMES` stay).

  Raises:
    ValueError: for a built-in or unknown name.
  """
  if name in ATTACK_NAMES or name not in _REGISTRY:
    raise ValueError(f"unregister: {name!r} is not an attack added by `register`.")
  del _REGISTRY[name]


def attack_names() -> Tuple[str, ...]:
  """Every registered name: the built-in `ATTACK_NAMES`, then those added by `register`."""
  return ATTACK_NAMES + tuple(n for n in _REGISTRY if n not in ATTACK_NAMES)


def get_attack(name: str) -> AttackSpec:
  """The registry entry of `name`.

  Raises:
    ValueError: for an unknown name, listing the known ones.
  """
  if name not in _REGISTRY:
    raise ValueError(f"Unknown attack {name!r}; expected one of {list(attack_names())}.")
  return _REGISTRY[name]


def parse_attack(spec: str) -> Tuple[str, Dict[str, Any]]:
  """`"pgd(num_steps=20, step_size=0.25)"` -> `("pgd", {"num_steps": 20, "step_size": 0.25})`.

  A bare name has no options. Values are Python literals (numbers, strings, tuples,
  True/False/None). The name and options are checked against the registry.

  Raises:
    ValueError: for text that is not `name` or `name(key=literal, ...)`, an unknown
      name, or an option the attack does not take.
  """
  text = spec.strip() if isinstance(spec, str) else spec
  if isinstance(text, str) and "(" not in text:
    get_attack(text)  # a bare name: "Unknown attack 'apgd-ce'" rather than a syntax error
  name, options = _validate.parse_call(spec, "attack")
  _check_options(name, options)
  return name, options


def format_attack(name: str, options: Optional[Dict[str, Any]] = None) -> str:
  """The string `parse_attack` reads back: `"name"` or `"name(key=value, ...)"`, the
  options in the order of the attack's signature.

  Raises:
    ValueError: for an unknown name or option.
  """
  options = dict(options or {})
  return _validate.format_call(name, options, _check_options(name, options).options)


def _check_options(name: str, options: Dict[str, Any]) -> AttackSpec:
  spec = get_attack(name)
  _validate.check_options("attack", name, options, list(spec.options))
  return spec


def _resolve(spec_or_name: str, options: Dict[str, Any]) -> Tuple[AttackSpec, Dict[str, Any]]:
  name, given = parse_attack(spec_or_name)
  both = sorted(set(given) & set(options))
  if both:
    raise ValueError(f"attack {spec_or_name!r}: option {both[0]!r} is given twice.")
  given.update(options)
  return _check_options(name, given), given


def attack_options(spec_or_name: str, **options) -> Dict[str, Any]:
  """Every option of the attack, its defaults updated by those given (in the string
  and as keywords).

  Raises:
    ValueError: as `build_attack`.
  """
  spec, given = _resolve(spec_or_name, options)
  return {**spec.options, **given}


def attack_label(spec_or_name: str, **options) -> str:
  """What a report calls the attack, with its budget: `"PGD-20 (step 0.25 eps, 1
  restart, random start)"`.

  Raises:
    ValueError: as `build_attack`.
  """
  spec, given = _resolve(spec_or_name, options)
  if spec.describe is not None:
    return spec.describe({**spec.options, **given})
  changed = [f"{k}={v!r}" for k, v in given.items() if v != spec.options[k]]
  return f"{spec.label} ({', '.join(changed)})" if changed else spec.label


def build_attack(spec_or_name: str, **options) -> Callable:
  """`attack_fn(key, logits_fn, images, labels, eps) -> images` of an attack.

  The result is the adversarial batch (see the module docstring); the caller jits.
  `attack_fn` also takes the keyword `example_ids` (int [B], default `arange(B)`):
  example b's random draws come from `fold_in(key, example_ids[b])`, so passing
  each example's dataset index makes its result independent of the batching.

  Example (`logits_fn` a model, `x` [B, H, W, C] in [0, 1], `y` [B] labels):

    attack = build_attack("pgd", num_steps=7)  # or build_attack("pgd(num_steps=7)")
    x_adv = jax.jit(attack, static_argnums=1)(key, logits_fn, x, y, 8 / 255)

  Args:
    spec_or_name: a registered name (`attack_names()`), optionally with options,
      `"pgd(num_steps=7)"`.
    **options: more of the attack's options (`get_attack(name).options`); an option
      may not be given both in the string and here.

  Raises:
    ValueError: for an unknown name, or an option the attack does not take (naming the
      attack and listing its options).
  """
  spec, given = _resolve(spec_or_name, options)
  kwargs = {**spec.fixed, **given}
  takes_eps = "eps" in inspect.signature(spec.fn).parameters

  def attack_fn(key, logits_fn, images, labels, eps, *, example_ids=None):
    extra = {"eps": eps} if takes_eps else {}
    out = spec.fn(key, logits_fn, images, labels, **kwargs, **extra, example_ids=example_ids)
    return out if spec.output is None else spec.output(out, images, eps)

  attack_fn.__name__ = attack_fn.__qualname__ = spec.name
  return attack_fn
