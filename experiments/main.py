"""Launches a training run or evaluates one. Flags only; the logic is in advjax.train.

  python -m experiments.main --config=experiments/configs/mnist_hybrid.py --workdir=runs/h
  python -m experiments.main --config=experiments/configs/mnist_hybrid.py --workdir=runs/h \
      --mode=eval
  python -m experiments.main --config=experiments/configs/mnist_hybrid.py:quick ...  # smoke run
Override any key with --config.key=value (unknown keys are errors).
"""
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Folder for checkpoints, metrics, report.")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "eval"],
                          "train (resumes if the workdir has a checkpoint) or eval "
                          "(latest checkpoint only).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  from advjax import train  # pylint: disable=import-outside-toplevel
  config = _CONFIG.value
  try:
    if _MODE.value == "train":
      report = train.train_and_evaluate(config, _WORKDIR.value)
    else:
      report = train.evaluate_checkpoint(config, _WORKDIR.value)
  except (ValueError, FileNotFoundError, FloatingPointError) as err:
    print(f"error: {err}", file=sys.stderr)
    sys.exit(1)
  print(f"clean accuracy {report['clean_accuracy']:.4f}; " + "; ".join(
      f"{a['label']} @ eps {a['eps']:g}: {a['accuracy']:.4f}"
      for a in report["attacks"].values()))
  print(f"report: {_WORKDIR.value}/report.md")


if __name__ == "__main__":
  app.run(main)
