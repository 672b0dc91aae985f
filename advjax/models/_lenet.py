"""LeNet-5 (LeCun et al. 1998) as used in the MNIST adversarial papers."""
import functools
from typing import Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

BlockHook = Optional[Callable[[int, jnp.ndarray], jnp.ndarray]]


def max_pool_2x2(x):
  """2x2 max pooling, stride 2. For even sizes a reshape + max: the same values and
  gradients as `nn.max_pool`, with a ~30% cheaper input gradient on XLA:CPU."""
  b, h, w, c = x.shape
  if h % 2 or w % 2:
    return nn.max_pool(x, (2, 2), (2, 2))
  return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def _pad_same(x, kh: int, kw: int):
  return jnp.pad(x, ((0, 0), ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2), (0, 0)))


def _conv_im2col(x, kernel, padding: str):
  """The convolution as im2col + matmul (patches in (i, j, c) order)."""
  kh, kw, ci, co = kernel.shape
  if padding == "SAME":
    x = _pad_same(x, kh, kw)
  h, w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
  patches = jnp.concatenate(
      [x[:, i:i + h, j:j + w, :] for i in range(kh) for j in range(kw)], axis=-1)
  return patches @ kernel.reshape(kh * kw * ci, co)


def _conv_lax(x, kernel, padding: str):
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), padding,
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv_cpu(x, kernel, padding):
  return _conv_lax(x, kernel, padding)


def _conv_cpu_fwd(x, kernel, padding):
  return _conv_lax(x, kernel, padding), (x, kernel)


def _conv_cpu_bwd(padding, res, g):
  x, kernel = res
  gx = jax.vjp(lambda x: _conv_im2col(x, kernel, padding), x)[1](g)[0]
  gk = jax.vjp(lambda k: _conv_lax(x, k, padding), kernel)[1](g)[0]
  return gx, gk


_conv_cpu.defvjp(_conv_cpu_fwd, _conv_cpu_bwd)


def conv2d(x, kernel, padding: str = "VALID"):
  """A stride-1 convolution, NHWC x HWIO -> NHWC, padding "SAME" or "VALID" (no bias).

  On CPU the forward pass and the kernel gradient are XLA's convolutions, and
  the input gradient is that of the same convolution written as im2col +
  matmul: for LeNet's few channels XLA:CPU's transposed convolution is slow
  (`benchmarks/pgd_overhead.py` prints the cost of one LeNet input gradient, what
  every attack step costs). Same values (to float rounding) as
  `lax.conv_general_dilated`; other backends use that as is.
  """
  if jax.default_backend() == "cpu":
    return _conv_cpu(x, kernel, padding)
  return _conv_lax(x, kernel, padding)


class _Conv(nn.Module):
  """`nn.Conv` (stride 1, bias) with the same parameters, computed by `conv2d`;
  returns (conv without bias, bias) so that the caller adds the bias after
  pooling, where it is cheaper."""
  features: int
  kernel_size: Sequence[int]
  padding: str

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (*self.kernel_size, x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
    return conv2d(x, kernel, self.padding), bias


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
    x, bias = _Conv(c1, (5, 5), "SAME", name="Conv_0")(x)
    x = hook(1, nn.relu(max_pool_2x2(x) + bias))
    x, bias = _Conv(c2, (5, 5), "VALID", name="Conv_1")(x)
    x = hook(2, nn.relu(max_pool_2x2(x) + bias))
    x = x.reshape(x.shape[0], -1)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = hook(3, nn.relu(nn.Dense(f1)(x)))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = hook(4, nn.relu(nn.Dense(f2)(x)))
    return nn.Dense(self.num_classes)(x)
