"""The experiments/ commands: a user error is one line on stderr and an exit code, never a
traceback (experiments/_cli.py: 2 for a wrong command line, 1 for work that stopped).

Every error here is raised before any training starts.
"""

import os
import subprocess
import sys

import pytest

from tests._inputs import run_experiment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HYBRID = "--config=experiments/configs/mnist_hybrid.py"


def _assert_one_line_error(r, exit_code, *needles):
  """stderr is exactly `error: ...` on one line, holding each needle; exit code as given."""
  assert r.returncode == exit_code, r.stderr[-3000:]
  lines = r.stderr.splitlines()
  assert len(lines) == 1, r.stderr[-3000:]
  assert lines[0].startswith("error: "), lines[0]
  for needle in needles:
    assert needle in lines[0], (needle, lines[0])
  return lines[0]


# ------------------------------------------------------------------------- experiments.main


def test_main_summary_prints_unbounded_attacks_without_eps():
  from experiments.main import summary  # pylint: disable=import-outside-toplevel

  report = {
    "clean_accuracy": 0.98,
    "attacks": {
      "fgsm": {"label": "FGSM", "eps": 0.1, "accuracy": 0.9},
      "cw": {"label": "CW-L2", "eps": None, "accuracy": 0.1234},
    },
  }
  assert summary(report) == (
    "clean accuracy 0.9800; FGSM @ eps 0.1: 0.9000; CW-L2 (unbounded): 0.1234"
  )


def test_compare_shows_a_minimum_norm_attack_as_its_median_l2_not_an_accuracy():
  from experiments.compare import comparison_table  # pylint: disable=import-outside-toplevel

  cw = {
    "label": "CW-L2 (100 steps x 6 binary-search steps)",
    "eps": None,
    "kind": "min_norm",
    "accuracy": 0.0,
    "success_rate": 1.0,
    "median_l2": 2.1553,
  }
  report = {
    "clean_accuracy": 0.98,
    "attacks": {"pgd": {"label": "PGD-20", "eps": 0.1, "accuracy": 0.9}, "cw": cw},
  }
  head, _, row = comparison_table({"hyb": report}).splitlines()
  cells = dict(zip(head.strip("|").split(" | "), row.strip("|").split(" | ")))
  cells = {k.strip(): v.strip() for k, v in cells.items()}
  assert cells["CW-L2 (100 steps x 6 binary-search steps): median L2"] == "2.1553"
  assert cells["PGD-20 @ 0.1"] == "0.9000"
  assert cells["robustness gap"] == "0.0800"  # from the bounded attacks only


_FAKE_EVAL = """
import runpy, sys
from advjax import train
def evaluate_checkpoint(config, workdir, *, name=None, time_steps=False):
  print(f"evaluated {config.name} in {workdir} as {name}, time_steps={time_steps}")
  return {"clean_accuracy": 0.5, "output_dir": f"{workdir}/eval/{name}", "attacks": {
      "cw": {"label": "CW-L2", "eps": None, "accuracy": 0.25}}}
train.evaluate_checkpoint = evaluate_checkpoint
sys.argv = ["main", sys.argv[1], "--workdir=runs/w", "--mode=eval", "--eval_name=mine"]
runpy.run_module("experiments.main", run_name="__main__")
"""


def test_main_eval_name_reaches_evaluate_checkpoint_and_report_path_is_its_folder():
  r = subprocess.run(
    [sys.executable, "-c", _FAKE_EVAL, HYBRID],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=180,
  )
  assert r.returncode == 0, r.stderr[-3000:]
  assert r.stdout.splitlines() == [
    "evaluated mnist_hybrid in runs/w as mine, time_steps=False",
    "clean accuracy 0.5000; CW-L2 (unbounded): 0.2500",
    "report: runs/w/eval/mine/report.md",
  ]


@pytest.mark.parametrize(
  "args, needles",
  [
    (
      ["--config.nonexistent=1"],
      ["unknown config key 'nonexistent'", "advjax.train.default_config() lists every key"],
    ),
    (
      ["--config.num_epoch=3"],
      ["unknown config key 'num_epoch' (did you mean 'num_epochs'?)", "default_config()"],
    ),
    (
      ["--config.eval.atacks=fgsm"],
      ["unknown config key 'eval.atacks' (did you mean 'eval.attacks'?)"],
    ),
    (["--config.num_epochs=abc"], ["--config.num_epochs=abc", "int", "30"]),
    (
      ["--config.eval.num_examples=abc"],  # an unset placeholder names the type it takes
      ["--config.eval.num_examples=abc is not a valid int (or unset)", "None in this config"],
    ),
    (["--config.eval.eps_grid=abc"], ["--config.eval.eps_grid", "'abc' is not a number"]),
    (["--mode=fit"], ["--mode=fit", "train|eval"]),
    (["--no_such_flag=1"], ["no_such_flag", "--helpshort"]),
    (["extra"], ["unexpected arguments ['extra']"]),
    (["--eval_name=x"], ["--eval_name", "--mode=eval"]),
  ],
)
def test_main_wrong_flags_are_one_line_exit_2(tmp_path, args, needles):
  r = run_experiment("main", HYBRID, f"--workdir={tmp_path / 'w'}", *args)
  _assert_one_line_error(r, 2, *needles)
  assert not os.path.exists(tmp_path / "w")


