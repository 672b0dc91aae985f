"""Tests of advjax.augment (except corruptions) and losses.jsd_consistency (issue 5)."""

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests._inputs import rgb_crops
from PIL import Image, ImageEnhance, ImageOps

from advjax import augment, losses
from advjax.augment import _augmix


# --------------------------------------------------------------------------- #
# Inputs
# --------------------------------------------------------------------------- #
def _rgb_uint8(n=6, size=32):
  return rgb_crops(n=n, size=size)


@pytest.fixture(scope="module")
def rgb():
  return jnp.asarray(_rgb_uint8() / 255.0, jnp.float32)


@pytest.fixture(scope="module")
def gray(mnist_test_batch):
  return mnist_test_batch[0][:4]


PER_EXAMPLE = {
  "diffaugment": augment.diffaugment,
  "augmix": augment.augmix,
  "augmix_all_ops_depth2": functools.partial(augment.augmix, all_ops=True, depth=2),
  "random_color_filter": augment.random_color_filter,
}


# --------------------------------------------------------------------------- #
# API shape (dm_pix's api_test)
# --------------------------------------------------------------------------- #
def test_public_api_key_first_and_keyword_only_options():
  for name in augment.__all__:
    fn = getattr(augment, name)
    if not inspect.isfunction(fn):
      continue
    params = list(inspect.signature(fn).parameters.values())
    names = [p.name for p in params]
    assert "rng" not in names, name
    if "key" in names:
      assert names[0] == "key", name
    defaults = [p for p in params if p.default is not inspect.Parameter.empty]
    if name not in ("augmix_op_names", "corruption_names", "frost_texture", "mix_views"):
      assert all(p.kind == p.KEYWORD_ONLY for p in defaults), (name, defaults)
  sig = inspect.signature(losses.jsd_consistency)
  assert list(sig.parameters) == ["logits_clean", "logits_aug1", "logits_aug2"]


# --------------------------------------------------------------------------- #
# Contracts of the per-example augmentations
# --------------------------------------------------------------------------- #
def _check_contract(fn, x, eager_examples=1):
  keys = jax.random.split(jax.random.key(1), x.shape[0])
  batched_fn = jax.jit(jax.vmap(fn))
  batched = batched_fn(keys, x)
  assert batched.shape == x.shape and batched.dtype == x.dtype
  assert float(batched.min()) >= 0.0 and float(batched.max()) <= 1.0
  # Deterministic per key, different across keys.
  np.testing.assert_array_equal(np.asarray(batched), np.asarray(batched_fn(keys, x)))
  other = batched_fn(jax.random.split(jax.random.key(2), x.shape[0]), x)
  assert float(jnp.max(jnp.abs(other - batched))) > 1e-3
  # jit + vmap == eager, per example.
  for i in range(eager_examples):
    np.testing.assert_allclose(np.asarray(fn(keys[i], x[i])), np.asarray(batched[i]), atol=2e-5)


@pytest.mark.parametrize("name", ["diffaugment", "random_color_filter"])
@pytest.mark.parametrize("kind", ["rgb", "gray"])
def test_contract_per_example(name, kind, rgb, gray):
  _check_contract(PER_EXAMPLE[name], (rgb if kind == "rgb" else gray)[:3], 2)


def test_contract_augmix_rgb(rgb):
  _check_contract(augment.augmix, rgb[:3])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["rgb", "gray"])
def test_contract_augmix_all_ops_and_gray(kind, rgb, gray):
  x = (rgb if kind == "rgb" else gray)[:3]
  _check_contract(PER_EXAMPLE["augmix_all_ops_depth2"], x)
  if kind == "gray":
    _check_contract(augment.augmix, x)


