"""LeNet-5 trained on clean images only (the baseline) on the embedded real MNIST.

  python -m experiments.main --config=experiments/configs/mnist_standard.py \
      --workdir=runs/mnist_standard
`--config=...mnist_standard.py:quick` shrinks it to a smoke run.
"""

from advjax.train import default_config
from experiments import configs


def get_config(arg=None):
  configs.check_arg(arg)
  c = default_config()
  c.name = "mnist_standard"
  c.recipe = "standard"
  c.num_epochs = 15
  c.learning_rate = 2e-3
  c.batch_size = 64
  if arg == "quick":
    configs.quick(c)
  return c
