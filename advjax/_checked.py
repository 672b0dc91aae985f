"""`checked_jit`: `jax.jit` with advjax's value checks kept (via `jax.experimental.checkify`).

Under a plain `jax.jit` the arguments are tracers, so advjax cannot look at
their values: images outside [0, 1], a label >= the number of classes or a
negative eps would run and give a silently wrong answer. advjax states those
checks as `checkify.debug_check`s (see `advjax._validate`), stated only while
`checked_jit` traces: a plain jit's program holds none of them. `checked_jit` runs the
function through `checkify.checkify` with the checks on and raises the first failed
check as a `ValueError` after the call.
"""

import functools
from typing import Any, Callable

import jax
from jax.experimental import checkify

from advjax import _validate

_SUFFIX = " (`check` failed)"


def checked_jit(fun: Callable[..., Any], **jit_kwargs) -> Callable[..., Any]:
  """`jax.jit(fun)` that raises a `ValueError` when an advjax value check fails.

  Use it where you would use `jax.jit` around advjax calls:

  >>> import jax, jax.numpy as jnp
  >>> from advjax import attacks, checked_jit
  >>> logits_fn = lambda x: x.reshape(x.shape[0], -1)[:, :3]
  >>> attack = checked_jit(lambda k, x, y: attacks.fgsm(k, logits_fn, x, y, eps=0.1))
  >>> x = jnp.full((2, 2, 2, 1), 0.5)
  >>> attack(jax.random.key(0), x, jnp.array([0, 1])).shape
  (2, 2, 2, 1)
  >>> attack(jax.random.key(0), 255 * x, jnp.array([0, 1]))
  Traceback (most recent call last):
  ...
  ValueError: `images` must have values in [0, 1] (...); got range [127.5, 127.5].

  What is checked: images finite and in [0, 1], labels and targets in
  [0, classes), eps, step sizes and other budgets >= 0 -- on the values the
  jitted program receives. Shape, dtype and option errors raise while tracing,
  with or without this wrapper. Only advjax's own checks are enabled
  (`checkify.user_checks`): no NaN or index checks are added to your program.

  Args:
    fun: a function to compile, e.g. a lambda calling an attack.
    **jit_kwargs: passed to `jax.jit` (`static_argnames`, `donate_argnums`, ...).

  Returns:
    A function with `fun`'s signature and outputs.

  Raises:
    ValueError: (from the returned function) with the message of the first
      failed check.
  """

  @functools.wraps(fun)
  def with_checks(*args, **kwargs):  # runs while jax traces
    with _validate.value_checks():
      return fun(*args, **kwargs)

  compiled = jax.jit(checkify.checkify(with_checks, errors=checkify.user_checks), **jit_kwargs)

  @functools.wraps(fun)
  def wrapper(*args, **kwargs):
    err, out = compiled(*args, **kwargs)
    message = err.get()
    if message is not None:
      message = message.split("\n")[0]
      raise ValueError(message[: -len(_SUFFIX)] if message.endswith(_SUFFIX) else message)
    return out

  return wrapper
