"""DDPM's variational bound on the negative log-likelihood, in bits/dim (Ho et al. 2020, eq. 5;
Nichol & Dhariwal 2021's improved DDPM, whose code `_vb_terms_bpd`, `calc_bpd_loop`,
`_prior_bpd` and `discretized_gaussian_log_likelihood` this follows).

The bound is over DDPM's chain on the VP SDE's N discrete levels: x_0 is the data and
q(x_n | x_0) = N(sqrt(abar) x_0, (1 - abar) I) for chain steps n = 1..N, with abar =
`sde.alphas_cumprod[n - 1]`. Chain step n is this codebase's level i = n - 1, at time
i T / (N - 1), as in `losses.ddpm_loss` and the 'ddpm_index' time input:

  -log p(x_0) <= L_T + sum_{n=2}^{N} L_{n-1} + L_0,
  L_T = KL(q(x_N | x_0) || N(0, I))                            (`prior_term`)
  L_{n-1} = E KL(q(x_{n-1} | x_n, x_0) || p(x_{n-1} | x_n))    (level n - 1 >= 1)
  L_0 = E -log p(x_0 | x_1)                                    (level 0, the decoder)

The reverse step p(x_{n-1} | x_n) = N(mean, exp(log_var)) is a `Kernel`: a function of
(x_n, level) built from a score function with fixed variances (`fixed_kernel`) or from a
network with learned variances (`learned_range_kernel`). With `levels` grey levels the
decoder is a Gaussian discretised into bins around the data's values (exact CDFs; improved
DDPM's tanh approximation and 1e-12 floor are not copied), and the bound is on the discrete
data's negative log-likelihood, with no offset; with levels=None the data are continuous and
L_0 is the Gaussian log-density. Every term is in bits per dimension.

The bound is defined for the VP SDE alone: VE (SMLD) and sub-VP have no such Markov chain
of Gaussian steps; their likelihood is the probability-flow one, `likelihood.bits_per_dim`.
"""

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr

from data import scaling
from sde_lib.parameterization import ScoreAndVFn
from sde_lib.sde import SDE, VPSDE, ScoreFn
from sde_lib.utils import batch_broadcast, check_levels, normal, uniform

Kernel = Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]
"""kernel(x_n [B, ...], level [B] int) -> (mean [B, ...], log_var [B, ...]) of the reverse
step p(x_{n-1} | x_n), at level = n - 1 (level 0: the decoder p(x_0 | x_1))."""

VARIANCES = ('beta', 'beta_tilde')


class Bound(NamedTuple):
  """DDPM's bound in bits/dim, each [B]: total = prior + decoder + kl.

  prior: L_T; decoder: L_0; kl: the sum of the N - 1 terms L_1..L_{N-1}, exact or an
  unbiased estimate (`bits_per_dim`'s n_terms).
  """

  total: jax.Array
  prior: jax.Array
  decoder: jax.Array
  kl: jax.Array


class _Chain(NamedTuple):
  """DDPM's tables [N] in float64, indexed by level i = n - 1 (improved DDPM's names)."""

  betas: np.ndarray
  alphas_cumprod: np.ndarray
  posterior_variance: np.ndarray  # beta-tilde: 0 at level 0
  posterior_log_variance_clipped: np.ndarray  # level 0 takes level 1's
  posterior_mean_coef1: np.ndarray  # of x_0
  posterior_mean_coef2: np.ndarray  # of x_n


def check_chain(sde: SDE) -> None:
  """Raises ValueError where `sde` has no DDPM chain: not a VP SDE, or too few levels for
  its betas (beta_max / N >= 1 makes 1 - beta, and every alphas_cumprod after it, <= 0)."""
  if not isinstance(sde, VPSDE):
    raise ValueError(
        f"the bound is DDPM's chain of the VP SDE's discrete levels; {type(sde).__name__} has "
        'no such chain: use the probability-flow likelihood (likelihood.bits_per_dim)')
  worst = float(np.max(sde.discrete_betas))
  if worst >= 1.0:
    raise ValueError(
        f"DDPM's chain needs betas below 1; N={sde.N} levels of beta_max={sde.beta_max} reach "
        f'{worst:.3g}: take more levels (N > {math.ceil(sde.beta_max)})')


