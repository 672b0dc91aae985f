"""The accelerator suite: what a GPU user of advjax cares about, side by side in one run.

1. Attacks on 1,000 CIFAR-shaped real images (foolbox's CIFAR-10 samples, tiled and
   flipped), Linf 8/255: PGD-10 (step 2/255, random start) against torchattacks' PGD, and
   AutoAttack "standard" (APGD-CE, APGD-T 9 targets, FAB-T 9 targets, Square 5,000
   queries, 100 iterations) against the original code (`pyautoattack`), on PreActResNet-18
   and WRN-34-10 in RobustBench's layouts, float32 and bfloat16 (advjax: the model's compute
   dtype, images and perturbations float32; torch: `torch.autocast` to bfloat16). Both sides
   use the same weights: random ones in the torch model, imported with `models.from_torch`.
   The labels are the float32 model's own predictions, so every point starts correct and the
   robust accuracies compare the attacks' strength (the weights are not trained; loading
   RobustBench's trained weights needs the internet).
2. The train step (PGD-10 adversarial training and TRADES, SGD, batch `--train_batch`):
   images/s and the achieved fraction of the device's peak FLOP/s (FLOPs of the compiled
   step from XLA's cost analysis; peaks from the vendors' data sheets, dense).

Times exclude compilation (one warm-up call; the compile time is printed apart).

Run on a GPU machine (see benchmarks/accelerator_setup.sh for one without internet):
  python -m benchmarks.accelerator                 # the full suite (~8 min on one H200)
  python -m benchmarks.accelerator --tiny          # seconds-scale version of every column (CPU)

Needs torch, torchattacks, pyautoattack and robustbench (`pip install --no-deps ...`); a
missing reference leaves its columns empty and says so.
"""

import argparse
import contextlib
import functools
import io
import time
from typing import Callable, Dict, List, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from advjax import attacks, models, train
from benchmarks import _torch_zoo
from benchmarks._images import cifar_like
from benchmarks._timing import time_calls

EPS = 8 / 255
# Dense peak FLOP/s by device kind and compute dtype (vendor data sheets, no sparsity).
PEAK_FLOPS = {
  "NVIDIA H200": {"float32": 67e12, "bfloat16": 989e12},
  "NVIDIA H100 80GB HBM3": {"float32": 67e12, "bfloat16": 989e12},
  "NVIDIA A100-SXM4-80GB": {"float32": 19.5e12, "bfloat16": 312e12},
  "NVIDIA A100-SXM4-40GB": {"float32": 19.5e12, "bfloat16": 312e12},
  "TPU v4": {"float32": 275e12, "bfloat16": 275e12},
  "TPU v5 lite": {"float32": 197e12, "bfloat16": 197e12},
}
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}

# name -> (torch builder kwargs, advjax import arch)
FULL_ARCHS = {
  "PreActResNet-18": (dict(arch="preact_resnet18"), "preact_resnet18"),
  "WRN-34-10": (dict(arch="wide_resnet", depth=34, widen_factor=10), "wrn34_10"),
}
# --tiny: the same layout at the smallest depth and width (compiling AutoAttack for a
# PreActResNet-18 alone takes minutes on a CPU)
TINY_ARCHS = {
  "WRN-10-1": (dict(arch="wide_resnet", depth=10, widen_factor=1), "wide_resnet"),
}


def _optional(name: str):
  try:
    return __import__(name)
  except ImportError:
    return None


def _autocast(net, dtype: str):
  """`net` evaluated under `torch.autocast` to `dtype` (unchanged for float32), returning
  float32 logits."""
  import torch  # pylint: disable=import-outside-toplevel

  if dtype == "float32":
    return net

  class Autocast(torch.nn.Module):
    def __init__(self):
      super().__init__()
      self.net = net

    def forward(self, x):
      with torch.autocast(x.device.type, dtype=torch.bfloat16):
        return self.net(x).float()

  return Autocast().eval()


