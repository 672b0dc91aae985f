"""The attack registry: one name per attack for training, evaluation and AutoAttack's
stages; every entry keeps the attack_fn contract; the registry's arithmetic is the
attacks' own (bit for bit)."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from advjax import attacks, train
from advjax import eval as ev

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
  # the step is `step_size * eps / step_size_eps`; a fraction of eps by default
  np.testing.assert_array_equal(
    run(attacks.build_attack("pgd", num_steps=3, step_size=0.3, num_restarts=2)),
    run(
      lambda k, f, x, y, e: attacks.pgd(
        k, f, x, y, eps=e, num_steps=3, step_size=0.3 * e, num_restarts=2
      )
    ),
  )
  np.testing.assert_array_equal(
    run(attacks.build_attack("pgd", num_steps=3, step_size=0.013, step_size_eps=0.09)),
    run(
      lambda k, f, x, y, e: attacks.pgd(k, f, x, y, eps=e, num_steps=3, step_size=0.013 * e / 0.09)
    ),
  )
  np.testing.assert_array_equal(
    run(attacks.build_attack("pgd", num_steps=4)),
    run(lambda k, f, x, y, e: attacks.pgd(k, f, x, y, eps=e, num_steps=4, step_size=(2.5 / 4) * e)),
  )
  np.testing.assert_array_equal(
    run(attacks.build_attack("fgsm_rs")),
    run(
      lambda k, f, x, y, e: attacks.fgsm(k, f, x, y, eps=e, random_start=True, step_size=1.25 * e)
    ),
  )
  np.testing.assert_array_equal(
    run(attacks.build_attack("fab_t", num_steps=3, num_target_classes=2)),
    run(
      lambda k, f, x, y, e: attacks.within_eps(
        attacks.fab_t(k, f, x, y, num_steps=3, num_target_classes=2), x, e
      )
    ),
  )
  np.testing.assert_array_equal(
    run(attacks.build_attack("apgd_dlr", num_steps=3)),
    run(lambda k, f, x, y, e: attacks.apgd(k, f, x, y, eps=e, num_steps=3, loss="dlr")),
  )
  # the training and evaluation builders are the registry's
  np.testing.assert_array_equal(
    run(train.make_attack_fn("pgd", num_steps=3, step_size_factor=0.3, num_restarts=2)),
    run(attacks.build_attack("pgd", num_steps=3, step_size=0.3, num_restarts=2)),
  )
  cfg = ev.default_eval_config()
  cfg.update(dict(eps=0.09, pgd_steps=3, pgd_step_size=0.013, pgd_restarts=1))
  np.testing.assert_array_equal(
    run(ev.make_eval_attack("pgd", cfg)),
    run(
      lambda k, f, x, y, e: attacks.pgd(k, f, x, y, eps=e, num_steps=3, step_size=0.013 * e / 0.09)
    ),
  )


def test_names_and_options_are_checked():
  with pytest.raises(ValueError, match=r"Unknown attack 'apgd-ce'.*'apgd_ce'"):
    attacks.build_attack("apgd-ce")
  with pytest.raises(ValueError, match=r"'fgsm' takes no option 'num_steps'.*\['norm'\]"):
    attacks.build_attack("fgsm", num_steps=3)
  # training: the config's options an attack does not take are ignored
  train.make_attack_fn("fgsm", num_steps=3)
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
