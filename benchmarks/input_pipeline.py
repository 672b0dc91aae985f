"""The Grain input pipeline (advjax.data) at ImageNet size: throughput per worker process
against this machine's limit, and host memory over an epoch against the dataset's size.

Table 1: 224 px JPEG decode + random-resized crop + flip. The Grain pipeline
(`data.grain_train_iterator` over a `data.FolderSource`, augment="random_resized_crop_flip",
float32 batches at the end) with `worker_count` 0, 1, ..., --max_workers, against a bare
single-process loop doing the same work with PIL and NumPy (read the file, decode, crop,
resize, flip, stack, convert to float32), measured in the same run. "per worker" divides
by the worker count (by 1 for 0 workers: the main process does the work); "x bare" is that
over the bare loop's rate (target >= 0.9); each worker reads with --read_threads threads.

Table 2: peak host RSS over one epoch of a folder of each of --sizes images, each epoch run
in a fresh subprocess (the same pipeline, --epoch_workers workers) while this process samples
the RSS of that subprocess and all its descendants (Grain's workers) from /proc every
50 ms; the sum over the processes at one instant is the peak tree RSS. Also printed: the sum
of each process's own peak (VmHWM), an upper bound. Target: flat, largest size / smallest
within 10%.

The folders are generated in a temporary directory, removed at the end: a pool of real
photos (skimage.data: astronaut, chelsea, coffee, rocket, ...) cut at random and resized to
ImageNet's typical 500 x 375 (a quarter portrait), saved as JPEG quality 90; each folder's
files are hard links into that pool, spread over --classes class sub-folders.

  python -m benchmarks.input_pipeline    # --images 2048 --batch 64 --max_workers <cores>
                                         # --sizes 2000,8000 --epoch_workers <max_workers>
                                         # --read_threads 1
  python -m benchmarks.input_pipeline --tiny    # seconds: 64 images, workers 0..1 (table 1),
                                                # sizes 50,100 with 0 workers (table 2)
"""

import argparse
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

import grain
import numpy as np
from PIL import Image

from advjax import data

IMAGE_SIZE = 224
SAMPLE_S = 0.05  # RSS sampling period of the epoch subprocess tree
MIB = 2.0**20


# --------------------------------------------------------------------------- #
# Generated folders of real photos
# --------------------------------------------------------------------------- #
def photo_pool(n: int, *, seed: int = 0) -> list:
  """n JPEG files' bytes: random crops of skimage's colour photos at 500 x 375 (or
  375 x 500 for a quarter of them), quality 90."""
  from skimage import data as skdata  # pylint: disable=import-outside-toplevel

  photos = [
    getattr(skdata, name)()
    for name in (
      "astronaut",
      "chelsea",
      "coffee",
      "rocket",
      "hubble_deep_field",
      "immunohistochemistry",
      "retina",
    )
  ]
  rng = np.random.default_rng(seed)
  out = []
  for i in range(n):
    photo = photos[i % len(photos)]
    h, w = photo.shape[:2]
    size = (375, 500) if rng.random() < 0.25 else (500, 375)  # PIL's (width, height)
    aspect = size[0] / size[1]
    frac = rng.uniform(0.4, 1.0)  # area fraction of the largest crop of that aspect
    ch = int(min(h, w / aspect) * math.sqrt(frac))
    cw = int(ch * aspect)
    top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    crop = Image.fromarray(photo[top : top + ch, left : left + cw]).resize(size, Image.BILINEAR)
    buf = io.BytesIO()
    crop.save(buf, format="JPEG", quality=90)
    out.append(buf.getvalue())
  return out


def write_folder(root: str, num_images: int, pool_dir: str, *, num_classes: int) -> str:
  """`root/class_XXX/NNNNNN.jpg`, num_images files linked round-robin from `pool_dir`."""
  pool = sorted(os.listdir(pool_dir))
  for c in range(num_classes):
    os.makedirs(os.path.join(root, f"class_{c:03d}"))
  for i in range(num_images):
    src = os.path.join(pool_dir, pool[i % len(pool)])
    dst = os.path.join(root, f"class_{i % num_classes:03d}", f"{i:06d}.jpg")
    try:
      os.link(src, dst)  # one copy on disk; the page cache holds it either way
    except OSError:
      shutil.copyfile(src, dst)
  return root


