"""The CIFAR / ImageNet model zoo: published parameter counts, torch-named
parameter paths, hooks, batch statistics and the bfloat16 compute dtype.

Full-size models are only traced (`jax.eval_shape`); forward passes run on
narrow variants of the same code at 32x32, with variables drawn by NumPy
(Flax's jitted init of these models compiles for tens of seconds on XLA:CPU).

bfloat16 tolerance: on the same float32 variables, bf16 logits differ from
float32 by 0.4-1.0% of the largest |logit| on these variants; the full-size
models, with weights copied from their torch references (WRN-28-10, WRN-34-10,
PreActResNet-18 at 32x32, ResNet-50 and EfficientNet-B0 at 64x64), by
0.4-0.8%. The bound asserted is 4% (bf16 keeps 8 mantissa bits: 0.4% per
rounding).
"""

import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from advjax import models

# Published parameter counts (params only): RobustBench's PreActResNet18() and
# WideResNet(depth, 10), torchvision's resnet50() and efficientnet_b0(), checked
# against those torch definitions.
COUNTS = [
  ("resnet18", 10, 11_173_962),
  ("preact_resnet18", 10, 11_171_146),
  ("wrn28_10", 10, 36_479_194),
  ("wrn34_10", 10, 46_160_474),
  ("resnet50", 1000, 25_557_032),
  ("efficientnet_b0", 1000, 5_288_548),
]

_TINY_B0 = (
  (1, 3, 1, 8, 8, 1),
  (2, 3, 2, 8, 8, 1),
  (2, 5, 2, 8, 8, 1),
  (2, 3, 2, 8, 8, 1),
  (2, 3, 1, 8, 8, 2),
  (2, 3, 2, 8, 8, 1),
  (2, 3, 1, 8, 8, 1),
)
# Narrow variants of each architecture (same code paths: projection and identity
# shortcuts, strides, squeeze-excitation, stochastic depth).
TINY = {
  "preact_resnet18": dict(stage_sizes=(1, 2, 1, 1), width=8, bn_before_fc=True),
  "wide_resnet": dict(depth=10, widen_factor=2),
  "resnet50": dict(stage_sizes=(1, 2, 1, 1), width=4),
  "efficientnet_b0": dict(stages=_TINY_B0, dropout_rate=0.0, stochastic_depth_rate=0.5),
}


def _shapes(name, num_classes, image_shape=(32, 32, 3), **kw):
  m = models.get_model(name, num_classes=num_classes, **kw)
  return jax.eval_shape(lambda: models.init_variables(m, jax.random.key(0), image_shape))


def _num_params(variables):
  return sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(variables["params"]))


@pytest.mark.parametrize("name,num_classes,expected", COUNTS)
def test_parameter_counts_are_the_published_ones(name, num_classes, expected):
  assert _num_params(_shapes(name, num_classes)) == expected


def test_generic_wide_resnet_and_bad_depth():
  assert _num_params(_shapes("wide_resnet", 10, depth=28, widen_factor=10)) == 36_479_194
  with pytest.raises(ValueError, match="depth"):
    _shapes("wide_resnet", 10, depth=27)


