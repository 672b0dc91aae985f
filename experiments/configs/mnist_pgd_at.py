"""Plain PGD adversarial training (Madry et al. 2018; alpha = 0) of a LeNet-5 on the
embedded real MNIST: eps 0.15 (1.5x the evaluation eps 0.1) from the first step, PGD-7.

  python -m experiments.main --config=experiments/configs/mnist_pgd_at.py \
      --workdir=runs/mnist_pgd_at
"""
from advjax.train import default_config
from experiments import configs


def get_config(arg=None):
  configs.check_arg(arg)
  c = default_config()
  c.name = "mnist_pgd_at"
  c.recipe = "adversarial"
  c.alpha = 0.0
  c.num_epochs = 30
  c.learning_rate = 2e-3
  c.train_attack.name = "pgd"
  c.train_attack.eps = 0.15   # train at 1.5x the evaluation eps (0.1): a robustness margin
  c.eval.eps = 0.1
  c.train_attack.num_steps = 7
  c.eps_schedule = "constant"
  if arg == "quick":
    configs.quick(c)
  return c
