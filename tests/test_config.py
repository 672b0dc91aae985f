"""Config fields that hold sequences are tuples of names, "unset" is None: their checks,
their command-line syntax, and configs saved by older runs."""

import json
import os
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest

from advjax import attacks, augment, train
from advjax import eval as ev
from advjax.train import _config
from tests._inputs import set_keys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _validated(**flat):
  return train.validate_config(set_keys(train.default_config(), **flat))


def test_defaults_are_tuples_and_none():
  c = train.validate_config(train.default_config())
  assert c.eval.attacks == ("fgsm", "pgd")
  assert c.eval.corruptions == ()
  assert c.eval.num_examples is None
  assert c.train_attack.name == "pgd(num_steps=7)"
  assert c.noisymix.policy == ("color", "translation", "cutout")
  assert c.noisymix.blocks == (0, 1, 2)
  # the placeholders keep their type: an int can be set, a string cannot
  c.eval.num_examples = 1000
  with pytest.raises(TypeError):
    c.eval.num_examples = "all"


@pytest.mark.parametrize(
  "key, value, needles",
  [
    ("eval.attacks", ("fgsm", "nope"), ["Unknown attack 'nope'", "config.eval.attacks"]),
    ("eval.attacks", ("fgsm", "fgsm"), ["config.eval.attacks", "'fgsm' twice"]),
    # what `--config.eval.attacks=fgsm,pgd` parses to
    (
      "eval.attacks",
      ("fgsm,pgd",),
      ["config.eval.attacks", "must be a tuple", """--config.eval.attacks="('fgsm','pgd')\""""],
    ),
    ("eval.corruptions", ("fog", "rain"), ["Unknown corruption 'rain'", "config.eval.corruptions"]),
    ("eval.corruptions", ("none",), ["config.eval.corruptions", "() is none"]),
    (
      "noisymix.policy",
      ("color", "rotation"),
      ["Unknown DiffAugment policy 'rotation'", "config.noisymix.policy"],
    ),
    (
      "train_attack.name",
      "diffaugment(policy=('color', 'rotation'))",
      ["config.train_attack.name", "Unknown DiffAugment policy 'rotation'"],
    ),
    ("eval.num_examples", -1, ["config.eval.num_examples", "None (the whole test set)"]),
    ("eval.num_examples", 0, ["config.eval.num_examples", ">= 1"]),
    (
      "train_attack.name",
      "pgd(num_steps=7, bogus=1)",
      ["config.train_attack.name", "'pgd' takes no option 'bogus'", "'num_steps'"],
    ),
    ("train_attack.name", "magic", ["config.train_attack.name", "Unknown view source 'magic'"]),
  ],
)
def test_bad_tuple_entries_and_sentinels_name_the_key(key, value, needles):
  with pytest.raises(ValueError) as err:
    _validated(**{key: value})
  for needle in needles:
    assert needle in str(err.value), (needle, str(err.value))


def test_blocks_must_be_hook_indices():
  with pytest.raises(ValueError, match=r"config.noisymix: `blocks` must be a tuple of hook "):
    _validated(**{"noisymix.views": "augmix", "noisymix.blocks": ("a", "b")})
  with pytest.raises(ValueError, match="blocks"):
    _validated(**{"noisymix.views": "augmix", "noisymix.blocks": (0, -1)})
  assert _config.noisymix_spec(
    _validated(**{"noisymix.views": "augmix", "noisymix.blocks": (1, 2)})
  ).blocks == (1, 2)


def test_comma_strings_are_rejected_with_the_tuple_to_write():
  for key, value, want in [
    ("eval", {"attacks": "fgsm,pgd"}, "('fgsm', 'pgd')"),
    ("eval", {"corruptions": "common"}, "('common',)"),
    ("noisymix", {"policy": "color,cutout"}, "('color', 'cutout')"),
  ]:
    with pytest.raises(ValueError) as err:  # a plain ConfigDict, not built on the defaults
      train.validate_config(ml_collections.ConfigDict({key: value}))
    assert "must be a tuple of" in str(err.value) and want in str(err.value), str(err.value)
  # a config built on the defaults refuses the string at once (ml_collections' type check)
  with pytest.raises(TypeError, match="attacks"):
    train.default_config().eval.attacks = "fgsm,pgd"


def test_valid_tuples_and_lists_pass():
  c = _validated(
    **{
      "eval.attacks": ["fgsm", "cw"],
      "eval.corruptions": ("common", "fog"),
      "eval.num_examples": 1000,
      "train_attack.name": "pgd(num_restarts=1, step_size=0.25, num_steps=7)",
      "noisymix.policy": ("cutout", "cutout"),
    }
  )
  assert c.eval.attacks == ("fgsm", "cw") and c.eval.num_examples == 1000
  # one spelling of a source: the options that differ from its defaults, in its order
  assert c.train_attack.name == "pgd(num_steps=7, step_size=0.25)"
  assert c.noisymix.policy == ("cutout", "cutout")  # DiffAugment may repeat an op


