"""Cheap argument checks shared by the public entry points.

What is checked where:
- Shape, rank, dtype and option checks are static: they raise `ValueError` when
  the function is called, eagerly or while being traced under `jax.jit`.
- Value checks (images in [0, 1] and finite, labels in [0, classes), eps and
  other budgets >= 0) raise `ValueError` at once on concrete inputs. On traced
  inputs they are `jax.experimental.checkify.debug_check`s, stated only while
  `advjax.checked_jit` traces (inside `value_checks()`), which runs them through
  `checkify.checkify`. Under a plain `jax.jit` nothing is added to the program: an
  attack inside a user's jit never raises a ConcretizationTypeError, and its program
  is the same in every trace (a stated check carries checkify's error code, a new
  number each time, so each trace would be a new program for JAX's compilation cache).
"""

import ast
import contextlib
import contextvars
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify


def is_concrete(x) -> bool:
  """True if `x` holds a value now (not a tracer inside jit/vmap/grad)."""
  return not isinstance(x, jax.core.Tracer)


_VALUE_CHECKS = contextvars.ContextVar("advjax_value_checks", default=False)


@contextlib.contextmanager
def value_checks():
  """Within it, value checks on traced arguments are stated (see the module doc)."""
  token = _VALUE_CHECKS.set(True)
  try:
    yield
  finally:
    _VALUE_CHECKS.reset(token)


def _traced_check(pred, message: str, *fmt_args) -> None:
  """A value check on traced arguments, surfaced by `checkify` (see module doc)."""
  checkify.debug_check(pred, message, *fmt_args)


