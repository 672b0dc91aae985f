"""Corruption accuracy (CIFAR-10-C / MNIST-C style) and mCE (Hendrycks & Dietterich 2019)."""
from typing import Dict, Mapping, Optional

import numpy as np


def mean_corruption_error(errors: Mapping[str, Mapping[int, float]],
                          baseline_errors: Mapping[str, Mapping[int, float]]) -> Dict:
  """CE_c = sum_s E_{s,c} / sum_s E^base_{s,c}; mCE = mean over corruptions c.

  Args:
    errors: corruption -> severity -> error rate of the model.
    baseline_errors: the same for the baseline (AlexNet in the paper; here a
      named baseline run).

  Returns:
    {"ce": {corruption: CE}, "mce": mean CE} over the corruptions both have.

  Raises:
    ValueError: if they share no corruption or the baseline has zero error.
  """
  common = [c for c in errors if c in baseline_errors]
  if not common:
    raise ValueError("`errors` and `baseline_errors` share no corruption.")
  ce = {}
  for c in common:
    sev = [s for s in errors[c] if s in baseline_errors[c]]
    base = sum(baseline_errors[c][s] for s in sev)
    if base <= 0:
      raise ValueError(f"baseline error for {c!r} is zero; CE is undefined.")
    ce[c] = sum(errors[c][s] for s in sev) / base
  return {"ce": ce, "mce": float(np.mean(list(ce.values())))}


def errors_from_accuracy(acc: Mapping[str, Mapping]) -> Dict[str, Dict[int, float]]:
  """{c: {s: accuracy}} -> {c: {s: 1 - accuracy}} (severity keys as ints)."""
  return {c: {int(s): 1.0 - float(a) for s, a in v.items()} for c, v in acc.items()}


def relative_mce(errors, baseline_errors, clean_error: float,
                 baseline_clean_error: float) -> Optional[float]:
  """Relative mCE: mean_c sum_s (E_{s,c} - E_clean) / sum_s (E^base_{s,c} - E^base_clean)."""
  vals = []
  for c in errors:
    if c not in baseline_errors:
      continue
    sev = [s for s in errors[c] if s in baseline_errors[c]]
    den = sum(baseline_errors[c][s] - baseline_clean_error for s in sev)
    if den > 0:
      vals.append(sum(errors[c][s] - clean_error for s in sev) / den)
  return float(np.mean(vals)) if vals else None
