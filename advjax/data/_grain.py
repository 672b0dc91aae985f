"""The input pipeline on Grain over random-access sources.

Sources (`len(source)`, `source[i] -> {"image": uint8 [H, W, C], "label": int32,
"index": int64}`): in-memory arrays (`ArraySource`), an image folder (`FolderSource`),
ArrayRecord shards written by `prepare_array_record` (`ArrayRecordSource`) and prepared
TFDS data (`TfdsSource`, through `tfds.data_source`); `open_source` picks one by name.

Pipelines: images stay uint8 through reading, decoding and the per-example transforms,
which run in Grain's worker processes (`worker_count`); the batch becomes float32 in
[0, 1] only at the end, in the consuming process. Each process reads only its part
(`grain.sharding.ShardOptions`, by default `ShardByJaxProcess`). The training stream
shuffles the whole source from a seed, again each epoch, and each process reads its
block of every global batch, so the global batches do not depend on the process count; its
iterator state (`get_state` / `set_state`, a JSON dict) restores the exact position.
Evaluation gives each process a contiguous range of the source (as Grain's `IndexSampler`
splits it) and pads and masks so that every example counts exactly once, with the same
number of batches in every process.

Grain has no image transforms (dm-pix works on float arrays in JAX, on the device); the
uint8 crops and flips here are NumPy and PIL, written by hand, following torchvision's
definitions (`RandomCrop(32, padding=4)`, `RandomResizedCrop`, `Resize` + `CenterCrop`).
Grain is imported when a pipeline or an ArrayRecord source is built, never by
`import advjax.data`.
"""

import math
import os
from typing import Dict, Iterator, Optional, Tuple

import numpy as np

from advjax import _extras
from advjax.data import _array_record
from advjax.data import _folder
from advjax.data import _sources

TRAIN_AUGMENTS = ("pad_crop_flip", "random_resized_crop_flip", "flip", "none")
EVAL_TRANSFORMS = ("resize_center_crop", "none")
DEFAULT_READ_THREADS = 4  # batches read at once, per process (or per worker)
DEFAULT_READ_AHEAD = 4  # batches read ahead, per process (or per worker)
Example = Dict[str, np.ndarray]
# The TFDS loader's diagnosis (found TFRecord, not prepared, ...), shared within advjax.data.
_explain_tfds_failure = _sources._explain_tfds_failure  # pylint: disable=protected-access


def _grain():
  _extras.require("advjax.data's Grain pipeline", "grain")
  import grain  # pylint: disable=import-outside-toplevel

  return grain


