"""Compares finished runs: a markdown table in the style of the seeds' tables and a
combined accuracy-vs-eps figure.

  python -m experiments.compare runs/mnist_standard runs/mnist_pgd_at runs/mnist_hybrid \
      --out=runs/compare
Writes OUT/compare.md and OUT/accuracy_vs_eps.png (OUT defaults to the current folder).
A run folder is a training run's workdir or an evaluation's <workdir>/eval/<name>; a
folder without a readable report.json is a usage error (one line, exit 2; see
experiments/_cli.py).
"""

import json
import os

from absl import flags

from experiments import _cli


def _define_flags():
  # Defined only when run as a program: absl flags are process-wide, and tests and
  # users import several experiments/ modules into one process.
  flags.DEFINE_string("out", ".", "Folder for compare.md and accuracy_vs_eps.png.")


def load_reports(workdirs):
  """{run name: report} from each workdir's report.json (validated).

  Raises:
    FileNotFoundError: for a folder without report.json.
    ValueError: for a report.json that is not JSON or not of this schema.
  """
  from advjax.eval import validate_report  # pylint: disable=import-outside-toplevel

  reports = {}
  for d in workdirs:
    path = os.path.join(d, "report.json")
    if not os.path.isfile(path):
      raise FileNotFoundError(_missing_report(d))
    with open(path, encoding="utf-8") as f:
      try:
        r = json.load(f)
      except ValueError as err:
        raise ValueError(
          f"{path!r} is not JSON ({err}); re-run its evaluation "
          f"(python -m experiments.main ... --mode=eval)"
        ) from err
    try:
      validate_report(r)
    except ValueError as err:
      raise ValueError(f"{path!r}: {err}") from err
    name = r.get("name") or os.path.basename(os.path.normpath(d))
    if name in reports:
      name = f"{name} ({os.path.basename(os.path.normpath(d))})"
    reports[name] = r
  return reports


def _missing_report(d: str) -> str:
  if not os.path.isdir(d):
    return (
      f"{d!r} has no report.json (the folder does not exist); pass run folders that "
      f"hold one (a training run's --workdir, or <workdir>/eval/<name> of an "
      f"evaluation)"
    )
  evals = (
    sorted(
      os.path.join(d, "eval", e)
      for e in os.listdir(os.path.join(d, "eval"))
      if os.path.isfile(os.path.join(d, "eval", e, "report.json"))
    )
    if os.path.isdir(os.path.join(d, "eval"))
    else []
  )
  if evals:
    return f"{d!r} has no report.json; its evaluations are {', '.join(evals)}: pass one of those"
  return (
    f"{d!r} has no report.json; train it to the end first (python -m experiments.main "
    f"--config=... --workdir={d}) or pass a run folder that has one"
  )


def comparison_table(reports) -> str:
  """Method | clean | each attack | gap (strongest) | corruption mean | overhead."""
  first = {}  # attack name -> its entry in the first report that ran it
  for r in reports.values():
    for a, entry in r["attacks"].items():
      first.setdefault(a, entry)
  # an eps-bounded attack's cell is its accuracy; a minimum-norm attack's (eps None: CW-L2)
  # the median L2 it needs over the points it broke
  head = (
    ["method", "clean"]
    + [
      e["label"] + (f" @ {e['eps']:g}" if e["eps"] is not None else ": median L2")
      for e in first.values()
    ]
    + ["robustness gap", "corruption acc.", "step time x clean", "masking checks"]
  )
  fmt = lambda v, f=".4f": "-" if v is None else format(v, f)
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for name, r in reports.items():
    bounded = [e["accuracy"] for e in r["attacks"].values() if e["eps"] is not None]
    mc = r.get("masking_checks")
    cells = (
      [name, fmt(r["clean_accuracy"])]
      + [
        fmt(
          None
          if a not in r["attacks"]
          else r["attacks"][a]["accuracy"]
          if first[a]["eps"] is not None
          else r["attacks"][a].get("median_l2")
        )
        for a in first
      ]
      + [
        fmt(r["clean_accuracy"] - min(bounded) if bounded else None),
        fmt((r.get("corruptions") or {}).get("mean")),
        fmt((r.get("cost") or {}).get("relative_step_time"), ".2f"),
        "-" if mc is None else ("pass" if mc["passed"] else "FLAGGED"),
      ]
    )
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def main(argv):
  from advjax import plots  # pylint: disable=import-outside-toplevel
  from advjax.eval import atomic_write_text  # pylint: disable=import-outside-toplevel

  dirs = argv[1:]
  if not dirs:
    raise _cli.UsageError(
      "no run folders given; usage: python -m experiments.compare RUN_DIR [RUN_DIR ...] [--out=DIR]"
    )
  if os.path.exists(flags.FLAGS.out) and not os.path.isdir(flags.FLAGS.out):
    raise _cli.UsageError(f"--out={flags.FLAGS.out} is a file; pass a folder for compare.md")
  try:
    reports = load_reports(dirs)
  except (FileNotFoundError, ValueError) as err:
    raise _cli.UsageError(str(err)) from err
  os.makedirs(flags.FLAGS.out, exist_ok=True)
  png = plots.save_figure(
    plots.accuracy_vs_eps(reports), os.path.join(flags.FLAGS.out, "accuracy_vs_eps.png")
  )
  text = (
    "# Comparison\n\n"
    + comparison_table(reports)
    + "\n\nRuns: "
    + ", ".join(f"`{d}`" for d in dirs)
    + f"\n\n![accuracy vs eps]({os.path.basename(png)})\n"
  )
  atomic_write_text(os.path.join(flags.FLAGS.out, "compare.md"), text)
  print(text)


if __name__ == "__main__":
  _define_flags()
  _cli.run(main)