def test_per_example_ops_reject_batches_and_ints(rgb):
  key = jax.random.key(0)
  for name, fn in PER_EXAMPLE.items():
    with pytest.raises(ValueError, match="image"):
      fn(key, rgb)  # rank 4
    with pytest.raises(ValueError, match="image"):
      fn(key, (rgb[0] * 255).astype(jnp.uint8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
      fn(key, rgb[0] * 2.0)


# --------------------------------------------------------------------------- #
# AugMix operations against PIL
# --------------------------------------------------------------------------- #
def _pil_affine(params):
  return lambda p: p.transform(p.size, Image.AFFINE, params, resample=Image.BILINEAR)


PIL_CASES = [
  ("autocontrast", ImageOps.autocontrast, _augmix.autocontrast),
  ("equalize", ImageOps.equalize, _augmix.equalize),
  ("posterize3", lambda p: ImageOps.posterize(p, 3), lambda x: _augmix.posterize(x, 3)),
  ("posterize4", lambda p: ImageOps.posterize(p, 4), lambda x: _augmix.posterize(x, 4)),
  ("solarize100", lambda p: ImageOps.solarize(p, 100), lambda x: _augmix.solarize(x, 100)),
  ("solarize230", lambda p: ImageOps.solarize(p, 230), lambda x: _augmix.solarize(x, 230)),
  ("rotate7", lambda p: p.rotate(7, resample=Image.BILINEAR), lambda x: _augmix.rotate(x, 7.0)),
  ("rotate-9", lambda p: p.rotate(-9, resample=Image.BILINEAR), lambda x: _augmix.rotate(x, -9.0)),
  ("shear_x", _pil_affine((1, 0.2, 0, 0, 1, 0)), lambda x: _augmix.shear_x(x, 0.2)),
  ("shear_y", _pil_affine((1, 0, 0, -0.25, 1, 0)), lambda x: _augmix.shear_y(x, -0.25)),
  ("translate_x", _pil_affine((1, 0, 5, 0, 1, 0)), lambda x: _augmix.translate_x(x, 5.0)),
  ("translate_y", _pil_affine((1, 0, 0, 0, 1, -3)), lambda x: _augmix.translate_y(x, -3.0)),
  ("color1.6", lambda p: ImageEnhance.Color(p).enhance(1.6), lambda x: _augmix.color(x, 1.6)),
  ("color0.3", lambda p: ImageEnhance.Color(p).enhance(0.3), lambda x: _augmix.color(x, 0.3)),
  (
    "contrast1.7",
    lambda p: ImageEnhance.Contrast(p).enhance(1.7),
    lambda x: _augmix.contrast(x, 1.7),
  ),
  (
    "contrast0.3",
    lambda p: ImageEnhance.Contrast(p).enhance(0.3),
    lambda x: _augmix.contrast(x, 0.3),
  ),
  (
    "brightness1.6",
    lambda p: ImageEnhance.Brightness(p).enhance(1.6),
    lambda x: _augmix.brightness(x, 1.6),
  ),
  (
    "sharpness1.8",
    lambda p: ImageEnhance.Sharpness(p).enhance(1.8),
    lambda x: _augmix.sharpness(x, 1.8),
  ),
  (
    "sharpness0.2",
    lambda p: ImageEnhance.Sharpness(p).enhance(0.2),
    lambda x: _augmix.sharpness(x, 0.2),
  ),
]


@pytest.mark.parametrize("case", PIL_CASES, ids=[c[0] for c in PIL_CASES])
def test_augmix_ops_match_pil(case):
  """Stated tolerance: every pixel within 1.5 grey levels of PIL, mean within 0.6.

  PIL rounds or truncates to uint8 at every step while advjax stays float; the
  histogram, bit and integer-shift operations agree exactly.
  """
  _, pil_fn, jax_fn = case
  imgs = _rgb_uint8()
  ref = np.stack([np.asarray(pil_fn(Image.fromarray(i))) for i in imgs]).astype(np.float32)
  out = np.asarray(jax.jit(jax.vmap(jax_fn))(jnp.asarray(imgs / 255.0, jnp.float32))) * 255
  diff = np.abs(out - ref)
  assert diff.max() <= 1.5, diff.max()
  assert diff.mean() <= 0.6, diff.mean()


def test_augmix_ops_exact_on_levels():
  imgs = jnp.asarray(_rgb_uint8(2) / 255.0, jnp.float32)
  for fn, pil in [
    (_augmix.equalize, ImageOps.equalize),
    (lambda x: _augmix.posterize(x, 4), lambda p: ImageOps.posterize(p, 4)),
  ]:
    out = np.round(np.asarray(jax.vmap(fn)(imgs)) * 255)
    ref = np.stack([np.asarray(pil(Image.fromarray(i))) for i in _rgb_uint8(2)])
    np.testing.assert_array_equal(out, ref)


def test_augmix_op_names_and_magnitudes(rgb):
  assert augment.augmix_op_names() == [
    "autocontrast",
    "equalize",
    "posterize",
    "rotate",
    "solarize",
    "shear_x",
    "shear_y",
    "translate_x",
    "translate_y",
  ]
  assert len(augment.augmix_op_names(all_ops=True)) == 13
  x = rgb[0]
  # translate at severity 3 moves by at most int(3 * (32 / 3) / 10) = 3 pixels.
  for k in range(8):
    out = augment.augmix_op(jax.random.key(k), x, name="translate_x", severity=3.0)
    shifts = [
      s
      for s in range(-4, 5)
      if np.allclose(np.asarray(_augmix.translate_x(x, float(s))), np.asarray(out))
    ]
    assert shifts and all(abs(s) <= 3 for s in shifts)
  with pytest.raises(ValueError, match="AugMix operation"):
    augment.augmix_op(jax.random.key(0), x, name="blur")


def test_augmix_checks_args(rgb):
  x = rgb[0]
  with pytest.raises(ValueError, match="width"):
    augment.augmix(jax.random.key(0), x, width=0)
  with pytest.raises(ValueError, match="depth"):
    augment.augmix(jax.random.key(0), x, depth=1.5)
  with pytest.raises(ValueError, match="severity"):
    augment.augmix(jax.random.key(0), x, severity=11)


# --------------------------------------------------------------------------- #
# DiffAugment ranges
# --------------------------------------------------------------------------- #
def test_diffaugment_translation_range(rgb):
  x = rgb[0]
  s = int(32 * 0.125 + 0.5)
  seen = set()
  for k in range(12):
    out = np.asarray(augment.diffaugment(jax.random.key(k), x, policy="translation"))
    found = None
    for ty in range(-s, s + 1):
      for tx in range(-s, s + 1):
        ref = np.zeros_like(out)
        src = np.asarray(x)
        ys, yd = (
          (slice(0, 32 - ty), slice(ty, 32)) if ty >= 0 else (slice(-ty, 32), slice(0, 32 + ty))
        )
        xs, xd = (
          (slice(0, 32 - tx), slice(tx, 32)) if tx >= 0 else (slice(-tx, 32), slice(0, 32 + tx))
        )
        ref[yd, xd] = src[ys, xs]
        if np.array_equal(ref, out):
          found = (ty, tx)
    assert found is not None
    seen.add(found)
  assert len(seen) > 3


def test_diffaugment_cutout_is_half_size_square(rgb):
  x = np.asarray(rgb[1])
  for k in range(10):
    out = np.asarray(augment.diffaugment(jax.random.key(k), rgb[1], policy="cutout"))
    zeroed = np.all(out == 0, axis=-1) & ~np.all(x == 0, axis=-1)
    rows, cols = np.nonzero(zeroed)
    assert 1 <= rows.max() - rows.min() + 1 <= 16 and 1 <= cols.max() - cols.min() + 1 <= 16
    untouched = ~np.all(out == 0, axis=-1)
    np.testing.assert_array_equal(out[untouched], x[untouched])
  full = [
    np.sum(
      np.all(np.asarray(augment.diffaugment(jax.random.key(k), rgb[1], policy="cutout")) == 0, -1)
    )
    for k in range(30)
  ]
  assert max(full) == 16 * 16


def test_diffaugment_color_ranges(gray):
  """On a grey image color = contrast(brightness): out = (x - mean) * c + mean + b."""
  x = np.asarray(gray[0])
  for k in range(10):
    out = np.asarray(augment.diffaugment(jax.random.key(k), gray[0], policy="color"))
    inside = (out > 0.01) & (out < 0.99)
    if inside.sum() < 20 or np.ptp(x[inside]) < 0.2:
      continue
    c, intercept = np.polyfit(x[inside] - x.mean(), out[inside], 1)
    b = intercept - x.mean()
    assert 0.5 - 1e-3 <= c <= 1.5 + 1e-3
    assert -0.5 - 1e-3 <= b <= 0.5 + 1e-3


def test_diffaugment_bad_policy(rgb):
  with pytest.raises(ValueError, match="policy"):
    augment.diffaugment(jax.random.key(0), rgb[0], policy="color,rotation")
  np.testing.assert_array_equal(
    np.asarray(augment.diffaugment(jax.random.key(0), rgb[0], policy="")), np.asarray(rgb[0])
  )


# --------------------------------------------------------------------------- #
# Mixing
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("fn", [augment.mixup_batch, augment.cutmix_batch])
def test_mixing_targets_match_images(fn):
  b = 8
  values = jnp.arange(b, dtype=jnp.float32) / b
  images = jnp.broadcast_to(values[:, None, None, None], (b, 16, 16, 3))
  mix = jax.jit(functools.partial(fn, num_classes=b))
  for k in range(5):
    mixed, targets = mix(jax.random.key(k), images, jnp.arange(b))
    assert mixed.shape == images.shape and targets.shape == (b, b)
    np.testing.assert_allclose(np.asarray(targets.sum(-1)), 1.0, atol=1e-6)
    # The mean of each mixed image is the target-weighted mean of the sources.
    np.testing.assert_allclose(
      np.asarray(mixed.mean(axis=(1, 2, 3))), np.asarray(targets @ values), atol=1e-5
    )
    assert float(mixed.min()) >= 0 and float(mixed.max()) <= 1


def test_mixing_bad_input(rgb):
  with pytest.raises(ValueError, match="num_classes"):
    augment.mixup_batch(jax.random.key(0), rgb, jnp.arange(rgb.shape[0]))
  with pytest.raises(ValueError, match="labels"):
    augment.cutmix_batch(jax.random.key(0), rgb, jnp.arange(3), num_classes=10)
  with pytest.raises(ValueError, match="images"):
    augment.mixup_batch(jax.random.key(0), rgb[0], jnp.arange(3), num_classes=10)
  with pytest.raises(ValueError, match="alpha"):
    augment.mixup_batch(jax.random.key(0), rgb, jnp.arange(6), num_classes=10, alpha=-1.0)


def test_manifold_mixup_hook_at_input_equals_input_mixup(trained_lenet, mnist_test_batch):
  model, variables, _ = trained_lenet
  x, y = mnist_test_batch[0][:16], mnist_test_batch[1][:16]
  key = jax.random.key(4)
  hook, targets = augment.manifold_mixup_hook(key, y, blocks=(0,), num_classes=10)
  plan = augment.sample_mixup_plan(key, 16, blocks=(0,))
  expected = model.apply(variables, augment.mix_views(x, plan))
  got = model.apply(variables, x, block_hook=hook)
  np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=1e-4)
  np.testing.assert_allclose(
    np.asarray(targets), np.asarray(augment.mixup_targets(y, plan, num_classes=10))
  )


def test_manifold_mixup_hook_jits_and_mixes_one_block(trained_lenet, mnist_test_batch):
  model, variables, _ = trained_lenet
  x, y = mnist_test_batch[0][:16], mnist_test_batch[1][:16]

  @jax.jit
  def loss(key):
    hook, t = augment.manifold_mixup_hook(key, y, blocks=(1, 2, 3), num_classes=10)
    return losses.cross_entropy(model.apply(variables, x, block_hook=hook), t)

  clean = losses.cross_entropy(model.apply(variables, x), y)
  for k in range(3):
    out = loss(jax.random.key(k))
    assert out.shape == (16,) and bool(jnp.all(jnp.isfinite(out)))
    assert float(jnp.mean(out)) > float(jnp.mean(clean))
  # Blocks that are not chosen are untouched.
  key = jax.random.key(9)
  hook, _ = augment.manifold_mixup_hook(key, y, blocks=(1, 2, 3), num_classes=10)
  chosen = int(augment.sample_mixup_plan(key, 16, blocks=(1, 2, 3)).block)
  h = jnp.ones((16, 4)) * jnp.arange(16.0)[:, None]
  for i in range(5):
    same = bool(jnp.all(hook(i, h) == h))
    assert same == (i != chosen)


# --------------------------------------------------------------------------- #
# NoisyMix noise and the JSD consistency loss
# --------------------------------------------------------------------------- #
def test_sparse_noise_fractions_and_levels():
  x = jnp.ones((64, 32, 32, 3))
  key = jax.random.key(0)
  add = augment.additive_noise(key, x, level=0.5, sparsity=0.65)
  assert abs(float(jnp.mean(add == x)) - 0.65) < 0.01
  noise = (add - x)[add != x]
  assert float(jnp.std(noise)) < 0.5  # level * Beta(2, 5) with b < 1
  mult = augment.multiplicative_noise(key, x, level=0.5, sparsity=0.65)
  assert abs(float(jnp.mean(mult == x)) - 0.65) < 0.01
  assert float(jnp.max(jnp.abs(mult - 1))) <= 0.5
  both = augment.sparse_noise(key, x)
  assert both.shape == x.shape and not bool(jnp.all(both == x))
  np.testing.assert_array_equal(
    np.asarray(augment.sparse_noise(key, x, add=0.0, mult=0.0)), np.asarray(x)
  )


def test_noise_views_scale_additive_level_with_view():
  h = jnp.zeros((3 * 2000, 8))
  stds = []
  for k in range(20):
    out = augment.noise_views(jax.random.key(k), h, num_views=3, mult=0.0, sparsity=0.0)
    stds.append(np.asarray(out.reshape(3, -1).std(axis=1)))
  stds = np.mean(stds, axis=0)
  # E[b] is the same for each view; the level is add * v.
  np.testing.assert_allclose(stds / stds[0], [1, 2, 3], rtol=0.35)


def test_noisy_mixup_hook_with_three_views(trained_lenet, mnist_test_batch):
  model, variables, _ = trained_lenet
  x, y = mnist_test_batch[0][:8], mnist_test_batch[1][:8]
  views = jnp.concatenate([x, jnp.clip(x + 0.2, 0, 1), x[:, ::-1]])  # stand-in views

  @jax.jit
  def loss(key):
    hook, t = augment.noisy_mixup_hook(key, y, blocks=(0, 2), num_classes=10)
    logits = model.apply(variables, views, block_hook=hook)
    clean, a1, a2 = jnp.split(logits, 3)
    return losses.cross_entropy(clean, t) + 12 * losses.jsd_consistency(clean, a1, a2)

  out = loss(jax.random.key(1))
  assert out.shape == (8,) and bool(jnp.all(jnp.isfinite(out)))
  hook = augment.noise_hook(jax.random.key(0), blocks=(2,))
  np.testing.assert_array_equal(np.asarray(hook(1, x)), np.asarray(x))
  assert not bool(jnp.all(hook(2, x) == x))


def test_jsd_consistency_values():
  rng = np.random.default_rng(0)
  a, b, c = (jnp.asarray(rng.normal(size=(5, 10)) * 3, jnp.float32) for _ in range(3))
  out = np.asarray(losses.jsd_consistency(a, b, c))
  ps = [np.exp(v) / np.exp(v).sum(-1, keepdims=True) for v in map(np.asarray, (a, b, c))]
  m = sum(ps) / 3
  ref = sum((p * (np.log(p) - np.log(m))).sum(-1) for p in ps) / 3
  np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-6)
  assert out.shape == (5,) and np.all(out >= 0) and np.all(out <= np.log(3) + 1e-6)
  np.testing.assert_allclose(np.asarray(losses.jsd_consistency(a, a, a)), 0.0, atol=1e-6)
  np.testing.assert_allclose(np.asarray(jax.jit(losses.jsd_consistency)(a, b, c)), out, rtol=1e-5)
  with pytest.raises(ValueError, match="logits_aug1"):
    losses.jsd_consistency(a, b[:3], c)


