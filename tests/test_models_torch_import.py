"""models.from_torch: torch models with random weights (RobustBench's CIFAR architectures;
ResNet-50 and EfficientNet-B0 in torchvision's layout, written here because torchvision does
not import beside the CPU torch) imported from a state dict, a wrapped .pt file and a
.safetensors file, and compared logit for logit with torch on real images (foolbox's
CIFAR-10 and ImageNet samples, read from its wheel's data/).

robustbench 1.1.1 (`pip install --no-deps`) cannot be imported as a package here: its
`__init__` imports `robustbench.data`, which needs timm (and its zoo needs the autoattack git
dependency). Its architecture files import only torch, so they are loaded from the installed
wheel by path (`benchmarks/_torch_zoo.robustbench_module`).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import safetensors.torch
import torch

from advjax import models

from benchmarks import _images, _torch_zoo
from tests import _inputs


RTOL = 1e-4  # max |logit difference| / max |logit|


class _Bottleneck(torch.nn.Module):
  """torchvision's ResNet-50 bottleneck (v1.5: stride on the 3x3), same attribute names."""

  expansion = 4

  def __init__(self, inplanes, planes, stride):
    super().__init__()
    nn = torch.nn
    self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
    self.bn3 = nn.BatchNorm2d(planes * 4)
    self.relu = nn.ReLU(inplace=True)
    self.downsample = None
    if stride != 1 or inplanes != planes * 4:
      self.downsample = nn.Sequential(
        nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4)
      )

  def forward(self, x):
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    out = self.bn3(self.conv3(out))
    return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class _TorchvisionResNet50(torch.nn.Module):
  """torchvision.models.resnet50's layout and names (torchvision does not import here)."""

  def __init__(self, num_classes=1000):
    super().__init__()
    nn = torch.nn
    self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
    self.bn1 = nn.BatchNorm2d(64)
    self.relu = nn.ReLU(inplace=True)
    self.maxpool = nn.MaxPool2d(3, 2, 1)
    inplanes, layers = 64, []
    for planes, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
      stage = []
      for i in range(blocks):
        stage.append(_Bottleneck(inplanes, planes, stride if i == 0 else 1))
        inplanes = planes * 4
      layers.append(nn.Sequential(*stage))
    self.layer1, self.layer2, self.layer3, self.layer4 = layers
    self.avgpool = nn.AdaptiveAvgPool2d(1)
    self.fc = nn.Linear(2048, num_classes)

  def forward(self, x):
    x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
    x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
    return self.fc(torch.flatten(self.avgpool(x), 1))


def _conv_norm(cin, cout, kernel, stride=1, groups=1, act=True):
  """torchvision's Conv2dNormActivation: Sequential(conv, BatchNorm[, SiLU])."""
  nn = torch.nn
  layers = [
    nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
    nn.BatchNorm2d(cout),
  ]
  return nn.Sequential(*layers, *([nn.SiLU()] if act else []))


class _SqueezeExcitation(torch.nn.Module):
  def __init__(self, channels, squeeze):
    super().__init__()
    self.fc1 = torch.nn.Conv2d(channels, squeeze, 1)
    self.fc2 = torch.nn.Conv2d(squeeze, channels, 1)

  def forward(self, x):
    s = torch.nn.functional.adaptive_avg_pool2d(x, 1)
    return x * torch.sigmoid(self.fc2(torch.nn.functional.silu(self.fc1(s))))


