"""LeNet-5 (LeCun et al. 1998) as used in the MNIST adversarial papers."""

from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from advjax import _backends
from advjax._backends import cpu_lenet

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


def _conv(x, kernel, padding: str):
  return jax.lax.conv_general_dilated(
    x, kernel, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
  )


def conv_pool_portable(x, kernel, padding: str = "VALID"):
  """`conv_pool_2x2`'s definition, on every backend: `max_pool_2x2` of
  `lax.conv_general_dilated`."""
  return max_pool_2x2(_conv(x, kernel, padding))


def conv_pool_2x2(x, kernel, padding: str = "VALID"):
  """`max_pool_2x2(conv(x, kernel))`: a stride-1 convolution (NHWC x HWIO, padding
  "SAME" or "VALID", no bias) followed by 2x2 max pooling, stride 2.

  Defined by `conv_pool_portable`. In a program lowered for CPU, a convolution
  output of even size is computed by `advjax._backends.cpu_lenet.conv_pool_2x2`
  instead (XLA:CPU's convolutions are slow for LeNet's few channels): the same
  values and gradients to float rounding.
  """
  h = x.shape[1] - (kernel.shape[0] - 1 if padding == "VALID" else 0)
  w = x.shape[2] - (kernel.shape[1] - 1 if padding == "VALID" else 0)
  portable = lambda x, k: conv_pool_portable(x, k, padding)
  if h % 2 or w % 2:
    return portable(x, kernel)
  return _backends.on_cpu(lambda x, k: _cpu_conv_pool(x, k, padding), portable, x, kernel)


# Jitted so that its trace (a few hundred shifted slices: about 0.1 s) is made once per
# shape and reused by every program that calls it; XLA inlines the call.
_cpu_conv_pool = jax.jit(cpu_lenet.conv_pool_2x2, static_argnums=2)


class _ConvPool(nn.Module):
  """`nn.Conv` (stride 1, bias) with the same parameters, then 2x2 max pooling,
  computed by `conv_pool_2x2` in `dtype` (float32 parameters); returns (pooled
  conv without bias, bias) so that the caller adds the bias after pooling, where
  it is cheaper."""

  features: int
  kernel_size: Sequence[int]
  padding: str
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    kernel = self.param(
      "kernel", nn.initializers.lecun_normal(), (*self.kernel_size, x.shape[-1], self.features)
    )
    bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
    x, kernel, bias = (jnp.asarray(a, self.dtype) for a in (x, kernel, bias))
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
    dtype: compute dtype of the convolutions and dense layers (e.g.
      `jnp.bfloat16`); parameters, the input normalization and the returned
      logits stay float32.
  """

  num_classes: int = 10
  features: Sequence[int] = (6, 16, 120, 84)
  dropout_rate: float = 0.0
  mean: Sequence[float] = (0.1307,)
  std: Sequence[float] = (0.3081,)
  dtype: Any = jnp.float32

  num_blocks = 4

  @nn.compact
  def __call__(self, x, train: bool = False, block_hook: BlockHook = None):
    """Args: x [B, H, W, C] in [0, 1]; train: dropout on; block_hook(i, h) -> h is
    applied to the input (i = 0) and after each block i = 1..4 (manifold mixup,
    noise injection). Returns float32 logits [B, num_classes]."""
    hook = block_hook or (lambda i, h: h)
    d = self.dtype
    dense = lambda n: nn.Dense(n, dtype=d, param_dtype=jnp.float32)
    x = (x - jnp.asarray(self.mean, jnp.float32)) / jnp.asarray(self.std, jnp.float32)
    x = hook(0, x)
    c1, c2, f1, f2 = self.features
    # relu(pool(conv) + bias) == pool(relu(conv + bias)) (max commutes with both),
    # on a quarter of the values.
    x, bias = _ConvPool(c1, (5, 5), "SAME", dtype=d, name="Conv_0")(x)
    x = hook(1, nn.relu(x + bias))
    x, bias = _ConvPool(c2, (5, 5), "VALID", dtype=d, name="Conv_1")(x)
    x = hook(2, nn.relu(x + bias))
    x = x.reshape(x.shape[0], -1)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = hook(3, nn.relu(dense(f1)(x)))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = hook(4, nn.relu(dense(f2)(x)))
    return dense(self.num_classes)(x).astype(jnp.float32)