def _torch_batches(fn, x: np.ndarray, y: np.ndarray, *, batch: int, device) -> np.ndarray:
  """`fn(images NCHW, labels) -> images` of a torch attack over numpy NHWC batches."""
  import torch  # pylint: disable=import-outside-toplevel

  out = []
  for i in range(0, len(x), batch):
    xb = torch.from_numpy(np.ascontiguousarray(x[i : i + batch].transpose(0, 3, 1, 2))).to(device)
    yb = torch.from_numpy(np.asarray(y[i : i + batch])).to(device)
    out.append(fn(xb, yb).detach().float().cpu().numpy().transpose(0, 2, 3, 1))
  if device != "cpu":
    torch.cuda.synchronize()
  return np.concatenate(out)


def _torch_accuracy(net, x: np.ndarray, y: np.ndarray, batch: int, device) -> float:
  import torch  # pylint: disable=import-outside-toplevel

  hits = 0
  with torch.no_grad():
    for i in range(0, len(x), batch):
      xb = torch.tensor(x[i : i + batch].transpose(0, 3, 1, 2)).to(device)
      hits += int((net(xb).argmax(1).cpu().numpy() == y[i : i + batch]).sum())
  return hits / len(x)


def attack_rows(args, archs) -> List[Dict]:
  """One row per (architecture, dtype, attack): advjax and the reference, side by side."""
  import torch  # pylint: disable=import-outside-toplevel

  torchattacks = _optional("torchattacks")
  pyautoattack = _optional("pyautoattack")
  device = "cuda" if torch.cuda.is_available() else "cpu"
  x = (cifar_like(args.n_images) / 255.0).astype(np.float32)
  rows = []
  for arch_name, (torch_kwargs, import_arch) in archs.items():
    net = _torch_zoo.random_model(**torch_kwargs).to(device)
    state_dict = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    module, variables = models.from_torch(state_dict, import_arch)
    with torch.no_grad():
      y = np.concatenate(
        [
          net(torch.tensor(x[i : i + args.batch].transpose(0, 3, 1, 2)).to(device))
          .argmax(1)
          .cpu()
          .numpy()
          for i in range(0, len(x), args.batch)
        ]
      )
    for dtype in args.dtypes:
      logits_fn = models.make_logits_fn(module.clone(dtype=DTYPES[dtype]), variables)
      ref_net = _autocast(net, dtype)
      budgets = {
        "PGD-10": dict(
          advjax=lambda k, xb, yb: attacks.pgd(
            k,
            logits_fn,
            xb,
            yb,
            eps=EPS,
            num_steps=args.pgd_steps,
            step_size=0.25,  # 2/255
          ),
          reference=(
            None
            if torchattacks is None
            else functools.partial(
              _torch_batches,
              torchattacks.PGD(
                ref_net, eps=EPS, alpha=2 / 255, steps=args.pgd_steps, random_start=True
              ),
              batch=args.batch,
              device=device,
            )
          ),
          reference_name="torchattacks",
        ),
        "AutoAttack-standard": dict(
          advjax=lambda k, xb, yb: (
            attacks.autoattack(
              k, logits_fn, xb, yb, eps=EPS, num_steps=args.aa_steps, num_queries=args.aa_queries
            ).images
          ),
          reference=(
            None
            if pyautoattack is None
            else _original_autoattack(pyautoattack, ref_net, device, args)
          ),
          reference_name="pyautoattack",
        ),
      }
      for attack_name, b in budgets.items():
        fn = jax.jit(b["advjax"])
        xb, yb = jnp.asarray(x[: args.batch]), jnp.asarray(y[: args.batch])
        t0 = time.perf_counter()
        jax.block_until_ready(fn(jax.random.PRNGKey(0), xb, yb))
        compile_s = time.perf_counter() - t0

        def run_all():
          outs = [
            fn(
              jax.random.PRNGKey(1),
              jnp.asarray(x[i : i + args.batch]),
              jnp.asarray(y[i : i + args.batch]),
            )
            for i in range(0, len(x), args.batch)
          ]
          return jax.block_until_ready(outs)

        t0 = time.perf_counter()
        adv = np.concatenate([np.asarray(o) for o in run_all()])
        ours_s = time.perf_counter() - t0
        ours_acc = float(np.mean(np.asarray(jnp.argmax(logits_fn(jnp.asarray(adv)), -1)) == y))
        row = dict(
          arch=arch_name,
          dtype=dtype,
          attack=attack_name,
          compile_s=compile_s,
          advjax_img_s=len(x) / ours_s,
          advjax_acc=ours_acc,
          reference=b["reference_name"],
          reference_img_s=None,
          reference_acc=None,
        )
        if b["reference"] is not None:
          t0 = time.perf_counter()
          ref_adv = b["reference"](x, y)
          ref_s = time.perf_counter() - t0
          row["reference_img_s"] = len(x) / ref_s
          row["reference_acc"] = _torch_accuracy(ref_net, ref_adv, y, args.batch, device)
        rows.append(row)
        print(_format_attack_row(row), flush=True)
  return rows


