"""Shared setup of the attack benchmarks: a LeNet-5 trained on the embedded MNIST."""

from advjax import data, models, train


def train_lenet(epochs: int = 4, seed: int = 0, batch_size: int = 64):
  """(model, variables, logits_fn, test ArrayDataset) after a short clean training."""
  splits = data.load_mnist5k()
  model = models.get_model("lenet5", num_classes=10)
  variables = train.fit(
    model, splits["train"], epochs=epochs, batch_size=batch_size, learning_rate=3e-3, seed=seed
  )
  return model, variables, models.make_logits_fn(model, variables), splits["test"]
