"""Hot/cold directions, the minimal-adversarial line search, hard positives (issue 4)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import attacks


@pytest.fixture(scope="module")
def batch(mnist_test_batch, trained_lenet):
  """16 correctly classified test digits with the trained LeNet's logits_fn."""
  _, _, logits_fn = trained_lenet
  x, y = mnist_test_batch
  ok = np.asarray(jnp.argmax(logits_fn(x), -1) == y)
  idx = np.nonzero(ok)[0][:16]
  return logits_fn, x[idx], y[idx]


@pytest.fixture(scope="module")
def minimal_hc(batch):
  logits_fn, x, y = batch
  d, hot = attacks.hot_cold_directions(logits_fn, x, y, num_hot=3)
  search = jax.jit(functools.partial(attacks.minimal_adversarial, logits_fn, num_binary_steps=8))
  return d, hot, search(x, y, d)


def test_hot_cold_direction_is_autodiff_of_weighted_logits(batch):
  logits_fn, x, y = batch
  d, hot = attacks.hot_cold_directions(logits_fn, x, y, num_hot=4)
  assert d.shape == (16, 4) + x.shape[1:]
  logits = logits_fn(x)
  for k in range(4):
    j = hot[:, k]
    h_j = jnp.take_along_axis(logits, j[:, None], 1)
    h_y = jnp.take_along_axis(logits, y[:, None], 1)
    w = jax.nn.one_hot(j, 10) * jnp.abs(h_j) - jax.nn.one_hot(y, 10) * h_y
    ref = jax.grad(lambda z: jnp.sum(w * logits_fn(z)))(x)
    np.testing.assert_allclose(np.asarray(d[:, k]), np.asarray(ref), rtol=1e-4, atol=1e-5)
  signs, _ = attacks.hot_cold_directions(logits_fn, x, y, num_hot=4, use_sign=True)
  np.testing.assert_array_equal(np.asarray(signs), np.sign(np.asarray(d)))


def test_hc1_targets_closest_scoring_class(batch):
  logits_fn, x, y = batch
  _, hot = attacks.hot_cold_directions(logits_fn, x, y, num_hot=9)
  logits = np.asarray(logits_fn(x))
  masked = logits.copy()
  masked[np.arange(len(y)), np.asarray(y)] = -np.inf
  np.testing.assert_array_equal(np.asarray(hot[:, 0]), masked.argmax(-1))
  # Ordered by score, the true class never among them, all nine others covered.
  scores = np.take_along_axis(logits, np.asarray(hot), 1)
  assert np.all(np.diff(scores, axis=1) <= 0)
  assert not np.any(np.asarray(hot) == np.asarray(y)[:, None])
  assert np.all(
    np.sort(np.asarray(hot), 1).tolist()
    == [sorted(set(range(10)) - {int(c)}) for c in np.asarray(y)]
  )


def test_fgs_fgv_directions(batch):
  logits_fn, x, y = batch
  fgv = attacks.fgv_directions(logits_fn, x, y)
  fgs = attacks.fgs_directions(logits_fn, x, y)
  assert fgv.shape == fgs.shape == (16, 1) + x.shape[1:]
  ref = jax.grad(lambda z: jnp.sum(-jax.nn.log_softmax(logits_fn(z))[jnp.arange(16), y]))(x)
  np.testing.assert_allclose(np.asarray(fgv[:, 0]), np.asarray(ref), rtol=1e-4, atol=1e-6)
  np.testing.assert_array_equal(np.asarray(fgs[:, 0]), np.sign(np.asarray(ref)))


