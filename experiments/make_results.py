"""Writes RESULTS.md from the reports of `experiments.reproduce`: one table, one
figure and one rule-based verdict per experiment (a)-(e).

  python -m experiments.reproduce --root=runs/repro
  python -m experiments.make_results --root=runs/repro --output=RESULTS.md

Every number comes from a `<root>/<experiment>/<row>/seed_<s>/report.json`; cells are
mean ± sample std over the seeds whose report exists. A root with missing (or
unreadable) reports is refused, writing nothing (exit 2), unless --allow_partial: then
the missing runs are listed, never filled in, so the command can be re-run while
`reproduce` is still going (write such a draft to another --output than RESULTS.md). Figures go
to `<output dir>/docs/results/` unless --figures_dir says otherwise. The logic is
`make_results(root, output)`. A --root without any experiment folder, or an --output
that is a folder, is one line and exit 2 (experiments/_cli.py).
"""

import json
import math
import os
import re
import statistics
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from absl import flags

from experiments import _cli
from experiments import _experiments as E

Runs = Dict[str, Dict[int, Dict]]  # row name -> seed -> report
Metric = Callable[[Runs, str, int], Optional[float]]


class Stat(NamedTuple):
  """Mean, sample std (ddof 1; None for one value) and count of a metric over seeds."""

  mean: float
  std: Optional[float]
  n: int


class Column(NamedTuple):
  key: str
  header: str
  metric: Metric
  fmt: str = ".3f"


class Loaded(NamedTuple):
  """The reports of one experiment and what could not be read."""

  runs: Runs
  expected: List[Tuple[str, int]]  # (row, seed) of every run the experiment defines
  missing: List[Tuple[str, int]]  # of those, runs without a report.json
  unreadable: List[Tuple[str, str]]  # (path, error) of report.json files that do not parse


# ----------------------------------------------------------------------------- loading


def row_names(exp: E.Experiment) -> List[str]:
  """The experiment's rows, plus "ensemble" when it evaluates one."""
  return [r.name for r in exp.rows] + (["ensemble"] if exp.ensemble_of else [])


def row_label(exp: E.Experiment, name: str) -> str:
  """The Row's label; the ensemble's names its members by their labels' first word."""
  labels = {r.name: r.label for r in exp.rows}
  if name == "ensemble":
    members = ", ".join(labels[m].split(" ")[0] for m in exp.ensemble_of)
    return f"ensemble (mean softmax of {members})"
  return labels[name]


def _seed_dirs(folder: str) -> List[int]:
  if not os.path.isdir(folder):
    return []
  return [
    int(m.group(1)) for m in (re.fullmatch(r"seed_(\d+)", d) for d in os.listdir(folder)) if m
  ]


# Key under which `load_runs` adds each run's epoch times (metrics.jsonl) to its report.
EPOCH_TIMES = "_epoch_times_s"


def load_runs(root: str, exp: E.Experiment) -> Loaded:
  """Reads every report.json of `exp` under `root` (its seeds and any other seed_<s>),
  each with its epoch times under `EPOCH_TIMES`."""
  runs, expected, missing, unreadable = {}, [], [], []
  for name in row_names(exp):
    runs[name] = {}
    seeds = sorted(set(exp.seeds) | set(_seed_dirs(os.path.join(root, exp.key, name))))
    for s in seeds:
      if s in exp.seeds:
        expected.append((name, s))
      path = os.path.join(E.run_dir(root, exp.key, name, s), "report.json")
      if not os.path.exists(path):
        if s in exp.seeds:
          missing.append((name, s))
        continue
      try:
        with open(path, encoding="utf-8") as f:
          runs[name][s] = json.load(f)
        runs[name][s][EPOCH_TIMES] = E.epoch_times(E.run_dir(root, exp.key, name, s))
      except (OSError, ValueError) as err:
        unreadable.append((path, str(err)))
        if s in exp.seeds:
          missing.append((name, s))
  return Loaded(runs, expected, missing, unreadable)


# ----------------------------------------------------------------------------- metrics


def _get(report: Optional[Dict], *keys) -> Optional[float]:
  """report[k1][k2]... as a float, None when any level is absent or not a number."""
  x = report
  for k in keys:
    if not isinstance(x, dict) or k not in x:
      return None
    x = x[k]
  if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
    return None
  return float(x)


def field(*keys) -> Metric:
  """A metric read from each report: `field("attacks", "pgd", "accuracy")`."""
  return lambda runs, row, seed: _get(runs.get(row, {}).get(seed), *keys)


