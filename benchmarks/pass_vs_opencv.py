"""PASS on MNIST adversarial/original pairs: advjax (jit, batched) vs OpenCV + skimage.

The reference is Rozsa et al.'s pipeline, image by image on the host:
`cv2.findTransformECC(original, adversarial, W, MOTION_HOMOGRAPHY, (COUNT|EPS, 50,
1e-3), None, 5)`, `cv2.warpPerspective(..., INTER_LINEAR | WARP_INVERSE_MAP)` and
`skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1)`. The pairs are the minimal hot/cold
(HC-D-1) adversarials of a LeNet-5 trained on the embedded MNIST.

  python -m benchmarks.pass_vs_opencv            # --n 1000 --epochs 3 --repeats 5

Both sides are timed --repeats times (advjax after compiling) and the best run is reported.
"""

import argparse
import functools
import os
import platform
import time

import cv2
import jax
import jax.numpy as jnp
import numpy as np
from skimage.metrics import structural_similarity

from advjax import attacks, data, metrics, models, train
from benchmarks._timing import time_calls


def make_pairs(n: int, epochs: int):
  splits = data.load_mnist5k()
  model = models.get_model("lenet5", num_classes=10)
  variables = train.fit(model, splits["train"], epochs=epochs)
  logits_fn = models.make_logits_fn(model, variables)
  pool = np.concatenate(
    [splits["test"].images, splits["validation"].images, splits["train"].images]
  )
  pool_y = np.concatenate(
    [splits["test"].labels, splits["validation"].labels, splits["train"].labels]
  )
  search = jax.jit(functools.partial(attacks.minimal_adversarial, logits_fn, compute_pass=False))
  advs, origs = [], []
  for start in range(0, len(pool), 256):
    x, y = jnp.asarray(pool[start : start + 256]), jnp.asarray(pool_y[start : start + 256])
    d, _ = attacks.hot_cold_directions(logits_fn, x, y, num_hot=1)
    r = search(x, y, d)
    ok = np.asarray(r.success[:, 0])
    advs.append(np.asarray(r.images[:, 0])[ok])
    origs.append(np.asarray(x)[ok])
    if sum(len(a) for a in advs) >= n:
      break
  return np.concatenate(advs)[:n], np.concatenate(origs)[:n]


def opencv_pass(adv, orig):
  warp = np.eye(3, dtype=np.float32)
  cv2.findTransformECC(
    orig,
    adv,
    warp,
    cv2.MOTION_HOMOGRAPHY,
    (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-3),
    None,
    5,
  )
  aligned = cv2.warpPerspective(
    adv, warp, (adv.shape[1], adv.shape[0]), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
  )
  return structural_similarity(
    aligned, orig, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0
  )


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--n", type=int, default=1000)
  parser.add_argument("--epochs", type=int, default=3)
  parser.add_argument(
    "--repeats", type=int, default=5, help="timed runs of each side; the best is reported"
  )
  args = parser.parse_args()
  adv, orig = make_pairs(args.n, args.epochs)
  n = len(adv)

  t0 = time.perf_counter()
  ours, info = jax.block_until_ready(
    metrics.pass_score_with_info(jnp.asarray(adv), jnp.asarray(orig))
  )
  compile_s = time.perf_counter() - t0
  best_ours = min(
    time_calls(lambda: metrics.pass_score(jnp.asarray(adv), jnp.asarray(orig)), args.repeats).wall
  )
  ours = np.asarray(ours)

  ref = np.full(n, np.nan)

  def reference_loop():
    for i in range(n):
      try:
        ref[i] = opencv_pass(adv[i, ..., 0], orig[i, ..., 0])
      except cv2.error:
        ref[i] = np.nan

  cv_s = min(time_calls(reference_loop, args.repeats).wall)  # the whole loop, best of as many
  failures = int(np.sum(np.isnan(ref)))

  ok = ~np.isnan(ref)
  diff = np.abs(ref[ok] - ours[ok])
  load = os.getloadavg()[0]
  print(
    f"PASS on {n} MNIST HC-D-1 minimal-adversarial/original pairs (28x28x1); "
    f"jax {jax.__version__} on {jax.default_backend()}, opencv {cv2.__version__}, "
    f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
    f"load average {load:.1f}\n"
  )
  print(
    f"| implementation (best of {args.repeats} runs) | pairs/s | failures | NaN | median PASS |"
  )
  print("|---|---:|---:|---:|---:|")
  print(
    f"| advjax `pass_score` (jit, one batch; compile {compile_s:.1f} s excluded) | "
    f"{n / best_ours:,.0f} | 0 (fallback to identity: {int(np.sum(info.fallback))}) | "
    f"{int(np.sum(~np.isfinite(ours)))} | {np.median(ours):.4f} |"
  )
  print(
    f"| cv2.findTransformECC + skimage SSIM (Python loop) | {n / cv_s:,.0f} | "
    f"{failures} (raised) | - | {np.nanmedian(ref):.4f} |"
  )
  print(
    f"\nspeed-up {cv_s / best_ours:.1f}x; on the {int(ok.sum())} pairs where OpenCV "
    f"converges: median |diff| {np.median(diff):.5f}, 90th percentile "
    f"{np.percentile(diff, 90):.4f}, max {diff.max():.4f}"
  )


if __name__ == "__main__":
  main()
