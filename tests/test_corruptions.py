"""Tests of the common-corruption suite (advjax.augment corrupt & co., issue 5)."""

import functools
import warnings
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests._inputs import rgb_crops
from PIL import Image

from advjax import augment
from advjax.augment import _corruptions


def _rgb_uint8(n=8, size=32):
  return rgb_crops(n=n, size=size, photos=("astronaut", "chelsea", "coffee", "rocket"))


@pytest.fixture(scope="module")
def rgb_u8():
  return _rgb_uint8()


@pytest.fixture(scope="module")
def rgb(rgb_u8):
  return jnp.asarray(rgb_u8 / 255.0, jnp.float32)


def _reference():
  """imagecorruptions, or skip (it needs setuptools<81 for pkg_resources)."""
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    return pytest.importorskip("imagecorruptions")


def _ref_batch(ic, images_u8, name, severity, seed=0):
  """The reference on a batch, deterministic: NumPy's global RNG is seeded, and
  skimage's `random_noise` (impulse noise), which draws from an unseeded
  `default_rng()`, gets a seeded generator."""
  import skimage.util  # pylint: disable=import-outside-toplevel

  np.random.seed(seed)
  rng = np.random.default_rng(seed)
  original = skimage.util.random_noise
  with (
    warnings.catch_warnings(),
    mock.patch.object(
      skimage.util, "random_noise", lambda *a, **kw: original(*a, **{"rng": rng, **kw})
    ),
  ):
    warnings.simplefilter("ignore")
    return np.stack(
      [ic.corrupt(i, corruption_name=name, severity=severity) for i in images_u8]
    ).astype(np.float32)


def _ours(images, name, severity, seed=0):
  return (
    np.asarray(augment.corrupt_batch(jax.random.key(seed), images, name=name, severity=severity))
    * 255.0
  )


# --------------------------------------------------------------------------- #
# Names and contracts
# --------------------------------------------------------------------------- #
def test_names():
  common = augment.corruption_names()
  assert len(common) == 15 and len(set(common)) == 15
  assert len(augment.corruption_names("all")) == 19
  assert augment.corruption_names("validation") == [
    "speckle_noise",
    "gaussian_blur",
    "spatter",
    "saturate",
  ]
  assert augment.corruption_names("noise") == ["gaussian_noise", "shot_noise", "impulse_noise"]
  with pytest.raises(ValueError, match="subset"):
    augment.corruption_names("weird")


def test_names_match_imagecorruptions():
  ic = _reference()
  assert augment.corruption_names("all") == ic.get_corruption_names("all")


@pytest.mark.parametrize("name", _corruptions.COMMON + _corruptions.VALIDATION)
def test_contract_mnist_28px(name, mnist_test_batch):
  """Shape/dtype/range, deterministic per key, jit + vmap == eager, at 28 x 28 x 1."""
  x = mnist_test_batch[0][:2]
  key = jax.random.key(3)
  out = augment.corrupt_batch(key, x, name=name, severity=3)
  assert out.shape == x.shape and out.dtype == x.dtype
  assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
  np.testing.assert_array_equal(
    np.asarray(out), np.asarray(augment.corrupt_batch(key, x, name=name, severity=3))
  )
  if name != "saturate":  # saturation has no effect on greyscale images
    assert float(jnp.mean(jnp.abs(out - x))) > 1e-3  # it does something
  keys = jax.random.split(key, 2)
  eager = augment.corrupt(keys[0], x[0], name=name, severity=3)
  np.testing.assert_allclose(np.asarray(eager), np.asarray(out[0]), atol=2e-5)
  if name in _corruptions.SUBSETS["noise"] + ("speckle_noise", "frost", "snow", "fog"):
    other = augment.corrupt_batch(jax.random.key(4), x, name=name, severity=3)
    assert float(jnp.max(jnp.abs(other - out))) > 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_contract_rgb_all_severities(severity, rgb):
  x = rgb[:2]
  for name in augment.corruption_names("all"):
    out = augment.corrupt_batch(jax.random.key(0), x, name=name, severity=severity)
    assert out.shape == x.shape and out.dtype == x.dtype, name
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0, name


def test_severity_orders_strength(rgb):
  """Higher severity moves the image further (deterministic types)."""
  for name in [
    "contrast",
    "defocus_blur",
    "zoom_blur",
    "pixelate",
    "jpeg_compression",
    "gaussian_noise",
  ]:
    dist = [
      float(
        jnp.mean(
          jnp.abs(
            augment.corrupt_batch(jax.random.key(0), rgb[:4], name=name, severity=s) - rgb[:4]
          )
        )
      )
      for s in (1, 5)
    ]
    assert dist[1] > dist[0], name