# --------------------------------------------------------------------------- #
# MaxUp
# --------------------------------------------------------------------------- #
def test_maxup_worst_copy_is_the_argmax_without_gradient():
  # MaxUp over view sources in the train step: tests/test_recipes.py
  losses_ = jnp.asarray([[0.1, 2.0, 1.0], [0.5, 1.0, 1.0], [0.3, -1.0, 0.0]])
  np.testing.assert_array_equal(augment.maxup_worst_copy(losses_), [1, 0, 0])  # ties: first
  grad = jax.grad(lambda l: jnp.sum(augment.maxup_worst_copy(l).astype(jnp.float32)))(losses_)
  assert not np.any(np.asarray(grad))


# --------------------------------------------------------------------------- #
# ACE
# --------------------------------------------------------------------------- #
def test_color_filter_identity_and_monotone(rgb):
  k = 64
  x = rgb[0]
  ident = augment.apply_color_filter(x, jnp.full((3, k), 1.0 / k))
  np.testing.assert_allclose(np.asarray(ident), np.asarray(x), atol=1e-6)
  ramp = jnp.linspace(0, 1, 101)[:, None, None] * jnp.ones((1, 1, 3))
  out = augment.random_color_filter(jax.random.key(0), ramp)
  d = np.diff(np.asarray(out)[:, 0, :], axis=0)
  assert np.all(d >= -1e-6)  # monotone curves
  np.testing.assert_allclose(np.asarray(out)[[0, -1], 0, :], [[0] * 3, [1] * 3], atol=1e-6)
  with pytest.raises(ValueError, match="bounds"):
    augment.random_color_filter(jax.random.key(0), x, bounds=(1.2, 2.0))


