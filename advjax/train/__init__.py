"""Training: state, the composable train step (view sources, MaxUp, PASS filter, NoisyMix,
adaptive alpha), schedules, the resumable loop, fine-tuning and loading runs."""

from advjax import _extras

_extras.require("advjax.train", "ml_collections", "orbax.checkpoint", "tensorboardX", "tqdm")

from advjax.train._checkpoint import Checkpointer
from advjax.train._config import default_config
from advjax.train._config import validate_config
from advjax.train._distributed import DISTRIBUTED_MODES
from advjax.train._distributed import detect_cluster
from advjax.train._distributed import initialize_distributed
from advjax.train._distributed import is_primary
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
from advjax.train._stall import TrainingStalledError
from advjax.train._state import TrainState
from advjax.train._state import create_train_state
from advjax.train._objectives import OBJECTIVES
from advjax.train._objectives import Objective
from advjax.train._objectives import build_objective
from advjax.train._objectives import canonical_objective
from advjax.train._objectives import objective_names
from advjax.train._objectives import parse_objective
from advjax.train._objectives import register_objective
from advjax.train._objectives import unregister_objective
from advjax.train._step import RECIPES
from advjax.train._step import TRAIN_ATTACKS
from advjax.train._step import awp_perturbation
from advjax.train._step import l2_penalty
from advjax.train._step import make_attack_fn
from advjax.train._step import make_eval_step
from advjax.train._step import make_free_train_step
from advjax.train._step import make_train_step
from advjax.train._views import NOISYMIX_VIEWS
from advjax.train._views import SOURCES
from advjax.train._views import VIEW_SOURCES
from advjax.train._views import NoisyMix
from advjax.train._views import Views
from advjax.train._views import attack_source
from advjax.train._views import clean_logits_of_views
from advjax.train._views import canonical_source
from advjax.train._views import make_source
from advjax.train._views import parse_source
from advjax.train._views import source_options
from advjax.train._views import view_loss

__all__ = [
  "Checkpointer",
  "DISTRIBUTED_MODES",
  "EPS_SCHEDULES",
  "LR_SCHEDULES",
  "NOISYMIX_VIEWS",
  "NoisyMix",
  "NonFiniteLossError",
  "OBJECTIVES",
  "OPTIMIZERS",
  "Objective",
  "RECIPES",
  "Run",
  "SOURCES",
  "TRAIN_ATTACKS",
  "TrainState",
  "TrainingStalledError",
  "VIEW_SOURCES",
  "Views",
  "attack_source",
  "awp_perturbation",
  "build_objective",
  "canonical_objective",
  "canonical_source",
  "clean_logits_of_views",
  "create_train_state",
  "default_config",
  "detect_cluster",
  "eps_schedule",
  "evaluate_checkpoint",
  "fit",
  "initialize_distributed",
  "is_primary",
  "l2_penalty",
  "load_run",
  "lr_schedule",
  "make_attack_fn",
  "make_eval_step",
  "make_free_train_step",
  "make_optimizer",
  "make_source",
  "make_train_step",
  "objective_names",
  "parse_objective",
  "parse_source",
  "read_run_config",
  "register_objective",
  "source_options",
  "train_and_evaluate",
  "unregister_objective",
  "validate_config",
  "view_loss",
]