def test_bad_input(rgb):
  key = jax.random.key(0)
  with pytest.raises(ValueError, match="corruption name"):
    augment.corrupt(key, rgb[0], name="rain", severity=1)
  for sev in (0, 6, 2.5, True):
    with pytest.raises(ValueError, match="severity"):
      augment.corrupt(key, rgb[0], name="contrast", severity=sev)
  with pytest.raises(ValueError, match="image"):
    augment.corrupt(key, rgb, name="contrast", severity=1)  # rank 4
  with pytest.raises(ValueError, match="images"):
    augment.corrupt_batch(key, rgb[0], name="contrast", severity=1)  # rank 3
  with pytest.raises(ValueError, match="image"):
    augment.corrupt(key, rgb[0] * 255.0, name="contrast", severity=1)


# --------------------------------------------------------------------------- #
# Against imagecorruptions (ImageNet-C code) on 32 x 32 x 3 photos
# --------------------------------------------------------------------------- #
DETERMINISTIC = ["brightness", "contrast", "saturate", "pixelate", "defocus_blur", "zoom_blur"]


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_match_reference(name, rgb_u8, rgb):
  """Within one grey level everywhere (the reference truncates to uint8)."""
  ic = _reference()
  for severity in (1, 3, 5):
    ref = _ref_batch(ic, rgb_u8, name, severity)
    out = _ours(rgb, name, severity)
    diff = np.abs(out - ref)
    assert diff.max() <= 1.01, (name, severity, diff.max())
    assert diff.mean() <= 0.6, (name, severity, diff.mean())


def test_jpeg_matches_reference(rgb_u8, rgb):
  """Luma within 0.6 grey levels of PIL/libjpeg on average, all channels within 1.2.

  Measured: the chroma planes differ by up to ~10 levels on ~1% of the pixels at
  quality 25 (libjpeg's integer DCT and chroma resampling details).
  """
  ic = _reference()
  luma = np.array([0.299, 0.587, 0.114])
  for severity in (1, 3, 5):
    ref = _ref_batch(ic, rgb_u8, "jpeg_compression", severity)
    out = _ours(rgb, "jpeg_compression", severity)
    diff = np.abs(out - ref)
    assert diff.mean() <= 1.2, diff.mean()
    assert np.percentile(diff, 99) <= 12
    assert np.abs(out @ luma - ref @ luma).mean() <= 0.6


def test_jpeg_matches_pil_greyscale_and_other_qualities(mnist_test_batch):
  x = np.asarray(mnist_test_batch[0][:8])
  u8 = np.round(x * 255).astype(np.uint8)
  import io

  for quality in (50, 90):
    ref = []
    for img in u8[..., 0]:
      buf = io.BytesIO()
      Image.fromarray(img).save(buf, "JPEG", quality=quality)
      ref.append(np.asarray(Image.open(buf)))
    ref = np.stack(ref)[..., None].astype(np.float32)
    out = (
      np.asarray(
        jax.vmap(functools.partial(augment.jpeg, quality=quality))(
          jnp.asarray(u8 / 255.0, jnp.float32)
        )
      )
      * 255
    )
    assert np.abs(out - ref).mean() <= 1.0


def test_motion_blur_kernel_matches_reference(rgb_u8):
  pytest.importorskip("cv2")
  _reference()
  from imagecorruptions import corruptions as ref_mod

  for angle in (-40.0, 10.0, 33.0):
    ref = ref_mod._motion_blur(np.array(rgb_u8[0]), radius=15, sigma=8, angle=angle)
    out = np.asarray(_corruptions._motion_blur(jnp.asarray(rgb_u8[0], jnp.float32), 15, 8, angle))
    np.testing.assert_allclose(out, ref, atol=1e-3)


@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"])
def test_noise_distribution_matches_reference(name, rgb_u8, rgb):
  """Mean and standard deviation of (corrupted - clean) agree with the reference."""
  ic = _reference()
  for severity in (1, 3, 5):
    d_ref = _ref_batch(ic, rgb_u8, name, severity) - rgb_u8
    d_out = _ours(rgb, name, severity) - rgb_u8
    assert abs(d_out.mean() - d_ref.mean()) < 1.5, (severity, d_out.mean(), d_ref.mean())
    assert 0.92 < d_out.std() / d_ref.std() < 1.08, (severity, d_out.std(), d_ref.std())