def test_ace_identity_at_init_and_lowers_accuracy(trained_lenet, mnist_test_batch):
  _, _, logits_fn = trained_lenet
  x, y = mnist_test_batch[0][:64], mnist_test_batch[1][:64]
  key = jax.random.key(0)
  init = augment.ace(key, logits_fn, x, y, num_steps=0)
  np.testing.assert_allclose(np.asarray(init), np.asarray(x), atol=1e-6)
  acc = lambda z: float(jnp.mean(jnp.argmax(logits_fn(z), -1) == y))
  adv = jax.jit(functools.partial(augment.ace, logits_fn=logits_fn, num_steps=20))(
    key, images=x, labels=y
  )
  assert adv.shape == x.shape and float(adv.min()) >= 0 and float(adv.max()) <= 1
  # MNIST is nearly binary, so a monotone curve fixing 0 and 1 can only do so much:
  # measured 0.97 -> 0.84 on 128 images with these settings.
  assert acc(x) > 0.9
  assert acc(adv) < acc(x) - 0.06, (acc(x), acc(adv))
  # Box on theta for training.
  filtered, theta = augment.ace_with_info(
    key, logits_fn, x[:8], y[:8], num_steps=3, bounds=(0.5, 1.5)
  )
  np.testing.assert_array_equal(
    filtered, augment.ace(key, logits_fn, x[:8], y[:8], num_steps=3, bounds=(0.5, 1.5))
  )
  assert float(theta.min()) >= 0.5 / 64 - 1e-7 and float(theta.max()) <= 1.5 / 64 + 1e-7
  with pytest.raises(ValueError, match="labels"):
    augment.ace(key, logits_fn, x, y[:3])
  with pytest.raises(ValueError, match="num_steps"):
    augment.ace(key, logits_fn, x, y, num_steps=-1)


