"""Evaluation: clean/adversarial accuracy, confidence, reports."""
from advjax.eval._report import SCHEMA_VERSION
from advjax.eval._report import render_markdown
from advjax.eval._report import write_report
from advjax.eval._robustness import evaluate_robustness
from advjax.eval._robustness import logits_fn_apply

__all__ = ["SCHEMA_VERSION", "evaluate_robustness", "logits_fn_apply", "render_markdown",
           "write_report"]
