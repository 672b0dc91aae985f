"""Backend specializations (advjax/_backends) equal the portable code they replace.

Every op with a CPU specialization is run here both ways on CPU: the
specialization as a program lowered for CPU selects it, and the portable code
(what GPUs and TPUs run) through `tests._inputs.portable_only()` or by calling it
directly. Tolerances are float32 rounding: the specializations reorder sums
(shifted-slice sums and banded matmuls for convolutions, a dense matrix for a
filter, chunked loops), so values agree to 1e-4 absolute on N(0, 1) data
(1e-5 on [0, 1] images), gradients to 1e-4 absolute (kernel gradients, sums
over the batch, to 2e-4 of their largest entry); integer-valued results
(equalize's tables) agree exactly.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import _fusion
from advjax import metrics
from advjax import models
from advjax._backends import cpu_blur
from advjax._backends import cpu_lenet
from advjax._backends import cpu_sizes
from advjax.augment import _augmix
from advjax.augment import _corruptions
from advjax.augment import _ops
from advjax.models import _lenet
from tests._inputs import portable_only


def _stablehlo(fn, *args, platform):
  """The StableHLO text of `fn` lowered for `platform` (no such device needed)."""
  return jax.export.export(jax.jit(fn), platforms=(platform,))(*args).mlir_module()


@pytest.mark.parametrize(
  "x_shape,k_shape,padding",
  [
    ((3, 28, 28, 1), (5, 5, 1, 6), "SAME"),  # LeNet's conv1: polyphase shifted sums
    ((3, 14, 14, 6), (5, 5, 6, 16), "VALID"),  # conv2: XLA forward, banded-matmul gradient
    ((2, 6, 70, 1), (3, 3, 1, 2), "SAME"),  # wider than 64: im2col gradient
  ],
)
def test_lenet_conv_pool_cpu_equals_portable(x_shape, k_shape, padding):
  kx, kk, kg = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, x_shape)
  x = x.at[:, : k_shape[0] + 1].set(0.5)  # flat rows: pooling windows with tied maxima
  kernel = jax.random.normal(kk, k_shape)
  cpu = lambda x, k: cpu_lenet.conv_pool_2x2(x, k, padding)
  portable = lambda x, k: _lenet.conv_pool_portable(x, k, padding)
  out, vjp = jax.vjp(cpu, x, kernel)
  ref, ref_vjp = jax.vjp(portable, x, kernel)
  chex.assert_equal_shape([out, ref])
  np.testing.assert_allclose(out, ref, atol=1e-4)
  g = jax.random.normal(kg, out.shape)
  (gx, gk), (rx, rk) = vjp(g), ref_vjp(g)
  np.testing.assert_allclose(gx, rx, atol=1e-4)
  np.testing.assert_allclose(gk, rk, atol=2e-4 * float(jnp.abs(rk).max()))
  grad = lambda f: jax.jit(jax.grad(lambda x: jnp.sum(f(x, kernel) * g)))(x)
  np.testing.assert_allclose(grad(cpu), grad(portable), atol=1e-4)


def test_lenet_specialization_is_chosen_when_lowering():
  m = models.get_model("lenet5", num_classes=10)
  x = jax.random.uniform(jax.random.key(1), (4, 28, 28, 1))
  v = m.init(jax.random.key(0), x)
  f = lambda z: m.apply(v, z)
  # Lowered for CPU, only the second layer is an XLA convolution (the first is
  # shifted sums); lowered for a GPU, both are. Each program holds one branch
  # (both would make 3 convolutions).
  assert _stablehlo(f, x, platform="cpu").count("stablehlo.convolution") == 1
  assert _stablehlo(f, x, platform="cuda").count("stablehlo.convolution") == 2
  # Compiled for CPU, no conditional is left.
  assert "conditional(" not in jax.jit(f).lower(x).compile().as_text()


def test_lenet_portable_path_equals_cpu_path():
  m = models.get_model("lenet5", num_classes=10)
  x = jax.random.uniform(jax.random.key(1), (8, 28, 28, 1))
  x = x.at[:, :8].set(0.0)  # a blank band: tied maxima in the pooling windows
  y = jnp.arange(8) % 10
  v = m.init(jax.random.key(0), x)

  def logits_and_grads(x):
    loss = lambda p, z: jnp.sum(models.make_logits_fn(m, {"params": p})(z)[jnp.arange(8), y])
    return m.apply(v, x), *jax.grad(loss, argnums=(0, 1))(v["params"], x)

  cpu = jax.jit(logits_and_grads)(x)
  with portable_only():
    portable = jax.jit(logits_and_grads)(x)
    assert jax.jit(m.apply).lower(v, x).as_text().count("stablehlo.convolution") == 2
  np.testing.assert_allclose(cpu[0], portable[0], atol=1e-4)
  chex.assert_trees_all_close(cpu[1], portable[1], atol=1e-4)  # parameter gradients
  np.testing.assert_allclose(cpu[2], portable[2], atol=1e-4)  # input gradients


def test_materialize_is_a_conditional_on_cpu_only():
  fn = lambda a, b: (jnp.sin(a) * b, a + b)
  a, b = jnp.linspace(-2, 2, 12), jnp.arange(12.0)
  compiled = lambda: jax.jit(functools.partial(_fusion.materialize, fn)).lower(a, b).compile()
  out = compiled()(a, b)
  chex.assert_trees_all_equal(out, fn(a, b))
  assert "conditional(" in compiled().as_text()  # CPU: the fusion boundary
  with portable_only():
    chex.assert_trees_all_equal(compiled()(a, b), out)
    assert "conditional(" not in compiled().as_text()


@pytest.mark.slow
def test_pass_and_ecc_portable_path_equal_cpu_path(mnist):
  # More pairs than each CPU chunk size, so that the chunked loops take several
  # steps and overlap their last chunk.
  n = cpu_sizes.ECC_FIRST_CHUNK + 10
  assert n > max(cpu_sizes.PASS_CHUNK, cpu_sizes.ECC_STEP_CHUNK)
  x, _ = mnist["test"].get(np.arange(n))
  x = jnp.asarray(x)
  shift = np.array([[1, 0, 0.7], [0, 1, -0.4], [0, 0, 1]], np.float32)
  noise = 0.1 * jax.random.uniform(jax.random.key(2), x.shape, minval=-1, maxval=1)
  adv = jnp.clip(metrics.warp_homography(x, shift) + noise, 0, 1)
  run = lambda: metrics.pass_score_with_info(adv, x)
  cpu_score, cpu_info = run()
  with portable_only():
    score, info = run()
  assert np.mean(np.asarray(cpu_info.fallback)) < 0.5  # the alignments are exercised
  np.testing.assert_array_equal(info.fallback, cpu_info.fallback)
  # Iterations of different batch shapes round differently: warps agree to a
  # thousandth of a pixel (translation) and 1e-4 (the other entries).
  np.testing.assert_allclose(info.warp[:, :, 2], cpu_info.warp[:, :, 2], atol=1e-3)
  np.testing.assert_allclose(info.warp[:, :, :2], cpu_info.warp[:, :, :2], atol=1e-4)
  np.testing.assert_allclose(info.correlation, cpu_info.correlation, atol=1e-5)
  np.testing.assert_allclose(score, cpu_score, atol=1e-5)
  np.testing.assert_allclose(info.ssim_unaligned, cpu_info.ssim_unaligned, atol=1e-5)


def test_equalize_portable_path_equals_cpu_path():
  x = jax.random.uniform(jax.random.key(3), (4, 32, 32, 3))
  x = jnp.round(x * jnp.array([1.0, 0.3, 0.0]) * 255) / 255  # spread, narrow, constant
  cpu = jax.jit(_augmix._equalize_batch)(x)
  with portable_only():
    portable = jax.jit(_augmix._equalize_batch)(x)
  np.testing.assert_array_equal(cpu, portable)
  assert float(jnp.max(cpu[..., 1])) == 1.0  # the narrow channel was stretched


@pytest.mark.parametrize(
  "tables,severity,size",
  [("cifar10", 1, 32), ("cifar10", 5, 32), ("imagenet", 3, 20), ("imagenet", 5, 9)],
)
def test_defocus_blur_dense_matrix_equals_filter2d(tables, severity, size):
  radius, alias = _corruptions._DEFOCUS_BLUR[tables][severity - 1]
  kernel = _corruptions._disk(radius, alias)
  mode = "reflect" if kernel.shape[0] // 2 < size else "edge"  # as defocus_blur
  x = jax.random.uniform(jax.random.key(4), (size, size, 3))
  np.testing.assert_allclose(
    cpu_blur.filter2d(x, kernel, mode), _ops.filter2d(x, kernel, mode=mode), atol=1e-5
  )
  cpu = _corruptions.defocus_blur(None, x, (radius, alias))
  with portable_only():
    portable = jax.jit(lambda x: _corruptions.defocus_blur(None, x, (radius, alias)))(x)
  np.testing.assert_allclose(cpu, portable, atol=1e-5)


def test_caches_are_bounded():
  for fn in (
    cpu_blur._filter_matrix,
    _augmix._augmix_fn,
    _corruptions._batched,
    _corruptions._batched_traced,
  ):
    assert fn.cache_info().maxsize is not None
