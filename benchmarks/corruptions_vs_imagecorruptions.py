"""The 15 common corruptions at severity 3 on 256 32x32x3 images: advjax vs imagecorruptions.

advjax runs each corruption as one jitted, vmapped call (`corrupt_batch`, after
one compile per type); imagecorruptions runs per image on NumPy/OpenCV/PIL.
Types that imagecorruptions cannot run any more (glass_blur, fog with NumPy 2 /
new scikit-image) are timed for advjax only and left out of the ratio.

Run:  python -m benchmarks.corruptions_vs_imagecorruptions [--n 256] [--severity 3]
"""

import argparse
import os
import time
import warnings

import numpy as np

import jax
import jax.numpy as jnp

from advjax import augment
from benchmarks._images import cifar_like


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--n", type=int, default=256)
  parser.add_argument("--severity", type=int, default=3)
  args = parser.parse_args()
  images_u8 = cifar_like(args.n)
  x = jnp.asarray(images_u8.astype(np.float32) / 255.0)
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      import imagecorruptions  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    print(f"imagecorruptions unavailable ({e}); timing advjax only")
    imagecorruptions = None

  rows = []
  tot_ours = tot_ref = 0.0
  for name in augment.corruption_names():
    key = jax.random.key(0)
    t = time.perf_counter()
    augment.corrupt_batch(key, x, name=name, severity=args.severity).block_until_ready()
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    augment.corrupt_batch(
      jax.random.key(1), x, name=name, severity=args.severity
    ).block_until_ready()
    ours = time.perf_counter() - t
    ref = None
    if imagecorruptions is not None:
      try:
        with warnings.catch_warnings():
          warnings.simplefilter("ignore")
          t = time.perf_counter()
          for img in images_u8:
            imagecorruptions.corrupt(img, corruption_name=name, severity=args.severity)
          ref = time.perf_counter() - t
      except Exception as e:  # pylint: disable=broad-except
        ref = f"fails: {type(e).__name__}"
    if isinstance(ref, float):
      tot_ours += ours
      tot_ref += ref
    rows.append((name, args.n / ours, compile_s, ref))

  print(
    f"Corruptions, {args.n} images 32x32x3, severity {args.severity}; jax "
    f"{jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPUs, "
    f"load average {os.getloadavg()[0]:.1f}"
  )
  print("| corruption | advjax images/s | advjax compile s | imagecorruptions images/s | ratio |")
  print("|---|---:|---:|---:|---:|")
  for name, ips, comp, ref in rows:
    if isinstance(ref, float):
      rips = args.n / ref
      print(f"| {name} | {ips:,.0f} | {comp:.1f} | {rips:,.0f} | {ips / rips:.1f}x |")
    else:
      print(f"| {name} | {ips:,.0f} | {comp:.1f} | {ref or 'n/a'} | - |")
  if tot_ref:
    n_types = sum(isinstance(r[3], float) for r in rows)
    print(
      f"| **all {n_types} types imagecorruptions runs** | {n_types * args.n / tot_ours:,.0f} "
      f"| | {n_types * args.n / tot_ref:,.0f} | {tot_ref / tot_ours:.1f}x |"
    )


if __name__ == "__main__":
  main()
