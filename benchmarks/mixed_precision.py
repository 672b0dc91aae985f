"""config.dtype: the same short hybrid run in float32 and in bfloat16, side by side.

  python -m benchmarks.mixed_precision [--epochs 6] [--test_points 500] [--workdir DIR]

Trains LeNet-5 on the embedded MNIST with the hybrid recipe (mnist_hybrid's quick form:
PGD-2 at eps 0.15 grown from eps/10 over 2 epochs, `--epochs` epochs), once per compute
dtype, and prints clean and PGD-3 (eps 0.1) accuracy on the first `--test_points` test
points and the training time. On a CPU bfloat16 is emulated, so it is slower there; the
row shows that a bf16 run learns as well as a float32 one. Runs are written under
`--workdir` (default: a temporary folder, removed at the end).
"""

import argparse
import os
import shutil
import tempfile

from advjax import train
from experiments.configs import mnist_hybrid


def run_config(dtype: str, epochs: int, test_points: int):
  """mnist_hybrid's quick form with `epochs` epochs in compute dtype `dtype`."""
  c = mnist_hybrid.get_config("quick")
  c.name, c.dtype, c.num_epochs, c.eps_warmup_epochs, c.progress = dtype, dtype, epochs, 2, False
  c.train_attack.name = "pgd(num_steps=2)"
  c.eval.num_examples = test_points
  c.eval.attack_options.pgd.update(num_steps=3, step_size=0.4)
  c.eval.attacks, c.eval.masking_checks = ("pgd",), False
  return c


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--epochs", type=int, default=6)
  p.add_argument("--test_points", type=int, default=500)
  p.add_argument("--workdir", default=None)
  args = p.parse_args(argv)
  root = args.workdir or tempfile.mkdtemp(prefix="advjax_mixed_precision_")
  rows = []
  try:
    for dtype in ("float32", "bfloat16"):
      report = train.train_and_evaluate(
        run_config(dtype, args.epochs, args.test_points), os.path.join(root, dtype)
      )
      rows.append(
        (
          dtype,
          report["clean_accuracy"],
          report["attacks"]["pgd"]["accuracy"],
          report["train"]["time_s"],
        )
      )
  finally:
    if args.workdir is None:
      shutil.rmtree(root, ignore_errors=True)
  print(
    f"LeNet-5, embedded MNIST, hybrid recipe, {args.epochs} epochs; {args.test_points} test points"
  )
  print("| dtype | clean acc. | PGD-3 acc. (eps 0.1) | train time (s) |")
  print("|---|---|---|---|")
  for dtype, clean, pgd, seconds in rows:
    print(f"| {dtype} | {clean:.3f} | {pgd:.3f} | {seconds:.0f} |")
  return rows


if __name__ == "__main__":
  main()
