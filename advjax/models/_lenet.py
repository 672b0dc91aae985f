"""LeNet-5 (LeCun et al. 1998) as used in the MNIST adversarial papers."""
import functools
from typing import Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from advjax import _fusion

BlockHook = Optional[Callable[[int, jnp.ndarray], jnp.ndarray]]


def max_pool_2x2(x):
  """2x2 max pooling, stride 2. For even sizes a reshape + max: the same values as
  `nn.max_pool`, with a cheaper input gradient on XLA:CPU. Where a window has
  several maxima (flat image regions) its gradient is shared equally among them
  (`jnp.max`'s rule); `nn.max_pool` gives it all to one of them."""
  b, h, w, c = x.shape
  if h % 2 or w % 2:
    return nn.max_pool(x, (2, 2), (2, 2))
  return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def _windows(x):
  """[B, H, W, C] (even H, W) -> its 4 pooling phases x[:, a::2, b::2], (a, b) order,
  stacked: [4, B, H / 2, W / 2, C]."""
  b, h, w, c = x.shape
  return x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(2, 4, 0, 1, 3, 5).reshape(
      4, b, h // 2, w // 2, c)


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
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), padding,
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


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
    return sum(comp[2 * ((a + i) % 2) + (c + j) % 2][:, (a + i) // 2:(a + i) // 2 + h2,
                                                     (c + j) // 2:(c + j) // 2 + w2]
               * kernel[i, j, 0] for i in range(kh) for j in range(kw))
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
  rows = jnp.concatenate([x[:, i:i + h].reshape(b, h, wp * ci) for i in range(kh)], -1)
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
      [x[:, i:i + h, j:j + w, :] for i in range(kh) for j in range(kw)], axis=-1)
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
def _conv_pool_cpu(x, kernel, padding):
  return _max4(*_phases(x, kernel, padding))


def _conv_pool_cpu_fwd(x, kernel, padding):
  """(pooled conv, residuals: x, kernel and the conv's 4 pooling phases)."""
  if kernel.shape[2] == 1:  # stored once, not recomputed in each consumer
    phases = _fusion.materialize(lambda x, k: jnp.stack(_phases(x, k, padding)), x, kernel)
  else:
    phases = _phases(x, kernel, padding)
  return _max4(*phases), (x, kernel, phases)


def _conv_pool_cpu_bwd(padding, res, g):
  x, kernel, phases = res
  g = _pool_vjp(phases, g)
  as_matmul = _conv_rows if x.shape[2] <= _ROWS_MAX_WIDTH else _conv_im2col
  gx = jax.vjp(lambda x: as_matmul(x, kernel, padding), x)[1](g)[0]
  gk = jax.vjp(lambda k: _conv_lax(x, k, padding), kernel)[1](g)[0]
  return gx, gk


_conv_pool_cpu.defvjp(_conv_pool_cpu_fwd, _conv_pool_cpu_bwd)


def conv_pool_2x2(x, kernel, padding: str = "VALID"):
  """`max_pool_2x2(conv(x, kernel))`: a stride-1 convolution (NHWC x HWIO, padding
  "SAME" or "VALID", no bias) followed by 2x2 max pooling, stride 2.

  On CPU, XLA's convolutions are slow for LeNet's few channels, so this is
  written as what XLA:CPU does fast (`benchmarks/pgd_overhead.py` prints the
  cost of one LeNet input gradient, what every attack step costs):
  - forward: one input channel as sums of shifted images, pooled in the same
    fusion (`_conv_pool_phases`); more channels as XLA's convolution;
  - input gradient: the transpose of the convolution written as a banded
    matmul (`_conv_rows`; im2col + matmul for images wider than 64);
  - kernel gradient: XLA's.
  Same values and gradients (to float rounding) as `max_pool_2x2` of
  `lax.conv_general_dilated`, which other backends and odd sizes use as is.
  """
  h = x.shape[1] - (kernel.shape[0] - 1 if padding == "VALID" else 0)
  w = x.shape[2] - (kernel.shape[1] - 1 if padding == "VALID" else 0)
  if jax.default_backend() == "cpu" and h % 2 == 0 and w % 2 == 0:
    return _conv_pool_cpu(x, kernel, padding)
  return max_pool_2x2(_conv_lax(x, kernel, padding))


class _ConvPool(nn.Module):
  """`nn.Conv` (stride 1, bias) with the same parameters, then 2x2 max pooling,
  computed by `conv_pool_2x2`; returns (pooled conv without bias, bias) so that
  the caller adds the bias after pooling, where it is cheaper."""
  features: int
  kernel_size: Sequence[int]
  padding: str

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (*self.kernel_size, x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
    return conv_pool_2x2(x, kernel, self.padding), bias


class LeNet5(nn.Module):
  """LeNet-5: conv(6, 5x5) - pool - conv(16, 5x5) - pool - fc 120 - fc 84 - fc K.

  ReLU and max pooling (the modern variant used by Rozsa et al. 2016's Caffe
  LeNet and the hybrid preprint). Takes images in [0, 1] and normalizes inside.

  Attributes:
    num_classes: K.
    features: (conv1, conv2, fc1, fc2) widths; (6, 16, 120, 84) is LeNet-5.
    dropout_rate: dropout before each fully connected layer when > 0 (train only).
    mean, std: per-channel normalization constants (MNIST by default).
  """
  num_classes: int = 10
  features: Sequence[int] = (6, 16, 120, 84)
  dropout_rate: float = 0.0
  mean: Sequence[float] = (0.1307,)
  std: Sequence[float] = (0.3081,)

  num_blocks = 4

  @nn.compact
  def __call__(self, x, train: bool = False, block_hook: BlockHook = None):
    """Args: x [B, H, W, C] in [0, 1]; train: dropout on; block_hook(i, h) -> h is
    applied to the input (i = 0) and after each block i = 1..4 (manifold mixup,
    noise injection). Returns logits [B, num_classes]."""
    hook = block_hook or (lambda i, h: h)
    x = (x - jnp.asarray(self.mean)) / jnp.asarray(self.std)
    x = hook(0, x)
    c1, c2, f1, f2 = self.features
    # relu(pool(conv) + bias) == pool(relu(conv + bias)) (max commutes with both),
    # on a quarter of the values.
    x, bias = _ConvPool(c1, (5, 5), "SAME", name="Conv_0")(x)
    x = hook(1, nn.relu(x + bias))
    x, bias = _ConvPool(c2, (5, 5), "VALID", name="Conv_1")(x)
    x = hook(2, nn.relu(x + bias))
    x = x.reshape(x.shape[0], -1)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = hook(3, nn.relu(nn.Dense(f1)(x)))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = hook(4, nn.relu(nn.Dense(f2)(x)))
    return nn.Dense(self.num_classes)(x)
