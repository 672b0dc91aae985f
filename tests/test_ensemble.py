"""Mean-softmax ensembles: the formula against a reference, jit/grad/attacks through
it, bad input, and an ensemble of two real runs evaluated end to end."""

import json
import os
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import attacks, models, train
from advjax import eval as ev
from experiments import ensemble as ensemble_cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SHAPE = (4, 6, 6, 1)
_K = 5


def _linear(seed, scale=1.0):
  """A tiny linear classifier `images [B, 6, 6, 1] -> logits [B, 5]`."""
  w = scale * jax.random.normal(jax.random.PRNGKey(seed), (int(np.prod(_SHAPE[1:])), _K))
  b = jax.random.normal(jax.random.PRNGKey(seed + 100), (_K,))
  return lambda x: x.reshape(x.shape[0], -1) @ w + b


def _images(seed=0):
  return jax.random.uniform(jax.random.PRNGKey(seed), _SHAPE)


def test_softmax_of_ensemble_is_the_mean_softmax():
  f1, f2, f3 = _linear(0), _linear(1, scale=3.0), _linear(2)
  x = _images()
  ens = ev.ensemble_logits_fn([f1, f2])
  out = ens(x)
  chex.assert_shape(out, (_SHAPE[0], _K))
  mean = (jax.nn.softmax(f1(x)) + jax.nn.softmax(f2(x))) / 2
  chex.assert_trees_all_close(jax.nn.softmax(out), mean, rtol=1e-5, atol=1e-7)
  chex.assert_trees_all_close(out, jnp.log(mean), rtol=1e-5, atol=1e-6)  # normalized
  # three members, and the vote is argmax of the mean probability
  mean3 = sum(jax.nn.softmax(f(x)) for f in (f1, f2, f3)) / 3
  out3 = ev.ensemble_logits_fn((f1, f2, f3))(x)
  chex.assert_trees_all_close(jnp.exp(out3), mean3, rtol=1e-5, atol=1e-7)
  np.testing.assert_array_equal(out3.argmax(-1), mean3.argmax(-1))
  # one member: its log_softmax
  chex.assert_trees_all_close(
    ev.ensemble_logits_fn([f1])(x), jax.nn.log_softmax(f1(x)), rtol=1e-6, atol=1e-6
  )


def test_ensemble_is_stable_for_huge_logits():
  big = lambda x: 1e4 * _linear(0)(x)
  out = ev.ensemble_logits_fn([big, _linear(1)])(_images())
  assert np.all(np.isfinite(out))
  # the confident member contributes ~1/2 of its argmax class
  p = np.asarray(jax.nn.softmax(out))
  top = np.asarray(big(_images()).argmax(-1))
  assert np.all(p[np.arange(_SHAPE[0]), top] >= 0.5 - 1e-6)


def test_ensemble_under_jit_grad_vmap_and_an_attack():
  f1, f2 = _linear(0), _linear(1)
  ens = ev.ensemble_logits_fn([f1, f2])
  x = _images()
  chex.assert_trees_all_close(jax.jit(ens)(x), ens(x), rtol=1e-5, atol=1e-6)
  chex.assert_trees_all_close(
    jax.vmap(lambda xi: ens(xi[None])[0])(x), ens(x), rtol=1e-5, atol=1e-6
  )
  # the gradient of the mean probability of class 0 is the mean of the members'
  g = jax.grad(lambda z: jnp.exp(ens(z))[:, 0].sum())(x)
  g_ref = jax.grad(lambda z: (jax.nn.softmax(f1(z))[:, 0] + jax.nn.softmax(f2(z))[:, 0]).sum() / 2)(
    x
  )
  chex.assert_trees_all_close(g, g_ref, rtol=1e-4, atol=1e-7)
  assert float(jnp.abs(g).max()) > 0
  # FGSM white-box on the ensemble: in the ball, and it raises the ensemble's loss
  labels = ens(x).argmax(-1)
  adv = jax.jit(lambda k, z, y: attacks.fgsm(k, ens, z, y, eps=0.1))(
    jax.random.PRNGKey(0), x, labels
  )
  chex.assert_shape(adv, x.shape)
  assert float(jnp.abs(adv - x).max()) <= 0.1 + 1e-6
  nll = lambda z: -ens(z)[jnp.arange(len(labels)), labels].mean()
  assert float(nll(adv)) > float(nll(x))


@pytest.mark.parametrize(
  "bad,match",
  [
    ([], "logits_fns"),
    ((), "logits_fns"),
    (None, "logits_fns"),
    (lambda x: x, "logits_fns"),
    ("fn", "logits_fns"),
    ([_linear(0), 3], r"logits_fns\[1\]"),
  ],
)
def test_bad_members_raise_value_error(bad, match):
  with pytest.raises(ValueError, match=match):
    ev.ensemble_logits_fn(bad)


def test_members_with_different_class_counts_raise():
  ens = ev.ensemble_logits_fn([_linear(0), lambda x: jnp.zeros((x.shape[0], 3))])
  with pytest.raises(ValueError, match="logits_fns"):
    ens(_images())


