"""Training: state, the jitted adversarial train step, schedules, the resumable loop."""
from advjax.train._checkpoint import Checkpointer
from advjax.train._config import default_config
from advjax.train._config import validate_config
from advjax.train._fit import fit
from advjax.train._loop import NonFiniteLossError
from advjax.train._loop import Run
from advjax.train._loop import evaluate_checkpoint
from advjax.train._loop import load_run
from advjax.train._loop import read_run_config
from advjax.train._loop import train_and_evaluate
from advjax.train._schedules import EPS_SCHEDULES
from advjax.train._schedules import LR_SCHEDULES
from advjax.train._schedules import OPTIMIZERS
from advjax.train._schedules import eps_schedule
from advjax.train._schedules import lr_schedule
from advjax.train._schedules import make_optimizer
from advjax.train._state import TrainState
from advjax.train._state import create_train_state
from advjax.train._step import RECIPES
from advjax.train._step import TRAIN_ATTACKS
from advjax.train._step import l2_penalty
from advjax.train._step import make_attack_fn
from advjax.train._step import make_eval_step
from advjax.train._step import make_free_train_step
from advjax.train._step import make_train_step

__all__ = [
    "Checkpointer", "EPS_SCHEDULES", "LR_SCHEDULES", "NonFiniteLossError", "OPTIMIZERS",
    "RECIPES", "Run", "TRAIN_ATTACKS", "TrainState", "create_train_state",
    "default_config", "eps_schedule", "evaluate_checkpoint", "fit", "l2_penalty", "lr_schedule", "read_run_config",
    "load_run", "make_attack_fn", "make_eval_step", "make_free_train_step", "make_optimizer", "make_train_step",
    "train_and_evaluate", "validate_config",
]
