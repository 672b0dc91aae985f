"""An ImageNet-style image folder as a random-access source of uint8 examples.

Layout: `PATH/<class>/<image>` (classes sorted by name are labels 0..K-1), or, with a
split, `PATH/<split>/<class>/<image>`. Images are decoded with PIL inside the Grain
worker that reads them; the listing is made once, in the process that builds the source.
"""

import concurrent.futures
import io
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from advjax import _extras

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
SPLIT_NAMES = ("train", "validation", "val", "test")
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")
# How PIL names an in-memory file in its messages ("<_io.BytesIO object at 0x7f...>").
_FILE_OBJECT = re.compile(r"\s*<[^<>]*\bobject at 0x[0-9a-fA-F]+>")


def _pil():
  _extras.require("advjax.data (image decoding)", "PIL")
  from PIL import Image  # pylint: disable=import-outside-toplevel

  return Image


def image_mode(channels: int) -> str:
  """The PIL mode every image is converted to: "L" for 1 channel, "RGB" for 3."""
  if channels not in (1, 3):
    raise ValueError(f"`channels` must be 1 or 3; got {channels!r}.")
  return "L" if channels == 1 else "RGB"


def _reason(err: Exception, path: Optional[str] = None) -> str:
  """Why an image could not be read, in words: no file object's repr, no path (the
  caller's message names the file once)."""
  if isinstance(err, _pil().UnidentifiedImageError):
    return "not an image format PIL recognises (empty, damaged or not an image)"
  if isinstance(err, OSError) and err.strerror:
    return err.strerror  # "No such file or directory", without the path again
  text = _FILE_OBJECT.sub("", str(err))
  if path:
    text = text.replace(repr(path), "").replace(path, "")
  return " ".join(text.split()).strip(" :") or type(err).__name__


def decode_image(data: bytes, channels: int, name: str) -> np.ndarray:
  """Decodes PNG/JPEG/... bytes to uint8 [H, W, channels].

  Args:
    data: the encoded image.
    channels: 1 (grayscale) or 3 (RGB); other modes (CMYK, palette, RGBA) are converted.
    name: what to call the image in an error (its path).

  Returns:
    uint8 [H, W, channels].

  Raises:
    ValueError: naming `name` when the bytes are not a readable image.
  """
  pil = _pil()
  try:
    with pil.open(io.BytesIO(data)) as img:
      img.load()  # decodes fully: a truncated file fails here, not later
      arr = np.asarray(img.convert(image_mode(channels)), np.uint8)
  except (OSError, SyntaxError, ValueError, pil.DecompressionBombError) as err:
    raise ValueError(f"cannot decode image {name}: {_reason(err)}") from err
  return arr[..., None] if arr.ndim == 2 else arr


def channels_of(path: str) -> int:
  """1 if the image at `path` is grayscale, else 3 (read from the header only).

  Raises:
    ValueError: naming `path` and the reason when it cannot be read.
  """
  pil = _pil()
  try:
    with pil.open(path) as img:
      return 1 if img.mode in _GRAY_MODES else 3
  except (OSError, SyntaxError, ValueError) as err:
    raise ValueError(f"cannot read image {path}: {_reason(err, path)}") from err


def split_folder(path: str, split: Optional[str]) -> str:
  """The folder of class sub-folders for `split` (`path` itself when `split` is None).

  Raises:
    ValueError: if `path` is not a folder, or `split` is not one of its sub-folders.
  """
  if not os.path.isdir(path):
    raise ValueError(f"image folder {path!r} is not a directory.")
  if split is None:
    return path
  folder = os.path.join(path, split)
  if not os.path.isdir(folder):
    present = sorted(d for d in os.listdir(path) if d in SPLIT_NAMES)
    raise ValueError(
      f"image folder {path!r} has no split {split!r} (no folder {folder}); "
      f"splits present: {present or 'none'}."
    )
  return folder


def list_image_folder(path: str) -> Tuple[List[str], List[str], np.ndarray]:
  """Lists `path/<class>/<image>`: classes sorted by name, files sorted within a class.

  Args:
    path: the folder of class sub-folders.

  Returns:
    (class_names, file paths, int32 labels [N]).

  Raises:
    ValueError: naming the path when it has no class sub-folders or a class folder
      holds no image.
  """
  if not os.path.isdir(path):
    raise ValueError(f"image folder {path!r} is not a directory.")
  classes = sorted(e.name for e in os.scandir(path) if e.is_dir())
  if not classes:
    raise ValueError(
      f"image folder {path!r} has no class sub-folders; expected "
      f"{os.path.join(path, '<class>', '<image>.jpg')}."
    )
  files, labels = [], []
  for label, name in enumerate(classes):
    folder = os.path.join(path, name)
    found = sorted(
      e.name
      for e in os.scandir(folder)
      if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS)
    )
    if not found:
      raise ValueError(
        f"class folder {folder!r} holds no image: image folder {path!r} "
        f"has no images ({', '.join(IMAGE_EXTENSIONS)}) of class {name!r}."
      )
    files.extend(os.path.join(folder, f) for f in found)
    labels.extend([label] * len(found))
  return classes, files, np.asarray(labels, np.int32)


