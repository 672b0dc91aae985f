"""PyTorch checkpoints (RobustBench, torchvision layouts) as Flax modules and variables.

The Flax models name every parameterized submodule after its torch attribute path with "."
replaced by "_" (torch `layer1.0.bn1.weight` is Flax `("layer1_0", "bn1", "scale")`), so a
torch key and a Flax path meet as one "_"-joined name: the import needs no per-architecture
key table, only the leaf conversions below.

  torch                                   Flax
  Conv2d.weight [O, I/groups, kh, kw]     params .../kernel [kh, kw, I/groups, O]
  Linear.weight [O, I]                    params .../kernel [I, O]
  BatchNorm.weight / .bias [C]            params .../scale / .../bias
  BatchNorm.running_mean / running_var    batch_stats .../mean / .../var
  BatchNorm.num_batches_tracked           dropped
"""

import functools
import os
from typing import Any, Callable, Dict, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import jax
import jax.numpy as jnp
import numpy as np

from advjax.models import _efficientnet
from advjax.models import _preact_resnet
from advjax.models import _resnet
from advjax.models import _resnet50
from advjax.models import _wide_resnet

CIFAR10_IDENTITY = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _no_options(state):
  del state
  return {}


class _Arch(NamedTuple):
  build: Callable[..., Any]  # (num_classes, mean, std, **options) -> flax module
  classifier: str  # torch key of the classifier weight (gives num_classes)
  image_size: int  # input side used to trace the variable shapes
  mean_std: Tuple[Tuple[float, ...], Tuple[float, ...]]  # import default
  # Layout options that the keys show (a BatchNorm before the classifier, a classifier
  # without bias): state dict -> module kwargs.
  options: Callable[[Mapping[str, Any]], Dict[str, Any]] = _no_options
  # Keys the torch model holds but never uses in its forward pass.
  unused: Tuple[str, ...] = ()


def _preact_options(state):
  return {"bn_before_fc": "bn.weight" in state}


def _wrn(depth, widen_factor):
  return functools.partial(_wide_resnet.WideResNet, depth=depth, widen_factor=widen_factor)


def _wrn_options(state):
  return {"bias_last": "fc.bias" in state}


def _any_wrn_options(state):
  """Depth and width of a RobustBench WideResNet, read from its keys: depth 6n + 4 for n
  blocks per group, widen factor = the first group's channels / 16."""
  blocks = {k.split(".")[2] for k in state if k.startswith("block1.layer.")}
  first = state.get("block1.layer.0.conv1.weight")
  if not blocks or first is None or first.ndim != 4:
    return {}  # the key check reports what is missing
  return {
    "depth": 6 * len(blocks) + 4,
    "widen_factor": int(first.shape[0]) // 16,
    **_wrn_options(state),
  }


# RobustBench's WRN has `sub_block1` in TRADES checkpoints; its forward pass never calls it.
_WRN_UNUSED = ("sub_block1.",)

# RobustBench's CIFAR architectures take [0, 1] inputs without normalization (checkpoints that
# normalize carry `mu` / `sigma` buffers, read below); torchvision's ResNet-50 and
# EfficientNet-B0 expect ImageNet-normalized inputs.
ARCHITECTURES: Dict[str, _Arch] = {
  "resnet18": _Arch(_resnet.ResNet18, "linear.weight", 32, CIFAR10_IDENTITY),
  "preact_resnet18": _Arch(
    _preact_resnet.PreActResNet18, "linear.weight", 32, CIFAR10_IDENTITY, _preact_options
  ),
  "wrn28_10": _Arch(_wrn(28, 10), "fc.weight", 32, CIFAR10_IDENTITY, _wrn_options, _WRN_UNUSED),
  "wrn34_10": _Arch(_wrn(34, 10), "fc.weight", 32, CIFAR10_IDENTITY, _wrn_options, _WRN_UNUSED),
  # any depth and width (e.g. the WRN-70-16 of the zoo), read from the keys
  "wide_resnet": _Arch(
    _wide_resnet.WideResNet, "fc.weight", 32, CIFAR10_IDENTITY, _any_wrn_options, _WRN_UNUSED
  ),
  "resnet50": _Arch(_resnet50.ResNet50, "fc.weight", 224, IMAGENET_MEAN_STD),
  "efficientnet_b0": _Arch(
    _efficientnet.EfficientNetB0, "classifier.1.weight", 224, IMAGENET_MEAN_STD
  ),
}