@pytest.mark.parametrize(
  "name,paths",
  [
    (
      "resnet18",
      {
        ("conv1", "kernel"): (3, 3, 3, 64),
        ("bn1", "scale"): (64,),
        ("layer2_0", "shortcut_0", "kernel"): (1, 1, 64, 128),
        ("layer2_0", "shortcut_1", "bias"): (128,),
        ("layer4_1", "bn2", "scale"): (512,),
        ("linear", "kernel"): (512, 10),
      },
    ),
    (
      "preact_resnet18",
      {
        ("layer1_0", "bn1", "scale"): (64,),
        ("layer2_0", "bn1", "scale"): (64,),
        ("layer2_0", "shortcut_0", "kernel"): (1, 1, 64, 128),
        ("linear", "bias"): (10,),
      },
    ),
    (
      "wrn34_10",
      {
        ("conv1", "kernel"): (3, 3, 3, 16),
        ("block1_layer_0", "convShortcut", "kernel"): (1, 1, 16, 160),
        ("block3_layer_4", "conv2", "kernel"): (3, 3, 640, 640),
        ("bn1", "scale"): (640,),
        ("fc", "kernel"): (640, 10),
      },
    ),
    (
      "resnet50",
      {
        ("conv1", "kernel"): (7, 7, 3, 64),
        ("layer1_0", "downsample_0", "kernel"): (1, 1, 64, 256),
        ("layer2_0", "conv2", "kernel"): (3, 3, 128, 128),
        ("layer4_2", "bn3", "scale"): (2048,),
        ("fc", "kernel"): (2048, 10),
      },
    ),
    (
      "efficientnet_b0",
      {
        ("features_0_0", "kernel"): (3, 3, 3, 32),
        ("features_1_0", "block_0_0", "kernel"): (3, 3, 1, 32),
        ("features_1_0", "block_1", "fc1", "bias"): (8,),
        ("features_2_0", "block_0_0", "kernel"): (1, 1, 16, 96),
        ("features_2_0", "block_1_0", "kernel"): (3, 3, 1, 96),
        ("features_2_0", "block_2", "fc2", "kernel"): (1, 1, 4, 96),
        ("features_2_0", "block_3_1", "scale"): (24,),
        ("features_8_0", "kernel"): (1, 1, 320, 1280),
        ("classifier_1", "kernel"): (1280, 10),
      },
    ),
  ],
)
def test_parameter_paths_follow_the_torch_names(name, paths):
  flat = traverse_util.flatten_dict(_shapes(name, 10)["params"])
  assert {k: flat[k].shape for k in paths if k in flat} == paths
  # Every module is named: no Flax auto-names (Conv_0, BatchNorm_1, MBConv_0, ...).
  auto = [k for k in flat if any(re.fullmatch(r"[A-Z]\w*_\d+", p) for p in k)]
  assert not auto, auto[:3]


@pytest.mark.parametrize("name", ["preact_resnet18", "wrn28_10", "resnet50", "efficientnet_b0"])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_full_size_training_pass_traced(name, dtype):
  """Output, hook indices and dtypes of a full-size training pass (traced only)."""
  model = models.get_model(name, num_classes=10, dtype=dtype)
  x = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)
  seen = []

  def hook(i, h):
    seen.append(i)
    return h

  def train(x):
    variables = model.init({"params": jax.random.key(0)}, x)
    return variables, model.apply(
      variables,
      x,
      train=True,
      mutable=["batch_stats"],
      rngs={"dropout": jax.random.key(1)},
      block_hook=hook,
    )

  variables, (logits, updates) = jax.eval_shape(train, x)
  assert logits.shape == (2, 10) and logits.dtype == np.float32
  assert seen == list(range(model.num_blocks + 1)), seen
  assert updates["batch_stats"].keys() == variables["batch_stats"].keys()
  assert {l.dtype for l in jax.tree_util.tree_leaves((variables, updates))} == {
    np.dtype(np.float32)
  }


def _random_variables(model, image_shape):
  """Variables of `model`'s shapes drawn with NumPy (Flax's jitted init compiles
  slowly on XLA:CPU): kernels N(0, 1 / fan_in), BatchNorm scales and biases near
  (1, 0), running statistics (0, 1)."""
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1,) + image_shape)))
  rng = np.random.RandomState(0)

  def draw(path, leaf):
    name = path[-1].key
    if name == "kernel":
      return rng.randn(*leaf.shape).astype(np.float32) / np.sqrt(np.prod(leaf.shape[:-1]))
    if name == "scale":
      return (1 + 0.1 * rng.randn(*leaf.shape)).astype(np.float32)
    if name == "var":
      return np.ones(leaf.shape, np.float32)
    return (0.1 * rng.randn(*leaf.shape)).astype(np.float32)  # bias, mean

  return jax.tree_util.tree_map_with_path(draw, shapes)