def _original_autoattack(pyautoattack, net, device, args) -> Callable:
  """The original AutoAttack, standard version, at the suite's budgets, as (x, y) -> adv."""
  import torch  # pylint: disable=import-outside-toplevel

  adversary = pyautoattack.AutoAttack(
    net, norm="Linf", eps=EPS, version="standard", device=device, seed=0
  )
  adversary.verbose = False
  for attack in (adversary.apgd, adversary.apgd_targeted, adversary.fab):
    attack.n_iter = args.aa_steps
  adversary.square.n_queries = args.aa_queries

  def run(x, y):
    with contextlib.redirect_stdout(io.StringIO()):
      adv, _ = adversary.run_standard_evaluation(  # pyautoattack returns (x_adv, y_adv)
        torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(device),
        torch.from_numpy(np.asarray(y)).to(device),
        batch_size=args.batch,
      )
    if device != "cpu":
      torch.cuda.synchronize()
    return adv.detach().float().cpu().numpy().transpose(0, 2, 3, 1)

  return run


def train_rows(args, archs) -> List[Dict]:
  """One row per (architecture, dtype, objective): images/s and fraction of peak FLOP/s."""
  rows = []
  device_kind = jax.devices()[0].device_kind
  x = jnp.asarray(cifar_like(args.train_batch) / 255.0, jnp.float32)
  y = jnp.asarray(np.arange(args.train_batch) % 10, jnp.int32)
  tx = optax.sgd(0.1, momentum=0.9)
  eps_fn = train.eps_schedule("constant", EPS, 0)
  for arch_name, (torch_kwargs, import_arch) in archs.items():
    # the torch model's size options (depth, widen_factor) that the advjax name does not
    # fix already (wrn34_10 does, wide_resnet does not)
    size = {k: v for k, v in torch_kwargs.items() if k in models.model_attributes(import_arch)}
    for dtype in args.dtypes:
      model = models.get_model(import_arch, num_classes=10, dtype=DTYPES[dtype], **size)
      for objective in ("pgd_at", "trades"):
        step = _train_step(model, tx, eps_fn, objective, args.pgd_steps)
        state = train.create_train_state(
          model, tx, jax.random.PRNGKey(0), (32, 32, 3), alpha=0.0, eps=EPS
        )
        t0 = time.perf_counter()
        compiled = step.lower(state, (x, y)).compile()
        compile_s = time.perf_counter() - t0
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        flops = float((cost or {}).get("flops", float("nan")))
        state, m = compiled(state, (x, y))
        jax.block_until_ready(m)

        def one():
          nonlocal state
          state, metrics = compiled(state, (x, y))
          return metrics

        sec = time_calls(one, args.repeats).median()
        peak = PEAK_FLOPS.get(device_kind, {}).get(dtype)
        row = dict(
          arch=arch_name,
          dtype=dtype,
          objective=objective,
          compile_s=compile_s,
          img_s=args.train_batch / sec,
          tflops=flops / sec / 1e12,
          peak_fraction=None if peak is None else flops / sec / peak,
        )
        rows.append(row)
        print(_format_train_row(row), flush=True)
  return rows


