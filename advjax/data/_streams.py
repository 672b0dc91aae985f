"""A dataset's train / validation / test splits as random-access sources, for training
on the Grain pipeline (`config.input.pipeline = "grain"`), and the evaluation slices
read from them into memory.

The same dataset names as `load_splits` ("mnist5k", "npz:PATH", "folder:PATH",
"tfds:NAME[:SPLIT]") plus "array_record:DIR" (written by `python -m experiments.prepare`).
The validation slice is carved from the training split by index (stratified when the
source lists its labels without decoding, as folders do), so nothing but an index array
is held per split; a folder or prepared set without a test split gives a fifth of its
examples to the test split, as `load_splits` does.
"""

import os
from typing import Dict, Optional, Tuple

import numpy as np

from advjax.data import _array_record
from advjax.data import _folder
from advjax.data import _grain
from advjax.data import _sources

# The test split of a dataset, in order of preference (ImageNet's is "validation").
TEST_SPLITS = ("test", "validation", "val")


class SubsetSource:
  """The examples `indices` of a random-access source, as a source.

  Examples keep the `index` of `source` they were read from (so that `describe` names
  the file), while `subset[i]` reads `source[indices[i]]`.

  Attributes:
    source: the underlying source.
    indices: int64 [M], positions in `source`.
    num_classes, channels: those of `source`.
  """

  def __init__(self, source, indices):
    self.source = source
    self.indices = np.asarray(indices, np.int64)
    if self.indices.ndim != 1 or (
      self.indices.size and (self.indices.min() < 0 or self.indices.max() >= len(source))
    ):
      raise ValueError(
        f"`indices` must be a 1-D array of positions in [0, {len(source)}); "
        f"got shape {self.indices.shape}."
      )
    self.num_classes = source.num_classes
    self.channels = getattr(source, "channels", None)

  @property
  def labels(self) -> Optional[np.ndarray]:
    labels = getattr(self.source, "labels", None)
    return None if labels is None else np.asarray(labels)[self.indices]

  def __len__(self) -> int:
    return len(self.indices)

  def __getitem__(self, index: int):
    return self.source[int(self.indices[int(index)])]

  def describe(self, index: int) -> str:
    return self.source.describe(index)

  def __repr__(self) -> str:
    return f"SubsetSource({len(self)} of {self.source!r})"


def _holdout(source, n_holdout: int, seed: int, name: str) -> Tuple[SubsetSource, SubsetSource]:
  labels = getattr(source, "labels", None)
  keep, hold = _sources.holdout_indices(
    len(source),
    n_holdout,
    seed,
    labels=None if labels is None else np.asarray(labels),
    num_classes=source.num_classes,
    name=name,
  )
  return SubsetSource(source, keep), SubsetSource(source, hold)


