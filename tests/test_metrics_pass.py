"""SSIM, ECC homography alignment, PASS and perturbation norms (issue 4)."""

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage import data as skdata
from skimage import transform as sktransform
from skimage.metrics import structural_similarity

from advjax import metrics


def _homography(deg, tx, ty, px, py, center):
  """Rotation by `deg` about `center`, translation (tx, ty), perspective (px, py)."""
  th = np.deg2rad(deg)
  rot = np.array([[np.cos(th), -np.sin(th), 0], [np.sin(th), np.cos(th), 0], [px, py, 1]])
  c = np.array([[1, 0, center], [0, 1, center], [0, 0, 1]], np.float64)
  shift = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]], np.float64)
  return (c @ rot @ np.linalg.inv(c) @ shift).astype(np.float32)


def _displacement(warp, true, points):
  """Max distance (px) between p and (warp @ true)(p) over points [N, 2] (x, y)."""
  m = np.asarray(warp, np.float64) @ np.asarray(true, np.float64)
  p = np.concatenate([points, np.ones((len(points), 1))], axis=1).T
  q = m @ p
  return np.abs(q[:2] / q[2] - p[:2]).max()


@pytest.fixture(scope="module")
def mnist_images(mnist):
  x, _ = mnist["test"].get(np.arange(48))
  return x


def _cv_pass(adv, orig):
  """PASS with OpenCV ECC + scikit-image SSIM (Rozsa et al.'s pipeline); None on failure."""
  warp = np.eye(3, dtype=np.float32)
  try:
    cv2.findTransformECC(
      orig,
      adv,
      warp,
      cv2.MOTION_HOMOGRAPHY,
      (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-3),
      None,
      5,
    )
  except cv2.error:
    return None
  aligned = cv2.warpPerspective(
    adv, warp, (adv.shape[1], adv.shape[0]), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
  )
  return structural_similarity(
    aligned, orig, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0
  )


# --------------------------------------------------------------------------- #
# SSIM
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_matches_skimage(channels):
  rng = np.random.default_rng(0)
  a = rng.uniform(size=(4, 32, 40, channels)).astype(np.float32)
  b = np.clip(a + rng.normal(scale=0.1, size=a.shape), 0, 1).astype(np.float32)
  got = np.asarray(metrics.ssim(jnp.asarray(a), jnp.asarray(b)))
  ref = [
    structural_similarity(
      a[i],
      b[i],
      gaussian_weights=True,
      sigma=1.5,
      use_sample_covariance=False,
      data_range=1.0,
      channel_axis=-1,
    )
    for i in range(4)
  ]
  np.testing.assert_allclose(got, ref, atol=1e-5)


def test_ssim_matches_skimage_on_mnist(mnist_images):
  a = mnist_images[:8]
  b = np.clip(a[::-1] * 0.7 + 0.2, 0, 1).astype(np.float32)
  got = np.asarray(jax.jit(metrics.ssim)(a, b))
  ref = [
    structural_similarity(
      a[i, ..., 0],
      b[i, ..., 0],
      gaussian_weights=True,
      sigma=1.5,
      use_sample_covariance=False,
      data_range=1.0,
    )
    for i in range(8)
  ]
  np.testing.assert_allclose(got, ref, atol=1e-5)


# --------------------------------------------------------------------------- #
# PASS basics
# --------------------------------------------------------------------------- #
def test_pass_of_identical_images_is_one(mnist_images):
  x = jnp.asarray(mnist_images[:8])
  score, info = metrics.pass_score_with_info(x, x)
  np.testing.assert_allclose(np.asarray(score), 1.0, atol=1e-6)
  assert info.warp.shape == (8, 3, 3)
  # Nothing to align: the warp stays the identity.
  np.testing.assert_allclose(
    np.asarray(info.warp), np.broadcast_to(np.eye(3), (8, 3, 3)), atol=1e-3
  )