def _train_step(model, tx, eps_fn, objective: str, steps: int):
  """The jitted train step of PGD-AT or TRADES (the inner attack with `steps` steps)."""
  # alpha = 0 (set in the state): the papers' losses, CE(x') for PGD-AT and
  # CE(x) + 6 KL(p(x) || p(x')) for TRADES (Zhang et al. 2019)
  name = "ce" if objective == "pgd_at" else "trades"
  return train.make_train_step(
    model,
    tx,
    recipe="adversarial",
    eps_fn=eps_fn,
    objective=name,
    attack_fn=train.make_attack_fn("pgd", num_steps=steps, objective=name),
    skip_clean=objective == "pgd_at",
  )


ATTACK_HEADER = (
  "| model | dtype | attack | advjax img/s | reference | reference img/s | "
  "speed-up | advjax robust acc | reference robust acc | advjax compile s |"
)
TRAIN_HEADER = "| model | dtype | train step | img/s | TFLOP/s | fraction of peak | compile s |"


def _f(v, fmt):
  return "-" if v is None else format(v, fmt)


def _format_attack_row(r: Dict) -> str:
  speed = None if r["reference_img_s"] is None else r["advjax_img_s"] / r["reference_img_s"]
  return (
    f"| {r['arch']} | {r['dtype']} | {r['attack']} | {r['advjax_img_s']:.1f} | "
    f"{r['reference']} | {_f(r['reference_img_s'], '.1f')} | {_f(speed, '.2f')} | "
    f"{r['advjax_acc']:.3f} | {_f(r['reference_acc'], '.3f')} | {r['compile_s']:.1f} |"
  )


def _format_train_row(r: Dict) -> str:
  return (
    f"| {r['arch']} | {r['dtype']} | {r['objective']} | {r['img_s']:.1f} | "
    f"{r['tflops']:.2f} | {_f(r['peak_fraction'], '.3f')} | {r['compile_s']:.1f} |"
  )


def parse_args(argv: Optional[List[str]] = None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument(
    "--tiny",
    action="store_true",
    help="every column at toy sizes (CPU, seconds): a smoke run of the suite",
  )
  p.add_argument("--n_images", type=int, default=1000)
  p.add_argument("--batch", type=int, default=500)
  p.add_argument("--train_batch", type=int, default=128)
  p.add_argument("--pgd_steps", type=int, default=10)
  p.add_argument("--aa_steps", type=int, default=100)
  p.add_argument("--aa_queries", type=int, default=5000)
  p.add_argument("--repeats", type=int, default=10)
  p.add_argument("--dtypes", default="float32,bfloat16")
  p.add_argument("--skip_train", action="store_true")
  args = p.parse_args(argv)
  if args.tiny:
    args.n_images, args.batch, args.train_batch = 4, 4, 4
    args.pgd_steps, args.aa_steps, args.aa_queries, args.repeats = 2, 2, 4, 2
  args.dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
  for d in args.dtypes:
    if d not in DTYPES:
      p.error(f"--dtypes: {d!r} is not one of {sorted(DTYPES)}")
  return args


def main(argv: Optional[List[str]] = None) -> Dict[str, List[Dict]]:
  args = parse_args(argv)
  archs = TINY_ARCHS if args.tiny else FULL_ARCHS
  dev = jax.devices()[0]
  print(
    f"advjax accelerator suite on {dev.device_kind} ({dev.platform} x{jax.device_count()}), "
    f"jax {jax.__version__}; {args.n_images} images, batch {args.batch}, Linf {EPS:.5f}"
  )
  missing = [n for n in ("torchattacks", "pyautoattack") if _optional(n) is None]
  if missing:
    print(f"not installed (their columns stay empty): {', '.join(missing)}")
  print("\n" + ATTACK_HEADER + "\n" + "|---" * (ATTACK_HEADER.count("|") - 1) + "|")
  out = {"attacks": attack_rows(args, archs)}
  if not args.skip_train:
    print("\n" + TRAIN_HEADER + "\n" + "|---" * (TRAIN_HEADER.count("|") - 1) + "|")
    out["train"] = train_rows(args, archs)
  return out


if __name__ == "__main__":
  main()
