"""The README's code runs as written: the Python snippet on a user's own Flax CNN, and the
main job and "Other commands" top to bottom from a fresh clone (each config's `:quick`
variant), whose numbers are the README's "Quick variants" table.

The commands that train run once per session (`readme_runs`, shared by the xdist workers;
the smoke run is the main job's command, so it is that run), two at a time; the commands
that only read a run (evaluations, compare) run side by side after them.

`ADVJAX_PRINT_README_TABLE=1 python -m pytest -q -n 0 tests/test_readme.py -k quick_table`
prints the "Quick variants" table the runs give, to paste into README.md.
"""

import concurrent.futures
import json
import os
import re
import shlex
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import attacks, checked_jit, losses, models
from tests._inputs import readme_section, readme_table, table_cells

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _code_blocks(section: str, lang: str):
  return re.findall(rf"```{lang}\n(.*?)```", section, flags=re.S)


@pytest.fixture(scope="module")
def snippet():
  """The namespace left by the README's Python snippet."""
  (code,) = _code_blocks(readme_section("## Using the pieces in your own code"), "python")
  namespace = {"__name__": "readme_snippet"}
  exec(compile(code, "README.md", "exec"), namespace)  # pylint: disable=exec-used
  return namespace


def test_readme_snippet_attacks_a_users_own_flax_cnn(snippet):
  x, x_adv, logits_fn = snippet["x"], snippet["x_adv"], snippet["logits_fn"]
  assert "train" not in snippet["CNN"].__call__.__code__.co_varnames  # an ordinary module
  assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
  delta = np.asarray(x_adv - x)
  assert np.abs(delta).max() <= 0.1 + 1e-6
  assert 0.0 <= float(x_adv.min()) and float(x_adv.max()) <= 1.0
  assert np.abs(delta).max() > 0.05  # it moved
  # PGD raises the loss it ascends
  ce = lambda z: float(losses.cross_entropy(logits_fn(z), snippet["y"]).mean())
  assert ce(x_adv) > ce(x)


def test_readme_pattern_rejects_bad_values_under_jit(snippet):
  pgd20, key, x, y = snippet["pgd20"], snippet["key"], snippet["x"], snippet["y"]
  with pytest.raises(ValueError, match=r"`images` must have values in \[0, 1\].*got range"):
    pgd20(key, 255.0 * x, y)
  with pytest.raises(ValueError, match=r"`labels` must be in \[0, 9\].*\[3, 10\]"):
    pgd20(key, x, y + 3)
  with pytest.raises(ValueError, match="`images` contains NaN"):
    pgd20(key, x.at[0, 0, 0, 0].set(jnp.nan), y)
  attack = checked_jit(
    lambda k, x, y, e: attacks.pgd(k, snippet["logits_fn"], x, y, eps=e, num_steps=2)
  )
  with pytest.raises(ValueError, match=r"`eps` must be >= 0; got min -1"):
    attack(key, x, y, -1.0)
  with pytest.raises(ValueError, match=r"`eps` must be >= 0"):
    attack(key, x, y, jnp.array([0.1] * 7 + [-0.1]))  # per-example eps
  ok = attack(key, x, y, 0.05)
  assert float(jnp.abs(ok - x).max()) <= 0.05 + 1e-6
  # As the README's table says: a plain jit cannot look at values.
  plain = jax.jit(lambda k, x, y: attacks.fgsm(k, snippet["logits_fn"], x, y, eps=0.1))
  assert plain(key, 255.0 * x, y).shape == x.shape


def test_checked_jit_checks_augmentations_and_metrics_too(snippet):
  from advjax import augment, metrics  # pylint: disable=import-outside-toplevel

  x = snippet["x"]
  key = jax.random.key(1)
  noise = checked_jit(lambda k, img: augment.diffaugment(k, img))
  assert noise(key, x[0]).shape == x[0].shape
  with pytest.raises(ValueError, match="`image` must have values in"):
    noise(key, 2.0 * x[0] + 0.5)
  ssim = checked_jit(metrics.ssim)
  with pytest.raises(ValueError, match="`b` must have values in"):
    ssim(x, x - 1.0)


class _DropoutCNN(nn.Module):
  """A module with Flax's `deterministic` convention instead of `train`."""

  @nn.compact
  def __call__(self, x, deterministic: bool = False):
    x = nn.Dense(32)(x.reshape(x.shape[0], -1))
    x = nn.Dropout(0.5)(x, deterministic=deterministic)
    return nn.Dense(10)(x)


