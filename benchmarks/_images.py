"""Benchmark inputs: 256 real 32x32x3 images (foolbox's CIFAR-10 samples, else skimage photos)."""
import glob
import importlib.util
import os

import numpy as np
from PIL import Image


def cifar_like(n: int = 256, size: int = 32) -> np.ndarray:
  """n uint8 images [n, size, size, 3], tiled from real photos."""
  imgs = []
  # foolbox's wheel data, found without importing foolbox (its __init__ needs eagerpy)
  spec = importlib.util.find_spec("foolbox")
  if spec is not None and spec.submodule_search_locations:
    paths = sorted(glob.glob(os.path.join(spec.submodule_search_locations[0], "data",
                                          "cifar10_*.png")))
    imgs = [np.asarray(Image.open(p).convert("RGB").resize((size, size))) for p in paths]
  if not imgs:
    from skimage import data as skdata  # pylint: disable=import-outside-toplevel
    for p in (skdata.astronaut(), skdata.chelsea(), skdata.coffee(), skdata.rocket()):
      imgs.append(np.asarray(Image.fromarray(p).resize((size, size), Image.BILINEAR)))
  rng = np.random.default_rng(0)
  out = np.stack([imgs[i % len(imgs)] for i in range(n)])
  flip = rng.random(n) < 0.5  # some variety between the tiled copies
  out[flip] = out[flip, :, ::-1]
  return out
