"""Plain PGD adversarial training (Madry et al. 2018; alpha = 0) of a LeNet-5 on the
embedded real MNIST: PGD-7 at eps 0.15 (1.5x the evaluation eps 0.1), eps grown linearly
from eps/10 over the first third of training (the hybrid recipe's ramp). At full eps from
the first step with Adam 2e-3 one seed in three falls to the uniform output (training loss
log 10) in its first epoch and never leaves it; the run then stops with an error
(`stall_check`).

  python -m experiments.main --config=experiments/configs/mnist_pgd_at.py \
      --workdir=runs/mnist_pgd_at
`--config=...mnist_pgd_at.py:quick` shrinks it to a smoke run.
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
  c.train_attack.name = "pgd(num_steps=7)"
  c.train_attack.eps = 0.15  # train at 1.5x the evaluation eps (0.1): a robustness margin
  c.eval.eps = 0.1
  c.eps_schedule = "linear"  # eps/10 -> eps: at full eps from step 0 a seed can stall at chance
  c.eps_warmup_epochs = 10
  if arg == "quick":
    configs.quick(c)
  return c
