"""Corruption accuracy (CIFAR-10-C / MNIST-C style) and mCE (Hendrycks & Dietterich 2019)."""

from typing import Callable, Dict, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from advjax import models


def corruption_accuracies(
  logits_fn: Callable,
  images,
  labels,
  *,
  names: Sequence[str],
  severities: Sequence[int],
  tables: str,
  batch_size: int,
  key_of: Callable[[int, int], jax.Array],
  chunk: Optional[int] = None,
  progress: bool = False,
) -> Dict[str, Dict[int, float]]:
  """Accuracy of `logits_fn` on each corruption of `images` at each severity.

  Args:
    logits_fn: `images -> logits`.
    images: float32 [N, H, W, C] in [0, 1].
    labels: int [N].
    names: corruption names (`augment.corruption_names`).
    severities: severities in 1..5.
    tables: the severity tables, "imagenet" or "cifar10" (`augment.corrupt_batch`).
    batch_size: examples per prediction.
    key_of: `(corruption index, severity) -> key` of that corruption's draws.
    chunk: corrupt `chunk` images at a time, chunk i from `fold_in(key, i * chunk)`;
      None corrupts all N in one call from the key itself.
    progress: a progress bar over the corruptions.

  Returns:
    {name: {severity: accuracy}}.
  """
  from advjax import augment  # pylint: disable=import-outside-toplevel

  labels = np.asarray(labels)
  predict = models.jit_with_model(lambda f, x: jnp.argmax(f(x), -1), logits_fn)
  out = {}
  for c, name in enumerate(tqdm(names, desc="corruptions", disable=not progress, leave=False)):
    out[name] = {}
    for s in severities:
      k = key_of(c, int(s))
      correct = 0
      for start in range(0, len(images), chunk or max(len(images), 1)):
        stop = start + chunk if chunk else len(images)
        xc = augment.corrupt_batch(
          k if chunk is None else jax.random.fold_in(k, start),
          jnp.asarray(images[start:stop]),
          name=name,
          severity=int(s),
          tables=tables,
        )
        preds = np.concatenate(
          [np.asarray(predict(xc[i : i + batch_size])) for i in range(0, xc.shape[0], batch_size)]
        )
        correct += int(np.sum(preds == labels[start:stop]))
      out[name][int(s)] = correct / len(images)
  return out


def mean_corruption_error(
  errors: Mapping[str, Mapping[int, float]], baseline_errors: Mapping[str, Mapping[int, float]]
) -> Dict:
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


def relative_mce(
  errors, baseline_errors, clean_error: float, baseline_clean_error: float
) -> Optional[float]:
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
