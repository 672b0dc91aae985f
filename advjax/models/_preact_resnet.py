"""PreActResNet-18 (He et al. 2016, "Identity Mappings in Deep Residual Networks")
in RobustBench's CIFAR layout.

The layout and names are those of `robustbench/model_zoo/architectures/resnet.py`
(`PreActResNet(PreActBlock, [2, 2, 2, 2])`, the FGSM-RS model of Wong et al.
2020 and many RobustBench entries): a 3x3 stem convolution without BatchNorm,
blocks `bn1, conv1, bn2, conv2` and a 1x1 convolution `shortcut_0` (no
BatchNorm) where the shape changes, optional `bn` before the classifier
`linear`. Torch paths map to Flax paths with "." written "_".
"""

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from advjax.models import _resnet
from advjax.models._lenet import BlockHook


class PreActBlock(nn.Module):
  """BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus the shortcut, which takes the block's
  input, or its pre-activation when `out_shortcut` (RobustBench's option)."""

  features: int
  strides: int = 1
  out_shortcut: bool = False
  dtype: _resnet.Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    d = self.dtype
    out = nn.relu(_resnet.batch_norm(train, dtype=d, name="bn1")(x))
    shortcut = x
    if self.strides != 1 or x.shape[-1] != self.features:
      shortcut = _resnet.conv(self.features, 1, self.strides, dtype=d, name="shortcut_0")(
        out if self.out_shortcut else x
      )
    out = _resnet.conv(self.features, 3, self.strides, dtype=d, name="conv1")(out)
    out = nn.relu(_resnet.batch_norm(train, dtype=d, name="bn2")(out))
    out = _resnet.conv(self.features, 3, dtype=d, name="conv2")(out)
    return out + shortcut


class PreActResNet18(nn.Module):
  """PreActResNet-18 for CIFAR (32x32); normalizes [0, 1] images inside.

  11,171,146 parameters for 10 classes (RobustBench's `PreActResNet18()`).

  Attributes:
    num_classes: K.
    stage_sizes: blocks per stage ((2, 2, 2, 2) is PreActResNet-18).
    width: channels of the first stage (64).
    bn_before_fc: a BatchNorm + ReLU (`bn`) after the last stage, as in some
      RobustBench entries (e.g. Rice et al. 2020).
    out_shortcut: projection shortcuts take the pre-activation (RobustBench's
      `out_shortcut=True`).
    mean, std: per-channel normalization (CIFAR-10 by default; RobustBench's
      checkpoints expect none inside: (0, 0, 0) / (1, 1, 1)).
    dtype: compute dtype (e.g. `jnp.bfloat16`); parameters, batch statistics,
      the input normalization and the logits stay float32.
  """

  num_classes: int = 10
  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  width: int = 64
  bn_before_fc: bool = False
  out_shortcut: bool = False
  mean: Sequence[float] = (0.4914, 0.4822, 0.4465)
  std: Sequence[float] = (0.2471, 0.2435, 0.2616)
  dtype: _resnet.Dtype = jnp.float32

  num_blocks = 5

  @nn.compact
  def __call__(self, x, train: bool = False, block_hook: BlockHook = None):
    """Args: x [B, H, W, C] in [0, 1]; train: batch statistics;
    block_hook(i, h) applied at the input (0), after the stem convolution (1) and
    after each stage (2..5). Returns float32 logits [B, num_classes]."""
    hook = block_hook or (lambda i, h: h)
    d = self.dtype
    x = hook(0, _resnet.normalize(x, self.mean, self.std))
    x = hook(1, _resnet.conv(self.width, 3, dtype=d, name="conv1")(x))
    for i, n in enumerate(self.stage_sizes):
      for j in range(n):
        x = PreActBlock(
          self.width * 2**i,
          2 if (i > 0 and j == 0) else 1,
          self.out_shortcut,
          dtype=d,
          name=f"layer{i + 1}_{j}",
        )(x, train)
      x = hook(2 + i, x)
    if self.bn_before_fc:
      x = nn.relu(_resnet.batch_norm(train, dtype=d, name="bn")(x))
    x = _resnet.global_avg_pool(x)
    return _resnet.dense(self.num_classes, dtype=d, name="linear")(x).astype(jnp.float32)
