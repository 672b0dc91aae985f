"""Deterministic batching with a position that is just the global step.

The order of epoch e is `default_rng([seed, e]).permutation(N)`, so the data
position of a run is fully described by its step: a resumed run sees exactly the
batches an uninterrupted one would.
"""
from typing import Iterator, Tuple

import numpy as np

from advjax.data._sources import ArrayDataset


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
  """Full batches per epoch (the remainder is dropped, reshuffled next epoch)."""
  if batch_size < 1:
    raise ValueError(f"`batch_size` must be >= 1; got {batch_size}.")
  if num_examples < batch_size:
    raise ValueError(f"`batch_size` {batch_size} is larger than the training set "
                     f"({num_examples} examples).")
  return num_examples // batch_size


def epoch_permutation(num_examples: int, seed: int, epoch: int) -> np.ndarray:
  return np.random.default_rng([seed, epoch]).permutation(num_examples)


def train_batch(ds: ArrayDataset, batch_size: int, seed: int, step: int
                ) -> Tuple[np.ndarray, np.ndarray]:
  """The training batch of global step `step` (shuffled, drop-remainder)."""
  spe = steps_per_epoch(len(ds), batch_size)
  epoch, i = divmod(step, spe)
  idx = epoch_permutation(len(ds), seed, epoch)[i * batch_size:(i + 1) * batch_size]
  return ds.get(idx)


def iterate_train(ds: ArrayDataset, batch_size: int, seed: int, start_step: int,
                  end_step: int) -> Iterator[Tuple[int, Tuple[np.ndarray, np.ndarray]]]:
  """Yields (step, (images, labels)) for steps in [start_step, end_step)."""
  spe = steps_per_epoch(len(ds), batch_size)
  perm_epoch, perm = -1, None
  for step in range(start_step, end_step):
    epoch, i = divmod(step, spe)
    if epoch != perm_epoch:
      perm, perm_epoch = epoch_permutation(len(ds), seed, epoch), epoch
    yield step, ds.get(perm[i * batch_size:(i + 1) * batch_size])


def iterate_eval(ds: ArrayDataset, batch_size: int
                 ) -> Iterator[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
  """Yields (images, labels, mask) over the whole set in order.

  The last batch is padded to `batch_size` (a fixed shape, so one compiled
  function serves every batch); `mask` is False on the padding.
  """
  n = len(ds)
  for start in range(0, n, batch_size):
    idx = np.arange(start, min(start + batch_size, n))
    x, y = ds.get(idx)
    mask = np.ones(len(idx), bool)
    pad = batch_size - len(idx)
    if pad:
      x = np.concatenate([x, np.repeat(x[-1:], pad, 0)])
      y = np.concatenate([y, np.repeat(y[-1:], pad, 0)])
      mask = np.concatenate([mask, np.zeros(pad, bool)])
    yield x, y, mask
