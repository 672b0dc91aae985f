"""Shared fixtures: the embedded MNIST splits and a LeNet-5 trained on them."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from advjax import data, models


def pytest_configure(config):
  config.addinivalue_line("markers", "slow: takes more than ~20 s on a 2-core CPU")


@pytest.fixture(scope="session")
def mnist():
  """{'train', 'validation', 'test'} ArrayDatasets of the embedded real MNIST."""
  return data.load_mnist5k()


@functools.lru_cache(maxsize=None)
def _train_lenet(epochs: int = 4, seed: int = 0):
  splits = data.load_mnist5k()
  train = splits["train"]
  model = models.get_model("lenet5", num_classes=10)
  variables = models.init_variables(model, jax.random.key(seed), (28, 28, 1))
  tx = optax.adam(3e-3)
  params = variables["params"]
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state, x, y):
    def loss_fn(p):
      logits = model.apply({"params": p}, x, train=True)
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    grads = jax.grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  for s, (x, y) in data.iterate_train(train, 64, seed, 0,
                                      epochs * data.steps_per_epoch(len(train), 64)):
    params, opt_state = step(params, opt_state, x, y)
  return model, {"params": params}


@pytest.fixture(scope="session")
def trained_lenet():
  """(model, variables, logits_fn) of a LeNet-5 trained clean on the embedded MNIST
  (about 97% test accuracy; takes a few seconds)."""
  model, variables = _train_lenet()
  return model, variables, models.make_logits_fn(model, variables)


@pytest.fixture(scope="session")
def mnist_test_batch(mnist):
  """The first 256 test images and labels as jax arrays."""
  x, y = mnist["test"].get(np.arange(256))
  return jnp.asarray(x), jnp.asarray(y)
