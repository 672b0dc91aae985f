"""The hybrid recipe (the embedded default): adaptive alpha = acc_adv / (acc_adv +
acc_clean) from the validation slice after every epoch, and eps growing linearly
from eps/10 to eps (0.15, 1.5x the evaluation eps 0.1); PGD-7 adversarial examples;
LeNet-5 on the embedded real MNIST.

  python -m experiments.main --config=experiments/configs/mnist_hybrid.py \
      --workdir=runs/mnist_hybrid
`--config=...mnist_hybrid.py:quick` shrinks it to a smoke run.
"""

from advjax.train import default_config
from experiments import configs


def get_config(arg=None):
  configs.check_arg(arg)
  c = default_config()
  c.name = "mnist_hybrid"
  c.recipe = "hybrid"
  c.alpha = 0.5
  c.num_epochs = 30
  c.learning_rate = 2e-3
  c.train_attack.name = "pgd(num_steps=7)"
  c.train_attack.eps = 0.15  # train at 1.5x the evaluation eps (0.1): a robustness margin
  c.eval.eps = 0.1
  c.eps_schedule = "linear"
  c.eps_warmup_epochs = 10
  if arg == "quick":
    configs.quick(c)
  return c
