"""Contracts every attack keeps (issue 3), on a tiny random CNN and a linear model.

Each attack is run with small budgets so that the whole file stays fast; the
strength of the attacks on a trained LeNet is in test_attacks_strength.py.
"""

import functools
import inspect
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import attacks
from advjax.attacks import _apgd, _square

B, H, W, C, K = 6, 10, 10, 1, 5
EPS = 0.1


def _tiny_cnn(seed=0, num_classes=K, channels=C):
  """A fixed random conv net [B, H, W, C] -> [B, num_classes]."""
  k1, k2 = jax.random.split(jax.random.key(seed))
  w1 = jax.random.normal(k1, (3, 3, channels, 4)) * 0.5
  w2 = jax.random.normal(k2, (H * W * 4, num_classes)) * 0.1

  def logits_fn(x):
    h = jax.lax.conv_general_dilated(
      x - 0.5, w1, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    return jnp.tanh(h).reshape(x.shape[0], -1) @ w2 * 4.0

  return logits_fn


@pytest.fixture(scope="module")
def setup():
  f = _tiny_cnn()
  x = jax.random.uniform(jax.random.key(1), (B, H, W, C))
  y = jnp.argmax(f(x), -1).astype(jnp.int32)  # clean-correct, so attacks have work
  return f, x, y


def _info(out):
  """(success, zero_grad) of an `AttackResult`, `MinNormResult` or `AutoAttackResult`."""
  info = out.info if isinstance(out, attacks.AttackResult) else out
  return info.success, info.zero_grad


AA_KW = dict(num_steps=4, num_target_classes=2, num_queries=10)
CW_KW = dict(binary_search_steps=2, num_steps=8, learning_rate=0.1)

# name -> (attack(key, logits_fn, images, labels, eps) -> a result with `.images`, norm).
ATTACKS = {
  "fgsm": (lambda k, f, x, y, e: attacks.fgsm_with_info(k, f, x, y, eps=e), "linf"),
  "fgsm_rs": (
    lambda k, f, x, y, e: attacks.fgsm_with_info(k, f, x, y, eps=e, random_start=True),
    "linf",
  ),
  "fgv": (lambda k, f, x, y, e: attacks.fgv_with_info(k, f, x, y, eps=e), "linf"),
  "fgv_l2": (lambda k, f, x, y, e: attacks.fgv_with_info(k, f, x, y, eps=e * 5, norm="l2"), "l2"),
  "pgd": (
    lambda k, f, x, y, e: attacks.pgd_with_info(k, f, x, y, eps=e, num_steps=3, num_restarts=2),
    "linf",
  ),
  "pgd_l2": (
    lambda k, f, x, y, e: attacks.pgd_with_info(
      k, f, x, y, eps=e * 5, norm="l2", num_steps=3, loss="dlr"
    ),
    "l2",
  ),
  "apgd": (
    lambda k, f, x, y, e: attacks.apgd_with_info(k, f, x, y, eps=e, num_steps=5, num_restarts=2),
    "linf",
  ),
  "apgd_l2": (
    lambda k, f, x, y, e: attacks.apgd_with_info(
      k, f, x, y, eps=e * 5, norm="l2", num_steps=5, loss="dlr"
    ),
    "l2",
  ),
  "apgd_t": (
    lambda k, f, x, y, e: attacks.apgd_t_with_info(
      k, f, x, y, eps=e, num_steps=4, num_target_classes=2
    ),
    "linf",
  ),
  "square": (
    lambda k, f, x, y, e: attacks.square_with_info(k, f, x, y, eps=e, num_queries=20),
    "linf",
  ),
  "square_l2": (
    lambda k, f, x, y, e: attacks.square_with_info(
      k, f, x, y, eps=e * 5, norm="l2", num_queries=20
    ),
    "l2",
  ),
  "autoattack": (lambda k, f, x, y, e: attacks.autoattack(k, f, x, y, eps=e, **AA_KW), "linf"),
  "cw_l2": (lambda k, f, x, y, e: attacks.cw_l2(k, f, x, y, **CW_KW), None),
  "fab": (lambda k, f, x, y, e: attacks.fab(k, f, x, y, num_steps=10), None),
  "fab_t_l2": (
    lambda k, f, x, y, e: attacks.fab_t(
      k, f, x, y, norm="l2", num_steps=10, num_target_classes=2, num_restarts=2, eps=e * 5
    ),
    None,
  ),
}
MIN_NORM = ("cw_l2", "fab", "fab_t_l2")
RADIUS_SCALE = {"linf": 1.0, "l2": 5.0}


def _radius(name, eps):
  return eps * RADIUS_SCALE[ATTACKS[name][1]]


def _dist(a, b, norm):
  d = np.asarray(a - b).reshape(a.shape[0], -1)
  return np.abs(d).max(-1) if norm == "linf" else np.sqrt((d**2).sum(-1))


@pytest.mark.parametrize("name", list(ATTACKS))
def test_contract(setup, name):
  """Finite, same shape and dtype, in the ball and [0, 1]; success mask equals
  re-prediction; no zero-gradient flag on a normal model; the user's jit (images
  as arguments or closed over, eps traced, scalar or per example) gives the eager
  result; same key, same result; eps = 0 changes nothing."""
  f, x, y = setup
  attack, norm = ATTACKS[name]
  key = jax.random.key(3)
  result = attack(key, f, x, y, EPS)
  out = result.images
  assert out.shape == x.shape and out.dtype == x.dtype
  assert np.all(np.isfinite(out))
  assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
  if norm is not None:
    assert np.all(_dist(out, x, norm) <= _radius(name, EPS) + 1e-6)
  assert not np.array_equal(out, x), "the attack did not move any example"
  success, zero_grad = _info(result)
  np.testing.assert_array_equal(success, jnp.argmax(f(out), -1) != y)
  assert not np.any(zero_grad)
  if norm is not None:
    jitted = jax.jit(lambda k, x, y, e: attack(k, f, x, y, e).images)
    traced = jitted(key, x, y, jnp.full((B,), EPS, jnp.float32))
    np.testing.assert_array_equal(jitted(key, x, y, jnp.zeros((B,), jnp.float32)), x)
  else:
    jitted = jax.jit(lambda k, x, y: attack(k, f, x, y, EPS).images)
    traced = jitted(key, x, y)
  np.testing.assert_allclose(traced, out, atol=1e-5)
  eps = [jnp.full((B,), EPS, jnp.float32)] if norm else []
  np.testing.assert_array_equal(jitted(key, x, y, *eps), traced)  # same key, same result
  closed = jax.jit(lambda k: attack(k, f, x, y, EPS).images)(key)
  np.testing.assert_allclose(closed, out, atol=1e-5)


def test_random_attacks_depend_on_key(setup):
  f, x, y = setup
  for name in ["pgd", "apgd", "square", "fgsm_rs"]:
    attack = jax.jit(lambda k, attack=ATTACKS[name][0]: attack(k, f, x, y, EPS).images)
    a, b = attack(jax.random.key(0)), attack(jax.random.key(1))
    assert not np.array_equal(a, b), name


BOUNDED = ("fgsm", "fgv", "pgd", "apgd", "apgd_t", "square")


def test_every_attack_has_key_first_and_keyword_only_options():
  for fn in [getattr(attacks, n) for n in BOUNDED + tuple(n + "_with_info" for n in BOUNDED)] + [
    attacks.cw_l2,
    attacks.fab,
    attacks.fab_t,
    attacks.autoattack,
  ]:
    params = list(inspect.signature(fn).parameters.values())
    assert [p.name for p in params[:4]] == ["key", "logits_fn", "images", "labels"]
    assert all(p.kind == p.KEYWORD_ONLY for p in params[4:]), fn.__name__


def test_one_return_type_per_attack(setup):
  """No option changes what an attack returns: `X` returns the images of
  `X_with_info`, an `AttackResult`; no attack takes a `return_info` flag."""
  f, x, y = setup
  key = jax.random.key(5)
  for name in BOUNDED:
    plain, with_info = getattr(attacks, name), getattr(attacks, name + "_with_info")
    assert "return_info" not in inspect.signature(with_info).parameters
    assert inspect.signature(plain).parameters == inspect.signature(with_info).parameters
    kw = (
      {"num_queries": 5}
      if name == "square"
      else ({"num_steps": 2} if name in ("pgd", "apgd", "apgd_t") else {})
    )
    out, res = jax.jit(
      lambda k, x, y: (
        plain(k, f, x, y, eps=EPS, **kw),  # pylint: disable=cell-var-from-loop
        with_info(k, f, x, y, eps=EPS, **kw),
      )
    )(key, x, y)
    assert isinstance(res, attacks.AttackResult), name
    assert isinstance(res.info, attacks.AttackInfo), name
    assert isinstance(out, jax.Array), name
    np.testing.assert_array_equal(out, res.images, err_msg=name)


# --------------------------------------------------------------------------- #
# Bad input raises ValueError naming the argument
# --------------------------------------------------------------------------- #
EPS_ATTACKS = {
  "fgsm": attacks.fgsm,
  "fgv": attacks.fgv,
  "pgd": functools.partial(attacks.pgd, num_steps=2),
  "apgd": functools.partial(attacks.apgd, num_steps=2),
  "apgd_t": functools.partial(attacks.apgd_t, num_steps=2, num_target_classes=2),
  "square": functools.partial(attacks.square, num_queries=3),
  "autoattack": functools.partial(
    attacks.autoattack, num_steps=2, num_queries=3, num_target_classes=2
  ),
}


@pytest.mark.parametrize("name", list(EPS_ATTACKS))
def test_bad_input_names_the_argument(setup, name):
  f, x, y = setup
  fn = EPS_ATTACKS[name]
  key = jax.random.key(0)
  with pytest.raises(ValueError, match="norm"):
    fn(key, f, x, y, eps=EPS, norm="l3")
  with pytest.raises(ValueError, match="eps"):
    fn(key, f, x, y, eps=-0.1)
  with pytest.raises(ValueError, match="eps"):
    fn(key, f, x, y, eps=jnp.full((B,), -0.1))
  with pytest.raises(ValueError, match="images"):
    fn(key, f, x + 1.5, y, eps=EPS)
  with pytest.raises(ValueError, match="images"):
    fn(key, f, (x * 255).astype(jnp.uint8), y, eps=EPS)
  with pytest.raises(ValueError, match="images"):
    fn(key, f, x[0], y, eps=EPS)
  with pytest.raises(ValueError, match="labels"):
    fn(key, f, x, y.at[0].set(K), eps=EPS)
  with pytest.raises(ValueError, match="labels"):
    fn(key, f, x, y[:-1], eps=EPS)
  with pytest.raises(ValueError, match="labels"):
    fn(key, f, x, y.astype(jnp.float32), eps=EPS)


def test_bad_options_name_the_argument(setup):
  f, x, y = setup
  key = jax.random.key(0)
  for fn in [attacks.fgsm, attacks.fgv, attacks.pgd, attacks.apgd, attacks.square]:
    with pytest.raises(ValueError, match="loss"):
      fn(key, f, x, y, eps=EPS, loss="hinge")
  for fn in [attacks.pgd, attacks.apgd, attacks.apgd_t, attacks.autoattack]:
    with pytest.raises(ValueError, match="num_steps"):
      fn(key, f, x, y, eps=EPS, num_steps=0)
  with pytest.raises(ValueError, match="num_steps"):
    attacks.cw_l2(key, f, x, y, num_steps=0)
  with pytest.raises(ValueError, match="binary_search_steps"):
    attacks.cw_l2(key, f, x, y, binary_search_steps=0)
  with pytest.raises(ValueError, match="images"):
    attacks.cw_l2(key, f, x - 0.5, y)
  with pytest.raises(ValueError, match="targets"):
    attacks.cw_l2(key, f, x, y, targeted=True)
  with pytest.raises(ValueError, match="num_queries"):
    attacks.square(key, f, x, y, eps=EPS, num_queries=0)
  with pytest.raises(ValueError, match="num_restarts"):
    attacks.apgd(key, f, x, y, eps=EPS, num_restarts=0)
  with pytest.raises(ValueError, match="targets"):
    attacks.apgd(key, f, x, y, eps=EPS, targeted=True)
  with pytest.raises(ValueError, match="targets"):
    attacks.pgd(key, f, x, y, eps=EPS, targeted=True, targets=y.at[0].set(K))
  with pytest.raises(ValueError, match="attack"):
    attacks.autoattack(key, f, x, y, eps=EPS, attacks=("apgd_ce", "fab-t"))
  with pytest.raises(ValueError, match="num_steps"):
    attacks.fab(key, f, x, y, num_steps=0)
  with pytest.raises(ValueError, match="norm"):
    attacks.fab(key, f, x, y, norm="l1")
  with pytest.raises(ValueError, match="eps"):
    attacks.fab(key, f, x, y, num_restarts=2)
  with pytest.raises(ValueError, match="eps"):
    attacks.fab_t(key, f, x, y, num_restarts=2, eps=-0.1)
  with pytest.raises(ValueError, match="alpha_max"):
    attacks.fab(key, f, x, y, alpha_max=1.5)
  with pytest.raises(ValueError, match="images"):
    attacks.fab(key, f, x[0], y)
  with pytest.raises(ValueError, match="labels"):
    attacks.fab_t(key, f, x, y.at[0].set(K))
  three = lambda z: f(z)[:, :3]  # noqa: E731
  with pytest.raises(ValueError, match="loss"):
    attacks.apgd_t(key, three, x, y % 3, eps=EPS)
  with pytest.raises(ValueError, match="logits_fn"):
    attacks.pgd(key, lambda z: f(z)[0], x, y, eps=EPS)


def test_value_checks_are_skipped_under_jit(setup):
  """Negative traced eps cannot be checked; it must not raise a concretization error."""
  f, x, y = setup
  out = jax.jit(lambda x, y: attacks.apgd(jax.random.key(0), f, x, y, eps=EPS, num_steps=2))(x, y)
  assert out.shape == x.shape


# --------------------------------------------------------------------------- #
# Zero gradients are flagged, not reported as robust
# --------------------------------------------------------------------------- #
def _flat_model(labels):
  table = jax.nn.one_hot(labels, K) * 5.0
  return lambda x: table + 0.0 * jax.lax.stop_gradient(x).sum() * 0.0


def test_zero_gradient_model_is_flagged(setup):
  _, x, y = setup
  f = _flat_model(y)
  key = jax.random.key(0)
  for fn, kw in [
    (attacks.fgsm_with_info, {}),
    (attacks.fgv_with_info, {}),
    (attacks.pgd_with_info, {"num_steps": 3}),
    (attacks.apgd_with_info, {"num_steps": 3}),
    (attacks.square_with_info, {"num_queries": 5}),
  ]:
    _, info = fn(key, f, x, y, eps=EPS, **kw)
    assert np.all(info.zero_grad), fn.__name__
    assert not np.any(info.success), fn.__name__
  for res in [
    attacks.cw_l2(key, f, x, y, binary_search_steps=1, num_steps=3),
    attacks.fab(key, f, x, y, num_steps=3),
    attacks.fab_t(key, f, x, y, num_steps=3),
  ]:
    assert np.all(res.zero_grad) and not np.any(res.success)
    assert np.all(np.isinf(res.norms)) and np.all(np.isfinite(res.images))
  with pytest.warns(RuntimeWarning, match="zero"):
    aa = attacks.autoattack(key, f, x, y, eps=EPS, num_steps=2, attacks=("apgd_ce",))
  assert np.all(aa.zero_grad)


def test_autoattack_does_not_warn_on_a_normal_model(setup):
  f, x, y = setup
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    attacks.autoattack(jax.random.key(3), f, x, y, eps=EPS, **AA_KW)


# --------------------------------------------------------------------------- #
# Success masks equal re-prediction; results are consistent
# --------------------------------------------------------------------------- #
def test_autoattack_result(setup):
  f, x, y = setup
  res = attacks.autoattack(jax.random.key(0), f, x, y, eps=0.05, **AA_KW)
  np.testing.assert_array_equal(res.success, jnp.argmax(f(res.images), -1) != y)
  acc = res.robust_accuracy
  order = ["clean", "apgd_ce", "apgd_t", "fab_t", "square"]
  values = [float(acc[k]) for k in order]
  assert values == sorted(values, reverse=True)
  assert values[0] == 1.0  # y is the clean prediction
  assert values[-1] == pytest.approx(1.0 - float(res.success.mean()))
  # Points that survive keep their clean image.
  keep = ~np.asarray(res.success)
  np.testing.assert_array_equal(np.asarray(res.images)[keep], np.asarray(x)[keep])
  # the per-point record: the stage that broke each point agrees with the stage curve
  broken_by = np.asarray(res.broken_by)
  np.testing.assert_array_equal(broken_by == len(order) - 1, keep)
  for i, stage in enumerate(order[1:]):
    assert float(acc[stage]) == pytest.approx(np.mean(broken_by > i))


def test_cw_result_norms_and_success(setup):
  f, x, y = setup
  res = attacks.cw_l2(
    jax.random.key(0),
    f,
    x,
    y,
    binary_search_steps=3,
    num_steps=30,
    learning_rate=0.1,
    initial_const=1.0,
  )
  np.testing.assert_array_equal(res.success, jnp.argmax(f(res.images), -1) != y)
  assert res.success.any()
  ok = np.asarray(res.success)
  np.testing.assert_allclose(
    np.asarray(res.norms)[ok], _dist(res.images, x, "l2")[ok], rtol=1e-5, atol=1e-6
  )
  assert np.all(np.isinf(np.asarray(res.norms)[~ok]))


def test_cw_targeted_and_confidence(setup):
  f, x, y = setup
  t = (y + 1) % K
  res = attacks.cw_l2(
    jax.random.key(0),
    f,
    x,
    y,
    targeted=True,
    targets=t,
    binary_search_steps=3,
    num_steps=30,
    learning_rate=0.1,
    initial_const=1.0,
    confidence=1.0,
  )
  np.testing.assert_array_equal(res.success, jnp.argmax(f(res.images), -1) == t)
  logits = f(res.images)
  ok = np.asarray(res.success)
  assert ok.any()
  margin = jnp.take_along_axis(logits, t[:, None], 1)[:, 0] - jnp.max(
    jnp.where(jax.nn.one_hot(t, K, dtype=bool), -jnp.inf, logits), -1
  )
  assert np.all(np.asarray(margin)[ok] >= 1.0 - 1e-4)


def test_targeted_apgd_and_square_reach_the_target(setup):
  f, x, y = setup
  t = (y + 1) % K
  for fn in [
    functools.partial(attacks.apgd_with_info, num_steps=20, loss="dlr"),
    functools.partial(attacks.square_with_info, num_queries=200),
  ]:
    adv, info = fn(jax.random.key(0), f, x, y, eps=0.5, targeted=True, targets=t)
    np.testing.assert_array_equal(info.success, jnp.argmax(f(adv), -1) == t)
    assert info.success.mean() >= 0.5


# --------------------------------------------------------------------------- #
# Closed forms on a linear classifier, and the fixed schedules
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def linear():
  rng = np.random.default_rng(0)
  w = rng.normal(size=(H * W * C, K)).astype(np.float32)
  b = rng.normal(size=(K,)).astype(np.float32)
  x = rng.uniform(0.3, 0.7, size=(B, H, W, C)).astype(np.float32)
  y = rng.integers(0, K, size=B).astype(np.int32)
  f = lambda z: z.reshape(z.shape[0], -1) @ w + b  # noqa: E731
  z = x.reshape(B, -1) @ w + b
  p = np.exp(z - z.max(-1, keepdims=True))
  p /= p.sum(-1, keepdims=True)
  grad = ((p - np.eye(K)[y]) @ w.T).reshape(x.shape)  # d CE / d x
  return f, jnp.asarray(x), jnp.asarray(y), grad


def test_fgsm_linear_closed_form(linear):
  f, x, y, grad = linear
  eps = 0.05  # small enough that nothing leaves [0, 1]
  out = attacks.fgsm(jax.random.key(0), f, x, y, eps=eps)
  np.testing.assert_allclose(out, np.asarray(x) + eps * np.sign(grad), atol=1e-6)


@pytest.mark.parametrize("fn", [attacks.fgsm, attacks.fgv])
def test_l2_step_linear_closed_form(linear, fn):
  f, x, y, grad = linear
  eps = 0.5
  out = fn(jax.random.key(0), f, x, y, eps=eps, norm="l2")
  n = np.sqrt((grad.reshape(B, -1) ** 2).sum(-1)).reshape(B, 1, 1, 1)
  np.testing.assert_allclose(out, np.asarray(x) + eps * grad / n, atol=1e-5)
  np.testing.assert_allclose(_dist(out, x, "l2"), eps, rtol=1e-4)


def test_fgv_linf_linear_closed_form(linear):
  f, x, y, grad = linear
  eps = 0.05
  out = attacks.fgv(jax.random.key(0), f, x, y, eps=eps)
  m = np.abs(grad.reshape(B, -1)).max(-1).reshape(B, 1, 1, 1)
  np.testing.assert_allclose(out, np.asarray(x) + eps * grad / m, atol=1e-6)


def test_linear_binary_margin_drop_is_optimal():
  """On a 2-class linear model the best Linf / L2 attack lowers the margin by
  eps * ||w||_1 / eps * ||w||_2; one FGSM step and PGD both reach it."""
  rng = np.random.default_rng(1)
  w = rng.normal(size=(H * W * C,)).astype(np.float32)
  x = jnp.asarray(rng.uniform(0.3, 0.7, size=(B, H, W, C)).astype(np.float32))
  f = lambda z: jnp.stack([jnp.zeros(z.shape[0]), z.reshape(z.shape[0], -1) @ w], -1)  # noqa: E731
  y = jnp.zeros(B, jnp.int32)
  eps = 0.02
  for norm, dual in [("linf", np.abs(w).sum()), ("l2", np.sqrt((w**2).sum()))]:
    e = eps if norm == "linf" else eps * 10
    advs = [attacks.fgsm(jax.random.key(0), f, x, y, eps=e, norm=norm)]
    if norm == "linf":
      advs.append(
        attacks.pgd(jax.random.key(0), f, x, y, eps=e, norm=norm, num_steps=20, step_size=0.25)
      )
    for adv in advs:
      drop = np.asarray(f(adv)[:, 1] - f(x)[:, 1])
      np.testing.assert_allclose(drop, e * dual, rtol=2e-3)


def test_apgd_checkpoints_match_the_paper():
  first, min_period, decrement = _apgd.checkpoint_schedule(100)
  checks, period, w = [], first, 0
  while w + period <= 100:
    w += period
    checks.append(w)
    period = max(period - decrement, min_period)
  # p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06).
  assert checks == [22, 41, 57, 70, 80, 87, 93, 99]


def test_square_p_schedule():
  got = [float(_square.p_selection(0.8, i, 10000)) for i in [0, 10, 11, 51, 201, 8001]]
  np.testing.assert_allclose(got, [0.8, 0.8, 0.4, 0.2, 0.1, 0.8 / 512])


def test_top_k_targets_skip_the_label():
  logits = jnp.array([[0.0, 3.0, 2.0, 1.0], [5.0, 4.0, 1.0, 2.0]])
  got = _apgd.top_k_targets(logits, jnp.array([1, 2]), 3)
  np.testing.assert_array_equal(got, [[2, 3, 0], [0, 1, 3]])


def test_apgd_first_step_is_two_eps_sign_step():
  """With one step, APGD moves from its start by the 2 * eps sign step, projected."""
  f, x, y, grad = _linear_like()
  eps = 0.05
  out = attacks.apgd(jax.random.key(0), f, x, y, eps=eps, num_steps=1)
  start = attacks._apgd.init_apgd(jax.random.key(0), x, eps, "linf")  # pylint: disable=protected-access
  # A linear model's CE gradient sign is the same near x: the step saturates the ball.
  np.testing.assert_allclose(out, np.clip(np.asarray(x) + eps * np.sign(grad), 0, 1), atol=1e-6)
  assert not np.allclose(start, out)


def _linear_like():
  rng = np.random.default_rng(2)
  w = rng.normal(size=(H * W * C, 2)).astype(np.float32)
  x = rng.uniform(0.3, 0.7, size=(B, H, W, C)).astype(np.float32)
  # A large bias keeps every point correctly classified, so APGD returns the
  # point of largest loss rather than an early success.
  f = lambda z: z.reshape(z.shape[0], -1) @ (0.1 * w) + jnp.array([10.0, 0.0])  # noqa: E731
  y = np.zeros(B, np.int32)
  grad = (w[:, 1] - w[:, 0])[None, :].repeat(B, 0).reshape(x.shape)  # same sign as dCE/dx
  return f, jnp.asarray(x), jnp.asarray(y), grad


# --------------------------------------------------------------------------- #
# FAB: the exact projection and minimality on a linear model
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_fab_projection_matches_a_solver(norm):
  """The hyperplane-and-box projection equals scipy's optimum (linprog for Linf,
  SLSQP for L2) where the box reaches the plane, and lands on the plane."""
  from scipy import optimize  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(0)
  n, d = 30, 12
  t = rng.uniform(0, 1, (n, d)).astype(np.float32)
  w = rng.normal(size=(n, d)).astype(np.float32)
  w[:4, :3] = 0.0  # zero weights do not move
  b = (np.sum(w * t, 1) + rng.normal(size=n) * rng.choice([0.3, 3.0], n)).astype(np.float32)
  step = np.asarray(
    attacks.project_hyperplane_box(jnp.asarray(t), jnp.asarray(w), jnp.asarray(b), norm)
  )
  assert np.all(t + step >= -1e-6) and np.all(t + step <= 1 + 1e-6)
  assert np.all(step[:4, :3] == 0)
  checked = 0
  for i in range(n):
    need = b[i] - w[i] @ t[i]
    box = [(-t[i, j], 1 - t[i, j]) for j in range(d)]
    reach = np.sum(np.abs(w[i]) * np.where(np.sign(w[i]) == np.sign(need), 1 - t[i], t[i]))
    if abs(need) > reach:  # unreachable: the corner nearest to the plane
      np.testing.assert_allclose(w[i] @ step[i], np.sign(need) * reach, rtol=1e-4)
      continue
    checked += 1
    np.testing.assert_allclose(w[i] @ step[i], need, atol=1e-4 * max(1.0, abs(need)))
    if norm == "linf":
      a_ub = np.vstack([np.c_[np.eye(d), -np.ones(d)], np.c_[-np.eye(d), -np.ones(d)]])
      opt = optimize.linprog(
        np.r_[np.zeros(d), 1.0],
        A_ub=a_ub,
        b_ub=np.zeros(2 * d),
        A_eq=np.r_[w[i], 0.0][None],
        b_eq=[need],
        bounds=box + [(0, None)],
      ).fun
      got = np.abs(step[i]).max()
    else:
      opt = np.sqrt(
        optimize.minimize(
          lambda z: z @ z,
          np.zeros(d),
          jac=lambda z: 2 * z,
          method="SLSQP",
          bounds=box,
          constraints=[{"type": "eq", "fun": lambda z, i=i: w[i] @ z - need}],
          options={"ftol": 1e-12, "maxiter": 500},
        ).fun
      )
      got = np.linalg.norm(step[i])
    assert abs(got - opt) < 1e-5, (i, got, opt)
  assert checked >= 10


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_fab_finds_the_minimal_adversarial_of_a_linear_model(norm):
  """On a linear classifier (boundaries inside the box) FAB's norm is within its
  overshoot of the closed-form distance to the nearest boundary, never below."""
  rng = np.random.default_rng(1)
  k, d = 4, 20
  wm = rng.normal(size=(d, k)).astype(np.float32)
  bias = rng.normal(size=k).astype(np.float32)
  f = lambda z: z.reshape(z.shape[0], -1) @ wm + bias  # noqa: E731
  x = jnp.asarray(rng.uniform(0.3, 0.7, (32, d, 1, 1)).astype(np.float32))
  y = jnp.argmax(f(x), -1)
  logits, yy = np.asarray(f(x)), np.asarray(y)
  exact = []
  for i in range(32):
    dist = []
    for j in range(k):
      if j != yy[i]:
        dw = wm[:, yy[i]] - wm[:, j]
        dual = np.abs(dw).sum() if norm == "linf" else np.linalg.norm(dw)
        dist.append((logits[i, yy[i]] - logits[i, j]) / dual)
    exact.append(min(dist))
  for res in [
    attacks.fab(jax.random.key(0), f, x, y, norm=norm, num_steps=50),
    attacks.fab_t(jax.random.key(0), f, x, y, norm=norm, num_steps=50, num_target_classes=k - 1),
  ]:
    assert np.all(res.success)
    ratio = np.asarray(res.norms) / np.asarray(exact)
    assert ratio.min() >= 1.0 - 1e-4 and ratio.max() <= 1.02, ratio
    np.testing.assert_allclose(np.asarray(res.norms), _dist(res.images, x, norm), rtol=1e-5)