# --------------------------------------------------------------------------- #
# AugMix: the batched implementation against the per-example one
# --------------------------------------------------------------------------- #
def _augmix_one(key, image, severity, width, depth, alpha, all_ops):
  """AugMix of one image with true conditionals: the per-example definition, the
  reference of `augmix` (which runs `_augmix._augmix_batch`: the same draws, the same
  values up to float rounding)."""
  ops = list((_augmix.AUGMENTATIONS_ALL if all_ops else _augmix.AUGMENTATIONS).values())
  # The last branch is the identity, taken by the steps beyond the chain's depth.
  branches = [lambda kk, xx, f=f: f(kk, xx, severity) for f in ops] + [lambda kk, xx: xx]
  weights, m, op, k_op = _augmix._draws(key, len(ops), alpha, width, depth)

  def chain(inputs):
    def step(x, step_inputs):
      idx, k = step_inputs
      return jax.lax.switch(idx, branches, k, x), None

    x, _ = jax.lax.scan(step, image, inputs)
    return x

  chains = jax.lax.map(chain, (op, k_op))
  mix = jnp.tensordot(weights.astype(image.dtype), chains, axes=1)
  out = (1.0 - m) * image + m * mix
  return jnp.clip(out, 0.0, 1.0).astype(image.dtype)


