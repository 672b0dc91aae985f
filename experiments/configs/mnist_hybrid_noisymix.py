"""The hybrid recipe plus NoisyMix on the clean branch (Erichson et al. 2022): the clean
batch and two AugMix views go through LeNet-5 as one batch with manifold mixup and sparse
noise at a random block, loss = alpha * (CE + 12 * JSD) + (1 - alpha) * CE(PGD-7), alpha
adaptive, eps growing from eps/10 to eps; evaluated also on the common corruptions.

  python -m experiments.main --config=experiments/configs/mnist_hybrid_noisymix.py \
      --workdir=runs/mnist_hybrid_noisymix
"""

from experiments.configs import mnist_hybrid


def get_config(arg=None):
  c = mnist_hybrid.get_config(arg)
  c.name = "mnist_hybrid_noisymix"
  c.noisymix.views = "augmix"
  c.eval.corruptions = ("common",) if arg != "quick" else ("gaussian_noise", "contrast")
  c.eval.corruption_examples = 500 if arg != "quick" else 100
  return c
