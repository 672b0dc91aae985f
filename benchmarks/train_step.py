"""Cost of one PGD-K adversarial train step against the sum of its parts.

  python -m benchmarks.train_step [--batch 128] [--steps 7] [--repeats 30]

Prints, for LeNet-5 on MNIST-shaped data: one clean train step, one jitted input
gradient, one train step on the clean and the adversarial batch (the loss of the
adversarial recipe without the attack), and the PGD-K adversarial train step;
then the ratio of the adversarial step to K input gradients + that step.
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax

from advjax import attacks, data, models, train
from benchmarks._timing import time_calls


def step_costs(batch: int = 128, steps: int = 7, repeats: int = 30) -> dict:
  """Median seconds of each step, for LeNet-5 on a batch of the embedded MNIST.

  Args:
    batch: batch size.
    steps: K of the PGD-K adversarial step.
    repeats: timed calls per quantity (after one warm-up call, so compilation is excluded).

  Returns:
    A dict of seconds: "clean" (clean train step), "grad" (one jitted input gradient),
    "both" (train step on the clean and a precomputed adversarial batch), "parts"
    (`steps` x grad + both) and "adv" (the PGD-K adversarial train step).
  """
  x, y = data.load_mnist5k()["train"].get(np.arange(batch))
  x, y = jnp.asarray(x), jnp.asarray(y)
  model = models.get_model("lenet5", num_classes=10)
  tx = optax.adam(1e-3)
  eps = 0.1
  mk_state = lambda: train.create_train_state(
    model, tx, jax.random.PRNGKey(0), (28, 28, 1), alpha=0.5, eps=eps
  )
  const = train.eps_schedule("constant", eps, 0)
  clean_step = train.make_train_step(model, tx, recipe="standard", eps_fn=const)
  adv_step = train.make_train_step(
    model,
    tx,
    recipe="adversarial",
    eps_fn=const,
    attack_fn=train.make_attack_fn("pgd", num_steps=steps),
  )
  # the adversarial recipe's loss with a precomputed adversarial batch (no attack)
  no_attack = lambda k, f, xx, yy, e: jnp.clip(xx + 0.05, 0, 1)
  both_step = train.make_train_step(
    model, tx, recipe="adversarial", eps_fn=const, attack_fn=no_attack
  )
  variables = mk_state().variables()
  objective = attacks.get_objective("ce")

  @jax.jit
  def input_grad(v, xx, yy):
    f = models.make_logits_fn(model, v)
    return jax.grad(lambda z: objective.ascent_value(f(z), yy).sum())(xx)

  # train steps donate their state: give each call a fresh copy
  def run_step(step):
    state = mk_state()

    def go():
      nonlocal state
      state, m = step(state, (x, y))
      return m["loss"]

    return go

  median = lambda fn: time_calls(fn, repeats, warmup=1).median()
  t = {
    "clean": median(run_step(clean_step)),
    "grad": median(lambda: input_grad(variables, x, y)),
    "both": median(run_step(both_step)),
    "adv": median(run_step(adv_step)),
  }
  t["parts"] = steps * t["grad"] + t["both"]
  return t


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--batch", type=int, default=128)
  p.add_argument("--steps", type=int, default=7)
  p.add_argument("--repeats", type=int, default=30)
  a = p.parse_args()
  t = step_costs(a.batch, a.steps, a.repeats)
  t_clean, t_adv, parts = t["clean"], t["adv"], t["parts"]
  rows = [
    ("clean train step", t_clean),
    ("one input gradient (jit)", t["grad"]),
    ("train step on clean + adversarial batch", t["both"]),
    (f"sum of parts: {a.steps} input gradients + that step", parts),
    (f"PGD-{a.steps} adversarial train step", t_adv),
  ]
  print(
    f"LeNet-5, batch {a.batch}, {jax.devices()[0].platform} x{jax.device_count()}, "
    f"median of {a.repeats}"
  )
  print(f"| {'quantity':<52} | {'ms':>8} | {'x clean step':>12} |")
  print(f"|{'-' * 54}|{'-' * 10}|{'-' * 14}|")
  for name, sec in rows:
    print(f"| {name:<52} | {1e3 * sec:8.2f} | {sec / t_clean:12.2f} |")
  print(f"\nadversarial step / sum of parts = {t_adv / parts:.3f} (target <= 1.10)")


if __name__ == "__main__":
  main()
