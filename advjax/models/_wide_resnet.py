"""Wide residual networks (Zagoruyko & Komodakis 2016) in the CIFAR layout of
TRADES (Zhang et al. 2019) and RobustBench.

The layout and names are those of
`robustbench/model_zoo/architectures/wide_resnet.py` (`WideResNet`): a 3x3 stem
`conv1` with 16 channels, three groups `block1..3` of (depth - 4) / 6
pre-activation blocks (`bn1, conv1, bn2, conv2`, a 1x1 `convShortcut` where the
width changes, applied to the pre-activation), then `bn1` + ReLU, global average
pooling and `fc`. A torch path `block1.layer.0.conv1.weight` is the Flax path
("block1_layer_0", "conv1", "kernel"). RobustBench's `sub_block1` (TRADES
checkpoints) has parameters but is never called: an importer drops its keys.
"""

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from advjax.models import _resnet
from advjax.models._lenet import BlockHook


class WideBasicBlock(nn.Module):
  """BN-ReLU-conv3x3-BN-ReLU-(dropout)-conv3x3; where the width changes the
  shortcut is `convShortcut` of the pre-activation, otherwise the identity."""

  features: int
  strides: int = 1
  dropout_rate: float = 0.0
  dtype: _resnet.Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    d = self.dtype
    out = nn.relu(_resnet.batch_norm(train, dtype=d, name="bn1")(x))
    equal_in_out = x.shape[-1] == self.features
    shortcut = (
      x
      if equal_in_out
      else _resnet.conv(self.features, 1, self.strides, dtype=d, name="convShortcut")(out)
    )
    out = _resnet.conv(self.features, 3, self.strides, dtype=d, name="conv1")(out)
    out = nn.relu(_resnet.batch_norm(train, dtype=d, name="bn2")(out))
    out = nn.Dropout(self.dropout_rate, deterministic=not train)(out)
    out = _resnet.conv(self.features, 3, dtype=d, name="conv2")(out)
    return shortcut + out


class WideResNet(nn.Module):
  """WRN-depth-widen_factor for CIFAR (32x32); normalizes [0, 1] images inside.

  WRN-28-10 has 36,479,194 parameters and WRN-34-10 46,160,474 (10 classes).

  Attributes:
    num_classes: K.
    depth: 6n + 4 (28, 34, 70, ...).
    widen_factor: k; the groups have 16k, 32k and 64k channels.
    dropout_rate: dropout inside each block (train only), as WRN's `dropRate`.
    bias_last: whether `fc` has a bias (RobustBench's `bias_last`).
    mean, std: per-channel normalization (CIFAR-10 by default; RobustBench's
      checkpoints expect none inside: (0, 0, 0) / (1, 1, 1)).
    dtype: compute dtype (e.g. `jnp.bfloat16`); parameters, batch statistics,
      the input normalization and the logits stay float32.

  Raises:
    ValueError: (when called) if `depth` is not 6n + 4.
  """

  num_classes: int = 10
  depth: int = 28
  widen_factor: int = 10
  dropout_rate: float = 0.0
  bias_last: bool = True
  mean: Sequence[float] = (0.4914, 0.4822, 0.4465)
  std: Sequence[float] = (0.2471, 0.2435, 0.2616)
  dtype: _resnet.Dtype = jnp.float32

  num_blocks = 4

  @nn.compact
  def __call__(self, x, train: bool = False, block_hook: BlockHook = None):
    """Args: x [B, H, W, C] in [0, 1]; train: batch statistics and dropout;
    block_hook(i, h) applied at the input (0), after the stem convolution (1) and
    after each group (2..4). Returns float32 logits [B, num_classes]."""
    if self.depth < 10 or (self.depth - 4) % 6:
      raise ValueError(f"`depth` must be 6n + 4 with n >= 1 (28, 34, ...); got {self.depth}.")
    hook = block_hook or (lambda i, h: h)
    d = self.dtype
    n = (self.depth - 4) // 6
    x = hook(0, _resnet.normalize(x, self.mean, self.std))
    x = hook(1, _resnet.conv(16, 3, dtype=d, name="conv1")(x))
    for g, (channels, strides) in enumerate(((16, 1), (32, 2), (64, 2))):
      for j in range(n):
        x = WideBasicBlock(
          channels * self.widen_factor,
          strides if j == 0 else 1,
          self.dropout_rate,
          dtype=d,
          name=f"block{g + 1}_layer_{j}",
        )(x, train)
      x = hook(2 + g, x)
    x = nn.relu(_resnet.batch_norm(train, dtype=d, name="bn1")(x))
    x = _resnet.global_avg_pool(x)
    x = _resnet.dense(self.num_classes, dtype=d, name="fc", use_bias=self.bias_last)(x)
    return x.astype(jnp.float32)
