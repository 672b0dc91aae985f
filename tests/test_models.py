"""Models: shapes, normalization inside, inference view that never updates state."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import models


def test_resnet18_structure():
  m = models.get_model("resnet18", num_classes=10)
  v = jax.eval_shape(lambda: models.init_variables(m, jax.random.PRNGKey(0), (32, 32, 3)))
  n = sum(np.prod(p.shape) for p in jax.tree_util.tree_leaves(v["params"]))
  assert 11.0e6 < n < 11.3e6  # ResNet-18 for CIFAR has ~11.2M parameters
  assert "batch_stats" in v


@pytest.mark.parametrize("name,shape,kw", [
    ("lenet5", (28, 28, 1), {}),
    ("resnet18", (32, 32, 3), {"stage_sizes": (1, 1, 1, 1), "width": 8})])
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
  m.apply(v, jnp.full((1, 28, 28, 1), 0.1307), block_hook=lambda i, h: (
      seen.append(h) if i == 0 else None) or h)
  np.testing.assert_allclose(seen[0], 0.0, atol=1e-6)


def test_unknown_model_name():
  with pytest.raises(ValueError, match="Unknown model 'lenet6'"):
    models.get_model("lenet6", num_classes=10)
