"""The composable train step: each recipe component changes the loss as
defined (JSD term, PASS mask, MaxUp maximum, hard positives, curriculum, fine-tuning)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from advjax import losses, models, train
from advjax.train import _views
from tests._inputs import quick_config

EPS = train.eps_schedule("constant", 0.1, 0)


def _batch(mnist, n=32):
  x, y = mnist["train"].get(np.arange(n))
  return jnp.asarray(x), jnp.asarray(y)


def _setup(alpha=0.5, **step_kwargs):
  model = models.get_model("lenet5", num_classes=10)
  tx = optax.sgd(0.05)
  state = train.create_train_state(
    model, tx, jax.random.PRNGKey(0), (28, 28, 1), alpha=alpha, eps=0.1
  )
  recipe = step_kwargs.pop("recipe", "adversarial")
  jitted = train.make_train_step(model, tx, recipe=recipe, eps_fn=EPS, **step_kwargs)
  # the step donates its state; keep ours to rebuild the step's keys and inputs
  step = lambda s, batch: jitted(jax.tree_util.tree_map(jnp.copy, s), batch)
  return model, state, step


def _keys(state):
  """The step's keys, as `make_train_step` derives them."""
  key = jax.random.fold_in(state.key, state.step)
  k_attack, k_clean, _ = jax.random.split(key, 3)
  return key, k_attack, k_clean


def test_noisymix_adds_the_jsd_term_weighted_12(mnist):
  x, y = _batch(mnist)
  # the JSD structure of AugMix (views of any augmentation; DiffAugment compiles fastest)
  spec = _views.NoisyMix(views="diffaugment", mixup_alpha=0.0, noise=False)
  model, state, step = _setup(recipe="standard", noisymix=spec)
  _, m = step(state, (x, y))
  # the definition, written out with the step's keys
  key, _, k_clean = _keys(state)
  k_aug, _ = jax.random.split(jax.random.fold_in(key, 1))
  x3 = _views.noisymix_inputs(k_aug, x, spec)
  assert x3.shape == (96, 28, 28, 1)
  np.testing.assert_array_equal(x3[:32], x)  # view 0 is the clean batch
  assert float(jnp.abs(x3[32:64] - x).mean()) > 0.01  # views 1, 2 are augmented
  logits = model.apply({"params": state.params}, x3, train=True, rngs={"dropout": k_clean})
  lc, l1, l2 = jnp.split(logits, 3)
  ce = losses.cross_entropy(lc, y).mean()
  jsd = losses.jsd_consistency(lc, l1, l2).mean()
  np.testing.assert_allclose(m["loss_ce"], ce, rtol=1e-5)
  np.testing.assert_allclose(m["loss_jsd"], jsd, rtol=1e-4)
  np.testing.assert_allclose(m["loss"], ce + 12.0 * jsd, rtol=1e-5)
  assert float(m["loss_jsd"]) > 1e-4
  # identical views: the JSD vanishes and the loss is plain cross-entropy
  _, s2, step2 = _setup(
    recipe="standard", noisymix=_views.NoisyMix(views="identity", mixup_alpha=0.0, noise=False)
  )
  _, m2 = step2(s2, (x, y))
  assert abs(float(m2["loss_jsd"])) < 1e-6
  _, s3, step3 = _setup(recipe="standard")
  _, m3 = step3(s3, (x, y))
  np.testing.assert_allclose(m2["loss"], m3["loss"], rtol=1e-5)


def test_noisymix_with_mixup_and_noise_trains_on_mixed_targets(mnist):
  x, y = _batch(mnist)
  spec = _views.NoisyMix(views="diffaugment")
  model, state, step = _setup(
    alpha=0.5, recipe="hybrid", noisymix=spec, attack_fn=train.make_attack_fn("fgsm")
  )
  new, m = step(state, (x, y))
  np.testing.assert_allclose(m["loss_clean"], m["loss_ce"] + 12 * m["loss_jsd"], rtol=1e-5)
  np.testing.assert_allclose(m["loss"], 0.5 * m["loss_clean"] + 0.5 * m["loss_adv"], rtol=1e-5)
  key, _, _ = _keys(state)
  _, k_hook = jax.random.split(jax.random.fold_in(key, 1))
  hook, targets = _views.noisymix_hook(k_hook, y, spec, 10)
  assert targets.shape == (32, 10)
  np.testing.assert_allclose(targets.sum(-1), 1.0, rtol=1e-6)
  assert float(targets.max(-1).min()) < 1.0  # mixed (lambda < 1 almost surely)
  h = jnp.ones((96, 4))
  outs = [hook(i, h) for i in (0, 1, 2)]
  assert sum(bool(jnp.any(o != h)) for o in outs) == 1  # noise at one block only
  assert all(np.isfinite(float(v)) for v in m.values())
  assert any(
    float(jnp.abs(a - b).max()) > 0
    for a, b in zip(jax.tree_util.tree_leaves(new.params), jax.tree_util.tree_leaves(state.params))
  )
  with pytest.raises(ValueError, match="views"):
    _views.NoisyMix(views="cutmix").check()