def _train_and_test(name: str, data_dir: Optional[str], skip_corrupt: bool, seed: int):
  """(train source, test source) of a dataset name, before the validation holdout."""

  def array(ds):
    return _grain.ArraySource(ds.images, ds.labels, num_classes=ds.num_classes)

  if name == "mnist5k":
    # mnist5k's validation slice is fixed; `open_splits` carves the run's own.
    splits = _sources.load_mnist5k()
    train, val = splits["train"], splits["validation"]
    return (
      array(
        _sources.ArrayDataset(
          np.concatenate([train.images, val.images]),
          np.concatenate([train.labels, val.labels]),
          train.num_classes,
          name,
        )
      ),
      array(splits["test"]),
    )
  if name.startswith("npz:"):
    whole = array(_sources.load_npz(name[len("npz:") :]))
    return _holdout(whole, len(whole) // 5, seed, name)
  kind, _, rest = name.partition(":")
  if kind == "folder" and rest:
    present = [s for s in TEST_SPLITS if os.path.isdir(os.path.join(rest, s))]
    if os.path.isdir(os.path.join(rest, "train")) and present:
      return (
        _folder.FolderSource(rest, split="train", skip_corrupt=skip_corrupt),
        _folder.FolderSource(rest, split=present[0], skip_corrupt=skip_corrupt),
      )
    whole = _folder.FolderSource(rest, skip_corrupt=skip_corrupt)
    return _holdout(whole, len(whole) // 5, seed, name)
  if kind == "array_record" and rest:
    splits = _array_record.read_metadata(rest)["splits"]
    present = [s for s in TEST_SPLITS if s in splits]
    if "train" in splits and present:
      return (
        _array_record.ArrayRecordSource(rest, split="train"),
        _array_record.ArrayRecordSource(rest, split=present[0]),
      )
    whole = _array_record.ArrayRecordSource(
      rest, split="train" if "train" in splits else sorted(splits)[0]
    )
    return _holdout(whole, len(whole) // 5, seed, name)
  if kind == "tfds" and rest:
    tname, _, split = rest.partition(":")
    train = _grain.TfdsSource(tname, split=split or "train", data_dir=data_dir)
    errors = []
    for test_split in TEST_SPLITS[:2]:
      try:
        return train, _grain.TfdsSource(tname, split=test_split, data_dir=data_dir)
      except ValueError as err:
        errors.append(str(err))
    raise ValueError(
      f"TFDS dataset {tname!r} has neither a 'test' nor a 'validation' split: {errors[-1]}"
    )
  raise ValueError(
    f"Unknown dataset {name!r}; expected 'mnist5k', 'npz:<path>', "
    f"'folder:<path>', 'array_record:<dir>' or 'tfds:<name>[:<split>]'."
  )


def open_splits(
  name: str,
  *,
  validation_size: int,
  seed: int = 0,
  data_dir: Optional[str] = None,
  skip_corrupt: bool = False,
) -> Dict:
  """{"train", "validation", "test"} random-access sources of a dataset.

  Args:
    name: "mnist5k", "npz:PATH", "folder:PATH" (`PATH/<class>/<image>`, or
      `PATH/train/...` with `PATH/test`, `PATH/validation` or `PATH/val`),
      "array_record:DIR" (prepared by `python -m experiments.prepare`) or
      "tfds:NAME[:SPLIT]" (prepared as array_record; test split "test", else
      "validation").
    validation_size: examples held out of the training split for validation.
    seed: the seed of the holdout(s).
    data_dir: the TFDS data folder.
    skip_corrupt: folders: leave out images that do not decode (counted in `skipped`).

  Returns:
    A dict of sources (`ArraySource`, `FolderSource`, `ArrayRecordSource`, `TfdsSource`
    or `SubsetSource`s of them); every source has `num_classes`.

  Raises:
    ValueError: for an unknown name, a missing split or unreadable data, naming it.
  """
  train, test = _train_and_test(name, data_dir, skip_corrupt, seed)
  train, validation = _holdout(train, validation_size, seed, name)
  return {"train": train, "validation": validation, "test": test}


def read_eval_split(
  source,
  *,
  num_examples: Optional[int] = None,
  transform: str = "none",
  resize: int = 256,
  crop: int = 224,
  seed: int = 0,
  batch_size: int = 256,
  worker_count: int = 0,
  name: str = "",
) -> _sources.ArrayDataset:
  """Reads (at most) `num_examples` examples of a source into memory, through the
  evaluation transform, for the evaluation suite.

  Every process reads the same examples. With `num_examples` below the source's size the
  examples are a seeded random choice (kept in source order): the first examples of an
  image folder are its first classes.

  Args:
    source: a random-access source.
    num_examples: how many; None reads all.
    transform, resize, crop: the evaluation transform (see `grain_eval_iterator`).
    seed: the seed of the choice.
    batch_size: examples read at once.
    worker_count: Grain worker processes.
    name: the dataset's name, kept in the result.

  Returns:
    An `ArrayDataset` (float32 images in [0, 1]).
  """
  grain = _grain._grain()  # pylint: disable=protected-access
  if num_examples is not None and num_examples < len(source):
    choice = np.random.default_rng(seed).choice(len(source), num_examples, replace=False)
    source = SubsetSource(source, np.sort(choice))
  batch_size = max(1, min(batch_size, len(source)))
  images, labels = [], []
  for batch in _grain.grain_eval_iterator(
    source,
    batch_size=batch_size,
    transform=transform,
    resize=resize,
    crop=crop,
    shard_options=grain.sharding.NoSharding(),
    worker_count=worker_count,
  ):
    keep = batch["mask"]
    images.append(batch["image"][keep])
    labels.append(batch["label"][keep])
  return _sources.ArrayDataset(
    np.concatenate(images), np.concatenate(labels), source.num_classes, name
  )
