"""The attack registry: one name per attack for training, evaluation and AutoAttack's
stages; every entry keeps the attack_fn contract; the registry's arithmetic is the
attacks' own (bit for bit)."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from advjax import attacks, data, train
from advjax import eval as ev
from tests._inputs import quick_config, set_keys

K = 10
EPS = 0.1
SMALL = dict(num_steps=2, num_queries=10, binary_search_steps=1, num_target_classes=2)


@pytest.fixture(scope="module")
def setup():
  w = 0.2 * jax.random.normal(jax.random.key(0), (4 * 4 * 3, K))
  f = lambda x: x.reshape(x.shape[0], -1) @ w
  x = jax.random.uniform(jax.random.key(1), (4, 4, 4, 3))
  return f, x, jnp.argmax(f(x), -1)


def _small(name):
  if name == "cw":  # the constant starts at 1e-3: it needs a few binary search steps
    return dict(num_steps=10, binary_search_steps=5)
  return {k: v for k, v in SMALL.items() if k in attacks.get_attack(name).options}


@pytest.mark.parametrize("name", attacks.ATTACK_NAMES)
def test_every_attack_keeps_the_attack_fn_contract(setup, name):
  f, x, y = setup
  fn = jax.jit(attacks.build_attack(name, **_small(name)), static_argnums=1)
  x_adv = fn(jax.random.key(2), f, x, y, jnp.float32(EPS))
  assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
  assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
  if attacks.get_attack(name).bounded:
    assert float(jnp.max(jnp.abs(x_adv - x))) <= EPS + 1e-6
  assert float(jnp.max(jnp.abs(x_adv - x))) > 0  # every attack moves some point here


def test_registry_equals_the_attacks_bit_for_bit(setup):
  f, x, y = setup
  key, eps = jax.random.key(3), jnp.float32(0.07)
  run = lambda fn: np.asarray(jax.jit(fn, static_argnums=1)(key, f, x, y, eps))
  # the step is a fraction of eps, in the registry as in the attacks
  np.testing.assert_array_equal(
    run(attacks.build_attack("pgd", num_steps=3, step_size=0.3, num_restarts=2)),
    run(
      lambda k, f, x, y, e: attacks.pgd(
        k, f, x, y, eps=e, num_steps=3, step_size=0.3, num_restarts=2
      )
    ),
  )
  np.testing.assert_array_equal(  # the string form binds the same options
    run(attacks.build_attack("pgd(num_steps=3, step_size=0.3)", num_restarts=2)),
    run(attacks.build_attack("pgd", num_steps=3, step_size=0.3, num_restarts=2)),
  )
  np.testing.assert_array_equal(  # default 2.5 / num_steps, as a fraction or as a step
    run(attacks.build_attack("pgd", num_steps=4)),
    run(lambda k, f, x, y, e: attacks.pgd(k, f, x, y, eps=e, num_steps=4, step_size=2.5 / 4)),
  )
  np.testing.assert_array_equal(
    run(attacks.build_attack("fgsm_rs")),
    run(lambda k, f, x, y, e: attacks.fgsm(k, f, x, y, eps=e, random_start=True, step_size=1.25)),
  )
  np.testing.assert_array_equal(
    run(attacks.build_attack("fab_t", num_steps=3, num_target_classes=2)),
    run(
      lambda k, f, x, y, e: attacks.within_eps(
        attacks.fab_t(k, f, x, y, eps=e, num_steps=3, num_target_classes=2), x, e
      )
    ),
  )
  np.testing.assert_array_equal(
    run(attacks.build_attack("apgd_dlr", num_steps=3)),
    run(lambda k, f, x, y, e: attacks.apgd(k, f, x, y, eps=e, num_steps=3, loss="dlr")),
  )
  # the training and evaluation builders are the registry's
  np.testing.assert_array_equal(
    run(train.make_attack_fn("pgd(num_steps=3, step_size=0.3)", num_restarts=2)),
    run(attacks.build_attack("pgd", num_steps=3, step_size=0.3, num_restarts=2)),
  )
  cfg = ev.default_eval_config()
  cfg.eps = 0.09
  cfg.attack_options.pgd.update(num_steps=3, step_size=0.15)
  np.testing.assert_array_equal(
    run(ev.make_eval_attack("pgd", cfg)),
    run(lambda k, f, x, y, e: attacks.pgd(k, f, x, y, eps=e, num_steps=3, step_size=0.15)),
  )
  cfg.attacks = ("fgsm", "pgd(num_restarts=2)")  # the battery's string adds its options
  np.testing.assert_array_equal(
    run(ev.make_eval_attack("pgd", cfg)),
    run(attacks.build_attack("pgd", num_steps=3, step_size=0.15, num_restarts=2)),
  )
  assert ev.eval_attack("pgd", cfg) == "pgd(num_steps=3, step_size=0.15, num_restarts=2)"


def test_names_and_options_are_checked():
  with pytest.raises(ValueError, match=r"Unknown attack 'apgd-ce'.*'apgd_ce'"):
    attacks.build_attack("apgd-ce")
  with pytest.raises(ValueError, match=r"'fgsm' takes no option 'num_steps'.*\['norm', 'loss'"):
    attacks.build_attack("fgsm", num_steps=3)
  with pytest.raises(ValueError, match=r"'pgd' takes no option 'bogus'.*'num_steps'"):
    attacks.build_attack("pgd", bogus=1)
  with pytest.raises(ValueError, match=r"'pgd' takes no option 'bogus'"):
    attacks.build_attack("pgd(num_steps=2, bogus=1)")
  with pytest.raises(ValueError, match=r"option 'num_steps' is given twice"):
    attacks.build_attack("pgd(num_steps=2)", num_steps=3)
  for text in ("pgd(2)", "pgd(num_steps=n)", "pgd(", "pgd.x(num_steps=2)"):
    with pytest.raises(ValueError, match="name\\(option=value, ...\\)"):
      attacks.parse_attack(text)
  # training: an option the attack does not take is an error too
  with pytest.raises(ValueError, match=r"'fgsm' takes no option 'num_steps'"):
    train.make_attack_fn("fgsm", num_steps=3)
  with pytest.raises(ValueError, match=r"'trades'.*takes \['num_steps', 'step_size', 'norm'\]"):
    train.make_attack_fn("pgd(num_restarts=2)", objective="trades")
  with pytest.raises(ValueError, match="make_source"):
    train.make_attack_fn("augmix")
  with pytest.raises(ValueError, match="make_free_train_step"):
    train.make_attack_fn("free")
  with pytest.raises(ValueError, match="Unknown attack 'magic'"):
    train.make_attack_fn("magic")


def test_one_spelling_everywhere():
  names = set(attacks.ATTACK_NAMES)
  assert all("-" not in n for n in names)
  assert set(attacks.AUTOATTACK_STAGES) <= names
  assert set(attacks.STANDARD_ATTACKS) <= set(attacks.AUTOATTACK_STAGES)
  assert set(ev.ATTACKS) == names
  assert names <= set(train.TRAIN_ATTACKS)
  assert {"hard_positives", "ace", "diffaugment", "augmix", "free"} <= set(train.TRAIN_ATTACKS)
  for name in ("apgd_t", "square"):  # any registered attack is a training attack
    train.validate_config(
      ml_collections.ConfigDict({"recipe": "adversarial", "train_attack": {"name": name}})
    )
  with pytest.raises(ValueError, match="train_attack.name"):
    train.validate_config(ml_collections.ConfigDict({"train_attack": {"name": "apgd-ce"}}))
  # AutoAttack's stages are registry names; its result is keyed by them
  for name in attacks.AUTOATTACK_STAGES:
    assert attacks.get_attack(name).label


def test_autoattack_stages_use_the_registry_spelling(setup):
  f, x, y = setup
  res = attacks.autoattack(
    jax.random.key(4),
    f,
    x,
    y,
    eps=EPS,
    num_steps=2,
    num_queries=10,
    num_target_classes=2,
    attacks=("apgd_ce", "apgd_dlr", "fab"),
  )
  assert set(res.robust_accuracy) == {"clean", "apgd_ce", "apgd_dlr", "fab"}
  with pytest.raises(ValueError, match=r"apgd_ce"):
    attacks.autoattack(jax.random.key(4), f, x, y, eps=EPS, attacks=("apgd-ce",))


@pytest.fixture
def uniform_noise():
  """An attack added as one function: uniform noise of `scale * eps` per pixel."""

  @attacks.register("uniform_noise", label="uniform noise")
  def noise(key, logits_fn, images, labels, *, eps, scale=1.0, example_ids=None):
    del logits_fn, labels, example_ids
    d = jax.random.uniform(key, images.shape, images.dtype, -1.0, 1.0)
    return jnp.clip(images + scale * eps * d, 0.0, 1.0)

  yield noise
  attacks.unregister("uniform_noise")


def test_an_attack_added_as_one_function_runs_in_the_evaluation(uniform_noise, mnist):
  assert "uniform_noise" in attacks.attack_names()
  assert dict(attacks.get_attack("uniform_noise").options) == {"scale": 1.0}
  w = 0.05 * jax.random.normal(jax.random.key(0), (28 * 28, 10))
  logits_fn = lambda x: x.reshape(x.shape[0], -1) @ w
  c = ev.default_eval_config()
  c.attacks = ("fgsm", "uniform_noise(scale=0.5)")
  c.num_examples, c.eps_grid, c.masking_checks, c.gallery_size = 40, (0.1,), False, 0
  c.attack_options.pgd.num_steps = 1
  r = ev.evaluate(logits_fn, mnist["test"], c, progress=False)
  entry = r["attacks"]["uniform_noise"]
  assert entry["label"] == "uniform noise (scale=0.5)" and entry["kind"] == "bounded"
  assert entry["attack"] == "uniform_noise(scale=0.5)"
  assert r["attacks"]["fgsm"]["accuracy"] <= entry["accuracy"] <= r["clean_accuracy"]
  assert entry["median_linf"] is None or entry["median_linf"] <= 0.05 + 1e-6
  # the config names the attack and its options; the registry checks both
  cfg = ml_collections.ConfigDict({"eval": {"attacks": ("uniform_noise(scale=2.0)",)}})
  assert train.validate_config(cfg).eval.attacks == ("uniform_noise(scale=2.0)",)
  for bad in (
    {"attacks": ("uniform_noise(bogus=1)",)},
    {"attack_options": {"uniform_noise": {"bogus": 1}}},
  ):
    with pytest.raises(ValueError, match=r"'uniform_noise' takes no option 'bogus'.*\['scale'\]"):
      train.validate_config(ml_collections.ConfigDict({"eval": bad}))
  with pytest.raises(ValueError, match="already registered"):
    attacks.register("uniform_noise", label="again")(uniform_noise)
  with pytest.raises(ValueError, match="not an attack added by `register`"):
    attacks.unregister("pgd")


def test_labels_name_the_budget_and_strings_read_back():
  assert attacks.attack_label("pgd(num_steps=20, step_size=0.1)") == (
    "PGD-20 (step 0.1 eps, 1 restart, random start)"
  )
  assert attacks.attack_label("pgd", num_steps=4, num_restarts=5, norm="l2") == (
    "PGD-4 L2 (step 0.625 eps, 5 restarts, random start)"
  )
  assert attacks.attack_label("apgd_t(num_steps=10, num_target_classes=3)") == (
    "APGD-T-10 (3 target classes)"
  )
  assert attacks.attack_label("square(num_queries=100)") == "Square (100 queries)"
  assert attacks.attack_label("fgsm_rs(step_size=0.5)") == "FGSM-RS (step_size=0.5)"
  for name in attacks.ATTACK_NAMES:
    spec = attacks.get_attack(name)
    given = {k: v for k, v in list(spec.options.items())[:2]}
    text = attacks.format_attack(name, given)
    assert attacks.parse_attack(text) == (name, given)
    assert attacks.attack_options(text) == dict(spec.options)  # the defaults, given back


def test_an_attack_added_as_one_function_is_a_training_view(uniform_noise):
  c = quick_config(
    recipe="adversarial",
    alpha=0.5,
    batch_size=32,
    **{"train_attack.name": "uniform_noise(scale=0.5)"},
  )
  run = train.Run(train.validate_config(c))
  assert run.source_options == {"scale": 0.5}
  state = run.init_state()
  before = [np.asarray(a) for a in jax.tree_util.tree_leaves(state.params)]  # donated
  batch = next(iter(run.train_stream(0)))
  state, metrics = run.train_step_at(0)(state, data.shard_batch(batch, run.mesh))
  assert np.isfinite(float(metrics["loss"])) and int(state.step) == 1
  assert any(not np.allclose(a, b) for a, b in zip(before, jax.tree_util.tree_leaves(state.params)))
  with pytest.raises(ValueError, match="config.train_attack.name: attack 'uniform_noise' takes"):
    train.validate_config(set_keys(c, **{"train_attack.name": "uniform_noise(steps=2)"}))


def test_an_attack_added_as_one_function_is_a_custom_autoattack_stage(setup, uniform_noise):
  f, x, y = setup
  key, stage = jax.random.key(5), "uniform_noise(scale=0.5)"
  res = attacks.autoattack(key, f, x, y, eps=EPS, attacks=(stage, "apgd_ce"), num_steps=2)
  assert set(res.robust_accuracy) == {"clean", stage, "apgd_ce"}
  alone = attacks.autoattack_stage(key, f, x, y, stage=(stage, 1), index=0, eps=EPS)
  assert float(jnp.max(jnp.abs(alone - x))) <= 0.5 * EPS + 1e-6
  assert float(jnp.max(jnp.abs(alone - x))) > 0
  first = np.asarray(res.broken_by) == 0  # what the noise broke is the noise's image
  np.testing.assert_array_equal(np.asarray(res.images)[first], np.asarray(alone)[first])
  # per example: the same images in a smaller batch (its examples' identities kept)
  part = attacks.autoattack_stage(
    key, f, x[1:3], y[1:3], stage=(stage, 1), index=0, eps=EPS, example_ids=jnp.arange(1, 3)
  )
  np.testing.assert_array_equal(np.asarray(part), np.asarray(alone)[1:3])
  # through the registry too: AutoAttack with the new stage, in the evaluation's form
  fn = attacks.build_attack(f"autoattack(attacks=({stage!r}, 'apgd_ce'), num_steps=2)")
  np.testing.assert_array_equal(np.asarray(fn(key, f, x, y, EPS)), np.asarray(res.images))
  with pytest.raises(ValueError, match="'cw' cannot be a stage"):
    attacks.autoattack(key, f, x, y, eps=EPS, attacks=("cw",))
  with pytest.raises(ValueError, match="takes no `num_restarts`"):
    attacks.autoattack(key, f, x, y, eps=EPS, attacks=(("uniform_noise", 2),))