def derived(fn: Callable[..., float], *metrics: Metric) -> Metric:
  """`fn` of other metrics of the same run (None if any of them is None)."""

  def metric(runs, row, seed):
    vals = [m(runs, row, seed) for m in metrics]
    return None if any(v is None for v in vals) else fn(*vals)

  return metric


# A run whose clean test accuracy is at most this (chance is 0.10 on the 10 classes of
# MNIST / CIFAR-10) did not train: its loss stalled at log K.
COLLAPSED_ACCURACY = 0.15


def collapsed(runs, row, seed) -> bool:
  acc = _get(runs.get(row, {}).get(seed), "clean_accuracy")
  return acc is not None and acc <= COLLAPSED_ACCURACY


def relative_to(metric: Metric, ref_row: str) -> Metric:
  """metric(row, seed) / metric(ref_row, seed): a per-seed ratio to a reference row;
  None for a seed whose reference run collapsed (the ratio would mean nothing)."""

  def ratio(runs, row, seed):
    a, b = metric(runs, row, seed), metric(runs, ref_row, seed)
    if a is None or not b or collapsed(runs, ref_row, seed):
      return None
    return a / b

  return ratio


def _hc_d_accuracy(runs, row, seed) -> Optional[float]:
  """Mean held-out accuracy over the types HC-D-1 ... HC-D-9 present."""
  by_type = ((runs.get(row, {}).get(seed) or {}).get("hard_positive_set") or {}).get(
    "accuracy_by_type"
  ) or {}
  vals = [
    v for t, v in by_type.items() if re.fullmatch(r"HC-D-\d+", t) and isinstance(v, (int, float))
  ]
  return sum(vals) / len(vals) if vals else None


def _train_time_without_compile(runs, row, seed) -> Optional[float]:
  """report.train.time_s less the compilation paid in the first epoch, estimated as that
  epoch's excess over the median of the later epochs; None with fewer than two epoch
  times. On MNIST compiling a step takes longer than a clean epoch (the "compile s" column of
  benchmarks/train_recipes.py), so the compilation, which does not grow with the data, would
  otherwise decide the ratios."""
  report = runs.get(row, {}).get(seed) or {}
  total, times = _get(report, "train", "time_s"), report.get(EPOCH_TIMES) or []
  if total is None or len(times) < 2:
    return None
  return total - max(times[0] - statistics.median(times[1:]), 0.0)


def _generated_images(runs, row, seed) -> Optional[float]:
  """How many generated images the run appended to its training split (`train extra` of
  the report's setup, "<path> (N images)"); None for a run without any."""
  extra = ((runs.get(row, {}).get(seed) or {}).get("setup") or {}).get("train extra")
  m = re.search(r"\((\d+) images\)$", extra) if isinstance(extra, str) else None
  return float(m.group(1)) if m else None


def stat(runs: Runs, row: str, metric: Metric) -> Optional[Stat]:
  """The metric over the row's seeds with a report; None if no seed has it."""
  vals = [v for v in (metric(runs, row, s) for s in sorted(runs.get(row, {}))) if v is not None]
  if not vals:
    return None
  mean = sum(vals) / len(vals)
  std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else None
  return Stat(mean, std, len(vals))


def fmt_stat(st: Optional[Stat], fmt: str = ".3f", n_row: Optional[int] = None) -> str:
  """ "0.850 ± 0.071"; the value alone for one seed; "(n=k)" when fewer than the row's."""
  if st is None:
    return "-"
  text = format(st.mean, fmt) + ("" if st.std is None else f" ± {format(st.std, fmt)}")
  return text + (f" (n={st.n})" if n_row is not None and st.n != n_row else "")


CLEAN = field("clean_accuracy")
FGSM = field("attacks", "fgsm", "accuracy")
PGD = field("attacks", "pgd", "accuracy")
TIME = field("train", "time_s")
TEST_ERROR = derived(lambda a: 1.0 - a, CLEAN)
GAP = derived(lambda c, p: c - p, CLEAN, PGD)
HELDOUT_ERROR = field("hard_positive_set", "error")