# --------------------------------------------------------------------------- #
# Sources
# --------------------------------------------------------------------------- #
class ArraySource:
  """In-memory images as a Grain random-access source.

  Float images in [0, 1] are stored as uint8 (rounded to k/255, exact for images that
  came from 8-bit files, as MNIST does); uint8 images are kept as they are.

  Attributes:
    images: uint8 [N, H, W, C].
    labels: int32 [N].
    num_classes: the number of classes.
    channels: C.
  """

  def __init__(self, images, labels, *, num_classes: Optional[int] = None):
    """Wraps arrays.

    Args:
      images: [N, H, W, C] or [N, H, W]; uint8, or float in [0, 1].
      labels: int [N].
      num_classes: defaults to max(labels) + 1.

    Raises:
      ValueError: for a wrong rank, float values outside [0, 1], or a length mismatch.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim == 3:
      images = images[..., None]
    if images.ndim != 4:
      raise ValueError(f"`images` must be [N, H, W, C] or [N, H, W]; got shape {images.shape}.")
    if labels.shape != (len(images),):
      raise ValueError(
        f"`labels` must be [N] with N = {len(images)} images; got shape {labels.shape}."
      )
    if images.dtype != np.uint8:
      if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"`images` must be uint8 or float in [0, 1]; got {images.dtype}.")
      if images.size and (images.min() < 0 or images.max() > 1):
        raise ValueError(
          f"float `images` must be in [0, 1]; got [{images.min():.3g}, {images.max():.3g}]."
        )
      images = np.round(images * 255).astype(np.uint8)
    self.images, self.labels = images, labels.astype(np.int32)
    self.num_classes = int(
      num_classes if num_classes is not None else (self.labels.max() + 1 if self.labels.size else 0)
    )
    self.channels = images.shape[-1]

  def __len__(self) -> int:
    return len(self.labels)

  def __getitem__(self, index: int) -> Example:
    index = int(index)
    return {"image": self.images[index], "label": self.labels[index], "index": np.int64(index)}

  def describe(self, index: int) -> str:
    return f"array example {int(index)}"

  def __repr__(self) -> str:
    return f"ArraySource({len(self)} images {self.images.shape[1:]}, {self.num_classes} classes)"


class TfdsSource:
  """A prepared TFDS split read with `tfds.data_source` (array_record, no TensorFlow).

  Attributes:
    name, split: the dataset and split.
    num_classes: from the builder's `label` feature.
  """

  def __init__(
    self,
    name: str,
    *,
    split: str = "train",
    data_dir: Optional[str] = None,
    image_key: str = "image",
    label_key: str = "label",
  ):
    """Opens the split.

    Raises:
      ValueError: when the data is missing, the split does not exist, or it is in a
        format `tfds.data_source` cannot read (saying which and what to run).
    """
    _extras.require("advjax.data.TfdsSource", "tensorflow_datasets")
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

    self.name, self.split = name, split
    self._keys = (image_key, label_key)
    try:
      known = list(tfds.builder(name, data_dir=data_dir).info.splits)
    except Exception as err:  # pylint: disable=broad-except
      raise _explain_tfds_failure(name, data_dir, err) from err
    if known and split.split("[")[0] not in known:  # known once the data is prepared
      raise ValueError(f"TFDS dataset {name!r} has no split {split!r}; it has {sorted(known)}.")
    try:
      self._source = tfds.data_source(name, split=split, data_dir=data_dir)
      self.num_classes = tfds.builder(name, data_dir=data_dir).info.features[label_key].num_classes
    except Exception as err:  # pylint: disable=broad-except
      raise _explain_tfds_failure(name, data_dir, err) from err

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> Example:
    item = self._source[int(index)]
    image = np.asarray(item[self._keys[0]])
    if image.ndim == 2:
      image = image[..., None]
    if image.dtype != np.uint8:
      raise ValueError(f"{self.describe(index)}: expected a uint8 image; got {image.dtype}.")
    return {"image": image, "label": np.int32(item[self._keys[1]]), "index": np.int64(index)}

  def describe(self, index: int) -> str:
    return f"example {int(index)} of tfds {self.name!r} split {self.split!r}"


def open_source(
  name: str, *, split: str = "train", data_dir: Optional[str] = None, skip_corrupt: bool = False
):
  """A random-access source by name.

  Args:
    name: "folder:PATH" (`PATH/<class>/<image>`, or `PATH/<split>/<class>/<image>`),
      "array_record:DIR" (written by `python -m experiments.prepare`), "tfds:NAME"
      (prepared as array_record) or "mnist5k" (the embedded MNIST, in memory).
    split: "train", "validation", "val", "test" (what the data holds).
    data_dir: the TFDS data folder.
    skip_corrupt: for folders: leave out images that do not decode (counted in
      `source.skipped`).

  Returns:
    A `FolderSource`, `ArrayRecordSource`, `TfdsSource` or `ArraySource`.

  Raises:
    ValueError: for an unknown name or split, or data that cannot be read.
  """
  kind, _, rest = name.partition(":")
  if kind == "folder" and rest:
    has_splits = any(os.path.isdir(os.path.join(rest, s)) for s in _folder.SPLIT_NAMES)
    if not has_splits and split == "train":
      return _folder.FolderSource(rest, skip_corrupt=skip_corrupt)
    return _folder.FolderSource(rest, split=split, skip_corrupt=skip_corrupt)
  if kind == "array_record" and rest:
    return _array_record.ArrayRecordSource(rest, split=split)
  if kind == "tfds" and rest:
    return TfdsSource(rest, split=split, data_dir=data_dir)
  if name == "mnist5k":
    splits = _sources.load_mnist5k()
    if split not in splits:
      raise ValueError(f"mnist5k has no split {split!r}; it has {sorted(splits)}.")
    ds = splits[split]
    return ArraySource(ds.images, ds.labels, num_classes=ds.num_classes)
  raise ValueError(
    f"unknown source {name!r}; expected 'folder:PATH', 'array_record:DIR', "
    f"'tfds:NAME' or 'mnist5k'."
  )


# --------------------------------------------------------------------------- #
# uint8 transforms (one example, NumPy + PIL, run in the Grain workers)
# --------------------------------------------------------------------------- #
def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
  """Bilinear resize of uint8 [H, W, C] with PIL (antialiased when shrinking, as
  torchvision's PIL path is)."""
  from PIL import Image  # pylint: disable=import-outside-toplevel

  if image.shape[:2] == (height, width):
    return image
  out = np.asarray(
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).resize(
      (width, height), Image.BILINEAR
    )
  )
  return out[..., None] if out.ndim == 2 else out