@pytest.mark.parametrize(
  "name,lo,hi",
  [
    ("motion_blur", 0.75, 1.35),
    ("snow", 0.75, 1.3),
    ("elastic_transform", 0.8, 1.25),
    pytest.param("frost", 0.6, 1.4, marks=pytest.mark.slow),
    ("spatter", 0.6, 1.6),
  ],
)
def test_random_types_match_reference_in_distribution(name, lo, hi, rgb_u8, rgb):
  """Spread of (corrupted - clean) within a factor of the reference's (random draws differ;
  frost uses a procedural texture and spatter's water an approximation)."""
  ic = _reference()
  for severity in (1, 3, 5):
    d_ref = _ref_batch(ic, rgb_u8, name, severity) - rgb_u8
    d_out = _ours(rgb, name, severity) - rgb_u8
    assert lo < d_out.std() / d_ref.std() < hi, (severity, d_out.std(), d_ref.std())
    assert abs(d_out.mean() - d_ref.mean()) < 20, (severity, d_out.mean(), d_ref.mean())


def test_gaussian_blur_matches_skimage(rgb):
  """imagecorruptions' gaussian_blur fails with current scikit-image; compare directly."""
  from skimage.filters import gaussian

  x = np.asarray(rgb[:2], np.float64)
  for severity, sigma in [(1, 1), (3, 3), (5, 6)]:
    ref = np.stack([gaussian(i, sigma=sigma, channel_axis=-1) for i in x])
    out = np.asarray(
      augment.corrupt_batch(jax.random.key(0), rgb[:2], name="gaussian_blur", severity=severity)
    )
    np.testing.assert_allclose(out, ref, atol=2e-5)


def test_glass_and_fog_sanity(rgb):
  """The reference fails for these (scikit-image / NumPy 2): check what must hold."""
  x = rgb[:4]
  glass = augment.corrupt_batch(jax.random.key(0), x, name="glass_blur", severity=3)
  # Pixel swaps and Gaussian blurs keep the mean; the result is smoother than the input.
  assert abs(float(glass.mean() - x.mean())) < 0.01
  grad = lambda z: float(jnp.mean(jnp.abs(jnp.diff(z, axis=1))))
  assert grad(glass) < grad(x)
  fog = augment.corrupt_batch(jax.random.key(0), x, name="fog", severity=5)
  assert float(jnp.std(fog)) < float(jnp.std(x))  # fog lowers contrast


_GREY_BRANCH = ("frost", "brightness", "saturate")  # the ones with a path for C = 1


def test_severities_share_one_program_and_agree_with_constant_parameters():
  """The corruptions whose parameters only enter the arithmetic compile one program
  for all five severities of both tables; it agrees with the parameters compiled in as
  constants (`corrupt`) to a unit in the last place of [0, 1] (XLA folds constants)."""
  x = jax.random.uniform(jax.random.key(0), (3, 12, 12, 3))
  keys = [jax.random.key(severity) for severity in range(6)]
  lowered = []

  def listener(event, _, **kw):
    if event == "/jax/core/compile/jaxpr_to_mlir_module_duration":
      lowered.append(event)

  for xx in (x, x[..., :1]):  # the eager key split and input checks, lowered once
    augment.corrupt_batch(keys[1], xx, name="pixelate", severity=1)
  _corruptions._batched_traced.cache_clear()  # new jitted functions: each lowered afresh
  for name in sorted(_corruptions._TRACED_PARAMS):
    batched_lowerings = 0
    for tables in ("imagenet", "cifar10"):
      for severity in range(1, 6):
        for xx in (x, x[..., :1]) if name in _GREY_BRANCH else (x,):
          key = keys[severity]
          jax.monitoring.register_event_duration_secs_listener(listener)
          try:
            got = augment.corrupt_batch(key, xx, name=name, severity=severity, tables=tables)
          finally:
            jax.monitoring.unregister_event_duration_listener(listener)
          batched_lowerings += len(lowered)
          lowered.clear()
          if (tables, severity, xx.shape[-1]) == ("cifar10", 4, 3):  # one compiled reference
            one = functools.partial(augment.corrupt, name=name, severity=severity, tables=tables)
            want = jax.jit(jax.vmap(one))(jax.random.split(key, 3), xx)
            np.testing.assert_allclose(got, want, rtol=0, atol=1.2e-7, err_msg=name)
    assert batched_lowerings == (2 if name in _GREY_BRANCH else 1), name  # one per shape