class _MBConv(torch.nn.Module):
  """torchvision's MBConv (eval mode: stochastic depth is the identity)."""

  def __init__(self, expand, kernel, stride, cin, cout):
    super().__init__()
    mid = cin * expand
    layers = [_conv_norm(cin, mid, 1)] if expand != 1 else []
    layers += [
      _conv_norm(mid, mid, kernel, stride, groups=mid),  # depthwise
      _SqueezeExcitation(mid, max(1, cin // 4)),
      _conv_norm(mid, cout, 1, act=False),
    ]
    self.block = torch.nn.Sequential(*layers)
    self.residual = stride == 1 and cin == cout

  def forward(self, x):
    return self.block(x) + x if self.residual else self.block(x)


# (expand, kernel, stride, in, out, layers) per stage: Table 1 of Tan & Le 2019, as
# torchvision's `_efficientnet_conf("efficientnet_b0")` (written out, not read from advjax).
_B0_STAGES = (
  (1, 3, 1, 32, 16, 1),
  (6, 3, 2, 16, 24, 2),
  (6, 5, 2, 24, 40, 2),
  (6, 3, 2, 40, 80, 3),
  (6, 5, 1, 80, 112, 3),
  (6, 5, 2, 112, 192, 4),
  (6, 3, 1, 192, 320, 1),
)


class _TorchvisionEfficientNetB0(torch.nn.Module):
  """torchvision.models.efficientnet_b0's layout and names."""

  def __init__(self, num_classes=1000):
    super().__init__()
    features = [_conv_norm(3, 32, 3, 2)]
    for expand, kernel, stride, cin, cout, layers in _B0_STAGES:
      features.append(
        torch.nn.Sequential(
          *[
            _MBConv(expand, kernel, stride if i == 0 else 1, cin if i == 0 else cout, cout)
            for i in range(layers)
          ]
        )
      )
    features.append(_conv_norm(320, 1280, 1))
    self.features = torch.nn.Sequential(*features)
    self.classifier = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(1280, num_classes))

  def forward(self, x):
    x = torch.nn.functional.adaptive_avg_pool2d(self.features(x), 1)
    return self.classifier(torch.flatten(x, 1))


def _randomize(model, seed, images, mean=0.0, std=1.0):
  """Random BatchNorm scales and biases, running statistics measured on `images` (NHWC,
  normalized with `mean` and `std` as the model will see them), eval mode.

  Default statistics (0 and 1) would let an import that drops or swaps them pass; measured
  ones keep every layer's activations in range, so the logits of a deep random network still
  depend on the image (with random statistics, EfficientNet-B0's and ResNet-50's logits were
  nearly the same for every input)."""
  gen = torch.Generator().manual_seed(seed)
  norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
  with torch.no_grad():
    for m in norms:
      m.weight.copy_(1 + 0.2 * torch.randn(m.num_features, generator=gen))
      m.bias.copy_(0.1 * torch.randn(m.num_features, generator=gen))
      m.reset_running_stats()
      m.momentum = None  # the running statistics become the batch's
    model.train()((torch.from_numpy(images.transpose(0, 3, 1, 2).copy()) - mean) / std)
  return model.eval()


def _foolbox_images(pattern, size, n):
  """foolbox's sample images, else skimage photos: real images, uint8 [n, size, size, 3]."""
  images = _images.foolbox_images(pattern, size, n)
  return _inputs.rgb_crops(n=n, size=size) if images is None else images


@pytest.fixture(scope="module")
def cifar_images():
  return _foolbox_images("cifar10_*.png", 32, 4).astype(np.float32) / 255


@pytest.fixture(scope="module")
def imagenet_images():
  return _foolbox_images("imagenet_*.jpg", 224, 2).astype(np.float32) / 255


def _torch_logits(model, images):
  with torch.no_grad():
    return model(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).numpy()


def _flax_logits(module, variables, images):
  """The imported model's logits: `make_logits_fn` jitted with the variables an argument
  (closed over, XLA would compile tens of MB of weights in as constants). One compilation
  costs less than running every layer eagerly (measured here)."""
  return jax.jit(lambda v, x: models.make_logits_fn(module, v)(x))(variables, images)


def _relative_error(got, want):
  return float(np.max(np.abs(np.asarray(got) - want)) / np.max(np.abs(want)))


def _check_import(tmp_path, state, arch, torch_forward, images, *, via_files=True, **kwargs):
  """Imports `state` (also through a wrapped .pt file and a .safetensors file when
  `via_files`), checks the imports agree, and returns (relative logit error against
  `torch_forward` on `images`, module)."""
  module, variables = models.from_torch(state, arch, **kwargs)
  if via_files:
    pt = tmp_path / f"{arch}.pt"  # a training checkpoint: wrapped, DataParallel prefixes
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, pt)
    st = tmp_path / f"{arch}.safetensors"
    safetensors.torch.save_file({k: v.contiguous() for k, v in state.items()}, st)
    for path in (pt, st):
      other_module, other = models.from_torch(path, arch, **kwargs)
      assert other_module == module
      jax.tree_util.tree_map(np.testing.assert_array_equal, other, variables)
  want = _torch_logits(torch_forward, images)
  got = _flax_logits(module, variables, images)
  assert got.shape == want.shape
  scale = np.max(np.abs(want))
  assert scale > 1e-3 and np.ptp(want, axis=0).max() > 1e-2 * scale  # depends on the image
  return _relative_error(got, want), module