@pytest.mark.parametrize(
  "args, needles",
  [
    (
      ["--config=experiments/configs/nope.py"],
      [
        "config file 'experiments/configs/nope.py'",
        "does not exist",
        "experiments/configs/mnist_hybrid.py",
      ],
    ),
    (["--config=experiments/configs/nope.py", "--config.num_epochs=2"], ["does not exist"]),
    ([HYBRID + ":bogus"], ["mnist_hybrid.py:bogus", "unknown config argument 'bogus'", "':quick'"]),
    ([], ["missing required flag --config", "experiments/configs/mnist_hybrid.py"]),
  ],
)
def test_main_config_file_errors_are_one_line_exit_2(tmp_path, args, needles):
  r = run_experiment("main", *args, f"--workdir={tmp_path / 'w'}")
  _assert_one_line_error(r, 2, *needles)
  assert not os.path.exists(tmp_path / "w")


def test_main_missing_workdir_is_one_line_exit_2():
  _assert_one_line_error(run_experiment("main", HYBRID), 2, "missing required flag --workdir")


# ---------------------------------------------------------------------- experiments.compare


def test_compare_missing_report_is_one_line_exit_2(tmp_path):
  r = run_experiment("compare", "runs/does_not_exist", f"--out={tmp_path / 'out'}")
  _assert_one_line_error(
    r, 2, "'runs/does_not_exist'", "no report.json", "does not exist", "--workdir"
  )
  empty = tmp_path / "empty"
  empty.mkdir()
  r = run_experiment("compare", str(empty), f"--out={tmp_path / 'out'}")
  _assert_one_line_error(r, 2, f"'{empty}' has no report.json", "train it", "pass a run folder")
  (empty / "eval" / "step_9").mkdir(parents=True)
  (empty / "eval" / "step_9" / "report.json").write_text("{}")
  r = run_experiment("compare", str(empty), f"--out={tmp_path / 'out'}")
  _assert_one_line_error(r, 2, f"{empty}/eval/step_9", "pass one of those")
  assert not os.path.exists(tmp_path / "out")


def test_compare_no_folders_and_bad_json_are_one_line_exit_2(tmp_path):
  _assert_one_line_error(run_experiment("compare"), 2, "no run folders given", "RUN_DIR")
  (tmp_path / "report.json").write_text("not json")
  r = run_experiment("compare", str(tmp_path), f"--out={tmp_path / 'out'}")
  _assert_one_line_error(r, 2, f"'{tmp_path}/report.json' is not JSON")


# -------------------------------------------------------------------- the other commands


@pytest.mark.parametrize(
  "args, needles",
  [
    (["--experiments=b,z"], ["--experiments=b,z", "unknown 'z'", "a,b,c,d,e"]),
    (["--experiments=b", "--seeds=one"], ["--seeds=one", "integers"]),
    (["--dataset=imagenet"], ["--dataset=imagenet", "mnist|cifar10"]),
  ],
)
def test_reproduce_wrong_flags_are_one_line_exit_2(tmp_path, args, needles):
  r = run_experiment("reproduce", f"--root={tmp_path / 'r'}", *args)
  _assert_one_line_error(r, 2, *needles)
  assert not os.path.exists(tmp_path / "r")


def test_make_results_wrong_root_or_output_is_one_line_exit_2(tmp_path):
  out = tmp_path / "R.md"
  r = run_experiment("make_results", f"--root={tmp_path / 'nope'}", f"--output={out}")
  _assert_one_line_error(
    r, 2, f"--root={tmp_path / 'nope'} is not a folder", "experiments.reproduce"
  )
  r = run_experiment("make_results", f"--root={tmp_path}", f"--output={out}")
  _assert_one_line_error(r, 2, "holds none of the experiment folders a, b, c, d, e")
  (tmp_path / "b").mkdir()
  r = run_experiment("make_results", f"--root={tmp_path}", f"--output={tmp_path}")
  _assert_one_line_error(r, 2, f"--output={tmp_path} is a folder", "RESULTS.md")
  assert not os.path.exists(out)


@pytest.mark.parametrize(
  "args, needles",
  [
    ([], ["missing required flag --workdirs"]),
    (["--workdirs="], ["--workdirs is empty", "--workdirs=runs/a,runs/b"]),
    (["--workdirs=runs/a", "--eps=big"], ["--eps=big", "float"]),
    (["--workdirs=runs/a", "--num_examples=-1"], ["--num_examples=-1", "'all'"]),
    (["--workdirs=runs/a", "runs/b"], ["unexpected arguments ['runs/b']", "--workdirs="]),
  ],
)
def test_ensemble_wrong_flags_are_one_line_exit_2(tmp_path, args, needles):
  r = run_experiment("ensemble", f"--output={tmp_path / 'e'}", *args)
  _assert_one_line_error(r, 2, *needles)
  assert not os.path.exists(tmp_path / "e")


@pytest.mark.parametrize(
  "args, needles",
  [
    (["--types=FGS,FOO"], ["--types", "'FOO'", "HC-D-k"]),
    (["--scales=1.0,big"], ["--scales=1.0,big", "positive factors"]),
    (["--tau=2"], ["--tau=2", "[0, 1]"]),
    (["--num_images=0"], ["--num_images=0", "positive integer"]),
    (["--model_path=BAD"], ["--model_path=", "does not hold LeNet-5 variables"]),
  ],
)
def test_generate_hard_positives_wrong_flags_fail_before_training(tmp_path, args, needles):
  (tmp_path / "bad.msgpack").write_text('{"not": "variables"}')
  args = [a.replace("BAD", str(tmp_path / "bad.msgpack")) for a in args]
  # every check runs before the LeNet-5 is trained: seconds, not minutes
  r = run_experiment(
    "generate_hard_positives", f"--output={tmp_path / 'hp.npz'}", *args, timeout=120
  )
  _assert_one_line_error(r, 2, *needles)
  assert not os.path.exists(tmp_path / "hp.npz")


def test_generate_hard_positives_missing_output_is_one_line_exit_2():
  _assert_one_line_error(
    run_experiment("generate_hard_positives"), 2, "missing required flag --output"
  )