# The table of each experiment; headers naming an attack are replaced by the label in
# the reports (e.g. "PGD-20") when one has it, see `_attack_header`.
TABLES: Dict[str, List[Column]] = {
  "a": [
    Column("test_error", "test error", TEST_ERROR),
    Column("heldout_error", "held-out error", HELDOUT_ERROR),
    Column("fgs", "held-out acc. FGS", field("hard_positive_set", "accuracy_by_type", "FGS")),
    Column("fgv", "held-out acc. FGV", field("hard_positive_set", "accuracy_by_type", "FGV")),
    Column("hcd", "held-out acc. HC-D (1-9 mean)", _hc_d_accuracy),
    Column("extra", "images generated once", _generated_images, ".0f"),
    Column("time", "train time (s)", TIME, ".1f"),
  ],
  "b": [
    Column("clean", "clean acc.", CLEAN),
    Column("fgsm", "FGSM", FGSM),
    Column("pgd", "PGD-20", PGD),
    # CW-L2 is a minimum-norm attack: its number is the L2 it needs, not an accuracy
    Column("cw_l2", "CW-L2 median L2 (broken points)", field("attacks", "cw", "median_l2"), ".3f"),
    Column("aa", "AutoAttack", field("attacks", "autoattack", "accuracy")),
    Column("gap", "gap (clean - PGD)", GAP),
    Column("conf", "mean clean confidence", field("clean_confidence")),
    Column("ece", "ECE clean", field("calibration", "ece_clean")),
    Column("step", "step time x clean", field("cost", "relative_step_time"), ".2f"),
    Column("time", "train time (s)", TIME, ".1f"),
    Column("alpha", "final alpha", field("train", "final_alpha")),
  ],
  "c": [
    Column("clean", "clean acc.", CLEAN),
    Column("corr", "mean corruption acc.", field("corruptions", "mean")),
    Column("mce", "mCE vs baseline", field("corruptions", "mce")),
    Column("fgsm", "FGSM", FGSM),
  ],
  "d": [
    Column("clean", "clean acc.", CLEAN),
    Column("fgsm", "FGSM", FGSM),
    Column("pgd", "PGD-20", PGD),
    Column("gap", "gap (clean - PGD)", GAP),
  ],
  "e": [
    Column("clean", "clean acc.", CLEAN),
    Column("pgd", "PGD-20", PGD),
    Column("time", "train time (s)", TIME, ".1f"),
    Column(
      "time_nc", "train time without compilation (s, est.)", _train_time_without_compile, ".1f"
    ),
    Column(
      "time_ratio",
      "time without compilation / clean (same seed)",
      relative_to(_train_time_without_compile, "clean"),
      ".2f",
    ),
    Column("pgd_ratio", "PGD acc. / PGD-AT (same seed)", relative_to(PGD, "pgd_at"), ".2f"),
  ],
}

# Panels of each figure: (title, y label, column keys), bars with std error bars.
FIGURES: Dict[str, List[Tuple[str, str, Tuple[str, ...]]]] = {
  "a": [
    ("errors", "error", ("test_error", "heldout_error")),
    ("held-out accuracy by type", "accuracy", ("fgs", "fgv", "hcd")),
  ],
  "b": [
    ("accuracy", "accuracy", ("clean", "fgsm", "pgd", "aa")),
    ("training time", "seconds", ("time",)),
  ],
  "c": [("accuracy", "accuracy", ("clean", "corr", "fgsm"))],
  "d": [("accuracy", "accuracy", ("clean", "fgsm", "pgd"))],
  "e": [
    ("accuracy", "accuracy", ("clean", "pgd")),
    ("cost and robustness relative to references", "ratio", ("time_ratio", "pgd_ratio")),
  ],
}

_ATTACK_COLUMNS = {"fgsm": "fgsm", "pgd": "pgd", "aa": "autoattack"}


def _attack_header(column: Column, runs: Runs) -> str:
  """ "PGD-20" from a report's label "PGD-20 (step 0.01, ...)", else the default header."""
  attack = _ATTACK_COLUMNS.get(column.key)
  if attack is None:
    return column.header
  for by_seed in runs.values():
    for r in by_seed.values():
      label = ((r.get("attacks") or {}).get(attack) or {}).get("label")
      if isinstance(label, str) and label:
        return label.split(" (")[0]
  return column.header


# ----------------------------------------------------------------------------- verdicts


class Verdict(NamedTuple):
  status: str  # "held", "did not hold", "partly" or "cannot be decided yet"
  rule: str
  evidence: str


def _combine(conditions: Sequence[bool]) -> str:
  if all(conditions):
    return "held"
  return "did not hold" if not any(conditions) else "partly"


