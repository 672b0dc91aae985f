"""Experiment configs: `get_config(arg=None)`; `arg="quick"` (`--config=FILE.py:quick`) is
the smoke-run variant, defined once here."""


def check_arg(arg) -> None:
  """Raises ValueError unless `arg` is None (the full run) or "quick"."""
  if arg not in (None, "quick"):
    raise ValueError(f"unknown config argument {arg!r}; use none (the full run) or "
                     f"':quick' (a smoke run)")


def quick(c, *, num_examples: int = 200):
  """Shrinks config `c` in place to a smoke run: one epoch, `num_examples` test points,
  every attack, corruption and flip-rate budget cut to a few steps; returns `c`.

  The gradient-masking checks run on all the test points: on a CPU, compiling an attack
  costs more than running it on 200 points, and on the table's points the checks reuse
  the table's compiled PGD (and Square, when it is in the table)."""
  c.num_epochs = 1
  c.eps_warmup_epochs = min(c.eps_warmup_epochs, 1)
  c.eval.num_examples = num_examples
  c.eval.eps_grid = (0.0, c.eval.eps)
  c.eval.pgd_steps = 5
  c.eval.pgd_step_size = 2.5 * c.eval.eps / 5
  c.eval.apgd_steps = 10
  c.eval.cw_steps = 20
  c.eval.cw_binary_steps = 2
  c.eval.square_queries = 100
  c.eval.masking_examples = num_examples
  c.eval.corruption_examples = 100
  c.eval.flip_examples = 50
  c.eval.gallery_size = 4
  return c
