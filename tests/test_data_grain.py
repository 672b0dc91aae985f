"""The Grain pipeline: random-access uint8 sources (arrays, image folders, ArrayRecord written
by experiments.prepare, TFDS), sharded training streams whose state restores the exact
position, evaluation that counts every example once, and errors that name the file."""

import json
import os
import subprocess
import sys

import grain
import numpy as np
from PIL import Image
import pytest

from advjax import data
from advjax.data import _array_record
from advjax.data import _grain
from tests import _inputs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = ("n01440764_tench", "n02102040_spaniel", "n03000684_chainsaw")


def _photos():
  """Real photos of different sizes (skimage's)."""
  from skimage import data as skdata  # pylint: disable=import-outside-toplevel

  return [skdata.astronaut(), skdata.chelsea(), skdata.coffee(), skdata.rocket()]


def _no_shard():
  return grain.sharding.ShardOptions(0, 1)


@pytest.fixture(scope="module")
def imagenet_dir(tmp_path_factory):
  """3 classes x 4 real photos, JPEG and PNG, of different sizes (48..95 px)."""
  root = tmp_path_factory.mktemp("imagenet")
  photos = _photos()
  k = 0
  for c, name in enumerate(CLASSES):
    os.makedirs(root / name)
    for i in range(4):
      p = photos[k % len(photos)]
      k += 1
      h, w = 48 + 9 * i + c, 64 + 7 * i
      img = Image.fromarray(p).resize((w, h), Image.BILINEAR)
      ext = "jpg" if i % 2 else "png"
      img.save(root / name / f"img{i}.{ext}")
  return str(root)


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
  """CIFAR-style folder: train/ and test/, 2 classes of real 32x32 PNGs each."""
  root = tmp_path_factory.mktemp("cifar")
  crops = _inputs.rgb_crops(n=12, size=32)
  for split, rows in (("train", range(0, 8)), ("test", range(8, 12))):
    for i in rows:
      folder = root / split / ("cat" if i % 2 else "airplane")
      os.makedirs(folder, exist_ok=True)
      Image.fromarray(crops[i]).save(folder / f"{i:03d}.png")
  return str(root)


@pytest.fixture(scope="module")
def prepared(imagenet_dir, tmp_path_factory):
  """The ImageNet-style folder written by the command line, in 3 shards."""
  out = str(tmp_path_factory.mktemp("prepared") / "ar")
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
  proc = subprocess.run(
    [
      sys.executable,
      "-m",
      "experiments.prepare",
      f"--source=folder:{imagenet_dir}",
      f"--output={out}",
      "--num_shards=3",
    ],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert json.loads(proc.stdout.strip().splitlines()[-1])["splits"]["train"]["num_examples"] == 12
  return out


@pytest.fixture(scope="module")
def array_source():
  images = _inputs.rgb_crops(n=6, size=32)
  rng = np.random.default_rng(0)
  images = np.concatenate([images] * 7)[:40]
  images = np.where(rng.random(images.shape) < 0.02, 255, images).astype(np.uint8)
  return data.ArraySource(images, np.arange(40) % 10)


# --------------------------------------------------------------------------- #
# Sources
# --------------------------------------------------------------------------- #
def test_folder_source_sorted_classes_decoded_uint8(imagenet_dir):
  src = data.FolderSource(imagenet_dir)
  assert src.class_names == sorted(CLASSES) and src.num_classes == 3 and len(src) == 12
  np.testing.assert_array_equal(src.labels, np.repeat([0, 1, 2], 4))
  ex = src[5]
  want = np.asarray(Image.open(src.files[5]).convert("RGB"))
  assert ex["image"].dtype == np.uint8 and ex["image"].shape == want.shape
  np.testing.assert_array_equal(ex["image"], want)
  assert int(ex["label"]) == 1 and int(ex["index"]) == 5


def test_array_source_stores_float_images_as_exact_uint8():
  x = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4) / 255.0
  src = data.ArraySource(x, [3, 7])
  assert src.images.dtype == np.uint8 and src.images.shape == (2, 4, 4, 1)
  np.testing.assert_array_equal(src.images[..., 0], np.arange(32).reshape(2, 4, 4))
  with pytest.raises(ValueError, match=r"in \[0, 1\]"):
    data.ArraySource(x + 0.9, [3, 7])
  with pytest.raises(ValueError, match="labels"):
    data.ArraySource(x, [3])