_WRAPPERS = ("state_dict", "model_state_dict", "model")
_PREFIXES = ("module.", "model.")
# Normalization buffers that checkpoints register beside the network (RobustBench's `mu` and
# `sigma` in CIFAR models, `normalize.mean` and `normalize.std` in its ImageNet wrapper);
# read into the Flax module's `mean` / `std`.
_NORM_BUFFERS = (("mu", "sigma"), ("mean", "std"), ("normalize.mean", "normalize.std"))
# torch leaf name -> (Flax collection, Flax leaf name); weights are resolved by rank.
_LEAVES = {
  "bias": ("params", "bias"),
  "running_mean": ("batch_stats", "mean"),
  "running_var": ("batch_stats", "var"),
}
_DROPPED = ("num_batches_tracked",)


def from_torch(
  checkpoint: Union[str, os.PathLike, Mapping[str, Any]],
  arch: str,
  *,
  num_classes: Optional[int] = None,
  mean: Optional[Union[float, Sequence[float]]] = None,
  std: Optional[Union[float, Sequence[float]]] = None,
  dtype: Any = jnp.float32,
):
  """Imports a PyTorch checkpoint as a Flax module and its variables.

  The result is used like any advjax model: `models.make_logits_fn(module, variables)` maps
  images [B, H, W, 3] in [0, 1] (NHWC) to logits [B, num_classes], matching the torch model's
  logits on the same images (NCHW) in eval mode.

  Architectures (torch layouts):
    - "resnet18": the CIFAR ResNet-18 of RobustBench / AutoAttack (conv1, bn1, layer1..4 of
      BasicBlock, linear); 32x32 inputs.
    - "preact_resnet18": RobustBench's PreActResNet-18 (Wong et al. 2020 "Fast is better
      than free"); 32x32 inputs.
    - "wrn28_10", "wrn34_10": RobustBench's WideResNet (Zagoruyko & Komodakis 2016, as in
      TRADES); 32x32 inputs. "wide_resnet": the same layout at the depth and width its
      keys show (6n + 4 for n blocks per group; the first group's channels / 16).
    - "resnet50": torchvision's ResNet-50 (He et al. 2016, v1.5: stride on the 3x3 conv);
      224x224 inputs.
    - "efficientnet_b0": torchvision's EfficientNet-B0 (Tan & Le 2019; BatchNorm epsilon
      1e-5 as torchvision's); 224x224 inputs.

  Example (a RobustBench checkpoint downloaded beforehand; Wong2020FastNet normalizes in
  its forward pass and its file holds no `mu` / `sigma`, so they are given here):
    >>> module, variables = models.from_torch(  # doctest: +SKIP
    ...     "models/cifar10/Linf/Wong2020Fast.pt", "preact_resnet18",
    ...     mean=(0.4914, 0.4822, 0.4465), std=(0.2471, 0.2435, 0.2616))
    >>> logits_fn = models.make_logits_fn(module, variables)  # doctest: +SKIP
    >>> logits_fn(images).shape  # images [B, 32, 32, 3] in [0, 1]  # doctest: +SKIP
    (B, 10)

  Args:
    checkpoint: a path to a `.pt` / `.pth` file (read with `torch.load(weights_only=True)`
      on the CPU; needs torch), a `.safetensors` file (read with `safetensors.numpy`; torch
      not needed), or a state dict (str -> torch tensor or NumPy array). Wrappers
      `{"state_dict": ...}`, `{"model_state_dict": ...}` and `{"model": ...}` are unwrapped
      and `module.` (DataParallel) and `model.` key prefixes stripped.
    arch: "resnet18", "preact_resnet18", "wrn28_10", "wrn34_10", "wide_resnet",
      "resnet50" or "efficientnet_b0".
    num_classes: classes of the classifier; None reads it from the classifier weight.
    mean: per-channel mean (3 values, or one for all) the module subtracts from [0, 1]
      images. None takes the checkpoint's normalization buffers when it has them (`mu` /
      `sigma`, `mean` / `std` or `normalize.mean` / `normalize.std`, as RobustBench's
      models register them; a model that normalizes with constants in its forward pass
      has none and needs `mean` and `std` given), else the architecture's default: 0 for
      the CIFAR architectures (RobustBench models take raw [0, 1] inputs), ImageNet's
      (0.485, 0.456, 0.406) for "resnet50" and "efficientnet_b0" (torchvision models
      take normalized inputs).
    std: per-channel standard deviation the module divides by; None as for `mean`
      (1 for the CIFAR architectures, ImageNet's (0.229, 0.224, 0.225) for the others).
    dtype: the module's compute dtype (e.g. `jnp.bfloat16` on accelerators); the variables
      and the logits stay float32.

  Returns:
    `(module, variables)`: the Flax module and `{"params": ..., "batch_stats": ...}`
    holding float32 arrays, the same tree `module.init` makes.

  Raises:
    ValueError: for an unknown `arch`, a checkpoint that is not a path or a mapping, a path
      with an unknown suffix, values that are not arrays, bad `num_classes` / `mean` / `std`,
      or a state dict that does not fit the architecture -- the message lists every missing
      key, every unexpected key and every shape mismatch.
    FileNotFoundError: if the checkpoint path does not exist.
    ModuleNotFoundError: if reading the checkpoint needs torch or safetensors and it is not
      installed.
  """
  if arch not in ARCHITECTURES:
    raise ValueError(f"`arch` must be one of {sorted(ARCHITECTURES)}; got {arch!r}.")
  spec = ARCHITECTURES[arch]
  state = _normalize_keys(_unwrap(_read(checkpoint)))
  state = {k: _to_numpy(k, v) for k, v in state.items() if not k.startswith(spec.unused)}
  buffers = _pop_normalization(state)
  mean = _channels("mean", mean, buffers[0] if buffers else spec.mean_std[0])
  std = _channels("std", std, buffers[1] if buffers else spec.mean_std[1])
  if np.any(np.asarray(std) <= 0):
    raise ValueError(f"`std` must be positive; got {std}.")
  if num_classes is None:
    if spec.classifier not in state or state[spec.classifier].ndim != 2:
      raise ValueError(
        f"Cannot infer `num_classes`: the checkpoint has no 2-D classifier "
        f"weight {spec.classifier!r} for arch {arch!r}; pass num_classes."
      )
    num_classes = int(state[spec.classifier].shape[0])
  if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
    raise ValueError(f"`num_classes` must be a positive int; got {num_classes!r}.")

  module = spec.build(
    num_classes=int(num_classes), mean=mean, std=std, dtype=dtype, **spec.options(state)
  )
  size = spec.image_size
  # Shapes only: tracing init is enough to know which arrays the module needs.
  target = jax.eval_shape(
    lambda: module.init(
      {"params": jax.random.key(0), "dropout": jax.random.key(0)},
      jnp.zeros((1, size, size, 3), jnp.float32),
      train=False,
    )
  )
  return module, _assign(dict(target), state)