def test_common_corruptions_expand_once():
  # pylint: disable=protected-access
  assert ev._suite._corruption_types(()) == []
  assert ev._suite._corruption_types(("common",)) == augment.corruption_names("common")
  assert ev._suite._corruption_types(("fog", "common", "spatter")) == ["fog"] + [
    n for n in augment.corruption_names("common") if n != "fog"
  ] + ["spatter"]


def test_diffaugment_takes_a_tuple_policy_equal_to_the_string():
  x = jax.random.uniform(jax.random.key(1), (16, 16, 3))
  for policy in (("color", "cutout"), ("translation",), ()):
    a = augment.diffaugment(jax.random.key(2), x, policy=policy)
    b = augment.diffaugment(jax.random.key(2), x, policy=",".join(policy))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  with pytest.raises(ValueError, match="Unknown DiffAugment policy 'rotation'"):
    augment.diffaugment(jax.random.key(2), x, policy=("color", "rotation"))


def _old_saved_config():
  """A config.json as runs before tuples and None wrote it."""
  d = json.loads(train.default_config().to_json_best_effort())
  d["eval"].update(attacks="fgsm,pgd,cw", corruptions="common", num_examples=-1)
  d["train_attack"].update(name="pgd", num_steps=7, step_size_factor=-1.0, policy="color,cutout")
  d["noisymix"]["blocks"] = "0,2"
  del d["noisymix"]["policy"], d["noisymix"]["severity"]  # read from train_attack then
  return d


def test_old_and_new_saved_configs_read_back(tmp_path):
  old = tmp_path / "old"
  old.mkdir()
  (old / "config.json").write_text(json.dumps(_old_saved_config()))
  c = train.read_run_config(str(old))
  assert c.eval.attacks == ("fgsm", "pgd", "cw") and c.eval.corruptions == ("common",)
  assert c.eval.num_examples is None and c.train_attack.name == "pgd(num_steps=7)"
  assert c.noisymix.policy == ("color", "cutout") and c.noisymix.blocks == (0, 2)
  none = _old_saved_config()
  none["eval"]["corruptions"] = "none"
  assert _config.from_saved(none)["eval"]["corruptions"] == []
  # an old run of the default config is the same run as the default config now
  same = json.loads(train.default_config().to_json_best_effort())
  same["train_attack"].update(
    name="pgd",
    num_steps=7,
    num_restarts=1,
    step_size_factor=-1.0,
    policy="color,translation,cutout",
  )
  del same["noisymix"]["policy"], same["noisymix"]["severity"]  # train_attack's, then
  same["noisymix"]["blocks"] = "0,1,2"
  (old / "config.json").write_text(json.dumps(same))
  train._loop._check_same_config(  # pylint: disable=protected-access
    str(old), train.validate_config(train.default_config())
  )
  with pytest.raises(ValueError, match="another config"):
    train._loop._check_same_config(  # pylint: disable=protected-access
      str(old), _validated(**{"train_attack.name": "pgd(num_steps=3)"})
    )
  # a config saved now (tuples as JSON lists, None as null) reads back equal
  new = tmp_path / "new"
  new.mkdir()
  c = train.default_config()
  c.eval.num_examples, c.eval.attacks = 300, ("fgsm", "apgd_ce")
  (new / "config.json").write_text(c.to_json_best_effort())
  back = train.read_run_config(str(new))
  assert back.to_dict() == train.validate_config(c).to_dict()
  assert back.eval.attacks == ("fgsm", "apgd_ce") and back.eval.num_examples == 300


def test_ensemble_overrides_take_tuples_and_all():
  # pylint: disable=protected-access
  from experiments import ensemble  # pylint: disable=import-outside-toplevel

  base = train.default_config().eval
  cfg = ensemble._eval_config(base, {"attacks": ["fgsm"], "num_examples": None})
  assert cfg.attacks == ("fgsm",) and cfg.num_examples is None
  with pytest.raises(ValueError, match=r"eval_overrides\['attacks'\] must be a tuple"):
    ensemble._eval_config(base, {"attacks": "fgsm,pgd"})
  assert ensemble._num_examples("all") is None and ensemble._num_examples("500") == 500


