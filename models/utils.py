"""From a network's raw output to the score of each SDE, exactly as Song et al. (2021) do."""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from sde_lib.sde import SDE, VESDE, ScoreFn, SubVPSDE, VPSDE
from sde_lib.utils import batch_broadcast


def time_condition(sde: SDE, t: jax.Array, *, continuous: bool) -> jax.Array:
  """The conditioning input the networks were trained with at time t [B].

  VP/sub-VP: a timestep, t * 999 when trained in continuous time (always for
  sub-VP), DDPM's t * (N - 1) otherwise. VE: sigma(t) in continuous time, else
  the NCSN level index, counted from the largest sigma (NCSN's convention).
  """
  if isinstance(sde, (VPSDE, SubVPSDE)):
    return t * 999 if continuous or isinstance(sde, SubVPSDE) else t * (sde.N - 1)
  if isinstance(sde, VESDE):
    if continuous:
      return sde.sigma(t)
    return (sde.N - 1 - sde.timestep(t)).astype(t.dtype)
  raise ValueError(f'no network parameterisation for {type(sde).__name__}')


def output_scale(sde: SDE, t: jax.Array, *, continuous: bool, scale_by_sigma: bool) -> jax.Array:
  """The per-example factor [B] that turns the network output into the score.

  VP/sub-VP networks predict the noise: score = -output / std, with DDPM's
  discrete std sqrt(1 - alphas_cumprod) for discrete VP. VE networks output
  the score itself, divided by sigma when `scale_by_sigma`.
  """
  if isinstance(sde, (VPSDE, SubVPSDE)):
    if continuous or isinstance(sde, SubVPSDE):
      std = sde.marginal_prob(jnp.zeros((t.shape[0], 1), t.dtype), t)[1]
    else:
      std = jnp.asarray(sde.sqrt_1m_alphas_cumprod, t.dtype)[sde.timestep(t)]
    return -1.0 / std
  if isinstance(sde, VESDE):
    if not scale_by_sigma:
      return jnp.ones_like(t)
    sigma = sde.sigma(t) if continuous else jnp.asarray(sde.discrete_sigmas, t.dtype)[
        sde.timestep(t)]
    return 1.0 / sigma
  raise ValueError(f'no network parameterisation for {type(sde).__name__}')


def _cast_params(params: Any, dtype: jnp.dtype) -> Any:
  # Fourier frequencies (std 16) multiply log sigma: rounded to bfloat16 they
  # would shift the embedding's phases by up to ~0.5 rad, so they stay float32.
  def cast(path, p):
    keep = any('GaussianFourierProjection' in str(key) for key in path)
    return p if keep else p.astype(dtype)

  return jax.tree_util.tree_map_with_path(cast, params)


def get_score_fn(sde: SDE, model: nn.Module, params: Any, *, continuous: bool,
                 train: bool = False, rng: jax.Array | None = None,
                 compute_dtype: jnp.dtype | None = None, **conditioning) -> ScoreFn:
  """A score function score_fn(x [B, ...], t [B]) backed by a network.

  Args:
    sde: the SDE the network was trained for.
    model: a network from `models.get_model`, called as model(x, time_cond, ...).
    params: its parameters (the 'params' collection).
    continuous: trained in continuous time (else on the SDE's N discrete levels).
    train: run in training mode (dropout on; then `rng` seeds it).
    rng: dropout key, required when train is True.
    compute_dtype: run the network in this dtype (jnp.bfloat16 on GPUs/TPUs
      roughly halves memory traffic); parameters stay float32 outside the
      call and the score is returned in the input's dtype. Normalisation
      statistics are computed in float32 by Flax either way.
    **conditioning: passed to the network at every call: class_labels, cond, context.

  Returns:
    The score function; it closes over params, so jax.grad through it works.
  """
  if train and rng is None:
    raise ValueError('get_score_fn(train=True) needs an rng for dropout')
  scale_by_sigma = getattr(model, 'scale_by_sigma', False)
  if compute_dtype is not None:
    params = _cast_params(params, compute_dtype)

  def score_fn(x: jax.Array, t: jax.Array) -> jax.Array:
    inputs = x if compute_dtype is None else x.astype(compute_dtype)
    output = model.apply({'params': params}, inputs,
                         time_condition(sde, t, continuous=continuous), train=train,
                         rngs={'dropout': rng} if train else None, **conditioning)
    scale = output_scale(sde, t, continuous=continuous, scale_by_sigma=scale_by_sigma)
    return batch_broadcast(scale, x) * output.astype(x.dtype)

  return score_fn
