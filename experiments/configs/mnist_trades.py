"""TRADES (Zhang et al. 2019) of a LeNet-5 on the embedded real MNIST: CE(x) + 6 *
KL(p(x) || p(x')), x' from TRADES' PGD on the KL (10 steps of eps / 4, Gaussian start);
eps 0.15 (1.5x the evaluation eps 0.1) from the first step; alpha = 0, the paper's loss.

  python -m experiments.main --config=experiments/configs/mnist_trades.py \
      --workdir=runs/mnist_trades

TRADES-AWP (Wu et al. 2020): add `--config.awp_gamma=5e-3`. MART (Wang et al. 2020,
x' from PGD on the CE): `--config.objective=mart`. `:quick` shrinks it to a smoke run.
"""

from advjax.train import default_config
from experiments import configs


def get_config(arg=None):
  configs.check_arg(arg)
  c = default_config()
  c.name = "mnist_trades"
  c.recipe = "adversarial"
  c.alpha = 0.0
  c.objective = "trades(beta=6.0)"
  c.awp_gamma = 0.0
  c.num_epochs = 30
  c.learning_rate = 2e-3
  # PGD-10 with step 0.25 eps: 2/255 at 8/255 in the CIFAR-10 reference
  c.train_attack.name = "pgd(num_steps=10, step_size=0.25)"
  c.train_attack.eps = 0.15  # train at 1.5x the evaluation eps (0.1): a robustness margin
  c.eval.eps = 0.1
  c.eps_schedule = "constant"
  if arg == "quick":
    configs.quick(c)
  return c