# The command line, through experiments.main's real flag parser: the fake
# train_and_evaluate prints the validated config instead of training.
_PRINT_CONFIG = """
import runpy, sys
from advjax import train
def train_and_evaluate(config, workdir):
  c = train.validate_config(config)
  print(repr((c.eval.attacks, c.eval.corruptions, c.eval.num_examples,
              c.train_attack.name, c.noisymix.policy, c.noisymix.blocks)))
  return {"clean_accuracy": 0.5, "attacks": {}}
train.train_and_evaluate = train_and_evaluate
sys.argv = ["main"] + sys.argv[1:]
runpy.run_module("experiments.main", run_name="__main__")
"""


def _main(*args):
  return subprocess.run(
    [
      sys.executable,
      "-c",
      _PRINT_CONFIG,
      "--config=experiments/configs/mnist_hybrid.py",
      "--workdir=runs/w",
      *args,
    ],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=180,
  )


def test_command_line_overrides_of_tuples_and_placeholders():
  r = _main(
    "--config.eval.attacks=('fgsm','cw')",
    "--config.eval.corruptions=common",
    "--config.eval.num_examples=1000",
    "--config.train_attack.name=pgd(num_steps=7, step_size=0.25)",
    "--config.noisymix.policy=('color','cutout')",
    "--config.noisymix.blocks=1,2",
  )
  assert r.returncode == 0, r.stderr[-3000:]
  assert r.stdout.splitlines()[0] == repr(
    (
      ("fgsm", "cw"),
      ("common",),
      1000,
      "pgd(num_steps=7, step_size=0.25)",
      ("color", "cutout"),
      (1, 2),
    )
  )
  r = _main(
    "--config.eval.attacks=apgd_ce",
    "--config.eval.corruptions=()",
    "--config.train_attack.name=fgsm_rs(step_size=1.0)",
  )
  assert r.returncode == 0, r.stderr[-3000:]
  assert r.stdout.splitlines()[0] == repr(
    (
      ("apgd_ce",),
      (),
      None,
      "fgsm_rs(step_size=1.0)",
      ("color", "translation", "cutout"),
      (0, 1, 2),
    )
  )


@pytest.mark.parametrize(
  "arg, needles",
  [
    (
      "--config.eval.attacks=fgsm,pgd",
      ["config.eval.attacks", """--config.eval.attacks="('fgsm','pgd')\""""],
    ),
    ("--config.eval.num_examples=-1", ["config.eval.num_examples must be None"]),
    ("--config.eval.corruptions=none", ["Unknown corruption 'none'", "() is none"]),
  ],
)
def test_command_line_old_forms_are_one_line_errors(arg, needles):
  r = _main(arg)
  assert r.returncode == 1, r.stderr[-3000:]
  lines = r.stderr.splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr[-3000:]
  for needle in needles:
    assert needle in lines[0], (needle, lines[0])


SAVED_RUN = os.path.join(os.path.dirname(__file__), "saved_runs", "mnist_hybrid_quick_2026-12-07")


def test_a_run_saved_with_per_attack_keys_runs_the_same_attacks():
  """tests/saved_runs/...: the config.json that `experiments.main` wrote for
  mnist_hybrid:quick at commit 651dce5, when config.eval held pgd_steps, pgd_step_size (at
  eval.eps), cw_*, apgd_steps, apgd_targets and square_queries, and config.train_attack
  num_steps, step_size_factor, num_restarts and each view source's keys. Read back, every
  attack has the options those keys gave it, which are today's quick config's."""
  from experiments.configs import mnist_hybrid  # pylint: disable=import-outside-toplevel

  saved = json.load(open(os.path.join(SAVED_RUN, "config.json")))
  assert saved["eval"]["pgd_step_size"] == 0.05 and "attack_options" not in saved["eval"]
  old = train.read_run_config(SAVED_RUN).eval
  assert ev.eval_attack("pgd", old) == "pgd(num_steps=5, step_size=0.5, num_restarts=1)"
  assert ev.eval_attack("apgd_t", old) == "apgd_t(num_steps=10, num_target_classes=3)"
  assert ev.eval_attack("cw", old) == (
    "cw(initial_const=0.1, binary_search_steps=5, num_steps=50, learning_rate=0.1)"
  )
  now = train.validate_config(mnist_hybrid.get_config("quick")).eval
  for name in attacks.ATTACK_NAMES:
    assert attacks.attack_options(ev.eval_attack(name, old)) == attacks.attack_options(
      ev.eval_attack(name, now)
    ), name
  assert old.attacks == now.attacks
  saved_train = train.read_run_config(SAVED_RUN).train_attack  # num_steps 7 then
  assert (
    saved_train.name
    == "pgd(num_steps=7)"
    == train.validate_config(mnist_hybrid.get_config("quick")).train_attack.name
  )
  # the same run: a continuation with today's config is accepted
  train._loop._check_same_config(  # pylint: disable=protected-access
    SAVED_RUN, train.validate_config(mnist_hybrid.get_config("quick"))
  )
