"""The CIFAR-10 configs and the in-memory training augmentation they use
(config.train_augment, data.augment_batch)."""

import importlib

import jax
import numpy as np
import pytest

from advjax import data, models, train


def _windows(image, pad=4):
  """Every pad-4 crop of `image`, unflipped and flipped."""
  h, w = image.shape[:2]
  padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
  crops = [padded[y : y + h, x : x + w] for y in range(2 * pad + 1) for x in range(2 * pad + 1)]
  return crops + [c[:, ::-1] for c in crops]


def test_pad_crop_flip_batches_are_crops_of_the_padded_images_and_depend_on_seed_and_step():
  rng = np.random.default_rng(0)
  ds = data.ArrayDataset(rng.random((64, 8, 8, 3), dtype=np.float32), rng.integers(0, 10, 64), 10)
  x0, _ = data.train_batch(ds, 32, seed=3, step=5)
  x, y = data.train_batch(ds, 32, seed=3, step=5, augment="pad_crop_flip")
  np.testing.assert_array_equal(y, data.train_batch(ds, 32, seed=3, step=5)[1])
  assert x.dtype == np.float32 and x.shape == x0.shape
  flips = moved = 0
  for a, b in zip(x, x0):
    matches = [i for i, c in enumerate(_windows(b)) if np.array_equal(a, c)]
    assert matches, "an augmented image is not a crop (or its mirror) of the padded image"
    flips += matches[0] >= 81
    moved += matches[0] % 81 != 40  # 40: the centre crop (no shift)
  assert 4 <= flips <= 28 and moved >= 20  # about half flipped, most shifted
  # the draws depend on (seed, step) only: the iterator, a resumed run and a second call
  # see the same batch; another step draws other crops
  ((step, (xi, _)),) = data.iterate_train(ds, 32, 3, 5, 6, "pad_crop_flip")
  assert step == 5
  np.testing.assert_array_equal(xi, x)
  np.testing.assert_array_equal(data.augment_batch(x0, "pad_crop_flip", 3, 5), x)
  assert not np.array_equal(data.augment_batch(x0, "pad_crop_flip", 3, 6), x)
  flipped = data.augment_batch(x0, "flip", 3, 5)
  assert all(np.array_equal(a, b) or np.array_equal(a, b[:, ::-1]) for a, b in zip(flipped, x0))
  np.testing.assert_array_equal(data.augment_batch(x0, "none", 3, 5), x0)
  with pytest.raises(
    ValueError,
    match=r"`augment` must be one of \['none', 'flip', "
    r"'pad_crop_flip'\]; got 'crop'",
  ):
    data.augment_batch(x0, "crop", 3, 5)
  with pytest.raises(ValueError, match=r"config\.train_augment: unknown value 'crop'"):
    cfg = train.default_config()
    cfg.train_augment = "crop"
    train.validate_config(cfg)


def test_model_kwargs_must_be_attributes_of_the_model():
  cfg = train.default_config()
  cfg.model = "preact_resnet18"  # no dropout: the default dropout_rate 0.0 is left out
  assert train.validate_config(cfg).model_kwargs.dropout_rate == 0.0
  cfg.model_kwargs.dropout_rate = 0.3
  with pytest.raises(
    ValueError,
    match=r"config\.model_kwargs\.dropout_rate: model "
    r"'preact_resnet18' has no attribute 'dropout_rate'",
  ):
    train.validate_config(cfg)
  cfg.model, cfg.model_kwargs.dropout_rate = "wrn34_10", 0.3
  train.validate_config(cfg)
  assert "depth" not in models.model_attributes("wrn34_10")  # fixed by the name
  with pytest.raises(
    ValueError,
    match=r"model 'resnet50' has no attribute dropout_rate; "
    r"it takes \['stage_sizes'",
  ):
    models.get_model("resnet50", num_classes=10, dropout_rate=0.1)


@pytest.mark.usefixtures("low_memory_start")
@pytest.mark.slow
@pytest.mark.parametrize(
  "name,model",
  [
    ("cifar10_preactresnet18_pgd_at", "preact_resnet18"),
    ("cifar10_wrn34_10_hybrid", "wrn34_10"),
  ],
)
def test_cifar10_config_builds_and_trains_two_steps_on_a_generated_source(tmp_path, name, model):
  rng = np.random.default_rng(0)
  path = str(tmp_path / "cifar_like.npz")
  np.savez(
    path, images=rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8), labels=np.arange(24) % 10
  )
  c = importlib.import_module(f"experiments.configs.{name}").get_config()
  assert (c.model, c.train_augment, c.train_attack.eps, c.eval.eps) == (
    model,
    "pad_crop_flip",
    8 / 255,
    8 / 255,
  )
  c.dataset, c.validation_size, c.batch_size, c.progress = f"npz:{path}", 4, 4, False
  c.train_attack.name = "pgd(num_steps=2)"  # the config's step program; fewer PGD iterations
  run = train.Run(c)
  state = run.init_state()
  before = [np.asarray(a) for a in jax.tree_util.tree_leaves(state.params)]  # donated
  for step, batch in zip(range(2), run.train_stream(0)):
    state, metrics = run.train_step_at(step)(state, data.shard_batch(batch, run.mesh))
    assert np.isfinite(float(metrics["loss"]))
  assert int(state.step) == 2
  assert any(not np.allclose(a, b) for a, b in zip(before, jax.tree_util.tree_leaves(state.params)))
