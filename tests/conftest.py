"""Shared fixtures: the embedded MNIST splits and a LeNet-5 trained on them.

Memory: JAX keeps every program it compiles (thousands per cache), each a few MB with the
arrays it closes over; over the suite a worker grew to 5.5 GB. After each test module, and
after any test that leaves the worker above ADVJAX_TEST_RELEASE_ABOVE_MB (default 2048),
compiled programs are dropped and figures closed. The test during which a worker's peak RSS
first passes ADVJAX_TEST_RSS_LIMIT_MB (default 4096, 0 disables; Linux) fails and says so.
`ADVJAX_RSS_LOG=PATH` logs memory per test (see tests/_memory.py).

Compiled programs: the session points JAX's persistent compilation cache at one fresh folder
(removed at the end), shared by both xdist workers and every subprocess and notebook kernel
they start, so that a program compiled once (a LeNet step, an attack) is read back, not
compiled again, in each new process or after the memory release. The programs are the same,
so are the numbers. A program is found by its text, which holds no weights and no checkify
error codes (docs/architecture.md, "Compilation"), so an attack compiled for one LeNet
serves every LeNet the suite trains. `JAX_COMPILATION_CACHE_DIR` set by the caller is used as is (and kept);
`ADVJAX_TEST_COMPILATION_CACHE=0` turns this off.

Trained runs: `quick_runs` trains two one-epoch runs once per session, shared by all xdist
workers (the first worker that needs them trains them under a file lock); `build_once` does
the same for any folder a test module builds (tests/test_readme.py: the README's runs).
"""

import ctypes
import fcntl
import functools
import gc
import os
import shutil
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import data, models, train
from tests import _memory


def pytest_configure(config):
  config.addinivalue_line("markers", "slow: takes more than ~20 s on a 2-core CPU")
  _share_compiled_programs(config)
  if os.environ.get("ADVJAX_RSS_LOG"):
    config.pluginmanager.register(_memory.RssLog(os.environ["ADVJAX_RSS_LOG"]), "advjax_rss_log")
  limit = int(os.environ.get("ADVJAX_TEST_RSS_LIMIT_MB", "4096"))
  if limit and _memory.status_mb():
    config.pluginmanager.register(_memory.RssLimit(limit), "advjax_rss_limit")


def _share_compiled_programs(config):
  """JAX's persistent compilation cache in one folder for the session (see the module
  docstring). The xdist controller creates the folder; workers and subprocesses inherit
  the environment variables; this process, which imported jax already, is told directly."""
  if os.environ.get("ADVJAX_TEST_COMPILATION_CACHE", "1") == "0":
    return
  if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="advjax-test-jax-cache-")
    config.advjax_compilation_cache = os.environ["JAX_COMPILATION_CACHE_DIR"]  # removed at exit
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")
  jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
  jax.config.update(
    "jax_persistent_cache_min_compile_time_secs",
    float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]),
  )
  jax.config.update(
    "jax_persistent_cache_min_entry_size_bytes",
    int(os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"]),
  )


def pytest_unconfigure(config):
  folder = getattr(config, "advjax_compilation_cache", None)
  if folder:
    shutil.rmtree(folder, ignore_errors=True)
    del os.environ["JAX_COMPILATION_CACHE_DIR"]


# A worker above this keeps no compiled programs from one test to the next.
_RELEASE_AFTER_EACH_TEST_ABOVE_MB = int(os.environ.get("ADVJAX_TEST_RELEASE_ABOVE_MB", "2048"))


@pytest.fixture(scope="module", autouse=True)
def _release_memory_after_module():
  yield
  _release_memory()


@pytest.fixture(autouse=True)
def _release_memory_when_large():
  yield
  if _memory.status_mb().get("VmRSS", 0.0) > _RELEASE_AFTER_EACH_TEST_ABOVE_MB:
    _release_memory()


@pytest.fixture
def low_memory_start():
  """Starts a test with what the worker keeps released: for a test whose own peak is large
  (an ImageNet model's train step compiles in about 2.7 GB), which on top of the up to
  ADVJAX_TEST_RELEASE_ABOVE_MB a worker may keep between tests would pass the RSS limit."""
  _release_memory()


def _release_memory():
  """Drops JAX's compiled programs and traces (each keeps its closed-over arrays, such as a
  model's parameters, as constants) and open figures, and hands the freed heap back to the
  OS: without malloc_trim glibc keeps it, and RSS does not fall."""
  if "matplotlib.pyplot" in sys.modules:
    sys.modules["matplotlib.pyplot"].close("all")
  jax.clear_caches()
  gc.collect()
  try:
    ctypes.CDLL("libc.so.6").malloc_trim(0)
  except (OSError, AttributeError):  # not glibc
    pass


@pytest.fixture(scope="session")
def mnist():
  """{'train', 'validation', 'test'} ArrayDatasets of the embedded real MNIST."""
  return data.load_mnist5k()


@functools.lru_cache(maxsize=None)
def _train_lenet(epochs: int = 4, seed: int = 0):
  model = models.get_model("lenet5", num_classes=10)
  variables = train.fit(
    model, data.load_mnist5k()["train"], epochs=epochs, batch_size=64, learning_rate=3e-3, seed=seed
  )
  return model, variables


@pytest.fixture(scope="session")
def trained_lenet():
  """(model, variables, logits_fn) of a LeNet-5 trained clean on the embedded MNIST
  (about 97% test accuracy; takes a few seconds)."""
  model, variables = _train_lenet()
  return model, variables, models.make_logits_fn(model, variables)


@pytest.fixture(scope="session")
def mnist_test_batch(mnist):
  """The first 256 test images and labels as jax arrays."""
  x, y = mnist["test"].get(np.arange(256))
  return jnp.asarray(x), jnp.asarray(y)


@pytest.fixture(scope="session")
def build_once(tmp_path_factory):
  """`build_once(name, build) -> folder`: the folder `<shared>/<name>`, filled by
  `build(folder)` once per session and shared by every xdist worker: the first caller
  builds it under a file lock, later callers (in any worker) wait for the lock and get
  the finished folder. A build that raised leaves no mark: the next caller starts it
  again in an emptied folder."""
  root = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):
    root = root.parent  # the folder every worker's basetemp lives in

  def once(name, build):
    folder, done = root / name, root / (name + ".done")
    with open(root / (name + ".lock"), "w", encoding="utf-8") as lock:
      fcntl.flock(lock, fcntl.LOCK_EX)
      if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)  # what a failed attempt left
        folder.mkdir()
        build(folder)
        done.touch()
    return folder

  return once


@pytest.fixture(scope="session")
def quick_runs(build_once):
  """{"std": workdir, "hyb": workdir}: finished one-epoch runs of `quick_config` with
  recipe "standard" (name "std") and "hybrid" (name "hyb"), trained once per session and
  shared by every xdist worker. Read-only: a test that writes into a run copies it first
  (`shutil.copytree`)."""
  from tests._inputs import quick_config  # pylint: disable=import-outside-toplevel

  def build(root):
    for name, recipe in (("std", "standard"), ("hyb", "hybrid")):
      train.train_and_evaluate(
        quick_config(num_epochs=1, recipe=recipe, name=name), str(root / name)
      )

  root = build_once("quick_runs", build)
  return {name: str(root / name) for name in ("std", "hyb")}
