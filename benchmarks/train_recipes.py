"""Wall time to a robust model for each training recipe: time to a stated PGD accuracy,
and the train time relative to clean training.

  python -m benchmarks.train_recipes [--epochs 10] [--replays 4] [--seed 0] [--target 0.8] \
      [--output FILE.md]

Trains LeNet-5 on the embedded MNIST (mnist5k) with the rows of experiment (e) in
`experiments/_experiments.py` (Adam, batch 128, train eps 0.15, alpha 0): clean training
for E epochs; FGSM-RS with Wong et al. 2020's cyclic learning rate for ceil(E / 2) epochs;
free AT with m replays for ceil(E / m) epochs (Shafahi et al. 2019), as many gradient
computations as clean training; PGD-7 AT (Madry et al. 2018) for E epochs. Each model
is evaluated on the 1,000 test images: clean accuracy and PGD-20 accuracy at eps 0.1
(step 0.01, random start).

Train time is `report["train"]["time_s"]` of `advjax.train.train_and_evaluate`: the
sum of the epoch times, which includes the first step's compilation. The compile
time is measured separately (tracing and compiling the same step, cold) and
subtracted; "time / clean" and the moonshot verdict (time / clean <= 1.3 and PGD
accuracy >= 0.9 x PGD-AT's) use the train time without compilation.

Time to accuracy (Wong et al.'s measure): every epoch's checkpoint is kept and, after
training, evaluated with the same PGD-20 on the test images; the time to the target
is the train time (without compilation) of the first epoch whose checkpoint reaches
`--target`. Last, the PGD-7 adversarial step against the sum of its parts (7 input
gradients + the train step on both batches), from `benchmarks/train_step.py`.

Prints the tables; writes nothing else unless --output is given (all runs live in a
temporary folder). `python -m experiments.reproduce --experiments=e` runs this script with
`--output <root>/e/time_to_accuracy.md`, and RESULTS.md shows that file under (e)'s table.
"""

import argparse
import os
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from advjax import data, eval as ev, models, train
from benchmarks.train_step import step_costs
from experiments._experiments import EPOCHS, EXPERIMENTS, epoch_times

_EVAL_EPS = 0.1
_MOONSHOT_TIME = 1.3  # time / clean at most
_MOONSHOT_ROBUST = 0.9  # PGD accuracy / PGD-AT's at least
_STEP_TARGET = 1.1  # PGD-7 step / sum of its parts at most
_STEP_REPEATS = 30  # timed calls per quantity in train_step.step_costs


