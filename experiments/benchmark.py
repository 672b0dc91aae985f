"""A leaderboard entry under RobustBench's protocol: clean and AutoAttack accuracy on the
first n test points, written as RobustBench's `model_info.json`.

  # an advjax run (its latest checkpoint)
  python -m experiments.benchmark --run=runs/mnist_hybrid --dataset=mnist \
      --threat_model=Linf --n_examples=1000 --workdir=runs/mnist_hybrid/benchmark
  # a PyTorch checkpoint (see advjax.models.from_torch for the architectures)
  python -m experiments.benchmark --checkpoint=model.pt --arch=wrn28_10 --dataset=cifar10 \
      --data=tfds:cifar10 --threat_model=Linf --n_examples=10000 --workdir=runs/wrn_bench
  # ImageNet: a folder of the validation set (<root>/<wnid>/<file>.JPEG)
  python -m experiments.benchmark --checkpoint=resnet50.pth --arch=resnet50 \
      --dataset=imagenet --data=folder:/data/imagenet/val --threat_model=Linf \
      --n_examples=5000 --workdir=runs/r50_bench

Threat models (eps as exact fractions): cifar10 / cifar100 Linf 8/255 and L2 0.5,
imagenet Linf 4/255 (and mnist Linf 3/10, not on RobustBench's leaderboard). --eps=0.1
(or a fraction, 2/255) evaluates at a custom budget instead, e.g. a model trained for
mnist Linf 0.1; model_info.json's footnote and benchmark.json's "standard_threat_model"
then say it is not the leaderboard's threat model. The points are
the first --n_examples of the test split in dataset order (ImageNet: RobustBench's list of
5,000 validation images, from the installed robustbench package, preprocessed as its
Res256Crop224); clean accuracy is measured on the same points. The attack is AutoAttack's
--version: standard (APGD-CE, APGD-T and FAB-T with 9 targets, Square with 5,000 queries, 100
iterations) or plus (the reference's plus stages and restarts); each stage runs only on the
points still robust. --num_steps / --num_queries make a cheaper, custom version, and the
entry's footnote then says so. Every finished batch of every stage is saved in
<workdir>/autoattack_state; after an interruption, the same command with --resume continues
from there and ends with the same result (without --resume an existing state is an error);
benchmark.json's "seconds" is then the time of every invocation's finished batches. An
advjax run's checkpoints are opened read-only (its training may still be running).

Writes into --workdir: `model_info.json` (RobustBench's ModelInfo fields: clean_acc,
autoattack_acc, eps such as "8/255", architecture, dataset, number_forward_passes, ...),
`benchmark.json` (the protocol, budgets, per-stage accuracies and time), `points.npz` and
`points.jsonl` (per point: id, label, the stage that broke it, the Linf and L2 norms of the
perturbation and the final margin, logit of the label minus the best other) and, with --corruptions,
`corruptions.csv` (accuracy per corruption and severity, on the same points, corrupted by
advjax's implementation of the 15 common corruptions rather than read from CIFAR-10-C /
ImageNet-C files). model_info.json is written last: a killed run leaves no entry.
A wrong flag is one line and exit 2; a setting advjax rejects is one line and exit 1.
"""

import os
from typing import Dict, Optional, Tuple

from absl import flags
import numpy as np

from experiments import _cli


def _define_flags():
  # Defined only when run as a program: absl flags are process-wide, and tests and
  # users import several experiments/ modules into one process.
  flags.DEFINE_string("workdir", None, "Folder for model_info.json and the rest.")
  flags.DEFINE_string(
    "run", None, "An advjax training run's workdir (its latest checkpoint is evaluated)."
  )
  flags.DEFINE_string("checkpoint", None, "A PyTorch .pt / .pth / .safetensors file (with --arch).")
  flags.DEFINE_string(
    "arch", None, "The checkpoint's architecture (advjax.models.from_torch's names)."
  )
  flags.DEFINE_enum(
    "dataset", "cifar10", ["cifar10", "cifar100", "imagenet", "mnist"], "The benchmark's dataset."
  )
  flags.DEFINE_string(
    "data",
    None,
    "Where its test split is: tfds:<name> (prepared "
    "array_record data), npz:<path>, folder:<ImageNet val root>, "
    "mnist5k. Default: tfds:<dataset>, or mnist5k for mnist.",
  )
  flags.DEFINE_enum("threat_model", "Linf", ["Linf", "L2"], "The norm.")
  flags.DEFINE_string(
    "eps",
    None,
    "A custom budget (e.g. 0.1 or 8/255) instead of the "
    "protocol's eps for --dataset and --threat_model; the entry's "
    "footnote then says it is not the leaderboard's threat model.",
  )
  flags.DEFINE_integer(
    "n_examples", None, "The first n test points (RobustBench: 10000 for CIFAR, 5000 for ImageNet)."
  )
  flags.DEFINE_integer("batch_size", 500, "Examples per compiled call.")
  flags.DEFINE_integer("seed", 0, "AutoAttack's random seed.")
  flags.DEFINE_integer("num_steps", 100, "APGD / FAB iterations (100: standard).")
  flags.DEFINE_integer("num_queries", 5000, "Square's queries (5000: standard).")
  flags.DEFINE_enum(
    "version",
    "standard",
    ["standard", "plus"],
    "AutoAttack's version (advjax.attacks.AUTOATTACK_VERSIONS).",
  )
  flags.DEFINE_bool(
    "resume",
    False,
    "Continue the evaluation saved in "
    "<workdir>/autoattack_state (same settings) instead of refusing "
    "to overwrite it.",
  )
  flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "The model's compute dtype.")
  flags.DEFINE_bool("corruptions", False, "Also write corruptions.csv.")
  flags.DEFINE_string("name", None, "model_info: the model's name.")
  flags.DEFINE_string(
    "architecture", None, "model_info: architecture (default: the advjax model name)."
  )
  flags.DEFINE_string("link", None, "model_info: the paper's link.")
  flags.DEFINE_string("authors", None, "model_info: authors.")
  flags.DEFINE_string("venue", None, "model_info: venue.")
  flags.DEFINE_bool(
    "additional_data", False, "model_info: trained with data beyond the training set."
  )
  flags.DEFINE_integer(
    "number_forward_passes",
    1,
    "model_info: forward passes per prediction (1 for a deterministic model).",
  )
  flags.DEFINE_bool("progress", True, "Show a progress bar.")
  flags.mark_flags_as_required(["workdir", "n_examples"])