def test_pass_filter_gives_views_below_tau_no_weight(mnist):
  x, y = _batch(mnist, 16)
  logits = jax.random.normal(jax.random.PRNGKey(1), (16, 10)) * 3
  views = _views.Views(x, y, jnp.asarray([1.0, 0.0] * 8))
  loss, acc, kept = _views.view_loss(logits, views)
  ce = losses.cross_entropy(logits, y)
  np.testing.assert_allclose(loss, ce[::2].mean(), rtol=1e-6)  # dropped views count 0
  np.testing.assert_allclose(acc, losses.accuracy(logits, y)[::2].mean(), rtol=1e-6)
  assert float(kept) == 0.5
  # in the step: a source whose PASS filter keeps some and drops others
  src = _views.make_source("augmix", pass_tau=0.9, pass_iterations=10)
  model, state, step = _setup(source=src)
  _, m = step(state, (x, y))
  _, k_attack, _ = _keys(state)
  v = src(k_attack, models.make_logits_fn(model, state.variables()), x, y, 0.1)
  from advjax import metrics  # pylint: disable=import-outside-toplevel

  ps = metrics.pass_score(v.images, x, num_iterations=10)
  np.testing.assert_array_equal(v.weight, (ps >= 0.9).astype(jnp.float32))
  assert 0.0 < float(m["pass_kept"]) < 1.0, ps
  np.testing.assert_allclose(m["pass_kept"], v.weight.mean(), rtol=1e-6)
  with pytest.raises(ValueError, match="pass_tau"):
    _views.make_source("augmix", pass_tau=1.5)


def test_maxup_trains_on_the_worst_of_m_draws(mnist):
  x, y = _batch(mnist)
  src = _views.make_source("diffaugment(policy=('translation', 'cutout'))")
  model, state, step = _setup(source=src, maxup=3)
  _, m = step(state, (x, y))
  _, k_attack, _ = _keys(state)
  logits_fn = models.make_logits_fn(model, state.variables())
  ces = jnp.stack(
    [
      losses.cross_entropy(
        logits_fn(src(jax.random.fold_in(k_attack, j), logits_fn, x, y, 0.1).images), y
      )
      for j in range(3)
    ]
  )
  # train mode without dropout equals inference mode for LeNet-5: the worst copy's loss
  np.testing.assert_allclose(m["loss_adv"], ces.max(0).mean(), rtol=1e-5)
  assert float(ces.max(0).mean()) > float(ces.mean()) + 1e-4
  # gradient flows through the worst copy only
  views = _views.Views(jnp.zeros((6, 1)), jnp.zeros(6, jnp.int32))

  def loss_of(z):
    return _views.view_loss(z, views, m=2)[0]

  z = jnp.asarray([[0.0, 1.0], [2.0, 0.0], [0.0, 0.0], [0.0, 3.0], [1.0, 1.0], [0.0, 0.5]])
  g = jax.grad(loss_of)(z)
  # copy-major: example i is row i (copy 0) and row 3 + i (copy 1)
  ce = losses.cross_entropy(z, views.labels).reshape(2, 3)
  worst = np.argmax(np.asarray(ce), axis=0)
  for i in range(3):
    assert float(jnp.abs(g[worst[i] * 3 + i]).sum()) > 0
    assert float(jnp.abs(g[(1 - worst[i]) * 3 + i]).sum()) == 0


def test_hard_positive_source_uses_valid_scaled_minimal_adversarials(trained_lenet, mnist):
  model, variables, logits_fn = trained_lenet
  x, y = _batch(mnist, 8)
  src = _views.make_source("hard_positives(directions='HC-D-3', scale=1.05)")
  v = src(jax.random.PRNGKey(0), logits_fn, x, y, 0.1)
  assert v.images.shape == (24, 28, 28, 1) and v.labels.shape == (24,)
  np.testing.assert_array_equal(v.labels, jnp.repeat(y, 3))
  assert float(v.weight.mean()) > 0.8  # most directions reach the boundary
  valid = v.weight > 0
  # scaled past the boundary: almost all valid hard positives are misclassified
  pred = jnp.argmax(logits_fn(v.images), -1)
  assert float(jnp.mean((pred != v.labels)[valid])) > 0.9
  assert float(v.images.min()) >= 0.0 and float(v.images.max()) <= 1.0
  np.testing.assert_allclose(v.images * 255, jnp.round(v.images * 255), atol=1e-3)
  with pytest.raises(ValueError, match="generation type"):
    _views.make_source("hard_positives(directions='HC-X')")


