"""Runs the experiments (a)-(e) on the embedded real MNIST; then
`python -m experiments.make_results` writes RESULTS.md from their reports.

  python -m experiments.reproduce --experiments=b,d,e --root=runs/repro
  python -m experiments.reproduce --experiments=b --seeds=0 --root=runs/repro
  python -m experiments.reproduce --dataset=cifar10 --root=runs/repro_cifar10  # TFDS data

Runs that already have a report.json are skipped, interrupted runs resume from
their checkpoint, so the command can be re-run until everything is done. The
rows of each experiment are in `experiments/_experiments.py`. A wrong flag is one line
and exit 2, a run that stops is one line and exit 1 (experiments/_cli.py).
"""

import os
import time

from absl import flags
from absl import logging

from experiments import _cli


def _define_flags():
  # Defined only when run as a program: absl flags are process-wide, and tests and
  # users import several experiments/ modules into one process.
  flags.DEFINE_list(
    "experiments", ["a", "b", "c", "d", "e"], "Which experiments to run (keys of EXPERIMENTS)."
  )
  flags.DEFINE_list("seeds", None, "Seeds to run (default: each experiment's own).")
  flags.DEFINE_string("root", "runs/repro", "Folder of all runs.")
  flags.DEFINE_enum(
    "dataset",
    "mnist",
    ["mnist", "cifar10"],
    "mnist: LeNet-5 on the embedded MNIST; cifar10: ResNet-18 on "
    "TFDS cifar10 (prepared beforehand).",
  )


def run_experiment(exp, root, seeds, log=print, dataset="mnist"):
  """Trains and evaluates every row x seed of `exp` that has no report yet."""
  from advjax import train  # pylint: disable=import-outside-toplevel
  from experiments import _experiments as E  # pylint: disable=import-outside-toplevel

  if exp.prepare is not None:
    exp.prepare(root, log, dataset)
  for seed in seeds:
    for row in exp.rows:
      workdir = E.run_dir(root, exp.key, row.name, seed)
      if os.path.exists(os.path.join(workdir, "report.json")):
        log(f"[{exp.key}] {row.name} seed {seed}: done, skipped")
        continue
      config = row.config(seed, dataset)
      if row.init_from:
        config.init_workdir = E.run_dir(root, exp.key, row.init_from, seed)
      if row.generate:
        config.train_extra = E.generate_offline_set(root, exp.key, row, seed, log)
      if row.baseline:
        config.eval.baseline_workdir = E.run_dir(root, exp.key, row.baseline, seed)
      config.eval.update(exp.eval_overrides(root) if exp.eval_overrides else {})
      t0 = time.perf_counter()
      report = train.train_and_evaluate(config, workdir)
      log(
        f"[{exp.key}] {row.name} seed {seed}: clean {report['clean_accuracy']:.4f}, "
        + ", ".join(f"{a['label']} {a['accuracy']:.4f}" for a in report["attacks"].values())
        + f" ({time.perf_counter() - t0:.0f} s)"
      )
    if exp.ensemble_of:
      E.evaluate_ensemble(root, exp, seed, log)
  if exp.supplement is not None:
    E.measure_supplement(root, exp, dataset, log)


def main(argv):
  _cli.no_arguments(argv)
  logging.set_verbosity(logging.WARNING)
  from experiments import _experiments as E  # pylint: disable=import-outside-toplevel

  unknown = [k for k in flags.FLAGS.experiments if k not in E.EXPERIMENTS]
  if unknown or not flags.FLAGS.experiments:
    what = f"unknown {', '.join(map(repr, unknown))}" if unknown else "empty"
    raise _cli.UsageError(
      f"--experiments={','.join(flags.FLAGS.experiments)}: {what}; give some "
      f"of {','.join(sorted(E.EXPERIMENTS))}, e.g. --experiments=b,d"
    )
  try:
    seeds = [int(s) for s in flags.FLAGS.seeds] if flags.FLAGS.seeds else None
  except ValueError:
    raise _cli.UsageError(
      f"--seeds={','.join(flags.FLAGS.seeds)}: seeds are integers, e.g. --seeds=0,1,2"
    ) from None
  if os.path.exists(flags.FLAGS.root) and not os.path.isdir(flags.FLAGS.root):
    raise _cli.UsageError(f"--root={flags.FLAGS.root} is a file; pass a folder for the runs")
  for key in flags.FLAGS.experiments:
    exp = E.EXPERIMENTS[key]
    run_experiment(
      exp,
      flags.FLAGS.root,
      seeds or exp.seeds,
      log=lambda s: print(s, flush=True),
      dataset=flags.FLAGS.dataset,
    )


if __name__ == "__main__":
  _define_flags()
  _cli.run(main)