@functools.lru_cache(maxsize=16)
def _chain(sde: VPSDE) -> _Chain:
  betas = sde.discrete_betas
  abar = sde.alphas_cumprod
  abar_prev = np.append(1.0, abar[:-1])
  variance = betas * (1.0 - abar_prev) / (1.0 - abar)
  return _Chain(
      betas=betas, alphas_cumprod=abar, posterior_variance=variance,
      posterior_log_variance_clipped=np.log(np.append(variance[1], variance[1:])),
      posterior_mean_coef1=betas * np.sqrt(abar_prev) / (1.0 - abar),
      posterior_mean_coef2=(1.0 - abar_prev) * np.sqrt(1.0 - betas) / (1.0 - abar))


def _at(table: np.ndarray, level: jax.Array, x: jax.Array) -> jax.Array:
  """table[level] [B], shaped to broadcast against x [B, ...]."""
  return batch_broadcast(jnp.asarray(table, x.dtype)[level], x)


def q_sample(sde: VPSDE, x0: jax.Array, level: jax.Array, z: jax.Array) -> jax.Array:
  """x_n = sqrt(abar) x_0 + sqrt(1 - abar) z at level = n - 1 [B]: [B, ...]."""
  check_chain(sde)
  chain = _chain(sde)
  return (_at(np.sqrt(chain.alphas_cumprod), level, x0) * x0
          + _at(np.sqrt(1.0 - chain.alphas_cumprod), level, x0) * z)


