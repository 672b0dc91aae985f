"""How every command in experiments/ reports a mistake: one line, never a traceback.

  if __name__ == "__main__":
    _cli.run(main)                      # or _cli.run(main, config="config") with a config flag

A mistake prints `error: <what is wrong>; <what to do>` on stderr and exits with:
  2  the command found its command line wrong before starting any work: an unknown,
     malformed or missing flag, an extra argument, an unknown config key, a value of the
     wrong type, a config file or `:arg` that does not exist, a path the command checks
     itself (compare's run folders, make_results' --root) that does not hold what it reads.
  1  the work started and advjax stopped it: a setting it rejects (ValueError), a run,
     checkpoint or file it cannot find, read or write (OSError), a non-finite loss
     (FloatingPointError).
Any other exception is a bug and keeps its traceback; set ADVJAX_TRACEBACK=1 to keep the
traceback of the errors above too (when one of them may be a bug).
"""

import difflib
import glob
import importlib.util
import os
import re
import sys
from typing import Callable, List, Optional, Sequence

from absl import app
from absl import flags

USAGE = 2
FAILED = 1
WORK_ERRORS = (ValueError, OSError, FloatingPointError)
CONFIG_KEYS_HINT = "advjax.train.default_config() lists every key"
_CONFIGS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


class UsageError(app.UsageError):
  """A mistake on the command line: `run` prints it as one line and exits 2."""

  def __init__(self, message: str):
    super().__init__(message, exitcode=USAGE)


def no_arguments(
  argv: Sequence[str], hint: str = "every setting is a flag, see --helpshort"
) -> None:
  """Raises UsageError if the command line holds positional arguments (`argv[1:]`)."""
  if len(argv) > 1:
    raise UsageError(f"unexpected arguments {list(argv[1:])}; {hint}")


def one_line(message) -> str:
  """`message` with every run of whitespace (newlines included) made one space."""
  return " ".join(str(message).split())


def fail(message, code: int) -> None:
  """Prints `error: message` as one line on stderr and exits with `code`."""
  sys.stdout.flush()
  print(f"error: {one_line(message)}", file=sys.stderr, flush=True)
  sys.exit(code)


def run(
  main: Callable[[List[str]], None],
  *,
  config: Optional[str] = None,
  keys_hint: str = CONFIG_KEYS_HINT,
) -> None:
  """`absl.app.run(main)` with user errors turned into one line and an exit code.

  Args:
    main: the command's `main(argv)`; raise `UsageError` (or `app.UsageError`) for a
      mistake on the command line; `WORK_ERRORS` raised in it exit 1.
    config: the name of a `config_flags.DEFINE_config_file` flag, whose file, `:arg`
      and `--<config>.key=value` overrides are then checked with readable messages.
    keys_hint: where the config's keys are listed, said after an unknown key.
  """

  def parse(argv):
    return parse_flags(argv, config=config, keys_hint=keys_hint)

  def guarded_main(argv):
    try:
      return main(argv)
    except app.UsageError as err:
      fail(err, USAGE)
    except WORK_ERRORS as err:
      if os.environ.get("ADVJAX_TRACEBACK") == "1":
        raise
      fail(err, FAILED)

  app.run(guarded_main, flags_parser=parse)


def parse_flags(
  argv: Sequence[str], *, config: Optional[str] = None, keys_hint: str = CONFIG_KEYS_HINT
) -> List[str]:
  """The `flags_parser` of `run`: parses argv or exits 2 with one line."""
  try:
    rest = flags.FLAGS(argv)
  except Exception as err:  # pylint: disable=broad-except
    # absl raises flags.Error; ml_collections also raises KeyError, AttributeError, OSError,
    # ValueError and TypeError from inside the parse of a config flag and its overrides.
    message = config and _config_problem(argv, config, keys_hint, err)
    if not message and not isinstance(err, flags.Error):
      raise
    fail(message or _flag_problem(err), USAGE)
  if config is not None:
    from ml_collections import ConfigDict  # pylint: disable=import-outside-toplevel

    if not isinstance(flags.FLAGS[config].value, ConfigDict):
      # a config file that failed to load is only reported when first read
      fail(
        _config_problem(argv, config, keys_hint, None)
        or f"--{config} could not be loaded; pass --{config}=FILE.py",
        USAGE,
      )
    problem = _element_problem(config)
    if problem:
      fail(problem, USAGE)
  return rest


def _flag_problem(err: Exception) -> str:
  text = one_line(err)
  m = re.match(r"flag --(\w+)=None: Flag --\1 must have a value other than None", text)
  if m:
    name = m.group(1)
    return f"missing required flag --{name} ({flags.FLAGS[name].help.rstrip('.')}); see --helpshort"
  if isinstance(err, flags.UnrecognizedFlagError):
    return f"{text.rstrip('.')}; see --helpshort for the flags"
  return f"{text.rstrip('.')}; see --helpshort"


