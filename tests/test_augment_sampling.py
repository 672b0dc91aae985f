"""The one bilinear sampler (advjax._sampling) that AugMix's affine warps, the
corruptions' zoom and elastic warps and ECC's homography warps share: its border
modes against scipy.ndimage, and its bordered-table form (ECC's) against it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from advjax import _sampling
from tests._inputs import rgb_crops

# advjax border -> scipy.ndimage.map_coordinates mode with the same extension.
SCIPY_MODE = {
  "constant": "grid-constant",
  "edge": "nearest",
  "symmetric": "reflect",
  "reflect": "mirror",
}


@pytest.fixture(scope="module")
def image():
  return rgb_crops(n=1, size=32)[0].astype(np.float32) / 255.0


def _points(shape, lo, hi, seed=0):
  rng = np.random.default_rng(seed)
  return (
    rng.uniform(lo, hi, shape).astype(np.float32),
    rng.uniform(lo, hi, shape).astype(np.float32),
  )


@pytest.mark.parametrize("border", _sampling.BORDERS)
def test_bilinear_sample_matches_scipy_map_coordinates(border, image):
  # Points inside, near and far outside (several periods of the reflections).
  rows, cols = _points((40, 50), -70.0, 100.0)
  rows[:, :3] = np.arange(-1.0, 33.0, 0.25)[:40, None]  # tap boundaries, exactly
  ours = np.asarray(
    jax.jit(lambda *a: _sampling.bilinear_sample(*a, border=border))(
      jnp.asarray(image), jnp.asarray(rows), jnp.asarray(cols)
    )
  )
  ref = np.stack(
    [
      ndimage.map_coordinates(
        image[..., k].astype(np.float64), [rows, cols], order=1, mode=SCIPY_MODE[border]
      )
      for k in range(3)
    ],
    -1,
  )
  np.testing.assert_allclose(ours, ref, atol=2e-6)
  assert ours.shape == (40, 50, 3)


@pytest.mark.parametrize("border", ["constant", "edge"])
def test_bordered_table_form_equals_bilinear_sample(border, image):
  """ECC's form (flat bordered tables, one tap index for several tables) is the same
  sampler: equal to float rounding, bit for bit inside the image."""
  batch = np.stack([image[..., 0], image[..., 1], image[..., 2] * 0.5])  # [3, 32, 32]
  rows, cols = _points((3, 300), -3.0, 35.0, seed=1)
  inside = (rows >= 0) & (rows <= 31) & (cols >= 0) & (cols <= 31)
  ids = jnp.arange(3)
  table = _sampling.bordered_table(jnp.asarray(batch), border)
  taps = _sampling.bordered_taps(jnp.asarray(rows), jnp.asarray(cols), ids, 32, 32, border)
  flat = np.asarray(_sampling.sample_bordered(table, *taps, 32))
  general = np.asarray(
    jax.vmap(
      lambda im, r, c: _sampling.bilinear_sample(im[..., None], r, c, border=border)[..., 0]
    )(jnp.asarray(batch), jnp.asarray(rows), jnp.asarray(cols))
  )
  np.testing.assert_allclose(flat, general, atol=1e-6)
  np.testing.assert_array_equal(flat[inside], general[inside])
  # Complex tables (ECC packs the two gradient images in one) sample each part.
  both = _sampling.bordered_table(
    jax.lax.complex(jnp.asarray(batch), 2 * jnp.asarray(batch)), border
  )
  out = np.asarray(_sampling.sample_bordered(both, *taps, 32))
  np.testing.assert_array_equal(out.real, flat)
  np.testing.assert_allclose(out.imag, 2 * flat, rtol=1e-6)


def test_bordered_taps_put_non_finite_points_on_the_zero_border():
  table = _sampling.bordered_table(jnp.ones((1, 4, 4)), "constant")
  rows = jnp.asarray([[np.nan, np.inf, -np.inf, 1.5]])
  cols = jnp.asarray([[1.0, 1.0, 1.0, 1.5]])
  taps = _sampling.bordered_taps(rows, cols, jnp.zeros(1, jnp.int32), 4, 4, "constant")
  np.testing.assert_array_equal(_sampling.sample_bordered(table, *taps, 4), [[0, 0, 0, 1]])


def test_unknown_border_raises(image):
  with pytest.raises(ValueError, match="border"):
    _sampling.bilinear_sample(jnp.asarray(image), jnp.zeros(3), jnp.zeros(3), border="wrap")