@pytest.fixture(scope="module", params=sorted(TINY))
def tiny_run(request):
  """A narrow variant: (name, variables, batch statistics after a training
  pass, its logits with two dropout keys, float32 and bfloat16 logits on the
  updated variables), in one program."""
  name = request.param
  model = models.get_model(name, num_classes=7, **TINY[name])
  variables = _random_variables(model, (32, 32, 3))
  x = jax.random.uniform(jax.random.key(1), (4, 32, 32, 3))

  @jax.jit
  def run(variables, x):
    train = lambda k: model.apply(
      variables, x, train=True, mutable=["batch_stats"], rngs={"dropout": jax.random.key(k)}
    )
    (train_a, updates), (train_b, _) = train(0), train(1)
    trained = {**variables, **updates}
    return (
      updates,
      train_a,
      train_b,
      model.apply(trained, x),
      model.clone(dtype=jnp.bfloat16).apply(trained, x),
    )

  return (name, variables) + run(variables, x)


def test_training_pass_updates_every_batch_statistic(tiny_run):
  name, variables, updates = tiny_run[:3]
  before = traverse_util.flatten_dict(variables["batch_stats"])
  after = traverse_util.flatten_dict(updates["batch_stats"])
  assert before.keys() == after.keys()
  norms = {k[:-1] for k in before}
  unchanged = [
    k for k in norms if all(np.allclose(before[k + (s,)], after[k + (s,)]) for s in ("mean", "var"))
  ]
  assert not unchanged, (name, unchanged)


def test_training_randomness(tiny_run):
  """Only EfficientNet's tiny variant has training randomness: stochastic depth
  (its classifier dropout is off here)."""
  name, _, _, train_a, train_b = tiny_run[:5]
  if name == "efficientnet_b0":
    assert float(jnp.abs(train_a - train_b).max()) > 1e-3  # residuals dropped per example
  else:
    np.testing.assert_array_equal(train_a, train_b)


def test_bfloat16_logits_close_to_float32_on_the_same_variables(tiny_run):
  name, a, b = tiny_run[0], tiny_run[-2], tiny_run[-1]
  assert a.dtype == b.dtype == jnp.float32
  chex.assert_tree_all_finite((a, b))
  scale = float(jnp.abs(a).max())
  err = float(jnp.abs(a - b).max())
  assert 0 < err <= 0.04 * scale, (name, err, scale)  # 0 would mean bf16 is not used


def test_lenet_bfloat16_takes_the_portable_path_and_stays_close():
  x = jax.random.uniform(jax.random.key(1), (4, 28, 28, 1))
  model = models.LeNet5()
  variables = _random_variables(model, (28, 28, 1))
  a, b = jax.jit(lambda v, x: (model.apply(v, x), model.clone(dtype=jnp.bfloat16).apply(v, x)))(
    variables, x
  )
  assert b.dtype == jnp.float32
  scale = float(jnp.abs(a).max())
  assert 0 < float(jnp.abs(a - b).max()) <= 0.04 * scale


@pytest.mark.slow
@pytest.mark.parametrize("name", ["preact_resnet18", "wrn28_10", "resnet50", "efficientnet_b0"])
def test_full_size_bfloat16_forward(name):
  model = models.get_model(name, num_classes=10)
  variables = _random_variables(model, (32, 32, 3))
  x = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3))
  a, b = jax.jit(lambda v, x: (model.apply(v, x), model.clone(dtype=jnp.bfloat16).apply(v, x)))(
    variables, x
  )
  assert a.dtype == b.dtype == jnp.float32
  assert 0 < float(jnp.abs(a - b).max()) <= 0.04 * float(jnp.abs(a).max())
