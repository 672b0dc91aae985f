"""CIFAR ResNet-18 (He et al. 2016; the 3x3-stem variant of Madry et al. / Wong et al.)."""
import functools
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from advjax.models._lenet import BlockHook


class BasicBlock(nn.Module):
  features: int
  strides: int = 1

  @nn.compact
  def __call__(self, x, train: bool):
    norm = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9,
                             epsilon=1e-5)
    y = nn.Conv(self.features, (3, 3), self.strides, padding=1, use_bias=False)(x)
    y = nn.relu(norm()(y))
    y = nn.Conv(self.features, (3, 3), padding=1, use_bias=False)(y)
    y = norm(scale_init=nn.initializers.zeros)(y)
    if x.shape[-1] != self.features or self.strides != 1:
      x = nn.Conv(self.features, (1, 1), self.strides, use_bias=False)(x)
      x = norm()(x)
    return nn.relu(x + y)


class ResNet18(nn.Module):
  """ResNet-18 for 32x32 inputs with BatchNorm; normalizes [0, 1] images inside.

  Attributes:
    num_classes: K.
    stage_sizes: blocks per stage.
    width: channels of the first stage (64).
    dropout_rate: dropout before the classifier when > 0 (train only).
    mean, std: per-channel normalization (CIFAR-10 by default).
  """
  num_classes: int = 10
  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  width: int = 64
  dropout_rate: float = 0.0
  mean: Sequence[float] = (0.4914, 0.4822, 0.4465)
  std: Sequence[float] = (0.2471, 0.2435, 0.2616)

  num_blocks = 5

  @nn.compact
  def __call__(self, x, train: bool = False, block_hook: BlockHook = None):
    """Args: x [B, H, W, C] in [0, 1]; train: batch statistics and dropout;
    block_hook(i, h) applied at the input (0), after the stem (1) and after each
    stage (2..5). Returns logits [B, num_classes]."""
    hook = block_hook or (lambda i, h: h)
    x = (x - jnp.asarray(self.mean)) / jnp.asarray(self.std)
    x = hook(0, x)
    x = nn.Conv(self.width, (3, 3), padding=1, use_bias=False)(x)
    x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(x))
    x = hook(1, x)
    for i, n in enumerate(self.stage_sizes):
      for j in range(n):
        x = BasicBlock(self.width * 2**i, 2 if (i > 0 and j == 0) else 1)(x, train)
      x = hook(2 + i, x)
    x = jnp.mean(x, axis=(1, 2))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_classes)(x)
