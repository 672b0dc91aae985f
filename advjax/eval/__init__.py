"""Evaluation a reviewer trusts: attack battery, calibration, corruptions, flip rate,
gradient-masking checks; report.json (versioned schema), report.md and figures."""

from advjax import _extras

_extras.require("advjax.eval", "ml_collections", "tqdm")

from advjax._files import atomic_write_text
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
from advjax.eval._masking import check_min_norm_budget
from advjax.eval._masking import check_monotone_in_eps
from advjax.eval._masking import check_unbounded
from advjax.eval._masking import check_zero_gradients
from advjax.eval._report import SCHEMA_VERSION
from advjax.eval._report import render_markdown
from advjax.eval._report import validate_report
from advjax.eval._report import write_report
from advjax.eval._suite import ATTACKS
from advjax.eval._suite import attack_key
from advjax.eval._suite import default_eval_config
from advjax.eval._suite import evaluate
from advjax.eval._suite import check_attack_options
from advjax.eval._suite import eval_attack
from advjax.eval._suite import make_eval_attack
from advjax.eval._suite import parse_attack_specs
from advjax.eval._suite import min_norm_summary
from advjax.eval._write import write_evaluation
from advjax.eval._ensemble import ensemble_logits_fn

__all__ = [
  "ATTACKS",
  "Check",
  "PERTURBATIONS",
  "SCHEMA_VERSION",
  "atomic_write_text",
  "attack_key",
  "check_black_box_weaker",
  "check_attack_options",
  "check_deterministic",
  "check_iterative_stronger",
  "check_min_norm_budget",
  "check_monotone_in_eps",
  "check_unbounded",
  "check_zero_gradients",
  "confidence_histogram",
  "default_eval_config",
  "ensemble_logits_fn",
  "errors_from_accuracy",
  "eval_attack",
  "evaluate",
  "expected_calibration_error",
  "flip_probability",
  "make_eval_attack",
  "max_softmax",
  "min_norm_summary",
  "mean_corruption_error",
  "parse_attack_specs",
  "perturbation_sequence",
  "relative_mce",
  "render_markdown",
  "validate_report",
  "write_evaluation",
  "write_report",
]

# RobustBench's protocol: threat models, the benchmark points, the leaderboard entry.
from advjax.eval._robustbench import LEADERBOARD_DATASETS  # noqa: E402
from advjax.eval._robustbench import MODEL_INFO_FIELDS  # noqa: E402
from advjax.eval._robustbench import THREAT_MODELS  # noqa: E402
from advjax.eval._robustbench import ThreatModel  # noqa: E402
from advjax.eval._robustbench import corruption_accuracy  # noqa: E402
from advjax.eval._robustbench import first_points  # noqa: E402
from advjax.eval._robustbench import imagenet_test_ids  # noqa: E402
from advjax.eval._robustbench import load_imagenet_points  # noqa: E402
from advjax.eval._robustbench import model_info  # noqa: E402
from advjax.eval._robustbench import model_info_json  # noqa: E402
from advjax.eval._robustbench import run_autoattack  # noqa: E402
from advjax.eval._robustbench import threat_model  # noqa: E402
from advjax.eval._robustbench import write_benchmark  # noqa: E402
from advjax.eval._robustbench import write_points  # noqa: E402

__all__ += [
  "LEADERBOARD_DATASETS",
  "MODEL_INFO_FIELDS",
  "THREAT_MODELS",
  "ThreatModel",
  "corruption_accuracy",
  "first_points",
  "imagenet_test_ids",
  "load_imagenet_points",
  "model_info",
  "model_info_json",
  "run_autoattack",
  "threat_model",
  "write_benchmark",
  "write_points",
]
