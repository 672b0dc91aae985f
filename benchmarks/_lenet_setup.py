"""Shared setup of the attack benchmarks: a LeNet-5 trained on the embedded MNIST."""
import time

import numpy as np

from advjax import data, models, train


def train_lenet(epochs: int = 4, seed: int = 0, batch_size: int = 64):
  """(model, variables, logits_fn, test ArrayDataset) after a short clean training."""
  splits = data.load_mnist5k()
  model = models.get_model("lenet5", num_classes=10)
  variables = train.fit(model, splits["train"], epochs=epochs, batch_size=batch_size,
                        learning_rate=3e-3, seed=seed)
  return model, variables, models.make_logits_fn(model, variables), splits["test"]


def best_time(fn, repeats: int) -> float:
  """Minimum wall time of `fn()` over `repeats` runs (it must block)."""
  return best_times(fn, repeats)[0]


def best_times(fn, repeats: int):
  """(minimum wall time, minimum process CPU time) of `fn()` over `repeats` runs.

  On a machine shared with other jobs the CPU time (summed over this process's
  threads) is the steadier measure of the work done; the wall time is what a
  user waits.
  """
  walls, cpus = [], []
  for _ in range(repeats):
    w, c = time.perf_counter(), time.process_time()
    fn()
    walls.append(time.perf_counter() - w)
    cpus.append(time.process_time() - c)
  return float(np.min(walls)), float(np.min(cpus))
