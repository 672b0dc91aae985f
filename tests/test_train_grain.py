"""Training on the Grain pipeline (config.input.pipeline = "grain"): a dataset's splits as
sources, the config's checks, exact resume of a run killed mid-epoch (the iterator state
travels in the checkpoint), and the ImageNet configs' first steps on a generated folder."""

import importlib
import json
import os

import jax
import numpy as np
from PIL import Image
import pytest

from advjax import data, train
from tests import _inputs


def _folder(root, sizes, *, splits=("train", "val"), per_class=4, classes=("cat", "dog")):
  """Real photos (skimage) as JPEG/PNG of the given (h, w) sizes, one folder per class."""
  from skimage import data as skdata  # pylint: disable=import-outside-toplevel

  photos = [skdata.astronaut(), skdata.chelsea(), skdata.coffee()]
  k = 0
  for split in splits:
    for name in classes:
      folder = os.path.join(root, split, name) if split else os.path.join(root, name)
      os.makedirs(folder)
      for i in range(per_class):
        h, w = sizes[k % len(sizes)]
        ext = "jpg" if k % 2 else "png"
        Image.fromarray(photos[k % 3]).resize((w, h), Image.BILINEAR).save(
          os.path.join(folder, f"{k:03d}.{ext}")
        )
        k += 1
  return str(root)


def _grain_config(**overrides):
  c = train.default_config()
  c.input.pipeline = "grain"
  return _inputs.set_keys(c, **overrides)


# --------------------------------------------------------------------------- #
# Splits and config checks
# --------------------------------------------------------------------------- #
def test_open_splits_hold_out_validation_by_index_and_keep_the_test_split(tmp_path):
  root = _folder(tmp_path / "f", [(40, 50)], per_class=6)
  splits = data.open_splits(f"folder:{root}", validation_size=4, seed=3)
  assert [len(splits[k]) for k in ("train", "validation", "test")] == [8, 4, 12]
  train_idx, val_idx = splits["train"].indices, splits["validation"].indices
  assert not set(train_idx) & set(val_idx)
  assert sorted(np.concatenate([train_idx, val_idx])) == list(range(12))
  # stratified: two of each class held out (folders list their labels without decoding)
  assert sorted(splits["validation"].labels.tolist()) == [0, 0, 1, 1]
  example = splits["validation"][0]
  assert example["image"].dtype == np.uint8 and example["index"] == val_idx[0]
  assert splits["test"].path.endswith("val")
  # the same seed gives the same split; another seed another
  again = data.open_splits(f"folder:{root}", validation_size=4, seed=3)
  np.testing.assert_array_equal(again["validation"].indices, val_idx)
  other = data.open_splits(f"folder:{root}", validation_size=4, seed=4)
  assert not np.array_equal(other["validation"].indices, val_idx)
  # a folder without splits gives a fifth to the test split, as load_splits does
  flat = _folder(tmp_path / "flat", [(40, 50)], splits=("",), per_class=10)
  splits = data.open_splits(f"folder:{flat}", validation_size=2, seed=0)
  assert [len(splits[k]) for k in ("train", "validation", "test")] == [14, 2, 4]
  # mnist5k: the 4,000 training + validation digits, the run's own holdout
  splits = data.open_splits("mnist5k", validation_size=500, seed=0)
  assert [len(splits[k]) for k in ("train", "validation", "test")] == [3500, 500, 1000]
  with pytest.raises(ValueError, match="Unknown dataset 'mnist6k'"):
    data.open_splits("mnist6k", validation_size=5)


