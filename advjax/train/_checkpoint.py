"""Orbax checkpoints of the TrainState plus JSON metadata and the input pipeline's state
(Grain's own orbax handler: one JSON file per process); atomic and rotating."""
import os
from typing import Any, Optional, Tuple

import flax
import jax
import numpy as np
import orbax.checkpoint as ocp


def _grain_checkpoint():
  import grain  # pylint: disable=import-outside-toplevel
  return grain.checkpoint


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

  def save(self, state, meta: dict, data_iterator=None) -> None:
    """Saves `state` (host copy) at its step with JSON `meta` and, when given, the
    position of a Grain `data_iterator` (every process saves its own).

    Every process calls it; orbax writes the arrays and metadata from process 0.
    """
    step = int(jax.device_get(state.step))
    tree = flax.serialization.to_state_dict(jax.device_get(state))
    items = {"state": ocp.args.StandardSave(tree), "meta": ocp.args.JsonSave(meta)}
    if data_iterator is not None:
      items["data"] = _grain_checkpoint().CheckpointSave(data_iterator)
    self._manager.save(step, args=ocp.args.Composite(**items), force=True)
    self._manager.wait_until_finished()

  def restore(self, template, step: Optional[int] = None, data_iterator=None
              ) -> Tuple[Any, dict]:
    """Restores (state, meta) at `step` (default latest) into the structure of `template`
    and, when given, the Grain `data_iterator` to its saved position (in place).

    Raises:
      FileNotFoundError: if there is no checkpoint.
      ValueError: if the checkpoint cannot be read into the template (another
        model or config), or holds no input-pipeline state for `data_iterator`.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}.")
    target = flax.serialization.to_state_dict(jax.device_get(template))
    target = jax.tree_util.tree_map(np.asarray, target)
    items = {"state": ocp.args.StandardRestore(target), "meta": ocp.args.JsonRestore()}
    if data_iterator is not None:
      if not os.path.isdir(os.path.join(self.directory, str(step), "data")):
        raise ValueError(f"checkpoint {step} in {self.directory} holds no input-pipeline "
                         "state: it was not written by a Grain run (config.input.pipeline="
                         "'grain') and cannot resume one exactly; use a new workdir.")
      items["data"] = _grain_checkpoint().CheckpointRestore(data_iterator)
    try:
      out = self._manager.restore(step, args=ocp.args.Composite(**items))
    except Exception as err:  # pylint: disable=broad-except
      raise ValueError(f"cannot read checkpoint {step} in {self.directory} into this "
                       f"config's model and optimizer: {err}") from err
    state = flax.serialization.from_state_dict(template, out["state"])
    return state, dict(out["meta"] or {})

  def close(self):
    self._manager.close()