def test_frost_texture_any_size():
  tex = augment.frost_texture(jax.random.key(0), 20, 50, 3)
  assert tex.shape == (20, 50, 3)
  assert 0.45 < float(tex.mean()) < 0.7 and float(tex.min()) >= 0 and float(tex.max()) <= 1
  assert float(tex[..., 2].mean()) > float(tex[..., 0].mean())  # ice blue


# --------------------------------------------------------------------------- #
# The corrupted test set
# --------------------------------------------------------------------------- #
def test_corrupted_test_set(mnist):
  ds = mnist["test"].take(5)
  out = augment.corrupted_test_set(
    jax.random.key(0), ds, names=["contrast", "gaussian_noise"], severities=(1, 5), batch_size=4
  )
  assert set(out) == {"contrast", "gaussian_noise"}
  assert out["contrast"].shape == (2, 5, 28, 28, 1) and out["contrast"].dtype == np.float32
  assert out["contrast"][1].std() < out["contrast"][0].std()
  np.testing.assert_allclose(
    out["contrast"][0],
    np.asarray(
      augment.corrupt_batch(jax.random.key(0), jnp.asarray(ds.images), name="contrast", severity=1)
    ),
    atol=1e-6,
  )
  u8 = augment.corrupted_test_set(
    jax.random.key(0), ds.images, names=["contrast"], severities=(3,), dtype=np.uint8
  )
  assert u8["contrast"].dtype == np.uint8 and u8["contrast"].shape == (1, 5, 28, 28, 1)
  with pytest.raises(ValueError, match="severity"):
    augment.corrupted_test_set(jax.random.key(0), ds, severities=(0,))
  with pytest.raises(ValueError, match="corruption name"):
    augment.corrupted_test_set(jax.random.key(0), ds, names=["rain"])


# --------------------------------------------------------------------------- #
# CIFAR-10-C severity tables (tables="cifar10"; make_cifar_c.py of
# github.com/hendrycks/robustness, ImageNet-C/create_c/). The numbers below are
# copied from that script, not read from the module.
# --------------------------------------------------------------------------- #
ALL = _corruptions.COMMON + _corruptions.VALIDATION


@pytest.fixture(scope="module")
def colour():
  """4 x [32, 32, 3] random colours away from grey, black and white (HSV well defined)."""
  rng = np.random.default_rng(0)
  return jnp.asarray(rng.uniform(0.05, 0.95, (4, 32, 32, 3)), jnp.float32)


def _cifar(images, name, severity, seed=0):
  return np.asarray(
    augment.corrupt_batch(
      jax.random.key(seed), images, name=name, severity=severity, tables="cifar10"
    )
  )


@pytest.mark.parametrize("severity,c", [(1, 0.05), (3, 0.15), (5, 0.3)])
def test_cifar_brightness_closed_form(severity, c, colour):
  """HSV value + c keeps hue and saturation: each pixel scales by min(V + c, 1) / V."""
  x = np.asarray(colour, np.float64)
  v = x.max(-1, keepdims=True)
  np.testing.assert_allclose(
    _cifar(colour, "brightness", severity), x * np.minimum(v + c, 1) / v, atol=2e-6
  )


@pytest.mark.parametrize("severity,c", [(1, 0.75), (3, 0.4), (5, 0.15)])
def test_cifar_contrast_closed_form(severity, c, colour):
  x = np.asarray(colour, np.float64)
  mean = x.mean(axis=(1, 2), keepdims=True)
  np.testing.assert_allclose(
    _cifar(colour, "contrast", severity), np.clip((x - mean) * c + mean, 0, 1), atol=2e-6
  )


@pytest.mark.parametrize("severity,c", [(1, (0.3, 0)), (3, (1.5, 0)), (5, (2.5, 0.2))])
def test_cifar_saturate_closed_form(severity, c, colour):
  """With hue and value fixed, every channel is V - (V - x) * S' / S."""
  x = np.asarray(colour, np.float64)
  v, lo = x.max(-1, keepdims=True), x.min(-1, keepdims=True)
  s = (v - lo) / v
  s_new = np.clip(s * c[0] + c[1], 0, 1)
  np.testing.assert_allclose(
    _cifar(colour, "saturate", severity), np.clip(v - (v - x) * s_new / s, 0, 1), atol=2e-6
  )