def check_images(
  images, name: str = "images", *, rank: Optional[int] = 4, ranks: Optional[Sequence[int]] = None
) -> None:
  """Raises ValueError unless `images` is a float array in [0, 1] of the rank.

  Args:
    images: array to check.
    name: argument name used in the error message.
    rank: required rank (4 for NHWC batches, 3 for one HWC image). None: any.
    ranks: alternatively, a set of allowed ranks.
  """
  shape = jnp.shape(images)
  allowed = tuple(ranks) if ranks is not None else ((rank,) if rank else None)
  if allowed is not None and len(shape) not in allowed:
    layout = {4: "[batch, height, width, channels]", 3: "[height, width, channels]"}
    want = " or ".join(f"rank {r} {layout.get(r, '')}".strip() for r in allowed)
    raise ValueError(f"`{name}` must have {want}; got shape {tuple(shape)}.")
  dtype = jnp.result_type(images)
  if not jnp.issubdtype(dtype, jnp.floating):
    raise ValueError(
      f"`{name}` must be a floating-point array with values in [0, 1] "
      f"(convert uint8 with x / 255.); got dtype {dtype}."
    )
  if not np.size(images):
    return
  if is_concrete(images):
    arr = np.asarray(images)
    lo, hi = float(arr.min()), float(arr.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
      raise ValueError(f"`{name}` contains NaN or inf values.")
    if lo < -1e-6 or hi > 1 + 1e-6:
      raise ValueError(_range_message(name, f"{lo:.4g}", f"{hi:.4g}"))
  elif _VALUE_CHECKS.get():
    lo, hi = jnp.min(images), jnp.max(images)
    # min/max need not propagate NaN on every backend: test finiteness directly
    _traced_check(jnp.all(jnp.isfinite(images)), f"`{name}` contains NaN or inf values.")
    _traced_check((lo >= -1e-6) & (hi <= 1 + 1e-6), _range_message(name, "{}", "{}"), lo, hi)


def _range_message(name, lo, hi):
  return (
    f"`{name}` must have values in [0, 1] (normalization lives inside the model; "
    f"convert uint8 with x / 255.); got range [{lo}, {hi}]."
  )


def check_labels(
  labels,
  name: str = "labels",
  *,
  batch_size: Optional[int] = None,
  num_classes: Optional[int] = None,
) -> None:
  """Raises ValueError unless `labels` is an integer vector [B] of valid classes."""
  shape = jnp.shape(labels)
  if len(shape) != 1:
    raise ValueError(
      f"`{name}` must be a vector of class indices [batch]; got shape {tuple(shape)}."
    )
  if not jnp.issubdtype(jnp.result_type(labels), jnp.integer):
    raise ValueError(
      f"`{name}` must hold integer class indices; got dtype {jnp.result_type(labels)}."
    )
  if batch_size is not None and shape[0] != batch_size:
    raise ValueError(
      f"`{name}` has batch size {shape[0]} but the images have batch size {batch_size}."
    )
  if num_classes is None or not np.size(labels):
    return
  message = (
    f"`{name}` must be in [0, {num_classes - 1}] for a model with {num_classes} "
    "classes; got range [{}, {}]."
  )
  if is_concrete(labels):
    arr = np.asarray(labels)
    if arr.min() < 0 or arr.max() >= num_classes:
      raise ValueError(message.format(arr.min(), arr.max()))
  elif _VALUE_CHECKS.get():
    lo, hi = jnp.min(labels), jnp.max(labels)
    _traced_check((lo >= 0) & (hi < num_classes), message, lo, hi)


def check_nonnegative(value, name: str) -> None:
  """Raises ValueError if a concrete `value` is NaN or negative (+inf is allowed)."""
  if is_concrete(value):
    arr = np.asarray(value)
    if np.any(np.isnan(arr)) or np.any(arr < 0):
      raise ValueError(f"`{name}` must be >= 0; got {value}.")
  elif _VALUE_CHECKS.get():
    v = jnp.asarray(value)
    _traced_check(jnp.all(v >= 0), f"`{name}` must be >= 0; got min {{}}.", jnp.min(v))


def check_positive_int(value, name: str) -> None:
  if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
    raise ValueError(f"`{name}` must be an integer >= 1; got {value!r}.")


def check_choice(value, name: str, choices: Sequence[str]) -> None:
  if value not in choices:
    raise ValueError(f"Unknown {name} {value!r}; expected one of {sorted(choices)}.")


def parse_names(
  spec,
  name: str,
  choices: Optional[Sequence[str]],
  what: str = "name",
  *,
  comma_string: bool = False,
  distinct: bool = True,
) -> tuple:
  """Checks that `spec` is a sequence of names from `choices`; returns a tuple.

  Args:
    spec: a tuple (or list) of names, e.g. `("fgsm", "pgd")`; `()` is none.
    name: the argument or config key, for error messages ("config.eval.attacks").
    choices: the known names (None: any string; the caller checks them).
    what: what a name is, for error messages ("attack").
    comma_string: also accept one comma-separated string ("color,cutout").
    distinct: reject a name listed twice.

  Raises:
    ValueError: naming `name` and the bad entry; for a comma-separated string
      (unless `comma_string`), saying how to write the tuple.
  """
  if isinstance(spec, str) and comma_string:
    spec = tuple(p.strip() for p in spec.split(",") if p.strip())
  if isinstance(spec, str) or (
    isinstance(spec, (tuple, list)) and any(isinstance(n, str) and "," in n for n in spec)
  ):
    # a string, or ("fgsm,pgd",): what `--config.eval.attacks=fgsm,pgd` parses to
    text = spec if isinstance(spec, str) else ",".join(str(n) for n in spec)
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    cli = "(" + ",".join(repr(n) for n in names) + ("," if len(names) == 1 else "") + ")"
    hint = f' (on the command line: --{name}="{cli}")' if name.startswith("config.") else ""
    kind = "a string" if isinstance(spec, str) else "names joined by commas"
    raise ValueError(
      f"`{name}` must be a tuple of {what} names such as {names!r}{hint}, not {kind}; got {spec!r}."
    )
  if not isinstance(spec, (tuple, list)):
    known = f" from {list(choices)}" if choices is not None else ""
    raise ValueError(f"`{name}` must be a tuple of {what} names{known}; got {spec!r}.")
  names = tuple(spec)
  for i, n in enumerate(names):
    if choices is None and not isinstance(n, str):
      raise ValueError(f"`{name}`={names!r}: {n!r} is not a {what} name (a string).")
    if choices is not None and n not in choices:
      none = " (the empty tuple () is none)" if n in ("none", "") else ""
      raise ValueError(
        f"Unknown {what} {n!r} in `{name}`={names!r}{none}; expected a tuple "
        f"of names from {list(choices)}."
      )
    if distinct and n in names[:i]:
      raise ValueError(f"`{name}`={names!r} lists the {what} {n!r} twice.")
  return names


def check_classifier(logits_fn, images, labels, *, targets=None) -> int:
  """Checks images [B, H, W, C] in [0, 1], labels (and targets) [B] against what
  `logits_fn` returns (traced with `jax.eval_shape`); returns the number of classes.

  Raises:
    ValueError: naming the argument that is wrong.
  """
  check_images(images, "images")
  check_labels(labels, "labels", batch_size=images.shape[0])
  out = jax.eval_shape(logits_fn, images)
  if len(out.shape) != 2 or out.shape[0] != images.shape[0]:
    raise ValueError(
      f"`logits_fn` must map images [B, H, W, C] to logits [B, classes]; "
      f"got output shape {out.shape} for a batch of {images.shape[0]}."
    )
  num_classes = out.shape[1]
  check_labels(labels, "labels", num_classes=num_classes)
  if targets is not None:
    check_labels(targets, "targets", batch_size=images.shape[0], num_classes=num_classes)
  return num_classes


def parse_call(text: str, what: str) -> tuple:
  """`"pgd(num_steps=20, step_size=0.25)"` -> `("pgd", {"num_steps": 20, "step_size": 0.25})`.

  The form a config names a component with its options (an attack, a training view
  source): an identifier, optionally with keyword arguments whose values are Python
  literals (numbers, strings, tuples, True/False/None). Read with `ast`, never run.

  Args:
    text: the string.
    what: what it names, for messages ("attack").

  Returns:
    (name, {option: value}); a bare name has no options.

  Raises:
    ValueError: for anything else, quoting `text`.
  """
  form = f"expected 'name' or 'name(option=value, ...)' with literal values; got {text!r}"
  if not isinstance(text, str):
    raise ValueError(f"a {what} is given as a string: {form}.")
  stripped = text.strip()
  if "(" not in stripped:
    return stripped, {}
  try:
    node = ast.parse(stripped, mode="eval").body
  except SyntaxError:
    raise ValueError(f"cannot read the {what} {text!r}: {form}.") from None
  if not (
    isinstance(node, ast.Call)
    and isinstance(node.func, ast.Name)
    and not node.args
    and all(k.arg for k in node.keywords)
  ):
    raise ValueError(f"cannot read the {what} {text!r}: {form}.")
  options = {}
  for k in node.keywords:
    try:
      options[k.arg] = ast.literal_eval(k.value)
    except ValueError:
      raise ValueError(
        f"{what} {text!r}: the value of option {k.arg!r} must be a literal; {form}."
      ) from None
  return node.func.id, options


def format_call(name: str, options: dict, order: Sequence[str]) -> str:
  """The string `parse_call` reads back: `"name"` or `"name(key=value, ...)"`, the options
  in `order` (their signature's)."""
  keys = [k for k in order if k in options]
  if not keys:
    return name
  return f"{name}({', '.join(f'{k}={options[k]!r}' for k in keys)})"


def check_options(what: str, name: str, options: dict, known: Sequence[str]) -> None:
  """Raises ValueError naming `what` `name` and listing `known` for an option not in it."""
  unknown = sorted(set(options) - set(known))
  if unknown:
    raise ValueError(
      f"{what} {name!r} takes no option {unknown[0]!r}; its options are {list(known)}."
    )


def minimal_call(name: str, options: dict, defaults: dict) -> str:
  """`format_call` of the options that differ from `defaults`, in the defaults' order (then
  any others, sorted): one spelling of a component (`"pgd(num_steps=7)"`)."""
  changed = {k: v for k, v in options.items() if k not in defaults or v != defaults[k]}
  return format_call(name, changed, list(defaults) + sorted(set(changed) - set(defaults)))
