"""Adversarial attacks as pure functions; the caller jits them.

Every attack has the signature `attack(key, logits_fn, images, labels, *, eps, ...)`
where `logits_fn(images [B, H, W, C] in [0, 1]) -> logits [B, K]`. Bounded attacks
return the batch, same shape and dtype, inside the eps-ball and [0, 1], under
`jax.lax.stop_gradient`; their `*_with_info` twins return an `AttackResult`
(the same images and per-example `AttackInfo`). Minimum-norm attacks (CW, FAB,
the line searches) return a `MinNormResult`; `autoattack` an `AutoAttackResult`.
Compile with `jax.jit` or `advjax.checked_jit` around the call.

The registry finds an attack by name for training, evaluation and AutoAttack's
stages: `build_attack(name, **options)` (or `build_attack("pgd(num_steps=7)")`)
returns `attack_fn(key, logits_fn, images, labels, eps) -> images`; an attack is
registered where it is defined (`register`), its options and their defaults are its
function's keywords; `ATTACK_NAMES` lists the built-in names, `attack_names()` all.
Step sizes are fractions of eps.

The margins the attacks ascend (`dlr`, `cw_margin`) are in `advjax.losses`; the
schedules inside APGD and Square are theirs, not part of this surface.
"""

# The registry: attacks by name
from advjax.attacks._registry import ATTACK_NAMES
from advjax.attacks._registry import AttackSpec
from advjax.attacks._registry import attack_label
from advjax.attacks._registry import attack_names
from advjax.attacks._registry import attack_options
from advjax.attacks._registry import build_attack
from advjax.attacks._registry import format_attack
from advjax.attacks._registry import get_attack
from advjax.attacks._registry import parse_attack
from advjax.attacks._registry import register
from advjax.attacks._registry import unregister

# Bounded attacks
from advjax.attacks._apgd import apgd
from advjax.attacks._apgd import apgd_t
from advjax.attacks._apgd import apgd_t_with_info
from advjax.attacks._apgd import apgd_with_info
from advjax.attacks._fgsm import fgsm
from advjax.attacks._fgsm import fgsm_with_info
from advjax.attacks._fgv import fgv
from advjax.attacks._fgv import fgv_with_info
from advjax.attacks._pgd import pgd
from advjax.attacks._pgd import pgd_with_info
from advjax.attacks._square import square
from advjax.attacks._square import square_with_info

# TRADES' inner maximization (KL to the clean prediction)
from advjax.attacks._trades import trades_attack
from advjax.attacks._trades import trades_attack_with_info

# Minimum-norm attacks
from advjax.attacks._cw import cw_l2
from advjax.attacks._fab import fab
from advjax.attacks._fab import fab_t
from advjax.attacks._fab import within_eps

# The worst case over an ensemble
from advjax.attacks._autoattack import AUTOATTACK_EOT_DRAWS
from advjax.attacks._autoattack import AUTOATTACK_STAGES
from advjax.attacks._autoattack import AUTOATTACK_TARGETED_STAGES
from advjax.attacks._autoattack import AUTOATTACK_VERSIONS
from advjax.attacks._autoattack import STANDARD_ATTACKS
from advjax.attacks._autoattack import AutoAttackResult
from advjax.attacks._autoattack import autoattack
from advjax.attacks._autoattack import autoattack_model
from advjax.attacks._autoattack import autoattack_stage
from advjax.attacks._autoattack import autoattack_stages

# Adaptive attacks (Athalye et al. 2018): EOT and BPDA wrappers of a logits_fn
from advjax.attacks._adaptive import EOT_AVERAGES
from advjax.attacks._adaptive import bpda
from advjax.attacks._adaptive import bpda_logits_fn
from advjax.attacks._adaptive import eot_logits_fn

# Results
from advjax.attacks._parts import AttackInfo
from advjax.attacks._parts import AttackResult
from advjax.attacks._parts import MinNormResult

