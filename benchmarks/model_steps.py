"""The clean train step of every scale model, float32 and bfloat16, in one table.

  python -m benchmarks.model_steps                     # batch 8 (a CPU); 3 timed calls
  python -m benchmarks.model_steps --batch 256 --repeats 10    # an accelerator
  python -m benchmarks.model_steps --tiny              # seconds: WRN-10-1 only (the test)

For PreActResNet-18, WRN-28-10 and WRN-34-10 (32 x 32, 10 classes) and ResNet-50 and
EfficientNet-B0 (224 x 224, 1000 classes): one SGD step (momentum 0.9, weight decay as an
L2 term) of `train.make_train_step(recipe="standard")` on real images (foolbox's samples,
tiled), per compute dtype. Columns: parameters, compile seconds, median seconds per step
(after one warm-up call), images/s, the step's FLOPs (XLA's cost analysis of the compiled
step), TFLOP/s achieved and, on devices with a known peak (accelerator.PEAK_FLOPS), the
fraction of peak. The step is the library's whole train step as the training loop runs it
(donated state, BatchNorm statistics updated).
"""

import argparse
import time
from typing import Dict, List, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from advjax import models, train
from benchmarks._images import cifar_like
from benchmarks._timing import time_calls
from benchmarks.accelerator import DTYPES, PEAK_FLOPS

# name -> (advjax model, its options, image side, classes)
MODELS = {
  "PreActResNet-18": ("preact_resnet18", {}, 32, 10),
  "WRN-28-10": ("wrn28_10", {}, 32, 10),
  "WRN-34-10": ("wrn34_10", {}, 32, 10),
  "ResNet-50": ("resnet50", {}, 224, 1000),
  "EfficientNet-B0": ("efficientnet_b0", {}, 224, 1000),
}
TINY_MODELS = {"WRN-10-1": ("wide_resnet", {"depth": 10, "widen_factor": 1}, 32, 10)}
HEADER = (
  "| model | dtype | params (M) | batch | compile s | s / step | img/s | GFLOP / step "
  "| TFLOP/s | fraction of peak |"
)


def step_row(
  name: str,
  arch: str,
  options: Dict,
  side: int,
  classes: int,
  dtype: str,
  *,
  batch: int,
  repeats: int,
) -> Dict:
  """Times one model's clean train step in one compute dtype."""
  x = jnp.asarray(cifar_like(batch, side) / 255.0, jnp.float32)
  y = jnp.asarray(np.arange(batch) % classes, jnp.int32)
  model = models.get_model(arch, num_classes=classes, dtype=DTYPES[dtype], **options)
  tx = optax.sgd(0.1, momentum=0.9)
  state = train.create_train_state(
    model, tx, jax.random.PRNGKey(0), (side, side, 3), alpha=1.0, eps=0.0
  )
  params = sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(state.params))
  step = train.make_train_step(
    model, tx, recipe="standard", weight_decay=5e-4, eps_fn=train.eps_schedule("constant", 0.0, 0)
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

  sec = time_calls(one, repeats).median()
  peak = PEAK_FLOPS.get(jax.devices()[0].device_kind, {}).get(dtype)
  return dict(
    model=name,
    dtype=dtype,
    params_m=params / 1e6,
    batch=batch,
    compile_s=compile_s,
    sec=sec,
    img_s=batch / sec,
    gflop=flops / 1e9,
    tflops=flops / sec / 1e12,
    peak_fraction=None if peak is None else flops / sec / peak,
  )


def format_row(r: Dict) -> str:
  peak = "-" if r["peak_fraction"] is None else f"{r['peak_fraction']:.1%}"
  return (
    f"| {r['model']} | {r['dtype']} | {r['params_m']:.2f} | {r['batch']} | "
    f"{r['compile_s']:.1f} | {r['sec']:.3f} | {r['img_s']:.1f} | {r['gflop']:.1f} | "
    f"{r['tflops']:.3f} | {peak} |"
  )


def parse_args(argv: Optional[List[str]] = None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--tiny", action="store_true", help="WRN-10-1 only, batch 4, 1 call")
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--dtypes", default="float32,bfloat16")
  p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {list(MODELS)}")
  args = p.parse_args(argv)
  args.dtypes = [d for d in args.dtypes.split(",") if d]
  unknown = [d for d in args.dtypes if d not in DTYPES]
  if unknown:
    p.error(f"--dtypes: unknown {unknown}; expected some of {list(DTYPES)}")
  table = TINY_MODELS if args.tiny else MODELS
  names = list(table) if args.tiny else [m for m in args.models.split(",") if m]
  bad = [m for m in names if m not in table]
  if bad:
    p.error(f"--models: unknown {bad}; expected some of {list(MODELS)}")
  args.table = {m: table[m] for m in names}
  if args.tiny:
    args.batch, args.repeats = 4, 1
  return args


def main(argv: Optional[List[str]] = None) -> List[Dict]:
  args = parse_args(argv)
  device = jax.devices()[0]
  print(
    f"{device.platform} {device.device_kind}, {jax.device_count()} device(s), jax "
    f"{jax.__version__}; clean SGD train step, median of {args.repeats} calls\n"
  )
  print(HEADER)
  print("|" + "|".join(["---"] * 2 + ["---:"] * 8) + "|")
  rows = []
  for name, (arch, options, side, classes) in args.table.items():
    for dtype in args.dtypes:
      row = step_row(
        name, arch, options, side, classes, dtype, batch=args.batch, repeats=args.repeats
      )
      rows.append(row)
      print(format_row(row), flush=True)
  return rows


if __name__ == "__main__":
  main()
