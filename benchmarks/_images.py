"""Benchmark inputs: 256 real 32x32x3 images (foolbox's CIFAR-10 samples, else skimage photos)."""
import glob
import os

import numpy as np
from PIL import Image


def cifar_like(n: int = 256, size: int = 32) -> np.ndarray:
  """n uint8 images [n, size, size, 3], tiled from real photos."""
  imgs = []
  try:
    import foolbox  # pylint: disable=import-outside-toplevel
    paths = sorted(glob.glob(os.path.join(os.path.dirname(foolbox.__file__), "data",
                                          "cifar10_*.png")))
    imgs = [np.asarray(Image.open(p).convert("RGB").resize((size, size))) for p in paths]
  except ImportError:
    pass
  if not imgs:
    from skimage import data as skdata  # pylint: disable=import-outside-toplevel
    for p in (skdata.astronaut(), skdata.chelsea(), skdata.coffee(), skdata.rocket()):
      imgs.append(np.asarray(Image.fromarray(p).resize((size, size), Image.BILINEAR)))
  rng = np.random.default_rng(0)
  out = np.stack([imgs[i % len(imgs)] for i in range(n)])
  flip = rng.random(n) < 0.5  # some variety between the tiled copies
  out[flip] = out[flip, :, ::-1]
  return out
