"""RESULTS.md generation from fake run reports: means and stds in the tables, the
verdict rules on constructed numbers, per-seed ratios, and missing runs."""

import json
import os
import re

import pytest

from experiments import make_results as mr
from tests._inputs import run_experiment


def _report(clean, pgd=None, fgsm=None, time_s=100.0, **extra):
  attacks = {}
  if fgsm is not None:
    attacks["fgsm"] = {"label": "FGSM", "eps": 0.1, "norm": "linf", "accuracy": fgsm}
  if pgd is not None:
    attacks["pgd"] = {
      "label": "PGD-20 (step 0.01, 1 restart, random start)",
      "eps": 0.1,
      "norm": "linf",
      "accuracy": pgd,
    }
  r = {
    "clean_accuracy": clean,
    "attacks": attacks,
    "train": {"time_s": time_s},
    "setup": {"dataset": "mnist5k", "model": "lenet5", "devices": 1},
  }
  r.update(extra)
  return r


def _write(root, exp, row, seed, report, epoch_times=()):
  d = os.path.join(root, exp, row, f"seed_{seed}")
  os.makedirs(d, exist_ok=True)
  with open(os.path.join(d, "report.json"), "w", encoding="utf-8") as f:
    json.dump(report, f)
  if epoch_times:
    with open(os.path.join(d, "metrics.jsonl"), "w", encoding="utf-8") as f:
      for e, t in enumerate(epoch_times, 1):
        f.write(json.dumps({"kind": "train", "epoch": e, "loss": 1.0}) + "\n")
        f.write(json.dumps({"kind": "val", "epoch": e, "epoch_time_s": t}) + "\n")


def _timed(time_s, compile_s=0.0, epochs=10, **kw):
  """An (e) report of `time_s` train seconds whose first epoch also pays `compile_s`."""
  steady = (time_s - compile_s) / epochs
  return dict(
    report=_report(time_s=time_s, **kw), epoch_times=[steady + compile_s] + [steady] * (epochs - 1)
  )


def _section(text, key):
  """The markdown of one experiment's section."""
  return re.search(rf"^## \({key}\).*?(?=^## |\Z)", text, re.S | re.M).group(0)


E_FGSM_LABEL = next(r.label for r in mr.E.EXPERIMENTS["e"].rows if r.name == "fgsm_rs")


def _line(section, label):
  return next(l for l in section.splitlines() if l.startswith(f"| {label} |"))


@pytest.fixture(name="results")
def _results(tmp_path):
  root = str(tmp_path / "runs")
  # (b): the hybrid is cleaner by 0.10 (stds 0.071 and 0.014) at equal PGD: held.
  for s, (hc, pc) in enumerate([(0.9, 0.75), (0.8, 0.73)]):
    _write(
      root,
      "b",
      "hybrid",
      s,
      _report(
        hc,
        pgd=0.50,
        fgsm=0.6,
        time_s=100 + 20 * s,
        calibration={"ece_clean": 0.02},
        train={"time_s": 100 + 20 * s, "final_alpha": 0.4},
      ),
    )
    _write(root, "b", "pgd_at", s, _report(pc, pgd=0.50, fgsm=0.6))
  # (d): AT is only 0.05 more robust than weight decay + dropout: not held (partly,
  # since AT + wd + dropout keeps AT's robustness). Seed 1 of at_wd_dropout is missing.
  for s in (0, 1):
    _write(root, "d", "baseline", s, _report(0.99, pgd=0.00, fgsm=0.2))
    _write(root, "d", "wd_dropout", s, _report(0.99, pgd=0.30, fgsm=0.4))
    _write(root, "d", "at", s, _report(0.98, pgd=0.35, fgsm=0.7))
  _write(root, "d", "at_wd_dropout", 0, _report(0.97, pgd=0.36, fgsm=0.7))
  # (e): per-seed ratios of the train time without compilation. clean 100 s / 200 s
  # (+ 50 s of compilation each); fgsm_rs 120 s / 220 s -> 1.2, 1.1; free 260 s / 400 s ->
  # 2.6, 2.0 (too slow); PGD: fgsm_rs 0.45/0.5, 0.5/0.5 -> 0.9, 1.0.
  for s, (tc, tf, tfree) in enumerate([(100, 120, 260), (200, 220, 400)]):
    _write(root, "e", "clean", s, **_timed(tc + 50, 50, clean=0.99, pgd=0.0))
    _write(root, "e", "fgsm_rs", s, **_timed(tf, clean=0.97, pgd=0.45 + 0.05 * s, epochs=5))
    _write(root, "e", "free", s, **_timed(tfree + 9, 9, clean=0.97, pgd=0.5, epochs=3))
    _write(root, "e", "pgd_at", s, **_timed(700, clean=0.97, pgd=0.5))
  # (c): one unreadable report (a run being written by hand, say).
  os.makedirs(os.path.join(root, "c", "baseline", "seed_0"))
  with open(os.path.join(root, "c", "baseline", "seed_0", "report.json"), "w") as f:
    f.write("{not json")
  output = str(tmp_path / "out" / "RESULTS.md")
  text = mr.make_results(root, output, allow_partial=True)
  return text, output, root


