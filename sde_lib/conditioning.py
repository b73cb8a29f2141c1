"""Conditioning transforms of a training batch.

Classifier-free guidance needs one network that is both conditional and unconditional:
during training each example's condition is replaced by the null condition with
probability `rate` (Ho & Salimans 2021 use 0.1-0.2; GLIDE drops 20% of captions).
"""

from typing import Any

import jax
import jax.numpy as jnp


def drop(rng: jax.Array, cond: Any, null: Any, *, rate: float) -> Any:
  """Each example's condition, or with probability `rate` the null one.

  Args:
    rng: a key; example i's draw is a function of `fold_in(rng, i)`, so the result does
      not depend on how the batch is sharded.
    cond: a pytree of [B, ...] leaves.
    null: the null condition: the same structure, leaves broadcastable to cond's (the
      null class as a scalar, an empty caption's tokens [L]).
    rate: the probability of dropping, in [0, 1].
  """
  if not 0.0 <= rate <= 1.0:
    raise ValueError(f'a drop rate must be in [0, 1], got {rate!r}')
  batch = jax.tree.leaves(cond)[0].shape[0]
  keys = jax.vmap(lambda i: jax.random.fold_in(rng, i))(jnp.arange(batch))
  dropped = jax.vmap(lambda k: jax.random.bernoulli(k, rate))(keys)

  def choose(c, n):
    n = jnp.broadcast_to(jnp.asarray(n, c.dtype), c.shape[1:])
    return jnp.where(dropped.reshape((-1,) + (1,) * (c.ndim - 1)), n, c)

  return jax.tree.map(choose, cond, null)


def drop_labels(rng: jax.Array, labels: jax.Array, *, num_classes: int, rate: float) -> jax.Array:
  """Class labels [B] with a fraction `rate` replaced by the null class, `num_classes`
  (the extra row of the networks' class embedding)."""
  return drop(rng, labels, jnp.asarray(num_classes, labels.dtype), rate=rate)
