"""Packaging: `pip install advjax` (jax, flax, optax, dm-pix, chex, numpy) is enough for the
transforms; the training and experiment stack needs `advjax[train]` and says so when missing;
pyproject.toml's lists, the setup.py shim, the requirements files, the README's two commands and
.ci/run agree."""

import ast
import os
import re
import shlex
import subprocess
import sys
import textwrap
import tomllib

from advjax import _extras
from tests._inputs import readme_section

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORE = {"jax", "flax", "optax", "dm-pix", "chex", "numpy"}
# Import names of what only the training extra installs. absl and etils are not here: optax
# and chex depend on them, so every install has them (the AST test below still checks that
# advjax's core packages never import absl themselves).
BLOCKED = (
  "orbax",
  "ml_collections",
  "tensorflow_datasets",
  "tensorflow",
  "matplotlib",
  "tqdm",
  "mlxtend",
  "PIL",
  "grain",
  "array_record",
)
CORE_PACKAGES = ("attacks", "augment", "losses", "metrics", "models", "data", "_backends")

_WITHOUT_EXTRA = textwrap.dedent("""
    import importlib, importlib.abc, sys
    BLOCKED = {blocked!r}

    class Block(importlib.abc.MetaPathFinder):  # as if the extra were not installed
      def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
          raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

    sys.meta_path.insert(0, Block())
    import jax, jax.numpy as jnp
    import advjax
    from advjax import attacks, augment, data, losses, metrics, models

    import flax.linen as nn

    class Tiny(nn.Module):
      @nn.compact
      def __call__(self, x):
        return nn.Dense(10)(x.reshape(x.shape[0], -1))

    x = jax.random.uniform(jax.random.key(1), (2, 12, 12, 1))
    model = Tiny()
    logits_fn = models.make_logits_fn(model, model.init(jax.random.key(0), x))
    y = jnp.array([3, 7])
    x_adv = attacks.pgd(jax.random.key(2), logits_fn, x, y, eps=0.1, num_steps=2)
    assert x_adv.shape == x.shape and float(jnp.abs(x_adv - x).max()) <= 0.1 + 1e-6
    assert augment.diffaugment(jax.random.key(3), x[0], policy="color").shape == x[0].shape
    assert losses.cross_entropy(logits_fn(x_adv), y).shape == (2,)
    assert metrics.ssim(x, x_adv).shape == (2,)
    print("CORE OK")

    def error(fn):
      try:
        fn()
      except ModuleNotFoundError as err:
        return str(err)
      raise AssertionError(f"{{fn}} imported without the extra")

    print("TRAIN:", error(lambda: importlib.import_module("advjax.train")))
    print("EVAL:", error(lambda: advjax.eval))
    print("PLOTS:", error(lambda: importlib.import_module("advjax.plots")))
    print("MNIST:", error(data.load_mnist5k))
    assert not [m for m in sys.modules if m.partition(".")[0] in BLOCKED]
""")


def test_transforms_work_without_the_training_extra():
  script = _WITHOUT_EXTRA.format(blocked=set(BLOCKED))
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
  proc = subprocess.run(
    [sys.executable, "-c", script],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
  assert "CORE OK" in proc.stdout
  install = "needs the training extra: pip install 'advjax[train]'"
  assert out["TRAIN"] == (
    f"advjax.train {install} (missing: ml-collections, orbax-checkpoint, tqdm)"
  ), out
  assert out["EVAL"] == f"advjax.eval {install} (missing: ml-collections, tqdm)", out
  assert out["PLOTS"] == f"advjax.plots {install} (missing: matplotlib)", out
  assert out["MNIST"] == f"advjax.data.load_mnist5k {install} (missing: mlxtend)", out


def test_the_training_stack_imports_with_the_extra():
  import advjax  # pylint: disable=import-outside-toplevel

  assert advjax.train.fit and advjax.eval.evaluate and advjax.plots.save_figure
  assert {"train", "eval", "plots"} <= set(dir(advjax))
  assert not {"train", "eval", "plots"} & set(advjax.__all__)  # `import *` stays core


def test_core_packages_never_import_the_training_stack_at_module_level():
  stack = set(BLOCKED) | set(_extras.DISTRIBUTIONS)
  files = [
    os.path.join(ROOT, "advjax", f)
    for f in os.listdir(os.path.join(ROOT, "advjax"))
    if f.endswith(".py")
  ]
  for package in CORE_PACKAGES:
    folder = os.path.join(ROOT, "advjax", package)
    files += [os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".py")]
  bad = []
  for path in files:
    with open(path, encoding="utf-8") as f:
      tree = ast.parse(f.read())
    for node in tree.body:  # module level only; imports inside functions are lazy
      names = (
        [a.name for a in node.names]
        if isinstance(node, ast.Import)
        else [node.module]
        if isinstance(node, ast.ImportFrom) and node.module
        else []
      )
      bad += [f"{os.path.relpath(path, ROOT)}: {n}" for n in names if n.partition(".")[0] in stack]
  assert not bad, "core modules import the training stack:\n" + "\n".join(bad)