def _read(checkpoint):
  """The checkpoint as a mapping (what torch.load / safetensors give)."""
  if isinstance(checkpoint, Mapping):
    return checkpoint
  if not isinstance(checkpoint, (str, os.PathLike)):
    raise ValueError(
      "`checkpoint` must be a path (.pt, .pth, .safetensors) or a state dict "
      f"mapping names to tensors; got {type(checkpoint).__name__}."
    )
  path = os.fspath(checkpoint)
  if not os.path.exists(path):
    raise FileNotFoundError(f"`checkpoint` {path!r} does not exist.")
  suffix = os.path.splitext(path)[1].lower()
  if suffix == ".safetensors":
    from safetensors import numpy as st_numpy  # pylint: disable=import-outside-toplevel

    return st_numpy.load_file(path)
  if suffix in (".pt", ".pth", ".bin", ".ckpt", ".tar"):
    import torch  # pylint: disable=import-outside-toplevel

    return torch.load(path, map_location="cpu", weights_only=True)
  raise ValueError(
    f"`checkpoint` {path!r} must end in .safetensors or .pt / .pth (also "
    f".bin, .ckpt, .tar as written by torch.save); got {suffix or 'no suffix'!r}."
  )


def _unwrap(state):
  """Descends into {"state_dict": {...}, "epoch": ...}-style training checkpoints."""
  while True:
    inner = next((state[k] for k in _WRAPPERS if isinstance(state.get(k), Mapping)), None)
    if inner is None:
      return state
    state = inner


