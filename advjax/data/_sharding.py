"""Data parallelism with JAX's own sharding: one 'data' axis over all devices."""

from typing import Any, Optional

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def make_mesh(devices: Optional[Any] = None) -> Mesh:
  """A 1-D mesh with axis 'data' over all (global) devices."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), ("data",))


def data_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over 'data'."""
  return NamedSharding(mesh, P("data"))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def shard_batch(batch: Any, mesh: Mesh, *, process_local: bool = False) -> Any:
  """Places a host batch (pytree of arrays [B, ...]) split over the 'data' axis.

  Single process: `jax.device_put`. Several processes (after
  `jax.distributed.initialize`): with `process_local`, each process passes its own
  slice of the global batch (a Grain shard: `jax.make_array_from_process_local_data`);
  without, every process holds the same global batch and each places the rows of its
  own devices (`jax.make_array_from_callback`).

  Raises:
    ValueError: if the (global) batch size is not divisible by the number of devices.
  """
  sharding = data_sharding(mesh)
  n = mesh.devices.size
  multi = jax.process_count() > 1

  def put(x):
    x = np.asarray(x)
    if multi and process_local:
      return jax.make_array_from_process_local_data(sharding, x)
    if x.shape[0] % n:
      raise ValueError(
        f"batch size {x.shape[0]} is not divisible by the {n} devices of "
        f"the mesh; choose a multiple of {n}."
      )
    if multi:
      return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])
    return jax.device_put(x, sharding)

  return jax.tree_util.tree_map(put, batch)


def gather(tree: Any) -> Any:
  """A pytree of (possibly multi-process sharded) arrays as host NumPy arrays, whole in
  every process (`multihost_utils.process_allgather` when several processes run)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel

    return multihost_utils.process_allgather(tree, tiled=True)
  return jax.device_get(tree)


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Places a pytree replicated on every device of the mesh."""
  return jax.device_put(tree, replicated(mesh))