def test_pass_never_nan_and_falls_back_on_flat_images():
  blank = jnp.zeros((2, 28, 28, 1))
  gray = jnp.full((2, 28, 28, 1), 0.5)
  noise = jax.random.uniform(jax.random.key(0), (2, 28, 28, 1))
  pass_fn = lambda a, b: metrics.pass_score_with_info(a, b)
  for a, b in [(blank, blank), (blank, gray), (noise, blank), (gray, noise)]:
    score, info = pass_fn(a, b)
    assert np.all(np.isfinite(np.asarray(score)))
    assert np.all(np.isfinite(np.asarray(info.warp)))
  # A flat image has no gradient: alignment cannot improve on the identity.
  _, info = metrics.pass_score_with_info(blank, gray)
  assert np.all(np.asarray(info.fallback))
  plain = metrics.ssim(blank, gray)
  np.testing.assert_allclose(
    np.asarray(metrics.pass_score(blank, gray)), np.asarray(plain), rtol=1e-4, atol=1e-7
  )


def test_pass_jit_and_vmap_agree(mnist_images):
  x = jnp.asarray(mnist_images[:6])
  adv = jnp.clip(x + 0.2 * jnp.sign(jax.random.normal(jax.random.key(1), x.shape)), 0, 1)
  eager = metrics.pass_score(adv, x)
  jitted = jax.jit(metrics.pass_score)(adv, x)
  vmapped = jax.vmap(lambda a, b: metrics.pass_score(a[None], b[None])[0])(adv, x)
  np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), atol=1e-5)
  np.testing.assert_allclose(np.asarray(vmapped), np.asarray(eager), atol=1e-4)


def test_norms():
  x = jnp.zeros((2, 4, 4, 1))
  adv = x.at[0, 0, 0, 0].set(0.5).at[1].set(0.25)
  np.testing.assert_allclose(np.asarray(metrics.linf_norm(adv, x)), [0.5, 0.25])
  np.testing.assert_allclose(np.asarray(metrics.l2_norm(adv, x)), [0.5, 1.0])
  np.testing.assert_allclose(np.asarray(metrics.l2_per_pixel(adv, x)), [0.5 / 16, 1.0 / 16])


# --------------------------------------------------------------------------- #
# Recovering known homographies
# --------------------------------------------------------------------------- #
HOMOGRAPHIES = [
  (4.0, 1.5, -1.0, 2e-4, -1e-4),
  (-5.0, -2.0, 2.0, -3e-4, 2e-4),
  (3.0, 2.0, 2.0, 0.0, 3e-4),
]


@pytest.mark.parametrize("photo", ["camera", "astronaut"])
def test_recovers_homography_on_photos(photo):
  img = getattr(skdata, photo)().astype(np.float32) / 255.0
  if img.ndim == 2:
    img = img[..., None]
  big = sktransform.resize(img, (128, 128), anti_aliasing=True).astype(np.float32)
  o, n = 32, 64
  shift = np.array([[1, 0, o], [0, 1, o], [0, 0, 1]], np.float32)
  fixed, moving, truths = [], [], []
  for params in HOMOGRAPHIES:
    h_big = _homography(*params, center=63.5)
    # Warp the large image, then crop: the crop has no empty border.
    warped = np.asarray(metrics.warp_homography(jnp.asarray(big[None]), h_big))[0]
    moving.append(warped[o : o + n, o : o + n])
    fixed.append(big[o : o + n, o : o + n])
    truths.append(np.linalg.inv(shift) @ h_big @ shift)
  fixed, moving = jnp.asarray(np.stack(fixed)), jnp.asarray(np.stack(moving))
  res = metrics.ecc_homography(moving, fixed)
  corners = np.array([[0, 0], [n - 1, 0], [0, n - 1], [n - 1, n - 1]], np.float64)
  for w, t in zip(np.asarray(res.warp), truths):
    # warp ~ inverse of the true homography: their product moves no corner by > 0.6 px.
    assert _displacement(w, t, corners) < 0.6
  assert not np.any(np.asarray(res.fallback))
  score, info = metrics.pass_score_with_info(moving, fixed)
  assert np.all(np.asarray(score) > 0.9)
  assert np.all(np.asarray(score) > np.asarray(info.ssim_unaligned) + 0.3)