def _pyproject():
  with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
    return tomllib.load(f)


def _names(requirements):
  return {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in requirements}


def _requirements(name):
  with open(os.path.join(ROOT, name), encoding="utf-8") as f:
    return [l.strip() for l in f if l.strip() and not l.startswith("#")]


def test_pyproject_core_is_the_transforms_and_extras_nest():
  project = _pyproject()["project"]
  assert project["name"] == "advjax" and project["requires-python"] == ">=3.11"
  assert project["readme"] == "README.md"
  assert _names(project["dependencies"]) == CORE
  extras = project["optional-dependencies"]
  assert set(extras) == {"train", "test", "notebooks"}
  train = extras["train"]
  # The test and notebook extras pull the training extra by name, so its list is written once.
  assert extras["test"][0] == "advjax[train]" and extras["notebooks"][0] == "advjax[train]"
  assert {d.lower() for d in _extras.DISTRIBUTIONS.values()} <= _names(train)
  assert not _names(train) & CORE
  for name, extra in (("requirements.txt", "train"), ("requirements-test.txt", "test")):
    assert _requirements(name) == [f"-e .[{extra}]"], name


def test_setup_py_is_a_shim_and_setuptools_finds_the_packages():
  with open(os.path.join(ROOT, "setup.py"), encoding="utf-8") as f:
    tree = ast.parse(f.read())
  calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
  assert [(c.func.id, c.args, c.keywords) for c in calls] == [("setup", [], [])]
  assert not os.path.exists(os.path.join(ROOT, "pytest.ini"))  # its settings are in pyproject
  find = _pyproject()["tool"]["setuptools"]["packages"]["find"]
  from setuptools import find_packages  # pylint: disable=import-outside-toplevel

  packages = find_packages(ROOT, include=find["include"])
  assert {"advjax", "advjax.train", "advjax.attacks", "experiments", "experiments.configs"} <= set(
    packages
  )
  assert not {p for p in packages if p.partition(".")[0] not in ("advjax", "experiments")}


def test_ruff_is_pinned_once_and_runs_before_the_heavy_install():
  lint = _requirements("requirements-lint.txt")
  assert len(lint) == 1 and re.fullmatch(r"ruff==[0-9.]+", lint[0]), lint
  assert lint[0] in _pyproject()["project"]["optional-dependencies"]["test"]
  with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as f:
    ci = f.read()
  lines = [l for l in ci.splitlines() if l.strip() and not l.startswith("#")]
  heavy = next(i for i, l in enumerate(lines) if ".[test]" in l)
  # each on its own line before the heavy install, so that `set -e` stops the run there
  for step in (
    r"pip\S* install -q -r requirements-lint\.txt",
    r"ruff\S* check \.$",
    r"ruff\S* format --check \.$",
  ):
    at = [i for i, l in enumerate(lines) if re.search(step, l)]
    assert len(at) == 1 and at[0] < heavy and "&&" not in lines[at[0]], (step, lines)
  assert "set -euo pipefail" in lines
  assert "ruff==" not in ci  # the pin is read from requirements-lint.txt


def test_readme_commands_install_their_extra_and_ci_runs_the_test_command():
  section = readme_section("## Two commands")
  main_job, tests = re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)[:2]
  installs = lambda cmd: [
    shlex.split(c) for c in cmd.split("&&") if "pip install" in c and "--upgrade" not in c
  ]
  assert installs(main_job) == [["pip", "install", "-q", "-e", ".[train]"]]
  # The references the tests and benchmarks compare against, and foolbox's real sample
  # images, without their dependencies: robustbench's (holding the zoo's torch
  # architectures) include a git URL that cannot install, torchattacks' include
  # torchvision, which pulls a CUDA torch of several GB. robustbench goes in last:
  # torchattacks' wheel bundles an old copy of the robustbench package that would
  # otherwise overwrite the real one's files.
  assert installs(tests) == [
    ["pip", "install", "-q", "-e", ".[test]"],
    [
      "pip",
      "install",
      "-q",
      "--no-deps",
      "torchattacks==3.5.1",
      "pyautoattack==0.2.0",
      "foolbox==3.3.4",
    ],
    ["pip", "install", "-q", "--no-deps", "robustbench==1.1.1"],
  ]
  assert main_job.startswith("python3.11 -m venv") and tests.startswith("python3.11 -m venv")
  with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as f:
    ci = [l for l in f.read().splitlines() if l.strip() and not l.startswith("#")]
  assert ci[-1] == tests
