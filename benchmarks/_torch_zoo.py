"""Torch models of RobustBench's zoo with random weights, for side-by-side runs and tests.

`robustbench` (install with `pip install --no-deps robustbench==1.1.1`) holds the zoo's
architecture sources, but its package `__init__` imports its evaluation code, which needs
its git-only `autoattack` dependency and more: the architecture files are loaded by path,
which needs only torch.
"""

import importlib.util
import os

import numpy as np

from benchmarks import _images


def robustbench_module(name: str):
  """`robustbench/model_zoo/architectures/<name>.py` as a module, without robustbench's
  package `__init__` (see the module docstring)."""
  root = _images.package_dir("robustbench")
  if not root:
    raise ModuleNotFoundError(
      "robustbench is not installed: pip install --no-deps robustbench==1.1.1", name="robustbench"
    )
  path = os.path.join(root, "model_zoo", "architectures", name + ".py")
  module_spec = importlib.util.spec_from_file_location(f"_robustbench_{name}", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module


def random_model(arch: str, *, num_classes: int = 10, seed: int = 0, **kwargs):
  """A torch model of RobustBench's layout with random weights and random BatchNorm
  statistics, in eval mode.

  Args:
    arch: "resnet18" (the CIFAR ResNet-18 of AutoAttack's examples), "preact_resnet18",
      or "wide_resnet" (kwargs depth, widen_factor; 28/10 and 34/10 are the zoo's).
    num_classes: classifier width.
    seed: torch's seed for the weights.
  """
  import torch  # pylint: disable=import-outside-toplevel

  torch.manual_seed(seed)
  if arch in ("resnet18", "preact_resnet18"):
    zoo = robustbench_module("resnet")
    net = (
      zoo.ResNet(zoo.BasicBlock, [2, 2, 2, 2], num_classes=num_classes)
      if arch == "resnet18"
      else zoo.PreActResNet(zoo.PreActBlock, [2, 2, 2, 2], num_classes=num_classes)
    )
  elif arch == "wide_resnet":
    net = robustbench_module("wide_resnet").WideResNet(num_classes=num_classes, **kwargs)
  else:
    raise ValueError(f"Unknown arch {arch!r}")
  rng = np.random.default_rng(seed)
  with torch.no_grad():
    for m in net.modules():
      if isinstance(m, torch.nn.BatchNorm2d):
        m.running_mean.copy_(torch.tensor(rng.normal(0, 0.1, m.num_features)))
        m.running_var.copy_(torch.tensor(rng.uniform(0.5, 1.5, m.num_features)))
  return net.eval()