def _need(runs: Runs, needs: Dict[str, Tuple[str, Metric]]):
  """{key: Stat} for each (row, metric) in `needs`, or the list of what is missing."""
  stats, lacking = {}, []
  for key, (row, metric) in needs.items():
    stats[key] = stat(runs, row, metric)
    if stats[key] is None:
      lacking.append(key)
  return stats, lacking


def _f(st: Stat, fmt=".3f") -> str:
  return format(st.mean, fmt)


def _rozsa_protocol(runs: Runs, prefix: str):
  """(status, evidence) of (a)'s rule on the rows named `prefix` + fgs, fgv, hc_d_9,
  hc_d_9_105 (with the shared base and basic rows); status None when reports lack."""
  hc = (prefix + "hc_d_9", prefix + "hc_d_9_105")
  others = ("basic", prefix + "fgs", prefix + "fgv")
  needs = {f"{r} held-out": (r, HELDOUT_ERROR) for r in hc + others}
  needs.update({f"{r} test": (r, TEST_ERROR) for r in hc + ("base",)})
  s, lacking = _need(runs, needs)
  if lacking:
    return None, "no reports for " + ", ".join(lacking)
  lower = all(s[f"{h} held-out"].mean < s[f"{o} held-out"].mean for h in hc for o in others)
  clean_ok = all(s[f"{h} test"].mean - s["base test"].mean <= 0.005 for h in hc)
  evidence = (
    "held-out error "
    + ", ".join(f"{r} {_f(s[f'{r} held-out'])}" for r in hc + others)
    + f" ({'HC lower than all three' if lower else 'HC not lower than all three'}); "
    "clean test error "
    + ", ".join(f"{r} {_f(s[f'{r} test'])}" for r in hc + ("base",))
    + f" ({'within' if clean_ok else 'more than'} 0.5 pp above base)"
  )
  return _combine([lower, clean_ok]), evidence


def verdict_a(runs: Runs) -> Verdict:
  rule = (
    "held if both HC rows (HC-D-9, HC-D-9-1.05) have a lower mean held-out error "
    "than each of basic, FGS and FGV, and a mean clean test error at most 0.5 "
    "percentage points above the base row's; partly if one of the two holds. The "
    "verdict is that of the published protocol (images generated once, 'offline_' "
    "rows); the online variant's is given beside it"
  )
  published, online = _rozsa_protocol(runs, "offline_"), _rozsa_protocol(runs, "")
  evidence = (
    f"as published: {published[1]}; online variant "
    f"({online[0] or 'cannot be decided yet'}): {online[1]}"
  )
  return Verdict(published[0] or "cannot be decided yet", rule, evidence)


def verdict_b(runs: Runs) -> Verdict:
  rule = (
    "held if the hybrid's mean clean accuracy exceeds PGD-AT's by more than the "
    "larger of the two stds (a missing std, n = 1, counts as 0) and its mean PGD "
    "accuracy is >= PGD-AT's - 0.02; partly if one of the two holds"
  )
  s, lacking = _need(
    runs,
    {
      "hybrid clean": ("hybrid", CLEAN),
      "pgd_at clean": ("pgd_at", CLEAN),
      "hybrid pgd": ("hybrid", PGD),
      "pgd_at pgd": ("pgd_at", PGD),
    },
  )
  if lacking:
    return Verdict("cannot be decided yet", rule, "no reports for " + ", ".join(lacking))
  h, p = s["hybrid clean"], s["pgd_at clean"]
  margin = max(h.std or 0.0, p.std or 0.0)
  cleaner = h.mean - p.mean > margin
  robust = s["hybrid pgd"].mean >= s["pgd_at pgd"].mean - 0.02
  evidence = (
    f"clean accuracy hybrid {_f(h)} vs PGD-AT {_f(p)} (difference "
    f"{h.mean - p.mean:+.3f}, larger std {margin:.3f}); PGD accuracy hybrid "
    f"{_f(s['hybrid pgd'])} vs PGD-AT {_f(s['pgd_at pgd'])} (difference "
    f"{s['hybrid pgd'].mean - s['pgd_at pgd'].mean:+.3f}, allowed -0.020)"
  )
  return Verdict(_combine([cleaner, robust]), rule, evidence)


