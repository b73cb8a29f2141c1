"""Denoising score-matching losses: continuous (Song et al. 2021), DDPM and SMLD; improved
DDPM's hybrid loss for learned variances; and the noise-conditional classifier's cross-entropy.

Each loss is `loss(rng, score_fn, batch, *, sde, ..., weights=None) -> scalar`,
the batch mean (weighted by `weights` [B] if given, e.g. 0 on padding), pure and
differentiable. Training differentiates through a score function that closes
over the parameters:
`jax.grad(lambda p: dsm_loss(rng, make_score_fn(p), batch, sde=sde))(params)`.
"""

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from sde_lib import vlb
from sde_lib.parameterization import ScoreAndVFn
from sde_lib.sde import SDE, VESDE, VPSDE, ScoreFn
from sde_lib.utils import batch_broadcast


def _reduce(losses: jax.Array, reduce_mean: bool) -> jax.Array:
  """Per-example reduction over all but the batch axis: [B, ...] -> [B]."""
  flat = losses.reshape(losses.shape[0], -1)
  return jnp.mean(flat, axis=-1) if reduce_mean else jnp.sum(flat, axis=-1)


def _batch_mean(losses: jax.Array, weights: jax.Array | None) -> jax.Array:
  if weights is None:
    return jnp.mean(losses)
  return jnp.sum(weights * losses) / jnp.sum(weights)


WEIGHTINGS = ('noise', 'likelihood', 'v')


def dsm_loss(rng: jax.Array, score_fn: ScoreFn, batch: jax.Array, *, sde: SDE,
             reduce_mean: bool = True, weighting: str = 'noise',
             eps: float = 1e-5, weights: jax.Array | None = None) -> jax.Array:
  """Continuous-time denoising score matching, t ~ U(eps, T).

  With x(t) = alpha x(0) + std z, the weightings lambda(t) of ||score - true score||^2:
  'noise': std^2, the loss ||std score + z||^2 of a noise prediction (Song et al.'s
  default; in x(0) terms SNR ||x0 - x0_hat||^2); 'likelihood': g(t)^2, which makes the
  loss an upper bound on the negative log-likelihood (Song et al. 2021b); 'v': the noise
  weighting times ((alpha^2 + std^2) / alpha)^2, the loss ||v - v_hat||^2 of a
  v-prediction (Salimans & Ho 2022; (SNR + 1) ||x0 - x0_hat||^2 for VP), which keeps a
  weight of ~1 on x(0) at high noise where the noise weighting's vanishes.

  Args:
    rng: PRNG key.
    score_fn: score_fn(x [B, ...], t [B]) -> [B, ...].
    batch: clean data [B, ...].
    sde: the forward SDE.
    reduce_mean: average over data dimensions (else sum).
    weighting: one of WEIGHTINGS.
    eps: smallest time sampled, avoiding the singular score at t = 0.
    weights: optional [B] weights of the examples in the batch mean.

  Returns:
    The (weighted) mean loss over the batch, a scalar.

  Raises:
    ValueError: an unknown weighting.
  """
  if weighting not in WEIGHTINGS:
    raise ValueError(f'unknown loss weighting {weighting!r}; known: {list(WEIGHTINGS)}')
  t_rng, z_rng = jax.random.split(rng)
  t = jax.random.uniform(t_rng, (batch.shape[0],), minval=eps, maxval=sde.T)
  z = jax.random.normal(z_rng, batch.shape, batch.dtype)
  mean, std = sde.marginal_prob(batch, t)
  score = score_fn(mean + batch_broadcast(std, batch) * z, t)
  if weighting == 'likelihood':
    g2 = sde.sde(jnp.zeros_like(batch), t)[1] ** 2
    return _batch_mean(
        _reduce(jnp.square(score + z / batch_broadcast(std, z)), reduce_mean) * g2, weights)
  losses = _reduce(jnp.square(score * batch_broadcast(std, z) + z), reduce_mean)
  if weighting == 'v':
    alpha = sde.alpha(t)
    losses = losses * jnp.square((alpha**2 + std**2) / alpha)
  return _batch_mean(losses, weights)


def _discrete_levels(rng: jax.Array, sde: SDE, batch: jax.Array):
  """Random levels i ~ U{0..N-1}, their times i T / (N-1) [B], and noise z [B, ...]."""
  i_rng, z_rng = jax.random.split(rng)
  i = jax.random.randint(i_rng, (batch.shape[0],), 0, sde.N)
  t = i * (sde.T / (sde.N - 1))
  return i, t.astype(batch.dtype), jax.random.normal(z_rng, batch.shape, batch.dtype)


def _ddpm_draw(rng: jax.Array, sde: VPSDE, batch: jax.Array, loss: str):
  """DDPM's level i [B], its time [B], noise z, x_i and its std [B, 1...] (broadcast)."""
  if not isinstance(sde, VPSDE):
    raise ValueError(f'{loss} needs a VPSDE, got {type(sde).__name__}')
  i, t, z = _discrete_levels(rng, sde, batch)
  mean_coeff = jnp.asarray(np.sqrt(sde.alphas_cumprod), batch.dtype)[i]
  std = batch_broadcast(jnp.asarray(sde.sqrt_1m_alphas_cumprod, batch.dtype)[i], batch)
  return i, t, z, batch_broadcast(mean_coeff, batch) * batch + std * z, std


