"""Adversarial attacks as pure, jit-able functions.

Every attack has the signature `attack(key, logits_fn, images, labels, *, eps, ...)`
where `logits_fn(images [B, H, W, C] in [0, 1]) -> logits [B, K]`; it returns a
batch of the same shape and dtype inside the eps-ball and [0, 1], under
`jax.lax.stop_gradient`.
"""
from advjax.attacks._fgsm import fgsm
from advjax.attacks._parts import AttackInfo
from advjax.attacks._parts import LOSSES
from advjax.attacks._parts import NORMS
from advjax.attacks._parts import Objective
from advjax.attacks._parts import clip_box
from advjax.attacks._parts import cross_entropy
from advjax.attacks._parts import cw_margin
from advjax.attacks._parts import dlr
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
from advjax.attacks._pgd import pgd
from advjax.attacks._hard_positive_set import generate_hard_positive_set
from advjax.attacks._hard_positive_set import load_hard_positive_set
from advjax.attacks._hard_positive_set import save_hard_positive_set
from advjax.attacks._hot_cold import fgs_directions
from advjax.attacks._hot_cold import fgv_directions
from advjax.attacks._hot_cold import hot_cold_directions
from advjax.attacks._line_search import HardPositives
from advjax.attacks._line_search import MinimalAdversarial
from advjax.attacks._line_search import hard_positives
from advjax.attacks._line_search import minimal_adversarial

__all__ = [
    "AttackInfo", "LOSSES", "NORMS", "Objective", "clip_box", "cross_entropy",
    "cw_margin", "dlr", "fgsm", "get_objective", "init_l2_uniform",
    "init_linf_uniform", "is_successful", "norm_per_example", "pgd", "project",
    "project_l2", "project_linf", "quantize", "random_init", "steepest_step",
    "targeted_dlr",
]

# Issue 3: the attack library.
from advjax.attacks._apgd import apgd
from advjax.attacks._apgd import apgd_t
from advjax.attacks._apgd import checkpoint_schedule
from advjax.attacks._apgd import top_k_targets
from advjax.attacks._autoattack import AUTOATTACK_STAGES
from advjax.attacks._autoattack import STANDARD_ATTACKS
from advjax.attacks._autoattack import AutoAttackResult
from advjax.attacks._autoattack import autoattack
from advjax.attacks._cw import cw_l2
from advjax.attacks._fab import fab
from advjax.attacks._fab import fab_t
from advjax.attacks._fab import project_hyperplane_box
from advjax.attacks._fab import within_eps
from advjax.attacks._fgv import fgv
from advjax.attacks._fgv import fgv_direction
from advjax.attacks._parts import MinNormResult
from advjax.attacks._square import p_selection
from advjax.attacks._square import square

__all__ += [
    "AUTOATTACK_STAGES", "AutoAttackResult", "MinNormResult", "STANDARD_ATTACKS",
    "apgd", "apgd_t", "autoattack", "checkpoint_schedule", "cw_l2", "fab", "fab_t",
    "fgv", "fgv_direction", "p_selection", "project_hyperplane_box", "square",
    "top_k_targets", "within_eps",
]
__all__ += [  # issue 4: PASS and hard positives
    "HardPositives", "MinimalAdversarial", "fgs_directions", "fgv_directions", "generate_hard_positive_set", "hard_positives", "hot_cold_directions", "load_hard_positive_set", "minimal_adversarial", "save_hard_positive_set",
]