def _flag_value(argv: Sequence[str], name: str) -> Optional[str]:
  """The last value given to --name in argv (`--name=v` or `--name v`), else None."""
  value = None
  for i, arg in enumerate(argv):
    m = re.fullmatch(rf"--?{re.escape(name)}(=(.*))?", arg, flags=re.S)
    if m:
      value = m.group(2) if m.group(1) else (argv[i + 1] if i + 1 < len(argv) else None)
  return value


def _available_configs() -> str:
  files = sorted(glob.glob(os.path.join(_CONFIGS_DIR, "[a-z]*.py")))
  return ", ".join(os.path.relpath(f) for f in files)


def _config_problem(argv, name: str, keys_hint: str, err) -> Optional[str]:
  """Says what is wrong with --name and its overrides in argv, or None if it cannot tell."""
  value = _flag_value(argv, name)
  if value is None:
    return None
  path, colon, arg = value.partition(":")
  if not os.path.isfile(path) or not path.endswith(".py"):
    why = "does not exist" if not os.path.isfile(path) else "is not a .py file"
    return (
      f"config file {path!r} (--{name}) {why}; pass --{name}=FILE.py, e.g. "
      f"one of {_available_configs()}"
    )
  try:
    spec = importlib.util.spec_from_file_location("_checked_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cfg = module.get_config(arg) if colon else module.get_config()
  except Exception as load_err:  # pylint: disable=broad-except
    kind = "" if isinstance(load_err, ValueError) else f"{type(load_err).__name__}: "
    return f"--{name}={value}: {kind}{one_line(load_err)}"
  for key, has_value in _overrides(argv, name):
    problem = _key_problem(cfg, key, keys_hint)
    if problem:
      return problem
    if err is not None and not has_value and not isinstance(_lookup(cfg, key), bool):
      return (
        f"--{name}.{key} needs a value (--{name}.{key}=VALUE); it is "
        f"{_lookup(cfg, key)!r} in this config"
      )
  if err is None:
    return None
  m = re.match(rf"flag --({re.escape(name)}\.([\w.]+))=(.*?): (.*)", one_line(err))
  if m:
    flag, key, bad, why = m.groups()
    current = _lookup(cfg, key)
    if hasattr(current, "keys"):
      return (
        f"--{flag} is a group of keys, not a value; set one of them with "
        f"--{flag}.KEY=VALUE (keys: {', '.join(sorted(current.keys()))})"
      )
    kind = type(current).__name__
    if current is None:  # an unset placeholder: name the type it holds when set
      parent, _, leaf = key.rpartition(".")
      holder = _lookup(cfg, parent) if parent else cfg
      kind = f"{holder.get_ref(leaf).get_type().__name__} (or unset)"
    return (
      f"--{flag}={bad} is not a valid {kind} ({why.rstrip('.')}); it is {current!r} in this config"
    )
  return None


def _element_problem(name: str) -> Optional[str]:
  """Says which --name.key tuple override got elements of another type, or None.

  ml_collections reads `--config.eps_grid=abc` as the tuple ('abc',) of a float tuple.
  """
  for flag_name in flags.FLAGS:
    flag = flags.FLAGS[flag_name]
    if not (
      flag_name.startswith(name + ".")
      and flag.present
      and isinstance(flag.default, (list, tuple))
      and flag.default
    ):
      continue
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in flag.default)
    if not numbers:
      continue
    bad = [v for v in flag.value if not isinstance(v, (int, float)) or isinstance(v, bool)]
    if bad:
      kind = "float" if any(isinstance(v, float) for v in flag.default) else "int"
      return (
        f"--{flag_name}: {bad[0]!r} is not a number; give {kind}s, e.g. "
        f"--{flag_name}='{tuple(flag.default)}' (its value in this config)"
      )
  return None


def _overrides(argv, name):
  """(key, has "=value") of every --name.key override in argv."""
  for arg in argv:
    m = re.match(rf"--?(?:no)?{re.escape(name)}\.([^=]+)(=)?", arg)
    if m:
      yield m.group(1), bool(m.group(2))


def _lookup(cfg, key):
  for part in key.split("."):
    cfg = cfg[part]
  return cfg


def _key_problem(cfg, key: str, keys_hint: str) -> Optional[str]:
  """Says why `key` (dotted) is not a key of cfg, or None when it is one."""
  done = []
  for part in key.split("."):
    if not hasattr(cfg, "keys"):
      return (
        f"config key {'.'.join(done)!r} is a {type(cfg).__name__}, not a group; "
        f"it has no key {part!r}"
      )
    if part not in cfg.keys():
      close = difflib.get_close_matches(part, list(cfg.keys()), n=1)
      hint = f" (did you mean {'.'.join(done + close)!r}?)" if close else ""
      return f"unknown config key {'.'.join(done + [part])!r}{hint}; {keys_hint}"
    done.append(part)
    cfg = cfg[part]
  return None