def _normalize_keys(state):
  out = {}
  for key, value in state.items():
    if not isinstance(key, str):
      raise ValueError(f"`checkpoint` keys must be str; got {key!r}.")
    stripped = key
    while stripped.startswith(_PREFIXES):
      stripped = stripped.split(".", 1)[1]
    if stripped.rsplit(".", 1)[-1] not in _DROPPED:
      out[stripped] = value
  return out


def _to_numpy(key, value):
  if hasattr(value, "detach"):  # a torch tensor: torch is already imported by its owner
    value = value.detach().cpu()
    if value.is_floating_point():
      value = value.float()  # bfloat16 / float16 have no (exact) NumPy twin
    value = value.numpy()
  if not hasattr(value, "shape") or not hasattr(value, "dtype"):
    raise ValueError(
      f"`checkpoint` values must be tensors or arrays; {key!r} is {type(value).__name__}."
    )
  value = np.asarray(value)
  return value.astype(np.float32) if np.issubdtype(value.dtype, np.floating) else value


def _pop_normalization(state):
  for m, s in _NORM_BUFFERS:
    if m in state and s in state and state[m].size in (1, 3) and state[s].size in (1, 3):
      return state.pop(m).reshape(-1), state.pop(s).reshape(-1)
  return None


def _channels(name, value, default):
  value = default if value is None else value
  arr = np.asarray(value, np.float64).reshape(-1)
  if arr.size == 1:
    arr = np.repeat(arr, 3)
  if arr.size != 3 or not np.all(np.isfinite(arr)):
    raise ValueError(
      f"`{name}` must be one finite number or 3 (one per RGB channel); got {value!r}."
    )
  return tuple(float(a) for a in arr)


def _flax_leaf(key, value):
  """torch key -> ("collection", "_"-joined Flax path) and the value in Flax layout."""
  prefix, _, leaf = key.rpartition(".")
  base = prefix.replace(".", "_")
  if leaf == "weight":
    if value.ndim == 4:  # Conv2d [O, I/groups, kh, kw] (grouped/depthwise alike)
      return ("params", base + "_kernel"), value.transpose(2, 3, 1, 0)
    if value.ndim == 2:  # Linear [O, I]
      return ("params", base + "_kernel"), value.T
    return ("params", base + "_scale"), value  # BatchNorm / LayerNorm / GroupNorm
  collection, name = _LEAVES.get(leaf, ("params", leaf))
  return (collection, (base + "_" if base else "") + name), value


def _assign(target, state):
  """Fills the tree of ShapeDtypeStructs `target` from the torch state dict."""
  converted, origin = {}, {}
  for key, value in state.items():
    flat, value = _flax_leaf(key, value)
    converted[flat], origin[flat] = value, key

  flat_target = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(target)[0]:
    names = [p.key for p in path]
    flat_target[(names[0], "_".join(names[1:]))] = (names, leaf)

  missing, mismatched, leaves = [], [], {}
  for flat, (names, leaf) in flat_target.items():
    if flat not in converted:
      missing.append(f"{'/'.join(names)} {list(leaf.shape)}")
      continue
    value = converted[flat]
    if value.shape != leaf.shape:
      mismatched.append(
        f"{origin[flat]} {list(state[origin[flat]].shape)} -> "
        f"{'/'.join(names)} needs {list(leaf.shape)} (got {list(value.shape)} "
        "after conversion)"
      )
      continue
    leaves[flat] = jnp.asarray(value, leaf.dtype)
  unexpected = [
    f"{origin[f]} {list(state[origin[f]].shape)}" for f in converted if f not in flat_target
  ]
  if missing or unexpected or mismatched:
    parts = []
    for title, items in (
      ("missing (the Flax model needs them)", missing),
      ("unexpected (in the checkpoint, not in the model)", unexpected),
      ("shape mismatches", mismatched),
    ):
      if items:
        parts.append(f"{len(items)} {title}:\n  " + "\n  ".join(sorted(items)))
    raise ValueError("`checkpoint` does not fit the architecture:\n" + "\n".join(parts))

  def fill(path, _):
    names = [p.key for p in path]
    return leaves[(names[0], "_".join(names[1:]))]

  return jax.tree_util.tree_map_with_path(fill, target)