# --------------------------------------------------------------------------- #
# Table 1: images/s
# --------------------------------------------------------------------------- #
def _bare_crop_flip(image: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
  # Hand-written on purpose: the reference is the same work in plain PIL/NumPy, without
  # Grain or advjax (torchvision's RandomResizedCrop parameters + RandomHorizontalFlip).
  h, w = image.shape[:2]
  for _ in range(10):
    target = h * w * rng.uniform(0.08, 1.0)
    aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    cw, ch = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
    if 0 < cw <= w and 0 < ch <= h:
      top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
      break
  else:  # torchvision's fallback is the central crop of the clamped ratio: the whole
    top, left, ch, cw = 0, 0, h, w  # image for these folders' 4:3 and 3:4 images
  out = np.asarray(
    Image.fromarray(image[top : top + ch, left : left + cw]).resize((size, size), Image.BILINEAR)
  )
  return np.ascontiguousarray(out[:, ::-1]) if rng.random() < 0.5 else out


def bare_loop_rate(
  files, *, num_images: int, batch: int, size: int = IMAGE_SIZE, seed: int = 0
) -> float:
  """Images/s of one process reading, decoding, cropping, flipping and batching (float32
  in [0, 1]) `num_images` images (whole batches) drawn from `files`."""
  rng = np.random.default_rng(seed)
  order = rng.permutation(len(files))
  num_batches = max(1, num_images // batch)
  start = time.perf_counter()
  k = 0
  for _ in range(num_batches):
    images = []
    for _ in range(batch):
      with open(files[order[k % len(files)]], "rb") as f:
        raw = f.read()
      k += 1
      with Image.open(io.BytesIO(raw)) as img:
        decoded = np.asarray(img.convert("RGB"))
      images.append(_bare_crop_flip(decoded, rng, size))
    np.stack(images).astype(np.float32) / np.float32(255)
  return num_batches * batch / (time.perf_counter() - start)


def _iterator(folder: str, *, workers: int, batch: int, read_threads: int, num_epochs=None):
  source = data.FolderSource(folder)
  return data.grain_train_iterator(
    source,
    batch_size=batch,
    seed=0,
    augment="random_resized_crop_flip",
    image_size=IMAGE_SIZE,
    num_epochs=num_epochs,
    shard_options=grain.sharding.ShardOptions(0, 1),
    worker_count=workers,
    read_options=grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=4),
  )


def _close(iterator):
  close = getattr(iterator, "close", None)
  if close is not None:
    close()


def grain_rate(
  folder: str, *, workers: int, num_images: int, batch: int, read_threads: int
) -> float:
  """Images/s of the Grain pipeline in steady state.

  Worker start-up and the batches the workers prepared meanwhile (up to 4 read ahead + 1
  buffered each) are skipped before the clock starts; then `num_images` images (whole
  batches) are timed. The stream repeats the folder, so its size does not matter."""
  it = _iterator(folder, workers=workers, batch=batch, read_threads=read_threads)
  try:
    for _ in range(max(1, workers) * 6):
      next(it)
    num_batches = max(1, num_images // batch)
    start = time.perf_counter()
    for _ in range(num_batches):
      next(it)
    return num_batches * batch / (time.perf_counter() - start)
  finally:
    _close(it)


def throughput_table(
  folder: str, *, max_workers: int, num_images: int, batch: int, read_threads: int
):
  """Rows (workers, images/s, per worker, x bare, speed-up over 1 worker) and the bare
  loop's images/s."""
  files = data.FolderSource(folder).files
  bare = bare_loop_rate(files, num_images=num_images, batch=batch)
  rates = {
    w: grain_rate(folder, workers=w, num_images=num_images, batch=batch, read_threads=read_threads)
    for w in range(max_workers + 1)
  }
  rows = []
  for w, rate in rates.items():
    per = rate / max(1, w)
    speedup = rate / rates[1] if 1 in rates else float("nan")
    rows.append((w, rate, per, per / bare, speedup))
  return rows, bare


# --------------------------------------------------------------------------- #
# Table 2: peak RSS of an epoch, in a subprocess tree
# --------------------------------------------------------------------------- #
def _status_kib(pid: int) -> dict:
  """VmRSS and VmHWM of `pid` in KiB (empty if it has exited)."""
  out = {}
  try:
    with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
      for line in f:
        if line.startswith(("VmRSS:", "VmHWM:")):
          key, value = line.split(":", 1)
          out[key] = int(value.split()[0])
  except OSError:
    pass
  return out


def _tree(pid: int) -> list:
  """`pid` and all its live descendants (from the parent ids in /proc/*/stat)."""
  parents = {}
  for name in os.listdir("/proc"):
    if name.isdigit():
      try:
        with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as f:
          stat = f.read()
      except OSError:
        continue
      # the command name (field 2) may hold spaces; fields after its ')' are fixed
      parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(name))
  tree, todo = [], [pid]
  while todo:
    p = todo.pop()
    tree.append(p)
    todo.extend(parents.get(p, ()))
  return tree


def sample_tree_memory(command, *, period: float = SAMPLE_S, timeout: float = 3600):
  """Runs `command` and samples its process tree's memory until it exits.

  Returns:
    (stdout text, peak of the summed RSS in bytes, sum over processes of their own peak
    VmHWM in bytes, the number of processes seen).

  Raises:
    RuntimeError: with the command's stderr when it fails.
  """
  proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  peak, hwm = 0, {}
  deadline = time.monotonic() + timeout
  while proc.poll() is None and time.monotonic() < deadline:
    total = 0
    for pid in _tree(proc.pid):
      status = _status_kib(pid)
      total += status.get("VmRSS", 0)
      hwm[pid] = max(hwm.get(pid, 0), status.get("VmHWM", 0))
    peak = max(peak, total)
    time.sleep(period)
  if proc.poll() is None:
    proc.kill()
  out, err = proc.communicate()
  if proc.returncode:
    raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode}):\n{err[-4000:]}")
  return out, peak * 1024, sum(hwm.values()) * 1024, len(hwm)