@pytest.mark.parametrize(
  "options", [dict(), dict(all_ops=True, depth=2, width=2)], ids=["default", "all_ops"]
)
def test_augmix_batched_equals_per_example_chains(options, rgb):
  """`jit(vmap(augmix))` groups images by operation; `_augmix_one` runs each
  example's chains with `lax.switch`. Same draws, so the same values."""
  x = jnp.concatenate([rgb, rgb[:, ::-1]])  # 12 images
  keys = jax.random.split(jax.random.key(7), x.shape[0])
  args = (
    3.0,
    options.get("width", 3),
    options.get("depth", -1),
    1.0,
    options.get("all_ops", False),
  )
  per_example = jax.jit(jax.vmap(lambda k, a: _augmix_one(k, a, *args)))(keys, x)
  batched = jax.jit(jax.vmap(functools.partial(augment.augmix, **options)))(keys, x)
  np.testing.assert_allclose(np.asarray(batched), np.asarray(per_example), atol=1e-5)
  assert float(jnp.max(jnp.abs(batched - x))) > 0.05  # the chains did something
  # vmap of vmap runs the flattened batch: the same values as one vmap.
  nested = jax.vmap(jax.vmap(functools.partial(augment.augmix, **options)))(
    keys.reshape(2, 6), x.reshape((2, 6) + x.shape[1:])
  )
  np.testing.assert_allclose(np.asarray(nested).reshape(x.shape), np.asarray(batched), atol=1e-6)