def test_prepared_array_record_matches_the_folder(imagenet_dir, prepared):
  folder = data.FolderSource(imagenet_dir)
  src = data.open_source(f"array_record:{prepared}")
  meta = src.metadata
  assert meta["class_names"] == sorted(CLASSES) and meta["channels"] == 3
  assert meta["splits"]["train"]["counts"] == [4, 4, 4]
  assert len(meta["splits"]["train"]["shards"]) == 3 and len(src) == 12
  for i in range(len(src)):  # the same pixels (JPEG bytes kept, not re-encoded)
    a, b = src[i], folder[i]
    np.testing.assert_array_equal(a["image"], b["image"])
    assert int(a["label"]) == int(b["label"]) and int(a["index"]) == i
  with pytest.raises(ValueError, match=r"no split 'validation'.*\['train'\]"):
    data.open_source(f"array_record:{prepared}", split="validation")
  leftovers = [f for f in os.listdir(os.path.dirname(prepared)) if f.endswith(".tmp")]
  assert not leftovers


def test_prepare_splits_and_interrupted_prepare_leaves_nothing(cifar_dir, tmp_path, monkeypatch):
  meta = data.prepare_array_record(cifar_dir, str(tmp_path / "ok"), num_shards=2)
  assert sorted(meta["splits"]) == ["test", "train"]
  assert meta["splits"]["train"]["counts"] == [4, 4]
  assert len(data.ArrayRecordSource(str(tmp_path / "ok"), split="test")) == 4
  with pytest.raises(ValueError, match="exists"):
    data.prepare_array_record(cifar_dir, str(tmp_path / "ok"))
  calls = []

  def failing(*args):
    calls.append(args)
    if len(calls) == 5:
      raise KeyboardInterrupt  # killed in the middle of a shard
    return real(*args)

  real = _array_record.encode_record
  monkeypatch.setattr(_array_record, "encode_record", failing)
  with pytest.raises(KeyboardInterrupt):
    data.prepare_array_record(cifar_dir, str(tmp_path / "cut"), num_shards=2)
  assert len(calls) == 5
  assert sorted(os.listdir(tmp_path)) == ["ok"]  # no "cut", no temporary folder


def test_corrupt_image_named_or_skipped_and_counted(cifar_dir, tmp_path):
  import shutil  # pylint: disable=import-outside-toplevel

  root = tmp_path / "data"
  shutil.copytree(os.path.join(cifar_dir, "train"), root)
  bad = root / "cat" / "zz_truncated.png"
  bad.write_bytes((root / "cat" / "001.png").read_bytes()[:60])
  src = data.FolderSource(str(root))
  with pytest.raises(ValueError, match="zz_truncated.png"):
    src[len(src) - 1]
  with pytest.raises(ValueError, match="zz_truncated.png"):
    data.prepare_array_record(str(root), str(tmp_path / "ar"))
  assert not (tmp_path / "ar").exists()
  skipping = data.FolderSource(str(root), skip_corrupt=True)
  assert len(skipping) == 8 and skipping.skipped == [str(bad)]
  meta = data.prepare_array_record(str(root), str(tmp_path / "ar"), skip_corrupt=True)
  assert meta["splits"]["train"]["skipped"] == [os.path.join("cat", "zz_truncated.png")]
  assert meta["splits"]["train"]["num_examples"] == 8


def test_folder_errors_name_the_path(cifar_dir, tmp_path):
  with pytest.raises(ValueError, match="no class sub-folders"):
    data.FolderSource(str(tmp_path))
  os.makedirs(tmp_path / "a")
  os.makedirs(tmp_path / "b")
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a" / "x.png")
  with pytest.raises(ValueError, match=r"class folder .*b'.* holds no image"):
    data.FolderSource(str(tmp_path))
  with pytest.raises(ValueError, match=r"no split 'val'.*\['test', 'train'\]"):
    data.open_source(f"folder:{cifar_dir}", split="val")
  with pytest.raises(ValueError, match="not a directory"):
    data.FolderSource(str(tmp_path / "missing"))
  with pytest.raises(ValueError, match="experiments.prepare"):
    data.ArrayRecordSource(str(tmp_path))
  with pytest.raises(ValueError, match="unknown source"):
    data.open_source("s3:bucket")