def test_table_cells_are_mean_and_sample_std(results):
  text, _, _ = results
  b = _section(text, "b")
  hybrid = _line(b, "hybrid (adaptive alpha, linear eps)")
  cells = [c.strip() for c in hybrid.strip("|").split("|")]
  head = [c.strip() for c in b.split("\n| row |")[1].split("\n")[0].strip("|").split("|")]
  row = dict(zip(["row"] + head, cells))
  assert row["n"] == "2"
  assert row["clean acc."] == "0.850 ± 0.071"
  assert row["PGD-20"] == "0.500 ± 0.000"  # header from the reports' label
  assert row["gap (clean - PGD)"] == "0.350 ± 0.071"
  assert row["train time (s)"] == "110.0 ± 14.1"
  assert row["final alpha"] == "0.400 ± 0.000"
  assert row["CW-L2 median L2 (broken points)"] == "-"  # no report has it
  assert "0.740 ± 0.014" in _line(b, "PGD-AT (alpha = 0, linear eps)")


def test_verdict_rules_on_constructed_numbers(results):
  text, _, _ = results
  # (b): 0.85 - 0.74 = 0.11 > max(0.071, 0.014) and PGD equal.
  assert "**Verdict: held.**" in _section(text, "b")
  # (d): AT - wd_dropout = 0.05, not > 0.1; at_wd_dropout 0.36 >= 0.35 - 0.02.
  d = _section(text, "d")
  assert "**Verdict: partly.**" in d and "difference +0.050, needed > 0.100" in d
  # (e): fgsm_rs time x1.15, PGD x0.95 -> met; free time x2.30 -> not met.
  e = _section(text, "e")
  assert "**Verdict: partly.**" in e
  assert "fgsm_rs: time x1.15, PGD accuracy x0.95 of PGD-AT's, met" in e
  assert "free: time x2.30, PGD accuracy x1.00 of PGD-AT's, not met" in e
  assert "1.15 ± 0.07" in _line(e, E_FGSM_LABEL)  # per-seed time ratio
  assert "| 200.0 ± 70.7 | 150.0 ± 70.7 | 1.00 ± 0.00 |" in _line(e, "standard (time reference)")
  # (a), (c): no usable reports, so no verdict is invented.
  assert "**Verdict" not in _section(text, "a")
  assert "**Verdict" not in _section(text, "c")


def test_b_verdict_not_held_when_difference_within_std():
  runs = {
    "hybrid": {0: _report(0.90, pgd=0.5), 1: _report(0.70, pgd=0.5)},
    "pgd_at": {0: _report(0.75, pgd=0.5), 1: _report(0.74, pgd=0.5)},
  }
  v = mr.verdict_b(runs)  # 0.80 - 0.745 = 0.055 < std 0.141; PGD equal
  assert v.status == "partly"
  runs["hybrid"] = {0: _report(0.70, pgd=0.40), 1: _report(0.70, pgd=0.40)}
  assert mr.verdict_b(runs).status == "did not hold"


def test_missing_runs_are_reported_not_invented(results):
  text, output, root = results
  d = _section(text, "d")
  assert "Missing runs (1 of 8" in d and "`d/at_wd_dropout/seed_1`" in d
  one_seed = _line(d, "adversarial training + weight decay + dropout")
  assert one_seed.startswith("| adversarial training + weight decay + dropout | 1 | 0.970 |")
  assert "±" not in one_seed  # one seed: its value alone, no std
  assert "Provisional" in d
  a = _section(text, "a")
  assert "No runs yet" in a and "--experiments=a" in a
  c = _section(text, "c")
  assert "Unreadable report" in c and "No runs yet" in c
  n_e = 4 * len(mr.E.EXPERIMENTS["e"].seeds)  # the fake root has seeds 0 and 1
  assert (f"Missing runs ({n_e - 8} of {n_e}" if n_e > 8 else "All 8 runs present.") in _section(
    text, "e"
  )
  expected = sum(
    len(x.seeds) * (len(x.rows) + bool(x.ensemble_of)) for x in mr.E.EXPERIMENTS.values()
  )
  assert f"Runs: 19 of {expected} expected" in text  # 19 written above
  with open(output, encoding="utf-8") as f:
    assert f.read() == text
  figs = os.path.join(os.path.dirname(output), "docs", "results")
  assert sorted(os.listdir(figs)) == ["b.png", "d.png", "e.png"]
  assert "![(b)" in text and "](docs/results/b.png)" in text