def ddpm_loss(rng: jax.Array, score_fn: ScoreFn, batch: jax.Array, *, sde: VPSDE,
              reduce_mean: bool = True, weights: jax.Array | None = None) -> jax.Array:
  """DDPM's epsilon loss ||eps - eps_theta||^2 at a uniformly drawn level (Ho et al. 2020).

  The score network is an epsilon predictor, eps_theta = -std_i score, with
  std_i = sqrt(1 - alphas_cumprod[i]); level i is passed as time i T / (N-1).
  """
  _, t, z, x_t, std = _ddpm_draw(rng, sde, batch, 'ddpm_loss')
  return _batch_mean(_reduce(jnp.square(score_fn(x_t, t) * std + z), reduce_mean), weights)


def hybrid_loss(rng: jax.Array, score_and_v_fn: ScoreAndVFn, batch: jax.Array, *, sde: VPSDE,
                levels: int | None, centered: bool, vlb_weight: float = 1e-3,
                reduce_mean: bool = True, weights: jax.Array | None = None) -> jax.Array:
  """Improved DDPM's L_hybrid = L_simple + lambda L_vlb, for a network with learned variances.

  At the level i that `ddpm_loss` draws (with the same rng, the same draws: L_simple is
  ddpm_loss exactly), L_vlb = N L_i, with L_i the bound's term at i (`vlb.term`: the
  decoder's -log p(x_0 | x_1) at i = 0, the reverse step's KL above) in bits/dim, whose
  expectation over i is the bound less its prior term. The mean's gradient through L_vlb
  is stopped, so the variance alone learns from it and the mean from L_simple. With
  lambda = 0.001 and N = 1000 this is improved-diffusion's RESCALED_MSE loss, mse + vb
  (their vb *= num_timesteps / 1000 is lambda N for any N). With reduce_mean=False both
  parts are sums over the dimensions (L_i in bits, not bits/dim).

  Args:
    rng: PRNG key.
    score_and_v_fn: (x [B, ...], t [B]) -> (score, v), one network call, e.g.
      `Parameterization(..., learned_variance=True).score_and_v_fn(sde, net_fn)`.
    batch: clean data [B, ...] in model space (see `vlb.bits_per_dim` for the grid).
    sde: the VP SDE whose discrete levels the network trains on.
    levels: the data's grey levels for the decoder at level 0, or None for continuous data.
    centered: whether model space is [-1, 1] rather than [0, 1].
    vlb_weight: lambda.
    reduce_mean: average over data dimensions (else sum).
    weights: optional [B] weights of the examples in the batch mean.

  Returns:
    The (weighted) mean loss over the batch, a scalar.
  """
  i, t, z, x_t, std = _ddpm_draw(rng, sde, batch, 'hybrid_loss')
  score, v = score_and_v_fn(x_t, t)
  mse = _reduce(jnp.square(score * std + z), reduce_mean)
  # The network has been called; the kernel reads its outputs, the mean's held fixed.
  kernel = vlb.learned_range_kernel(sde, lambda x, t: (jax.lax.stop_gradient(score), v))
  term = vlb.term(sde, kernel, batch, x_t, i, levels=levels, centered=centered)
  dims = 1 if reduce_mean else math.prod(batch.shape[1:])
  return _batch_mean(mse + (vlb_weight * sde.N * dims) * term, weights)


def smld_loss(rng: jax.Array, score_fn: ScoreFn, batch: jax.Array, *, sde: VESDE,
              reduce_mean: bool = False, weights: jax.Array | None = None) -> jax.Array:
  """NCSN's loss sigma_i^2 ||score + z / sigma_i||^2 at a uniformly drawn level (Song & Ermon 2019).

  Level i has noise sigma_i = discrete_sigmas[i] and is passed as time i T / (N-1).
  """
  if not isinstance(sde, VESDE):
    raise ValueError(f'smld_loss needs a VESDE, got {type(sde).__name__}')
  i, t, z = _discrete_levels(rng, sde, batch)
  sigma = batch_broadcast(jnp.asarray(sde.discrete_sigmas, batch.dtype)[i], batch)
  return _batch_mean(
      _reduce(jnp.square(score_fn(batch + sigma * z, t) * sigma + z), reduce_mean), weights)


LogitsFn = Callable[[jax.Array, jax.Array], jax.Array]
"""logits_fn(x [B, ...], t [B]) -> class logits [B, K] of p(y | x_t, t)."""


def classifier_loss(rng: jax.Array, logits_fn: LogitsFn, batch: jax.Array, labels: jax.Array, *,
                    sde: SDE, eps: float = 1e-5, weights: jax.Array | None = None) -> jax.Array:
  """Cross-entropy of a noise-conditional classifier on x_t, t ~ U(eps, T), as `dsm_loss`
  draws them: the classifier of classifier guidance (Song et al. 2021; Dhariwal & Nichol).

  Its minimiser over all functions is the exact posterior log p(y | x_t, t), whose
  gradient `sde_lib.guidance.classifier` adds to the score.

  Args:
    rng: PRNG key.
    logits_fn: the classifier at (x_t, t).
    batch: clean data [B, ...].
    labels: their classes [B] ints.
    sde: the forward SDE.
    eps: smallest time sampled.
    weights: optional [B] weights of the examples in the batch mean.

  Returns:
    The (weighted) mean cross-entropy in nats, a scalar.
  """
  t_rng, z_rng = jax.random.split(rng)
  t = jax.random.uniform(t_rng, (batch.shape[0],), minval=eps, maxval=sde.T)
  z = jax.random.normal(z_rng, batch.shape, batch.dtype)
  mean, std = sde.marginal_prob(batch, t)
  logits = logits_fn(mean + batch_broadcast(std, batch) * z, t)
  log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  losses = -jnp.take_along_axis(log_p, labels[:, None], axis=-1)[:, 0]
  return _batch_mean(losses, weights)