def _why_unreadable(path: str, channels: int) -> Optional[str]:
  try:
    with open(path, "rb") as f:
      data = f.read()
  except OSError as err:
    return _reason(err, path)
  try:
    decode_image(data, channels, path)
  except ValueError as err:
    return _reason(err.__cause__ or err, path)
  return None


def corrupt_reasons(
  paths: Sequence[str], channels: int, *, num_threads: int = 8
) -> List[Optional[str]]:
  """Why each image fails to decode, or None where it decodes (each decoded fully, PIL in
  a thread pool). Whether an image decodes does not depend on `channels` (PIL converts
  any mode to L and RGB), so a guess serves before the channel count is known."""
  with concurrent.futures.ThreadPoolExecutor(num_threads) as pool:
    return list(pool.map(lambda p: _why_unreadable(p, channels), paths))


def find_corrupt(paths: Sequence[str], channels: int, *, num_threads: int = 8) -> List[bool]:
  """Whether each image fails to decode (`corrupt_reasons` is not None)."""
  return [r is not None for r in corrupt_reasons(paths, channels, num_threads=num_threads)]


class FolderSource:
  """An image folder as a Grain random-access source (`len`, `[i]`).

  `source[i]` is `{"image": uint8 [H, W, C], "label": int32, "index": int64}`, the
  image decoded with PIL in the process that asks for it (a Grain worker).

  Attributes:
    path: the folder of class sub-folders that was read.
    class_names: the sorted class folder names; label k is `class_names[k]`.
    num_classes: len(class_names).
    channels: 1 or 3.
    files: the image paths, in index order.
    labels: int32 [N].
    skipped: paths of corrupt images left out (with `skip_corrupt=True`).
    skipped_reasons: why each of `skipped` was left out, in the same order.
  """

  def __init__(
    self,
    path: str,
    *,
    split: Optional[str] = None,
    channels: Optional[int] = None,
    skip_corrupt: bool = False,
  ):
    """Lists the folder.

    Args:
      path: the dataset folder: `path/<class>/<image>`, or `path/<split>/<class>/<image>`
        with `split`.
      split: a sub-folder of `path` ("train", "val", ...), or None.
      channels: 1 or 3; None reads it from the first image (1 if grayscale); with
        `skip_corrupt`, from the first image that decodes.
      skip_corrupt: decode every image now and leave out (and count in `skipped`) those
        that fail; without it a corrupt image raises a ValueError naming it when read.

    Raises:
      ValueError: naming the path for a missing folder or split, a folder without class
        sub-folders, an empty class folder, or when every image is corrupt.
    """
    self.path = split_folder(path, split)
    self.class_names, files, labels = list_image_folder(self.path)
    self.num_classes = len(self.class_names)
    self.skipped: List[str] = []
    self.skipped_reasons: List[str] = []
    if skip_corrupt:
      reasons = corrupt_reasons(files, channels or 3)
      self.skipped = [f for f, r in zip(files, reasons) if r is not None]
      self.skipped_reasons = [r for r in reasons if r is not None]
      keep = [r is None for r in reasons]
      files = [f for f, k in zip(files, keep) if k]
      labels = labels[np.asarray(keep, bool)]
      if not files:
        raise ValueError(f"image folder {self.path!r}: all {len(self.skipped)} images are corrupt.")
    self.files, self.labels = files, labels
    self.channels = channels if channels is not None else channels_of(files[0])
    image_mode(self.channels)

  def __len__(self) -> int:
    return len(self.files)

  def __getitem__(self, index: int) -> Dict[str, np.ndarray]:
    index = int(index)
    path = self.files[index]
    try:
      with open(path, "rb") as f:
        data = f.read()
    except OSError as err:
      raise ValueError(f"cannot read image {path}: {err}") from err
    return {
      "image": decode_image(data, self.channels, path),
      "label": np.int32(self.labels[index]),
      "index": np.int64(index),
    }

  def describe(self, index: int) -> str:
    """The file behind example `index` (for error messages)."""
    return self.files[int(index)]

  def __repr__(self) -> str:
    return (
      f"FolderSource({self.path!r}, {len(self)} images, {self.num_classes} classes"
      f"{f', {len(self.skipped)} corrupt skipped' if self.skipped else ''})"
    )
