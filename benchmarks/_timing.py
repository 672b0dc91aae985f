"""The benchmarks' one way to time a call: wall-clock and CPU seconds of each of a few calls."""

import time
from typing import Callable, NamedTuple, Tuple

import jax
import numpy as np


class Times(NamedTuple):
  """Seconds of each timed call.

  On a machine shared with other jobs the CPU time (summed over this process's threads) is
  the steadier measure of the work done; the wall time is what a user waits.
  """

  wall: Tuple[float, ...]
  cpu: Tuple[float, ...]

  def best(self) -> Tuple[float, float]:
    """(minimum wall time, minimum CPU time)."""
    return min(self.wall), min(self.cpu)

  def median(self) -> float:
    """The median wall time."""
    return float(np.median(self.wall))


def time_calls(fn: Callable[[], object], repeats: int, *, warmup: int = 0) -> Times:
  """Times `repeats` calls of `fn()`, each until its result is ready.

  Args:
    fn: the call; what it returns is waited for with `jax.block_until_ready` (anything
      else, a NumPy array or a torch tensor, is ready when returned).
    repeats: the number of timed calls.
    warmup: untimed calls first (compilation).

  Returns:
    The wall-clock and process CPU seconds of each timed call.
  """
  for _ in range(warmup):
    jax.block_until_ready(fn())
  walls, cpus = [], []
  for _ in range(repeats):
    w, c = time.perf_counter(), time.process_time()
    jax.block_until_ready(fn())
    walls.append(time.perf_counter() - w)
    cpus.append(time.process_time() - c)
  return Times(tuple(walls), tuple(cpus))
