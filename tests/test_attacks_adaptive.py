"""EOT and BPDA (Athalye et al. 2018) on a tiny MLP trained on the embedded real MNIST:
EOT-PGD beats single-draw PGD on a randomized model, BPDA-PGD breaks a quantizing model
whose gradients are exactly zero (and the masking checks say so), and the wrappers'
values and gradients against their definitions."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from advjax import attacks
from advjax import eval as adv_eval

_DROP = 0.5  # input dropout of the randomized model, kept on at test time
_EPS = 0.1  # Linf budget on MNIST for the EOT comparison
_N_TEST = 200


def _mlp(params, x):
  h = jax.nn.relu(x.reshape(x.shape[0], -1) @ params["w1"] + params["b1"])
  return h @ params["w2"] + params["b2"]


def _input_dropout(key, x):
  keep = jax.random.bernoulli(key, 1.0 - _DROP, x.shape)
  return x * keep / (1.0 - _DROP)


@pytest.fixture(scope="module")
def mlp(mnist):
  """(params, test images [200, 28, 28, 1], labels [200]) of a 784-64-10 MLP trained
  with input dropout 0.5 (400 Adam steps; about 9 s of CPU here, mostly compiling): 95%
  accuracy on these 200 test digits without dropout, about 90% with it."""
  x, y = (jnp.asarray(a) for a in mnist["train"].get(np.arange(len(mnist["train"]))))
  k1, k2 = jax.random.split(jax.random.PRNGKey(0))
  params = {
    "w1": 0.05 * jax.random.normal(k1, (784, 64)),
    "b1": jnp.zeros(64),
    "w2": 0.05 * jax.random.normal(k2, (64, 10)),
    "b2": jnp.zeros(10),
  }
  opt = optax.adam(3e-3)

  def step(carry, key):
    params, state = carry
    k_batch, k_drop = jax.random.split(key)
    idx = jax.random.choice(k_batch, x.shape[0], (128,))
    loss = lambda p: optax.softmax_cross_entropy_with_integer_labels(
      _mlp(p, _input_dropout(k_drop, x[idx])), y[idx]
    ).mean()
    updates, state = opt.update(jax.grad(loss)(params), state, params)
    return (optax.apply_updates(params, updates), state), None

  keys = jax.random.split(jax.random.PRNGKey(1), 400)
  (params, _), _ = jax.jit(lambda c, k: jax.lax.scan(step, c, k))((params, opt.init(params)), keys)
  xt, yt = mnist["test"].get(np.arange(_N_TEST))
  return params, jnp.asarray(xt), jnp.asarray(yt)


def _randomized_accuracy(randomized_logits_fn, images, labels, *, num_draws=16, seed=123):
  """Accuracy of the randomized model, averaged over `num_draws` fresh draws."""
  keys = jax.random.split(jax.random.PRNGKey(seed), num_draws)
  correct = jax.vmap(lambda k: randomized_logits_fn(k, images).argmax(-1) == labels)(keys)
  return float(jnp.mean(correct))


def _jit_pgd(logits_fn, num_steps):
  """PGD on `logits_fn`, compiled once, eps and the step size (a fraction of eps) arguments."""
  return jax.jit(
    lambda key, x, y, eps, step_size: attacks.pgd(
      key, logits_fn, x, y, eps=eps, num_steps=num_steps, step_size=step_size
    )
  )


def test_eot_pgd_beats_single_draw_pgd_on_a_randomized_model(mlp):
  params, x, y = mlp
  x, y = x[:100], y[:100]
  randomized = lambda key, images: _mlp(params, _input_dropout(key, images))
  clean = _randomized_accuracy(randomized, x, y)
  assert clean > 0.85, clean  # the model learned
  attack_key = jax.random.PRNGKey(7)  # draws disjoint from the evaluation's
  single = attacks.eot_logits_fn(attack_key, randomized, num_draws=1)
  eot = attacks.eot_logits_fn(attack_key, randomized, num_draws=12)
  acc = {}
  for name, fn in (("single", single), ("eot", eot)):
    x_adv = _jit_pgd(fn, 10)(jax.random.PRNGKey(1), x, y, _EPS, 0.25)
    assert float(jnp.max(jnp.abs(x_adv - x))) <= _EPS + 1e-6
    acc[name] = _randomized_accuracy(randomized, x_adv, y)
  # measured: clean 0.91, single-draw PGD 0.49, EOT-PGD (12 draws) 0.11
  assert acc["single"] < clean - 0.15, (clean, acc)
  assert acc["eot"] < 0.3, acc
  assert acc["eot"] < acc["single"] - 0.25, acc


def test_bpda_breaks_a_quantizing_model_that_masks_gradients(mlp):
  params, x, y = mlp
  plain = lambda images: _mlp(params, images)
  quantize8 = functools.partial(attacks.quantize, levels=8)  # bit-depth reduction to 1/8
  defended = lambda images: plain(quantize8(images))
  through = attacks.bpda_logits_fn(plain, quantize8)
  # the same predictions, bit for bit
  np.testing.assert_array_equal(np.asarray(through(x)), np.asarray(defended(x)))
  clean = float(jnp.mean(defended(x).argmax(-1) == y))
  assert clean > 0.9, clean

  ce = attacks.get_objective("ce")

  def zero_gradient_fraction(fn):  # measured as eval.evaluate's masking check measures it
    g = jax.grad(lambda z: ce.ascent_value(fn(z), y).sum())(x)
    return float(jnp.mean(jnp.all(g.reshape(len(x), -1) == 0, axis=-1)))

  results = {}
  for name, fn in (("defended", defended), ("bpda", through)):
    pgd = _jit_pgd(fn, 20)
    x_adv = pgd(jax.random.PRNGKey(1), x, y, _EPS, 0.125)
    x_unbounded = pgd(jax.random.PRNGKey(2), x, y, 1.0, 0.05)  # as the suite's check runs
    results[name] = dict(
      zero=zero_gradient_fraction(fn),
      acc=float(jnp.mean(defended(x_adv).argmax(-1) == y)),
      unbounded=float(jnp.mean(defended(x_unbounded).argmax(-1) == y)),
    )
  d, b = results["defended"], results["bpda"]
  # rounding has a zero derivative: every input gradient is exactly zero, PGD cannot move
  # (measured: accuracy 0.95 at eps 0.1, 0.27 with the whole box from random starts alone)
  assert d["zero"] == 1.0
  assert not adv_eval.check_zero_gradients(d["zero"]).passed
  assert not adv_eval.check_unbounded(d["unbounded"]).passed
  assert d["acc"] > clean - 0.05, (clean, d)
  # BPDA with the identity backward breaks it (measured: 0.035 at eps 0.1, 0.0 unbounded)
  assert b["zero"] == 0.0
  assert adv_eval.check_zero_gradients(b["zero"]).passed
  assert adv_eval.check_unbounded(b["unbounded"]).passed
  assert b["acc"] < 0.2 and b["acc"] < d["acc"] - 0.6, results


def _linear(seed=0, k=5):
  w = jax.random.normal(jax.random.PRNGKey(seed), (12, k))
  return lambda x: x.reshape(x.shape[0], -1) @ w


def _noisy(key, x):
  """A randomized linear model: Gaussian input noise (one pattern for the batch, so that
  a draw does not depend on the batch size) and a random logit offset, from one draw."""
  z = jax.random.normal(key, (17,))
  return _linear()(x + 0.3 * z[:12].reshape(x.shape[1:])) + z[12:]


_X = jax.random.uniform(jax.random.PRNGKey(5), (3, 2, 2, 3))


def test_eot_is_the_mean_over_the_documented_draws():
  key = jax.random.PRNGKey(11)
  c = jax.random.normal(jax.random.PRNGKey(3), (3, 5))
  eot = lambda **kw: attacks.eot_logits_fn(key, _noisy, **kw)

  @jax.jit  # one program: eager, each small op would compile on its own
  def compute(x):
    draw = lambda i, x: _noisy(jax.random.fold_in(key, i), x)
    logits = eot(num_draws=4, average="logits")
    return dict(
      draws=jax.vmap(lambda i: draw(i, x))(jnp.arange(4)),
      one_probs=eot(num_draws=1)(x),
      one_logits=eot(num_draws=1, average="logits")(x),
      probs=eot(num_draws=4)(x),
      logits=logits(x),
      chunked=eot(num_draws=4, draws_per_batch=3)(x),
      per_example=jax.vmap(lambda im: eot(num_draws=4)(im[None])[0])(x),
      g_eot=jax.grad(lambda x: jnp.sum(c * logits(x)))(x),
      g_mean=jax.vmap(lambda i: jax.grad(lambda x: jnp.sum(c * draw(i, x)))(x))(jnp.arange(4)).mean(
        0
      ),
    )

  r = compute(_X)
  draws = r["draws"]
  # one draw: the draw itself (its log-softmax for "probs")
  chex.assert_trees_all_close(r["one_probs"], jax.nn.log_softmax(draws[0]), rtol=1e-6, atol=1e-6)
  chex.assert_trees_all_close(r["one_logits"], draws[0], rtol=1e-6, atol=1e-6)
  # four draws: log of the mean softmax (normalized), or the mean logits
  chex.assert_trees_all_close(
    jnp.exp(r["probs"]), jax.nn.softmax(draws).mean(0), rtol=1e-5, atol=1e-7
  )
  chex.assert_trees_all_close(jax.nn.logsumexp(r["probs"], -1), jnp.zeros(3), atol=1e-6)
  chex.assert_trees_all_close(r["logits"], draws.mean(0), rtol=1e-5, atol=1e-6)
  # the gradient of a loss linear in the mean logits is the mean of the per-draw gradients
  # (the EOT gradient, Athalye et al. 2018, sec. 4.2)
  chex.assert_trees_all_close(r["g_eot"], r["g_mean"], rtol=1e-5, atol=1e-6)
  assert float(jnp.abs(r["g_eot"]).max()) > 0.1
  # chunks of draws and per-example vmap give the same values; eager equals jit
  chex.assert_trees_all_close(r["chunked"], r["probs"], rtol=1e-6, atol=1e-6)
  chex.assert_trees_all_close(r["per_example"], r["probs"], rtol=1e-5, atol=1e-6)
  eager = eot(num_draws=4, average="logits")(_X)
  chex.assert_trees_all_close(eager, r["logits"], rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(eager, eot(num_draws=4, average="logits")(_X))  # deterministic


def test_bpda_value_is_preprocess_and_gradient_is_approx():
  pre = lambda x: jnp.round(x * 4) / 4
  approx = lambda x: jnp.sin(3 * x) * x
  f = attacks.bpda(pre, approx=approx)
  cot = jax.random.normal(jax.random.PRNGKey(2), _X.shape)
  w = jax.random.normal(jax.random.PRNGKey(4), (12, 5))
  model = lambda x: x.reshape(x.shape[0], -1) @ w
  np.testing.assert_array_equal(f(_X), pre(_X))  # eager

  @jax.jit  # one program: eager, each small op would compile on its own
  def compute(x):
    out, vjp = jax.vjp(f, x)
    return dict(
      pre=pre(x),
      out=out,
      vjp=vjp(cot)[0],
      want_vjp=jax.vjp(approx, x)[1](cot)[0],
      vmapped=jax.vmap(f)(x),
      own_grad=jax.grad(lambda x: jnp.sum(pre(x) * cot))(x),
      identity_grad=jax.grad(lambda x: jnp.sum(attacks.bpda(pre)(x) * cot))(x),
      model_grad=jax.grad(lambda x: attacks.bpda_logits_fn(model, pre)(x)[:, 2].sum())(x),
    )

  r = compute(_X)
  np.testing.assert_array_equal(r["out"], r["pre"])  # the value, bit for bit
  np.testing.assert_array_equal(r["vmapped"], r["pre"])
  chex.assert_trees_all_close(r["vjp"], r["want_vjp"], rtol=1e-6, atol=1e-6)
  assert float(jnp.abs(r["want_vjp"]).max()) > 0.1
  # the preprocessing's own gradient is zero; BPDA's default backward is the identity
  np.testing.assert_array_equal(r["own_grad"], 0.0)
  np.testing.assert_array_equal(r["identity_grad"], cot)
  # the logits_fn convenience: the model's gradient at pre(x), pulled back by the identity
  chex.assert_trees_all_close(
    r["model_grad"], jnp.broadcast_to(w[:, 2].reshape(2, 2, 3), _X.shape), rtol=1e-6, atol=1e-6
  )


def test_bpda_inside_eot_with_a_randomized_preprocess():
  """BPDA + EOT (Athalye et al. 2018's attack on randomized, non-differentiable defences):
  the preprocess closes over each draw's key, also inside `lax.map`'s chunks."""
  model = _linear()

  def randomized(key, x):  # random brightness, then 8-level quantization
    pre = lambda z: (
      jnp.round(jnp.clip(z + jax.random.uniform(key, (), minval=-0.1, maxval=0.1), 0, 1) * 8) / 8
    )
    return model(attacks.bpda(pre)(x))

  key = jax.random.PRNGKey(0)
  grads = []
  for per_batch in (None, 3):
    f = attacks.eot_logits_fn(
      key, randomized, num_draws=5, average="logits", draws_per_batch=per_batch
    )
    grads.append(jax.jit(jax.grad(lambda x, f=f: f(x)[:, 1].sum()))(_X))
  # identity backward through every draw: the gradient of model's logit 1, whatever the draw
  want = jnp.broadcast_to(model(jnp.eye(12)).T[1].reshape(2, 2, 3), _X.shape)
  for g in grads:
    chex.assert_trees_all_close(g, want, rtol=1e-5, atol=1e-6)


def test_bad_arguments_raise_value_error_naming_them():
  key = jax.random.PRNGKey(0)
  with pytest.raises(ValueError, match="key"):
    attacks.eot_logits_fn(0, _noisy)
  with pytest.raises(ValueError, match="key"):
    attacks.eot_logits_fn(jax.random.split(key, 3), _noisy)  # several keys, not one
  attacks.eot_logits_fn(jax.random.key(0), _noisy)  # a typed key is fine
  with pytest.raises(ValueError, match="randomized_logits_fn"):
    attacks.eot_logits_fn(key, "model")
  with pytest.raises(ValueError, match="num_draws"):
    attacks.eot_logits_fn(key, _noisy, num_draws=0)
  with pytest.raises(ValueError, match="average"):
    attacks.eot_logits_fn(key, _noisy, average="mean")
  with pytest.raises(ValueError, match="draws_per_batch"):
    attacks.eot_logits_fn(key, _noisy, draws_per_batch=0)
  with pytest.raises(ValueError, match="randomized_logits_fn"):
    attacks.eot_logits_fn(key, lambda k, x: x)(_X)  # not logits [B, K]
  with pytest.raises(ValueError, match="preprocess"):
    attacks.bpda(None)
  with pytest.raises(ValueError, match="approx"):
    attacks.bpda(jnp.round, approx=3)
  with pytest.raises(ValueError, match="approx"):
    attacks.bpda(lambda x: x[..., :1])(_X)  # shape changes, identity approx
  with pytest.raises(ValueError, match="logits_fn"):
    attacks.bpda_logits_fn(None, jnp.round)
