"""What several test files share, so that no test module imports another: real test images,
configs with dotted keys set, the quick training config, a tiny train state, a small trained
MLP, the one harness that runs code on 8 host (CPU) devices, and the benchmarks' modules."""

import contextlib
import importlib
import os
import subprocess
import sys
import textwrap

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from PIL import Image

from advjax import _backends, losses

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rgb_crops(n=6, size=32, photos=("astronaut", "chelsea", "coffee")):
  """Real photos (skimage.data) as n centre crops resized to size x size, uint8 [n, s, s, 3]."""
  from skimage import data as skdata  # pylint: disable=import-outside-toplevel

  images = [getattr(skdata, p)() for p in photos]
  out = []
  for i in range(n):
    p = images[i % len(images)]
    h, w = p.shape[:2]
    s = min(h, w) // (1 + i // len(images))
    crop = p[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    out.append(np.asarray(Image.fromarray(crop).resize((size, size), Image.BILINEAR)))
  return np.stack(out)


def set_keys(config, **flat):
  """Sets dotted keys of a ConfigDict in place (`set_keys(c, **{"eval.eps": 0.1})`);
  returns it."""
  for key, value in flat.items():
    node = config
    *path, leaf = key.split(".")
    for part in path:
      node = node[part]
    node[leaf] = value
  return config


def readme_section(title: str, *, until: str = "\n## ") -> str:
  """README.md from the line `title` (e.g. "## Other commands") to the next `until`
  (the next "## " heading by default; "\n#" stops at any heading)."""
  with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
    text = f.read()
  assert title in text, f"README.md has no {title!r}"
  start = text.index(title)
  end = text.find(until, start + len(title))
  return text[start : end if end >= 0 else len(text)]


def table_cells(line: str) -> list:
  """The stripped cells of one markdown table line ("| a | b |" -> ["a", "b"])."""
  return [c.strip() for c in line.strip().strip("|").split("|")]


def readme_table(heading: str) -> list:
  """The table lines (header and separator included, stripped) under the README heading
  `heading`, up to the next heading."""
  section = readme_section(heading, until="\n#")
  return [l.strip() for l in section.splitlines() if l.startswith("|")]


def readme_table_row(heading: str, first_cell: str) -> list:
  """The cells after the first of the row of `readme_table(heading)` whose first cell
  starts with `first_cell`.

  Raises:
    AssertionError: no such row.
  """
  for line in readme_table(heading):
    cells = table_cells(line)
    if cells[0].startswith(first_cell):
      return cells[1:]
  raise AssertionError(f"README.md {heading!r}: no row starting {first_cell!r}")


def run_experiment(module: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
  """`python -m experiments.<module> ARGS` from the repository root, its output captured
  as text (a non-zero exit does not raise: the caller checks it)."""
  return subprocess.run(
    [sys.executable, "-m", f"experiments.{module}", *args],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=timeout,
    check=False,
  )


def benchmark_module(name: str):
  """The module `benchmarks.<name>` (a script of benchmarks/, run as `python -m
  benchmarks.<name>`)."""
  return importlib.import_module(f"benchmarks.{name}")


# --------------------------------------------------------------------------- #
# The quick training config (mnist_hybrid:quick, 3 short epochs)
# --------------------------------------------------------------------------- #
QUICK = [
  "--config.num_epochs=3",
  "--config.train_attack.name=pgd(num_steps=2)",
  "--config.eval.num_examples=100",
  "--config.eval.attack_options.pgd.num_steps=3",
  "--config.eval.attack_options.pgd.step_size=0.4",
  "--config.progress=False",
  "--config.eps_warmup_epochs=2",
]


def quick_config(**overrides):
  """The config the QUICK command line flags describe, with dotted `overrides` set."""
  from experiments.configs import mnist_hybrid  # pylint: disable=import-outside-toplevel

  c = mnist_hybrid.get_config("quick")
  c.num_epochs, c.eps_warmup_epochs, c.progress = 3, 2, False
  c.train_attack.name = "pgd(num_steps=2)"
  c.eval.num_examples = 100
  c.eval.attack_options.pgd.update(num_steps=3, step_size=0.4)
  return set_keys(c, **overrides)


# --------------------------------------------------------------------------- #
# A one-layer model's train state on 4x4x1 images
# --------------------------------------------------------------------------- #
TINY_EPS = 0.1


class TinyNet(nn.Module):
  """One Dense layer on 4x4x1 images: a kernel (perturbed by AWP) and a bias (not)."""

  num_classes: int = 3

  @nn.compact
  def __call__(self, x, train=False, block_hook=None):
    del train, block_hook
    return nn.Dense(self.num_classes)(x.reshape(x.shape[0], -1))


def tiny_train_setup(n=12, seed=0, tx=None):
  """(model, tx, state, x, y): a TinyNet on n random 4x4x1 images of 3 classes and its train
  state (eps TINY_EPS) with weights 8x the default init, so that the softmax is far from
  uniform; Adam(0.05) unless `tx` is given."""
  from advjax import train  # pylint: disable=import-outside-toplevel

  model = TinyNet()
  k_x, k_state = jax.random.split(jax.random.PRNGKey(seed))
  x = jax.random.uniform(k_x, (n, 4, 4, 1))
  y = jnp.arange(n) % 3
  tx = tx or optax.adam(0.05)
  state = train.create_train_state(model, tx, k_state, (4, 4, 1), alpha=0.0, eps=TINY_EPS)
  state = state.replace(params=jax.tree_util.tree_map(lambda p: 8.0 * p, state.params))
  state = state.replace(opt_state=tx.init(state.params))
  return model, tx, state, x, y


# --------------------------------------------------------------------------- #
# A 784-32-10 MLP trained on the embedded MNIST (AutoAttack's tests)
# --------------------------------------------------------------------------- #
MLP_POINTS = 64


def mlp_logits(p, x):
  """The MLP's logits [batch, 10] for images [batch, 28, 28, 1] and parameters `p`."""
  h = jax.nn.relu(x.reshape(x.shape[0], -1) @ p["w1"] + p["b1"])
  return h @ p["w2"] + p["b2"]


def trained_mlp(mnist):
  """(params, x, y): the MLP trained for 60 full-batch Adam steps on `mnist["train"]` (about
  94% on the test points), and the first MLP_POINTS test points."""
  xt, yt = mnist["train"].get(np.arange(len(mnist["train"])))
  k1, k2 = jax.random.split(jax.random.key(0))
  p = dict(
    w1=jax.random.normal(k1, (784, 32)) / 28.0,
    b1=jnp.zeros(32),
    w2=jax.random.normal(k2, (32, 10)) / 6.0,
    b2=jnp.zeros(10),
  )
  tx = optax.adam(1e-2)

  @jax.jit
  def fit(p):
    def step(c, _):
      p, s = c
      g = jax.grad(lambda p: losses.cross_entropy(mlp_logits(p, xt), yt).mean())(p)
      u, s = tx.update(g, s)
      return (optax.apply_updates(p, u), s), None

    return jax.lax.scan(step, (p, tx.init(p)), None, length=60)[0][0]

  p = jax.device_get(fit(p))
  x, y = mnist["test"].get(np.arange(MLP_POINTS))
  return p, jnp.asarray(x), jnp.asarray(y)


# --------------------------------------------------------------------------- #
# Code on several host devices, in its own process
# --------------------------------------------------------------------------- #
def host_devices_env(n: int) -> dict:
  """This process's environment for a child whose JAX sees `n` CPU devices: XLA's
  `--xla_force_host_platform_device_count=n` added to XLA_FLAGS, JAX_PLATFORMS=cpu and the
  repository root first on PYTHONPATH (the test session's compilation cache is inherited)."""
  flags = " ".join(
    f for f in (os.environ.get("XLA_FLAGS", ""), f"--xla_force_host_platform_device_count={n}") if f
  )
  path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
  return dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu", PYTHONPATH=path)


def run_on_host_devices(code: str, n: int = 8, timeout: float = 600) -> str:
  """Runs `code` in a fresh Python process whose JAX sees `n` CPU devices.

  XLA fixes the number of host devices when the backend starts, so a test process that
  already uses JAX cannot change it; the child runs in the repository root with
  `host_devices_env(n)`.

  Args:
    code: Python source, dedented here; it runs after a check that JAX sees `n` devices.
    n: the number of host devices.
    timeout: seconds before the child is killed (the test fails).

  Returns:
    The child's stdout.

  Raises:
    AssertionError: the child exited with an error (its output's tail is the message).
  """
  check = f"import jax\nassert jax.device_count() == {n}, jax.devices()\n"
  proc = subprocess.run(
    [sys.executable, "-c", check + textwrap.dedent(code)],
    cwd=ROOT,
    env=host_devices_env(n),
    capture_output=True,
    text=True,
    timeout=timeout,
    check=False,
  )
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
  return proc.stdout


# --------------------------------------------------------------------------- #
# The portable code of the backend specializations, on CPU
# --------------------------------------------------------------------------- #
@contextlib.contextmanager
def portable_only():
  """Inside, every backend specialization traces its portable code, also for CPU (what
  GPUs and TPUs run): `advjax._backends.on_cpu` is replaced by its portable branch. JAX's
  caches are cleared on entry and exit, so that no program traced outside is reused
  inside, and none traced inside outside."""
  original = _backends.on_cpu
  jax.clear_caches()
  _backends.on_cpu = lambda cpu, portable, *args: portable(*args)
  try:
    yield
  finally:
    _backends.on_cpu = original
    jax.clear_caches()
