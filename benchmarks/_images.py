"""Benchmark (and test) inputs: real images from foolbox's wheel, else skimage photos.

foolbox's wheel carries 20 real samples each of MNIST, CIFAR-10, CIFAR-100 and ImageNet
under `foolbox/data/`; they are found without importing foolbox, whose `__init__` needs
eagerpy (the test command installs foolbox with --no-deps).
"""

import glob
import importlib.util
import os
from typing import List, Optional

import numpy as np
from PIL import Image


def package_dir(name: str) -> str:
  """The folder of an installed package, found without importing it ("" if absent)."""
  spec = importlib.util.find_spec(name)
  if spec is None or not spec.submodule_search_locations:
    return ""
  return spec.submodule_search_locations[0]


def foolbox_paths(pattern: str) -> List[str]:
  """Sorted paths of foolbox's sample images matching `pattern` (e.g. "cifar10_*.png");
  [] without foolbox."""
  root = package_dir("foolbox")
  return sorted(glob.glob(os.path.join(root, "data", pattern))) if root else []


def foolbox_images(pattern: str, size: int, n: int) -> Optional[np.ndarray]:
  """The first n of foolbox's samples matching `pattern`, resized to size x size
  (bilinear): uint8 [n, size, size, 3]; None when foolbox has fewer (or is absent)."""
  paths = foolbox_paths(pattern)[:n]
  if len(paths) < n:
    return None
  return np.stack(
    [np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.BILINEAR)) for p in paths]
  )


def cifar_like(n: int = 256, size: int = 32) -> np.ndarray:
  """n uint8 images [n, size, size, 3], tiled from real photos (foolbox's CIFAR-10
  samples, else skimage photos)."""
  imgs = [
    np.asarray(Image.open(p).convert("RGB").resize((size, size)))
    for p in foolbox_paths("cifar10_*.png")
  ]
  if not imgs:
    from skimage import data as skdata  # pylint: disable=import-outside-toplevel

    for p in (skdata.astronaut(), skdata.chelsea(), skdata.coffee(), skdata.rocket()):
      imgs.append(np.asarray(Image.fromarray(p).resize((size, size), Image.BILINEAR)))
  rng = np.random.default_rng(0)
  out = np.stack([imgs[i % len(imgs)] for i in range(n)])
  flip = rng.random(n) < 0.5  # some variety between the tiled copies
  out[flip] = out[flip, :, ::-1]
  return out