# Hot/cold directions, line searches and hard positives (Rozsa et al. 2016)
from advjax.attacks._hard_positive_set import directions_for as hard_positive_directions
from advjax.attacks._hard_positive_set import generate_hard_positive_set
from advjax.attacks._hard_positive_set import load_hard_positive_set
from advjax.attacks._hard_positive_set import parse_type as parse_hard_positive_type
from advjax.attacks._hard_positive_set import save_hard_positive_set
from advjax.attacks._hot_cold import fgs_directions
from advjax.attacks._hot_cold import fgv_directions
from advjax.attacks._hot_cold import hot_cold_directions
from advjax.attacks._line_search import HardPositives
from advjax.attacks._line_search import MinimalAdversarial
from advjax.attacks._line_search import hard_positives
from advjax.attacks._line_search import minimal_adversarial

# Parts attacks are composed of: objectives, projections, steps, starts
from advjax.attacks._fab import project_hyperplane_box
from advjax.attacks._fgv import fgv_direction
from advjax.attacks._parts import LOSSES
from advjax.attacks._parts import NORMS
from advjax.attacks._parts import Objective
from advjax.attacks._parts import clip_box
from advjax.attacks._parts import get_objective
from advjax.attacks._parts import init_l2_uniform
from advjax.attacks._parts import init_linf_uniform
from advjax.attacks._parts import is_successful
from advjax.attacks._parts import norm_per_example
from advjax.attacks._parts import project
from advjax.attacks._parts import project_l2
from advjax.attacks._parts import project_linf
from advjax.attacks._parts import quantize
from advjax.attacks._parts import random_init
from advjax.attacks._parts import steepest_step
from advjax.attacks._parts import targeted_dlr

__all__ = [
  # the registry
  "ATTACK_NAMES",
  "AttackSpec",
  "attack_label",
  "attack_names",
  "attack_options",
  "build_attack",
  "format_attack",
  "get_attack",
  "parse_attack",
  "register",
  "unregister",
  # bounded attacks
  "apgd",
  "apgd_t",
  "apgd_t_with_info",
  "apgd_with_info",
  "fgsm",
  "fgsm_with_info",
  "fgv",
  "fgv_with_info",
  "pgd",
  "pgd_with_info",
  "square",
  "square_with_info",
  "trades_attack",
  "trades_attack_with_info",
  # minimum-norm attacks
  "cw_l2",
  "fab",
  "fab_t",
  "within_eps",
  # AutoAttack
  "AUTOATTACK_EOT_DRAWS",
  "AUTOATTACK_STAGES",
  "AUTOATTACK_TARGETED_STAGES",
  "AUTOATTACK_VERSIONS",
  "STANDARD_ATTACKS",
  "AutoAttackResult",
  "autoattack",
  "autoattack_model",
  "autoattack_stage",
  "autoattack_stages",
  # adaptive attacks (Athalye et al. 2018)
  "EOT_AVERAGES",
  "bpda",
  "bpda_logits_fn",
  "eot_logits_fn",
  # results
  "AttackInfo",
  "AttackResult",
  "MinNormResult",
  # Rozsa et al. 2016
  "HardPositives",
  "MinimalAdversarial",
  "fgs_directions",
  "fgv_directions",
  "generate_hard_positive_set",
  "hard_positive_directions",
  "hard_positives",
  "hot_cold_directions",
  "parse_hard_positive_type",
  "load_hard_positive_set",
  "minimal_adversarial",
  "save_hard_positive_set",
  # parts
  "LOSSES",
  "NORMS",
  "Objective",
  "clip_box",
  "fgv_direction",
  "get_objective",
  "init_l2_uniform",
  "init_linf_uniform",
  "is_successful",
  "norm_per_example",
  "project",
  "project_hyperplane_box",
  "project_l2",
  "project_linf",
  "quantize",
  "random_init",
  "steepest_step",
  "targeted_dlr",
]