def test_line_search_is_minimal(batch, minimal_hc):
  logits_fn, x, y = batch
  d, _, r = minimal_hc
  assert r.scale.shape == (16, 3) and r.images.shape == (16, 3) + x.shape[1:]
  assert np.mean(np.asarray(r.success)) > 0.8
  s = np.asarray(r.success)
  unit = d / jnp.max(jnp.abs(d), axis=(2, 3, 4), keepdims=True)

  def predict_at(scale):
    img = jnp.round(jnp.clip(x[:, None] + scale[..., None, None, None] * unit, 0, 1) * 255) / 255
    return np.asarray(jnp.argmax(logits_fn(img.reshape((-1,) + x.shape[1:])), -1)).reshape(16, 3)

  yy = np.asarray(y)[:, None]
  # The label flips at the returned scale ...
  assert np.all(predict_at(r.scale)[s] != np.broadcast_to(yy, s.shape)[s])
  np.testing.assert_array_equal(np.asarray(r.predictions)[s], predict_at(r.scale)[s])
  # ... and not one binary-search tolerance below it.
  below = predict_at(r.scale - r.tolerance)
  assert np.all(below[s] == np.broadcast_to(yy, s.shape)[s])
  # The tolerance is the last interval of 8 bisections of a doubling step.
  assert np.all(np.asarray(r.tolerance)[s] <= np.asarray(r.scale)[s] / 2**8 + 1e-7)


def test_generated_images_on_grid_and_in_range(minimal_hc, batch):
  logits_fn, x, y = batch
  d, _, r = minimal_hc
  hp = attacks.hard_positives(logits_fn, x, y, d, minimal=r, compute_pass=False)
  for imgs in (np.asarray(r.images), np.asarray(hp.images)):
    assert imgs.min() >= 0.0 and imgs.max() <= 1.0
    np.testing.assert_allclose(imgs * 255, np.round(imgs * 255), atol=1e-4)


def test_norms_and_pass_of_minimal(minimal_hc, batch):
  _, x, _ = batch
  _, _, r = minimal_hc
  s = np.asarray(r.success)
  delta = np.asarray(r.images) - np.asarray(x)[:, None]
  np.testing.assert_allclose(np.asarray(r.linf), np.abs(delta).max((2, 3, 4)), atol=1e-6)
  np.testing.assert_allclose(
    np.asarray(r.l2), np.sqrt((delta**2).sum((2, 3, 4))) / 784, rtol=1e-5, atol=1e-8
  )
  ps = np.asarray(r.pass_score)
  assert np.all(np.isfinite(ps)) and np.all(ps <= 1.0 + 1e-6)
  assert np.all(ps[s] < 1.0) and np.all(ps[~s] == 1.0)


def test_hard_positives_scale_the_minimal_perturbation(minimal_hc, batch):
  logits_fn, x, y = batch
  d, _, r = minimal_hc
  hp = attacks.hard_positives(logits_fn, x, y, d, scales=(1.05, 1.10), minimal=r)
  assert hp.images.shape == (16, 3, 2) + x.shape[1:]
  np.testing.assert_allclose(
    np.asarray(hp.scale), np.asarray(r.scale)[..., None] * np.array([1.05, 1.10]), rtol=1e-6
  )
  v = np.asarray(hp.valid)
  linf = np.asarray(hp.linf)
  # Larger factors perturb at least as much (up to one quantization level).
  assert np.all(linf[..., 1][v[..., 1]] >= linf[..., 0][v[..., 0]] - 1 / 255 - 1e-6)
  assert np.all(linf[v] >= np.repeat(np.asarray(r.linf)[..., None], 2, -1)[v] - 1 / 255 - 1e-6)
  # Beyond the boundary most of them stay adversarial.
  assert np.mean(np.asarray(hp.misclassified)[v]) > 0.8


def test_minimal_adversarial_jits_inside_user_jit(batch):
  logits_fn, x, y = batch
  d = attacks.fgs_directions(logits_fn, x[:4], y[:4])

  @jax.jit
  def user(x, y, d):
    return attacks.minimal_adversarial(
      logits_fn, x, y, d, compute_pass=False, num_binary_steps=4
    ).scale

  eager = attacks.minimal_adversarial(
    logits_fn, x[:4], y[:4], d, compute_pass=False, num_binary_steps=4
  ).scale
  np.testing.assert_allclose(np.asarray(user(x[:4], y[:4], d)), np.asarray(eager))