def test_mixed_sizes_where_one_size_is_needed_name_the_file(imagenet_dir):
  src = data.FolderSource(imagenet_dir)
  it = data.grain_eval_iterator(src, batch_size=4, shard_options=_no_shard())
  with pytest.raises(ValueError, match=r"img1\.jpg has shape .*resize_center_crop"):
    next(it)
  it = data.grain_train_iterator(src, batch_size=4, seed=0, shard_options=_no_shard())
  with pytest.raises(ValueError, match=r"has shape .*random_resized_crop_flip"):
    next(it)


def test_tfds_source_reads_mock_data_as_uint8():
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
    src = data.open_source("tfds:cifar10", split="test")
    assert len(src) == 12 and src.num_classes == 10
    ex = src[3]
    assert ex["image"].dtype == np.uint8 and ex["image"].shape == (32, 32, 3)
    batch = next(data.grain_eval_iterator(src, batch_size=5, shard_options=_no_shard()))
    assert batch["image"].shape == (5, 32, 32, 3) and batch["mask"].all()
    np.testing.assert_array_equal(batch["image"][3], ex["image"].astype(np.float32) / 255)


# --------------------------------------------------------------------------- #
# Transforms
# --------------------------------------------------------------------------- #
def test_pad_crop_flip_is_a_shifted_window_of_the_padded_image(array_source):
  image = array_source.images[1]
  padded = np.pad(image, ((4, 4), (4, 4), (0, 0)))
  seen = set()
  for seed in range(40):
    out = _grain.pad_crop_flip(image, np.random.default_rng(seed))
    assert out.shape == image.shape and out.dtype == np.uint8
    hits = [
      (y, x, f)
      for y in range(9)
      for x in range(9)
      for f in (0, 1)
      if np.array_equal(
        out, padded[y : y + 32, x : x + 32][:, ::-1] if f else padded[y : y + 32, x : x + 32]
      )
    ]
    assert hits
    seen.update(hits)
  assert {f for *_, f in seen} == {0, 1} and len({(y, x) for y, x, _ in seen}) > 10


def test_resize_center_crop_is_res256crop224():
  rng = np.random.default_rng(0)
  square = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
  np.testing.assert_array_equal(_grain.resize_center_crop(square), square[16:240, 16:240])
  wide = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
  out = _grain.resize_center_crop(wide)
  resized = np.asarray(Image.fromarray(wide).resize((341, 256), Image.BILINEAR))
  np.testing.assert_array_equal(out, resized[16:240, 58:282])


def test_random_resized_crop_pipeline_gives_fixed_size_batches(imagenet_dir):
  src = data.FolderSource(imagenet_dir)
  it = data.grain_train_iterator(
    src,
    batch_size=6,
    seed=3,
    augment="random_resized_crop_flip",
    image_size=24,
    shard_options=_no_shard(),
  )
  batch = next(it)
  assert batch["image"].shape == (6, 24, 24, 3) and batch["image"].dtype == np.float32
  assert 0.0 <= batch["image"].min() and batch["image"].max() <= 1.0
  assert batch["image"].std() > 0.05  # real pixels, not padding


# --------------------------------------------------------------------------- #
# Training stream
# --------------------------------------------------------------------------- #
def _indices(it, n):
  return np.concatenate([next(it)["index"] for _ in range(n)])


def test_global_batches_do_not_depend_on_the_process_count(array_source):
  n = len(array_source)

  def batches(p, processes, count=10):
    it = data.grain_train_iterator(
      array_source,
      batch_size=8,
      seed=7,
      shard_options=grain.sharding.ShardOptions(p, processes, True),
      float_images=False,
    )
    return [next(it) for _ in range(count)]

  one = batches(0, 1)  # 5 batches of 8 per epoch of 40: two epochs
  ids = np.concatenate([b["index"] for b in one])
  for epoch in (ids[:n], ids[n:]):
    np.testing.assert_array_equal(np.sort(epoch), np.arange(n))  # each example once
  assert not np.array_equal(ids[:n], ids[n:])  # a new order each epoch
  two = [batches(p, 2) for p in range(2)]
  for k, whole in enumerate(one):
    # process p holds block p of the global batch, its images augmented alike
    for p in range(2):
      np.testing.assert_array_equal(two[p][k]["index"], whole["index"][4 * p : 4 * p + 4])
      np.testing.assert_array_equal(two[p][k]["image"], whole["image"][4 * p : 4 * p + 4])
  finite = data.grain_train_iterator(
    array_source,
    batch_size=8,
    seed=7,
    num_epochs=2,
    shard_options=grain.sharding.ShardOptions(1, 2, True),
  )
  assert len(list(finite)) == 10  # as many batches in every process