def verdict_c(runs: Runs) -> Verdict:
  rule = (
    "held if mean corruption accuracy NoisyMix > AugMix > baseline and both AugMix's "
    "and NoisyMix's mean FGSM accuracy > the baseline's; partly if some of these "
    "four comparisons hold"
  )
  corr = field("corruptions", "mean")
  s, lacking = _need(
    runs,
    {
      f"{r} {m}": (r, metric)
      for r in ("baseline", "augmix", "noisymix")
      for m, metric in (("corruption", corr), ("FGSM", FGSM))
    },
  )
  if lacking:
    return Verdict("cannot be decided yet", rule, "no reports for " + ", ".join(lacking))
  conds = [
    s["noisymix corruption"].mean > s["augmix corruption"].mean,
    s["augmix corruption"].mean > s["baseline corruption"].mean,
    s["augmix FGSM"].mean > s["baseline FGSM"].mean,
    s["noisymix FGSM"].mean > s["baseline FGSM"].mean,
  ]
  names = [
    "NoisyMix > AugMix (corruptions)",
    "AugMix > baseline (corruptions)",
    "AugMix > baseline (FGSM)",
    "NoisyMix > baseline (FGSM)",
  ]
  evidence = (
    "mean corruption accuracy "
    + ", ".join(f"{r} {_f(s[f'{r} corruption'])}" for r in ("noisymix", "augmix", "baseline"))
    + "; FGSM accuracy "
    + ", ".join(f"{r} {_f(s[f'{r} FGSM'])}" for r in ("noisymix", "augmix", "baseline"))
    + "; "
    + ", ".join(f"{n}: {'yes' if c else 'no'}" for n, c in zip(names, conds))
  )
  return Verdict(_combine(conds), rule, evidence)


def verdict_d(runs: Runs) -> Verdict:
  rule = (
    "held if AT's mean PGD accuracy exceeds weight decay + dropout's by more than "
    "0.1 and AT + weight decay + dropout's is >= AT's - 0.02; partly if one holds"
  )
  s, lacking = _need(runs, {r: (r, PGD) for r in ("at", "wd_dropout", "at_wd_dropout")})
  if lacking:
    return Verdict("cannot be decided yet", rule, "no reports for " + ", ".join(lacking))
  buys = s["at"].mean - s["wd_dropout"].mean > 0.1
  keeps = s["at_wd_dropout"].mean >= s["at"].mean - 0.02
  evidence = (
    f"PGD accuracy AT {_f(s['at'])}, weight decay + dropout {_f(s['wd_dropout'])} "
    f"(difference {s['at'].mean - s['wd_dropout'].mean:+.3f}, needed > 0.100), "
    f"AT + weight decay + dropout {_f(s['at_wd_dropout'])} (vs AT "
    f"{s['at_wd_dropout'].mean - s['at'].mean:+.3f}, allowed -0.020)"
  )
  return Verdict(_combine([buys, keeps]), rule, evidence)


def verdict_e(runs: Runs) -> Verdict:
  rule = (
    "per fast recipe (FGSM-RS, free AT): met if its mean per-seed train time without "
    "compilation / clean's <= 1.3 and its mean per-seed PGD accuracy / PGD-AT's >= 0.9; "
    "held if both recipes meet it, partly if one does"
  )
  t_ratio = relative_to(_train_time_without_compile, "clean")
  p_ratio = relative_to(PGD, "pgd_at")
  s, lacking = _need(
    runs,
    {
      f"{r} {m}": (r, metric)
      for r in ("fgsm_rs", "free")
      for m, metric in (("time", t_ratio), ("pgd", p_ratio))
    },
  )
  if lacking:
    return Verdict(
      "cannot be decided yet", rule, "no seed with both runs for " + ", ".join(lacking)
    )
  met, parts = [], []
  for r in ("fgsm_rs", "free"):
    ok = s[f"{r} time"].mean <= 1.3 and s[f"{r} pgd"].mean >= 0.9
    met.append(ok)
    parts.append(
      f"{r}: time x{_f(s[f'{r} time'], '.2f')}, PGD accuracy "
      f"x{_f(s[f'{r} pgd'], '.2f')} of PGD-AT's, {'met' if ok else 'not met'}"
    )
  return Verdict(_combine(met), rule, "; ".join(parts))


VERDICTS: Dict[str, Callable[[Runs], Verdict]] = {
  "a": verdict_a,
  "b": verdict_b,
  "c": verdict_c,
  "d": verdict_d,
  "e": verdict_e,
}


# ----------------------------------------------------------------------------- output


def _commands(root: str, output: str, keys: str) -> str:
  return (
    f"python -m experiments.reproduce --experiments={keys} --root={root}\n"
    f"python -m experiments.make_results --root={root} --output={output}"
  )