def load_model(
  *, run: Optional[str], checkpoint: Optional[str], arch: Optional[str], dtype: str = "float32"
) -> Tuple[object, Dict, str]:
  """(module, variables, architecture name) of an advjax run or a PyTorch checkpoint."""
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from advjax import models  # pylint: disable=import-outside-toplevel

  if (run is None) == (checkpoint is None):
    raise _cli.UsageError(
      "give exactly one of --run (an advjax run) and --checkpoint (a PyTorch file, with --arch)"
    )
  if run is not None:
    from advjax import train  # pylint: disable=import-outside-toplevel

    r, state = train.load_run(run)
    module, variables, name = r.model, state.variables(), r.config.model
  else:
    if not arch:
      raise _cli.UsageError("--checkpoint needs --arch (the checkpoint's architecture)")
    module, variables = models.from_torch(checkpoint, arch)
    name = arch
  if dtype != "float32":
    module = module.clone(dtype=getattr(jnp, dtype))
  return module, variables, name


def load_points(dataset: str, data_spec: Optional[str], n_examples: int):
  """The first `n_examples` test points of `dataset` in its order: (images, labels)."""
  from advjax import data  # pylint: disable=import-outside-toplevel
  from advjax import eval as ev  # pylint: disable=import-outside-toplevel

  spec = data_spec or ("mnist5k" if dataset == "mnist" else f"tfds:{dataset}")
  kind, _, rest = spec.partition(":")
  if spec == "mnist5k":
    ds = data.load_splits("mnist5k")["test"]
  elif kind == "tfds" and rest:
    ds = data.load_tfds(rest, "test")
  elif kind == "npz" and rest:
    ds = data.load_npz(rest)
  elif kind == "folder" and rest:
    if dataset != "imagenet":
      raise ValueError(
        f"--data=folder: is for ImageNet's validation folder (RobustBench's "
        f"list of images); for {dataset}, export the test split in its "
        f"order to npz:<path> or use tfds:{dataset}."
      )
    return ev.load_imagenet_points(rest, n_examples)
  else:
    raise _cli.UsageError(
      f"--data={spec!r}: expected tfds:<name>, npz:<path>, folder:<path> or mnist5k"
    )
  return ev.first_points(ds.images, ds.labels, n_examples, dataset)


