"""Launches a training run or evaluates one. Flags only; the logic is in advjax.train.

  python -m experiments.main --config=experiments/configs/mnist_hybrid.py --workdir=runs/h
  python -m experiments.main --config=experiments/configs/mnist_hybrid.py --workdir=runs/h \
      --mode=eval [--eval_name=NAME] [--time_steps]
  python -m experiments.main --config=experiments/configs/mnist_hybrid.py:quick ...  # smoke run
Override any key with --config.key=value (unknown keys are errors); a tuple of names is a
quoted Python tuple, --config.eval.attacks="('fgsm','pgd')" (one name: --config.eval.attacks=fgsm).
An evaluation writes to <workdir>/eval/<eval_name>/ and leaves the training report alone; it
opens the checkpoints read-only (a training may still be running there) and carries the
training report's step times unless --time_steps times the steps again.

Several hosts: the same command on every host. Under SLURM (srun) or Open MPI (mpirun)
the processes find each other; on a TPU pod slice add --distributed=on; anywhere else give
--coordinator_address=HOST0:PORT --num_processes=N --process_id=I (see the README).

A mistake prints one line `error: ...` on stderr (experiments/_cli.py). Exit code 2: the
command line is wrong (an unknown, missing or malformed flag, an unknown config key, a
value of the wrong type, a config file or `:arg` that does not exist); nothing ran. Exit
code 1: advjax stopped the run (ValueError: a setting it rejects; OSError: no run or
checkpoint in the workdir, a file it cannot write; FloatingPointError: a non-finite loss).
"""

from absl import flags
from absl import logging
from ml_collections import config_flags

from experiments import _cli


def _define_flags():
  # Defined only when run as a program: absl flags are process-wide, and tests and
  # users import several experiments/ modules into one process.
  config_flags.DEFINE_config_file(
    "config",
    None,
    "A config file, e.g. experiments/configs/mnist_hybrid.py[:quick].",
    lock_config=True,
  )
  flags.DEFINE_string("workdir", None, "Folder for checkpoints, metrics, report.")
  flags.DEFINE_enum(
    "mode",
    "train",
    ["train", "eval"],
    "train (resumes if the workdir has a checkpoint) or eval (latest checkpoint only).",
  )
  flags.DEFINE_string(
    "eval_name",
    None,
    "--mode=eval writes to <workdir>/eval/<eval_name>/ (default step_<checkpoint step>).",
  )
  flags.DEFINE_bool(
    "time_steps",
    False,
    "--mode=eval: compile and time the clean and the recipe's train step "
    "again for the report's cost section (default: the training report's "
    "numbers, marked 'not measured in this evaluation').",
  )
  flags.DEFINE_enum(
    "distributed",
    "auto",
    ["auto", "on", "off"],
    "Multi-process runtime (jax.distributed.initialize): auto starts it "
    "under a multi-task SLURM job, a multi-rank mpirun or with the three "
    "flags below; on always (e.g. a TPU pod slice, JAX detects it); off "
    "never.",
  )
  flags.DEFINE_string(
    "coordinator_address", "", "host:port of process 0 (explicit multi-process launch)."
  )
  flags.DEFINE_integer("num_processes", 0, "The number of processes (explicit launch).")
  flags.DEFINE_integer("process_id", -1, "This process's id (explicit launch).")
  flags.mark_flags_as_required(["config", "workdir"])


def summary(report) -> str:
  """One line: clean accuracy, then each attack's accuracy (with its eps when bounded;
  a minimum-norm attack's success rate and median L2 norm)."""

  def one(a):
    if a.get("kind") == "min_norm":
      median = "-" if a["median_l2"] is None else f"{a['median_l2']:.4f}"
      return f"{a['label']}: success rate {a['success_rate']:.4f}, median L2 {median}"
    if a["eps"] is not None:
      return f"{a['label']} @ eps {a['eps']:g}: {a['accuracy']:.4f}"
    return f"{a['label']} (unbounded): {a['accuracy']:.4f}"

  return f"clean accuracy {report['clean_accuracy']:.4f}; " + "; ".join(
    one(a) for a in report["attacks"].values()
  )


def main(argv):
  _cli.no_arguments(argv, "every setting is a flag (--config.key=value), see --helpshort")
  if flags.FLAGS.eval_name is not None and flags.FLAGS.mode != "eval":
    raise _cli.UsageError("--eval_name names an evaluation; use it with --mode=eval")
  if flags.FLAGS.time_steps and flags.FLAGS.mode != "eval":
    raise _cli.UsageError(
      "--time_steps re-times the steps in an evaluation; use it with "
      "--mode=eval (a training always times them)"
    )
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  from advjax import train  # pylint: disable=import-outside-toplevel

  f = flags.FLAGS
  where = train.initialize_distributed(
    f.distributed,
    coordinator_address=f.coordinator_address,
    num_processes=f.num_processes,
    process_id=f.process_id,
  )
  if where != "single process":
    print(where, flush=True)
  config = flags.FLAGS.config
  if flags.FLAGS.mode == "train":
    report = train.train_and_evaluate(config, flags.FLAGS.workdir)
  else:
    report = train.evaluate_checkpoint(
      config, flags.FLAGS.workdir, name=flags.FLAGS.eval_name, time_steps=flags.FLAGS.time_steps
    )
  print(summary(report))
  print(f"report: {report.get('output_dir', flags.FLAGS.workdir)}/report.md")


if __name__ == "__main__":
  _define_flags()
  _cli.run(main, config="config")
