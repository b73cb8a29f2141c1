"""Array helpers shared by the SDE code: per-example broadcasting, noise, argument checks."""

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np


def check_levels(name: str, value) -> None:
  """Raises a ValueError unless value is an integer >= 2 (a number of levels or steps)."""
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
    raise ValueError(f'{name} must be an integer >= 2, got {value!r}')


def batch_broadcast(v: jax.Array, x: jax.Array) -> jax.Array:
  """Reshapes a per-example quantity `v` [B] so that it broadcasts against x [B, ...]."""
  v = jnp.asarray(v)
  return v.reshape(v.shape + (1,) * (x.ndim - v.ndim))


def _per_example(draw: Callable, key: jax.Array, shape: Sequence[int], dtype) -> jax.Array:
  # Example i uses fold_in(key, i): its noise does not depend on the batch size
  # or on how the batch is split over devices.
  keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(shape[0]))
  return jax.vmap(lambda k: draw(k, tuple(shape[1:]), dtype))(keys)


def normal(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
  """Standard normal noise of `shape` [B, ...] drawn with one key per example."""
  return _per_example(jax.random.normal, key, shape, dtype)


def rademacher(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
  """Rademacher (+-1) noise of `shape` [B, ...] drawn with one key per example."""
  return _per_example(jax.random.rademacher, key, shape, dtype)


def uniform(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
  """U[0, 1) noise of `shape` [B, ...] drawn with one key per example."""
  return _per_example(jax.random.uniform, key, shape, dtype)