def test_read_eval_split_is_a_seeded_choice_through_the_eval_transform(tmp_path):
  root = _folder(tmp_path / "f", [(40, 50), (60, 45)], per_class=5)
  source = data.open_splits(f"folder:{root}", validation_size=2)["test"]
  full = data.read_eval_split(source, transform="resize_center_crop", resize=36, crop=32)
  assert full.images.shape == (10, 32, 32, 3) and full.labels.tolist() == [0] * 5 + [1] * 5
  assert 0.0 <= full.images.min() and full.images.max() <= 1.0
  part = data.read_eval_split(
    source, num_examples=4, transform="resize_center_crop", resize=36, crop=32, seed=1
  )
  # the chosen examples, in source order, equal to the same examples of the full read
  chosen = np.sort(np.random.default_rng(1).choice(10, 4, replace=False))
  np.testing.assert_array_equal(part.images, full.images[chosen])
  np.testing.assert_array_equal(part.labels, full.labels[chosen])


@pytest.mark.parametrize(
  "overrides,match",
  [
    (
      {"input.pipeline": "memory", "train_augment": "random_resized_crop_flip"},
      "needs config.input.pipeline='grain'",
    ),
    ({"train_augment": "random_resized_crop_flip"}, r"config.input.image_size .* required"),
    (
      {
        "input.eval_transform": "resize_center_crop",
        "input.image_size": 224,
        "input.eval_resize": 200,
      },
      r"eval_resize \(200\) must be >= config.input.image_size",
    ),
    ({"input.workers": -1}, r"config.input.workers must be an integer >= 0; got -1"),
    ({"input.pipeline": "streams"}, r"config.input.pipeline: unknown value 'streams'"),
    ({"input.pipeline": "memory", "input.workers": 2}, "need config.input.pipeline='grain'"),
    ({"input.eval_transform": "crop"}, r"config.input.eval_transform: unknown value 'crop'"),
  ],
)
def test_bad_input_config_names_the_key(overrides, match):
  with pytest.raises(ValueError, match=match):
    train.validate_config(_grain_config(**overrides))


def test_eval_images_of_another_size_are_refused_before_training(tmp_path):
  # mixed sizes where one size is needed: the error names the file
  mixed = _folder(tmp_path / "mixed", [(40, 50), (60, 45)], per_class=4)
  c = _grain_config(
    dataset=f"folder:{mixed}",
    validation_size=2,
    model="resnet18",
    batch_size=2,
    train_augment="random_resized_crop_flip",
    **{"input.image_size": 32},
  )
  with pytest.raises(
    ValueError,
    match=r"image .*/00\d.(png|jpg) has shape .* transform "
    r"'none' needs one size",
  ):
    train.Run(c)
  # one size, but not the training crops' size
  c.dataset = f"folder:{_folder(tmp_path / 'one', [(40, 50)], per_class=4)}"
  with pytest.raises(
    ValueError,
    match=r"the validation images are \(40, 50, 3\) after "
    r"config.input.eval_transform='none', the training "
    r"images \(32, 32, 3\)",
  ):
    train.Run(c)
  c.input.eval_transform, c.input.eval_resize = "resize_center_crop", 36
  assert train.Run(c).splits["test"].images.shape == (8, 32, 32, 3)


# --------------------------------------------------------------------------- #
# Exact resume
# --------------------------------------------------------------------------- #
class _Killed(Exception):
  pass


def _small_config(npz, workdir_epochs=2):
  return _grain_config(
    dataset=f"npz:{npz}",
    validation_size=100,
    num_epochs=workdir_epochs,
    batch_size=50,
    train_augment="flip",
    progress=False,
    **{
      "input.workers": 2,
      "eval.attacks": ("fgsm",),
      "eval.num_examples": 100,
      "eval.masking_checks": False,
      "stall_check.epochs": 0.0,
    },
  )