def test_resnet18_robustbench_layout(tmp_path, cifar_images):
  torch.manual_seed(0)
  net = _randomize(_torch_zoo.robustbench_module("resnet").ResNet18(), 0, cifar_images)
  err, module = _check_import(tmp_path, net.state_dict(), "resnet18", net, cifar_images)
  assert err < RTOL, err
  assert module.num_classes == 10  # read from linear.weight
  assert module.mean == (0.0, 0.0, 0.0) and module.std == (1.0, 1.0, 1.0)
  # RobustBench's ImageNet wrapper: Sequential(normalize=ImageNormalizer, model=network)
  mean, std = torch.tensor([0.5, 0.4, 0.3]), torch.tensor([0.2, 0.25, 0.3])
  wrapped = {
    "normalize.mean": mean.view(1, 3, 1, 1),
    "normalize.std": std.view(1, 3, 1, 1),
    **{f"model.{k}": v for k, v in net.state_dict().items()},
  }
  module, variables = models.from_torch(wrapped, "resnet18")
  np.testing.assert_allclose(module.mean, mean.numpy(), rtol=1e-6)
  np.testing.assert_allclose(module.std, std.numpy(), rtol=1e-6)
  jax.tree_util.tree_map(
    np.testing.assert_array_equal, variables, models.from_torch(net.state_dict(), "resnet18")[1]
  )


def test_preact_resnet18_with_normalization_buffers(tmp_path, cifar_images):
  """RobustBench's Wong2020FastNet is PreActResNet-18 with `mu` / `sigma` buffers: the
  import reads them into the module's normalization."""
  rb = _torch_zoo.robustbench_module("resnet")
  torch.manual_seed(1)
  mu = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
  sigma = torch.tensor([0.2471, 0.2435, 0.2616]).view(1, 3, 1, 1)
  net = _randomize(
    rb.PreActResNet(rb.PreActBlock, [2, 2, 2, 2], num_classes=7), 1, cifar_images, mu, sigma
  )
  # Wong2020FastNet subclasses the network: its buffers sit beside the network's keys
  state = {**net.state_dict(), "mu": mu, "sigma": sigma}
  err, module = _check_import(
    tmp_path, state, "preact_resnet18", lambda x: net((x - mu) / sigma), cifar_images
  )
  assert err < RTOL, err
  assert module.num_classes == 7 and not module.bn_before_fc
  np.testing.assert_allclose(module.mean, mu.flatten().numpy(), rtol=1e-6)
  np.testing.assert_allclose(module.std, sigma.flatten().numpy(), rtol=1e-6)
  # explicit mean / std win over the buffers; without buffers the default is none
  module, _ = models.from_torch(state, "preact_resnet18", mean=0.5, std=(0.5, 0.25, 0.5))
  assert module.mean == (0.5, 0.5, 0.5) and module.std == (0.5, 0.25, 0.5)
  module, _ = models.from_torch(net.state_dict(), "preact_resnet18")
  assert module.mean == (0.0, 0.0, 0.0) and module.std == (1.0, 1.0, 1.0)
  # a bfloat16 compute dtype keeps float32 variables
  module, variables = models.from_torch(state, "preact_resnet18", dtype=jnp.bfloat16)
  assert module.dtype == jnp.bfloat16
  assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(variables)} == {np.dtype(np.float32)}


@pytest.mark.parametrize("depth", [28, pytest.param(34, marks=pytest.mark.slow)])
def test_wide_resnet(tmp_path, cifar_images, depth):
  wrn = _torch_zoo.robustbench_module("wide_resnet")
  torch.manual_seed(depth)
  # sub_block1: TRADES checkpoints hold it, the forward pass never calls it
  net = _randomize(
    wrn.WideResNet(depth=depth, widen_factor=10, sub_block1=True), depth, cifar_images
  )
  assert any(k.startswith("sub_block1.") for k in net.state_dict())
  err, module = _check_import(
    tmp_path, net.state_dict(), f"wrn{depth}_10", net, cifar_images[:2], via_files=False
  )
  assert err < RTOL, err
  assert (module.depth, module.widen_factor, module.bias_last) == (depth, 10, True)


