"""Where things run: the device mesh, and arrays gathered from every host."""

from collections.abc import Sequence

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh


def create_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A 1-D 'data' mesh over `devices`, by default every device of every host."""
  devices = jax.devices() if devices is None else list(devices)
  return jax.make_mesh((len(devices),), ('data',), axis_types=(AxisType.Auto,), devices=devices)


def gather(x: jax.Array) -> np.ndarray:
  """A (possibly multi-host) global array as one numpy array on every host."""
  if jax.process_count() == 1:
    return np.asarray(x)
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def check_divisible(name: str, batch_size: int) -> None:
  """Batches are split evenly over the devices of the mesh."""
  if batch_size % jax.device_count():
    raise ValueError(f'{name}={batch_size} must be divisible by the {jax.device_count()} devices')
