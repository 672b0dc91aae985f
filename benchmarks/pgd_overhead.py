"""How much the PGD loop adds beyond the model's own input gradients.

Prints, for PGD-K Linf on a LeNet-5 batch of 256 MNIST images, the ratio
time(PGD-K) / (K * time(one jitted input gradient)). The loop also evaluates
the last iterate once (a forward pass) and keeps the best iterate per example,
so the floor is slightly above 1; the target is <= 1.10.

Run:
  python benchmarks/pgd_overhead.py [--batch 256] [--steps 10 20 40]
"""
import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _lenet_setup import best_times, train_lenet  # noqa: E402  pylint: disable=g-import-not-at-top

from advjax import attacks  # noqa: E402


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=256)
  parser.add_argument("--steps", type=int, nargs="+", default=[10, 20, 40])
  parser.add_argument("--eps", type=float, default=0.1)
  parser.add_argument("--repeats", type=int, default=7)
  args = parser.parse_args()

  _, _, logits_fn, test = train_lenet()
  x, y = test.get(np.arange(args.batch))
  x, y = jnp.asarray(x), jnp.asarray(y)

  @jax.jit
  def input_grad(x):
    return jax.grad(lambda z: jnp.sum(attacks.cross_entropy(logits_fn(z), y)))(x)

  input_grad(x).block_until_ready()
  pgds = {}
  for k in args.steps:
    pgds[k] = jax.jit(lambda key, x, y, k=k: attacks.pgd(key, logits_fn, x, y, eps=args.eps,
                                                         num_steps=k))
    pgds[k](jax.random.key(0), x, y).block_until_ready()

  t_grad, t_pgd = np.array([np.inf, np.inf]), {k: np.array([np.inf, np.inf])
                                                for k in args.steps}
  for _ in range(args.repeats):  # interleaved, so all see the same machine load
    t_grad = np.minimum(t_grad, best_times(lambda: input_grad(x).block_until_ready(), 3))
    for k in args.steps:
      t_pgd[k] = np.minimum(t_pgd[k], best_times(
          lambda k=k: pgds[k](jax.random.key(0), x, y).block_until_ready(), 1))

  print(f"LeNet-5 / MNIST batch {args.batch}, eps={args.eps}; one jitted input gradient: "
        f"{1e3 * t_grad[0]:.2f} ms wall, {1e3 * t_grad[1]:.2f} ms CPU "
        f"(jax {jax.__version__}, {os.cpu_count()} CPU cores)")
  print("| K | PGD-K wall (ms) | K x gradient wall (ms) | ratio (wall) | PGD-K CPU (ms) "
        "| K x gradient CPU (ms) | ratio (CPU) |")
  print("|---:|---:|---:|---:|---:|---:|---:|")
  for k in args.steps:
    w, c = t_pgd[k]
    print(f"| {k} | {1e3 * w:.1f} | {1e3 * k * t_grad[0]:.1f} | {w / (k * t_grad[0]):.3f} "
          f"| {1e3 * c:.1f} | {1e3 * k * t_grad[1]:.1f} | {c / (k * t_grad[1]):.3f} |")

if __name__ == "__main__":
  main()
