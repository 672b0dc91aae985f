"""TRADES, MART and AWP: the losses, TRADES' attack, the train step and the config."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from advjax import attacks, data, losses, models, train
from tests._inputs import TINY_EPS, quick_config, run_on_host_devices, set_keys, tiny_train_setup

EPS = TINY_EPS


# --------------------------------------------------------------------------- #
# The losses against their formulas, on numbers checked by hand
# --------------------------------------------------------------------------- #
P_CLEAN = np.array([[0.5, 0.25, 0.25], [0.1, 0.6, 0.3]])
P_ADV = np.array([[0.25, 0.5, 0.25], [0.2, 0.2, 0.6]])
LABELS = np.array([0, 1])


def test_trades_kl_is_the_kl_of_the_softmaxes():
  got = losses.trades_kl(
    jnp.log(jnp.asarray(P_CLEAN, jnp.float32)), jnp.log(jnp.asarray(P_ADV, jnp.float32)) + 3.0
  )  # shift-invariant
  # by hand: 0.5 ln(0.5/0.25) + 0.25 ln(0.25/0.5) + 0 = 0.25 ln 2
  kl0 = 0.25 * math.log(2.0)
  kl1 = 0.1 * math.log(0.1 / 0.2) + 0.6 * math.log(0.6 / 0.2) + 0.3 * math.log(0.3 / 0.6)
  np.testing.assert_allclose(got, [kl0, kl1], rtol=1e-5)
  np.testing.assert_allclose(losses.trades_kl(jnp.ones((2, 3)), jnp.zeros((2, 3))), 0.0, atol=1e-7)
  with pytest.raises(ValueError, match="same shape"):
    losses.trades_kl(jnp.ones((2, 3)), jnp.ones((2, 4)))


def test_mart_loss_is_bce_plus_weighted_kl():
  lam = 6.0
  got = jax.jit(lambda a, b, y: losses.mart_loss(a, b, y, lam=lam))(
    jnp.log(jnp.asarray(P_CLEAN, jnp.float32)),
    jnp.log(jnp.asarray(P_ADV, jnp.float32)),
    jnp.asarray(LABELS),
  )
  # example 0, y = 0: -ln p_0(x') = ln 4; max_{k != 0} p_k(x') = 0.5; p_y(x) = 0.5
  e0 = (
    math.log(4.0)
    - math.log(1.0001 - 0.5 + 1e-12)
    + lam * (0.5 * math.log(0.5 / 0.25) + 0.25 * math.log(0.25 / 0.5)) * (1.0000001 - 0.5)
  )
  # example 1, y = 1: -ln 0.2; max_{k != 1} p_k(x') = 0.6; p_y(x) = 0.6
  kl1 = 0.1 * math.log(0.1 / 0.2) + 0.6 * math.log(0.6 / 0.2) + 0.3 * math.log(0.3 / 0.6)
  e1 = -math.log(0.2) - math.log(1.0001 - 0.6 + 1e-12) + lam * kl1 * (1.0000001 - 0.6)
  np.testing.assert_allclose(got, [e0, e1], rtol=1e-5)
  with pytest.raises(ValueError, match="labels"):
    losses.mart_loss(jnp.ones((2, 3)), jnp.ones((2, 3)), jnp.zeros((3,), jnp.int32))


# --------------------------------------------------------------------------- #
# TRADES' inner maximization
# --------------------------------------------------------------------------- #
def test_trades_attack_stays_in_the_ball_and_increases_the_kl():
  model, _, state, x, y = tiny_train_setup(n=16)
  logits_fn = models.make_logits_fn(model, state.variables())

  @jax.jit
  def run(key, x, y):
    res = attacks.trades_attack_with_info(key, logits_fn, x, y, eps=EPS, num_steps=10)
    kl = lambda z: losses.trades_kl(logits_fn(x), logits_fn(z))
    corner = jnp.clip(x + EPS * jnp.sign(jax.random.normal(jax.random.PRNGKey(9), x.shape)), 0, 1)
    # the KL at the attack, near the start, at a random corner of the ball
    return res, kl(res.images), kl(x + 0.001 * jnp.sign(res.images - x)), kl(corner)

  res, kl, start, rand = jax.device_get(run(jax.random.PRNGKey(3), x, y))
  d = res.images - np.asarray(x)
  assert np.abs(d).max() <= EPS + 1e-6 and np.abs(d).max() > 0.5 * EPS
  assert res.images.min() >= 0.0 and res.images.max() <= 1.0
  np.testing.assert_allclose(res.info.objective, kl, rtol=1e-5, atol=1e-7)
  assert np.all(kl > 100 * start)
  assert kl.mean() > 2 * rand.mean()
  # an example's result depends on its key and id only, not on the batch around it
  part = run(jax.random.PRNGKey(3), x[:5], y[:5])[0]
  np.testing.assert_allclose(part.images, res.images[:5], atol=1e-6)


# --------------------------------------------------------------------------- #
# The train step: the objectives' loss and AWP's update, computed independently
# --------------------------------------------------------------------------- #
def _by_hand_loss(model, objective, alpha, x, y, x_adv, beta=6.0):
  """The step's loss written out (clean branch: plain CE of x)."""

  def loss(params):
    f = lambda z: model.apply({"params": params}, z)
    lc, la = f(x), f(x_adv)
    ce_clean = optax.softmax_cross_entropy_with_integer_labels(lc, y).mean()
    pc, pa = jax.nn.softmax(lc), jax.nn.softmax(la)
    if objective == "ce":
      l_obj = optax.softmax_cross_entropy_with_integer_labels(la, y).mean()
    elif objective == "trades":
      kl = jnp.sum(pc * (jnp.log(pc) - jnp.log(pa)), axis=-1)
      l_obj = ce_clean + beta * kl.mean()
    else:
      py_adv = jnp.take_along_axis(pa, y[:, None], 1)[:, 0]
      other = jnp.max(jnp.where(jax.nn.one_hot(y, 3) > 0, -1.0, pa), axis=-1)
      py = jnp.take_along_axis(pc, y[:, None], 1)[:, 0]
      kl = jnp.sum(pc * (jnp.log(pc) - jnp.log(pa + 1e-12)), axis=-1)
      l_obj = jnp.mean(
        -jnp.log(py_adv) - jnp.log(1.0001 - other + 1e-12) + beta * kl * (1.0000001 - py)
      )
    return alpha * ce_clean + (1 - alpha) * l_obj

  return loss