@pytest.mark.parametrize("severity,c", [(1, 0.95), (3, 0.85), (5, 0.65)])
def test_cifar_pixelate_matches_pil_box(severity, c, colour):
  """PIL BOX down to int(32 * c) and back, as the script, on float ('F') planes."""
  x = np.asarray(colour)
  n = int(32 * c)
  ref = np.stack(
    [
      np.stack(
        [
          np.asarray(
            Image.fromarray(img[..., ch], "F").resize((n, n), Image.BOX).resize((32, 32), Image.BOX)
          )
          for ch in range(3)
        ],
        -1,
      )
      for img in x
    ]
  )
  np.testing.assert_allclose(_cifar(colour, "pixelate", severity), ref, atol=2e-6)


@pytest.mark.parametrize("severity,quality", [(1, 80), (5, 40)])
def test_cifar_jpeg_quality(severity, quality, rgb_u8, rgb):
  """Exactly our JPEG at the script's quality, and within ~1 grey level of PIL's."""
  out = _cifar(rgb, "jpeg_compression", severity)
  np.testing.assert_array_equal(
    out, np.asarray(jax.vmap(functools.partial(augment.jpeg, quality=quality))(rgb))
  )
  import io

  ref = []
  for img in rgb_u8:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    ref.append(np.asarray(Image.open(buf)))
  assert np.abs(out * 255 - np.stack(ref)).mean() <= 1.2


@pytest.mark.parametrize("severity,sigma", [(1, 0.4), (5, 1)])
def test_cifar_gaussian_blur_matches_skimage(severity, sigma, rgb):
  from skimage.filters import gaussian

  ref = np.stack([gaussian(i, sigma=sigma, channel_axis=-1) for i in np.asarray(rgb[:2])])
  np.testing.assert_allclose(_cifar(rgb[:2], "gaussian_blur", severity), ref, atol=2e-5)


@pytest.mark.parametrize("severity,radius,alias", [(1, 0.3, 0.4), (5, 1.5, 0.1)])
def test_cifar_defocus_blur_matches_opencv(severity, radius, alias, rgb):
  """The script's disk kernel (cv2.GaussianBlur) applied with cv2.filter2D."""
  cv2 = pytest.importorskip("cv2")
  grid = np.arange(-8, 9)
  xx, yy = np.meshgrid(grid, grid)
  disk = np.array(xx**2 + yy**2 <= radius**2, np.float32)
  kernel = cv2.GaussianBlur(disk / disk.sum(), ksize=(3, 3), sigmaX=alias)
  x = np.asarray(rgb[:2])
  ref = np.stack(
    [np.stack([cv2.filter2D(img[..., ch], -1, kernel) for ch in range(3)], -1) for img in x]
  )
  np.testing.assert_allclose(
    _cifar(rgb[:2], "defocus_blur", severity), np.clip(ref, 0, 1), atol=1e-5
  )


@pytest.mark.parametrize(
  "name,severity,std",
  [
    ("gaussian_noise", 1, 0.04),
    ("gaussian_noise", 5, 0.10),
    ("shot_noise", 1, (0.5 / 500) ** 0.5),
    ("shot_noise", 5, (0.5 / 50) ** 0.5),
    ("speckle_noise", 1, 0.5 * 0.06),
    ("speckle_noise", 5, 0.5 * 0.2),
  ],
)
def test_cifar_noise_std(name, severity, std):
  """On mid-grey the added noise has the script's spread (Poisson: sqrt(x / c)); the
  ImageNet-C spread at the same severity is 2-7x larger."""
  grey = jnp.full((8, 32, 32, 3), 0.5, jnp.float32)
  d = _cifar(grey, name, severity) - 0.5
  assert abs(d.mean()) < 0.01 * std + 2e-3, d.mean()
  assert abs(d.std() / std - 1) < 0.05, (d.std(), std)
  d_imagenet = (
    np.asarray(augment.corrupt_batch(jax.random.key(0), grey, name=name, severity=severity)) - 0.5
  )
  assert d_imagenet.std() > 1.5 * d.std()


@pytest.mark.parametrize("severity,amount", [(1, 0.01), (5, 0.07)])
def test_cifar_impulse_noise_amount(severity, amount):
  grey = jnp.full((8, 32, 32, 3), 0.5, jnp.float32)
  out = _cifar(grey, "impulse_noise", severity)
  changed = out != 0.5
  assert abs(changed.mean() / amount - 1) < 0.1, changed.mean()
  assert np.isin(out[changed], (0.0, 1.0)).all()
  assert abs((out[changed] == 1.0).mean() - 0.5) < 0.1  # salt vs pepper 1:1


