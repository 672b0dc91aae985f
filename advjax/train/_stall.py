"""Stall detection: a training loss stuck at chance, log K for K classes.

A network that predicts the uniform distribution on every input has cross-entropy
exactly log K, and its gradient carries almost no signal: plain PGD adversarial
training at full eps from the first step can fall there and stay (Madry et al. 2018
train from scratch; the usual remedy is an eps warm-up, e.g. Gowal et al. 2018, "On
the Effectiveness of Interval Bound Propagation", and the hybrid recipe's eps/10 ramp).
The loop watches for it so that a stalled run stops with advice instead of spending
its budget at chance.
"""

import math
from typing import Mapping, NamedTuple, Optional, Sequence

import numpy as np

# The per-step metrics that are cross-entropies of the views trained on (clean,
# adversarial); a step is at chance when every one present is near log K.
CHANCE_METRICS = ("loss_clean", "loss_adv")


class TrainingStalledError(FloatingPointError):
  """The training loss stayed at chance (log K) for the stall window; the last good
  checkpoint is kept. A FloatingPointError like `NonFiniteLossError`: both say that the
  optimization failed, and the command-line tools exit 1 with the message."""


class StallCheck(NamedTuple):
  """The stall rule of a run: `window` consecutive steps whose loss is within
  `tolerance * log(num_classes)` of log(num_classes).

  Attributes:
    num_classes: K, the number of classes (>= 2).
    window: steps at chance that make a stall (>= 1).
    tolerance: relative distance to log K that counts as chance (0.01: within 1%).
  """

  num_classes: int
  window: int
  tolerance: float = 0.01

  @property
  def chance_loss(self) -> float:
    return math.log(self.num_classes)

  def at_chance(self, losses) -> np.ndarray:
    """Which steps are at chance.

    Args:
      losses: `[steps]` losses, or `[steps, terms]` (a step is at chance when all its
        terms are).

    Returns:
      `[steps]` bool.
    """
    losses = np.asarray(losses, np.float64)
    if losses.size == 0:
      return np.zeros(len(losses), bool)
    losses = losses.reshape(len(losses), -1)
    near = np.abs(losses - self.chance_loss) <= self.tolerance * self.chance_loss
    return np.all(near, axis=1)

  def run_length(self, losses, previous: int = 0) -> int:
    """The number of consecutive steps at chance that end the stream.

    Args:
      losses: the new steps, `[steps]` or `[steps, terms]`.
      previous: the run length before them (the previous epochs').

    Returns:
      `previous + len(losses)` if every new step is at chance, else the steps at chance
      after the last one that is not.
    """
    near = self.at_chance(losses)
    if near.all():
      return previous + len(near)
    return int(len(near) - 1 - np.flatnonzero(~near)[-1])

  def stalled(self, run_length: int) -> bool:
    """Whether `run_length` steps at chance fill the window."""
    return run_length >= self.window


def make_stall_check(config, num_classes: int, steps_per_epoch: int) -> Optional[StallCheck]:
  """The `StallCheck` of a validated config, or None when `stall_check.epochs` is 0.

  The window is `stall_check.epochs` epochs and at least `stall_check.min_steps` steps:
  a healthy run passes near log K while it leaves its initialization, and in very short
  epochs those first steps alone would fill an epoch.

  Args:
    config: a validated training config (`stall_check.epochs`, `.min_steps`, `.tolerance`).
    num_classes: K.
    steps_per_epoch: the run's steps per epoch.

  Returns:
    The check, or None (check off, or fewer than 2 classes).
  """
  s = config.stall_check
  if s.epochs <= 0 or num_classes < 2:
    return None
  window = max(int(math.ceil(s.epochs * steps_per_epoch)), int(s.min_steps), 1)
  return StallCheck(int(num_classes), window, float(s.tolerance))


def check_stall_config(stall_check) -> None:
  """Raises ValueError naming the key unless `stall_check` holds epochs >= 0,
  min_steps >= 0 and 0 < tolerance < 1."""
  if not stall_check.epochs >= 0:
    raise ValueError(
      f"config.stall_check.epochs must be >= 0 (0 turns the check off); got {stall_check.epochs}."
    )
  if not stall_check.min_steps >= 0:
    raise ValueError(f"config.stall_check.min_steps must be >= 0; got {stall_check.min_steps}.")
  if not 0.0 < stall_check.tolerance < 1.0:
    raise ValueError(
      f"config.stall_check.tolerance must be in (0, 1) (0.01: within 1% of "
      f"log K); got {stall_check.tolerance}."
    )


def chance_losses(metrics: Sequence[Mapping]) -> np.ndarray:
  """`[steps, terms]`: per step, the cross-entropies of `CHANCE_METRICS` the step
  reported (its `loss` when it reported none of them)."""
  keys = [k for k in CHANCE_METRICS if metrics and k in metrics[0]] or ["loss"]
  return np.array([[float(m[k]) for k in keys] for m in metrics], np.float64).reshape(
    len(metrics), len(keys)
  )


def stall_message(
  check: StallCheck,
  run_length: int,
  *,
  step: int,
  steps_per_epoch: int,
  checkpoint_step: Optional[int],
  config,
) -> str:
  """What happened and what to change, for the error of a stalled run."""
  c = config
  first = step - run_length + 1
  kept = (
    "no checkpoint was written yet"
    if checkpoint_step is None
    else f"the last good checkpoint (step {checkpoint_step}) and metrics.jsonl up to it are kept"
  )
  advice = []
  if c.recipe != "standard" and (c.eps_schedule == "constant" or c.eps_warmup_epochs <= 0):
    warm = max(1, c.num_epochs // 3)
    advice.append(
      f"an eps warm-up from eps/10 (--config.eps_schedule=linear --config.eps_warmup_epochs={warm})"
    )
  advice.append(
    f"a lower learning rate (now {c.learning_rate:g}; e.g. "
    f"--config.learning_rate={c.learning_rate / 2:g})"
  )
  if c.weight_decay > 0:
    advice.append(f"less weight decay (now {c.weight_decay:g})")
  if c.recipe == "adversarial" and c.alpha == 0.0:
    advice.append("some clean loss (--config.alpha=0.5)")
  advice.append("another seed")
  return (
    f"training stalled at chance: the training loss stayed within "
    f"{100 * check.tolerance:g}% of log({check.num_classes}) = {check.chance_loss:.4f} "
    f"for {run_length} steps ({run_length / steps_per_epoch:.1f} epochs, steps "
    f"{first}-{step}); stopped at step {step} without saving it, {kept}. Try "
    f"{', '.join(advice[:-1])} or {advice[-1]}, in a new workdir; "
    f"--config.stall_check.epochs=0 turns this check off."
  )
