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


def shard_batch(batch: Any, mesh: Mesh) -> Any:
  """Places a host batch (pytree of arrays [B, ...]) split over the 'data' axis.

  Single-process: `jax.device_put`. Multi-process (after
  `jax.distributed.initialize`), each process passes its own slice of the
  global batch and gets a global array.

  Raises:
    ValueError: if the batch size is not divisible by the number of devices.
  """
  sharding = data_sharding(mesh)
  n = mesh.devices.size
  def put(x):
    x = np.asarray(x)
    if jax.process_count() > 1:
      return jax.make_array_from_process_local_data(sharding, x)
    if x.shape[0] % n:
      raise ValueError(f"batch size {x.shape[0]} is not divisible by the {n} devices of "
                       f"the mesh; choose a multiple of {n}.")
    return jax.device_put(x, sharding)
  return jax.tree_util.tree_map(put, batch)


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Places a pytree replicated on every device of the mesh."""
  return jax.device_put(tree, replicated(mesh))