def recipe_configs(epochs: int, replays: int, seed: int):
  """(name, label, config) of each row of experiment (e), with `epochs` and `replays`."""
  rows = {r.name: r for r in EXPERIMENTS["e"].rows}
  labels = {
    "clean": "clean",
    "fgsm_rs": "FGSM-RS (cyclic lr)",
    "free": f"free AT (m = {replays})",
    "pgd_at": "PGD-7 AT",
  }
  divisors = {"clean": 1, "fgsm_rs": 2, "free": replays, "pgd_at": 1}
  out = []
  for name in ("clean", "fgsm_rs", "free", "pgd_at"):
    c = rows[name].config(seed)
    c.num_epochs = -(-epochs // divisors[name])
    c.eps_warmup_epochs = min(c.eps_warmup_epochs, c.num_epochs)
    if name == "free":
      c.train_attack.name = f"free(replays={replays})"
    c.keep_checkpoints = c.num_epochs  # every epoch's, for the time to accuracy
    c.checkpoint_every_epochs = 1
    c.progress = False
    c.eval.eps = _EVAL_EPS
    c.eval.attacks = ("pgd",)
    c.eval.masking_checks = False
    c.eval.eps_grid = (0.0, _EVAL_EPS)
    out.append((name, labels[name], c))
  return out


def compile_time(config) -> float:
  """Seconds to trace and compile the train step of `config`, as the loop's first call does.

  Each `train.Run` builds its own jitted step (and no persistent compilation cache is
  set), so this is a cold compile, measured after the run so as not to warm it.
  """
  run = train.Run(config)
  state = run.init_state()
  batch = data.shard_batch(
    data.train_batch(run.splits["train"], config.batch_size, config.seed, 0), run.mesh
  )
  t0 = time.perf_counter()
  run.train_step.lower(state, batch).compile()
  return time.perf_counter() - t0


def epoch_pgd_accuracies(workdir: str):
  """PGD accuracy (the report's attack, on its test images) of each epoch's checkpoint,
  in epoch order."""
  run = train.Run(train.read_run_config(workdir))
  cfg = run.config.eval
  test = run.splits["test"].take(cfg.num_examples)
  attack = ev.make_eval_attack("pgd", cfg)

  @jax.jit
  def correct(variables, x, y, ids):
    logits_fn = models.make_logits_fn(run.model, variables)
    x_adv = attack(jax.random.key(0), logits_fn, x, y, cfg.eps, example_ids=ids)
    return jnp.argmax(logits_fn(x_adv), -1) == y

  ckpt = train.Checkpointer(os.path.join(workdir, "checkpoints"), keep=run.config.num_epochs)
  template = run.init_state()
  out = []
  try:
    for epoch in range(1, run.config.num_epochs + 1):
      state, _ = ckpt.restore(template, step=epoch * run.steps_per_epoch)
      hits = 0
      for i in range(0, len(test), 500):
        x, y = test.images[i : i + 500], test.labels[i : i + 500]
        hits += int(np.sum(correct(state.variables(), x, y, np.arange(i, i + len(y)))))
      out.append(hits / len(test))
  finally:
    ckpt.close()
  return out


def time_to_target(times, accuracies, target: float, compile_s: float = 0.0):
  """(seconds, epochs) of training until the first epoch whose accuracy reaches `target`,
  without `compile_s` (paid in the first epoch); (None, None) when no epoch does."""
  if len(times) != len(accuracies):
    raise ValueError(f"{len(times)} epoch times but {len(accuracies)} accuracies")
  total = -compile_s
  for epoch, (t, acc) in enumerate(zip(times, accuracies), 1):
    total += t
    if acc >= target:
      return max(total, 0.0), epoch
  return None, None


def run_recipe(config, workdir: str, target: float):
  """Trains and evaluates one config; the numbers of its row."""
  report = train.train_and_evaluate(config, workdir)
  total = report["train"]["time_s"]
  comp = compile_time(config)
  accs = epoch_pgd_accuracies(workdir)
  to_target, epochs_to_target = time_to_target(epoch_times(workdir), accs, target, comp)
  return {
    "epochs": config.num_epochs,
    "batch": config.batch_size,
    "train_eps": config.train_attack.eps,
    "time_total": total,
    "compile": comp,
    "time": total - comp,
    "clean_acc": report["clean_accuracy"],
    "pgd_acc": report["attacks"]["pgd"]["accuracy"],
    "pgd_label": report["attacks"]["pgd"]["label"],
    "epoch_pgd": accs,
    "to_target": to_target,
    "epochs_to_target": epochs_to_target,
    "lr": f"{config.optimizer} {config.learning_rate:g} {config.lr_schedule}",
  }


def format_tables(rows, costs, args, load_before, load_after) -> str:
  """The markdown tables and verdict lines; `rows` holds (name, label, numbers)."""
  res = {name: r for name, _, r in rows}
  clean, pgd_at = res["clean"], res["pgd_at"]
  lines = [
    f"LeNet-5 / mnist5k, batch {pgd_at['batch']}, E = {args.epochs} epochs, seed "
    f"{args.seed}, train eps {pgd_at['train_eps']:g}, alpha 0; eval on the test set, "
    f"{pgd_at['pgd_label']} at eps {_EVAL_EPS:g}; jax {jax.__version__}, "
    f"{jax.devices()[0].platform} x{jax.device_count()}, {os.cpu_count()} CPUs, "
    f"load average {load_before:.2f} -> {load_after:.2f}",
    "",
    "| recipe | lr | epochs | train s (incl. compile) | compile s | train s (excl. compile) "
    "| time / clean (excl. compile) | time / clean (incl. compile) | clean acc | PGD-20 acc "
    "| PGD acc / PGD-AT's |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for name, label, r in rows:
    lines.append(
      f"| {label} | {r['lr']} | {r['epochs']} | {r['time_total']:.1f} | {r['compile']:.1f} "
      f"| {r['time']:.1f} | {r['time'] / clean['time']:.2f} "
      f"| {r['time_total'] / clean['time_total']:.2f} "
      f"| {r['clean_acc']:.4f} | {r['pgd_acc']:.4f} | {r['pgd_acc'] / pgd_at['pgd_acc']:.2f} |"
    )
  lines += [
    "",
    f"Moonshot (time / clean excl. compile <= {_MOONSHOT_TIME:g} and PGD acc >= "
    f"{_MOONSHOT_ROBUST:g} x PGD-AT's = {_MOONSHOT_ROBUST * pgd_at['pgd_acc']:.4f}):",
  ]
  for name, label, r in rows:
    if name in ("clean", "pgd_at"):
      continue
    t_ok = r["time"] / clean["time"] <= _MOONSHOT_TIME
    a_ok = r["pgd_acc"] >= _MOONSHOT_ROBUST * pgd_at["pgd_acc"]
    lines.append(
      f"- {label}: time / clean {r['time'] / clean['time']:.2f} "
      f"({'yes' if t_ok else 'no'}), PGD acc {r['pgd_acc']:.4f} "
      f"({'yes' if a_ok else 'no'}) -> **{'met' if t_ok and a_ok else 'not met'}**"
    )
  lines += [
    "",
    f"Time to PGD-20 accuracy >= {args.target:g} on the test images (each "
    "epoch's checkpoint evaluated after training; train seconds without "
    "compilation):",
    "",
    "| recipe | PGD-20 acc after each epoch | epochs to target | seconds to target "
    "| seconds / PGD-AT's |",
    "|---|---|---:|---:|---:|",
  ]
  for name, label, r in rows:
    accs = " ".join(f"{a:.3f}" for a in r["epoch_pgd"])
    if r["to_target"] is None:
      lines.append(f"| {label} | {accs} | not reached | - | - |")
      continue
    rel = f"{r['to_target'] / pgd_at['to_target']:.2f}" if pgd_at["to_target"] else "-"
    lines.append(f"| {label} | {accs} | {r['epochs_to_target']} | {r['to_target']:.1f} | {rel} |")
  ratio = costs["adv"] / costs["parts"]
  lines += [
    "",
    "PGD-7 AT train step vs the sum of its parts (benchmarks/train_step.py, batch "
    f"{pgd_at['batch']}, median of {_STEP_REPEATS} calls after compilation):",
    "",
    "| recipe | PGD-7 step (ms) | 7 input grads + both-batch step (ms) "
    "| step / sum of parts (target <= 1.10) | PGD-20 acc |",
    "|---|---:|---:|---:|---:|",
    f"| PGD-7 AT | {1e3 * costs['adv']:.1f} | {1e3 * costs['parts']:.1f} | {ratio:.3f} "
    f"({'met' if ratio <= _STEP_TARGET else 'not met'}) | {pgd_at['pgd_acc']:.4f} |",
  ]
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument(
    "--epochs",
    type=int,
    default=EPOCHS,
    help="E: epochs of clean training (default: experiment (e)'s)",
  )
  parser.add_argument("--replays", type=int, default=4, help="m of free AT")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument(
    "--target",
    type=float,
    default=0.8,
    help="PGD-20 accuracy at eps 0.1 that 'time to accuracy' waits for",
  )
  parser.add_argument("--output", default="", help="also write the tables to this markdown file")
  args = parser.parse_args()
  if args.epochs < 1 or args.replays < 1:
    parser.error("--epochs and --replays must be >= 1")
  if not 0.0 < args.target <= 1.0:
    parser.error(f"--target={args.target:g}: give a PGD accuracy in (0, 1]")

  load_before = os.getloadavg()[0]
  rows = []
  with tempfile.TemporaryDirectory() as root:
    for name, label, config in recipe_configs(args.epochs, args.replays, args.seed):
      t0 = time.perf_counter()
      r = run_recipe(config, os.path.join(root, name), args.target)
      rows.append((name, label, r))
      print(
        f"[{label}] train {r['time_total']:.1f} s, PGD acc {r['pgd_acc']:.4f} "
        f"({time.perf_counter() - t0:.0f} s with eval)",
        file=sys.stderr,
        flush=True,
      )
  costs = step_costs(batch=rows[-1][2]["batch"], steps=7, repeats=_STEP_REPEATS)
  load_after = os.getloadavg()[0]
  text = format_tables(rows, costs, args, load_before, load_after)
  print(text)
  if args.output:
    ev.atomic_write_text(args.output, text + "\n")


if __name__ == "__main__":
  main()