def results_table(exp: E.Experiment, runs: Runs) -> str:
  """Markdown: one line per row, cells mean ± std over its seeds ("-" without reports)."""
  cols = TABLES[exp.key]
  head = ["row", "n"] + [_attack_header(c, runs) for c in cols]
  lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * len(cols)]
  for name in row_names(exp):
    n = len(runs.get(name, {}))
    cells = [row_label(exp, name), str(n)] + [
      fmt_stat(stat(runs, name, c.metric), c.fmt, n) for c in cols
    ]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def results_figure(exp: E.Experiment, runs: Runs, path: str) -> Optional[str]:
  """Bar charts (mean, std error bars; none for one seed) of the experiment's FIGURES
  panels; None if no row has a report."""
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel
  from advjax.plots import save_figure  # pylint: disable=import-outside-toplevel

  rows = [r for r in row_names(exp) if runs.get(r)]
  if not rows:
    return None
  cols = {c.key: c for c in TABLES[exp.key]}
  panels = FIGURES[exp.key]
  fig = Figure(figsize=(max(5.0, 1.1 * len(rows) + 2.5) * len(panels), 3.8))
  axes = fig.subplots(1, len(panels), squeeze=False)
  for ax, (title, ylabel, keys) in zip(axes[0], panels):
    width = 0.8 / len(keys)
    for j, key in enumerate(keys):
      stats = [stat(runs, r, cols[key].metric) for r in rows]
      xs = [i + (j - (len(keys) - 1) / 2) * width for i in range(len(rows))]
      ax.bar(
        xs,
        [st.mean if st else 0.0 for st in stats],
        width,
        yerr=[st.std if st and st.std is not None else float("nan") for st in stats],
        capsize=3,
        label=_attack_header(cols[key], runs),
        color=f"C{j}",
      )
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(rows, rotation=30, ha="right", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(ylabel)
    if ylabel == "accuracy":
      ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7)
  fig.suptitle(f"{exp.title} (mean ± std over seeds)", fontsize=9)
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  return save_figure(fig, path)


def _missing_text(exp: E.Experiment, loaded: Loaded) -> str:
  lines = []
  if loaded.missing:
    lines.append(
      f"Missing runs ({len(loaded.missing)} of {len(loaded.expected)}; the numbers "
      "above are over the seeds present): "
      + ", ".join(f"`{exp.key}/{r}/seed_{s}`" for r, s in loaded.missing)
      + "."
    )
  else:
    lines.append(f"All {len(loaded.expected)} runs present.")
  for path, err in loaded.unreadable:
    lines.append(f"Unreadable report (counted as missing): `{path}`: {err}.")
  return "\n\n".join(lines)


def _supplement_text(exp: E.Experiment, root: str) -> str:
  """The experiment's supplement: its command and the markdown it wrote, verbatim."""
  out = [f"### {exp.supplement.title}", "", "```", E.supplement_command(root, exp), "```", ""]
  path = E.supplement_path(root, exp)
  try:
    with open(path, encoding="utf-8") as f:
      out.append(f.read().strip())
  except FileNotFoundError:
    out.append(
      f"Not measured yet: `{path}` does not exist. The command above writes it "
      f"(`experiments.reproduce --experiments={exp.key}` runs it after the rows)."
    )
  return "\n".join(out)


def _section(exp: E.Experiment, loaded: Loaded, root: str, output: str, fig_dir: str) -> str:
  out = [
    f"## {exp.title}",
    "",
    f"Claim tested: {exp.claim}.",
    "",
    "```",
    _commands(root, output, exp.key),
    "```",
    "",
  ]
  if not any(loaded.runs.values()):
    out += [
      f"No runs yet: none of the {len(loaded.expected)} expected reports under "
      f"`{os.path.join(root, exp.key)}` exists and is readable. Produce them with the "
      "commands above."
    ]
    for path, err in loaded.unreadable:
      out += ["", f"Unreadable report: `{path}`: {err}."]
    return "\n".join(out)
  out += [results_table(exp, loaded.runs), ""]
  if exp.note:
    out += [exp.note, ""]
  if exp.supplement is not None:
    out += [_supplement_text(exp, root), ""]
  attacks = _attack_labels(loaded.runs)
  if attacks:
    out += ["Attacks (from the reports): " + "; ".join(attacks) + ".", ""]
  out += [_missing_text(exp, loaded), ""]
  dead = [
    (r, sd)
    for r in row_names(exp)
    for sd in sorted(loaded.runs.get(r, {}))
    if collapsed(loaded.runs, r, sd)
  ]
  if dead:
    out += [
      "Collapsed runs (clean test accuracy <= "
      f"{COLLAPSED_ACCURACY:g}, i.e. chance: the training loss stalled at log 10): "
      + ", ".join(f"`{exp.key}/{r}/seed_{sd}`" for r, sd in dead)
      + ". They count in "
      "the means above (that is the recipe's real spread); ratios to a collapsed "
      "reference run are left out.",
      "",
    ]
  v = VERDICTS[exp.key](loaded.runs)
  provisional = (
    " Provisional: based on the seeds present, see the missing runs above."
    if loaded.missing and v.status != "cannot be decided yet"
    else ""
  )
  out += [f"**Verdict: {v.status}.** {v.evidence}.{provisional}", "", f"Rule: {v.rule}.", ""]
  fig = results_figure(exp, loaded.runs, os.path.join(fig_dir, f"{exp.key}.png"))
  if fig:
    rel = os.path.relpath(fig, os.path.dirname(os.path.abspath(output)))
    out += [f"![{exp.title}]({rel})"]
  return "\n".join(out)


