"""Gradient-masking checks (Carlini et al. 2019 checklist; AutoAttack's runtime flags).

Each check takes measured numbers and returns a `Check` with pass/fail, the
value, the threshold and a sentence; `evaluate` runs all of them every time.
"""

from typing import Dict, List, NamedTuple, Optional, Sequence


class Check(NamedTuple):
  name: str
  passed: bool
  value: Optional[float]
  threshold: Optional[float]
  detail: str

  def to_dict(self) -> Dict:
    return self._asdict()


def check_monotone_in_eps(
  eps_grid: Sequence[float], accuracies: Sequence[float], tol: float = 0.01
) -> Check:
  """Accuracy must not increase with eps (beyond `tol`, sampling noise)."""
  worst = max((accuracies[i + 1] - accuracies[i] for i in range(len(accuracies) - 1)), default=0.0)
  return Check(
    "accuracy non-increasing in eps",
    worst <= tol,
    worst,
    tol,
    f"largest increase of accuracy between consecutive eps of "
    f"{[round(e, 4) for e in eps_grid]}: {worst:+.4f}",
  )


def check_unbounded(accuracy: float, threshold: float = 0.01) -> Check:
  """With an unbounded budget (the whole [0, 1] box) an attack must reach ~0% accuracy."""
  return Check(
    "unbounded eps breaks the model",
    accuracy <= threshold,
    accuracy,
    threshold,
    f"PGD accuracy with eps = 1 (the whole image box): {accuracy:.4f}",
  )


def check_iterative_stronger(
  single_step_acc: float, iterative_acc: float, tol: float = 0.01
) -> Check:
  """An iterative attack (PGD) must be at least as strong as a single step (FGSM)."""
  diff = iterative_acc - single_step_acc
  return Check(
    "iterative at least as strong as single-step",
    diff <= tol,
    diff,
    tol,
    f"PGD accuracy {iterative_acc:.4f} vs FGSM accuracy {single_step_acc:.4f}",
  )


def check_black_box_weaker(
  black_box_acc: float, white_box_acc: float, margin: float = 0.02
) -> Check:
  """A black-box attack (Square) must not beat the white-box ones by more than `margin`."""
  diff = white_box_acc - black_box_acc
  return Check(
    "black-box not stronger than white-box",
    diff <= margin,
    diff,
    margin,
    f"Square accuracy {black_box_acc:.4f} vs white-box accuracy {white_box_acc:.4f}",
  )


def check_zero_gradients(fraction: float, threshold: float = 0.01) -> Check:
  """At most `threshold` of the examples may have an exactly zero input gradient."""
  return Check(
    "input gradients are non-zero",
    fraction <= threshold,
    fraction,
    threshold,
    f"fraction of examples with an all-zero input gradient: {fraction:.4f}",
  )


def check_deterministic(max_abs_diff: float, tol: float = 1e-5) -> Check:
  """Two forward passes on the same inputs must give the same logits (no randomness)."""
  return Check(
    "predictions deterministic",
    max_abs_diff <= tol,
    max_abs_diff,
    tol,
    f"max |logits_1 - logits_2| over two passes: {max_abs_diff:.3g}",
  )


def min_norm_tolerance(num_points: int) -> int:
  """How many points a minimum-norm attack may leave unbroken before it is flagged:
  2, or 1% of the points where that is more (a handful of points can sit on a
  plateau of the model; more means the search stopped short)."""
  return max(2, int(0.01 * num_points))


def check_min_norm_budget(
  label: str, num_unbroken: int, num_points: int, *, raise_hint: str = "its budget"
) -> Check:
  """An unbounded minimum-norm attack (CW-L2) must break (nearly) every point.

  It has no eps: a point it leaves correctly classified is one its search gave up on,
  so its norms and its accuracy at L2 thresholds would flatter the model. Fails when
  more than `min_norm_tolerance(num_points)` points stay unbroken.

  Args:
    label: the attack's label in the report.
    num_unbroken: points still correctly classified after the attack.
    num_points: points attacked.
    raise_hint: which settings to raise, for the message.

  Returns:
    A `Check` whose value is `num_unbroken` and threshold the tolerance.
  """
  tol = min_norm_tolerance(num_points)
  passed = num_unbroken <= tol
  detail = (
    f"{label} left {num_unbroken} of {num_points} points correctly classified "
    f"(at most {tol} allowed)"
  )
  if not passed:
    detail += f": budget too small: raise {raise_hint}"
  return Check(
    f"minimum-norm attack breaks every point ({label.split(' (')[0]})",
    passed,
    float(num_unbroken),
    float(tol),
    detail,
  )


def on_subset(check: Check, num_examples: int, num_total: int) -> Check:
  """`check` with "on the first N of M test points" added to its detail when its
  numbers come from fewer points (N) than the report's table (M)."""
  if num_examples >= num_total:
    return check
  return check._replace(
    detail=f"{check.detail} (on the first {num_examples} of {num_total} test points)"
  )


def summarize(checks: List[Check]) -> Dict:
  """{"passed": all passed, "checks": [dict, ...]}."""
  return {"passed": all(c.passed for c in checks), "checks": [c.to_dict() for c in checks]}
