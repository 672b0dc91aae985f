"""config.train_extra: generated images (e.g. a hard-positive set made once from a base
network, Rozsa et al. 2016) appended to the in-memory training split, and its errors."""

import numpy as np
import pytest

from advjax import train


def _config(extra, **kw):
  c = train.default_config()
  c.dataset, c.validation_size, c.train_extra = "mnist5k", 500, extra
  c.update_from_flattened_dict(kw)
  return c


def test_extra_rows_follow_the_training_split(tmp_path):
  path = str(tmp_path / "set.npz")
  rng = np.random.default_rng(0)
  images = np.round(rng.uniform(size=(7, 28, 28, 1)) * 255) / 255
  np.savez(path, image=images.astype(np.float32), label=np.arange(7), type=np.array(["FGS"] * 7))
  plain, run = train.Run(_config("")), train.Run(_config(path))
  a, b = plain.splits["train"], run.splits["train"]
  assert len(b) == len(a) + 7 and run.num_train == 3507 and run.num_extra == 7
  np.testing.assert_array_equal(b.images[: len(a)], a.images)
  np.testing.assert_array_equal(b.images[len(a) :], images.astype(np.float32))
  np.testing.assert_array_equal(b.labels[len(a) :], np.arange(7))
  # the evaluation splits are untouched
  np.testing.assert_array_equal(run.splits["test"].images, plain.splits["test"].images)


def test_bad_extra_sets_name_the_key_and_the_expected_form(tmp_path):
  with pytest.raises(
    ValueError,
    match=r"config.train_extra: no file '/nonexistent.npz'; "
    r"expected an .npz with 'image'",
  ):
    train.validate_config(_config("/nonexistent.npz"))
  good = str(tmp_path / "good.npz")
  np.savez(good, image=np.zeros((2, 28, 28, 1), np.float32), label=np.zeros(2, np.int32))
  with pytest.raises(ValueError, match="needs config.input.pipeline='memory'; got 'grain'"):
    train.validate_config(_config(good, **{"input.pipeline": "grain"}))
  cases = {
    "no_label": (
      dict(image=np.zeros((2, 28, 28, 1))),
      r"must hold `images` \(or `x`, `image`\) and `labels` \(or `y`, "
      r"`label`\); found \['image'\]",
    ),
    "shape": (
      dict(image=np.zeros((2, 32, 32, 3)), label=np.zeros(2)),
      r"images of shape \(2, 32, 32, 3\); the training images are \[N, 28, 28, 1\]",
    ),
    "count": (dict(image=np.zeros((2, 28, 28, 1)), label=np.zeros(3)), "2 images but 3 labels"),
    "range": (
      dict(image=np.full((2, 28, 28, 1), 255.0), label=np.zeros(2)),
      r"images must be in \[0, 1\]; got \[255, 255\]",
    ),
    "labels": (
      dict(image=np.zeros((2, 28, 28, 1)), label=np.array([0, 10])),
      r"labels must be in \[0, 9\]; got \[0, 10\]",
    ),
  }
  for name, (cols, message) in cases.items():
    path = str(tmp_path / f"{name}.npz")
    np.savez(path, **cols)
    with pytest.raises(ValueError, match=r"config.train_extra=.*" + message):
      train.Run(_config(path))