def test_collapsed_runs_are_named_and_not_used_as_ratio_references():
  runs = {
    "clean": {
      0: {"clean_accuracy": 0.96, "train": {"time_s": 10.0}},
      1: {"clean_accuracy": 0.96, "train": {"time_s": 10.0}},
    },
    "pgd_at": {
      0: {"clean_accuracy": 0.95, "attacks": {"pgd": {"accuracy": 0.85}}},
      1: {"clean_accuracy": 0.10, "attacks": {"pgd": {"accuracy": 0.10}}},
    },
    "free": {
      0: {"clean_accuracy": 0.96, "attacks": {"pgd": {"accuracy": 0.85}}},
      1: {"clean_accuracy": 0.96, "attacks": {"pgd": {"accuracy": 0.87}}},
    },
  }
  assert mr.collapsed(runs, "pgd_at", 1) and not mr.collapsed(runs, "pgd_at", 0)
  ratio = mr.relative_to(mr.field("attacks", "pgd", "accuracy"), "pgd_at")
  assert ratio(runs, "free", 0) == pytest.approx(1.0)
  assert ratio(runs, "free", 1) is None  # 0.87 / 0.10 would mean nothing
  st = mr.stat(runs, "free", ratio)
  assert st.n == 1 and st.mean == pytest.approx(1.0)


def test_a_verdict_is_the_published_protocols_and_names_the_online_one():
  def rep(clean, heldout_error):
    return {"clean_accuracy": clean, "hard_positive_set": {"error": heldout_error}}

  runs = {"base": {0: rep(0.96, 0.10)}, "basic": {0: rep(0.965, 0.09)}}
  # online: HC rows beat basic, FGS and FGV on held-out error at base's clean error
  for prefix, hc_err in (("", 0.05), ("offline_", 0.08)):
    runs.update(
      {
        f"{prefix}fgs": {0: rep(0.96, 0.07)},
        f"{prefix}fgv": {0: rep(0.96, 0.075)},
        f"{prefix}hc_d_9": {0: rep(0.958, hc_err)},
        f"{prefix}hc_d_9_105": {0: rep(0.957, hc_err)},
      }
    )
  v = mr.verdict_a(runs)
  # published: HC 0.08 is not below FGS 0.07 -> the clean condition alone holds
  assert v.status == "partly"
  assert v.evidence.startswith("as published: held-out error offline_hc_d_9 0.080")
  assert "online variant (held): held-out error hc_d_9 0.050" in v.evidence
  del runs["offline_fgv"]
  v = mr.verdict_a(runs)
  assert v.status == "cannot be decided yet"
  assert "no reports for offline_fgv held-out" in v.evidence


def test_e_shows_the_time_to_accuracy_file_or_says_it_is_missing(results):
  text, output, root = results
  exp = mr.E.EXPERIMENTS["e"]
  cmd = f"python -m benchmarks.train_recipes --output {root}/e/time_to_accuracy.md"
  assert mr.E.supplement_command(root, exp) == cmd
  section = _section(text, "e")
  assert "### Time to accuracy" in section and cmd in section
  assert f"Not measured yet: `{root}/e/time_to_accuracy.md` does not exist" in section
  table = "| recipe | seconds to target |\n|---|---:|\n| FGSM-RS (cyclic lr) | 4.2 |"
  with open(mr.E.supplement_path(root, exp), "w", encoding="utf-8") as f:
    f.write(table + "\n")
  section = _section(mr.make_results(root, output, allow_partial=True), "e")
  assert table in section and "Not measured yet" not in section
  # under (e)'s table, before its verdict
  assert section.index("| PGD-7 AT") < section.index(table) < section.index("**Verdict")