@pytest.mark.parametrize("name", ALL)
def test_cifar_contract_and_milder(name, rgb):
  """32 x 32 x 3, severities 1 and 5: shape, dtype, [0, 1], deterministic, jit + vmap ==
  eager, it does something; at severity 5 it moves the images less than ImageNet-C's."""
  x = rgb[:2]
  key = jax.random.key(5)
  for severity in (1, 5):
    out = augment.corrupt_batch(key, x, name=name, severity=severity, tables="cifar10")
    assert out.shape == x.shape and out.dtype == x.dtype
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    np.testing.assert_array_equal(
      np.asarray(out),
      np.asarray(augment.corrupt_batch(key, x, name=name, severity=severity, tables="cifar10")),
    )
    assert float(jnp.mean(jnp.abs(out - x))) > 1e-3, severity
    eager = augment.corrupt(
      jax.random.split(key, 2)[0], x[0], name=name, severity=severity, tables="cifar10"
    )
    np.testing.assert_allclose(np.asarray(eager), np.asarray(out[0]), atol=2e-5)
  imagenet = augment.corrupt_batch(key, x, name=name, severity=5)
  assert float(jnp.mean(jnp.abs(out - x))) < float(jnp.mean(jnp.abs(imagenet - x)))


def test_cifar_elastic_severity_1_is_a_pure_affine_warp(rgb):
  """The script's severity 1 has alpha 0: only the random affine (points moved by up to
  32 * 0.08 = 2.56 px), so the mean is nearly kept and the image is not just shifted noise."""
  x = rgb[:2]
  out = _cifar(x, "elastic_transform", 1)
  assert abs(out.mean() - float(x.mean())) < 0.02
  assert 0.005 < np.abs(out - np.asarray(x)).mean() < 0.2


def test_random_affine_matches_opencv(rgb):
  """The affine step equals cv2.getAffineTransform + warpAffine (BORDER_REFLECT_101) of
  the same three moved points."""
  cv2 = pytest.importorskip("cv2")
  x = np.asarray(rgb[0])
  for seed, jitter in [(0, 0.08), (1, 0.03)]:
    key = jax.random.key(seed)
    out = np.asarray(_corruptions._random_affine(key, jnp.asarray(x), jitter))
    src = np.float32([[26, 26], [26, 6], [6, 6]])  # centre 16 +- 32 // 3, as (x, y)
    moved = src + np.asarray(jax.random.uniform(key, (3, 2), jnp.float32, -1.0, 1.0)) * (
      jitter * 32
    )
    m = cv2.getAffineTransform(src, moved.astype(np.float32))
    ref = cv2.warpAffine(x, m, (32, 32), borderMode=cv2.BORDER_REFLECT_101)
    np.testing.assert_allclose(out, ref, atol=2e-5)
    assert np.abs(ref - x).mean() > 0.01  # the warp is not close to the identity


def test_bad_tables(rgb):
  key = jax.random.key(0)
  for tables in ("cifar100", "ImageNet", None):
    with pytest.raises(ValueError, match=r"`tables`.*imagenet.*cifar10"):
      augment.corrupt(key, rgb[0], name="contrast", severity=1, tables=tables)
  with pytest.raises(ValueError, match="`tables`"):
    augment.corrupt_batch(key, rgb[:2], name="contrast", severity=1, tables="cifar")
  with pytest.raises(ValueError, match="`tables`"):
    augment.corrupted_test_set(key, rgb[:2], names=["contrast"], tables="cifar")
  np.testing.assert_array_equal(
    np.asarray(augment.corrupt(key, rgb[0], name="contrast", severity=2)),
    np.asarray(augment.corrupt(key, rgb[0], name="contrast", severity=2, tables="imagenet")),
  )


def test_cifar_corrupted_test_set(rgb):
  out = augment.corrupted_test_set(
    jax.random.key(0), rgb[:3], names=["contrast"], severities=(2,), tables="cifar10"
  )
  x = np.asarray(rgb[:3], np.float64)
  mean = x.mean(axis=(1, 2), keepdims=True)
  np.testing.assert_allclose(out["contrast"][0], (x - mean) * 0.5 + mean, atol=2e-6)
