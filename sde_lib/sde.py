"""The forward SDEs of Song et al. (2021), their reverse SDE and probability-flow ODE.

Every SDE is a frozen dataclass of hyperparameters with pure methods. Its fields
are static (hashable, no array leaves): an SDE can be passed to `jax.jit` as an
ordinary argument and its constants are folded into the compiled program.

Time runs over [0, T]. Arrays `x` are batches [B, ...] and times `t` are [B].

Every SDE's perturbation kernel is x(t) = alpha(t) x(0) + std(t) z: its closed-form
coefficients `alpha`, `std`, `log_snr` = log(alpha / std) and the inverse
`t_from_log_snr` are what the fast samplers, the denoiser and the parameterisations
stand on. sigma = std / alpha = exp(-log_snr) is Karras et al.'s noise level, and
`t_from_log_snr(inf)`, the time at which sigma reaches 0 (0 for VP and sub-VP, -inf
for VE, whose sigma(0) is sigma_min), is where a sampler's final denoising step lands.
"""

import abc
import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from sde_lib.utils import batch_broadcast, check_levels, normal

ScoreFn = Callable[[jax.Array, jax.Array], jax.Array]
"""score_fn(x [B, ...], t [B]) -> the score of p_t at x, shape [B, ...]."""


@dataclasses.dataclass(frozen=True)
class SDE(abc.ABC):
  """dx = f(x, t) dt + g(t) dw on [0, T], with N levels for discrete samplers."""

  N: int = 1000
  T: float = 1.0

  def __post_init__(self):
    check_levels('N', self.N)
    if not self.T > 0:
      raise ValueError(f'T must be positive, got {self.T!r}')

  @abc.abstractmethod
  def sde(self, x: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Returns (drift f(x, t) [B, ...], diffusion g(t) [B])."""

  @abc.abstractmethod
  def alpha(self, t: jax.Array) -> jax.Array:
    """The signal coefficient of x(t) = alpha(t) x(0) + std(t) z, same shape as t."""

  @abc.abstractmethod
  def std(self, t: jax.Array) -> jax.Array:
    """The noise standard deviation of x(t) given x(0), same shape as t."""

  @abc.abstractmethod
  def log_snr(self, t: jax.Array) -> jax.Array:
    """lambda(t) = log(alpha(t) / std(t)), decreasing in t, computed without cancellation."""

  @abc.abstractmethod
  def t_from_log_snr(self, lam: jax.Array) -> jax.Array:
    """The inverse of `log_snr`: the time whose log-SNR is lam (inf gives sigma = 0)."""

  def marginal_prob(self, x: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Returns (mean [B, ...], std [B]) of the Gaussian p_0t(x(t) | x(0) = x)."""
    return batch_broadcast(self.alpha(t), x) * x, self.std(t)

  def discrete_marginal(self, t: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(alpha_i, std_i) [B] of the level of t among the N discrete levels networks train on.

    Only VP (DDPM's alphas_cumprod) and VE (SMLD's sigmas) have such levels.
    """
    raise ValueError(f'{type(self).__name__} has no discrete noise levels (DDPM and SMLD are '
                     'VP and VE); train and sample it in continuous time')

  @abc.abstractmethod
  def prior_sampling(self, rng: jax.Array, shape) -> jax.Array:
    """Draws x(T) from the prior; example i of the batch uses fold_in(rng, i)."""

  @abc.abstractmethod
  def prior_logp(self, z: jax.Array) -> jax.Array:
    """Log density of the prior at z [B, ...], summed over all but the batch axis: [B]."""

  def timestep(self, t: jax.Array) -> jax.Array:
    """The discrete level i in [0, N-1] whose interval holds t: floor(t (N-1) / T).

    The relative 1e-6 keeps float32 round-off from pushing t = i T / (N-1) to
    level i-1; it is far below the gap of any sampler's time grid.
    """
    i = jnp.floor(t * (self.N - 1) / self.T * (1 + 1e-6)).astype(jnp.int32)
    return jnp.clip(i, 0, self.N - 1)

  def discretize(self, x: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One forward step x_{i+1} = x_i + f_i + G_i z; Euler-Maruyama with dt = T / N.

    Returns (f [B, ...], G [B]).
    """
    dt = self.T / self.N
    drift, diffusion = self.sde(x, t)
    return drift * dt, diffusion * jnp.sqrt(dt)


def _standard_normal_logp(z: jax.Array, scale: float) -> jax.Array:
  dim = np.prod(z.shape[1:])
  sum_sq = jnp.sum(jnp.square(z).reshape(z.shape[0], -1), axis=-1)
  return -0.5 * dim * np.log(2 * np.pi * scale**2) - 0.5 * sum_sq / scale**2


@dataclasses.dataclass(frozen=True)
class _LinearBetaSDE(SDE):
  """The part shared by VP and sub-VP: beta(t) = beta_min + t (beta_max - beta_min).

  `discrete_betas` are DDPM's, and VP's cosine schedule replaces them with improved
  DDPM's; `alphas`, `alphas_cumprod` and everything built on them follow.
  """

  beta_min: float = 0.1
  beta_max: float = 20.0

  def __post_init__(self):
    super().__post_init__()
    if not 0 < self.beta_min <= self.beta_max:
      raise ValueError(
          f'need 0 < beta_min <= beta_max, got beta_min={self.beta_min!r}, '
          f'beta_max={self.beta_max!r}')

  def beta(self, t: jax.Array) -> jax.Array:
    return self.beta_min + t * (self.beta_max - self.beta_min)

  def log_mean_coeff(self, t: jax.Array) -> jax.Array:
    """log of the mean coefficient: -int_0^t beta(s) ds / 2."""
    return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

  def _t_from_log_mean_coeff(self, c: jax.Array) -> jax.Array:
    """The t >= 0 with -log_mean_coeff(t) = c >= 0: the positive root of a quadratic.

    Written as 2c / (b + sqrt(b^2 + 4ac)), which neither cancels for small c nor
    divides by zero when beta_min = beta_max.
    """
    a, b = 0.25 * (self.beta_max - self.beta_min), 0.5 * self.beta_min
    return 2.0 * c / (b + jnp.sqrt(b**2 + 4.0 * a * c))

  def alpha(self, t):
    return jnp.exp(self.log_mean_coeff(t))

  @functools.cached_property
  def discrete_betas(self) -> np.ndarray:
    """DDPM's betas: linspace(beta_min / N, beta_max / N, N), i.e. 1e-4..0.02 by default."""
    return self._discrete_betas()

  def _discrete_betas(self) -> np.ndarray:
    return np.linspace(self.beta_min / self.N, self.beta_max / self.N, self.N)

  @functools.cached_property
  def alphas(self) -> np.ndarray:
    return 1.0 - self.discrete_betas

  @functools.cached_property
  def alphas_cumprod(self) -> np.ndarray:
    return np.cumprod(self.alphas)

  @functools.cached_property
  def sqrt_1m_alphas_cumprod(self) -> np.ndarray:
    """DDPM's noise std at each level, in float64: 1 - alphas_cumprod cancels in float32."""
    return np.sqrt(1.0 - self.alphas_cumprod)

  def prior_sampling(self, rng, shape):
    return normal(rng, shape)

  def prior_logp(self, z):
    return _standard_normal_logp(z, 1.0)


VP_SCHEDULES = ('linear', 'cosine')
_COSINE_MAX_BETA = 0.999  # improved DDPM's clip on each discrete beta


@dataclasses.dataclass(frozen=True)
class VPSDE(_LinearBetaSDE):
  """Variance-preserving SDE, the continuous limit of DDPM.

  `schedule` chooses how the noise grows: 'linear' (DDPM's beta_min..beta_max, the
  default) or 'cosine' (Nichol & Dhariwal 2021, improved DDPM), whose discrete levels
  are their betas exactly, beta_i = min(1 - abar(u_{i+1}) / abar(u_i), 0.999) with
  u_i = i / N and abar(u) = f(u) / f(0), f(u) = cos^2((u + s) / (1 + s) pi / 2), s =
  `cosine_s`. The cosine schedule ignores beta_min and beta_max.

  Its continuous time follows the same abar(u), but abar(1) = 0 would put log-SNR -inf
  and an infinite beta at T, which no ODE or log-SNR sampler can step to. It stops
  where the discrete chain stops following it: at the u_max where beta(u) / N, the
  continuous beta of one of the N steps, reaches the 0.999 clip. t in [0, T] maps
  linearly to u = u_max t / T. For N = 1000 this is DPM-Solver's NoiseScheduleVP
  ('cosine') t_max (log-SNR(T) = -5.77, beta(T) = 0.999 N u_max / T); as N grows u_max
  tends to 1 as 1 - u_max ~ 2 / N, so the continuous schedule stays the limit of the
  discrete levels to O(1/N) like the linear one. Unlike the linear schedule, the
  continuous cosine SDE therefore depends on N (through its end alone).
  """

  schedule: str = 'linear'
  cosine_s: float = 0.008

  def __post_init__(self):
    super().__post_init__()
    if self.schedule not in VP_SCHEDULES:
      raise ValueError(f'unknown VP schedule {self.schedule!r}; known: {list(VP_SCHEDULES)}')
    if not self.cosine_s > 0:  # s = 0: phi(0) = 0, and t_from_log_snr divides by sin(phi(0))
      raise ValueError(f'cosine_s must be positive, got {self.cosine_s!r}')

  @functools.cached_property
  def _cosine_phi0(self) -> float:
    return self.cosine_s / (1.0 + self.cosine_s) * math.pi / 2

  @functools.cached_property
  def cosine_u_max(self) -> float:
    """The end of the cosine schedule in improved DDPM's time u: beta(u_max) / N = 0.999."""
    s = self.cosine_s
    return math.atan(_COSINE_MAX_BETA * self.N * (1 + s) / math.pi) * 2 * (1 + s) / math.pi - s

  def _cosine_delta(self, t: jax.Array) -> jax.Array:
    """phi(t) - phi(0), the angle that the cosine schedule has turned by at time t."""
    return t * (self.cosine_u_max / self.T / (1.0 + self.cosine_s) * math.pi / 2)

  def beta(self, t):
    if self.schedule == 'linear':
      return super().beta(t)
    # -d log abar / dt = 2 tan(phi) dphi/dt.
    phi = self._cosine_phi0 + self._cosine_delta(t)
    return jnp.tan(phi) * (math.pi * self.cosine_u_max / ((1.0 + self.cosine_s) * self.T))

  def log_mean_coeff(self, t):
    if self.schedule == 'linear':
      return super().log_mean_coeff(t)
    # log(cos(phi0 + d) / cos(phi0)) = log1p(cos d - 1 - tan(phi0) sin d), without the
    # cancellation of two logs near t = 0.
    d = self._cosine_delta(t)
    return jnp.log1p(-2.0 * jnp.sin(0.5 * d) ** 2 - math.tan(self._cosine_phi0) * jnp.sin(d))

  def _cosine_log_std(self, t: jax.Array) -> jax.Array:
    # 1 - cos^2(phi) / cos^2(phi0) = sin(phi - phi0) sin(phi + phi0) / cos^2(phi0): exact
    # at t = 0, where 1 - alpha^2 would cancel.
    d = self._cosine_delta(t)
    return (0.5 * jnp.log(jnp.sin(d) * jnp.sin(2.0 * self._cosine_phi0 + d))
            - math.log(math.cos(self._cosine_phi0)))

  def sde(self, x, t):
    beta_t = self.beta(t)
    return -0.5 * batch_broadcast(beta_t, x) * x, jnp.sqrt(beta_t)

  def std(self, t):
    if self.schedule == 'cosine':
      return jnp.exp(self._cosine_log_std(t))
    return jnp.sqrt(-jnp.expm1(2.0 * self.log_mean_coeff(t)))

  def log_snr(self, t):
    log_mean = self.log_mean_coeff(t)
    if self.schedule == 'cosine':
      return log_mean - self._cosine_log_std(t)
    return log_mean - 0.5 * jnp.log(-jnp.expm1(2.0 * log_mean))

  def t_from_log_snr(self, lam):
    lam = jnp.asarray(lam)
    if self.schedule == 'cosine':
      # cos^2(phi) = cos^2(phi0) sigmoid(2 lam) gives tan^2(phi) = tan^2(phi0) + k with
      # k = e^(-2 lam) / cos^2(phi0). With q = k / (k + tan^2(phi0)) = sigmoid(-2 lam -
      # 2 log sin(phi0)), phi - phi0 = atan2(1 - cot(phi) tan(phi0), cot(phi) + tan(phi0))
      # and 1 - cot(phi) tan(phi0) = 1 - sqrt(1 - q) = q / (1 + sqrt(1 - q)): exact at
      # lam = inf (q = 0, t = 0) and finite at lam = -inf (q = 1, u = 1). 1 - q is a
      # sigmoid of its own, which float32 would round to 0 near T as 1 - q.
      tan0 = math.tan(self._cosine_phi0)
      logit = -2.0 * lam - 2.0 * math.log(math.sin(self._cosine_phi0))
      q, root = jax.nn.sigmoid(logit), jnp.sqrt(jax.nn.sigmoid(-logit))
      d = jnp.arctan2(q / (1.0 + root), root / tan0 + tan0)
      return d * (self.T / self.cosine_u_max * (1.0 + self.cosine_s) * 2 / math.pi)
    # alpha^2 = sigmoid(2 lam), so -log alpha = softplus(-2 lam) / 2.
    return self._t_from_log_mean_coeff(0.5 * jax.nn.softplus(-2.0 * lam))

  def _discrete_betas(self) -> np.ndarray:
    if self.schedule == 'linear':
      return super()._discrete_betas()
    u = np.arange(self.N + 1) / self.N
    f = np.cos((u + self.cosine_s) / (1 + self.cosine_s) * np.pi / 2) ** 2
    return np.minimum(1.0 - f[1:] / f[:-1], _COSINE_MAX_BETA)

  def discrete_marginal(self, t):
    i = self.timestep(t)
    return (jnp.asarray(np.sqrt(self.alphas_cumprod), t.dtype)[i],
            jnp.asarray(self.sqrt_1m_alphas_cumprod, t.dtype)[i])

  def discretize(self, x, t):
    """The DDPM step: x_{i+1} = sqrt(1 - beta_i) x_i + sqrt(beta_i) z."""
    i = self.timestep(t)
    sqrt_alpha = jnp.sqrt(jnp.asarray(self.alphas)[i])
    f = batch_broadcast(sqrt_alpha, x) * x - x
    return f, jnp.sqrt(jnp.asarray(self.discrete_betas)[i])


@dataclasses.dataclass(frozen=True)
class SubVPSDE(_LinearBetaSDE):
  """Sub-VP SDE: the VP drift with a smaller diffusion, so std_subVP(t) <= std_VP(t)."""

  def sde(self, x, t):
    beta_t = self.beta(t)
    discount = -jnp.expm1(-2 * self.beta_min * t - (self.beta_max - self.beta_min) * t**2)
    return -0.5 * batch_broadcast(beta_t, x) * x, jnp.sqrt(beta_t * discount)

  def std(self, t):
    return -jnp.expm1(2.0 * self.log_mean_coeff(t))

  def log_snr(self, t):
    log_mean = self.log_mean_coeff(t)
    return log_mean - jnp.log(-jnp.expm1(2.0 * log_mean))

  def t_from_log_snr(self, lam):
    # alpha / (1 - alpha^2) = e^lam, so (1/alpha - alpha) / 2 = e^-lam / 2 and
    # -log alpha = asinh(e^-lam / 2).
    return self._t_from_log_mean_coeff(jnp.arcsinh(0.5 * jnp.exp(-jnp.asarray(lam))))


@dataclasses.dataclass(frozen=True)
class VESDE(SDE):
  """Variance-exploding SDE, the continuous limit of SMLD/NCSN.

  sigma(t) = sigma_min (sigma_max / sigma_min)^t. As in Song et al., x(0) is the
  data plus N(0, sigma_min^2) noise, so that x(t) given the data x is
  N(x, sigma(t)^2) exactly: alpha = 1 and std = sigma(t). Extended to t < 0 the
  same formula takes sigma down to 0 at t = -inf, the time of the noise-free data.
  """

  sigma_min: float = 0.01
  sigma_max: float = 50.0

  def __post_init__(self):
    super().__post_init__()
    if not 0 < self.sigma_min < self.sigma_max:
      raise ValueError(
          f'need 0 < sigma_min < sigma_max, got sigma_min={self.sigma_min!r}, '
          f'sigma_max={self.sigma_max!r}')

  def sigma(self, t: jax.Array) -> jax.Array:
    return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

  @functools.cached_property
  def discrete_sigmas(self) -> np.ndarray:
    """SMLD's noise levels: geometric from sigma_min to sigma_max, ascending."""
    return np.exp(np.linspace(np.log(self.sigma_min), np.log(self.sigma_max), self.N))

  def sde(self, x, t):
    diffusion = self.sigma(t) * np.sqrt(2 * (np.log(self.sigma_max) - np.log(self.sigma_min)))
    return jnp.zeros_like(x), diffusion

  def alpha(self, t):
    return jnp.ones_like(t)

  def std(self, t):
    return self.sigma(t)

  def log_snr(self, t):
    return -(math.log(self.sigma_min) + t * math.log(self.sigma_max / self.sigma_min))

  def t_from_log_snr(self, lam):
    return ((-jnp.asarray(lam) - math.log(self.sigma_min))
            / math.log(self.sigma_max / self.sigma_min))

  def discrete_marginal(self, t):
    return jnp.ones_like(t), jnp.asarray(self.discrete_sigmas, t.dtype)[self.timestep(t)]

  def prior_sampling(self, rng, shape):
    return self.sigma_max * normal(rng, shape)

  def prior_logp(self, z):
    return _standard_normal_logp(z, self.sigma_max)

  def discrete_sigma_pair(self, t: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(sigma_i, sigma_{i-1}) at the level of t, with sigma_{-1} = 0."""
    i = self.timestep(t)
    sigmas = jnp.asarray(self.discrete_sigmas)
    return sigmas[i], jnp.where(i == 0, 0.0, sigmas[jnp.maximum(i - 1, 0)])

  def discretize(self, x, t):
    """The SMLD step: x_{i+1} = x_i + sqrt(sigma_{i+1}^2 - sigma_i^2) z."""
    sigma, adjacent = self.discrete_sigma_pair(t)
    return jnp.zeros_like(x), jnp.sqrt(sigma**2 - adjacent**2)


for _cls in (VPSDE, SubVPSDE, VESDE):
  jax.tree_util.register_static(_cls)

SDES = {'vpsde': VPSDE, 'subvpsde': SubVPSDE, 'vesde': VESDE}


def get_sde(name: str, **kwargs) -> SDE:
  """Builds an SDE by name ('vpsde', 'subvpsde', 'vesde') with the papers' defaults."""
  if name not in SDES:
    raise ValueError(f'unknown sde {name!r}; known: {sorted(SDES)}')
  fields = {f.name for f in dataclasses.fields(SDES[name])}
  unknown = sorted(set(kwargs) - fields)
  if unknown:
    raise ValueError(f'unknown argument(s) {unknown} for sde {name!r}; known: {sorted(fields)}')
  return SDES[name](**kwargs)


@dataclasses.dataclass(frozen=True)
class ReverseSDE:
  """The reverse-time SDE of `forward` (or its probability-flow ODE) given a score.

  Reverse time: dx = [f - g^2 score] dt + g dw_bar; the probability-flow ODE
  dx = [f - g^2 score / 2] dt has the same marginals and no noise.
  """

  forward: SDE
  score_fn: ScoreFn
  probability_flow: bool = False

  @property
  def T(self) -> float:
    return self.forward.T

  @property
  def N(self) -> int:
    return self.forward.N

  def _weight(self) -> float:
    return 0.5 if self.probability_flow else 1.0

  def sde(self, x: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Returns (drift [B, ...], diffusion [B]) of the reverse-time process."""
    drift, diffusion = self.forward.sde(x, t)
    score = self.score_fn(x, t)
    drift = drift - batch_broadcast(diffusion**2, x) * score * self._weight()
    return drift, jnp.zeros_like(diffusion) if self.probability_flow else diffusion

  def discretize(self, x: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The reverse of the forward discretisation: x_i = x_{i+1} - rev_f + rev_G z."""
    f, G = self.forward.discretize(x, t)
    rev_f = f - batch_broadcast(G**2, x) * self.score_fn(x, t) * self._weight()
    return rev_f, jnp.zeros_like(G) if self.probability_flow else G


def reverse(sde: SDE, score_fn: ScoreFn, probability_flow: bool = False) -> ReverseSDE:
  """The reverse-time SDE of `sde` or, with `probability_flow`, its probability-flow ODE."""
  return ReverseSDE(sde, score_fn, probability_flow)


def denoiser(sde: SDE, score_fn: ScoreFn, x: jax.Array, t: jax.Array) -> jax.Array:
  """Tweedie's formula: E[x(0) | x(t) = x] = (x + std(t)^2 score) / alpha(t), shape [B, ...].

  With x(t) = alpha(t) x(0) + std(t) z this is the posterior mean of the clean data,
  Karras et al.'s denoiser D(x; sigma); samplers show it as the prediction of x(0).
  """
  std = sde.std(t)
  return (x + batch_broadcast(std**2, x) * score_fn(x, t)) / batch_broadcast(sde.alpha(t), x)