def run_epoch(folder: str, *, workers: int, batch: int, read_threads: int) -> dict:
  """One epoch of the pipeline over `folder` (in the calling process): images, seconds."""
  start = time.perf_counter()
  it = _iterator(folder, workers=workers, batch=batch, read_threads=read_threads, num_epochs=1)
  count = sum(len(b["label"]) for b in it)
  _close(it)
  return {"images": count, "seconds": time.perf_counter() - start}


def memory_table(folders, *, workers: int, batch: int, read_threads: int):
  """Rows (images in the folder, images read, epoch s, processes, peak tree RSS bytes,
  sum of VmHWM bytes), one fresh subprocess per folder."""
  rows = []
  for size, folder in folders:
    command = [
      sys.executable,
      os.path.abspath(__file__),
      f"--epoch_of={folder}",
      f"--epoch_workers={workers}",
      f"--batch={batch}",
      f"--read_threads={read_threads}",
    ]
    out, peak, hwm, procs = sample_tree_memory(command)
    epoch = json.loads(out.strip().splitlines()[-1])
    rows.append((size, epoch["images"], epoch["seconds"], procs, peak, hwm))
  return rows


# --------------------------------------------------------------------------- #
# The command
# --------------------------------------------------------------------------- #
def _load():
  return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument(
    "--images", type=int, default=2048, help="images timed per row of table 1 (after warm-up)"
  )
  parser.add_argument(
    "--sizes", default="2000,8000", help="folder sizes of table 2, comma-separated"
  )
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument(
    "--max_workers", type=int, default=os.cpu_count() or 1, help="table 1: worker_count 0..this"
  )
  parser.add_argument(
    "--epoch_workers", type=int, default=None, help="table 2's worker_count (default --max_workers)"
  )
  parser.add_argument(
    "--read_threads",
    type=int,
    default=1,
    help="Grain read threads per worker (per process with 0 workers)",
  )
  parser.add_argument("--classes", type=int, default=10)
  parser.add_argument("--pool", type=int, default=256, help="distinct JPEGs generated")
  parser.add_argument(
    "--tiny",
    action="store_true",
    help="a seconds-scale run: 64 images, batch 8, workers 0..1, sizes "
    "50,100 read in the main process (worker processes start once)",
  )
  parser.add_argument("--epoch_of", help=argparse.SUPPRESS)  # table 2's subprocess
  args = parser.parse_args(argv)
  if args.epoch_of:
    print(
      json.dumps(
        run_epoch(
          args.epoch_of,
          workers=args.epoch_workers or 0,
          batch=args.batch,
          read_threads=args.read_threads,
        )
      )
    )
    return
  if args.tiny:
    args.images, args.batch, args.sizes, args.pool = 64, 8, "50,100", 16
    args.max_workers = min(args.max_workers, 1)
    args.epoch_workers = 0 if args.epoch_workers is None else args.epoch_workers
  if args.epoch_workers is None:
    args.epoch_workers = args.max_workers
  sizes = [int(s) for s in args.sizes.split(",")]
  for name, value in (
    ("--images", args.images),
    ("--batch", args.batch),
    ("--read_threads", args.read_threads),
    ("--classes", args.classes),
    ("--pool", args.pool),
    ("--sizes", min(sizes)),
  ):
    if value < 1:
      raise ValueError(f"{name} must be >= 1; got {value}.")
  if min(args.max_workers, args.epoch_workers) < 0:
    raise ValueError(
      f"--max_workers and --epoch_workers must be >= 0; got "
      f"{args.max_workers}, {args.epoch_workers}."
    )
  if min(sizes) < args.batch:
    raise ValueError(f"--sizes must each hold at least one batch of {args.batch}; got {sizes}.")
  import PIL  # pylint: disable=import-outside-toplevel

  load_before = _load()
  tmp = tempfile.mkdtemp(prefix="advjax_input_pipeline_")
  try:
    pool_dir = os.path.join(tmp, "pool")
    os.makedirs(pool_dir)
    for i, jpeg in enumerate(photo_pool(args.pool)):
      with open(os.path.join(pool_dir, f"{i:04d}.jpg"), "wb") as f:
        f.write(jpeg)
    train = write_folder(
      os.path.join(tmp, "throughput"),
      max(args.images, args.pool),
      pool_dir,
      num_classes=args.classes,
    )
    folders = [
      (n, write_folder(os.path.join(tmp, f"epoch_{n}"), n, pool_dir, num_classes=args.classes))
      for n in sizes
    ]
    rows, bare = throughput_table(
      train,
      max_workers=args.max_workers,
      num_images=args.images,
      batch=args.batch,
      read_threads=args.read_threads,
    )
    mem = memory_table(
      folders, workers=args.epoch_workers, batch=args.batch, read_threads=args.read_threads
    )
  finally:
    shutil.rmtree(tmp, ignore_errors=True)

  print(
    f"grain {grain.__version__}, Pillow {PIL.__version__}, {os.cpu_count()} CPUs, "
    f"load average {load_before} -> {_load()}; JPEG 500x375 q90 from a pool of "
    f"{args.pool} real photos, batch {args.batch}, {args.read_threads} read thread(s) "
    f"per worker\n"
  )
  print(
    f"Table 1: {IMAGE_SIZE} px decode + random-resized crop + flip, {args.images} "
    f"images per row; bare single-process PIL/NumPy loop: {bare:.1f} images/s\n"
  )
  print(
    "| workers | images/s | images/s per worker | x bare per worker (target >= 0.9) "
    "| speed-up over 1 worker |"
  )
  print("|---:|---:|---:|---:|---:|")
  for w, rate, per, frac, speedup in rows:
    print(f"| {w} | {rate:.1f} | {per:.1f} | {frac:.2f} | {speedup:.2f} |")
  print(
    f"\nTable 2: one epoch, {args.epoch_workers} worker(s), peak host RSS of the process "
    f"tree (sampled every {SAMPLE_S * 1000:.0f} ms)\n"
  )
  print(
    "| images in folder | images read | epoch s | processes | peak tree RSS (MiB) "
    "| sum of VmHWM (MiB) |"
  )
  print("|---:|---:|---:|---:|---:|---:|")
  for size, read, seconds, procs, peak, hwm in mem:
    print(f"| {size} | {read} | {seconds:.1f} | {procs} | {peak / MIB:.1f} | {hwm / MIB:.1f} |")
  ratio = mem[-1][4] / mem[0][4]
  ratio_hwm = mem[-1][5] / mem[0][5]
  verdict = "met" if abs(ratio - 1) <= 0.10 else "not met"
  print(
    f"\npeak RSS ratio {sizes[-1]} / {sizes[0]} images: {ratio:.3f} (sum of VmHWM: "
    f"{ratio_hwm:.3f}); target flat within 10%: {verdict}"
  )


if __name__ == "__main__":
  main()
