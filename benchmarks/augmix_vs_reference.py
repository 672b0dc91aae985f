"""AugMix on 256 32x32x3 images: advjax (jit + vmap) vs the reference NumPy/PIL code.

The reference below is the AugMix authors' implementation
(google-research/augmix: augmentations.py and augment_and_mix in augmix.py),
rewritten here faithfully: PIL operations on uint8 images, one image at a time.

Run:  python -m benchmarks.augmix_vs_reference [--n 256] [--repeats 3]
"""

import argparse
import os
import time

import numpy as np
from PIL import Image, ImageOps

import jax
import jax.numpy as jnp

from advjax import augment
from benchmarks._images import cifar_like

IMAGE_SIZE = 32


# ----------------------------- reference (NumPy/PIL) ----------------------------- #
def int_parameter(level, maxval):
  return int(level * maxval / 10)


def float_parameter(level, maxval):
  return float(level) * maxval / 10.0


def sample_level(n):
  return np.random.uniform(low=0.1, high=n)


def autocontrast(pil_img, _):
  return ImageOps.autocontrast(pil_img)


def equalize(pil_img, _):
  return ImageOps.equalize(pil_img)


def posterize(pil_img, level):
  level = int_parameter(sample_level(level), 4)
  return ImageOps.posterize(pil_img, 4 - level)


def rotate(pil_img, level):
  degrees = int_parameter(sample_level(level), 30)
  if np.random.uniform() > 0.5:
    degrees = -degrees
  return pil_img.rotate(degrees, resample=Image.BILINEAR)


def solarize(pil_img, level):
  level = int_parameter(sample_level(level), 256)
  return ImageOps.solarize(pil_img, 256 - level)


def _affine(pil_img, params):
  return pil_img.transform((IMAGE_SIZE, IMAGE_SIZE), Image.AFFINE, params, resample=Image.BILINEAR)


def shear_x(pil_img, level):
  level = float_parameter(sample_level(level), 0.3)
  if np.random.uniform() > 0.5:
    level = -level
  return _affine(pil_img, (1, level, 0, 0, 1, 0))


def shear_y(pil_img, level):
  level = float_parameter(sample_level(level), 0.3)
  if np.random.uniform() > 0.5:
    level = -level
  return _affine(pil_img, (1, 0, 0, level, 1, 0))


def translate_x(pil_img, level):
  level = int_parameter(sample_level(level), IMAGE_SIZE / 3)
  if np.random.random() > 0.5:
    level = -level
  return _affine(pil_img, (1, 0, level, 0, 1, 0))


def translate_y(pil_img, level):
  level = int_parameter(sample_level(level), IMAGE_SIZE / 3)
  if np.random.random() > 0.5:
    level = -level
  return _affine(pil_img, (1, 0, 0, 0, 1, level))


AUGMENTATIONS = [
  autocontrast,
  equalize,
  posterize,
  rotate,
  solarize,
  shear_x,
  shear_y,
  translate_x,
  translate_y,
]


def apply_op(image, op, severity):
  image = np.clip(image * 255.0, 0, 255).astype(np.uint8)
  pil_img = Image.fromarray(image)
  pil_img = op(pil_img, severity)
  return np.asarray(pil_img) / 255.0


def augment_and_mix(image, severity=3, width=3, depth=-1, alpha=1.0):
  ws = np.float32(np.random.dirichlet([alpha] * width))
  m = np.float32(np.random.beta(alpha, alpha))
  mix = np.zeros_like(image)
  for i in range(width):
    image_aug = image.copy()
    d = depth if depth > 0 else np.random.randint(1, 4)
    for _ in range(d):
      op = np.random.choice(AUGMENTATIONS)
      image_aug = apply_op(image_aug, op, severity)
    mix += ws[i] * image_aug
  return (1 - m) * image + m * mix


# ----------------------------------- timing ----------------------------------- #
def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--n", type=int, default=256)
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()
  images_u8 = cifar_like(args.n)
  images = images_u8.astype(np.float32) / 255.0

  np.random.seed(0)
  ref_times = []
  for _ in range(args.repeats):
    t = time.perf_counter()
    ref = np.stack([augment_and_mix(x) for x in images])
    ref_times.append(time.perf_counter() - t)

  fn = jax.jit(jax.vmap(augment.augmix))
  x = jnp.asarray(images)
  keys = jax.random.split(jax.random.key(0), args.n)
  t = time.perf_counter()
  fn(keys, x).block_until_ready()
  compile_s = time.perf_counter() - t
  ours_times = []
  for r in range(args.repeats):
    keys = jax.random.split(jax.random.key(r + 1), args.n)
    t = time.perf_counter()
    out = fn(keys, x).block_until_ready()
    ours_times.append(time.perf_counter() - t)
  assert out.shape == ref.shape

  ref_ips = args.n / min(ref_times)
  ours_ips = args.n / min(ours_times)
  print(
    f"AugMix, {args.n} images 32x32x3, severity 3, width 3, depth 1-3 "
    f"(best of {args.repeats}); jax {jax.__version__} on {jax.devices()[0].platform}, "
    f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
  )
  print("| implementation | images/s | ratio |")
  print("|---|---:|---:|")
  print(f"| reference NumPy/PIL (per image) | {ref_ips:,.0f} | 1.0x |")
  print(f"| advjax jit(vmap(augmix)) | {ours_ips:,.0f} | {ours_ips / ref_ips:.1f}x |")
  print(f"(advjax compile time, once: {compile_s:.1f} s)")


if __name__ == "__main__":
  main()
