"""`--skip_corrupt` skips every corrupt image, the first in sort order included, and
messages about a corrupt image name its path and the reason, never a file object."""

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from advjax import data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture()
def folder(tmp_path):
  """2 classes x 3 grayscale PNGs; a/000.png (the first file) is not an image and
  b/002.png is a PNG cut after its header."""
  rng = np.random.default_rng(0)
  root = tmp_path / "src"
  for c in "ab":
    os.makedirs(root / c)
    for i in range(3):
      pixels = rng.integers(0, 256, (8, 8), dtype=np.uint8)
      Image.fromarray(pixels).save(root / c / f"{i:03d}.png")
  (root / "a" / "000.png").write_bytes(b"this is not an image")
  whole = (root / "b" / "002.png").read_bytes()
  (root / "b" / "002.png").write_bytes(whole[:60])
  return root


def _prepare(*args):
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
  return subprocess.run(
    [sys.executable, "-m", "experiments.prepare", *args],
    capture_output=True,
    text=True,
    env=env,
    cwd=ROOT,
    check=False,
  )


def test_library_skips_a_corrupt_first_image_and_reads_channels_from_the_next(folder, tmp_path):
  meta = data.prepare_array_record(str(folder), str(tmp_path / "ar"), skip_corrupt=True)
  split = meta["splits"]["train"]
  assert split["skipped"] == [os.path.join("a", "000.png"), os.path.join("b", "002.png")]
  assert split["num_examples"] == 4 and split["counts"] == [2, 2]
  assert meta["channels"] == 1  # from a/001.png, the first image that decodes
  assert [("format" in r, "truncated" in r) for r in split["skipped_reasons"]] == [
    (True, False),
    (False, True),
  ]
  source = data.ArrayRecordSource(str(tmp_path / "ar"))
  assert len(source) == 4 and source[0]["image"].shape == (8, 8, 1)
  skipping = data.FolderSource(str(folder), skip_corrupt=True)
  assert skipping.channels == 1 and len(skipping) == 4
  assert skipping.skipped == [str(folder / "a" / "000.png"), str(folder / "b" / "002.png")]


def test_messages_name_the_file_and_the_reason_only(folder, tmp_path):
  with pytest.raises(ValueError) as err:
    data.prepare_array_record(str(folder), str(tmp_path / "ar"))
  assert str(err.value) == (
    f"cannot decode image {folder / 'a' / '000.png'}: not an image "
    f"format PIL recognises (empty, damaged or not an image)"
  )
  assert not (tmp_path / "ar").exists()
  source = data.FolderSource(str(folder), channels=1)
  with pytest.raises(ValueError) as err:
    source[0]
  assert "object at 0x" not in str(err.value) and "BytesIO" not in str(err.value)
  assert str(err.value).count("000.png") == 1
  with pytest.raises(ValueError) as err:
    source[5]
  assert (
    str(err.value) == f"cannot decode image {folder / 'b' / '002.png'}: image file is truncated"
  )
  with pytest.raises(ValueError) as err:
    data.FolderSource(str(folder))  # the channel count read from a/000.png's header
  assert str(err.value).count("000.png") == 1 and "object at" not in str(err.value)


def test_prepare_command_skips_a_corrupt_first_image(folder, tmp_path):
  out = tmp_path / "ar"
  r = _prepare(f"--source=folder:{folder}", f"--output={out}", "--skip_corrupt")
  assert r.returncode == 0, r.stderr[-2000:]
  summary = json.loads(r.stdout.strip().splitlines()[-1])
  assert summary["splits"]["train"] == {"num_examples": 4, "shards": 1, "skipped": 2}
  skipped = [line for line in r.stderr.splitlines() if line.startswith("skipped")]
  assert skipped == [
    f"skipped corrupt image {folder / 'a' / '000.png'}: not an image format PIL "
    f"recognises (empty, damaged or not an image)",
    f"skipped corrupt image {folder / 'b' / '002.png'}: image file is truncated",
  ]
  r = _prepare(f"--source=folder:{folder}", f"--output={tmp_path / 'no'}")
  assert r.returncode == 1 and not (tmp_path / "no").exists()
  assert r.stderr.strip().splitlines()[-1] == (
    f"error: cannot decode image {folder / 'a' / '000.png'}: not an image format PIL "
    f"recognises (empty, damaged or not an image)"
  )
