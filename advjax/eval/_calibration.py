"""Confidence and calibration: max-softmax confidence, ECE, histograms."""

import jax
import jax.numpy as jnp
import numpy as np


def max_softmax(logits: jax.Array) -> jax.Array:
  """Confidence of the prediction: max softmax probability, [B, K] -> [B]."""
  return jnp.max(jax.nn.softmax(logits, axis=-1), axis=-1)


def expected_calibration_error(confidence, correct, num_bins: int = 15) -> float:
  """ECE (Guo et al. 2017): sum_b |B_b| / N * |acc(B_b) - conf(B_b)|.

  Bins split [0, 1] into `num_bins` equal intervals (right-closed, the first one
  also holds 0). A dataset-level number (not per example).

  Args:
    confidence: [N] in [0, 1].
    correct: [N] bool or 0/1.
    num_bins: 15 as in Guo et al.

  Returns:
    ECE in [0, 1].
  """
  conf = np.asarray(confidence, np.float64)
  corr = np.asarray(correct, np.float64)
  if conf.shape != corr.shape or conf.ndim != 1:
    raise ValueError(
      f"`confidence` and `correct` must be vectors of one length; got "
      f"{conf.shape} and {corr.shape}."
    )
  if conf.size == 0:
    return 0.0
  bins = np.clip(np.ceil(conf * num_bins) - 1, 0, num_bins - 1).astype(int)
  ece = 0.0
  for b in range(num_bins):
    m = bins == b
    if m.any():
      ece += m.mean() * abs(corr[m].mean() - conf[m].mean())
  return float(ece)


def confidence_histogram(confidence, num_bins: int = 15):
  """Counts of confidences in `num_bins` equal bins of [0, 1] -> (counts, edges)."""
  counts, edges = np.histogram(np.asarray(confidence), bins=num_bins, range=(0.0, 1.0))
  return counts.tolist(), edges.tolist()
