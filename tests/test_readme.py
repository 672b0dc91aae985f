"""The README's code runs as written: the Python snippet on a user's own Flax CNN, and the
"Other commands" top to bottom from a fresh clone (each config's `:quick` variant)."""
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _readme_section(title: str) -> str:
  with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
    text = f.read()
  start = text.index(title)
  nxt = text.find("\n## ", start + len(title))
  return text[start:nxt if nxt >= 0 else len(text)]


def _code_blocks(section: str, lang: str):
  return re.findall(rf"```{lang}\n(.*?)```", section, flags=re.S)


@pytest.fixture(scope="module")
def snippet():
  """The namespace left by the README's Python snippet."""
  (code,) = _code_blocks(_readme_section("## Using the pieces in your own code"), "python")
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
  attack = checked_jit(lambda k, x, y, e: attacks.pgd(k, snippet["logits_fn"], x, y, eps=e,
                                                      num_steps=2))
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
  np.testing.assert_array_equal(models.make_logits_fn(lenet, lv)(img),
                                lenet.apply(lv, img, train=False))
  with pytest.raises(ValueError, match="`model` must be a Flax linen module"):
    models.make_logits_fn(lambda z: z, {})


def _quick(argv, tmp):
  """A README command with each config's `:quick` variant and runs/ under `tmp`."""
  out = []
  for a in argv:
    if a.startswith("--config=") and a.endswith(".py"):
      a += ":quick"
    a = a.replace("runs/", os.path.join(tmp, "runs") + "/").replace("/tmp/smoke",
                                                                    os.path.join(tmp, "smoke"))
    out.append(a)
  return out


def _commands(block: str):
  lines = block.replace("\\\n", " ").splitlines()
  return [shlex.split(l) for l in lines if l.strip() and not l.strip().startswith("#")]


@pytest.mark.slow
def test_readme_commands_run_top_to_bottom_from_a_fresh_clone(tmp_path):
  main_job = _code_blocks(_readme_section("## Two commands"), "bash")[0]
  main_job = shlex.split(main_job.split("&&")[-1])
  other = _commands(_code_blocks(_readme_section("## Other commands"), "bash")[0])
  tmp = str(tmp_path)
  env = dict(os.environ, PYTHONPATH=ROOT)
  outputs = []
  for argv in [main_job] + other:
    assert argv[0] == "python", argv
    cmd = [sys.executable] + _quick(argv[1:], tmp)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1200, check=False)
    assert proc.returncode == 0, f"{' '.join(argv)}\n{proc.stderr[-3000:]}"
    outputs.append(proc.stdout)
  runs = os.path.join(tmp, "runs")
  for name in ("mnist_hybrid", "mnist_standard", "mnist_pgd_at"):
    with open(os.path.join(runs, name, "report.json"), encoding="utf-8") as f:
      assert 0.0 <= json.load(f)["clean_accuracy"] <= 1.0
  # evaluations are written beside the training report, under their own names
  with open(os.path.join(runs, "mnist_standard", "eval", "eps_0.3", "report.json"),
            encoding="utf-8") as f:
    assert json.load(f)["attacks"]["pgd"]["eps"] == pytest.approx(0.3)
  with open(os.path.join(runs, "mnist_standard", "report.json"), encoding="utf-8") as f:
    assert json.load(f)["attacks"]["pgd"]["eps"] == pytest.approx(0.1)  # training report kept
  evaluation = os.path.join(runs, "mnist_hybrid", "eval", "all_attacks")
  with open(os.path.join(evaluation, "report.json"), encoding="utf-8") as f:
    assert {"cw", "autoattack", "square"} <= set(json.load(f)["attacks"])
  assert f"report: {evaluation}/report.md" in outputs[4]
  assert os.listdir(os.path.join(runs, "compare"))
  assert os.path.exists(os.path.join(tmp, "smoke", "report.md"))
