"""Writes an image folder as ArrayRecord shards for the Grain pipeline.

Flags only; the logic is `advjax.data.prepare_array_record`.

  python -m experiments.prepare --source=folder:/data/imagenet --output=/data/imagenet_ar \
      --num_shards=64

`PATH/<class>/<image>` becomes split "train"; `PATH/{train,val,validation,test}/<class>/...`
becomes one split per folder. Records keep each file's encoded bytes and its label;
`DIR/metadata.json` holds the class names, counts and shard names. DIR appears only when
complete (written under a temporary name, then renamed). Read it back with
`advjax.data.open_source("array_record:DIR", split="train")`. A wrong flag is one line and
exit 2; a folder it cannot read (or a corrupt image, without --skip_corrupt) is one line
and exit 1 (experiments/_cli.py). With --skip_corrupt every image that does not decode,
the first included, is left out, and each is named on stderr with the reason.
"""

import json
import os
import sys

from absl import flags

from experiments import _cli


def _define_flags():
  # Defined only when run as a program: absl flags are process-wide, and tests and
  # users import several experiments/ modules into one process.
  flags.DEFINE_string("source", None, "What to prepare: folder:PATH.")
  flags.DEFINE_string("output", None, "The folder to create (must not exist).")
  flags.DEFINE_integer("num_shards", 1, "ArrayRecord files per split (>= 1).")
  flags.DEFINE_bool(
    "skip_corrupt",
    False,
    "Leave out images that do not decode (listed in the "
    "metadata) instead of stopping at the first.",
  )
  flags.DEFINE_enum(
    "channels",
    None,
    ["1", "3"],
    "1 (grayscale) or 3 (RGB); default: from the first image that decodes.",
  )
  flags.mark_flags_as_required(["source", "output"])


def _check_flags() -> str:
  """The folder to read; raises _cli.UsageError for a wrong flag."""
  kind, _, path = flags.FLAGS.source.partition(":")
  if kind != "folder" or not path:
    raise _cli.UsageError(
      f"--source={flags.FLAGS.source!r} is not folder:PATH; pass the image "
      f"folder as --source=folder:PATH"
    )
  if not os.path.isdir(path):
    raise _cli.UsageError(f"--source folder {path!r} is not a directory")
  if flags.FLAGS.num_shards < 1:
    raise _cli.UsageError(f"--num_shards must be >= 1; got {flags.FLAGS.num_shards}")
  if os.path.exists(flags.FLAGS.output):
    raise _cli.UsageError(f"--output {flags.FLAGS.output!r} exists; pass a new folder")
  return path


def main(argv):
  _cli.no_arguments(argv)
  folder = _check_flags()
  from advjax import data  # pylint: disable=import-outside-toplevel

  f = flags.FLAGS
  meta = data.prepare_array_record(
    folder,
    f.output,
    num_shards=f.num_shards,
    skip_corrupt=f.skip_corrupt,
    channels=int(f.channels) if f.channels else None,
  )
  for s in meta["splits"].values():
    for rel, reason in zip(s["skipped"], s["skipped_reasons"]):
      print(f"skipped corrupt image {os.path.join(folder, rel)}: {reason}", file=sys.stderr)
  summary = {
    split: {
      "num_examples": s["num_examples"],
      "shards": len(s["shards"]),
      "skipped": len(s["skipped"]),
    }
    for split, s in meta["splits"].items()
  }
  print(json.dumps({"output": f.output, "classes": len(meta["class_names"]), "splits": summary}))


if __name__ == "__main__":
  _define_flags()
  _cli.run(main)
