"""Models: shapes, normalization inside, inference view that never updates state."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import models


def test_resnet18_structure():
  m = models.get_model("resnet18", num_classes=10)
  v = jax.eval_shape(lambda: models.init_variables(m, jax.random.PRNGKey(0), (32, 32, 3)))
  n = sum(np.prod(p.shape) for p in jax.tree_util.tree_leaves(v["params"]))
  assert n == 11_173_962  # torch's CIFAR ResNet-18 (AutoAttack / RobustBench)
  assert "batch_stats" in v


class _UnnamedBlock(nn.Module):
  """ResNet18's block as written before its submodules took torch's names and
  the compute dtype: the reference its float32 outputs must equal bit for bit."""

  features: int
  strides: int = 1

  @nn.compact
  def __call__(self, x, train):
    norm = lambda **kw: nn.BatchNorm(
      use_running_average=not train, momentum=0.9, epsilon=1e-5, **kw
    )
    y = nn.Conv(self.features, (3, 3), self.strides, padding=1, use_bias=False)(x)
    y = nn.relu(norm()(y))
    y = nn.Conv(self.features, (3, 3), padding=1, use_bias=False)(y)
    y = norm(scale_init=nn.initializers.zeros)(y)
    if x.shape[-1] != self.features or self.strides != 1:
      x = norm()(nn.Conv(self.features, (1, 1), self.strides, use_bias=False)(x))
    return nn.relu(x + y)


class _UnnamedResNet(nn.Module):
  @nn.compact
  def __call__(self, x, train=False):
    x = (x - jnp.asarray((0.4914, 0.4822, 0.4465))) / jnp.asarray((0.2471, 0.2435, 0.2616))
    x = nn.Conv(8, (3, 3), padding=1, use_bias=False)(x)
    x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(x))
    for i in range(4):
      x = _UnnamedBlock(8 * 2**i, 2 if i else 1)(x, train)
    return nn.Dense(7)(jnp.mean(x, axis=(1, 2)))


def test_resnet18_float32_outputs_unchanged_by_names_and_dtype():
  from flax import traverse_util  # pylint: disable=g-import-not-at-top

  m = models.ResNet18(num_classes=7, stage_sizes=(1, 1, 1, 1), width=8)
  ref = _UnnamedResNet()
  x = jax.random.uniform(jax.random.PRNGKey(1), (4, 32, 32, 3))
  v_ref = jax.jit(ref.init)(jax.random.PRNGKey(0), x[:1])
  rename = {
    "Conv_0": "conv1",
    "BatchNorm_0": "bn1",
    "Conv_1": "conv2",
    "BatchNorm_1": "bn2",
    "Conv_2": "shortcut_0",
    "BatchNorm_2": "shortcut_1",
    "Dense_0": "linear",
    **{f"_UnnamedBlock_{i}": f"layer{i + 1}_0" for i in range(4)},
  }
  v = {
    col: traverse_util.unflatten_dict(
      {
        tuple(rename.get(p, p) for p in k): a
        for k, a in traverse_util.flatten_dict(v_ref[col]).items()
      }
    )
    for col in v_ref
  }
  shapes = jax.eval_shape(lambda: m.init(jax.random.PRNGKey(0), x[:1]))
  assert jax.tree_util.tree_map(jnp.shape, v) == jax.tree_util.tree_map(jnp.shape, shapes)
  f = jax.jit(
    lambda x: (
      ref.apply(v_ref, x),
      m.apply(v, x),
      ref.apply(v_ref, x, train=True, mutable=["batch_stats"]),
      m.apply(v, x, train=True, mutable=["batch_stats"]),
    )
  )
  a, b, (ta, sa), (tb, sb) = f(x)
  np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(ta, tb)
  for p, q in zip(
    traverse_util.flatten_dict(sa["batch_stats"]).values(),
    traverse_util.flatten_dict(sb["batch_stats"]).values(),
  ):
    np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize(
  "name,shape,kw",
  [
    ("lenet5", (28, 28, 1), {}),
    ("resnet18", (32, 32, 3), {"stage_sizes": (1, 1, 1, 1), "width": 8}),
  ],
)
def test_logits_shape_and_pure_inference(name, shape, kw):
  m = models.get_model(name, num_classes=7, **kw)
  v = models.init_variables(m, jax.random.PRNGKey(0), shape)
  x = jax.random.uniform(jax.random.PRNGKey(1), (4,) + shape)
  f = jax.jit(models.make_logits_fn(m, v))
  out = f(x)
  chex.assert_shape(out, (4, 7))
  chex.assert_tree_all_finite(out)
  np.testing.assert_allclose(f(x), out, rtol=1e-6)
  # per-example: a batch of one gives the same logits as inside a batch
  np.testing.assert_allclose(f(x[:1]), out[:1], rtol=1e-4, atol=1e-5)


def test_resnet_train_mode_updates_batch_stats_but_logits_fn_does_not():
  m = models.get_model("resnet18", num_classes=10, stage_sizes=(1, 1, 1, 1), width=8)
  v = models.init_variables(m, jax.random.PRNGKey(0), (32, 32, 3))
  x = jax.random.uniform(jax.random.PRNGKey(1), (8, 32, 32, 3))
  _, upd = jax.jit(lambda v, x: m.apply(v, x, train=True, mutable=["batch_stats"]))(v, x)
  before = jax.tree_util.tree_leaves(v["batch_stats"])
  after = jax.tree_util.tree_leaves(upd["batch_stats"])
  assert any(not np.allclose(a, b) for a, b in zip(before, after))
  jax.jit(models.make_logits_fn(m, v))(x)
  for a, b in zip(before, jax.tree_util.tree_leaves(v["batch_stats"])):
    np.testing.assert_array_equal(a, b)


def test_dropout_only_in_training():
  m = models.get_model("lenet5", num_classes=10, dropout_rate=0.5)
  v = models.init_variables(m, jax.random.PRNGKey(0), (28, 28, 1))
  x = jax.random.uniform(jax.random.PRNGKey(1), (4, 28, 28, 1))
  f = jax.jit(lambda k: m.apply(v, x, train=True, rngs={"dropout": k}))
  a, b = f(jax.random.PRNGKey(2)), f(jax.random.PRNGKey(3))
  assert not np.allclose(a, b)
  np.testing.assert_allclose(m.apply(v, x), m.apply(v, x))


def test_normalization_is_inside_the_model():
  m = models.get_model("lenet5", num_classes=10)
  v = models.init_variables(m, jax.random.PRNGKey(0), (28, 28, 1))
  seen = []
  m.apply(
    v,
    jnp.full((1, 28, 28, 1), 0.1307),
    block_hook=lambda i, h: (seen.append(h) if i == 0 else None) or h,
  )
  np.testing.assert_allclose(seen[0], 0.0, atol=1e-6)


def test_unknown_model_name():
  with pytest.raises(ValueError, match="Unknown model 'lenet6'"):
    models.get_model("lenet6", num_classes=10)


@pytest.mark.parametrize(
  "x_shape,k_shape,padding",
  [
    ((3, 28, 28, 1), (5, 5, 1, 6), "SAME"),  # LeNet's conv1: polyphase shifted sums
    ((3, 14, 14, 6), (5, 5, 6, 16), "VALID"),  # conv2: XLA forward, banded-matmul gradient
    ((2, 6, 70, 1), (3, 3, 1, 2), "SAME"),  # wider than 64: im2col gradient
    ((2, 9, 9, 2), (3, 3, 2, 4), "VALID"),  # odd conv size: plain XLA + nn.max_pool
  ],
)
def test_conv_pool_equals_xla_convolution_and_its_gradients(x_shape, k_shape, padding):
  from advjax.models import _lenet  # pylint: disable=g-import-not-at-top

  kx, kk, kg = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, x_shape)
  # A flat band taller than the kernel: rows of equal conv outputs, so pooling
  # windows with several maxima (ties) on every code path.
  x = x.at[:, : k_shape[0] + 1].set(0.5)
  kernel = jax.random.normal(kk, k_shape)

  def reference(x, kernel):  # XLA's convolution, pooling as jnp.max (ties shared)
    conv = jax.lax.conv_general_dilated(
      x, kernel, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    b, h, w, c = conv.shape
    if h % 2 or w % 2:
      return nn.max_pool(conv, (2, 2), (2, 2))
    return conv.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))

  out, vjp = jax.vjp(lambda x, k: _lenet.conv_pool_2x2(x, k, padding), x, kernel)
  ref, ref_vjp = jax.vjp(lambda x, k: reference(x, k), x, kernel)
  chex.assert_equal_shape([out, ref])
  np.testing.assert_allclose(out, ref, atol=1e-4)
  g = jax.random.normal(kg, out.shape)
  gx, gk = vjp(g)
  rx, rk = ref_vjp(g)
  np.testing.assert_allclose(gx, rx, atol=1e-4)
  np.testing.assert_allclose(gk, rk, atol=2e-4 * float(jnp.abs(rk).max()))
  jitted = jax.jit(jax.grad(lambda x: jnp.sum(_lenet.conv_pool_2x2(x, kernel, padding) * g)))
  np.testing.assert_allclose(jitted(x), rx, atol=1e-4)
