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

__all__ = [
    "AttackInfo", "LOSSES", "NORMS", "Objective", "clip_box", "cross_entropy",
    "cw_margin", "dlr", "fgsm", "get_objective", "init_l2_uniform",
    "init_linf_uniform", "is_successful", "norm_per_example", "pgd", "project",
    "project_l2", "project_linf", "quantize", "random_init", "steepest_step",
    "targeted_dlr",
]