def _attack_labels(runs: Runs) -> List[str]:
  seen = {}
  for by_seed in runs.values():
    for r in by_seed.values():
      for a in (r.get("attacks") or {}).values():
        if isinstance(a, dict) and a.get("label") and a["label"] not in seen:
          eps, norm = a.get("eps"), a.get("norm", "")
          seen[a["label"]] = (
            f"{a['label']} at {norm} eps {eps:g}"
            if isinstance(eps, (int, float))
            else f"{a['label']} ({norm}, unbounded)"
            if norm
            else a["label"]
          )
  return list(seen.values())


def _setup_summary(all_runs: Sequence[Runs]) -> Tuple[str, str]:
  """(what was trained, the machine) from the reports' setup sections."""
  found: Dict[str, set] = {}
  machine_keys = (
    "machine",
    "platform",
    "backend",
    "cpu",
    "processor",
    "host",
    "device kind",
    "devices",
  )
  for runs in all_runs:
    for by_seed in runs.values():
      for r in by_seed.values():
        for k, v in (r.get("setup") or {}).items():
          if k in ("dataset", "model", "models") + machine_keys:
            for x in v if isinstance(v, list) else [v]:
              found.setdefault(k, set()).add(str(x))
  what = (
    ", ".join(
      f"{k} {'/'.join(sorted(found[k]))}" for k in ("dataset", "model", "models") if k in found
    )
    or "- (no report records it yet)"
  )
  machine = ", ".join(f"{k}: {'/'.join(sorted(found[k]))}" for k in machine_keys if k in found)
  return what, machine


class PartialResultsError(ValueError):
  """Some expected reports are missing or unreadable, and partial results were not
  allowed."""


def _partial_message(root: str, loaded: Dict[str, Loaded]) -> Optional[str]:
  """Says how many expected reports under root each experiment lacks (and which are
  unreadable), or None when all are there."""
  if not any(l.missing for l in loaded.values()):
    return None
  expected = sum(len(l.expected) for l in loaded.values())
  present = expected - sum(len(l.missing) for l in loaded.values())
  per_exp = ", ".join(
    f"({k}) {len(l.missing)} of {len(l.expected)}" for k, l in sorted(loaded.items()) if l.missing
  )
  bad = [path for l in loaded.values() for path, _ in l.unreadable]
  unreadable = f"; unreadable: {', '.join(bad[:3])}" if bad else ""
  return (
    f"--root={root} has {present} of {expected} expected reports (missing: "
    f"{per_exp}{unreadable}); nothing was written. Finish the runs "
    f"(experiments.reproduce --root={root}), or pass --allow_partial to write "
    f"results from the reports present"
  )