def test_make_logits_fn_finds_the_inference_flag_or_takes_apply_kwargs():
  x = jax.random.uniform(jax.random.key(0), (4, 8, 8, 1))
  model = _DropoutCNN()
  variables = model.init(jax.random.key(1), x, deterministic=True)
  logits = models.make_logits_fn(model, variables)(x)  # deterministic=True: no dropout RNG
  want = model.apply(variables, x, deterministic=True)
  np.testing.assert_array_equal(logits, want)
  # apply_kwargs replace the detected flag
  rngs = {"dropout": jax.random.key(2)}
  train_fn = models.make_logits_fn(model, variables, deterministic=False, rngs=rngs)
  assert not np.allclose(train_fn(x), want)
  # advjax's own models (a `train` argument) are unchanged
  lenet = models.get_model("lenet5", num_classes=10)
  lv = models.init_variables(lenet, jax.random.key(0), (28, 28, 1))
  img = jax.random.uniform(jax.random.key(3), (2, 28, 28, 1))
  np.testing.assert_array_equal(
    models.make_logits_fn(lenet, lv)(img), lenet.apply(lv, img, train=False)
  )
  with pytest.raises(ValueError, match="`model` must be a Flax linen module"):
    models.make_logits_fn(lambda z: z, {})


def _quick(argv, tmp):
  """A README command with each config's `:quick` variant and runs/ under `tmp`."""
  out = []
  for a in argv:
    if a.startswith("--config=") and a.endswith(".py"):
      a += ":quick"
    a = a.replace("runs/", os.path.join(tmp, "runs") + "/").replace(
      "/tmp/smoke", os.path.join(tmp, "smoke")
    )
    out.append(a)
  return out


def _commands(block: str):
  lines = block.replace("\\\n", " ").splitlines()
  return [shlex.split(l) for l in lines if l.strip() and not l.strip().startswith("#")]


def _readme_commands():
  """The main job's argv and the "Other commands" argvs, as the README writes them."""
  main_job = _code_blocks(readme_section("## Two commands"), "bash")[0]
  main_job = shlex.split(main_job.split("&&")[-1])
  other = _commands(_code_blocks(readme_section("## Other commands"), "bash")[0])
  for argv in [main_job] + other:
    assert argv[0] == "python", argv
  return main_job, other


def _flag(argv, name):
  values = [a.split("=", 1)[1] for a in argv if a.startswith(f"--{name}=")]
  return values[0] if values else None


def _trains(argv) -> bool:
  """Whether a README command trains a run (the others only read runs)."""
  return argv[1:3] == ["-m", "experiments.main"] and _flag(argv, "mode") in (None, "train")


def _same_run(argv):
  """A training command without its --workdir: two commands equal in this train the
  same run."""
  return tuple(a for a in argv if not a.startswith("--workdir="))


_SIDE_BY_SIDE = 2  # README commands run at a time


def _run_side_by_side(commands, tmp):
  """Runs each README argv (with `_quick`, from the repository root) as a subprocess,
  `_SIDE_BY_SIDE` at a time; returns their stdouts in order. Each must exit 0."""
  env = dict(os.environ, PYTHONPATH=ROOT)

  def run(argv):
    proc = subprocess.run(
      [sys.executable] + _quick(argv[1:], tmp),
      cwd=ROOT,
      env=env,
      capture_output=True,
      text=True,
      timeout=1200,
      check=False,
    )
    return argv, proc

  with concurrent.futures.ThreadPoolExecutor(_SIDE_BY_SIDE) as pool:
    done = list(pool.map(run, commands))
  for argv, proc in done:
    assert proc.returncode == 0, f"{' '.join(argv)}\n{proc.stderr[-3000:]}"
  return [proc.stdout for _, proc in done]


@pytest.fixture(scope="session")
def readme_runs(build_once):
  """The folder in which the README's training commands (the main job and those of "Other
  commands", `:quick`) ran from the repository root, once per session for every xdist
  worker; a command that repeats an earlier one but for --workdir (the smoke run) is not
  run again: its workdir is a link to the earlier run's. `stdout.json` maps each command
  (joined by spaces) to its output."""
  main_job, other = _readme_commands()

  def build(folder):
    first, trains = {}, []
    for argv in [main_job] + [a for a in other if _trains(a)]:
      if _same_run(_quick(argv, "")) in first:
        earlier = _quick(first[_same_run(_quick(argv, ""))], str(folder))
        os.makedirs(os.path.dirname(_flag(_quick(argv, str(folder)), "workdir")), exist_ok=True)
        os.symlink(_flag(earlier, "workdir"), _flag(_quick(argv, str(folder)), "workdir"))
      else:
        first[_same_run(_quick(argv, ""))] = argv
        trains.append(argv)
    outputs = _run_side_by_side(trains, str(folder))
    stdout = {" ".join(a): out for a, out in zip(trains, outputs)}
    for argv in [main_job] + other:  # the repeated command's output is its first's
      if _trains(argv) and " ".join(argv) not in stdout:
        stdout[" ".join(argv)] = stdout[" ".join(first[_same_run(_quick(argv, ""))])]
    with open(os.path.join(folder, "stdout.json"), "w", encoding="utf-8") as f:
      json.dump(stdout, f)

  return str(build_once("readme_runs", build))


