"""advjax vs torchattacks: PGD-10, APGD-CE and FAB-T (Linf) on the same LeNet-5 weights.

Trains a LeNet-5 on the embedded MNIST with advjax, copies the weights into the
same architecture in PyTorch, checks that both give the same logits, then runs
both libraries' attacks on the same test batches and prints one table: images/s
of each, the speed ratio, and the robust accuracies side by side.

Setup (never part of requirements.txt; see DESIGN.md, "Known traps"):
  pip install /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl
  pip install --no-deps torchattacks && pip install scipy tqdm requests

Run:
  python -m benchmarks.attacks_vs_torchattacks [--batch 256] [--batches 3] [--eps 0.1]
"""

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np

from advjax import attacks
from benchmarks._lenet_setup import train_lenet
from benchmarks._timing import time_calls


def torch_lenet(variables):
  """The advjax LeNet5 in PyTorch with the same weights (NCHW input in [0, 1])."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top

  p = jax.tree_util.tree_map(np.asarray, variables["params"])

  class LeNet5(nn.Module):
    def __init__(self):
      super().__init__()
      self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
      self.conv2 = nn.Conv2d(6, 16, 5)
      self.fc1 = nn.Linear(400, 120)
      self.fc2 = nn.Linear(120, 84)
      self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
      x = (x - 0.1307) / 0.3081
      x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
      x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
      x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # flatten in HWC order, as Flax
      x = torch.relu(self.fc1(x))
      x = torch.relu(self.fc2(x))
      return self.fc3(x)

  net = LeNet5()
  conv = lambda k: torch.tensor(k.transpose(3, 2, 0, 1).copy())  # noqa: E731  HWIO -> OIHW
  dense = lambda k: torch.tensor(k.T.copy())  # noqa: E731
  with torch.no_grad():
    net.conv1.weight.copy_(conv(p["Conv_0"]["kernel"]))
    net.conv1.bias.copy_(torch.tensor(p["Conv_0"]["bias"]))
    net.conv2.weight.copy_(conv(p["Conv_1"]["kernel"]))
    net.conv2.bias.copy_(torch.tensor(p["Conv_1"]["bias"]))
    for i, fc in enumerate([net.fc1, net.fc2, net.fc3]):
      fc.weight.copy_(dense(p[f"Dense_{i}"]["kernel"]))
      fc.bias.copy_(torch.tensor(p[f"Dense_{i}"]["bias"]))
  return net.eval()


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=256)
  parser.add_argument(
    "--batches", type=int, default=3, help="test batches for the robust accuracies"
  )
  parser.add_argument("--eps", type=float, default=0.1)
  parser.add_argument("--pgd_steps", type=int, default=10)
  parser.add_argument("--apgd_steps", type=int, default=20)
  parser.add_argument("--fab_steps", type=int, default=20)
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args()

  import torch  # pylint: disable=g-import-not-at-top
  import torchattacks  # pylint: disable=g-import-not-at-top

  _, variables, logits_fn, test = train_lenet()
  net = torch_lenet(variables)
  args.batches = min(args.batches, len(test) // args.batch)  # the test split has 1,000
  n = args.batch * args.batches
  x_all, y_all = test.get(np.arange(n))
  to_torch = lambda x: torch.tensor(np.asarray(x).transpose(0, 3, 1, 2).copy())  # noqa: E731
  with torch.no_grad():
    diff = np.abs(net(to_torch(x_all)).numpy() - np.asarray(logits_fn(x_all))).max()
  print(f"max |logits_torch - logits_jax| = {diff:.2e} over {n} test images")
  assert diff < 1e-3, "the two models differ"

  eps, alpha = args.eps, 2.5 * args.eps / args.pgd_steps
  jax_attacks = {
    f"PGD-{args.pgd_steps} Linf": jax.jit(
      lambda k, x, y: attacks.pgd(
        k, logits_fn, x, y, eps=eps, num_steps=args.pgd_steps, step_size=alpha / eps
      )
    ),
    f"APGD-CE-{args.apgd_steps} Linf": jax.jit(
      lambda k, x, y: attacks.apgd(
        k, logits_fn, x, y, eps=eps, num_steps=args.apgd_steps, loss="ce"
      )
    ),
    # FAB-T as an eps-bounded attack (AutoAttack's stage: accepted within eps).
    f"FAB-T-{args.fab_steps} Linf (9 targets)": jax.jit(
      lambda k, x, y: (
        attacks.autoattack(
          k,
          logits_fn,
          x,
          y,
          eps=eps,
          attacks=("fab_t",),
          num_steps=args.fab_steps,
          num_target_classes=9,
        ).images
      )
    ),
  }
  torch_attacks = {
    f"PGD-{args.pgd_steps} Linf": torchattacks.PGD(
      net, eps=eps, alpha=alpha, steps=args.pgd_steps, random_start=True
    ),
    f"APGD-CE-{args.apgd_steps} Linf": torchattacks.APGD(
      net, norm="Linf", eps=eps, steps=args.apgd_steps, n_restarts=1, loss="ce", seed=0
    ),
    f"FAB-T-{args.fab_steps} Linf (9 targets)": torchattacks.FAB(
      net,
      norm="Linf",
      eps=eps,
      steps=args.fab_steps,
      n_restarts=1,
      alpha_max=0.1,
      eta=1.05,
      beta=0.9,
      multi_targeted=True,
      n_classes=10,
      seed=0,
    ),
  }

  rows = []
  for name in jax_attacks:
    ja, ta = jax_attacks[name], torch_attacks[name]
    jax_correct, torch_correct = 0, 0
    for b in range(args.batches):
      sl = slice(b * args.batch, (b + 1) * args.batch)
      x, y = jnp.asarray(x_all[sl]), jnp.asarray(y_all[sl])
      adv = ja(jax.random.key(b), x, y)
      jax_correct += int(jnp.sum(jnp.argmax(logits_fn(adv), -1) == y))
      xt, yt = to_torch(x), torch.tensor(np.asarray(y), dtype=torch.long)
      torch.manual_seed(b)
      adv_t = ta(xt, yt)
      with torch.no_grad():
        torch_correct += int((net(adv_t).argmax(-1) == yt).sum())
    x, y = jnp.asarray(x_all[: args.batch]), jnp.asarray(y_all[: args.batch])
    xt, yt = to_torch(x), torch.tensor(np.asarray(y), dtype=torch.long)
    ja(jax.random.key(0), x, y).block_until_ready()  # compile
    ta(xt, yt)  # warm up
    t_jax, t_torch = np.array([np.inf, np.inf]), np.array([np.inf, np.inf])
    for _ in range(args.repeats):  # interleaved, so both see the same machine load
      t_jax = np.minimum(t_jax, time_calls(lambda: ja(jax.random.key(0), x, y), 1).best())
      t_torch = np.minimum(t_torch, time_calls(lambda: ta(xt, yt), 1).best())
    rows.append(
      (
        name,
        args.batch / t_jax[0],
        args.batch / t_torch[0],
        t_torch[0] / t_jax[0],
        t_torch[1] / t_jax[1],
        jax_correct / n,
        torch_correct / n,
      )
    )

  print(
    f"\nLeNet-5 / embedded MNIST, eps={eps}, batch {args.batch}, robust accuracy "
    f"over {n} test images; CPU: {os.cpu_count()} cores, torch threads "
    f"{torch.get_num_threads()}, jax {jax.__version__}, torch {torch.__version__}, "
    f"torchattacks {torchattacks.__version__}"
  )
  print(
    "| attack | advjax img/s | torchattacks img/s | speed ratio (wall) "
    "| speed ratio (CPU time) | advjax robust acc | torchattacks robust acc "
    "| diff (pp) |"
  )
  print("|---|---:|---:|---:|---:|---:|---:|---:|")
  for name, ij, it, ratio, ratio_cpu, aj, at in rows:
    print(
      f"| {name} | {ij:.0f} | {it:.0f} | {ratio:.2f}x | {ratio_cpu:.2f}x | "
      f"{100 * aj:.2f}% | {100 * at:.2f}% | {100 * (aj - at):+.2f} |"
    )


if __name__ == "__main__":
  main()