def test_recovers_homography_on_mnist_digits(mnist_images):
  x = jnp.asarray(mnist_images[:16])
  for params in [(4.0, 1.5, -1.0, 1e-3, -5e-4), (-5.0, -2.0, 2.0, -1e-3, 1e-3)]:
    h = _homography(*params, center=13.5)
    moving = metrics.warp_homography(x, h)
    res = metrics.ecc_homography(moving, x)
    errs = []
    for w, img in zip(np.asarray(res.warp), mnist_images[:16]):
      ys, xs = np.nonzero(img[..., 0] > 0.2)
      errs.append(_displacement(w, h, np.stack([xs, ys], 1).astype(np.float64)))
    # On the ink the recovered warp undoes the true one to a fraction of a pixel.
    assert np.median(errs) < 0.3, errs
    assert np.max(errs) < 1.5, errs
    score, info = metrics.pass_score_with_info(moving, x)
    assert np.all(np.asarray(score) > 0.85)
    assert np.median(np.asarray(score) - np.asarray(info.ssim_unaligned)) > 0.4


def test_warp_homography_matches_opencv(mnist_images):
  h = _homography(3.0, 1.0, -0.5, 1e-3, 0.0, center=13.5)
  ours = np.asarray(metrics.warp_homography(jnp.asarray(mnist_images[:4]), h))
  for i in range(4):
    ref = cv2.warpPerspective(
      mnist_images[i, ..., 0], h, (28, 28), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    )
    # OpenCV interpolates with 1/32-pixel fixed-point weights.
    np.testing.assert_allclose(ours[i, ..., 0], ref, atol=0.03)


# --------------------------------------------------------------------------- #
# Agreement with OpenCV ECC + scikit-image SSIM
# --------------------------------------------------------------------------- #
def test_pass_agrees_with_opencv_on_mnist(mnist_images):
  x = mnist_images[:48]
  rng = np.random.default_rng(0)
  # Perturbations as attacks make them: sparse and dense, on the 1/255 grid.
  noise = rng.choice([-1.0, 0.0, 1.0], size=x.shape, p=[0.2, 0.6, 0.2])
  amp = rng.uniform(0.05, 0.3, size=(len(x), 1, 1, 1))
  adv = (np.round(np.clip(x + amp * noise, 0, 1) * 255) / 255).astype(np.float32)
  # Some pairs also move a little, as a misaligned perturbation would.
  h = _homography(2.0, 1.0, 0.5, 0.0, 0.0, center=13.5)
  adv[::3] = np.asarray(metrics.warp_homography(jnp.asarray(adv[::3]), h))
  ours = np.asarray(jax.jit(metrics.pass_score)(jnp.asarray(adv), jnp.asarray(x)))
  assert np.all(np.isfinite(ours))
  diffs = []
  for i in range(len(x)):
    ref = _cv_pass(adv[i, ..., 0], x[i, ..., 0])
    if ref is not None:
      diffs.append(abs(ref - ours[i]))
  assert len(diffs) >= len(x) // 2
  assert np.median(diffs) <= 0.005, np.median(diffs)


# --------------------------------------------------------------------------- #
# Bad input
# --------------------------------------------------------------------------- #
def test_bad_inputs_raise():
  x = jnp.zeros((2, 28, 28, 1))
  with pytest.raises(ValueError, match="same shape"):
    metrics.pass_score(x, jnp.zeros((3, 28, 28, 1)))
  with pytest.raises(ValueError, match="floating"):
    metrics.pass_score(x.astype(jnp.uint8), x.astype(jnp.uint8))
  with pytest.raises(ValueError, match="rank 4"):
    metrics.pass_score(x[0], x[0])
  with pytest.raises(ValueError, match=r"\[0, 1\]"):
    metrics.pass_score(x + 2.0, x)
  with pytest.raises(ValueError, match="11x11"):
    metrics.pass_score(jnp.zeros((1, 8, 8, 1)), jnp.zeros((1, 8, 8, 1)))
  with pytest.raises(ValueError, match="same shape"):
    metrics.ssim(x, jnp.zeros((2, 28, 27, 1)))
  with pytest.raises(ValueError, match="warps"):
    metrics.warp_homography(x, jnp.eye(4))
  with pytest.raises(ValueError, match="border"):
    metrics.warp_homography(x, jnp.eye(3), border="wrap")
  with pytest.raises(ValueError, match="same shape"):
    metrics.l2_per_pixel(x, x[:1])


def test_value_checks_do_not_break_jit():
  x = jnp.zeros((2, 28, 28, 1))
  out = jax.jit(metrics.pass_score)(x + 0.5, x)  # no ConcretizationTypeError
  assert out.shape == (2,)
