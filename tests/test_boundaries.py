"""Package boundaries (docs/architecture.md): no module reaches into another package's
private modules, nothing uses private JAX, augment never imports attacks, and every public
package lists its API in `__all__`."""

import ast
import importlib
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("attacks", "augment", "data", "eval", "losses", "metrics", "models", "plots", "train")


def _modules(top):
  for folder, _, files in os.walk(os.path.join(ROOT, top)):
    for name in files:
      if name.endswith(".py"):
        path = os.path.join(folder, name)
        yield os.path.relpath(path, ROOT), ast.parse(open(path, encoding="utf-8").read())


def _imported(tree):
  """Every dotted module name a file imports (`from a.b import c` gives a.b and a.b.c)."""
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      yield from (a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      yield node.module
      yield from (f"{node.module}.{a.name}" for a in node.names)


def _owner(rel):
  """The advjax package a file belongs to ('attacks', ...), or None for advjax/*.py and
  files outside advjax."""
  parts = rel.split(os.sep)
  return parts[1] if parts[0] == "advjax" and len(parts) > 2 else None


@pytest.mark.parametrize("top", ["advjax", "experiments"])
def test_no_module_imports_another_packages_private_module(top):
  bad = []
  for rel, tree in _modules(top):
    for name in _imported(tree):
      parts = name.split(".")
      if name.startswith("jax._src"):
        bad.append(f"{rel}: {name}")
      if parts[0] != "advjax" or len(parts) < 3 or parts[1] not in PACKAGES:
        continue
      if parts[2].startswith("_") and parts[1] != _owner(rel):
        bad.append(f"{rel}: {name}")
  assert not bad, "private modules of another package imported:\n" + "\n".join(bad)


def test_augment_never_imports_attacks():
  for rel, tree in _modules(os.path.join("advjax", "augment")):
    assert not [n for n in _imported(tree) if n.startswith("advjax.attacks")], rel


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_is_listed_and_importable(package):
  module = importlib.import_module(f"advjax.{package}")
  names = getattr(module, "__all__", None)
  assert names, f"advjax.{package} has no __all__"
  assert len(names) == len(set(names)), "duplicates in __all__"
  for name in names:
    assert hasattr(module, name), f"advjax.{package}.{name} is listed but missing"
  public = {
    n
    for n in vars(module)
    if not n.startswith("_") and getattr(getattr(module, n), "__module__", "").startswith("advjax.")
  }
  assert public <= set(names), f"not in advjax.{package}.__all__: {sorted(public - set(names))}"
