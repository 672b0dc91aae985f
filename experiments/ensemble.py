"""Evaluates finished runs as one ensemble: the average of their softmax outputs.

Train N members (e.g. one config with different augmentations, recipes or seeds),
then attack and score the ensemble white-box with the usual evaluation suite:

  python -m experiments.ensemble --workdirs=runs/a,runs/b,runs/c --output=runs/ens
  python -m experiments.ensemble --workdirs=runs/a,runs/b --output=runs/ens \
      --name=ens_ab --attacks=fgsm,pgd,apgd_ce --num_examples=500

The evaluation config is the first member's `config.eval`; --attacks, --eps,
--num_examples and --corruptions override it (--attacks and --corruptions are
comma-separated lists, `--corruptions=` is none, `--num_examples=all` is the whole test
set). Writes OUTPUT/report.json, OUTPUT/report.md and OUTPUT/figures/. The logic is
`evaluate_ensemble`. A wrong flag is one line and exit 2; a member that is not a finished
run, or a setting advjax rejects, is one line and exit 1 (experiments/_cli.py).
"""

import json
import os
from typing import Any, Dict, Optional, Sequence

from absl import flags
from absl import logging

from experiments import _cli


def _define_flags():
  # Defined only when run as a program: absl flags are process-wide, and tests and
  # users import several experiments/ modules into one process.
  flags.DEFINE_list("workdirs", None, "Comma-separated workdirs of the members.")
  flags.DEFINE_string("output", None, "Folder for the ensemble's report and figures.")
  flags.DEFINE_string("name", "ensemble", "The ensemble's name in its report.")
  flags.DEFINE_list("attacks", None, "Override eval.attacks (comma-separated names).")
  flags.DEFINE_float("eps", None, "Override eval.eps.")
  flags.DEFINE_string(
    "num_examples",
    None,
    "Override eval.num_examples: a number >= 1, or 'all' (the whole test set).",
  )
  flags.DEFINE_list(
    "corruptions",
    None,
    "Override eval.corruptions (comma-separated corruption names or 'common'; empty: none).",
  )
  flags.DEFINE_bool("progress", True, "Show progress bars.")
  flags.mark_flags_as_required(["workdirs", "output"])


def _member_report(workdir: str) -> Optional[Dict[str, Any]]:
  path = os.path.join(workdir, "report.json")
  if not os.path.exists(path):
    return None
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def _check_override_keys(overrides: Optional[Dict[str, Any]]) -> None:
  from advjax.eval import default_eval_config  # pylint: disable=import-outside-toplevel

  known = default_eval_config()
  for key in overrides or {}:
    if key not in known:
      raise ValueError(
        f"eval_overrides: unknown eval config key {key!r}; known: {sorted(known.keys())}."
      )


def _eval_config(base, overrides: Optional[Dict[str, Any]]):
  """A copy of the member's eval config with `overrides` applied."""
  import ml_collections  # pylint: disable=import-outside-toplevel

  cfg = ml_collections.ConfigDict(base.to_dict())
  for key, value in (overrides or {}).items():
    if isinstance(cfg[key], tuple) and isinstance(value, list):
      value = tuple(value)
    if isinstance(cfg[key], tuple) and isinstance(value, str):
      raise ValueError(
        f"eval_overrides[{key!r}] must be a tuple such as "
        f"{tuple(p for p in value.split(',') if p)!r}, not the string "
        f"{value!r}."
      )
    try:
      cfg[key] = value
    except TypeError as err:
      raise ValueError(f"eval_overrides[{key!r}] = {value!r}: {err}") from err
  return cfg