def _tiny_config(name, seed, learning_rate):
  c = train.default_config()
  c.name, c.seed, c.learning_rate = name, seed, learning_rate
  c.num_epochs, c.progress, c.checkpoint_every_epochs = 1, False, 1
  c.eval.attacks, c.eval.eps, c.eval.eps_grid = ("fgsm",), 0.1, (0.1,)
  c.eval.attack_options.pgd.update(num_steps=2, step_size=0.5)  # the eps grid runs PGD
  c.eval.num_examples, c.eval.batch_size = 200, 200
  c.eval.masking_checks, c.eval.gallery_size = False, 0
  return c


@pytest.fixture(scope="module")
def two_members(tmp_path_factory):
  base = tmp_path_factory.mktemp("members")
  dirs = []
  for name, seed, lr in (("a", 0, 3e-3), ("b", 1, 2e-3)):
    wd = str(base / name)
    train.train_and_evaluate(_tiny_config(name, seed, lr), wd)
    dirs.append(wd)
  return dirs


@pytest.mark.slow
def test_ensemble_of_two_real_runs_writes_a_valid_report(two_members, tmp_path, monkeypatch):
  loaded = {}
  real_load_run = train.load_run

  def recording_load_run(wd, mesh=None):
    loaded[wd] = real_load_run(wd, mesh)
    return loaded[wd]

  monkeypatch.setattr(train, "load_run", recording_load_run)
  out = str(tmp_path / "ens")
  report = ensemble_cli.evaluate_ensemble(
    two_members, out, name="ens", eval_overrides={"attacks": ("fgsm", "pgd")}, progress=False
  )
  on_disk = json.load(open(os.path.join(out, "report.json")))
  ev.validate_report(on_disk)
  assert on_disk == json.loads(json.dumps(report))
  assert report["name"] == "ens" and report["num_test_examples"] == 200
  assert set(report["attacks"]) == {"fgsm", "pgd"}  # the override took effect
  assert report["setup"]["ensemble of"] == two_members and report["setup"]["members"] == 2
  assert [m["workdir"] for m in report["members"]] == two_members
  member_acc = [m["clean_accuracy"] for m in report["members"]]
  for wd, acc in zip(two_members, member_acc):
    assert acc == json.load(open(os.path.join(wd, "report.json")))["clean_accuracy"]
  assert min(member_acc) > 0.5  # the members learned
  # the same 200 test images as the members' reports: the ensemble is no worse than
  # its worst member, and the report scores exactly the mean-softmax ensemble
  assert report["clean_accuracy"] >= min(member_acc) - 0.02
  x, y = loaded[two_members[0]][0].splits["test"].get(np.arange(200))
  fns = [
    models.make_logits_fn(r.model, s.variables()) for r, s in (loaded[wd] for wd in two_members)
  ]
  for fn, acc in zip(fns, member_acc):
    assert float((np.asarray(fn(jnp.asarray(x))).argmax(-1) == y).mean()) == pytest.approx(acc)
  ens_pred = np.asarray(ev.ensemble_logits_fn(fns)(jnp.asarray(x))).argmax(-1)
  assert float((ens_pred == y).mean()) == pytest.approx(report["clean_accuracy"])
  for a in ("fgsm", "pgd"):  # white-box attacks through both members bite
    assert report["attacks"][a]["accuracy"] < report["clean_accuracy"]
  assert "ensemble of" in open(os.path.join(out, "report.md")).read()
  assert os.path.getsize(os.path.join(out, "figures", "accuracy_vs_eps.png")) > 1000

  # members whose test sets differ (the second one's labels rolled)
  def load_with_other_labels(wd, mesh=None):
    run, state = real_load_run(wd, mesh)
    if wd == two_members[1]:
      t = run.splits["test"]
      run.splits = dict(
        run.splits, test=type(t)(t.images, np.roll(t.labels, 1), t.num_classes, t.name)
      )
    return run, state

  monkeypatch.setattr(train, "load_run", load_with_other_labels)
  with pytest.raises(ValueError, match="differ in test set"):
    ensemble_cli.evaluate_ensemble(two_members, str(tmp_path / "e1"), progress=False)
  # bad arguments fail before any checkpoint is restored
  for bad, kwargs, match in [
    ([], {}, "workdirs"),
    (two_members[:1] * 2, {}, "twice"),
    (two_members, {"output": two_members[1]}, "member's workdir"),
    (two_members, {"eval_overrides": {"nope": 1}}, "eval_overrides"),
  ]:
    with pytest.raises(ValueError, match=match):
      ensemble_cli.evaluate_ensemble(
        bad, kwargs.pop("output", str(tmp_path / "e1")), progress=False, **kwargs
      )
  assert not os.path.exists(tmp_path / "e1" / "report.json")
  # the CLI: a clean error message and exit status 1
  r = subprocess.run(
    [
      sys.executable,
      "-m",
      "experiments.ensemble",
      f"--workdirs={tmp_path / 'missing'},{two_members[0]}",
      f"--output={tmp_path / 'e2'}",
      "--noprogress",
    ],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert r.returncode == 1, r.stderr[-2000:]
  assert r.stderr.startswith("error: ") and "no config.json" in r.stderr
  assert not os.path.exists(tmp_path / "e2")
