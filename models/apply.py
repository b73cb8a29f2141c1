"""A network and its parameters as a plain function of (x, time input)."""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


def _cast_params(params: Any, dtype: jnp.dtype) -> Any:
  # Fourier frequencies (std 16) multiply log sigma: rounded to bfloat16 they
  # would shift the embedding's phases by up to ~0.5 rad, so they stay float32.
  def cast(path, p):
    keep = any('GaussianFourierProjection' in str(key) for key in path)
    return p if keep else p.astype(dtype)

  return jax.tree_util.tree_map_with_path(cast, params)


def net_fn(model: nn.Module, params: Any, *, train: bool = False, rng: jax.Array | None = None,
           compute_dtype: jnp.dtype | None = None, **conditioning):
  """net(x [B, ...], time_cond [B]) -> the network's output [B, ...] in x's dtype.

  `sde_lib.parameterization` turns it into a score function or a denoiser.

  Args:
    model: a network from `models.get_model`, called as model(x, time_cond, ...).
    params: its parameters (the 'params' collection).
    train: run in training mode (dropout on; then `rng` seeds it).
    rng: dropout key, required when train is True.
    compute_dtype: run the network in this dtype (jnp.bfloat16 on GPUs/TPUs
      roughly halves memory traffic); parameters stay float32 outside the
      call. Normalisation statistics are computed in float32 by Flax either way.
    **conditioning: passed to the network at every call, those it takes of class_labels,
      cond, context, context_mask, context_pooled and aug_cond (models.ncsnpp describes
      them).

  Returns:
    The function; it closes over params, so jax.grad through it works.
  """
  if train and rng is None:
    raise ValueError('net_fn(train=True) needs an rng for dropout')
  if compute_dtype is not None:
    params = _cast_params(params, compute_dtype)

  def net(x: jax.Array, time_cond: jax.Array) -> jax.Array:
    inputs = x if compute_dtype is None else x.astype(compute_dtype)
    output = model.apply({'params': params}, inputs, time_cond, train=train,
                         rngs={'dropout': rng} if train else None, **conditioning)
    return output.astype(x.dtype)

  return net
