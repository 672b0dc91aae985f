"""Orbax checkpoints of the TrainState plus JSON metadata and the input pipeline's state
(Grain's own orbax handler: one JSON file per process); atomic and rotating."""

import logging
import os
import time
from typing import Any, Optional, Tuple

import flax
import jax
import numpy as np
import orbax.checkpoint as ocp


def _grain_checkpoint():
  import grain  # pylint: disable=import-outside-toplevel

  return grain.checkpoint


# Reads of the latest checkpoint before giving up on a training that keeps rotating them.
_RESTORE_ATTEMPTS = 4


class _Quiet(logging.Filter):
  """Drops orbax's warnings that a read-only manager skips saving, deleting, creating."""

  def filter(self, record):
    text = record.getMessage()
    return "read_only=True" not in text and "read only" not in text


class Checkpointer:
  """Saves and restores TrainStates under `workdir/checkpoints/<step>`.

  Orbax writes each checkpoint to a temporary folder and renames it when
  complete, so a run killed mid-save leaves the previous checkpoints intact; the
  last `keep` are kept.

  A reader (`read_only=True`: an evaluation, a benchmark, fine-tuning from a run)
  creates, cleans up and deletes nothing in `directory`, so it can open the checkpoints
  of a training that is still writing them; when that training's rotation removes the
  step being read, `restore` reads the newest finished step instead.

  Args:
    directory: the checkpoints folder (`<workdir>/checkpoints`).
    keep: how many checkpoints a writer keeps (ignored when `read_only`).
    read_only: open for reading only.
  """

  def __init__(self, directory: str, keep: int = 3, *, read_only: bool = False):
    self.directory = os.path.abspath(directory)
    self.read_only = read_only
    if read_only:
      options = ocp.CheckpointManagerOptions(
        read_only=True,
        create=False,
        save_interval_steps=0,
        enable_async_checkpointing=False,
        cleanup_tmp_directories=False,
      )
    else:
      options = ocp.CheckpointManagerOptions(
        max_to_keep=keep,
        create=True,
        enable_async_checkpointing=False,
        cleanup_tmp_directories=True,
      )
    quiet = _Quiet() if read_only else None  # orbax warns of each read-only setting
    if quiet:
      logging.getLogger("absl").addFilter(quiet)
    try:
      self._manager = ocp.CheckpointManager(self.directory, options=options)
    finally:
      if quiet:
        logging.getLogger("absl").removeFilter(quiet)

  def latest_step(self) -> Optional[int]:
    return self._manager.latest_step()

  def save(self, state, meta: dict, data_iterator=None) -> None:
    """Saves `state` (host copy) at its step with JSON `meta` and, when given, the
    position of a Grain `data_iterator` (every process saves its own).

    Every process calls it; orbax writes the arrays and metadata from process 0.

    Raises:
      ValueError: on a read-only Checkpointer.
    """
    if self.read_only:
      raise ValueError(f"{self.directory} was opened read-only; nothing is saved there.")
    step = int(jax.device_get(state.step))
    tree = flax.serialization.to_state_dict(jax.device_get(state))
    items = {"state": ocp.args.StandardSave(tree), "meta": ocp.args.JsonSave(meta)}
    if data_iterator is not None:
      items["data"] = _grain_checkpoint().CheckpointSave(data_iterator)
    self._manager.save(step, args=ocp.args.Composite(**items), force=True)
    self._manager.wait_until_finished()

  def restore(self, template, step: Optional[int] = None, data_iterator=None) -> Tuple[Any, dict]:
    """Restores (state, meta) at `step` (default latest) into the structure of `template`
    and, when given, the Grain `data_iterator` to its saved position (in place).

    Without `step`, a checkpoint that a still-running training removes (rotation) while
    it is read is replaced by the newest finished one, read afresh.

    Raises:
      FileNotFoundError: if there is no checkpoint.
      ValueError: if the checkpoint cannot be read into the template (another
        model or config), holds no input-pipeline state for `data_iterator`, or was
        removed while it was read (and no newer one could be read instead).
    """
    latest = step is None
    step = self.latest_step() if latest else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}.")
    tried = []
    while True:
      tried.append(step)
      try:
        return self._restore_step(template, step, data_iterator)
      except ValueError as err:
        if os.path.isdir(os.path.join(self.directory, str(step))):
          raise  # still there: it cannot be read into this template
        newest = self._newest_finished_step()
        if not latest:
          raise ValueError(
            f"checkpoint {step} in {self.directory} is not there (newest: {newest}); a "
            f"training still running there may have removed it."
          ) from err
        if newest is None or len(tried) == _RESTORE_ATTEMPTS:
          raise ValueError(
            f"checkpoint {step} in {self.directory} was removed while it was read "
            f"(a training still running there rotates its checkpoints; tried steps "
            f"{', '.join(map(str, tried))}); evaluate again, or when the training "
            f"has finished."
          ) from err
        step = newest
        time.sleep(0.1 * len(tried))

  def _newest_finished_step(self) -> Optional[int]:
    """The newest finished step on disk now (the manager's list read afresh)."""
    try:
      self._manager.reload()
    except Exception:  # pylint: disable=broad-except
      return None
    return self._manager.latest_step()

  def _restore_step(self, template, step: int, data_iterator) -> Tuple[Any, dict]:
    target = flax.serialization.to_state_dict(jax.device_get(template))
    target = jax.tree_util.tree_map(np.asarray, target)
    items = {"state": ocp.args.StandardRestore(target), "meta": ocp.args.JsonRestore()}
    if data_iterator is not None:
      if not os.path.isdir(os.path.join(self.directory, str(step), "data")):
        if not os.path.isdir(os.path.join(self.directory, str(step))):
          raise ValueError(f"checkpoint {step} in {self.directory} is gone.")
        raise ValueError(
          f"checkpoint {step} in {self.directory} holds no input-pipeline "
          "state: it was not written by a Grain run (config.input.pipeline="
          "'grain') and cannot resume one exactly; use a new workdir."
        )
      items["data"] = _grain_checkpoint().CheckpointRestore(data_iterator)
    try:
      out = self._manager.restore(step, args=ocp.args.Composite(**items))
    except Exception as err:  # pylint: disable=broad-except
      raise ValueError(
        f"cannot read checkpoint {step} in {self.directory} into this "
        f"config's model and optimizer: {err}"
      ) from err
    state = flax.serialization.from_state_dict(template, out["state"])
    return state, dict(out["meta"] or {})

  def close(self):
    self._manager.close()