def pad_crop_flip(image: np.ndarray, generator: np.random.Generator, *, pad: int = 4) -> np.ndarray:
  """CIFAR training augmentation: zero-pad by `pad`, random crop back to H x W, random
  horizontal flip (torchvision `RandomCrop(H, padding=pad)` + `RandomHorizontalFlip`).

  Args:
    image: uint8 [H, W, C].
    generator: NumPy generator (Grain's per-example one).
    pad: pixels of zero padding on each side.

  Returns:
    uint8 [H, W, C].
  """
  h, w = image.shape[:2]
  padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
  y, x = generator.integers(0, 2 * pad + 1, size=2)
  out = padded[y : y + h, x : x + w]
  return out[:, ::-1] if generator.random() < 0.5 else out


def random_resized_crop_flip(
  image: np.ndarray,
  generator: np.random.Generator,
  *,
  size: int,
  scale: Tuple[float, float] = (0.08, 1.0),
  ratio: Tuple[float, float] = (3 / 4, 4 / 3),
) -> np.ndarray:
  """ImageNet training augmentation: Inception-style random-resized crop to
  `size` x `size` and a random horizontal flip (torchvision `RandomResizedCrop(size)` +
  `RandomHorizontalFlip`: 10 tries at an area fraction in `scale` and an aspect ratio
  log-uniform in `ratio`, else the central crop of the clamped ratio).

  Args:
    image: uint8 [H, W, C].
    generator: NumPy generator.
    size: output side.
    scale: range of the crop's area fraction.
    ratio: range of its aspect ratio (width / height).

  Returns:
    uint8 [size, size, C].
  """
  h, w = image.shape[:2]
  area = h * w
  log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
  for _ in range(10):
    target = area * generator.uniform(*scale)
    aspect = math.exp(generator.uniform(*log_ratio))
    cw = int(round(math.sqrt(target * aspect)))
    ch = int(round(math.sqrt(target / aspect)))
    if 0 < cw <= w and 0 < ch <= h:
      top = int(generator.integers(0, h - ch + 1))
      left = int(generator.integers(0, w - cw + 1))
      break
  else:
    in_ratio = w / h
    if in_ratio < ratio[0]:
      cw, ch = w, int(round(w / ratio[0]))
    elif in_ratio > ratio[1]:
      ch, cw = h, int(round(h * ratio[1]))
    else:
      cw, ch = w, h
    top, left = (h - ch) // 2, (w - cw) // 2
  out = _resize(image[top : top + ch, left : left + cw], size, size)
  return out[:, ::-1] if generator.random() < 0.5 else out


def resize_center_crop(image: np.ndarray, *, resize: int = 256, crop: int = 224) -> np.ndarray:
  """Evaluation preprocessing: the shorter side resized to `resize` (bilinear), then the
  central `crop` x `crop` (torchvision `Resize(256)` + `CenterCrop(224)`, RobustBench's
  "Res256Crop224" for ImageNet).

  Args:
    image: uint8 [H, W, C].
    resize: the shorter side after resizing.
    crop: the output side (<= resize).

  Returns:
    uint8 [crop, crop, C].
  """
  h, w = image.shape[:2]
  if h <= w:
    nh, nw = resize, int(resize * w / h)
  else:
    nh, nw = int(resize * h / w), resize
  out = _resize(image, nh, nw)
  top = int(round((nh - crop) / 2.0))
  left = int(round((nw - crop) / 2.0))
  return out[top : top + crop, left : left + crop]


