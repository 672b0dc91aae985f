"""Shared fixtures: the embedded MNIST splits and a LeNet-5 trained on them."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import data, models, train


def pytest_configure(config):
  config.addinivalue_line("markers", "slow: takes more than ~20 s on a 2-core CPU")


@pytest.fixture(scope="session")
def mnist():
  """{'train', 'validation', 'test'} ArrayDatasets of the embedded real MNIST."""
  return data.load_mnist5k()


@functools.lru_cache(maxsize=None)
def _train_lenet(epochs: int = 4, seed: int = 0):
  model = models.get_model("lenet5", num_classes=10)
  variables = train.fit(model, data.load_mnist5k()["train"], epochs=epochs, batch_size=64,
                        learning_rate=3e-3, seed=seed)
  return model, variables


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
