"""The train step, schedules, config checks, determinism, resume, non-finite refusal."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from advjax import losses, models, train
from tests._inputs import QUICK, ROOT, quick_config, run_on_host_devices


def _batch(mnist, n=64):
  x, y = mnist["train"].get(np.arange(n))
  return jnp.asarray(x), jnp.asarray(y)


def _state_and_step(recipe, alpha, weight_decay=0.0, eps=0.1):
  model = models.get_model("lenet5", num_classes=10)
  tx = optax.sgd(0.1)
  state = train.create_train_state(
    model, tx, jax.random.PRNGKey(0), (28, 28, 1), alpha=alpha, eps=eps
  )
  attack = train.make_attack_fn("pgd", num_steps=3)
  step = train.make_train_step(
    model,
    tx,
    recipe=recipe,
    attack_fn=attack,
    eps_fn=train.eps_schedule("constant", eps, 0),
    weight_decay=weight_decay,
  )
  return state, step


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5])
def test_loss_is_alpha_weighted_clean_plus_adversarial(mnist, alpha):
  state, step = _state_and_step("adversarial", alpha)
  _, m = step(state, _batch(mnist))
  np.testing.assert_allclose(
    m["loss"], alpha * m["loss_clean"] + (1 - alpha) * m["loss_adv"], rtol=1e-6
  )
  assert m["loss_adv"] > m["loss_clean"]  # the attack is real
  assert float(m["alpha"]) == pytest.approx(alpha)


def test_alpha_one_equals_standard_training_and_weight_decay_adds_l2(mnist):
  batch = _batch(mnist)
  s_std, step_std = _state_and_step("standard", 1.0)
  s_adv, step_adv = _state_and_step("adversarial", 1.0)
  a, ma = step_std(s_std, batch)
  b, mb = step_adv(s_adv, batch)
  np.testing.assert_allclose(ma["loss"], mb["loss"], rtol=1e-6)
  for p, q in zip(jax.tree_util.tree_leaves(a.params), jax.tree_util.tree_leaves(b.params)):
    np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-7)
  s_wd, step_wd = _state_and_step("standard", 1.0, weight_decay=1e-3)
  l2 = train.l2_penalty(s_wd.params)
  _, mw = step_wd(s_wd, batch)
  np.testing.assert_allclose(mw["loss"], ma["loss"] + 1e-3 * l2, rtol=1e-5)


def test_adaptive_alpha_formula():
  np.testing.assert_allclose(losses.adaptive_alpha(0.3, 0.9), 0.25)
  np.testing.assert_allclose(losses.adaptive_alpha(0.0, 0.9), 0.0)
  np.testing.assert_allclose(losses.adaptive_alpha(0.0, 0.0), 0.5)


@pytest.mark.parametrize("kind", ["linear", "cosine", "step"])
def test_eps_schedules_grow_from_a_tenth_to_eps(kind):
  fn = train.eps_schedule(kind, 0.3, 100)
  vals = np.array([float(fn(s)) for s in range(0, 130, 5)])
  np.testing.assert_allclose(vals[0], 0.03, rtol=1e-6)
  np.testing.assert_allclose(vals[-1], 0.3, rtol=1e-6)
  assert np.all(np.diff(vals) >= -1e-7)
  np.testing.assert_allclose(float(train.eps_schedule("constant", 0.3, 100)(0)), 0.3)
  with pytest.raises(ValueError, match="eps_schedule"):
    train.eps_schedule("exp", 0.3, 10)


def test_cyclic_lr_is_wong_et_als_one_cycle():
  fn = train.lr_schedule("cyclic", 0.2, 100)
  # Wong et al. 2020: np.interp(t, [0, 2/5 T, T], [0, lr_max, 0])
  for t in (0, 10, 39, 40, 41, 70, 99, 100):
    np.testing.assert_allclose(
      float(fn(t)), np.interp(t, [0, 40, 100], [0, 0.2, 0]), rtol=1e-5, atol=1e-7
    )
  assert float(train.lr_schedule("cyclic", 0.2, 1)(0)) == 0.0  # one step: no crash
  with pytest.raises(ValueError, match="Unknown lr_schedule 'cycle'.*'cyclic'"):
    train.lr_schedule("cycle", 0.1, 10)


def test_config_errors_name_the_problem(tmp_path):
  c = quick_config()
  with c.unlocked():
    c.foo = 1
  with pytest.raises(ValueError, match="Unknown config key 'foo'"):
    train.validate_config(c)
  for key, value, match in [
    ("dataset", "mnist6k", "Unknown dataset 'mnist6k'"),
    ("model", "lenet6", "lenet6"),
    ("train_attack.eps", -0.1, "train_attack.eps must be >= 0"),
    ("recipe", "magic", "recipe"),
  ]:
    wd = tmp_path / key
    with pytest.raises(ValueError, match=match):
      train.train_and_evaluate(quick_config(**{key: value}), str(wd))
    assert not wd.exists()  # nothing half-written


def _run_cli(workdir, *extra, wait=True):
  cmd = [
    sys.executable,
    "-m",
    "experiments.main",
    "--config=experiments/configs/mnist_hybrid.py:quick",
    f"--workdir={workdir}",
    *QUICK,
    *extra,
  ]
  if not wait:
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
  return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)


def _final_params(workdir):
  ckpt = train.Checkpointer(os.path.join(workdir, "checkpoints"))
  run = train.Run(quick_config())
  state, _ = ckpt.restore(run.init_state())
  ckpt.close()
  return state


def _train_records(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    recs = [json.loads(l) for l in f]
  drop = ("examples_per_s", "epoch_time_s")
  return [{k: v for k, v in r.items() if k not in drop} for r in recs]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_parameters_and_same_seed_is_reproducible(tmp_path):
  # Two epochs: the kill lands in the second, after the first epoch's checkpoint. The
  # killed run starts from scratch with the same seed, so its records and report equal
  # the reference's only if a fresh run reproduces and the resume continues exactly.
  ref, killed = tmp_path / "ref", tmp_path / "killed"
  two = "--config.num_epochs=2"
  r = _run_cli(ref, two)
  assert r.returncode == 0, r.stdout + r.stderr
  assert "clean accuracy" in r.stdout
  for f in (
    "report.json",
    "report.md",
    "config.json",
    "metrics.jsonl",
    "figures/training_curves.png",
    "figures/gallery.png",
    "figures/accuracy_vs_eps.png",
  ):
    assert (ref / f).exists(), f
  # kill -9 after the first checkpoint, then start the same command again
  p = _run_cli(killed, two, wait=False)
  deadline = time.time() + 600
  while time.time() < deadline:
    ck = killed / "checkpoints"
    if ck.exists() and any(d.isdigit() for d in os.listdir(ck)):
      break
    time.sleep(0.2)
  p.send_signal(signal.SIGKILL)
  p.wait()
  assert not (killed / "report.json").exists()
  r = _run_cli(killed, two)
  assert r.returncode == 0, r.stdout + r.stderr
  a, b = _final_params(ref), _final_params(killed)
  assert int(a.step) == int(b.step) == 2 * 27
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
    np.testing.assert_array_equal(x, y)
  # same seed: identical metrics (every step and epoch) and report numbers
  assert _train_records(ref) == _train_records(killed)
  ja, jb = (json.load(open(d / "report.json")) for d in (ref, killed))
  assert ja["clean_accuracy"] == jb["clean_accuracy"]
  assert {k: v["accuracy"] for k, v in ja["attacks"].items()} == {
    k: v["accuracy"] for k, v in jb["attacks"].items()
  }
  # evaluation of the finished run from its checkpoint gives the same numbers
  r = _run_cli(ref, two, "--mode=eval")
  assert r.returncode == 0, r.stdout + r.stderr
  assert json.load(open(ref / "report.json"))["clean_accuracy"] == ja["clean_accuracy"]


def test_cli_rejects_unknown_config_key(tmp_path):
  r = _run_cli(tmp_path / "x", "--config.no_such_key=1")
  assert r.returncode != 0
  assert "no_such_key" in r.stderr + r.stdout
  assert not (tmp_path / "x").exists()


def test_non_finite_loss_keeps_the_last_good_checkpoint(quick_runs, tmp_path, monkeypatch):
  wd = str(tmp_path / "run")
  shutil.copytree(quick_runs["hyb"], wd)  # one finished epoch of quick_config (conftest)
  good = _final_params(wd)
  report = open(os.path.join(wd, "report.json")).read()

  from advjax.train import _step  # pylint: disable=import-outside-toplevel

  real = _step.make_train_step

  def poisoned(*args, **kwargs):
    step = real(*args, **kwargs)

    def bad(state, batch):
      state, m = step(state, batch)
      return state, dict(m, loss=m["loss"] * jnp.where(state.step > 30, jnp.nan, 1.0))

    return bad

  monkeypatch.setattr(_step, "make_train_step", poisoned)
  with pytest.raises(train.NonFiniteLossError, match="step 31"):
    train.train_and_evaluate(quick_config(num_epochs=2, name="hyb"), wd)
  after = _final_params(wd)
  assert int(after.step) == 27
  for x, y in zip(jax.tree_util.tree_leaves(good), jax.tree_util.tree_leaves(after)):
    np.testing.assert_array_equal(x, y)
  assert open(os.path.join(wd, "report.json")).read() == report


def test_workdir_of_another_config_is_refused(quick_runs, tmp_path):
  wd = str(tmp_path / "run")
  shutil.copytree(quick_runs["hyb"], wd)  # a finished run of quick_config (conftest)
  before = open(os.path.join(wd, "config.json")).read()
  with pytest.raises(ValueError, match="another config"):
    train.train_and_evaluate(quick_config(num_epochs=1, name="hyb", learning_rate=0.5), wd)
  assert open(os.path.join(wd, "config.json")).read() == before


_MULTI_DEVICE = r"""
import jax, numpy as np
from advjax import data, train
from tests._inputs import quick_config
# the hybrid recipe, and hybrid + NoisyMix (three views, manifold mixup, noise, JSD)
recipes = {"hybrid": {}, "hybrid+noisymix": {"noisymix.views": "augmix"}}
for recipe, overrides in recipes.items():
  out = {}
  for name, devices in (("one", jax.devices()[:1]), ("eight", jax.devices())):
    # SGD, not the config's Adam: Adam's first steps move each weight by about lr *
    # sign(gradient), so a gradient entry within round-off of zero (whose sign the 8-way
    # all-reduce may flip) moves a weight by up to 2 * lr; SGD keeps round-off round-off.
    run = train.Run(quick_config(optimizer="sgd", learning_rate=0.05, **overrides),
                    mesh=data.make_mesh(devices))
    state = run.init_state()
    losses = []
    for s, batch in data.iterate_train(run.splits["train"], 128, 0, 0, 3):
      state, m = run.train_step(state, data.shard_batch(batch, run.mesh))
      losses.append(float(m["loss"]))
    if overrides:
      assert float(m["loss_jsd"]) > 0, m
    out[name] = (losses, jax.device_get(state.params), run.validate(state))
    if name == "eight":
      assert len(state.params["Dense_0"]["kernel"].sharding.device_set) == 8
  l1, p1, v1 = out["one"]; l8, p8, v8 = out["eight"]
  # the 8-way all-reduce sums gradients in another order: equal to float32 round-off
  np.testing.assert_allclose(l1, l8, rtol=1e-5, atol=1e-6)
  for a, b in zip(jax.tree_util.tree_leaves(p1), jax.tree_util.tree_leaves(p8)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert v1 == v8, (recipe, v1, v8)
  print("OK", recipe, l1)
"""


def test_train_step_on_8_host_devices_matches_one_device():
  """Hybrid and hybrid + NoisyMix through the same train step, sharded over 8 host
  devices, give the losses and parameters of one device."""
  out = run_on_host_devices(_MULTI_DEVICE, n=8, timeout=1200)
  assert "OK hybrid " in out and "OK hybrid+noisymix" in out


def test_free_adversarial_training_replays_each_batch_m_times(mnist):
  """Free AT (Shafahi et al. 2019): m replays, one backward pass each, delta carried over."""
  model = models.get_model("lenet5", num_classes=10)
  tx = optax.adam(1e-3)
  x, y = _batch(mnist)
  state = train.create_train_state(
    model, tx, jax.random.PRNGKey(0), (28, 28, 1), alpha=0.0, eps=0.1, delta_batch=x.shape[0]
  )
  step = train.make_free_train_step(
    model, tx, replays=3, eps_fn=train.eps_schedule("constant", 0.1, 0)
  )
  params, opt_state, delta = state.params, state.opt_state, state.delta
  for _ in range(3):  # the definition, written out

    def ce(p, d):
      logits = model.apply({"params": p}, jnp.clip(x + d, 0, 1), train=True)
      return losses.cross_entropy(logits, y).mean()

    g_p, g_x = jax.grad(ce, argnums=(0, 1))(params, delta)
    updates, opt_state = tx.update(g_p, opt_state, params)
    params = optax.apply_updates(params, updates)
    delta = jnp.clip(delta + 0.1 * jnp.sign(g_x), -0.1, 0.1)
    delta = jnp.clip(x + delta, 0, 1) - x
  new, m = step(state, (x, y))
  assert int(m["replays"]) == 3 and int(new.step) == 1
  assert int(new.opt_state[0].count) == 3  # three optimizer updates for one batch
  for a, b in zip(jax.tree_util.tree_leaves(new.params), jax.tree_util.tree_leaves(params)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(new.delta, delta, atol=1e-6)
  assert float(jnp.abs(new.delta).max()) <= 0.1 + 1e-6 and float(jnp.abs(new.delta).max()) > 0
  assert float((x + new.delta).min()) >= -1e-6 and float((x + new.delta).max()) <= 1 + 1e-6
  with pytest.raises(ValueError, match="replays"):
    train.make_free_train_step(model, tx, replays=0, eps_fn=lambda s: 0.1)


def test_free_adversarial_training_runs_from_a_config(tmp_path):
  c = quick_config(
    num_epochs=1,
    recipe="adversarial",
    alpha=0.0,
    **{"train_attack.name": "free(replays=2)"},
  )
  r = train.train_and_evaluate(c, str(tmp_path / "free"))
  assert "m = 2 replays" in r["setup"]["train attack"]
  assert r["clean_accuracy"] > 0.5  # it learns
  with pytest.raises(ValueError, match="recipe='adversarial'"):
    train.validate_config(quick_config(**{"train_attack.name": "free"}))
