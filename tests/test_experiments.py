"""The experiment definitions (a)-(e) and the resumable driver."""
import json
import os

import pytest

from advjax import train
from experiments import _experiments as E
from experiments import reproduce


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
  e = {r.name: r.config(0, dataset) for r in E.EXPERIMENTS["e"].rows}
  m = e["free"].train_attack.replays
  assert e["free"].num_epochs == -(-e["clean"].num_epochs // m)  # same gradient count
  assert E.base_config("x", 0, dataset).eval.corruption_tables == (
      "cifar10" if dataset == "cifar10" else "imagenet")
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
    c.eval.pgd_steps, c.eval.pgd_step_size = 3, 0.04
    c.train_attack.num_steps = 2
    c.update_from_flattened_dict(kw)
    return c
  return build


@pytest.mark.slow
def test_driver_runs_fine_tunes_ensembles_and_skips_finished_runs(tmp_path):
  exp = E.Experiment(
      key="t", title="tiny", claim="-",
      rows=[E.Row("base", "base", _tiny("base")),
            E.Row("ft", "fine-tuned", _tiny("ft", "adversarial", alpha=0.5,
                                            **{"train_attack.name": "fgsm"}),
                  init_from="base"),
            E.Row("aug", "DiffAugment", _tiny("aug", "adversarial", alpha=0.5,
                                              **{"train_attack.name": "diffaugment"}))],
      seeds=(0,), ensemble_of=("ft", "aug"))
  logs = []
  reproduce.run_experiment(exp, str(tmp_path), [0], log=logs.append)
  for row in ("base", "ft", "aug", "ensemble"):
    with open(E.run_dir(str(tmp_path), "t", row, 0) + "/report.json") as f:
      report = json.load(f)
    assert report["clean_accuracy"] > 0.5, row
  with open(E.run_dir(str(tmp_path), "t", "ft", 0) + "/config.json") as f:
    assert json.load(f)["init_workdir"] == E.run_dir(str(tmp_path), "t", "base", 0)
  logs.clear()
  reproduce.run_experiment(exp, str(tmp_path), [0], log=logs.append)  # all done: skipped
  assert len(logs) == 4 and all("skipped" in line for line in logs), logs
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