def make_results(
  root: str, output: str, figures_dir: Optional[str] = None, *, allow_partial: bool = False
) -> str:
  """Writes `output` (markdown) and one PNG per experiment from the reports under root.

  Args:
    root: the `--root` of `experiments.reproduce` (`<root>/<exp>/<row>/seed_<s>`).
    output: the markdown file to write, e.g. RESULTS.md.
    figures_dir: folder for `<experiment>.png`; default `<output dir>/docs/results`.
    allow_partial: write even when expected reports are missing (they are listed).

  Returns:
    The markdown written to `output`.

  Raises:
    PartialResultsError: (before writing anything) when expected reports are missing
      or unreadable and not `allow_partial`.
  """
  from advjax.eval import atomic_write_text  # pylint: disable=import-outside-toplevel

  out_dir = os.path.dirname(os.path.abspath(output))
  fig_dir = figures_dir or os.path.join(out_dir, "docs", "results")
  loaded = {k: load_runs(root, E.EXPERIMENTS[k]) for k in sorted(E.EXPERIMENTS)}
  message = _partial_message(root, loaded)
  if message and not allow_partial:
    raise PartialResultsError(message)
  present = sum(len(l.expected) - len(l.missing) for l in loaded.values())
  expected = sum(len(l.expected) for l in loaded.values())
  what, machine = _setup_summary([l.runs for l in loaded.values()])
  keys = ",".join(sorted(E.EXPERIMENTS))
  head = [
    "# Results of the experiments (a)-(e)",
    "",
    "Generated by `experiments/make_results.py` from the `report.json` of every run under "
    f"`{root}` (`<experiment>/<row>/seed_<s>/report.json`); no number is copied by hand. "
    "Re-run the command below to refresh it as runs finish.",
    "",
    f"- Runs: {present} of {expected} expected reports present; trained: {what}.",
    "- Machine: CPU; "
    + (
      "the reports record no machine details"
      if not machine
      else f"the reports' setup records {machine}"
      + (
        ""
        if any(k in machine for k in ("cpu", "processor", "machine", "platform"))
        else " and no processor model"
      )
    )
    + ". Times are wall-clock seconds on that machine and depend on its load.",
    "- Every number is the mean ± sample standard deviation (ddof 1) over the seeds whose "
    "report exists; n is that count. One seed shows its value alone; '(n=k)' marks a cell "
    "with fewer values than its row; '-' means no report has the value.",
    "- Verdicts apply the printed rule to the means in the table; they are not opinions.",
    "",
    "Reproduce everything, then regenerate this file:",
    "",
    "```",
    _commands(root, output, keys),
    "```",
  ]
  sections = [
    _section(E.EXPERIMENTS[k], loaded[k], root, output, fig_dir) for k in sorted(E.EXPERIMENTS)
  ]
  text = "\n\n".join(["\n".join(head)] + sections) + "\n"
  if out_dir:
    os.makedirs(out_dir, exist_ok=True)
  atomic_write_text(output, text)
  return text


def _define_flags():
  # Defined only when run as a program: absl flags are process-wide, and tests and
  # users import several experiments/ modules into one process.
  flags.DEFINE_string("root", "runs/repro", "The --root of experiments.reproduce.")
  flags.DEFINE_string("output", "RESULTS.md", "The markdown file to write.")
  flags.DEFINE_string(
    "figures_dir", None, "Folder for the figures (default: <output dir>/docs/results)."
  )
  flags.DEFINE_bool(
    "allow_partial",
    False,
    "Write results even when expected reports are missing (they are "
    "listed); without it such a --root is refused and nothing is written.",
  )


def check_paths(root: str, output: str, figures_dir: Optional[str]) -> None:
  """Raises _cli.UsageError unless root holds an experiment folder and output is a file path."""
  if not os.path.isdir(root):
    raise _cli.UsageError(
      f"--root={root} is not a folder; pass the --root of "
      f"experiments.reproduce (e.g. --root=runs/repro), or run that first"
    )
  if not any(os.path.isdir(os.path.join(root, k)) for k in E.EXPERIMENTS):
    raise _cli.UsageError(
      f"--root={root} holds none of the experiment folders "
      f"{', '.join(sorted(E.EXPERIMENTS))}; pass the --root of "
      f"experiments.reproduce, or run that first"
    )
  if os.path.isdir(output):
    raise _cli.UsageError(
      f"--output={output} is a folder; pass the markdown file to write, "
      f"e.g. --output={os.path.join(output, 'RESULTS.md')}"
    )
  if figures_dir and os.path.exists(figures_dir) and not os.path.isdir(figures_dir):
    raise _cli.UsageError(f"--figures_dir={figures_dir} is a file; pass a folder")


def main(argv):
  _cli.no_arguments(argv)
  f = flags.FLAGS
  check_paths(f.root, f.output, f.figures_dir)
  try:
    text = make_results(f.root, f.output, f.figures_dir, allow_partial=f.allow_partial)
  except PartialResultsError as err:
    raise _cli.UsageError(str(err)) from None
  print(text)


if __name__ == "__main__":
  _define_flags()
  _cli.run(main)
