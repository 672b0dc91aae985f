"""CIFAR ResNet-18 (He et al. 2016; the 3x3-stem variant of Madry et al. / Wong et al.).

Submodules are named after the torch CIFAR ResNet-18 of AutoAttack / RobustBench
(`robustbench/model_zoo/architectures/resnet.py`: `conv1`, `bn1`,
`layer1.0.conv1`, ..., `layer2.0.shortcut.0`, `linear`) with "." written "_", so a
torch state dict maps onto the Flax tree by joining both paths with "_".

Also the building blocks every model of this package shares: convolutions padded
like torch's (explicit integers) and BatchNorm with torch's defaults, in a
compute `dtype` with float32 parameters and statistics.
"""

from typing import Any, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from advjax.models._lenet import BlockHook

Dtype = Any


def conv(
  features: int,
  kernel: int,
  strides: int = 1,
  *,
  dtype: Dtype,
  name: str,
  padding: Optional[int] = None,
  **kwargs,
) -> nn.Conv:
  """`nn.Conv` as torch's `Conv2d(kernel, stride, padding)`: explicit symmetric
  integer padding ((kernel - 1) // 2 unless given), never "SAME" (which pads a
  strided convolution differently from torch), no bias unless asked; computes in
  `dtype`, parameters float32."""
  pad = (kernel - 1) // 2 if padding is None else padding
  kwargs.setdefault("use_bias", False)
  return nn.Conv(
    features,
    (kernel, kernel),
    strides,
    padding=((pad, pad), (pad, pad)),
    dtype=dtype,
    param_dtype=jnp.float32,
    name=name,
    **kwargs,
  )


def batch_norm(
  train: bool, *, dtype: Dtype, name: str, epsilon: float = 1e-5, **kwargs
) -> nn.BatchNorm:
  """`nn.BatchNorm` with torch's defaults (epsilon 1e-5, momentum 0.1, i.e.
  Flax's 0.9). Parameters and running statistics are float32 and the batch
  statistics are reduced in float32 (Flax's rule); the output is in `dtype`."""
  return nn.BatchNorm(
    use_running_average=not train,
    momentum=0.9,
    epsilon=epsilon,
    dtype=dtype,
    param_dtype=jnp.float32,
    name=name,
    **kwargs,
  )


def dense(features: int, *, dtype: Dtype, name: str, **kwargs) -> nn.Dense:
  """`nn.Dense` computing in `dtype` with float32 parameters."""
  return nn.Dense(features, dtype=dtype, param_dtype=jnp.float32, name=name, **kwargs)


def normalize(x, mean, std):
  """(x - mean) / std in float32, whatever the compute dtype."""
  return (x - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)


def global_avg_pool(x):
  """Mean over H, W of [B, H, W, C], accumulated in float32 -> [B, C] float32."""
  return jnp.mean(x.astype(jnp.float32), axis=(1, 2))


class BasicBlock(nn.Module):
  """The post-activation basic block (two 3x3 convolutions, identity or
  1x1 conv + BN shortcut), torch names `conv1, bn1, conv2, bn2, shortcut_0,
  shortcut_1`."""

  features: int
  strides: int = 1
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    d = self.dtype
    y = conv(self.features, 3, self.strides, dtype=d, name="conv1")(x)
    y = nn.relu(batch_norm(train, dtype=d, name="bn1")(y))
    y = conv(self.features, 3, dtype=d, name="conv2")(y)
    y = batch_norm(train, dtype=d, name="bn2", scale_init=nn.initializers.zeros)(y)
    if x.shape[-1] != self.features or self.strides != 1:
      x = conv(self.features, 1, self.strides, dtype=d, name="shortcut_0")(x)
      x = batch_norm(train, dtype=d, name="shortcut_1")(x)
    return nn.relu(x + y)


class ResNet18(nn.Module):
  """ResNet-18 for 32x32 inputs with BatchNorm; normalizes [0, 1] images inside.

  Attributes:
    num_classes: K.
    stage_sizes: blocks per stage.
    width: channels of the first stage (64).
    dropout_rate: dropout before the classifier when > 0 (train only).
    mean, std: per-channel normalization (CIFAR-10 by default).
    dtype: compute dtype of convolutions, BatchNorm outputs and the classifier
      (e.g. `jnp.bfloat16`); parameters, batch statistics, the input
      normalization and the returned logits stay float32.
  """

  num_classes: int = 10
  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  width: int = 64
  dropout_rate: float = 0.0
  mean: Sequence[float] = (0.4914, 0.4822, 0.4465)
  std: Sequence[float] = (0.2471, 0.2435, 0.2616)
  dtype: Dtype = jnp.float32

  num_blocks = 5

  @nn.compact
  def __call__(self, x, train: bool = False, block_hook: BlockHook = None):
    """Args: x [B, H, W, C] in [0, 1]; train: batch statistics and dropout;
    block_hook(i, h) applied at the input (0), after the stem (1) and after each
    stage (2..5). Returns float32 logits [B, num_classes]."""
    hook = block_hook or (lambda i, h: h)
    d = self.dtype
    x = hook(0, normalize(x, self.mean, self.std))
    x = conv(self.width, 3, dtype=d, name="conv1")(x)
    x = nn.relu(batch_norm(train, dtype=d, name="bn1")(x))
    x = hook(1, x)
    for i, n in enumerate(self.stage_sizes):
      for j in range(n):
        x = BasicBlock(
          self.width * 2**i, 2 if (i > 0 and j == 0) else 1, dtype=d, name=f"layer{i + 1}_{j}"
        )(x, train)
      x = hook(2 + i, x)
    x = global_avg_pool(x)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return dense(self.num_classes, dtype=d, name="linear")(x).astype(jnp.float32)