def test_train_batches_are_uint8_until_the_end(array_source):
  kw = dict(batch_size=8, seed=1, shard_options=_no_shard())
  raw = next(data.grain_train_iterator(array_source, float_images=False, **kw))
  flt = next(data.grain_train_iterator(array_source, **kw))
  assert raw["image"].dtype == np.uint8 and flt["image"].dtype == np.float32
  np.testing.assert_array_equal(flt["image"], raw["image"].astype(np.float32) / 255)
  np.testing.assert_array_equal(raw["label"], array_source.labels[raw["index"]])
  changed = [
    not np.array_equal(raw["image"][i], array_source.images[j]) for i, j in enumerate(raw["index"])
  ]
  assert sum(changed) >= 6  # pad-crop-flip moved most images


def _restore_check(source, worker_count):
  kw = dict(batch_size=8, seed=5, shard_options=_no_shard(), worker_count=worker_count)
  it = data.grain_train_iterator(source, **kw)
  for _ in range(3):  # mid-epoch: 40 examples, 5 batches per epoch
    next(it)
  state = json.loads(json.dumps(it.get_state()))
  expected = [next(it) for _ in range(5)]  # crosses into the next epoch
  restored = data.grain_train_iterator(source, **kw)
  restored.set_state(state)
  got = [next(restored) for _ in range(5)]
  for it_ in (it, restored):
    if hasattr(it_, "close"):
      it_.close()
  for e, g in zip(expected, got):
    np.testing.assert_array_equal(g["index"], e["index"])
    np.testing.assert_array_equal(g["image"], e["image"])
    np.testing.assert_array_equal(g["label"], e["label"])
  return expected


def test_state_restores_the_exact_next_batches_in_process(array_source):
  _restore_check(array_source, 0)


@pytest.mark.slow
def test_state_restores_the_exact_next_batches_with_two_workers(array_source):
  with_workers = _restore_check(array_source, 2)
  it = data.grain_train_iterator(array_source, batch_size=8, seed=5, shard_options=_no_shard())
  in_process = [next(it) for _ in range(8)][3:]
  for a, b in zip(with_workers, in_process):  # workers do not change the stream
    np.testing.assert_array_equal(a["image"], b["image"])


# --------------------------------------------------------------------------- #
# Evaluation
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("batch_size", [4, 6, 16])
@pytest.mark.parametrize("processes", [1, 2])
def test_eval_visits_every_example_once(array_source, batch_size, processes):
  n = len(array_source) - 1  # 39: nothing divides it
  source = data.ArraySource(array_source.images[:n], array_source.labels[:n])
  seen, counts = [], []
  for p in range(processes):
    shard = grain.sharding.ShardOptions(p, processes, drop_remainder=True)  # ignored
    batches = list(data.grain_eval_iterator(source, batch_size=batch_size, shard_options=shard))
    counts.append(len(batches))
    for b in batches:
      assert b["image"].shape == (batch_size // processes, 32, 32, 3)
      ids = b["index"][b["mask"]]
      np.testing.assert_array_equal(
        b["image"][b["mask"]], source.images[ids].astype(np.float32) / 255
      )
      np.testing.assert_array_equal(b["label"][b["mask"]], source.labels[ids])
      assert (b["index"][~b["mask"]] == -1).all()
      seen.extend(ids.tolist())
  assert sorted(seen) == list(range(n))  # all ids, no duplicates
  assert counts == [data.num_eval_batches(n, batch_size, processes)] * processes


def test_eval_resize_center_crop_over_a_prepared_split(prepared):
  src = data.ArrayRecordSource(prepared)
  batches = list(
    data.grain_eval_iterator(
      src,
      batch_size=5,
      transform="resize_center_crop",
      resize=40,
      crop=32,
      shard_options=_no_shard(),
    )
  )
  assert [b["mask"].sum() for b in batches] == [5, 5, 2]
  assert batches[0]["image"].shape == (5, 32, 32, 3)
  want = _grain.resize_center_crop(src[7]["image"], resize=40, crop=32)
  np.testing.assert_array_equal(batches[1]["image"][2], want.astype(np.float32) / 255)