def train_augment(
  kind: str, image: np.ndarray, generator: np.random.Generator, **options
) -> np.ndarray:
  """One image through the training augmentation `kind` (one of TRAIN_AUGMENTS).

  Args:
    kind: "pad_crop_flip", "random_resized_crop_flip" (needs `size`), "flip" (random
      horizontal flip) or "none".
    image: [H, W, C]; uint8, or float for every kind but "random_resized_crop_flip".
    generator: NumPy generator of the random draws.
    **options: the kind's keyword arguments (e.g. `pad`, `size`).

  Returns:
    The augmented image, of image's dtype.
  """
  if kind == "pad_crop_flip":
    return pad_crop_flip(image, generator, **options)
  if kind == "random_resized_crop_flip":
    return random_resized_crop_flip(image, generator, **options)
  if kind == "flip":
    return image[:, ::-1] if generator.random() < 0.5 else image
  if kind == "none":
    return image
  raise ValueError(
    f"unknown training augmentation {kind!r}; expected one of {list(TRAIN_AUGMENTS)}."
  )


class _Transform:
  """One example's transform, picklable for Grain's worker processes.

  `kind` names the transform; `shape` is the (H, W, C) every example must have before a
  transform that keeps the size (else the batch could not be stacked): a mismatch is a
  ValueError naming the example's file."""

  def __init__(self, kind: str, source, shape: Optional[Tuple[int, ...]], **options):
    self.kind, self.source, self.shape, self.options = kind, source, shape, options

  def _check(self, example: Example) -> np.ndarray:
    image = example["image"]
    if self.shape is not None and image.shape != self.shape:
      raise ValueError(
        f"image {self.source.describe(example['index'])} has shape {image.shape}, the "
        f"first image {self.shape}: transform {self.kind!r} needs one size; use "
        f"'random_resized_crop_flip' (training) or 'resize_center_crop' (evaluation), "
        f"or resize the data."
      )
    return image

  def __call__(self, example: Example, generator: Optional[np.random.Generator] = None) -> Example:
    image = self._check(example)
    if self.kind == "resize_center_crop":
      image = resize_center_crop(image, **self.options)
    else:
      image = train_augment(self.kind, image, generator, **self.options)
    return {**example, "image": np.ascontiguousarray(image)}


def _to_float(batch: Example) -> Example:
  """The end of the pipeline: uint8 images become float32 in [0, 1]."""
  return {**batch, "image": batch["image"].astype(np.float32) / np.float32(255)}


# --------------------------------------------------------------------------- #
# Sharding
# --------------------------------------------------------------------------- #
def _shard(shard_options, drop_remainder: bool):
  grain = _grain()
  if shard_options is None:
    return grain.sharding.ShardByJaxProcess(drop_remainder=drop_remainder)
  if not isinstance(shard_options, grain.sharding.ShardOptions):
    raise ValueError(
      f"`shard_options` must be a grain.sharding.ShardOptions; got {shard_options!r}."
    )
  return shard_options


def shard_range(num_examples: int, shard_options) -> Tuple[int, int]:
  """[start, end) of the examples `shard_options` gives this process: contiguous, sizes
  within one of each other (the first `num_examples % shard_count` shards one larger),
  or all equal dropping the rest with `drop_remainder` (as Grain's `IndexSampler` splits;
  Grain's own helper is private)."""
  per, rest = divmod(num_examples, shard_options.shard_count)
  i = shard_options.shard_index
  start, end = per * i, per * (i + 1)
  if rest and not shard_options.drop_remainder:
    start, end = start + min(i, rest), end + min(i + 1, rest)
  return start, end


def _local_batch(batch_size: int, shard_options) -> int:
  if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
    raise ValueError(f"`batch_size` must be an integer >= 1; got {batch_size!r}.")
  if batch_size % shard_options.shard_count:
    raise ValueError(
      f"`batch_size` {batch_size} (global) must be divisible by the "
      f"process count {shard_options.shard_count}."
    )
  return batch_size // shard_options.shard_count


def _finish(
  grain, ds, *, worker_count: int, worker_buffer_size: int, read_options, float_images: bool
):
  if not isinstance(worker_count, int) or worker_count < 0:
    raise ValueError(f"`worker_count` must be an integer >= 0; got {worker_count!r}.")
  # Batches are formed before reading, so Grain's read-ahead counts batches: its default
  # (500) would hold hundreds of ImageNet batches per worker.
  ds = ds.to_iter_dataset(
    read_options
    or grain.ReadOptions(num_threads=DEFAULT_READ_THREADS, prefetch_buffer_size=DEFAULT_READ_AHEAD)
  )
  if worker_count:
    # Grain <= 0.2.18 reads an absl flag when it starts workers next to JAX, which
    # fails in a program that never parsed absl flags (a notebook, pytest):
    # google/grain#1355, fixed upstream in #1362. Its workaround: mark them parsed
    # (defaults), only when nothing parsed them.
    from absl import flags  # pylint: disable=import-outside-toplevel

    if not flags.FLAGS.is_parsed():
      flags.FLAGS.mark_as_parsed()
    ds = ds.mp_prefetch(
      grain.MultiprocessingOptions(
        num_workers=worker_count, per_worker_buffer_size=worker_buffer_size
      )
    )
  return ds.map(_to_float) if float_images else ds


