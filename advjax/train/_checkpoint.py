"""Orbax checkpoints of the TrainState plus JSON metadata; atomic and rotating."""
import os
from typing import Any, Optional, Tuple

import flax
import jax
import numpy as np
import orbax.checkpoint as ocp


class Checkpointer:
  """Saves and restores TrainStates under `workdir/checkpoints/<step>`.

  Orbax writes each checkpoint to a temporary folder and renames it when
  complete, so a run killed mid-save leaves the previous checkpoints intact; the
  last `keep` are kept.
  """

  def __init__(self, directory: str, keep: int = 3):
    self.directory = os.path.abspath(directory)
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                             enable_async_checkpointing=False,
                                             cleanup_tmp_directories=True))

  def latest_step(self) -> Optional[int]:
    return self._manager.latest_step()

  def save(self, state, meta: dict) -> None:
    """Saves `state` (host copy) at its step with JSON `meta`."""
    step = int(jax.device_get(state.step))
    tree = flax.serialization.to_state_dict(jax.device_get(state))
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave(meta)), force=True)
    self._manager.wait_until_finished()

  def restore(self, template, step: Optional[int] = None) -> Tuple[Any, dict]:
    """Restores (state, meta) at `step` (default latest) into the structure of `template`.

    Raises:
      FileNotFoundError: if there is no checkpoint.
      ValueError: if the checkpoint cannot be read into the template (another
        model or config).
    """
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}.")
    target = flax.serialization.to_state_dict(jax.device_get(template))
    target = jax.tree_util.tree_map(np.asarray, target)
    try:
      out = self._manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()))
    except Exception as err:  # pylint: disable=broad-except
      raise ValueError(f"cannot read checkpoint {step} in {self.directory} into this "
                       f"config's model and optimizer: {err}") from err
    state = flax.serialization.from_state_dict(template, out["state"])
    return state, dict(out["meta"] or {})

  def close(self):
    self._manager.close()
