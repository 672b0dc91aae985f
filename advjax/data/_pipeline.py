"""Deterministic batching with a position that is just the global step.

The order of epoch e is `default_rng([seed, e]).permutation(N)` and the augmentation
draws of step s come from `default_rng([seed, s, 1])`, so the data position of a run is
fully described by its step: a resumed run sees exactly the batches an uninterrupted one
would.
"""

from typing import Iterator, Tuple

import numpy as np

from advjax.data._grain import train_augment
from advjax.data._sources import ArrayDataset

# The training augmentations of in-memory datasets (float images; the Grain pipeline's
# TRAIN_AUGMENTS also has the random-resized crop of decoded uint8 images).
ARRAY_AUGMENTS = ("none", "flip", "pad_crop_flip")


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
  """Full batches per epoch (the remainder is dropped, reshuffled next epoch)."""
  if batch_size < 1:
    raise ValueError(f"`batch_size` must be >= 1; got {batch_size}.")
  if num_examples < batch_size:
    raise ValueError(
      f"`batch_size` {batch_size} is larger than the training set ({num_examples} examples)."
    )
  return num_examples // batch_size


def epoch_permutation(num_examples: int, seed: int, epoch: int) -> np.ndarray:
  return np.random.default_rng([seed, epoch]).permutation(num_examples)


def augment_batch(images: np.ndarray, augment: str, seed: int, step: int) -> np.ndarray:
  """The images of global step `step` through the training augmentation `augment`.

  Args:
    images: float32 [B, H, W, C].
    augment: one of ARRAY_AUGMENTS: "none", "flip" (random horizontal flip) or
      "pad_crop_flip" (CIFAR's zero-pad 4, random crop, random flip).
    seed: the run's seed.
    step: the global step (the draws depend only on seed and step).

  Returns:
    float32 [B, H, W, C].

  Raises:
    ValueError: for an unknown `augment`.
  """
  if augment not in ARRAY_AUGMENTS:
    raise ValueError(f"`augment` must be one of {list(ARRAY_AUGMENTS)}; got {augment!r}.")
  if augment == "none":
    return images
  generator = np.random.default_rng([seed, step, 1])
  return np.stack([train_augment(augment, image, generator) for image in images])


def train_batch(
  ds: ArrayDataset, batch_size: int, seed: int, step: int, augment: str = "none"
) -> Tuple[np.ndarray, np.ndarray]:
  """The training batch of global step `step` (shuffled, drop-remainder, augmented with
  `augment`, see `augment_batch`)."""
  spe = steps_per_epoch(len(ds), batch_size)
  epoch, i = divmod(step, spe)
  idx = epoch_permutation(len(ds), seed, epoch)[i * batch_size : (i + 1) * batch_size]
  images, labels = ds.get(idx)
  return augment_batch(images, augment, seed, step), labels


def iterate_train(
  ds: ArrayDataset,
  batch_size: int,
  seed: int,
  start_step: int,
  end_step: int,
  augment: str = "none",
) -> Iterator[Tuple[int, Tuple[np.ndarray, np.ndarray]]]:
  """Yields (step, train_batch(ds, batch_size, seed, step, augment)) for steps in
  [start_step, end_step)."""
  spe = steps_per_epoch(len(ds), batch_size)
  perm_epoch, perm = -1, None
  for step in range(start_step, end_step):
    epoch, i = divmod(step, spe)
    if epoch != perm_epoch:
      perm, perm_epoch = epoch_permutation(len(ds), seed, epoch), epoch
    images, labels = ds.get(perm[i * batch_size : (i + 1) * batch_size])
    yield step, (augment_batch(images, augment, seed, step), labels)


def iterate_eval(
  ds: ArrayDataset, batch_size: int
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