def _step_views(state, model, attack, x, y):
  """The views the step generates (its key for the attack: the first of three)."""
  k_attack = jax.random.split(jax.random.fold_in(state.key, state.step), 3)[0]
  logits_fn = models.make_logits_fn(model, state.variables())
  return jax.jit(lambda k, x, y: attack(k, logits_fn, x, y, EPS))(k_attack, x, y)


@pytest.mark.parametrize("objective", ["trades", "mart"])
def test_step_loss_is_alpha_clean_plus_the_objective(objective):
  model, tx, state, x, y = tiny_train_setup()
  attack = train.make_attack_fn("pgd", num_steps=3, objective=objective)
  step = train.make_train_step(
    model, tx, recipe="adversarial", attack_fn=attack, eps_fn=lambda s: EPS, objective=objective
  )
  state = state.replace(alpha=jnp.float32(0.25))
  x_adv = _step_views(state, model, attack, x, y)
  want = jax.jit(_by_hand_loss(model, objective, 0.25, x, y, x_adv))(state.params)
  _, m = step(jax.tree_util.tree_map(jnp.copy, state), (x, y))
  np.testing.assert_allclose(m["loss"], want, rtol=1e-6)
  assert float(m["loss_kl"]) > 0


@pytest.mark.parametrize("objective", ["ce", "trades"])
def test_awp_applies_the_gradient_at_w_plus_v_to_w(objective):
  gamma = 0.02
  # SGD: the update is proportional to the gradient, so the one at w + v shows
  model, tx, state, x, y = tiny_train_setup(tx=optax.sgd(0.1, momentum=0.9))
  attack = train.make_attack_fn("pgd", num_steps=3, objective=objective)
  step = train.make_train_step(
    model,
    tx,
    recipe="adversarial",
    attack_fn=attack,
    eps_fn=lambda s: EPS,
    objective=objective,
    skip_clean=True,
    awp_gamma=gamma,
  )
  x_adv = _step_views(state, model, attack, x, y)
  loss = jax.jit(_by_hand_loss(model, objective, 0.0, x, y, x_adv))
  grad = jax.jit(jax.grad(loss))
  w = state.params
  g = grad(w)
  kernel, gk = w["Dense_0"]["kernel"], g["Dense_0"]["kernel"]
  v_kernel = gamma * np.linalg.norm(kernel) * gk / np.linalg.norm(gk)
  w_v = {"Dense_0": {"kernel": kernel + v_kernel, "bias": w["Dense_0"]["bias"]}}
  updates, _ = tx.update(grad(w_v), state.opt_state, w)
  want = optax.apply_updates(w, updates)
  new, m = step(jax.tree_util.tree_map(jnp.copy, state), (x, y))
  for a, b in zip(jax.tree_util.tree_leaves(new.params), jax.tree_util.tree_leaves(want)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(m["loss"], loss(w_v), rtol=1e-6)
  # the library's v is the same, and it matters: the update without AWP differs
  v = train.awp_perturbation(w, g, gamma)
  np.testing.assert_allclose(v["Dense_0"]["kernel"], v_kernel, rtol=1e-5, atol=1e-9)
  assert not np.any(np.asarray(v["Dense_0"]["bias"]))
  plain, _ = tx.update(g, state.opt_state, w)
  assert np.abs(np.asarray(plain["Dense_0"]["kernel"] - updates["Dense_0"]["kernel"])).max() > 1e-4


def test_step_and_attack_argument_errors():
  model, tx, _, _, _ = tiny_train_setup()
  with pytest.raises(ValueError, match="recipe 'adversarial' or 'hybrid'"):
    train.make_train_step(model, tx, recipe="standard", eps_fn=lambda s: EPS, objective="trades")
  with pytest.raises(ValueError, match="Unknown objective 'kl'"):
    train.make_attack_fn("pgd", objective="kl")
  with pytest.raises(ValueError, match="must be 'pgd'; got 'fgsm'"):
    train.make_attack_fn("fgsm", objective="trades")
  with pytest.raises(ValueError, match="awp_gamma"):
    train.make_train_step(
      model,
      tx,
      recipe="adversarial",
      eps_fn=lambda s: EPS,
      attack_fn=train.make_attack_fn("pgd"),
      awp_gamma=-1.0,
    )


# --------------------------------------------------------------------------- #
# The config
# --------------------------------------------------------------------------- #
def _config(**flat):
  return set_keys(train.default_config(), **flat)


@pytest.mark.parametrize(
  "flat, match",
  [
    ({"objective": "trades"}, "config.recipe='adversarial'"),
    ({"objective": "kl", "recipe": "adversarial"}, "config.objective: Unknown objective 'kl'"),
    (
      {"objective": "trades(lam=3.0)", "recipe": "adversarial"},
      r"config.objective: objective 'trades' takes no option 'lam'; its options are \['beta'\]",
    ),
    (
      {"objective": "trades", "recipe": "adversarial", "train_attack.name": "fgsm"},
      "the attack must be 'pgd'; got 'fgsm'",
    ),
    (
      {"objective": "trades", "recipe": "adversarial", "train_attack.name": "augmix"},
      "an attack of its own, not 'augmix'",
    ),
    (
      {"objective": "trades", "recipe": "adversarial", "train_attack.name": "pgd(num_restarts=2)"},
      "TRADES' PGD|trades_attack",
    ),
    (
      {"objective": "mart", "recipe": "adversarial", "train_attack.name": "free"},
      "free adversarial training",
    ),
    (
      {"awp_gamma": 0.01, "recipe": "adversarial", "train_attack.name": "free"},
      "config.awp_gamma > 0",
    ),
    ({"awp_gamma": -0.01}, "config.awp_gamma must be >= 0"),
    ({"objective": "trades(beta=-1.0)", "recipe": "adversarial"}, "`beta` must be a number >= 0"),
  ],
)
def test_config_errors_name_the_key(flat, match):
  with pytest.raises(ValueError, match=match):
    train.validate_config(_config(**flat))


def test_config_spelling_and_old_runs(tmp_path):
  c = train.validate_config(
    _config(
      objective="mart(beta=5.0)",
      recipe="hybrid",
      awp_gamma=5e-3,
      **{"noisymix.views": "augmix", "train_attack.pass_tau": 0.5, "eps_schedule": "linear"},
    )
  )
  assert train.parse_objective(c.objective) == ("mart", {"beta": 5.0})
  spelled = _config(objective="trades(beta=6.0)", recipe="adversarial")
  assert train.validate_config(spelled).objective == "trades"
  assert train.default_config().objective == "ce" and train.default_config().awp_gamma == 0
  # a run saved before these keys existed is the same run as the default config now
  saved = json.loads(train.default_config().to_json_best_effort())
  for k in ("objective", "awp_gamma"):
    del saved[k]
  saved.update(trades_beta=6.0, mart_lambda=6.0)  # the KL weights' keys, then
  (tmp_path / "config.json").write_text(json.dumps(saved))
  train._loop._check_same_config(  # pylint: disable=protected-access
    str(tmp_path), train.validate_config(train.default_config())
  )
  with pytest.raises(ValueError, match="another config"):
    train._loop._check_same_config(  # pylint: disable=protected-access
      str(tmp_path), train.validate_config(_config(recipe="adversarial", objective="mart"))
    )


# --------------------------------------------------------------------------- #
# Every objective, with and without AWP, sharded over 8 host devices
# --------------------------------------------------------------------------- #
_MULTI_DEVICE = r"""
import jax, jax.numpy as jnp, numpy as np
from advjax import data, train
from tests._inputs import TINY_EPS as EPS, tiny_train_setup
for objective in ("ce", "trades", "mart"):
  for gamma in (0.0, 0.01):
    out = {}
    for name, devices in (("one", jax.devices()[:1]), ("eight", jax.devices())):
      mesh = data.make_mesh(devices)
      model, tx, state, x, y = tiny_train_setup(n=16)
      attack = train.make_attack_fn("pgd", num_steps=2, objective=objective)
      step = train.make_train_step(model, tx, recipe="hybrid", attack_fn=attack,
                                   eps_fn=lambda s: EPS, objective=objective,
                                   awp_gamma=gamma, mesh=mesh)
      state = data.replicate(state, mesh)
      losses = []
      for i in range(2):
        batch = data.shard_batch((np.asarray(x) * (1 - 0.1 * i), np.asarray(y)), mesh)
        state, m = step(state, batch)
        losses.append(float(m["loss"]))
      out[name] = (losses, jax.device_get(state.params))
    (l1, p1), (l8, p8) = out["one"], out["eight"]
    np.testing.assert_allclose(l1, l8, rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree_util.tree_leaves(p1), jax.tree_util.tree_leaves(p8)):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    print("OK", objective, gamma, l1)
"""


@pytest.mark.slow
def test_objectives_on_8_host_devices_match_one_device():
  """ce / trades / mart, each with and without AWP, in the hybrid recipe: the step
  sharded over 8 host devices gives the losses and parameters of one device."""
  out = run_on_host_devices(_MULTI_DEVICE, n=8, timeout=600)
  assert out.count("OK ") == 6, out


# --------------------------------------------------------------------------- #
# An objective added as one part, trained with from a config
# --------------------------------------------------------------------------- #
@pytest.fixture
def logit_pairing():
  """Adversarial logit pairing (Kannan et al. 2018): the views' CE + weight * the mean
  squared distance between clean and adversarial logits; one part, one name."""

  @train.register_objective("logit_pairing")
  def pairing(*, weight: float = 0.5):
    def loss(logits_clean, labels, logits_views, views, maxup):
      del labels
      l_views, acc, _ = train.view_loss(logits_views, views, maxup)
      lc = train.clean_logits_of_views(logits_clean, logits_views.shape[0], maxup)
      pair = jnp.mean(jnp.sum(jnp.square(lc - logits_views), -1))
      return l_views + weight * pair, {"acc_adv": acc, "loss_pair": pair}

    return train.Objective(loss, uses_clean_logits=True)

  yield pairing
  train.unregister_objective("logit_pairing")


def test_an_objective_added_as_one_part_trains_from_a_config(logit_pairing):
  def one_step(objective):
    c = quick_config(recipe="adversarial", alpha=0.5, batch_size=32, objective=objective)
    run = train.Run(train.validate_config(c))
    state = run.init_state()
    batch = data.shard_batch(next(iter(run.train_stream(0))), run.mesh)
    return jax.device_get(run.train_step_at(0)(state, batch)[1])

  ce, w0, w2 = (
    one_step(o) for o in ("ce", "logit_pairing(weight=0.0)", "logit_pairing(weight=2.0)")
  )
  assert w2["loss_pair"] > 0 and np.isfinite(w2["loss"])
  # the same views and forwards: the part's loss is the views' CE plus weight * pairing
  np.testing.assert_allclose(w0["loss_adv"], ce["loss_adv"], rtol=1e-6)
  np.testing.assert_allclose(w2["loss_adv"], ce["loss_adv"] + 2.0 * w2["loss_pair"], rtol=1e-5)
  np.testing.assert_allclose(w2["loss"], 0.5 * w2["loss_clean"] + 0.5 * w2["loss_adv"], rtol=1e-5)
  with pytest.raises(ValueError, match=r"'logit_pairing' takes no option 'beta'.*\['weight'\]"):
    train.validate_config(set_keys(train.default_config(), objective="logit_pairing(beta=1.0)"))
