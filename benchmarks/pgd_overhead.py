"""How much the PGD loop adds beyond the model's own input gradients.

Prints, for PGD-K Linf on a batch of 256 MNIST images, the ratio
time(PGD-K) / (K * time(one jitted input gradient)), for two models:
- advjax's LeNet-5 (`models.get_model("lenet5")`, trained briefly), whose
  convolutions have a CPU specialization (`advjax._backends.cpu_lenet`);
- a user's own plain-JAX LeNet (two `lax.conv_general_dilated` layers + 2x2
  max pooling + dense layers, random weights), which advjax knows only as a
  `logits_fn`.
The loop also evaluates the last iterate once (a forward pass) and keeps the
best iterate per example, so the floor is slightly above 1; the target is <= 1.10.
Beside it, a minimal PGD-K written by hand (`minimal_pgd`: K signed gradient steps
in a `lax.fori_loop`, nothing else) shows what XLA's loop itself costs on each model;
PGD-K / minimal loop is the part advjax owns.

Run:
  python -m benchmarks.pgd_overhead [--batch 256] [--steps 10 20 40] [--repeats 7]
"""

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np

from advjax import attacks, losses
from benchmarks._lenet_setup import train_lenet
from benchmarks._timing import time_calls


def plain_lenet(key):
  """(params, logits_fn) of a LeNet written with `jax.lax` only: conv 6 5x5 SAME -
  relu - 2x2 max pool - conv 16 5x5 VALID - relu - pool - dense 120 - 84 - 10."""
  shapes = {
    "c1": (5, 5, 1, 6),
    "c2": (5, 5, 6, 16),
    "d1": (400, 120),
    "d2": (120, 84),
    "d3": (84, 10),
  }
  keys = jax.random.split(key, len(shapes))
  params = {
    n: jax.random.normal(k, s) / np.sqrt(np.prod(s[:-1])) for (n, s), k in zip(shapes.items(), keys)
  }

  def conv(x, w, padding):
    return jax.lax.conv_general_dilated(
      x, w, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
    )

  def pool(x):
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")

  def logits_fn(x):
    x = (x - 0.1307) / 0.3081
    x = pool(jax.nn.relu(conv(x, params["c1"], "SAME")))
    x = pool(jax.nn.relu(conv(x, params["c2"], "VALID")))
    x = x.reshape(x.shape[0], -1)
    x = jax.nn.relu(x @ params["d1"])
    x = jax.nn.relu(x @ params["d2"])
    return x @ params["d3"]

  return params, logits_fn


def minimal_pgd(logits_fn, x, y, *, eps, num_steps):
  """The least any jitted PGD-K does: K signed input-gradient steps in a
  `lax.fori_loop`, each projected onto the eps-ball and [0, 1]; no random start, no
  best-iterate bookkeeping. Its time over K input gradients is what XLA's loop costs
  on this model, the floor for any library."""
  step = 2.5 * eps / num_steps

  def body(_, z):
    g = jax.grad(lambda z: jnp.sum(losses.cross_entropy(logits_fn(z), y)))(z)
    return jnp.clip(jnp.clip(z + step * jnp.sign(g), x - eps, x + eps), 0.0, 1.0)

  return jax.lax.fori_loop(0, num_steps, body, x)


def overhead(logits_fn, x, y, *, eps, steps, repeats):
  """Best (wall, CPU) seconds of one jitted input gradient, and {K: (advjax PGD-K,
  minimal PGD-K)} of the same."""

  @jax.jit
  def input_grad(x):
    return jax.grad(lambda z: jnp.sum(losses.cross_entropy(logits_fn(z), y)))(x)

  input_grad(x).block_until_ready()
  pgds, floors = {}, {}
  for k in steps:
    pgds[k] = jax.jit(
      lambda key, x, y, k=k: attacks.pgd(key, logits_fn, x, y, eps=eps, num_steps=k)
    )
    pgds[k](jax.random.key(0), x, y).block_until_ready()
    floors[k] = jax.jit(lambda x, y, k=k: minimal_pgd(logits_fn, x, y, eps=eps, num_steps=k))
    floors[k](x, y).block_until_ready()

  inf = np.array([np.inf, np.inf])
  t_grad, t_pgd, t_min = inf, {k: inf for k in steps}, {k: inf for k in steps}
  for _ in range(repeats):  # interleaved, so all see the same machine load
    t_grad = np.minimum(t_grad, time_calls(lambda: input_grad(x), 3).best())
    for k in steps:
      t_pgd[k] = np.minimum(
        t_pgd[k], time_calls(lambda k=k: pgds[k](jax.random.key(0), x, y), 1).best()
      )
      t_min[k] = np.minimum(t_min[k], time_calls(lambda k=k: floors[k](x, y), 1).best())
  return t_grad, {k: (t_pgd[k], t_min[k]) for k in steps}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=256)
  parser.add_argument("--steps", type=int, nargs="+", default=[10, 20, 40])
  parser.add_argument("--eps", type=float, default=0.1)
  parser.add_argument("--repeats", type=int, default=7)
  args = parser.parse_args()

  _, _, lenet_fn, test = train_lenet()
  x, y = test.get(np.arange(args.batch))
  x, y = jnp.asarray(x), jnp.asarray(y)
  _, plain_fn = plain_lenet(jax.random.key(1))
  kw = dict(eps=args.eps, steps=args.steps, repeats=args.repeats)
  results = {
    "advjax LeNet-5": overhead(lenet_fn, x, y, **kw),
    "plain-JAX LeNet (lax.conv)": overhead(plain_fn, x, y, **kw),
  }

  print(
    f"PGD-K Linf on MNIST, batch {args.batch}, eps={args.eps} "
    f"(jax {jax.__version__}, {jax.default_backend()}, {os.cpu_count()} CPU cores)"
  )
  for name, (t_grad, _) in results.items():
    print(
      f"{name}: one jitted input gradient {1e3 * t_grad[0]:.2f} ms wall, "
      f"{1e3 * t_grad[1]:.2f} ms CPU"
    )
  print(
    "| model | K | PGD-K wall (ms) | K x gradient wall (ms) | ratio (wall) | PGD-K CPU (ms) "
    "| K x gradient CPU (ms) | ratio (CPU) | minimal loop / K x gradient (CPU) "
    "| PGD-K / minimal loop (CPU) |"
  )
  print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
  for name, (t_grad, times) in results.items():
    for k in args.steps:
      (w, c), (_, c_min) = times[k]
      print(
        f"| {name} | {k} | {1e3 * w:.1f} | {1e3 * k * t_grad[0]:.1f} "
        f"| {w / (k * t_grad[0]):.3f} | {1e3 * c:.1f} | {1e3 * k * t_grad[1]:.1f} "
        f"| {c / (k * t_grad[1]):.3f} | {c_min / (k * t_grad[1]):.3f} "
        f"| {c / c_min:.3f} |"
      )


if __name__ == "__main__":
  main()
