"""An ensemble of classifiers as one classifier: the average of their softmax outputs.

Averaging probabilities (not logits) is the usual deep-ensemble prediction
(Lakshminarayanan et al. 2017, https://arxiv.org/abs/1612.01474). The ensemble is
returned as an ordinary `LogitsFn`, so the attacks and the evaluation suite run
white-box on it: their gradients flow through every member.
"""

from typing import Sequence

import jax
import jax.numpy as jnp

from advjax import types


def ensemble_logits_fn(logits_fns: Sequence[types.LogitsFn]) -> types.LogitsFn:
  """The log of the members' mean softmax probabilities, as a `LogitsFn`.

  `f(x) = log(1/N * sum_i softmax(h_i(x)))`, computed stably as
  `logsumexp_i(log_softmax(h_i(x))) - log N`. So `softmax(f(x))` is the average
  of the members' softmax outputs and `argmax f(x)` is the ensemble's vote by
  mean probability. `f` is pure: it can be jitted, vmapped and differentiated.

  Args:
    logits_fns: N >= 1 functions `images [B, H, W, C] in [0, 1] -> logits [B, K]`,
      in inference mode, all with the same number of classes K.

  Returns:
    `f(images [B, H, W, C] in [0, 1]) -> log mean probabilities [B, K]` (each row
    is a normalized log-distribution: `logsumexp(f(x), -1) == 0`).

  Raises:
    ValueError: if `logits_fns` is not a non-empty sequence of callables; when
      called, if the members disagree on the output shape.

  Example:
    >>> uniform = lambda x: jnp.zeros((len(x), 3))
    >>> confident = lambda x: jnp.log(jnp.array([[0.7, 0.2, 0.1]]))
    >>> p = jax.nn.softmax(ensemble_logits_fn([uniform, confident])(jnp.zeros((1, 2, 2, 1))))
    >>> [round(float(v), 3) for v in p[0]]  # (1/3 + 0.7) / 2, (1/3 + 0.2) / 2, ...
    [0.517, 0.267, 0.217]
  """
  if isinstance(logits_fns, (str, bytes)) or not isinstance(logits_fns, Sequence):
    raise ValueError(
      f"`logits_fns` must be a sequence of logits functions; got {type(logits_fns).__name__}."
    )
  fns = tuple(logits_fns)
  if not fns:
    raise ValueError("`logits_fns` is empty; an ensemble needs at least one member.")
  for i, fn in enumerate(fns):
    if not callable(fn):
      raise ValueError(f"`logits_fns[{i}]` is not callable; got {type(fn).__name__}.")
  log_n = float(jnp.log(len(fns)))

  def logits_fn(images: jax.Array) -> jax.Array:
    log_probs = [jax.nn.log_softmax(fn(images), axis=-1) for fn in fns]
    shapes = {tuple(lp.shape) for lp in log_probs}
    if len(shapes) != 1:  # shapes are static, so this also holds under jit
      raise ValueError(
        f"`logits_fns` members return different logits shapes "
        f"{[tuple(lp.shape) for lp in log_probs]}; an ensemble needs "
        f"one class count."
      )
    dtype = jnp.result_type(*log_probs)
    stacked = jnp.stack([lp.astype(dtype) for lp in log_probs])
    return jax.nn.logsumexp(stacked, axis=0) - jnp.asarray(log_n, dtype)

  return logits_fn