def _report(path):
  with open(os.path.join(path, "report.json"), encoding="utf-8") as f:
    return json.load(f)


@pytest.mark.slow
def test_readme_main_job_and_training_commands_run_from_a_fresh_clone(readme_runs):
  main_job, other = _readme_commands()
  with open(os.path.join(readme_runs, "stdout.json"), encoding="utf-8") as f:
    stdout = json.load(f)
  workdir = _flag(_quick(main_job, readme_runs), "workdir")
  assert f"report: {workdir}/report.md" in stdout[" ".join(main_job)]
  runs = os.path.join(readme_runs, "runs")
  for name in ("mnist_hybrid", "mnist_standard", "mnist_pgd_at"):
    assert 0.0 <= _report(os.path.join(runs, name))["clean_accuracy"] <= 1.0
  # the smoke run is the main job's command with another workdir: the same run
  (smoke,) = [
    a for a in other if _trains(a) and _same_run(_quick(a, "")) == _same_run(_quick(main_job, ""))
  ]
  assert os.path.exists(os.path.join(_flag(_quick(smoke, readme_runs), "workdir"), "report.md"))


@pytest.mark.slow
def test_readme_other_commands_run_top_to_bottom_from_a_fresh_clone(readme_runs):
  _, other = _readme_commands()
  reads = [a for a in other if not _trains(a)]  # evaluations and compare, after training
  outputs = dict(zip((" ".join(a) for a in reads), _run_side_by_side(reads, readme_runs)))
  tmp = readme_runs
  runs = os.path.join(tmp, "runs")
  for name in ("mnist_hybrid", "mnist_standard", "mnist_pgd_at"):
    assert 0.0 <= _report(os.path.join(runs, name))["clean_accuracy"] <= 1.0
  # evaluations are written beside the training report, under their own names
  report = _report(os.path.join(runs, "mnist_standard", "eval", "eps_0.3"))
  assert report["attacks"]["pgd"]["eps"] == pytest.approx(0.3)
  # training report kept
  assert _report(os.path.join(runs, "mnist_standard"))["attacks"]["pgd"]["eps"] == (
    pytest.approx(0.1)
  )
  evaluation = os.path.join(runs, "mnist_hybrid", "eval", "all_attacks")
  assert {"cw", "autoattack", "square"} <= set(_report(evaluation)["attacks"])
  (all_attacks,) = [out for a, out in outputs.items() if "--eval_name=all_attacks" in a]
  assert f"report: {evaluation}/report.md" in all_attacks
  assert os.listdir(os.path.join(runs, "compare"))
  assert os.path.exists(os.path.join(tmp, "smoke", "report.md"))


_QUICK_TABLE = "### Quick variants (checked by tests/test_readme.py)"


def _quick_table(readme_runs):
  """The lines of the "Quick variants" table that the README's training runs give."""
  main_job, other = _readme_commands()
  seen, lines = set(), []
  for argv in [main_job] + [a for a in other if _trains(a)]:
    config = os.path.basename(_flag(argv, "config").split(":")[0])[: -len(".py")]
    if config in seen:
      continue
    seen.add(config)
    report = _report(_flag(_quick(argv, readme_runs), "workdir"))
    attacks = [report["attacks"][k] for k in ("fgsm", "pgd")]
    if not lines:
      lines.append(
        "| config (`:quick`) | clean | "
        + " | ".join(f"{a['label'].split(' (')[0]} eps {a['eps']:g}" for a in attacks)
        + " |"
      )
      lines.append("|---" * (2 + len(attacks)) + "|")
    lines.append(
      f"| `{config}` | "
      + " | ".join(
        f"{v:.3f}" for v in [report["clean_accuracy"]] + [a["accuracy"] for a in attacks]
      )
      + " |"
    )
  return lines


@pytest.mark.slow
def test_readme_quick_table_matches_the_quick_runs(readme_runs, capsys):
  want = _quick_table(readme_runs)
  if os.environ.get("ADVJAX_PRINT_README_TABLE") == "1":
    with capsys.disabled():
      print("\n" + _QUICK_TABLE + " table rows:\n" + "\n".join(want))
  have = readme_table(_QUICK_TABLE)
  assert have[:2] == want[:2], "the table's columns are not the runs' attacks"
  have_rows = {table_cells(l)[0]: table_cells(l)[1:] for l in have[2:]}
  want_rows = {table_cells(l)[0]: table_cells(l)[1:] for l in want[2:]}
  assert sorted(have_rows) == sorted(want_rows)
  for config, values in want_rows.items():
    # the printed 3 decimals, +-0.001
    np.testing.assert_allclose(
      [float(v) for v in have_rows[config]],
      [float(v) for v in values],
      rtol=0,
      atol=0.001 + 1e-9,
      err_msg=f"README's Quick variants row {config} (regenerate: "
      f"ADVJAX_PRINT_README_TABLE=1, see this module)",
    )
