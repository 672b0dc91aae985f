"""ArrayRecord shards that advjax writes from an image folder, and their Grain source.

A prepared folder (`python -m experiments.prepare --source=folder:PATH --output=DIR`):

  DIR/metadata.json                               class names, channels, per split: counts,
                                                  shard files, skipped corrupt images and
                                                  why each was skipped
  DIR/<split>.array_record-00000-of-00004, ...    one record per image

A record is the image file's own encoded bytes (PNG/JPEG, not re-encoded) behind a small
header: b"AJX1", the label (int32, little-endian), the length of the image's path relative
to the dataset folder (uint16) and that path (UTF-8). Written by hand: ArrayRecord stores
opaque bytes, and the usual `tf.train.Example` needs TensorFlow, which advjax does not
install. The whole folder is written under a temporary name beside DIR and renamed at the
end, so an interrupted prepare leaves no DIR at all.
"""

import json
import os
import shutil
import struct
import uuid
from typing import Dict, List, Optional, Sequence

import numpy as np

from advjax import _extras
from advjax.data import _folder

FORMAT = "advjax.array_record"
VERSION = 1
METADATA = "metadata.json"
_MAGIC = b"AJX1"
_HEADER = struct.Struct("<4siH")


def encode_record(image_bytes: bytes, label: int, name: str) -> bytes:
  """One record: header (magic, label, name length), the name, the encoded image."""
  name_bytes = name.encode("utf-8")
  return _HEADER.pack(_MAGIC, int(label), len(name_bytes)) + name_bytes + image_bytes


def decode_record(record: bytes, where: str):
  """(image bytes, label, name) of a record; ValueError naming `where` if malformed."""
  if len(record) < _HEADER.size or record[:4] != _MAGIC:
    raise ValueError(
      f"{where} is not an advjax image record (bad header); re-run `python -m experiments.prepare`."
    )
  _, label, n = _HEADER.unpack_from(record)
  start = _HEADER.size + n
  return record[start:], label, record[_HEADER.size : start].decode("utf-8")


def shard_names(split: str, num_shards: int) -> List[str]:
  return [f"{split}.array_record-{i:05d}-of-{num_shards:05d}" for i in range(num_shards)]


def _writer(path: str):
  _extras.require("advjax.data.prepare_array_record", "array_record")
  from array_record.python import array_record_module  # pylint: disable=import-outside-toplevel

  # group_size:1 makes every record its own chunk: random access reads one record.
  return array_record_module.ArrayRecordWriter(path, "group_size:1")


def _detect_splits(path: str) -> List[Optional[str]]:
  """The split sub-folders of `path` ("train", "val", ...), or [None] when `path` is
  itself the folder of class sub-folders."""
  subdirs = [e.name for e in os.scandir(path) if e.is_dir()]
  splits = sorted(d for d in subdirs if d in _folder.SPLIT_NAMES)
  return splits if splits and len(splits) == len(subdirs) else [None]


def prepare_array_record(
  folder: str,
  output: str,
  *,
  num_shards: int = 1,
  skip_corrupt: bool = False,
  channels: Optional[int] = None,
) -> Dict:
  """Writes an image folder as ArrayRecord shards plus `metadata.json`.

  Args:
    folder: `folder/<class>/<image>` (written as split "train"), or
      `folder/<split>/<class>/<image>` for split folders named train, validation,
      val or test (each written as that split; they must share the class names).
    output: the folder to create; it must not exist. It appears only when complete.
    num_shards: ArrayRecord files per split (>= 1; at most the split's image count).
    skip_corrupt: leave out images that do not decode, listing them (and why) in the
      metadata; without it the first such image raises a ValueError naming it.
    channels: 1 or 3; None reads it from the first image that decodes.

  Returns:
    The metadata written (also `output/metadata.json`).

  Raises:
    ValueError: naming the path for a missing folder, a folder without classes, an
      empty class folder, a corrupt image, splits with different classes, or an
      `output` that exists.
  """
  if not isinstance(num_shards, int) or num_shards < 1:
    raise ValueError(f"`num_shards` must be an integer >= 1; got {num_shards!r}.")
  if os.path.exists(output):
    raise ValueError(f"output {output!r} exists; give a new folder (prepare never overwrites).")
  if not os.path.isdir(folder):
    raise ValueError(f"image folder {folder!r} is not a directory.")
  parent = os.path.dirname(os.path.abspath(output))
  os.makedirs(parent, exist_ok=True)
  tmp = os.path.join(
    parent, f".{os.path.basename(os.path.abspath(output))}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
  )
  os.makedirs(tmp)
  try:
    meta = {
      "format": FORMAT,
      "version": VERSION,
      "source": os.path.abspath(folder),
      "class_names": None,
      "channels": channels,
      "splits": {},
    }
    for split in _detect_splits(folder):
      meta["splits"][split or "train"] = _write_split(
        folder, split, tmp, num_shards, skip_corrupt, meta
      )
    with open(os.path.join(tmp, METADATA), "w", encoding="utf-8") as f:
      json.dump(meta, f, indent=1)
    os.rename(tmp, output)
  finally:
    if os.path.exists(tmp):
      shutil.rmtree(tmp, ignore_errors=True)
  return meta