def evaluate_ensemble(
  workdirs: Sequence[str],
  output: str,
  *,
  name: str = "ensemble",
  eval_overrides: Optional[Dict[str, Any]] = None,
  progress: bool = True,
) -> Dict[str, Any]:
  """Runs the evaluation suite on the mean-softmax ensemble of finished runs.

  Each member is the latest checkpoint of its workdir (`advjax.train.load_run`);
  the ensemble is `advjax.eval.ensemble_logits_fn` of the members, evaluated
  white-box on the members' common test set with the first member's eval config.

  Args:
    workdirs: N >= 1 distinct run folders, each with config.json and a checkpoint,
      all trained on the same dataset (a comma-separated string also works).
    output: folder for report.json, report.md and figures/ (not a member's workdir).
    name: the ensemble's name in the report.
    eval_overrides: eval config keys to change, e.g. `{"attacks": ("fgsm", "pgd"),
      "num_examples": 500}` (None: the whole test set).
    progress: show progress bars.

  Returns:
    The JSON report as written. `report["setup"]` says which runs were combined;
    `report["members"]` lists each member's workdir, name, model, recipe and clean
    accuracy from its own report.json (None when it has none).

  Raises:
    ValueError: for an empty or repeated `workdirs`, members with different
      datasets or test sets, `output` equal to a member's workdir, or a bad
      eval override.
    FileNotFoundError: if a workdir is not a run or has no checkpoint.
  """
  from advjax import eval as ev_lib  # pylint: disable=import-outside-toplevel
  from advjax import models, train  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel

  if isinstance(workdirs, str):
    workdirs = [w for w in workdirs.split(",") if w]
  workdirs = list(workdirs)
  if not workdirs:
    raise ValueError("workdirs is empty; an ensemble needs at least one run.")
  norm = [os.path.abspath(w) for w in workdirs]
  for i, w in enumerate(norm):
    if w in norm[:i]:
      raise ValueError(f"workdirs lists {workdirs[i]!r} twice.")
  if os.path.abspath(output) in norm:
    raise ValueError(
      f"output {output!r} is a member's workdir; its report would be "
      f"overwritten. Choose another folder."
    )

  _check_override_keys(eval_overrides)
  # cheap checks on every member's config.json before any checkpoint is restored
  configs = [train.read_run_config(w) for w in workdirs]
  for w, c in zip(workdirs[1:], configs[1:]):
    if c.dataset != configs[0].dataset:
      raise ValueError(
        f"members differ in dataset: {workdirs[0]!r} has "
        f"{configs[0].dataset!r}, {w!r} has {c.dataset!r}."
      )

  runs, logits_fns = [], []
  for w in workdirs:
    run, state = train.load_run(w)
    runs.append(run)
    logits_fns.append(models.make_logits_fn(run.model, jax.device_get(state.variables())))
  first = runs[0]
  test = first.splits["test"]
  for w, run in zip(workdirs[1:], runs[1:]):
    other = run.splits["test"]
    if (
      len(other) != len(test)
      or other.num_classes != test.num_classes
      or other.image_shape != test.image_shape
      or not np.array_equal(other.labels, test.labels)
      or not np.array_equal(other.images, test.images)
    ):
      raise ValueError(
        f"members differ in test set: {workdirs[0]!r} has {len(test)} "
        f"images, {w!r} has {len(other)}, or their images or labels differ."
      )

  cfg = _eval_config(first.config.eval, eval_overrides)
  baseline = None
  if cfg.baseline_workdir:
    baseline = _member_report(cfg.baseline_workdir)
    if baseline is None:
      raise FileNotFoundError(f"eval baseline_workdir: no report.json in {cfg.baseline_workdir!r}.")
  report = ev_lib.evaluate(
    ev_lib.ensemble_logits_fn(logits_fns),
    test,
    cfg,
    progress=progress,
    baseline_report=baseline,
    name=name,
  )

  members = []
  for w, run in zip(workdirs, runs):
    r = _member_report(w) or {}
    members.append(
      {
        "workdir": w,
        "name": run.config.name,
        "model": run.config.model,
        "recipe": run.config.recipe,
        "clean_accuracy": r.get("clean_accuracy"),
        "num_test_examples": r.get("num_test_examples"),
      }
    )
  accs = [m["clean_accuracy"] for m in members]
  report["setup"] = {
    "ensemble of": list(workdirs),
    "members": len(workdirs),
    "combination": "mean of softmax probabilities (attacked white-box)",
    "dataset": first.config.dataset,
    "models": sorted({m["model"] for m in members}),
    "recipes": [m["recipe"] for m in members],
    "member clean accuracy": ["-" if a is None else round(a, 4) for a in accs],
    "eval overrides": ", ".join(f"{k}={v}" for k, v in (eval_overrides or {}).items()) or "none",
  }
  report["members"] = members
  return ev_lib.write_evaluation(output, report)


def _num_examples(text: str) -> Optional[int]:
  """--num_examples: "all" is None (the whole test set), else a number >= 1."""
  if text.strip().lower() == "all":
    return None
  try:
    n = int(text)
  except ValueError:
    n = 0
  if n < 1:
    raise _cli.UsageError(
      f"--num_examples={text} is neither a number >= 1 nor 'all' (the whole test set)"
    )
  return n


def main(argv):
  _cli.no_arguments(argv, "members go in --workdirs=RUN_A,RUN_B, see --helpshort")
  if not flags.FLAGS.workdirs:
    raise _cli.UsageError(
      "--workdirs is empty; give the members' run folders, e.g. --workdirs=runs/a,runs/b"
    )
  if os.path.exists(flags.FLAGS.output) and not os.path.isdir(flags.FLAGS.output):
    raise _cli.UsageError(
      f"--output={flags.FLAGS.output} is a file; pass a folder for the ensemble's report"
    )
  logging.set_verbosity(logging.WARNING)  # orbax logs every restore at INFO
  overrides = {
    k: tuple(v)
    for k, v in [("attacks", flags.FLAGS.attacks), ("corruptions", flags.FLAGS.corruptions)]
    if v is not None
  }
  if flags.FLAGS.eps is not None:
    overrides["eps"] = flags.FLAGS.eps
  if flags.FLAGS.num_examples is not None:
    overrides["num_examples"] = _num_examples(flags.FLAGS.num_examples)
  report = evaluate_ensemble(
    flags.FLAGS.workdirs,
    flags.FLAGS.output,
    name=flags.FLAGS.name,
    eval_overrides=overrides,
    progress=flags.FLAGS.progress,
  )
  members = "; ".join(
    f"{m['workdir']}: -"
    if m["clean_accuracy"] is None
    else f"{m['workdir']}: {m['clean_accuracy']:.4f} ({m['num_test_examples']} images)"
    for m in report["members"]
  )
  print(f"members clean accuracy {members}")
  print(
    f"ensemble clean accuracy {report['clean_accuracy']:.4f} "
    f"({report['num_test_examples']} images); "
    + "; ".join(
      f"{a['label']} @ eps {a['eps']:g}: {a['accuracy']:.4f}"
      if a["eps"] is not None
      else f"{a['label']}: {a['accuracy']:.4f}"
      for a in report["attacks"].values()
    )
  )
  print(f"report: {flags.FLAGS.output}/report.md")


if __name__ == "__main__":
  _define_flags()
  _cli.run(main)