def test_supplement_runs_its_script_once_and_skips_other_datasets(tmp_path, monkeypatch):
  script = tmp_path / "advjax_test_measure_once.py"
  script.write_text(
    "import sys, os\n"
    "with open(sys.argv[sys.argv.index('--output') + 1], 'a') as f:\n"
    "  f.write('| measured |\\n')\n"
  )
  exp = mr.E.EXPERIMENTS["e"]._replace(
    supplement=mr.E.Supplement("Measure", "m.md", "advjax_test_measure_once", datasets=("mnist",))
  )
  monkeypatch.setenv("PYTHONPATH", str(tmp_path), prepend=os.pathsep)
  logs, root = [], str(tmp_path / "runs")
  mr.E.measure_supplement(root, exp, "cifar10", logs.append)
  assert not os.path.exists(mr.E.supplement_path(root, exp))
  assert logs == ["[e] Measure: measured on mnist only, skipped"]
  for _ in range(2):  # the second call finds the file and does not append to it
    mr.E.measure_supplement(root, exp, "mnist", logs.append)
  with open(mr.E.supplement_path(root, exp), encoding="utf-8") as f:
    assert f.read() == "| measured |\n"
  assert logs[-1] == "[e] Measure: done, skipped"


def test_train_time_without_compile_subtracts_the_first_epochs_excess(tmp_path):
  root = str(tmp_path)
  _write(root, "e", "clean", 0, _report(0.99, time_s=8.2), epoch_times=[5.0, 1.0, 1.2, 1.0])
  _write(root, "e", "clean", 1, _report(0.99, time_s=8.2))  # no metrics.jsonl
  _write(root, "e", "free", 0, _report(0.99, time_s=3.0), epoch_times=[3.0])
  runs = mr.load_runs(root, mr.E.EXPERIMENTS["e"]).runs
  # the median later epoch is 1.0, so 4.0 of the first epoch's 5.0 s was compilation
  assert mr._train_time_without_compile(runs, "clean", 0) == pytest.approx(4.2)
  assert mr._train_time_without_compile(runs, "clean", 1) is None
  assert mr._train_time_without_compile(runs, "free", 0) is None  # one epoch: unknown


def test_a_counts_the_images_generated_once_from_the_report():
  runs = {
    "offline_fgs": {0: _report(0.96, setup={"train extra": "/r/a/gen.npz (3468 images)"})},
    "fgs": {0: _report(0.96, setup={"train extra": "none"})},
  }
  assert mr._generated_images(runs, "offline_fgs", 0) == 3468
  assert mr._generated_images(runs, "fgs", 0) is None
  assert mr._generated_images(runs, "basic", 0) is None


def test_a_partial_root_is_refused_and_nothing_is_written(results, tmp_path):
  _, _, root = results  # 19 of the expected reports, one unreadable
  out = tmp_path / "fresh" / "RESULTS.md"
  with pytest.raises(mr.PartialResultsError, match=r"has 19 of \d+ expected reports"):
    mr.make_results(root, str(out))
  assert not os.path.exists(tmp_path / "fresh")  # neither the file nor its figures
  # the command: exit 2, one line naming the missing runs and --allow_partial; an
  # existing RESULTS.md and its figures stay as they were
  out.parent.mkdir()
  out.write_text("committed results\n")
  proc = run_experiment("make_results", f"--root={root}", f"--output={out}", timeout=120)
  assert proc.returncode == 2, proc.stderr
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: ")
  assert "expected reports" in lines[0] and "--allow_partial" in lines[0]
  n_a = len(mr.E.EXPERIMENTS["a"].seeds) * len(mr.row_names(mr.E.EXPERIMENTS["a"]))
  assert f"(a) {n_a} of {n_a}" in lines[0] and "(d) 1 of 8" in lines[0]  # what is missing
  assert "unreadable: " in lines[0] and "c/baseline/seed_0/report.json" in lines[0]
  assert out.read_text() == "committed results\n"
  assert sorted(os.listdir(out.parent)) == ["RESULTS.md"]
  proc = run_experiment(
    "make_results", f"--root={root}", f"--output={out}", "--allow_partial", timeout=120
  )
  assert proc.returncode == 0, proc.stderr
  assert "Runs: 19 of" in out.read_text()


def test_a_complete_root_needs_no_flag(tmp_path, monkeypatch):
  exp = mr.E.EXPERIMENTS["b"]
  monkeypatch.setattr(mr.E, "EXPERIMENTS", {"b": exp})
  root = str(tmp_path / "runs")
  for row in mr.row_names(exp):
    for s in exp.seeds:
      _write(root, "b", row, s, _report(0.9, pgd=0.5, fgsm=0.6))
  text = mr.make_results(root, str(tmp_path / "R.md"))
  n = len(mr.row_names(exp)) * len(exp.seeds)
  assert f"Runs: {n} of {n} expected reports present" in text
