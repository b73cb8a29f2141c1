"""Array helpers shared by the SDE code: per-example broadcasting and noise."""

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp


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
