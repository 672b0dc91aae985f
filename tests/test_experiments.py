"""The experiment definitions (a)-(e) and the resumable driver."""

import json
import os

import numpy as np
import pytest

from advjax import data, train
from experiments import _experiments as E
from experiments import reproduce
from tests._inputs import benchmark_module


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_every_row_is_a_valid_config(dataset):
  for exp in E.EXPERIMENTS.values():
    names = [r.name for r in exp.rows]
    assert len(set(names)) == len(names), exp.key
    for row in exp.rows:
      c = train.validate_config(row.config(0, dataset))
      assert c.seed == 0 and c.name == row.name
      assert row.init_from in (None,) + tuple(names)
  b = {r.name: r.config(0, dataset) for r in E.EXPERIMENTS["b"].rows}
  # (b) compares the recipes at the same epochs and attack budget
  assert b["pgd_at"].num_epochs == b["hybrid"].num_epochs
  assert b["pgd_at"].train_attack.to_dict() == b["hybrid"].train_attack.to_dict()
  assert (b["pgd_at"].recipe, b["hybrid"].recipe) == ("adversarial", "hybrid")
  # the field's baselines: same epochs, attack and eps ramp as PGD-AT, their own loss
  for name, objective, awp in (
    ("trades", "trades", 0.0),
    ("mart", "mart", 0.0),
    ("awp", "ce", 5e-3),
  ):
    c = b[name]
    assert (c.objective, c.awp_gamma, c.alpha, c.recipe) == (objective, awp, 0.0, "adversarial"), (
      name
    )
    assert c.num_epochs == b["pgd_at"].num_epochs, name
    assert c.train_attack.to_dict() == b["pgd_at"].train_attack.to_dict(), name
    assert c.eps_warmup_epochs == b["pgd_at"].eps_warmup_epochs, name
  for name in ("trades", "mart"):  # the papers' KL weight, 6
    assert train.canonical_objective(b[name].objective) == train.canonical_objective(
      f"{name}(beta=6.0)"
    )
  # (a): each generated-image type in both protocols, fine-tuned from the base row
  a = {r.name: r for r in E.EXPERIMENTS["a"].rows}
  for n in ("fgs", "fgv", "hc_d_9", "hc_d_9_105"):
    offline, online = a["offline_" + n], a[n]
    assert offline.init_from == online.init_from == "base"
    hp = train.source_options(online.config(0, dataset).train_attack.name)
    assert offline.generate == (hp["directions"], hp["scale"])
    assert offline.config(0, dataset).recipe == "standard"  # clean + generated images
  e = {r.name: r.config(0, dataset) for r in E.EXPERIMENTS["e"].rows}
  m = train.source_options(e["free"].train_attack.name)["replays"]
  assert e["free"].num_epochs == -(-e["clean"].num_epochs // m)  # same gradient count
  assert E.base_config("x", 0, dataset).eval.corruption_tables == (
    "cifar10" if dataset == "cifar10" else "imagenet"
  )
  with pytest.raises(ValueError, match="dataset"):
    E.base_config("x", 0, "imagenet")
  bad = E.base_config("x", 0, dataset)
  bad.eval.corruption_tables = "cifar100"
  with pytest.raises(ValueError, match="corruption_tables"):
    train.validate_config(bad)


def _tiny(name, recipe="standard", **kw):
  def build(seed, dataset="mnist"):
    c = E.base_config(name, seed, dataset)
    c.recipe = recipe
    c.num_epochs = 1
    c.eval.num_examples = 100
    c.eval.eps_grid = (0.0, 0.1)
    c.eval.masking_checks = False
    c.eval.attack_options.pgd.update(num_steps=3, step_size=0.4)
    c.train_attack.name = "pgd(num_steps=2)"
    c.update_from_flattened_dict(kw)
    return c

  return build


@pytest.mark.slow
def test_driver_runs_fine_tunes_ensembles_and_skips_finished_runs(tmp_path, monkeypatch):
  monkeypatch.setattr(E, "OFFLINE_MAX_IMAGES", 64)
  # the supplement, a whole-experiment measurement: a module on the path
  (tmp_path / "advjax_test_measure.py").write_text(
    "import sys\nopen(sys.argv[2], 'w').write('| measured |\\n')\n"
  )
  monkeypatch.setenv("PYTHONPATH", str(tmp_path), prepend=os.pathsep)
  exp = E.Experiment(
    key="t",
    title="tiny",
    claim="-",
    rows=[
      E.Row("base", "base", _tiny("base")),
      E.Row(
        "ft",
        "fine-tuned",
        _tiny("ft", "adversarial", alpha=0.5, **{"train_attack.name": "fgsm"}),
        init_from="base",
      ),
      E.Row(
        "gen", "clean + FGS images of base", _tiny("gen"), init_from="base", generate=("FGS", 1.0)
      ),
      E.Row(
        "aug",
        "DiffAugment",
        _tiny("aug", "adversarial", alpha=0.5, **{"train_attack.name": "diffaugment"}),
      ),
    ],
    seeds=(0,),
    ensemble_of=("ft", "aug"),
    supplement=E.Supplement("Measured", "m.md", "advjax_test_measure"),
  )
  logs = []
  reproduce.run_experiment(exp, str(tmp_path), [0], log=logs.append)
  with open(E.supplement_path(str(tmp_path), exp), encoding="utf-8") as f:
    assert f.read() == "| measured |\n"
  for row in ("base", "ft", "aug", "ensemble"):
    with open(E.run_dir(str(tmp_path), "t", row, 0) + "/report.json") as f:
      report = json.load(f)
    assert report["clean_accuracy"] > 0.5, row
  with open(E.run_dir(str(tmp_path), "t", "ft", 0) + "/config.json") as f:
    assert json.load(f)["init_workdir"] == E.run_dir(str(tmp_path), "t", "base", 0)
  # the offline row: FGS images made once by the base network, appended to its training
  generated = E.generated_path(str(tmp_path), "t", "gen", 0)
  rows = np.load(generated)
  assert 32 <= len(rows["label"]) <= 64 and set(rows["type"]) == {"FGS"}
  assert any(f"{len(rows['label'])} FGS x1 images generated from 64" in l for l in logs)
  with open(E.run_dir(str(tmp_path), "t", "gen", 0) + "/report.json") as f:
    gen = json.load(f)
  with open(E.run_dir(str(tmp_path), "t", "base", 0) + "/report.json") as f:
    base = json.load(f)
  assert gen["setup"]["train extra"] == f"{generated} ({len(rows['label'])} images)"
  assert gen["train"]["steps"] == data.steps_per_epoch(3500 + len(rows["label"]), 128)
  assert gen["setup"]["init from"] == E.run_dir(str(tmp_path), "t", "base", 0)
  assert base["setup"]["train extra"] == "none"
  logs.clear()
  reproduce.run_experiment(exp, str(tmp_path), [0], log=logs.append)  # all done: skipped
  assert len(logs) == 6 and all("skipped" in line for line in logs), logs
  assert os.path.exists(E.run_dir(str(tmp_path), "t", "ensemble", 0) + "/report.md")


def test_every_config_file_validates():
  import glob  # pylint: disable=import-outside-toplevel
  import importlib  # pylint: disable=import-outside-toplevel

  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  files = sorted(glob.glob(os.path.join(root, "experiments", "configs", "[a-z]*.py")))
  assert len(files) >= 5
  for path in files:
    mod = importlib.import_module("experiments.configs." + os.path.basename(path)[:-3])
    for arg in (None, "quick"):
      c = train.validate_config(mod.get_config(arg))
      assert c.name, path


def test_e_supplement_is_the_train_recipes_benchmark_run_as_a_module():
  exp = E.EXPERIMENTS["e"]
  assert E.supplement_command("runs/repro", exp) == (
    "python -m benchmarks.train_recipes --output runs/repro/e/time_to_accuracy.md"
  )
  assert benchmark_module("train_recipes").__name__ == exp.supplement.module


def test_time_to_target_counts_train_seconds_until_the_first_epoch_that_reaches_it():
  bench = benchmark_module("train_recipes")
  times, accs = [10.0, 5.0, 5.0, 5.0], [0.2, 0.79, 0.81, 0.9]
  assert bench.time_to_target(times, accs, 0.8, compile_s=3.0) == (17.0, 3)
  assert bench.time_to_target(times, accs, 0.2) == (10.0, 1)
  assert bench.time_to_target(times, accs, 0.95) == (None, None)
  with pytest.raises(ValueError, match="4 epoch times but 3 accuracies"):
    bench.time_to_target(times, accs[:3], 0.5)
  # experiment (e)'s rows as the benchmark trains them: FGSM-RS half the epochs, cyclic lr
  configs = {name: c for name, _, c in bench.recipe_configs(10, 4, 0)}
  assert [configs[n].num_epochs for n in ("clean", "fgsm_rs", "free", "pgd_at")] == [10, 5, 3, 10]
  assert (configs["fgsm_rs"].lr_schedule, configs["fgsm_rs"].learning_rate) == ("cyclic", 5e-3)
  assert all(c.keep_checkpoints == c.num_epochs for c in configs.values())