def q_posterior(sde: VPSDE, x0: jax.Array, x_t: jax.Array,
                level: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(mean [B, ...], log_var [B, ...]) of q(x_{n-1} | x_n = x_t, x_0) at level = n - 1 [B].

  At level 0 the variance is 0; its log is clipped to level 1's, as improved DDPM does.
  """
  check_chain(sde)
  chain = _chain(sde)
  mean = (_at(chain.posterior_mean_coef1, level, x_t) * x0
          + _at(chain.posterior_mean_coef2, level, x_t) * x_t)
  return mean, jnp.broadcast_to(_at(chain.posterior_log_variance_clipped, level, x_t), x_t.shape)


def level_times(sde: VPSDE, *, discrete: bool = True) -> np.ndarray:
  """The time [N] at which a score function is asked about each level of the chain.

  A network trained on the discrete levels (time inputs 'ddpm_index', read with the
  levels' own alphas_cumprod) is asked at level i's time i T / (N - 1). A continuous-time
  network reads the SDE's alpha(t) and std(t), which at that time are not the level's:
  std(0) = 0, where level 0 has std sqrt(beta_0). It is asked at the time of the level's
  log-SNR, log(abar_i / (1 - abar_i)) / 2, where its marginal is the chain's (clipped to
  T: the last levels of a chain of N steps are a little noisier than the SDE at T).
  """
  check_chain(sde)
  if discrete:
    return np.arange(sde.N) * (sde.T / (sde.N - 1))
  abar = _chain(sde).alphas_cumprod
  log_snr = 0.5 * (np.log(abar) - np.log1p(-abar))
  with jax.ensure_compile_time_eval():  # constants, also when a jitted function builds it
    times = np.asarray(sde.t_from_log_snr(jnp.asarray(log_snr, jnp.float32)), np.float64)
  return np.minimum(times, sde.T)


def _mean(sde: VPSDE, x: jax.Array, level: jax.Array, score: jax.Array,
          clip_denoised: tuple[float, float] | None) -> jax.Array:
  """The reverse step's mean: q's posterior mean at Tweedie's x0 = (x + (1 - abar) score)
  / sqrt(abar) (improved DDPM's x0 from eps, eps = -sqrt(1 - abar) score)."""
  chain = _chain(sde)
  x0 = ((x + _at(1.0 - chain.alphas_cumprod, level, x) * score)
        / _at(np.sqrt(chain.alphas_cumprod), level, x))
  if clip_denoised is not None:
    x0 = jnp.clip(x0, *clip_denoised)
  return q_posterior(sde, x0, x, level)[0]


def fixed_kernel(sde: VPSDE, score_fn: ScoreFn, *, variance: str = 'beta_tilde',
                 clip_denoised: tuple[float, float] | None = None,
                 discrete: bool = True) -> Kernel:
  """The reverse step of a score model with fixed variances (Ho et al.'s two choices).

  The mean is q(x_{n-1} | x_n, x_0)'s at Tweedie's x_0 from the score at the level's time
  i T / (N - 1). Variances: 'beta_tilde' (improved DDPM's fixedsmall, q's posterior
  variance with its log at level 0 clipped to level 1's) or 'beta' (fixedlarge: beta_i, with
  level 0's replaced by beta-tilde at level 1 for a better decoder, as their code does).

  Args:
    sde: a VP SDE.
    score_fn: score_fn(x [B, ...], t [B]) -> [B, ...].
    variance: 'beta_tilde' or 'beta'.
    clip_denoised: (low, high) to clip the x_0 prediction to (improved DDPM's clip_denoised
      with the data's range, e.g. (-1, 1)), or None.
    discrete: the score function is a network of the discrete levels, else of continuous
      time (`level_times`).

  Returns:
    kernel(x_n, level) -> (mean, log_var), both [B, ...].
  """
  check_chain(sde)
  times = level_times(sde, discrete=discrete)
  if variance not in VARIANCES:
    raise ValueError(f'unknown variance {variance!r}; known: {list(VARIANCES)}')
  chain = _chain(sde)
  if variance == 'beta_tilde':
    log_var = chain.posterior_log_variance_clipped
  else:
    log_var = np.log(np.append(chain.posterior_variance[1], chain.betas[1:]))

  def kernel(x: jax.Array, level: jax.Array) -> tuple[jax.Array, jax.Array]:
    score = score_fn(x, jnp.asarray(times, x.dtype)[level])
    return (_mean(sde, x, level, score, clip_denoised),
            jnp.broadcast_to(_at(log_var, level, x), x.shape))

  return kernel


def learned_range_kernel(sde: VPSDE, score_and_v_fn: ScoreAndVFn, *,
                         clip_denoised: tuple[float, float] | None = None,
                         discrete: bool = True) -> Kernel:
  """The reverse step of a network with learned variances (improved DDPM's learned_range).

  One call gives the score, whose Tweedie x_0 makes the mean as in `fixed_kernel`, and v,
  with log_var = frac log beta + (1 - frac) log beta-tilde (clipped), frac = (v + 1) / 2:
  v = -1 is beta-tilde, v = 1 is beta, and v is not bounded (nor is it in their code).

  Args:
    sde: a VP SDE.
    score_and_v_fn: (x [B, ...], t [B]) -> (score, v), each [B, ...], e.g.
      `Parameterization(..., learned_variance=True).score_and_v_fn(sde, net_fn)`.
    clip_denoised, discrete: as in `fixed_kernel`.

  Returns:
    kernel(x_n, level) -> (mean, log_var), both [B, ...].
  """
  check_chain(sde)
  chain = _chain(sde)
  times = level_times(sde, discrete=discrete)

  def kernel(x: jax.Array, level: jax.Array) -> tuple[jax.Array, jax.Array]:
    score, v = score_and_v_fn(x, jnp.asarray(times, x.dtype)[level])
    frac = (v + 1.0) / 2.0
    log_var = (frac * _at(np.log(chain.betas), level, x)
               + (1.0 - frac) * _at(chain.posterior_log_variance_clipped, level, x))
    return _mean(sde, x, level, score, clip_denoised), log_var

  return kernel


def _normal_kl(mean1, log_var1, mean2, log_var2) -> jax.Array:
  """KL(N(mean1, e^log_var1) || N(mean2, e^log_var2)) per element, in nats."""
  return 0.5 * (log_var2 - log_var1 + jnp.exp(log_var1 - log_var2)
                + jnp.square(mean1 - mean2) * jnp.exp(-log_var2) - 1.0)


def _log_normal_mass(lower: jax.Array, upper: jax.Array) -> jax.Array:
  """log(Phi(upper) - Phi(lower)) for lower < upper, standardised, accurate in both tails."""
  # Reflected into the lower tail, where log_ndtr keeps its digits; the floor keeps the
  # log (and its gradient) finite where the two CDFs round to the same number.
  flip = lower + upper > 0
  low, high = jnp.where(flip, -upper, lower), jnp.where(flip, -lower, upper)
  log_high = log_ndtr(high)
  tiny = jnp.finfo(log_high.dtype).tiny
  return log_high + jnp.log(-jnp.expm1(jnp.minimum(log_ndtr(low) - log_high, -tiny)))


def discretized_gaussian_log_likelihood(x: jax.Array, mean: jax.Array, log_var: jax.Array, *,
                                        levels: int | None, centered: bool) -> jax.Array:
  """log P(x) per element [B, ...], in nats, of N(mean, e^log_var) discretised to the data's
  grey levels, or its log-density for continuous data (levels=None).

  The data x are on the grid k / (levels - 1), k = 0..levels-1, in [0, 1] or mapped to
  [-1, 1] (`centered`). Each value's bin is x +- half a grid step; the first and last
  bins reach to -inf and +inf (improved DDPM's discretized_gaussian_log_likelihood, for 256
  levels on [-1, 1] a half-width of 1/255). Bins narrower than 1e-3 standard deviations
  take the density times the width, where the difference of two CDFs would lose every
  digit.
  """
  var_term = jnp.log(2 * np.pi) + log_var
  log_density = -0.5 * (var_term + jnp.square(x - mean) * jnp.exp(-log_var))
  if levels is None:
    return log_density
  check_levels('levels', levels)
  half = 0.5 * scaling.level_width(centered=centered, levels=levels)
  k = scaling.to_levels(x, centered=centered, levels=levels)
  inv_std = jnp.exp(-0.5 * log_var)
  upper, lower = (x - mean + half) * inv_std, (x - mean - half) * inv_std
  log_mass = jnp.where(2 * half * inv_std < 1e-3, log_density + math.log(2 * half),
                       _log_normal_mass(lower, upper))
  return jnp.where(k <= 0, log_ndtr(upper),
                   jnp.where(k >= levels - 1, log_ndtr(-lower), log_mass))


def _mean_bits(v: jax.Array) -> jax.Array:
  """Per-element nats [B, ...] -> their mean in bits [B]."""
  return jnp.mean(v.reshape(v.shape[0], -1), axis=-1) / np.log(2.0)


def _term_bits(sde: VPSDE, x0: jax.Array, x_t: jax.Array, level: jax.Array, mean: jax.Array,
               log_var: jax.Array, *, levels: int | None, centered: bool) -> jax.Array:
  true_mean, true_log_var = q_posterior(sde, x0, x_t, level)
  kl = _mean_bits(_normal_kl(true_mean, true_log_var, mean, log_var))
  decoder = -_mean_bits(discretized_gaussian_log_likelihood(
      x0, mean, log_var, levels=levels, centered=centered))
  return jnp.where(level == 0, decoder, kl)


def term(sde: VPSDE, kernel: Kernel, x0: jax.Array, x_t: jax.Array, level: jax.Array, *,
         levels: int | None, centered: bool) -> jax.Array:
  """The bound's term at x_n = x_t [B, ...] and level = n - 1 [B], in bits/dim [B].

  L_0 = -log p(x_0 | x_1) at level 0, KL(q(x_{n-1} | x_n, x_0) || p(x_{n-1} | x_n)) above
  (improved DDPM's _vb_terms_bpd). Its expectation over x_n ~ q(x_n | x_0) is the term L.
  """
  check_chain(sde)
  mean, log_var = kernel(x_t, level)
  return _term_bits(sde, x0, x_t, level, mean, log_var, levels=levels, centered=centered)


def prior_term(sde: VPSDE, x0: jax.Array) -> jax.Array:
  """L_T = KL(q(x_N | x_0) || N(0, I)) in bits/dim [B] (improved DDPM's _prior_bpd)."""
  check_chain(sde)
  # KL(N(sqrt(abar) x_0, 1 - abar) || N(0, 1)) = (abar x_0^2 - abar - log(1 - abar)) / 2,
  # whose last two terms cancel to abar^2 / 2: taken together, in float64.
  abar = _chain(sde).alphas_cumprod[-1]
  constant = -(np.log1p(-abar) + abar)
  return _mean_bits(0.5 * (abar * jnp.square(x0) + constant))


def bits_per_dim(rng: jax.Array, sde: VPSDE, kernel: Kernel, x: jax.Array, *,
                 levels: int | None, centered: bool, n_terms: int | None = None) -> Bound:
  """DDPM's variational bound on -log2 p(x) / D (improved DDPM's calc_bpd_loop).

  Each term draws its own x_n ~ q(x_n | x_0) (example i's noise from fold_in, as
  everywhere), so the result is a one-sample estimate of the bound, as theirs. The prior
  term is exact and the decoder L_0 always computed. With n_terms=None all N - 1 KL terms
  are (one `lax.scan`, so the bound compiles once whatever N); with n_terms=K each example
  draws K levels uniformly from 1..N-1, with replacement, and kl is (N - 1) / K times their
  sum: an unbiased estimate of the same sum at K network calls instead of N - 1. L_0 is
  kept out of the draw because it is the largest term, and of another kind.

  Args:
    rng: PRNG key.
    sde: a VP SDE: its discrete levels are the chain.
    kernel: the reverse step, e.g. `fixed_kernel(sde, score_fn)`.
    x: data [B, ...] in model space: on the grid k / (levels - 1) in [0, 1], or its image
      in [-1, 1] if `centered`; or continuous (levels=None).
    levels: the data's number of grey levels (256 for 8-bit images, 17 for the bundled
      digits), an integer >= 2; None for continuous data.
    centered: whether model space is [-1, 1] rather than [0, 1]; ignored if levels=None.
    n_terms: the number of KL terms to draw per example, or None for all N - 1.

  Returns:
    Bound(total, prior, decoder, kl), each [B] bits/dim.
  """
  check_chain(sde)
  if levels is not None:
    check_levels('levels', levels)
  if n_terms is not None and (isinstance(n_terms, bool) or not isinstance(n_terms, int)
                              or n_terms < 1):
    raise ValueError(f'n_terms must be a positive integer or None, got {n_terms!r}')
  x = jnp.asarray(x, jnp.result_type(float))
  batch = x.shape[0]
  level_rng, noise_rng = jax.random.split(rng)
  term_at = functools.partial(term, sde, kernel, x, levels=levels, centered=centered)

  def at(level: jax.Array, key: jax.Array) -> jax.Array:
    return term_at(q_sample(sde, x, level, normal(key, x.shape, x.dtype)), level)

  decoder = at(jnp.zeros(batch, jnp.int32), jax.random.fold_in(noise_rng, 0))
  if n_terms is None:
    def add(total, i):
      return total + at(jnp.full(batch, i, jnp.int32), jax.random.fold_in(noise_rng, i)), None

    kl, _ = jax.lax.scan(add, jnp.zeros(batch, x.dtype), jnp.arange(1, sde.N))
  else:
    def add_draw(total, j):
      u = uniform(jax.random.fold_in(level_rng, j), (batch,), x.dtype)
      level = jnp.minimum(1 + jnp.floor(u * (sde.N - 1)).astype(jnp.int32), sde.N - 1)
      return total + at(level, jax.random.fold_in(noise_rng, sde.N + j)), None

    kl, _ = jax.lax.scan(add_draw, jnp.zeros(batch, x.dtype), jnp.arange(n_terms))
    kl = kl * ((sde.N - 1) / n_terms)
  prior = prior_term(sde, x)
  return Bound(prior + decoder + kl, prior, decoder, kl)
