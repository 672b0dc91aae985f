"""LeNet-5 trained on clean images only (the baseline) on the embedded real MNIST.

  python -m experiments.main --config=experiments/configs/mnist_standard.py \
      --workdir=runs/mnist_standard
`--config=...mnist_standard.py:quick` shrinks it to a smoke run.
"""
from advjax.train import default_config


def get_config(arg=None):
  if arg not in (None, "quick"):
    raise ValueError(f"unknown config argument {arg!r}; use none (the full run) or "
                     f"':quick' (a smoke run)")
  c = default_config()
  c.name = "mnist_standard"
  c.recipe = "standard"
  c.num_epochs = 15
  c.learning_rate = 2e-3
  c.batch_size = 64
  if arg == "quick":
    c.num_epochs = 1
    c.eval.eps_grid = (0.0, c.eval.eps)
    c.eval.masking_examples = 50
    c.eval.square_queries = 100
    c.eval.gallery_size = 4
    c.eval.num_examples = 200
    c.eval.pgd_steps = 5
    c.eval.pgd_step_size = 2.5 * c.eval.eps / 5
  return c
