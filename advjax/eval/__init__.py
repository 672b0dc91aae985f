"""Evaluation a reviewer trusts: attack battery, calibration, corruptions, flip rate,
gradient-masking checks; report.json (versioned schema), report.md and figures."""
from advjax import _extras

_extras.require("advjax.eval", "ml_collections", "tqdm")

from advjax.eval._calibration import confidence_histogram
from advjax.eval._calibration import expected_calibration_error
from advjax.eval._calibration import max_softmax
from advjax.eval._corruption import errors_from_accuracy
from advjax.eval._corruption import mean_corruption_error
from advjax.eval._corruption import relative_mce
from advjax.eval._flip import PERTURBATIONS
from advjax.eval._flip import flip_probability
from advjax.eval._flip import perturbation_sequence
from advjax.eval._masking import Check
from advjax.eval._masking import check_black_box_weaker
from advjax.eval._masking import check_deterministic
from advjax.eval._masking import check_iterative_stronger
from advjax.eval._masking import check_monotone_in_eps
from advjax.eval._masking import check_unbounded
from advjax.eval._masking import check_zero_gradients
from advjax.eval._report import SCHEMA_VERSION
from advjax.eval._report import atomic_write_text
from advjax.eval._report import render_markdown
from advjax.eval._report import validate_report
from advjax.eval._report import write_report
from advjax.eval._suite import ATTACKS
from advjax.eval._suite import default_eval_config
from advjax.eval._suite import evaluate
from advjax.eval._suite import make_eval_attack
from advjax.eval._write import write_evaluation
from advjax.eval._ensemble import ensemble_logits_fn

__all__ = [
    "ATTACKS", "Check", "PERTURBATIONS", "SCHEMA_VERSION", "atomic_write_text", "check_black_box_weaker",
    "check_deterministic", "check_iterative_stronger", "check_monotone_in_eps",
    "check_unbounded", "check_zero_gradients", "confidence_histogram", "default_eval_config",
    "ensemble_logits_fn", "errors_from_accuracy", "evaluate", "expected_calibration_error",
    "flip_probability", "make_eval_attack", "max_softmax",
    "mean_corruption_error", "perturbation_sequence", "relative_mce", "render_markdown",
    "validate_report", "write_evaluation", "write_report",
]
