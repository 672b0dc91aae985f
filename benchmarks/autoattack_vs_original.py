"""advjax's AutoAttack (the compacting driver, `eval.run_autoattack`) against the
original code (`pyautoattack`, the authors' AutoAttack on PyPI) on the same weights,
standard version.

Models:
- `lenet_clean`: a LeNet-5 trained normally on the embedded MNIST (most points break in
  APGD-CE), MNIST test points (mnist5k), Linf 0.3;
- `lenet_at`: the same LeNet-5 trained 15 epochs on 0.5 * clean + 0.5 * PGD-7 (eps 0.3)
  cross-entropy (about a quarter of the points survive AutoAttack; PGD alone, alpha 0,
  collapses to a constant prediction in this budget);
- `lenet_at_eps0.1`: the same weights at Linf 0.1, where most points survive every stage;
- `resnet18`: the CIFAR-layout ResNet-18 whose trained weights ship with pyautoattack
  (`examples/model_test.pt`, imported with `advjax.models.from_torch(path, "resnet18")`),
  on foolbox's 20 real CIFAR-10 test images and their mirror images, labels from
  foolbox's file names (`cifar10_<index>_<label>.png`), Linf 8/255.

Both sides get the same weights (the logits are checked equal first), the same points and
the same budgets. Columns: robust accuracy of each side (re-predicted), their difference
in points (target: within 0.5), whether advjax's success mask equals the re-prediction
of its images, seconds of each side (advjax's include compilation) and their ratio.

Setup (never part of requirements.txt; see DESIGN.md, "Known traps"):
  pip install /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl
  pip install --no-deps pyautoattack

Run:
  python -m benchmarks.autoattack_vs_original [--points 1000] [--cifar_points 40] \
      [--steps 100] [--queries 5000] [--batch 250] [--models lenet_clean,lenet_at,lenet_at_eps0.1,resnet18]
  python -m benchmarks.autoattack_vs_original --tiny     # a smoke run of a few minutes
"""

import argparse
import contextlib
import fractions
import importlib.util
import io
import os
import re
import time
from typing import Dict, List, Optional

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from advjax import data, models, train
from advjax import eval as ev
from benchmarks import _images
from benchmarks.attacks_vs_torchattacks import torch_lenet

MODELS = ("lenet_clean", "lenet_at", "lenet_at_eps0.1", "resnet18")


def _package_dir(name: str) -> str:
  path = _images.package_dir(name)
  if not path:
    raise SystemExit(f"{name} is not installed (see this file's setup)")
  return path


def foolbox_cifar(n: int):
  """foolbox's 20 real CIFAR-10 test images and their mirror images (up to 40): float32
  [n, 32, 32, 3] in [0, 1] and the labels of the file names."""
  _package_dir("foolbox")
  paths = _images.foolbox_paths("cifar10_*.png")
  x = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
  y = np.asarray([int(re.search(r"_(\d+)\.png$", p).group(1)) for p in paths])
  x, y = np.concatenate([x, x[:, :, ::-1]]), np.concatenate([y, y])
  if n > len(x):
    raise SystemExit(f"--cifar_points: foolbox has {len(x)} CIFAR images with mirrors")
  return (x[:n] / 255.0).astype(np.float32), y[:n].astype(np.int32)


def torch_resnet18(path: str):
  import torch  # pylint: disable=import-outside-toplevel

  # the architecture file saved beside the weights, loaded by path
  spec = importlib.util.spec_from_file_location(
    "resnet", os.path.join(os.path.dirname(path), "resnet.py")
  )
  resnet = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(resnet)
  net = resnet.ResNet18()
  net.load_state_dict(torch.load(path, map_location="cpu"))
  return net.eval()


def setups(args) -> Dict:
  """name -> (logits_fn, torch net, images, labels, eps, dataset)."""
  out = {}
  if {"lenet_clean", "lenet_at", "lenet_at_eps0.1"} & set(args.models):
    splits = data.load_mnist5k()
    test = splits["test"]
    x, y = test.images[: args.points].astype(np.float32), test.labels[: args.points]
    lenet = models.get_model("lenet5", num_classes=10)
    trained = {}
    for name in ("lenet_clean", "lenet_at", "lenet_at_eps0.1"):
      if name not in args.models:
        continue
      weights = "lenet_clean" if name == "lenet_clean" else "lenet_at"
      if weights not in trained:
        kw = (
          dict(recipe="adversarial", alpha=0.5, eps=0.3, attack=f"pgd(num_steps={args.at_steps})")
          if weights == "lenet_at"
          else {}
        )
        epochs = args.at_epochs if weights == "lenet_at" else args.epochs
        trained[weights] = train.fit(lenet, splits["train"], epochs=epochs, **kw)
      variables = trained[weights]
      out[name] = (
        models.make_logits_fn(lenet, variables),
        torch_lenet(variables),
        x,
        y,
        0.1 if name == "lenet_at_eps0.1" else 0.3,
        "mnist",
      )
  if "resnet18" in args.models:
    path = os.path.join(_package_dir("pyautoattack"), "examples", "model_test.pt")
    module, variables = models.from_torch(path, "resnet18")
    x, y = foolbox_cifar(args.cifar_points)
    out["resnet18"] = (
      models.make_logits_fn(module, variables),
      torch_resnet18(path),
      x,
      y,
      8 / 255,
      "cifar10",
    )
  return out


