"""LeNet's convolution + 2x2 max pooling, written for XLA:CPU.

XLA:CPU's convolution is slow for LeNet's 1 and 6 input channels, its
transposed convolution (the input gradient) slower still, and it runs a
reduction fused with cheap producers as a slow kernel. `conv_pool_2x2` here
computes `max_pool_2x2(conv(x, kernel))` of `advjax.models._lenet` (the
portable definition) as what XLA:CPU does fast
(`benchmarks/pgd_overhead.py` prints the cost of one LeNet input gradient,
what every attack step costs):
- forward: one input channel as sums of shifted images, pooled in the same
  fusion (`_conv_pool_phases`); more channels as XLA's convolution;
- input gradient: the transpose of the convolution written as a banded
  matmul (`_conv_rows`; im2col + matmul for images wider than 64);
- kernel gradient: XLA's.
Where a pooling window has several maxima its gradient is shared equally
among them, as `jnp.max`'s rule (the portable code's).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from advjax._backends import cpu_fusion


def _windows(x):
  """[B, H, W, C] (even H, W) -> its 4 pooling phases x[:, a::2, b::2], (a, b) order,
  stacked: [4, B, H / 2, W / 2, C]."""
  b, h, w, c = x.shape
  return (
    x.reshape(b, h // 2, 2, w // 2, 2, c)
    .transpose(2, 4, 0, 1, 3, 5)
    .reshape(4, b, h // 2, w // 2, c)
  )


def _max4(a, b, c, d):
  return jnp.maximum(jnp.maximum(a, b), jnp.maximum(c, d))


def _pool_vjp(phases, g):
  """The input gradient of 2x2 max pooling, from the pooling phases of its input
  ([4, B, H / 2, W / 2, C], as `_windows` gives) and the pooled gradient g:
  each window's gradient goes to its maxima, shared equally among ties (as
  `jnp.max`'s). Returns [B, H, W, C]. Written with elementwise ops: XLA:CPU runs
  the reduction in JAX's own rule as a slow kernel."""
  hit = phases == _max4(*phases)
  grads = jnp.where(hit, g / jnp.sum(hit, 0), 0)
  b, h2, w2, c = g.shape
  rows = [jnp.stack([grads[2 * a], grads[2 * a + 1]], axis=3) for a in (0, 1)]
  return jnp.stack(rows, axis=2).reshape(b, 2 * h2, 2 * w2, c)


def _padded(x, kernel, padding: str):
  """x with the zero border of "SAME" padding for `kernel` (as XLA's), or as is."""
  if padding != "SAME":
    return x
  kh, kw = kernel.shape[:2]
  return jnp.pad(x, ((0, 0), ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2), (0, 0)))


def _conv_lax(x, kernel, padding: str):
  return jax.lax.conv_general_dilated(
    x, kernel, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
  )


def _conv_pool_phases(x, kernel, padding: str):
  """One input channel: the four 2x2-pooling phases of the convolution,
  phase (a, b) = conv[:, a::2, b::2], each a sum of kh * kw shifted slices of
  the polyphase components of the (padded) image times a row of the kernel.
  Their elementwise maximum is the pooled convolution; XLA:CPU computes it in
  one elementwise fusion (a reduction after the shifted sums would be fused into
  a slow reduce kernel). Returns 4 x [B, H / 2, W / 2, Co] in (a, b) order."""
  kh, kw, _, _ = kernel.shape
  x = _padded(x, kernel, padding)
  _, hp, wp, _ = x.shape
  h2, w2 = (hp - kh + 1) // 2, (wp - kw + 1) // 2
  # The polyphase components x[:, u::2, v::2], from x padded to even size.
  comp = _windows(jnp.pad(x, ((0, 0), (0, hp % 2), (0, wp % 2), (0, 0))))

  def phase(a, c):
    return sum(
      comp[2 * ((a + i) % 2) + (c + j) % 2][
        :, (a + i) // 2 : (a + i) // 2 + h2, (c + j) // 2 : (c + j) // 2 + w2
      ]
      * kernel[i, j, 0]
      for i in range(kh)
      for j in range(kw)
    )

  return [phase(a, c) for a in (0, 1) for c in (0, 1)]


def _conv_rows(x, kernel, padding: str):
  """The convolution as one matmul per output row: the kh input rows under it
  [B, H, kh * Wp * Ci] times a banded (Toeplitz) matrix [kh * Wp * Ci, W * Co]
  built from the kernel. More multiply-adds than the convolution (Wp / kw
  times), but one dense matmul, and its transpose (the input gradient) is a
  matmul followed by kh shifted adds."""
  kh, kw, ci, co = kernel.shape
  x = _padded(x, kernel, padding)
  b, hp, wp, _ = x.shape
  h, w = hp - kh + 1, wp - kw + 1
  rows = jnp.concatenate([x[:, i : i + h].reshape(b, h, wp * ci) for i in range(kh)], -1)
  offset = np.arange(wp)[:, None] - np.arange(w)[None, :]  # [Wp, W]: input col - output col
  band = (offset >= 0) & (offset < kw)
  toeplitz = kernel[:, np.clip(offset, 0, kw - 1)]  # [kh, Wp, W, Ci, Co]
  toeplitz = jnp.where(band[None, :, :, None, None], toeplitz, 0).transpose(0, 1, 3, 2, 4)
  return (rows @ toeplitz.reshape(kh * wp * ci, w * co)).reshape(b, h, w, co)


def _conv_im2col(x, kernel, padding: str):
  """The convolution as im2col + matmul (patches in (i, j, c) order)."""
  kh, kw, ci, co = kernel.shape
  x = _padded(x, kernel, padding)
  h, w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
  patches = jnp.concatenate(
    [x[:, i : i + h, j : j + w, :] for i in range(kh) for j in range(kw)], axis=-1
  )
  return patches @ kernel.reshape(kh * kw * ci, co)


# The banded matrix of `_conv_rows` has Wp * W * kh * Ci * Co entries; wider
# images take im2col for the input gradient.
_ROWS_MAX_WIDTH = 64


def _phases(x, kernel, padding):
  """The convolution's 4 pooling phases (a list for one input channel, else
  stacked [4, B, H / 2, W / 2, Co])."""
  if kernel.shape[2] == 1:
    return _conv_pool_phases(x, kernel, padding)
  return _windows(_conv_lax(x, kernel, padding))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_pool_2x2(x, kernel, padding):
  """`max_pool_2x2(conv(x, kernel))` (stride-1 NHWC x HWIO convolution, padding
  "SAME" or "VALID", no bias) for a convolution output of even height and width."""
  return _max4(*_phases(x, kernel, padding))


def _conv_pool_fwd(x, kernel, padding):
  """(pooled conv, residuals: x, kernel and the conv's 4 pooling phases)."""
  if kernel.shape[2] == 1:  # stored once, not recomputed in each consumer
    phases = cpu_fusion.materialize(lambda x, k: jnp.stack(_phases(x, k, padding)), x, kernel)
  else:
    phases = _phases(x, kernel, padding)
  return _max4(*phases), (x, kernel, phases)


def _conv_pool_bwd(padding, res, g):
  x, kernel, phases = res
  g = _pool_vjp(phases, g)
  as_matmul = _conv_rows if x.shape[2] <= _ROWS_MAX_WIDTH else _conv_im2col
  gx = jax.vjp(lambda x: as_matmul(x, kernel, padding), x)[1](g)[0]
  gk = jax.vjp(lambda k: _conv_lax(x, k, padding), kernel)[1](g)[0]
  return gx, gk


conv_pool_2x2.defvjp(_conv_pool_fwd, _conv_pool_bwd)
