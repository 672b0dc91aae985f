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

_EXPERIMENTS = flags.DEFINE_list("experiments", ["a", "b", "c", "d", "e"],
                                 "Which experiments to run (keys of EXPERIMENTS).")
_SEEDS = flags.DEFINE_list("seeds", None, "Seeds to run (default: each experiment's own).")
_ROOT = flags.DEFINE_string("root", "runs/repro", "Folder of all runs.")
_DATASET = flags.DEFINE_enum("dataset", "mnist", ["mnist", "cifar10"],
                             "mnist: LeNet-5 on the embedded MNIST; cifar10: ResNet-18 on "
                             "TFDS cifar10 (prepared beforehand).")


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
      if row.baseline:
        config.eval.baseline_workdir = E.run_dir(root, exp.key, row.baseline, seed)
      config.eval.update(exp.eval_overrides(root) if exp.eval_overrides else {})
      t0 = time.perf_counter()
      report = train.train_and_evaluate(config, workdir)
      log(f"[{exp.key}] {row.name} seed {seed}: clean {report['clean_accuracy']:.4f}, " +
          ", ".join(f"{a['label']} {a['accuracy']:.4f}" for a in report["attacks"].values())
          + f" ({time.perf_counter() - t0:.0f} s)")
    if exp.ensemble_of:
      E.evaluate_ensemble(root, exp, seed, log)


def main(argv):
  if len(argv) > 1:
    raise _cli.UsageError(f"unexpected arguments {argv[1:]}; every setting is a flag, "
                          f"see --helpshort")
  logging.set_verbosity(logging.WARNING)
  from experiments import _experiments as E  # pylint: disable=import-outside-toplevel
  unknown = [k for k in _EXPERIMENTS.value if k not in E.EXPERIMENTS]
  if unknown or not _EXPERIMENTS.value:
    what = f"unknown {', '.join(map(repr, unknown))}" if unknown else "empty"
    raise _cli.UsageError(f"--experiments={','.join(_EXPERIMENTS.value)}: {what}; give some "
                          f"of {','.join(sorted(E.EXPERIMENTS))}, e.g. --experiments=b,d")
  try:
    seeds = [int(s) for s in _SEEDS.value] if _SEEDS.value else None
  except ValueError:
    raise _cli.UsageError(f"--seeds={','.join(_SEEDS.value)}: seeds are integers, "
                          f"e.g. --seeds=0,1,2") from None
  if os.path.exists(_ROOT.value) and not os.path.isdir(_ROOT.value):
    raise _cli.UsageError(f"--root={_ROOT.value} is a file; pass a folder for the runs")
  for key in _EXPERIMENTS.value:
    exp = E.EXPERIMENTS[key]
    run_experiment(exp, _ROOT.value, seeds or exp.seeds, log=lambda s: print(s, flush=True),
                   dataset=_DATASET.value)


if __name__ == "__main__":
  _cli.run(main)