def test_any_wide_resnet_reads_depth_and_width_from_the_keys(tmp_path, cifar_images):
  wrn = _torch_zoo.robustbench_module("wide_resnet")
  torch.manual_seed(16)
  net = _randomize(wrn.WideResNet(depth=16, widen_factor=2, bias_last=False), 16, cifar_images)
  err, module = _check_import(
    tmp_path, net.state_dict(), "wide_resnet", net, cifar_images, via_files=False
  )
  assert err < RTOL, err
  assert (module.depth, module.widen_factor, module.bias_last) == (16, 2, False)


_IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
_IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@pytest.mark.parametrize(
  "arch,cls",
  [
    ("resnet50", _TorchvisionResNet50),
    # depthwise convolutions (groups = channels), squeeze-excitation 1x1 convolutions
    ("efficientnet_b0", _TorchvisionEfficientNetB0),
  ],
)
def test_torchvision_layouts(tmp_path, imagenet_images, arch, cls):
  torch.manual_seed(3)
  net = _randomize(cls(num_classes=1000), 3, imagenet_images, _IMAGENET_MEAN, _IMAGENET_STD)
  # torchvision models take ImageNet-normalized inputs: the import's default
  err, module = _check_import(
    tmp_path,
    net.state_dict(),
    arch,
    lambda x: net((x - _IMAGENET_MEAN) / _IMAGENET_STD),
    imagenet_images,
    via_files=False,
  )
  assert err < RTOL, err
  assert module.num_classes == 1000
  np.testing.assert_allclose(module.mean, _IMAGENET_MEAN.flatten().numpy(), rtol=1e-6)
  np.testing.assert_allclose(module.std, _IMAGENET_STD.flatten().numpy(), rtol=1e-6)


def test_mismatch_lists_every_problem():
  """One ValueError names the missing key, the extra key and the wrong shape."""
  rb = _torch_zoo.robustbench_module("resnet")
  state = rb.ResNet18().state_dict()
  del state["layer2.1.bn1.running_var"]
  state["layer5.0.conv1.weight"] = torch.zeros(3, 3, 3, 3)
  state["layer3.0.conv2.weight"] = torch.zeros(256, 256, 1, 1)
  with pytest.raises(ValueError) as info:
    models.from_torch(state, "resnet18")
  msg = str(info.value)
  assert "1 missing" in msg and "batch_stats/layer2_1/bn1/var [128]" in msg
  assert "1 unexpected" in msg and "layer5.0.conv1.weight [3, 3, 3, 3]" in msg
  assert "1 shape mismatches" in msg and "layer3.0.conv2.weight [256, 256, 1, 1]" in msg
  assert "[3, 3, 256, 256]" in msg


@pytest.mark.parametrize(
  "kwargs,match",
  [
    ({"arch": "resnet101"}, "`arch` must be one of"),
    ({"arch": "resnet18", "mean": (0.5, 0.5)}, "`mean` must be one finite number or 3"),
    ({"arch": "resnet18", "std": 0.0}, "`std` must be positive"),
    ({"arch": "resnet18", "num_classes": 0}, "`num_classes` must be a positive int"),
  ],
)
def test_bad_arguments(kwargs, match):
  state = {"linear.weight": np.zeros((10, 512), np.float32)}
  with pytest.raises(ValueError, match=match):
    models.from_torch(state, **kwargs)


def test_bad_checkpoints(tmp_path):
  with pytest.raises(ValueError, match="`checkpoint` must be a path"):
    models.from_torch(3, "resnet18")
  with pytest.raises(FileNotFoundError):
    models.from_torch(tmp_path / "absent.pt", "resnet18")
  odd = tmp_path / "weights.npz"
  odd.write_bytes(b"")
  with pytest.raises(ValueError, match="must end in .safetensors or .pt"):
    models.from_torch(odd, "resnet18")
  with pytest.raises(ValueError, match="Cannot infer `num_classes`"):
    models.from_torch({"conv1.weight": np.zeros((64, 3, 3, 3), np.float32)}, "resnet18")
  with pytest.raises(ValueError, match="values must be tensors or arrays"):
    models.from_torch({"linear.weight": [[0.0]]}, "resnet18")