# --------------------------------------------------------------------------- #
# Training and evaluation iterators
# --------------------------------------------------------------------------- #
def grain_train_iterator(
  source,
  *,
  batch_size: int,
  seed: int,
  augment: str = "pad_crop_flip",
  image_size: Optional[int] = None,
  num_epochs: Optional[int] = None,
  shard_options=None,
  worker_count: int = 0,
  worker_buffer_size: int = 1,
  read_options=None,
  float_images: bool = True,
):
  """The training stream: the whole source shuffled from `seed` each epoch, augmented,
  batched; each process reads only its part of every global batch.

  The global stream is the source in a new order every epoch (Grain's
  `MapDataset.shuffle` from `seed`), repeated `num_epochs` times (forever if None); global
  batch k is its elements [k * B, (k + 1) * B), and process p of P reads block p of it,
  elements [k * B + p * b, k * B + (p + 1) * b) (its local batch of b = B / P). So the
  global batches, in order, and each example's augmentation (drawn from Grain's
  per-example generator, seeded by `seed` and the element's position in the global
  stream), do not depend on the process count or on `worker_count`; a batch may
  straddle two epochs.

  Args:
    source: a random-access source (`ArraySource`, `FolderSource`, ...).
    batch_size: the global batch; each of the `shard_count` processes yields
      `batch_size // shard_count` examples per batch.
    seed: shuffle and augmentation seed, in [0, 2**32).
    augment: "pad_crop_flip" (CIFAR: pad 4, random crop, flip), "random_resized_crop_flip"
      (ImageNet, to `image_size`), "flip" or "none".
    image_size: output side for "random_resized_crop_flip" (required there).
    num_epochs: epochs before the iterator ends; None repeats forever.
    shard_options: a `grain.sharding.ShardOptions`; default `ShardByJaxProcess` (this
      JAX process's index and the process count); every process yields as many batches.
    worker_count: Grain worker processes that read, decode and augment (0 = in this
      process, with `read_options`' threads).
    worker_buffer_size: batches each worker prepares ahead.
    read_options: a `grain.ReadOptions`: threads reading batches at once and batches
      read ahead, in each worker (default 4 and 4).
    float_images: make images float32 in [0, 1] at the end (else uint8 batches, for a
      train step that converts on the device).

  Returns:
    A Grain `DatasetIterator` of `{"image": float32 [b, H, W, C], "label": int32 [b],
    "index": int64 [b]}` (index = the example's position in `source`). Its `get_state()`
    is a JSON-serializable dict; `set_state(state)` on an iterator built with the same
    arguments continues exactly where the state was taken.

  Raises:
    ValueError: for an unknown augmentation, a bad batch size, seed or worker count, a
      source smaller than one batch, or (when a batch is read) images of different sizes
      with an augmentation that keeps the size.
  """
  grain = _grain()
  if augment not in TRAIN_AUGMENTS:
    raise ValueError(f"`augment` must be one of {TRAIN_AUGMENTS}; got {augment!r}.")
  if augment == "random_resized_crop_flip" and not image_size:
    raise ValueError("`image_size` is required with augment='random_resized_crop_flip'.")
  if not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
    raise ValueError(f"`seed` must be an integer in [0, 2**32); got {seed!r}.")
  if num_epochs is not None and num_epochs < 1:
    raise ValueError(f"`num_epochs` must be >= 1 or None; got {num_epochs!r}.")
  shard = _shard(shard_options, drop_remainder=True)
  local = _local_batch(batch_size, shard)
  if len(source) < batch_size:
    raise ValueError(
      f"the source holds {len(source)} examples, fewer than one batch of {batch_size}."
    )
  if augment == "random_resized_crop_flip":
    transform = _Transform(augment, source, None, size=int(image_size))
  else:
    transform = _Transform(augment, source, tuple(source[0]["image"].shape))
  ds = grain.MapDataset.source(source).seed(int(seed)).shuffle().repeat(num_epochs)
  if num_epochs is not None:  # whole global batches only: every process as many batches
    ds = ds[: num_epochs * len(source) // batch_size * batch_size]
  # chunks of B / P consecutive elements; process p reads chunks p, p + P, ...: the local
  # batches of a global batch are its consecutive blocks, in process order
  ds = ds.random_map(transform).batch(local, drop_remainder=True)
  ds = ds[shard.shard_index :: shard.shard_count]
  return iter(
    _finish(
      grain,
      ds,
      worker_count=worker_count,
      worker_buffer_size=worker_buffer_size,
      read_options=read_options,
      float_images=float_images,
    )
  )


class _Padding:
  """The padding example (mask False, index -1, zeros) appended to a shard."""

  def __init__(self, example: Example):
    self.example = {k: np.zeros_like(v) for k, v in example.items()}
    self.example["index"] = np.int64(-1)
    self.example["mask"] = np.bool_(False)

  def __call__(self, _):
    return self.example


def _with_mask(example: Example) -> Example:
  return {**example, "mask": np.bool_(True)}


def num_eval_batches(num_examples: int, batch_size: int, process_count: int = 1) -> int:
  """Batches `grain_eval_iterator` yields in every process: ceil(ceil(N / P) / (B / P))."""
  local = batch_size // process_count
  return -(-(-(-num_examples // process_count)) // local)


def grain_eval_iterator(
  source,
  *,
  batch_size: int,
  transform: str = "none",
  resize: int = 256,
  crop: int = 224,
  shard_options=None,
  worker_count: int = 0,
  worker_buffer_size: int = 1,
  read_options=None,
  float_images: bool = True,
) -> Iterator[Example]:
  """Every example of `source` exactly once, in order, over all processes.

  Each process reads its contiguous shard (`shard_range`, no remainder dropped), pads it
  with masked zero examples to `num_eval_batches(...) * local batch`, the same count in
  every process so that they step in lockstep (big_vision's evaluators do the same).

  Args:
    source: a random-access source.
    batch_size: the global batch; each process yields `batch_size // shard_count`.
    transform: "resize_center_crop" (shorter side to `resize`, central `crop`:
      RobustBench's Res256Crop224 for ImageNet) or "none" (images must share one size).
    resize, crop: the sizes of "resize_center_crop".
    shard_options: a `grain.sharding.ShardOptions`; default `ShardByJaxProcess`. Its
      `drop_remainder` is ignored: evaluation never drops an example.
    worker_count, worker_buffer_size, read_options, float_images: as for
      `grain_train_iterator`.

  Returns:
    An iterator of `{"image": [b, H, W, C], "label": int32 [b], "index": int64 [b],
    "mask": bool [b]}`; padding has mask False and index -1.

  Raises:
    ValueError: for an unknown transform, a bad batch size, crop > resize, or (when a
      batch is read) images of different sizes with transform "none".
  """
  grain = _grain()
  if transform not in EVAL_TRANSFORMS:
    raise ValueError(f"`transform` must be one of {EVAL_TRANSFORMS}; got {transform!r}.")
  if transform == "resize_center_crop" and not 0 < crop <= resize:
    raise ValueError(f"`crop` must be in (0, resize={resize}]; got {crop!r}.")
  shard = _shard(shard_options, drop_remainder=False)
  shard = grain.sharding.ShardOptions(shard.shard_index, shard.shard_count, drop_remainder=False)
  local = _local_batch(batch_size, shard)
  start, end = shard_range(len(source), shard)
  if transform == "resize_center_crop":
    fn = _Transform(transform, source, None, resize=int(resize), crop=int(crop))
  else:
    fn = _Transform(transform, source, tuple(source[0]["image"].shape))
  total = num_eval_batches(len(source), batch_size, shard.shard_count) * local
  parts = []
  if end > start:
    parts.append(grain.MapDataset.source(source)[start:end].map(fn).map(_with_mask))
  if total > end - start:
    parts.append(
      grain.MapDataset.range(total - (end - start)).map(_Padding(_with_mask(fn(source[0]))))
    )
  ds = parts[0] if len(parts) == 1 else grain.MapDataset.concatenate(parts)
  ds = ds.batch(local)
  return iter(
    _finish(
      grain,
      ds,
      worker_count=worker_count,
      worker_buffer_size=worker_buffer_size,
      read_options=read_options,
      float_images=float_images,
    )
  )
