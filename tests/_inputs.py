"""Inputs shared by several test files: real test images, and configs with dotted keys set."""
import numpy as np
from PIL import Image


def rgb_crops(n=6, size=32, photos=("astronaut", "chelsea", "coffee")):
  """Real photos (skimage.data) as n centre crops resized to size x size, uint8 [n, s, s, 3]."""
  from skimage import data as skdata  # pylint: disable=import-outside-toplevel
  images = [getattr(skdata, p)() for p in photos]
  out = []
  for i in range(n):
    p = images[i % len(images)]
    h, w = p.shape[:2]
    s = min(h, w) // (1 + i // len(images))
    crop = p[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    out.append(np.asarray(Image.fromarray(crop).resize((size, size), Image.BILINEAR)))
  return np.stack(out)


def set_keys(config, **flat):
  """Sets dotted keys of a ConfigDict in place (`set_keys(c, **{"eval.eps": 0.1})`);
  returns it."""
  for key, value in flat.items():
    node = config
    *path, leaf = key.split(".")
    for part in path:
      node = node[part]
    node[leaf] = value
  return config
