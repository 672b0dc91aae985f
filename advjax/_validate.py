"""Cheap argument checks shared by the public entry points.

Shape and dtype checks are static and hold under `jax.jit`. Value checks (range,
negative eps) run only when the value is concrete, so that an attack called
inside a user's `jax.jit` never raises a ConcretizationTypeError.
"""
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x) -> bool:
  """True if `x` holds a value now (not a tracer inside jit/vmap/grad)."""
  return not isinstance(x, jax.core.Tracer)


def check_images(images, name: str = "images", *, rank: Optional[int] = 4,
                 ranks: Optional[Sequence[int]] = None) -> None:
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
        f"(convert uint8 with x / 255.); got dtype {dtype}.")
  if is_concrete(images) and np.size(images):
    arr = np.asarray(images)
    lo, hi = float(arr.min()), float(arr.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
      raise ValueError(f"`{name}` contains NaN or inf values.")
    if lo < -1e-6 or hi > 1 + 1e-6:
      raise ValueError(
          f"`{name}` must have values in [0, 1] (normalization lives inside the "
          f"model); got range [{lo:.4g}, {hi:.4g}].")


def check_labels(labels, name: str = "labels", *, batch_size: Optional[int] = None,
                 num_classes: Optional[int] = None) -> None:
  """Raises ValueError unless `labels` is an integer vector [B] of valid classes."""
  shape = jnp.shape(labels)
  if len(shape) != 1:
    raise ValueError(f"`{name}` must be a vector of class indices [batch]; got shape "
                     f"{tuple(shape)}.")
  if not jnp.issubdtype(jnp.result_type(labels), jnp.integer):
    raise ValueError(f"`{name}` must hold integer class indices; got dtype "
                     f"{jnp.result_type(labels)}.")
  if batch_size is not None and shape[0] != batch_size:
    raise ValueError(f"`{name}` has batch size {shape[0]} but the images have batch "
                     f"size {batch_size}.")
  if num_classes is not None and is_concrete(labels) and np.size(labels):
    arr = np.asarray(labels)
    if arr.min() < 0 or arr.max() >= num_classes:
      raise ValueError(f"`{name}` must be in [0, {num_classes - 1}] for a model with "
                       f"{num_classes} classes; got range [{arr.min()}, {arr.max()}].")


def check_nonnegative(value, name: str) -> None:
  """Raises ValueError if a concrete `value` is NaN or negative (+inf is allowed)."""
  if is_concrete(value):
    arr = np.asarray(value)
    if np.any(np.isnan(arr)) or np.any(arr < 0):
      raise ValueError(f"`{name}` must be >= 0; got {value}.")


def check_positive_int(value, name: str) -> None:
  if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
    raise ValueError(f"`{name}` must be an integer >= 1; got {value!r}.")


def check_choice(value, name: str, choices: Sequence[str]) -> None:
  if value not in choices:
    raise ValueError(f"Unknown {name} {value!r}; expected one of {sorted(choices)}.")


def parse_names(spec, name: str, choices: Sequence[str], what: str = "name") -> list:
  """Splits a comma-separated `spec` and checks every entry is one of `choices`.

  Raises:
    ValueError: naming the argument `name` and the unknown entry.
  """
  if not isinstance(spec, str):
    raise ValueError(f"`{name}` must be a comma-separated string of {list(choices)}; "
                     f"got {spec!r}.")
  names = [p.strip() for p in spec.split(",") if p.strip()]
  for n in names:
    if n not in choices:
      raise ValueError(f"Unknown {what} {n!r} in `{name}`={spec!r}; expected a "
                       f"comma-separated subset of {list(choices)}.")
  return names
