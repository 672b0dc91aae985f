"""Inputs shared by several test files: real test images, configs with dotted keys set, and
the scripts of benchmarks/ as modules."""
import importlib.util
import os

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


def benchmark_module(name: str):
  """benchmarks/<name>.py imported as a module (benchmarks/ is not a package)."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  spec = importlib.util.spec_from_file_location(
      name, os.path.join(root, "benchmarks", f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module