def _records(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    recs = [json.loads(line) for line in f]
  return [{k: v for k, v in r.items() if k not in ("examples_per_s", "epoch_time_s")} for r in recs]


@pytest.mark.slow
def test_grain_run_killed_mid_epoch_resumes_with_the_same_batches(tmp_path, mnist, monkeypatch):
  npz = str(tmp_path / "digits.npz")
  ds = mnist["train"]
  np.savez(npz, images=np.round(ds.images[:1000] * 255).astype(np.uint8), labels=ds.labels[:1000])
  ref, killed = str(tmp_path / "ref"), str(tmp_path / "killed")
  report = train.train_and_evaluate(_small_config(npz), ref)
  assert report["setup"]["input"] == "grain, 2 workers"
  # 1000 examples: 200 test, 100 validation, 700 training = 14 steps of 50 per epoch
  assert report["train"]["steps"] == 28

  done = []
  original = train.Run.train_step_at

  def dying(run, step):
    if len(done) == 14 + 5:  # mid-way through the second epoch, after the first checkpoint
      raise _Killed()
    done.append(step)
    return original(run, step)

  with monkeypatch.context() as m:
    m.setattr(train.Run, "train_step_at", dying)
    with pytest.raises(_Killed):
      train.train_and_evaluate(_small_config(npz), killed)
  assert not os.path.exists(os.path.join(killed, "report.json"))
  ckpt = train.Checkpointer(os.path.join(killed, "checkpoints"))
  assert ckpt.latest_step() == 14
  ckpt.close()
  # the Grain iterator's position at step 14, saved by Grain's orbax handler
  with open(os.path.join(killed, "checkpoints", "14", "data", "process_0-of-1.json")) as f:
    assert json.load(f)

  resumed = train.train_and_evaluate(_small_config(npz), killed)
  assert _records(ref) == _records(killed)
  a, b = (train.load_run(d)[1] for d in (ref, killed))
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
    np.testing.assert_array_equal(x, y)
  assert resumed["clean_accuracy"] == report["clean_accuracy"]


# --------------------------------------------------------------------------- #
# The ImageNet configs
# --------------------------------------------------------------------------- #
@pytest.mark.usefixtures("low_memory_start")
@pytest.mark.slow
@pytest.mark.parametrize(
  "name,model,recipe",
  [
    ("imagenet_resnet50_noisymix", "resnet50", "standard"),
    ("imagenet_efficientnet_b0_hybrid", "efficientnet_b0", "hybrid"),
  ],
)
def test_imagenet_config_builds_and_trains_two_steps_on_a_generated_folder(
  tmp_path, name, model, recipe
):
  root = _folder(tmp_path / "imagenet", [(70, 90), (96, 80), (81, 81)], per_class=4)
  c = importlib.import_module(f"experiments.configs.{name}").get_config()
  assert (
    c.model,
    c.recipe,
    c.input.pipeline,
    c.train_augment,
    c.input.eval_transform,
    c.input.image_size,
    c.input.eval_resize,
    c.eval.eps,
  ) == (model, recipe, "grain", "random_resized_crop_flip", "resize_center_crop", 224, 256, 4 / 255)
  # the config's program on smaller crops (64 of 73 instead of 224 of 256), in-process
  c.dataset, c.validation_size, c.batch_size, c.progress = f"folder:{root}", 2, 4, False
  c.input.workers, c.input.image_size, c.input.eval_resize = 0, 64, 73
  c.train_attack.name = "pgd(num_steps=2)"
  run = train.Run(c)
  assert run.splits["validation"].images.shape == (2, 64, 64, 3)
  assert run.splits["test"].images.shape == (8, 64, 64, 3)
  state = run.init_state()
  before = [np.asarray(a) for a in jax.tree_util.tree_leaves(state.params)]  # donated
  stream = run.train_stream(0)
  for step, batch in zip(range(2), stream):
    assert batch[0].shape == (4, 64, 64, 3) and batch[0].dtype == np.float32
    state, metrics = run.train_step_at(step)(state, data.shard_batch(batch, run.mesh))
    assert np.isfinite(float(metrics["loss"]))
  assert int(state.step) == 2 and stream.state() is not None
  assert any(not np.allclose(a, b) for a, b in zip(before, jax.tree_util.tree_leaves(state.params)))