def test_misclassified_inputs_are_not_successes(batch):
  logits_fn, x, y = batch
  wrong = (y[:4] + 1) % 10
  d = attacks.fgs_directions(logits_fn, x[:4], wrong)
  r = attacks.minimal_adversarial(logits_fn, x[:4], wrong, d, compute_pass=False)
  assert not np.any(np.asarray(r.success))
  np.testing.assert_array_equal(np.asarray(r.scale), 0.0)
  np.testing.assert_allclose(np.asarray(r.images[:, 0]), np.asarray(x[:4]), atol=1e-6)


def test_hard_positive_set_columns_and_filter(batch, tmp_path):
  logits_fn, x, y = batch
  kw = dict(types=("FGS", "HC-D-2"), scales=(1.0, 1.05), batch_size=8, num_binary_steps=6)
  full = attacks.generate_hard_positive_set(logits_fn, x[:8], y[:8], tau=0.0, **kw)
  n = len(full["label"])
  assert n > 0
  for c in ("image", "label", "type", "scale", "factor", "pass_score", "l2", "linf"):
    assert len(full[c]) == n
  assert set(np.unique(full["type"])) <= {"FGS", "HC-D-1", "HC-D-2"}
  assert np.all(np.min(np.abs(full["factor"][:, None] - np.array([1.0, 1.05])), 1) < 1e-6)
  np.testing.assert_array_equal(full["label"], np.asarray(y[:8])[full["source_index"]])
  img = full["image"]
  np.testing.assert_allclose(img * 255, np.round(img * 255), atol=1e-4)
  tau = float(np.median(full["pass_score"]))
  kept = attacks.generate_hard_positive_set(logits_fn, x[:8], y[:8], tau=tau, **kw)
  assert 0 < len(kept["label"]) < n
  assert np.all(kept["pass_score"] >= tau)
  assert len(kept["label"]) == np.sum(full["pass_score"] >= tau)
  path = tmp_path / "hp.npz"
  attacks.save_hard_positive_set(str(path), kept)
  back = attacks.load_hard_positive_set(str(path))
  np.testing.assert_array_equal(back["type"], kept["type"])
  np.testing.assert_array_equal(back["image"], kept["image"])
  assert [p.name for p in tmp_path.iterdir()] == ["hp.npz"]  # no temp file left


def test_bad_inputs_raise(batch):
  logits_fn, x, y = batch
  d = jnp.zeros((16, 1) + x.shape[1:])
  with pytest.raises(ValueError, match="directions"):
    attacks.minimal_adversarial(logits_fn, x, y, d[:, 0])
  with pytest.raises(ValueError, match="directions"):
    attacks.minimal_adversarial(logits_fn, x, y, d[:8])
  with pytest.raises(ValueError, match="floating"):
    attacks.minimal_adversarial(logits_fn, (x * 255).astype(jnp.uint8), y, d)
  with pytest.raises(ValueError, match="rank 4"):
    attacks.hot_cold_directions(logits_fn, x[0], y, num_hot=1)
  with pytest.raises(ValueError, match="batch size"):
    attacks.hot_cold_directions(logits_fn, x, y[:3], num_hot=1)
  with pytest.raises(ValueError, match="num_hot"):
    attacks.hot_cold_directions(logits_fn, x, y, num_hot=10)
  with pytest.raises(ValueError, match="tau"):
    attacks.generate_hard_positive_set(logits_fn, x, y, tau=1.5)
  with pytest.raises(ValueError, match="tau"):
    attacks.generate_hard_positive_set(logits_fn, x, y, tau=-0.1)
  with pytest.raises(ValueError, match="generation type"):
    attacks.generate_hard_positive_set(logits_fn, x, y, tau=0.5, types=("HC-X-3",))
  with pytest.raises(ValueError, match="scales"):
    attacks.hard_positives(logits_fn, x, y, d, scales=(0.0,))