def original(net, x, y, eps, args):
  """The original AutoAttack, standard version at the given budgets: (x_adv, seconds)."""
  import pyautoattack  # pylint: disable=import-outside-toplevel
  import torch  # pylint: disable=import-outside-toplevel

  adversary = pyautoattack.AutoAttack(
    net, norm="Linf", eps=eps, version="standard", device="cpu", seed=0
  )
  adversary.verbose = False
  for attack in (adversary.apgd, adversary.apgd_targeted, adversary.fab):
    attack.n_iter = args.steps
  adversary.square.n_queries = args.queries
  xt, yt = torch.tensor(x.transpose(0, 3, 1, 2)), torch.tensor(y).long()
  t0 = time.perf_counter()
  with contextlib.redirect_stdout(io.StringIO()):
    adv = adversary.run_standard_evaluation(xt, yt, batch_size=args.batch)[0]
  seconds = time.perf_counter() - t0
  return adv.detach().numpy().transpose(0, 2, 3, 1), seconds


def compare(name, logits_fn, net, x, y, eps, dataset, args) -> Dict:
  import torch  # pylint: disable=import-outside-toplevel

  with torch.no_grad():
    ref_logits = net(torch.tensor(x[:8].transpose(0, 3, 1, 2))).numpy()
  logit_gap = float(np.max(np.abs(np.asarray(logits_fn(jnp.asarray(x[:8]))) - ref_logits)))
  threat = ev.ThreatModel(dataset, "Linf", fractions.Fraction(eps).limit_denominator(1000))
  t0 = time.perf_counter()
  res = ev.run_autoattack(
    jax.random.key(0),
    logits_fn,
    x,
    y,
    threat,
    version="standard",
    batch_size=args.batch,
    num_steps=args.steps,
    num_queries=args.queries,
  )
  ours_s = time.perf_counter() - t0
  predict = jax.jit(lambda z: jnp.argmax(logits_fn(z), -1))
  wrong = (
    np.concatenate(
      [
        np.asarray(predict(jnp.asarray(res["images"][i : i + args.batch])))
        for i in range(0, len(x), args.batch)
      ]
    )
    != y
  )
  ref_adv, ref_s = original(net, x, y, eps, args)
  with torch.no_grad():
    ref_pred = net(torch.tensor(ref_adv.transpose(0, 3, 1, 2))).argmax(1).numpy()
  ours, theirs = 100.0 * res["robust_accuracy"], 100.0 * float(np.mean(ref_pred == y))
  return dict(
    model=name,
    points=len(x),
    clean=100.0 * res["clean_accuracy"],
    advjax=ours,
    original=theirs,
    diff=ours - theirs,
    mask_ok=bool(np.array_equal(wrong, res["broken_by"] != len(res["stages"]))),
    advjax_s=ours_s,
    original_s=ref_s,
    ratio=ours_s / ref_s,
    logit_gap=logit_gap,
  )


def format_row(r: Dict) -> str:
  return (
    f"| {r['model']} | {r['points']} | {r['clean']:.1f} | {r['advjax']:.1f} | "
    f"{r['original']:.1f} | {r['diff']:+.1f} | {'yes' if r['mask_ok'] else 'NO'} | "
    f"{r['advjax_s']:.1f} | {r['original_s']:.1f} | {r['ratio']:.2f} |"
  )


HEADER = (
  "| model | points | clean % | advjax robust % | original robust % | diff (points) "
  "| mask == re-prediction | advjax s | original s | advjax / original |\n"
  "|---|---|---|---|---|---|---|---|---|---|"
)


def parse_args(argv: Optional[List[str]] = None):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--points", type=int, default=1000, help="MNIST test points")
  p.add_argument("--cifar_points", type=int, default=40, help="CIFAR points (<= 40)")
  p.add_argument("--steps", type=int, default=100, help="APGD / FAB iterations")
  p.add_argument("--queries", type=int, default=5000, help="Square queries")
  p.add_argument("--batch", type=int, default=250, help="batch size of both sides")
  p.add_argument("--epochs", type=int, default=4, help="lenet_clean's training epochs")
  p.add_argument(
    "--at_epochs",
    type=int,
    default=15,
    help="lenet_at's training epochs (0.5 clean + 0.5 PGD loss)",
  )
  p.add_argument("--at_steps", type=int, default=7, help="PGD steps of adversarial training")
  p.add_argument(
    "--models", default=",".join(MODELS), help="comma-separated, of " + ", ".join(MODELS)
  )
  p.add_argument(
    "--tiny",
    action="store_true",
    help="a smoke run: 16 points, 3 steps, 20 queries, 1 epoch, LeNet (clean) only",
  )
  args = p.parse_args(argv)
  args.models = [m for m in args.models.split(",") if m]
  if args.tiny:
    args.points, args.cifar_points, args.steps, args.queries = 16, 8, 3, 20
    args.batch, args.epochs, args.at_steps, args.models = 16, 1, 2, ["lenet_clean"]
  unknown = set(args.models) - set(MODELS)
  if unknown:
    p.error(f"--models: unknown {sorted(unknown)}; expected some of {list(MODELS)}")
  return args


def main(argv: Optional[List[str]] = None) -> List[Dict]:
  args = parse_args(argv)
  rows = []
  print(
    f"AutoAttack standard, {args.steps} iterations, {args.queries} Square queries, "
    f"batch {args.batch}"
  )
  print(HEADER, flush=True)
  for name, (f, net, x, y, eps, dataset) in setups(args).items():
    row = compare(name, f, net, x, y, eps, dataset, args)
    rows.append(row)
    print(format_row(row), flush=True)
  print(
    "logits max |advjax - torch|: " + ", ".join(f"{r['model']} {r['logit_gap']:.1e}" for r in rows)
  )
  return rows


if __name__ == "__main__":
  main()