def test_every_source_yields_images_in_range(trained_lenet, mnist):
  _, _, logits_fn = trained_lenet
  x, y = _batch(mnist, 8)
  for name in ("fgsm", "fgsm_rs", "pgd(num_steps=2)", "ace(num_steps=2)", "diffaugment", "augmix"):
    src = _views.make_source(name)
    v = src(jax.random.PRNGKey(0), logits_fn, x, y, 0.1)
    assert v.images.shape == x.shape and v.images.dtype == x.dtype, name
    assert float(v.images.min()) >= 0 and float(v.images.max()) <= 1 + 1e-6, name
    assert float(jnp.abs(v.images - x).max()) > 0, name
  with pytest.raises(ValueError, match="Unknown view source 'mixup'"):
    _views.make_source("mixup")
  with pytest.raises(
    ValueError, match=r"'ace' takes no option 'num_queries'; its options are \['num_steps'\]"
  ):
    _views.make_source("ace(num_queries=2)")
  with pytest.raises(ValueError, match="'pgd' takes no option 'severity'"):
    _views.make_source("pgd(severity=2)")
  with pytest.raises(ValueError, match="make_source"):
    train.make_attack_fn("augmix")


def test_curriculum_grows_pgd_steps_and_configs_validate():
  run = train.Run(
    quick_config(
      num_epochs=4,
      eps_warmup_epochs=3,
      **{"train_attack.name": "pgd(num_steps=7)", "train_attack.curriculum": "steps"},
    )
  )
  spe = run.steps_per_epoch
  assert [run.attack_steps_at(e * spe) for e in range(5)] == [1, 3, 5, 7, 7]
  assert run.train_step_at(0) is run.train_step_at(spe - 1)
  assert run.train_step_at(0) is not run.train_step_at(3 * spe)
  with pytest.raises(ValueError, match="curriculum"):
    train.validate_config(
      quick_config(**{"train_attack.curriculum": "steps", "train_attack.name": "fgsm"})
    )
  with pytest.raises(ValueError, match="noisymix.views"):
    train.validate_config(quick_config(**{"noisymix.views": "mixup"}))
  with pytest.raises(ValueError, match="blocks"):
    train.validate_config(
      quick_config(**{"noisymix.views": "augmix", "noisymix.blocks": ("a", "b")})
    )
  with pytest.raises(ValueError, match="pass_tau"):
    train.validate_config(quick_config(**{"train_attack.pass_tau": 2.0}))
  with pytest.raises(
    ValueError, match="config.train_attack.name: Unknown generation type 'HC-Q-2'"
  ):
    train.validate_config(
      quick_config(**{"train_attack.name": "hard_positives(directions='HC-Q-2')"})
    )
  with pytest.raises(ValueError, match="maxup"):
    train.validate_config(quick_config(**{"train_attack.maxup": 0}))


@pytest.mark.slow
def test_fine_tuning_starts_from_the_base_run_and_logs_pass_kept(quick_runs, tmp_path):
  base = quick_runs["std"]  # one epoch of clean training (conftest)
  _, base_state = train.load_run(base)
  ft = quick_config(
    num_epochs=1,
    recipe="adversarial",
    alpha=0.5,
    init_workdir=base,
    **{
      "train_attack.name": "hard_positives(directions='FGS')",
      "train_attack.pass_tau": 0.5,
      "train_attack.pass_iterations": 5,
    },
  )
  ft.eval.masking_checks = False
  run = train.Run(ft)
  for a, b in zip(
    jax.tree_util.tree_leaves(run.init_state().params), jax.tree_util.tree_leaves(base_state.params)
  ):
    np.testing.assert_array_equal(a, b)
  r = train.train_and_evaluate(ft, str(tmp_path / "ft"))
  assert 0.0 < r["train"]["pass_kept"] <= 1.0
  assert "hard positives FGS" in r["setup"]["train attack"]
  assert r["clean_accuracy"] > 0.8  # fine-tuned from a trained base
  other = quick_config(recipe="standard", init_workdir=str(tmp_path / "nothing"))
  with pytest.raises(ValueError, match="init_workdir"):  # before anything is written
    train.Run(other)


def test_skip_clean_is_the_alpha_zero_update(mnist):
  x, y = _batch(mnist)
  attack = train.make_attack_fn("fgsm_rs")
  _, s1, full = _setup(alpha=0.0, attack_fn=attack)
  _, s2, fast = _setup(alpha=0.0, attack_fn=attack, skip_clean=True)
  a, ma = full(s1, (x, y))
  b, mb = fast(s2, (x, y))
  np.testing.assert_allclose(ma["loss"], mb["loss"], rtol=1e-6)
  assert "loss_clean" not in mb
  for p, q in zip(jax.tree_util.tree_leaves(a.params), jax.tree_util.tree_leaves(b.params)):
    np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-7)
  with pytest.raises(ValueError, match="skip_clean"):
    _setup(recipe="standard", skip_clean=True)
