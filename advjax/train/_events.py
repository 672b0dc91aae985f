"""What a long run shows while it runs: TensorBoard event files and the progress bar's rates.

The event files are written with tensorboardX (a maintained writer that needs no
TensorFlow), beside `metrics.jsonl`, by process 0 only: on several hosts every
process runs the same loop, and one of them writes.
"""

import os
import sys
import time
from typing import Dict, Mapping, Optional

import jax


def _summary_writer():
  """tensorboardX's `SummaryWriter`, imported without importing torch.

  tensorboardX imports torch at import time when it is installed, only to accept torch
  tensors (seconds of startup in every training process; advjax passes floats). While
  torch is not loaded yet, it is hidden from that one import (`sys.modules["torch"] =
  None` makes `import torch` raise ImportError, which tensorboardX handles) and unhidden
  at once; a later `import torch` works as usual."""
  if "torch" in sys.modules:
    from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel

    return SummaryWriter
  sys.modules["torch"] = None
  try:
    from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel
  finally:
    if sys.modules.get("torch", 0) is None:
      del sys.modules["torch"]
  return SummaryWriter


class EventWriter:
  """Scalars to TensorBoard event files under `logdir` (process 0 only; a no-op elsewhere).

  A resumed run starts writing at its restored step with `purge_step`, so
  TensorBoard drops the points a killed run wrote after its last checkpoint and
  the curves show each step once.

  Args:
    logdir: the folder of the event files (`<workdir>/tensorboard`).
    start_step: the step the run starts (or resumes) at.
    enabled: False writes nothing (e.g. a process other than 0).
  """

  def __init__(self, logdir: str, *, start_step: int = 0, enabled: Optional[bool] = None):
    if enabled is None:
      enabled = jax.process_index() == 0
    self._writer = None
    if enabled:
      os.makedirs(logdir, exist_ok=True)
      self._writer = _summary_writer()(logdir, purge_step=start_step or None, flush_secs=30)

  def scalars(self, step: int, values: Mapping[str, Optional[float]], *, prefix: str = "") -> None:
    """Writes each number of `values` as `prefix + name` at `step` (None, strings and
    other non-numbers are skipped)."""
    if self._writer is None:
      return
    for name, value in values.items():
      if isinstance(value, (bool, str)) or value is None:
        continue
      try:
        value = float(value)
      except (TypeError, ValueError):
        continue
      self._writer.add_scalar(prefix + name, value, global_step=int(step))

  def flush(self) -> None:
    if self._writer is not None:
      self._writer.flush()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
      self._writer = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


class Throughput:
  """Images/s and the fraction of wall time spent waiting for input, for the progress bar.

  `wait()` times the fetch of a batch (the data-wait part); `step()` counts its
  images. `rates()` measures the window since its last call (or since `restart()`) and
  folds it into an exponential moving average, so the shown rate moves smoothly from
  one window to the next. The first `skip` steps (the first step compiles the train
  step) are not counted, nor is their time; `restart()` starts a new window without
  counting the time before it (validation, checkpointing).

  Args:
    smoothing: weight of the newest window in the average (1: no smoothing).
    skip: steps left out at the start (their time too).
  """

  def __init__(self, *, smoothing: float = 0.3, skip: int = 1):
    if not 0.0 < smoothing <= 1.0:
      raise ValueError(f"smoothing must be in (0, 1]; got {smoothing!r}.")
    self._smoothing = smoothing
    self._skip = int(skip)
    self._ema = {"images_per_s": None, "data_wait": None}
    self.restart()

  def restart(self) -> None:
    """Starts a new window now; the time since the last window is not counted."""
    self._start = time.perf_counter()
    self._waiting = 0.0
    self._images = 0

  def wait(self, iterator):
    """`next(iterator)`, timing how long the loop waited for it (StopIteration passes)."""
    t = time.perf_counter()
    try:
      return next(iterator)
    finally:
      self._waiting += time.perf_counter() - t

  def step(self, num_images: int) -> None:
    """Counts a finished step of `num_images` images (a skipped step restarts the
    window after it)."""
    if self._skip > 0:
      self._skip -= 1
      self.restart()
      return
    self._images += int(num_images)

  def rates(self) -> Dict[str, float]:
    """{'images_per_s', 'data_wait'}: the moving averages, with the window since the
    last call folded in (an empty window changes nothing and is kept open); 0.0 before
    any step is counted."""
    if self._images:
      now = time.perf_counter()
      elapsed = max(now - self._start, 1e-9)
      window = {"images_per_s": self._images / elapsed, "data_wait": self._waiting / elapsed}
      for k, v in window.items():
        old = self._ema[k]
        self._ema[k] = v if old is None else (1 - self._smoothing) * old + self._smoothing * v
      self.restart()
    return {k: (0.0 if v is None else v) for k, v in self._ema.items()}