def benchmark(
  workdir: str,
  *,
  run: Optional[str] = None,
  checkpoint: Optional[str] = None,
  arch: Optional[str] = None,
  dataset: str = "cifar10",
  data_spec: Optional[str] = None,
  norm: str = "Linf",
  n_examples: int,
  batch_size: int = 500,
  seed: int = 0,
  num_steps: int = 100,
  num_queries: int = 5000,
  dtype: str = "float32",
  corruptions: bool = False,
  progress: bool = True,
  version: str = "standard",
  resume: bool = False,
  eps: Optional[str] = None,
  **info,
) -> Dict:
  """Evaluates a model under RobustBench's protocol and writes the entry (see the module
  docstring); `eps` (e.g. "0.1", "8/255") is a custom budget in place of the protocol's.
  Returns the contents of benchmark.json."""
  import jax  # pylint: disable=import-outside-toplevel
  from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel
  from advjax import models  # pylint: disable=import-outside-toplevel
  from advjax import eval as ev  # pylint: disable=import-outside-toplevel

  try:
    threat = ev.threat_model(dataset, norm, eps)
  except ValueError as err:
    if eps is not None:
      raise _cli.UsageError(f"--eps={eps}: {err}") from None
    raise
  state_dir = os.path.join(workdir, "autoattack_state")
  if os.path.exists(state_dir) and not resume:
    raise _cli.UsageError(
      f"{state_dir} holds an earlier evaluation: pass --resume to continue it, or remove it"
    )
  module, variables, arch_name = load_model(run=run, checkpoint=checkpoint, arch=arch, dtype=dtype)
  images, labels = load_points(dataset, data_spec, n_examples)
  logits_fn = models.make_logits_fn(module, variables)
  standard = (num_steps, num_queries) == (100, 5000)
  with tqdm(
    desc=f"AutoAttack {version} {threat.norm} {threat.eps_string}", disable=not progress, unit="img"
  ) as bar:
    result = ev.run_autoattack(
      jax.random.PRNGKey(seed),
      logits_fn,
      images,
      labels,
      threat,
      version=version,
      batch_size=batch_size,
      num_steps=num_steps,
      num_queries=num_queries,
      state_dir=state_dir,
      progress=bar.update,
    )
  corruption_rows = (
    ev.corruption_accuracy(
      jax.random.PRNGKey(seed + 1),
      logits_fn,
      images,
      labels,
      dataset=dataset,
      batch_size=batch_size,
    )
    if corruptions
    else None
  )

  notes = [info.pop("footnote", None)]
  if not threat.standard:
    try:
      usual = ev.threat_model(threat.dataset, threat.norm)
      usual = f" ({usual.dataset} {usual.norm} {usual.eps_string})"
    except ValueError:  # no protocol threat model for this dataset and norm
      usual = ""
    notes.append(
      f"Custom threat model {threat.norm} eps {threat.eps_string}, not the leaderboard's{usual}."
    )
  if not standard:
    notes.append(
      f"Custom AutoAttack budget ({num_steps} iterations, {num_queries} Square "
      f"queries), not the {version} version."
    )
  if dataset not in ev.LEADERBOARD_DATASETS:
    notes.append(f"{dataset} is not a RobustBench leaderboard dataset.")
  footnote = " ".join(n for n in notes if n) or None
  corr_acc = (
    None if corruption_rows is None else float(np.mean([r["accuracy"] for r in corruption_rows]))
  )
  entry = ev.model_info(
    threat,
    clean_accuracy=result["clean_accuracy"],
    autoattack_accuracy=result["robust_accuracy"],
    architecture=info.pop("architecture", None) or arch_name,
    corruptions_accuracy=corr_acc,
    footnote=footnote,
    **info,
  )
  details = {
    "protocol": "RobustBench",
    "dataset": dataset,
    "threat_model": threat.norm,
    "eps": threat.eps_string,
    "eps_float": float(threat.eps),
    "standard_threat_model": threat.standard,
    "n_examples": result["num_examples"],
    "data": data_spec,
    "model": {"run": run, "checkpoint": checkpoint, "arch": arch_name, "dtype": dtype},
    "autoattack": {
      "version": version if standard else "custom",
      "stages": result["stages"],
      "num_steps": num_steps,
      "num_queries": num_queries,
      "seed": seed,
      "batch_size": batch_size,
    },
    "clean_accuracy": result["clean_accuracy"],
    "robust_accuracy": result["robust_accuracy"],
    "robust_accuracy_by_stage": result["robust_accuracy_by_stage"],
    "seconds": result["seconds"],
    "seconds_this_invocation": result["seconds_this_invocation"],
    "device": jax.devices()[0].device_kind,
    "corruptions": corruption_rows,
  }
  ev.write_benchmark(
    workdir,
    details=details,
    entry=entry,
    records=result["records"],
    stages=result["stages"],
    corruptions=corruption_rows,
  )
  return details


def main(argv):
  _cli.no_arguments(argv)
  f = flags.FLAGS
  details = benchmark(
    f.workdir,
    data_spec=f.data,
    norm=f.threat_model,
    eps=f.eps,
    **{
      k: getattr(f, k)
      for k in (
        "run",
        "checkpoint",
        "arch",
        "dataset",
        "n_examples",
        "batch_size",
        "seed",
        "num_steps",
        "num_queries",
        "dtype",
        "corruptions",
        "progress",
        "version",
        "resume",
        "name",
        "architecture",
        "link",
        "authors",
        "venue",
        "additional_data",
        "number_forward_passes",
      )
    },
  )
  print(
    f"{details['dataset']} {details['threat_model']} eps {details['eps']}, "
    f"{details['n_examples']} points: clean {details['clean_accuracy']:.4f}, "
    f"AutoAttack ({details['autoattack']['version']}) "
    f"{details['robust_accuracy']:.4f} in {details['seconds']:.1f} s"
  )
  print(f"entry: {os.path.join(f.workdir, 'model_info.json')}")


if __name__ == "__main__":
  _define_flags()
  _cli.run(main)