def _write_split(root, split, tmp, num_shards, skip_corrupt, meta) -> Dict:
  path = _folder.split_folder(root, split)
  classes, files, labels = _folder.list_image_folder(path)
  if meta["class_names"] is None:
    meta["class_names"] = classes
  elif classes != meta["class_names"]:
    raise ValueError(
      f"split folder {path!r} has classes {classes}, unlike the other "
      f"splits' {meta['class_names']}."
    )
  # Every image is decoded before the channel count is read, so that a corrupt first
  # image is skipped (or named) like any other.
  reasons = _folder.corrupt_reasons(files, meta["channels"] or 3)
  bad = [i for i, r in enumerate(reasons) if r is not None]
  if bad and not skip_corrupt:
    raise ValueError(f"cannot decode image {files[bad[0]]}: {reasons[bad[0]]}")
  keep = [i for i, r in enumerate(reasons) if r is None]
  if not keep:
    raise ValueError(f"image folder {path!r}: all {len(files)} images are corrupt.")
  if meta["channels"] is None:
    meta["channels"] = _folder.channels_of(files[keep[0]])
  if num_shards > len(keep):
    raise ValueError(f"`num_shards` {num_shards} exceeds the {len(keep)} images of {path!r}.")
  names = shard_names(split or "train", num_shards)
  bounds = np.linspace(0, len(keep), num_shards + 1).round().astype(int)
  for shard, name in enumerate(names):
    writer = _writer(os.path.join(tmp, name))
    try:
      for i in keep[bounds[shard] : bounds[shard + 1]]:
        with open(files[i], "rb") as f:
          writer.write(encode_record(f.read(), labels[i], os.path.relpath(files[i], root)))
    finally:
      writer.close()
  counts = np.bincount(labels[keep], minlength=len(classes))
  return {
    "num_examples": len(keep),
    "counts": [int(c) for c in counts],
    "shards": names,
    "skipped": [os.path.relpath(files[i], root) for i in bad],
    "skipped_reasons": [reasons[i] for i in bad],
  }


def read_metadata(directory: str) -> Dict:
  """The metadata of a prepared folder; ValueError naming it when it is not one."""
  path = os.path.join(directory, METADATA)
  if not os.path.isfile(path):
    raise ValueError(
      f"{directory!r} is not a prepared ArrayRecord folder (no {METADATA}); "
      f"write one with `python -m experiments.prepare --source=folder:PATH "
      f"--output={directory}`."
    )
  with open(path, encoding="utf-8") as f:
    meta = json.load(f)
  if meta.get("format") != FORMAT or meta.get("version") != VERSION:
    raise ValueError(
      f"{path} is not advjax ArrayRecord metadata version {VERSION} "
      f"(format {meta.get('format')!r}, version {meta.get('version')!r})."
    )
  return meta


class ArrayRecordSource:
  """A prepared ArrayRecord split as a Grain random-access source (`len`, `[i]`).

  Reads with `grain.sources.ArrayRecordDataSource`; `source[i]` is
  `{"image": uint8 [H, W, C], "label": int32, "index": int64}`, decoded with PIL in the
  process that asks for it (a Grain worker).

  Attributes:
    directory: the prepared folder.
    split: the split read.
    class_names, num_classes, channels: from the metadata.
    metadata: the whole `metadata.json`.
  """

  def __init__(self, directory: str, *, split: str = "train"):
    """Opens the shards of `split`.

    Raises:
      ValueError: naming the folder when it is not prepared, the split does not exist
        (listing those that do), or a shard file is missing.
    """
    self.directory, self.split = directory, split
    self.metadata = read_metadata(directory)
    splits = self.metadata["splits"]
    if split not in splits:
      raise ValueError(
        f"prepared folder {directory!r} has no split {split!r}; it has {sorted(splits)}."
      )
    self.class_names: List[str] = self.metadata["class_names"]
    self.num_classes = len(self.class_names)
    self.channels: int = self.metadata["channels"]
    self._paths = [os.path.join(directory, s) for s in splits[split]["shards"]]
    missing = [p for p in self._paths if not os.path.isfile(p)]
    if missing:
      raise ValueError(f"prepared folder {directory!r}: shard files missing: {missing}.")
    _extras.require("advjax.data.ArrayRecordSource", "grain")
    import grain  # pylint: disable=import-outside-toplevel

    self._records = grain.sources.ArrayRecordDataSource(self._paths)
    if len(self._records) != splits[split]["num_examples"]:
      raise ValueError(
        f"prepared folder {directory!r}, split {split!r}: the shards hold "
        f"{len(self._records)} records, the metadata says "
        f"{splits[split]['num_examples']}."
      )

  def __len__(self) -> int:
    return len(self._records)

  def _example(self, index: int, record: bytes) -> Dict[str, np.ndarray]:
    image_bytes, label, name = decode_record(record, self.describe(index))
    image = _folder.decode_image(image_bytes, self.channels, f"{name} ({self.describe(index)})")
    return {"image": image, "label": np.int32(label), "index": np.int64(index)}

  def __getitem__(self, index: int) -> Dict[str, np.ndarray]:
    return self._example(int(index), self._records[int(index)])

  def __getitems__(self, indices: Sequence[int]) -> List[Dict[str, np.ndarray]]:
    records = self._records.__getitems__([int(i) for i in indices])
    return [self._example(int(i), r) for i, r in zip(indices, records)]

  def describe(self, index: int) -> str:
    """Where example `index` is stored (for error messages)."""
    return f"record {int(index)} of {self.directory} split {self.split!r}"

  def __repr__(self) -> str:
    return (
      f"ArrayRecordSource({self.directory!r}, split={self.split!r}, {len(self)} "
      f"images, {self.num_classes} classes)"
    )
