"""A Gaussian mixture whose diffused marginals, and so whose scores, are exact.

Under each of the three SDEs, x(t) given x(0) is N(alpha(t) x(0), std(t)^2 I), so
a mixture of diagonal Gaussians stays one:
p_t = sum_k w_k N(alpha(t) mu_k, alpha(t)^2 s_k^2 + std(t)^2). Its score has a closed
form, which lets samplers and likelihoods be checked with no network error. Read
with its components as classes, it also has exact class-conditional scores and
class posteriors p(y | x_t), for guidance.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from sde_lib.sde import SDE, ScoreFn


def _flat(x: jax.Array) -> jax.Array:
  return x.reshape(x.shape[0], -1)


@dataclasses.dataclass(frozen=True, eq=False)
class GaussianMixture:
  """sum_k weights[k] N(means[k], diag(stds[k]^2)).

  Attributes:
    means: [K, D] component means.
    stds: component standard deviations, broadcastable to [K, D] (a scalar,
      one per component as [K, 1], or one per component and dimension).
    weights: [K] positive mixture weights; normalised to sum to one.
  """

  means: np.ndarray
  stds: np.ndarray
  weights: np.ndarray

  def __post_init__(self):
    means = np.asarray(self.means, np.float64)
    if means.ndim != 2:
      raise ValueError(f'means must have shape [K, D], got {means.shape}')
    try:
      stds = np.broadcast_to(np.asarray(self.stds, np.float64), means.shape)
    except ValueError:
      raise ValueError(
          f'stds of shape {np.shape(self.stds)} do not broadcast to means {means.shape}'
      ) from None
    weights = np.asarray(self.weights, np.float64)
    if weights.shape != means.shape[:1]:
      raise ValueError(f'weights must have shape [{means.shape[0]}], got {weights.shape}')
    if np.any(stds <= 0) or np.any(weights <= 0):
      raise ValueError('stds and weights must be positive')
    object.__setattr__(self, 'means', means)
    object.__setattr__(self, 'stds', np.array(stds))
    object.__setattr__(self, 'weights', weights / weights.sum())

  @property
  def dim(self) -> int:
    return self.means.shape[1]

  def sample(self, rng: jax.Array, n: int) -> jax.Array:
    """Draws n points, [n, D]."""
    k_rng, z_rng = jax.random.split(rng)
    k = jax.random.choice(k_rng, len(self.weights), (n,), p=jnp.asarray(self.weights))
    z = jax.random.normal(z_rng, (n, self.dim))
    return jnp.asarray(self.means)[k] + jnp.asarray(self.stds)[k] * z

  def _component_logp(self, x: jax.Array, means: jax.Array, variances: jax.Array) -> jax.Array:
    # x [B, D]; means, variances [B or 1, K, D] -> log w_k + log N_k(x): [B, K]
    diff = x[:, None, :] - means
    log_normal = -0.5 * jnp.sum(diff**2 / variances + jnp.log(2 * np.pi * variances), axis=-1)
    return jnp.log(jnp.asarray(self.weights)) + log_normal

  def log_prob(self, x: jax.Array) -> jax.Array:
    """log p(x) for x [B, ...] with prod(...) = D: [B]."""
    logp = self._component_logp(
        _flat(x), jnp.asarray(self.means)[None], jnp.asarray(self.stds)[None] ** 2)
    return jax.nn.logsumexp(logp, axis=-1)

  def marginal(self, sde: SDE, t: float) -> 'GaussianMixture':
    """The mixture p_t that `sde` diffuses this one into at time t."""
    t = jnp.asarray(t, jnp.result_type(float))
    m, s = float(sde.alpha(t)), float(sde.std(t))
    return GaussianMixture(m * self.means, np.sqrt((m * self.stds) ** 2 + s**2), self.weights)

  def score_fn(self, sde: SDE, *, discrete: bool = False) -> ScoreFn:
    """The exact score of p_t under `sde`: score_fn(x [B, ...], t [B]) -> [B, ...].

    With `discrete`, the exact score of the discrete level of t instead (DDPM's
    alphas_cumprod or SMLD's sigmas, `sde.discrete_marginal`): what a network trained on
    the N levels learns, and the score of DDPM's chain that its variational bound needs.
    """

    def score(x: jax.Array, t: jax.Array) -> jax.Array:
      flat, means, variances = self._diffused(sde, x, t, discrete)
      posterior = jax.nn.softmax(self._component_logp(flat, means, variances), axis=-1)
      component_scores = (means - flat[:, None, :]) / variances
      return jnp.sum(posterior[..., None] * component_scores, axis=1).reshape(x.shape)

    return score

  def _diffused(self, sde: SDE, x: jax.Array, t: jax.Array, discrete: bool = False):
    """x flattened [B, D], and the components of p_t: means and variances [B, K, D]."""
    flat = _flat(x)
    m, s = sde.discrete_marginal(t) if discrete else (sde.alpha(t), sde.std(t))
    m, s = m[:, None, None], s[:, None, None]  # [B, 1, 1]
    means = m * jnp.asarray(self.means, flat.dtype)[None]
    variances = (m * jnp.asarray(self.stds, flat.dtype)[None]) ** 2 + s**2
    return flat, means, variances

  def class_log_prob_fn(self, sde: SDE):
    """log p(y | x_t) with the components as classes: fn(x [B, ...], t [B], y [B]) -> [B]."""

    def log_prob(x: jax.Array, t: jax.Array, y: jax.Array) -> jax.Array:
      logp = jax.nn.log_softmax(self._component_logp(*self._diffused(sde, x, t)), axis=-1)
      return jnp.take_along_axis(logp, y[:, None], axis=-1)[:, 0]

    return log_prob

  def conditional_score_fn(self, sde: SDE):
    """The exact score of p_t(x | y), component y diffused: fn(x, t, y [B]) -> [B, ...].

    y = K (one past the last class) is the null class, as in the networks: it gives the
    unconditional score of the whole mixture, so that one function serves
    classifier-free guidance.
    """
    unconditional = self.score_fn(sde)

    def score(x: jax.Array, t: jax.Array, y: jax.Array) -> jax.Array:
      flat, means, variances = self._diffused(sde, x, t)
      k = jnp.minimum(y, len(self.weights) - 1)[:, None, None]
      mean, variance = (jnp.take_along_axis(a, k, axis=1)[:, 0] for a in (means, variances))
      conditional = ((mean - flat) / variance).reshape(x.shape)
      null = (y == len(self.weights)).reshape((-1,) + (1,) * (x.ndim - 1))
      return jnp.where(null, unconditional(x, t), conditional)

    return score

  def assign(self, x: jax.Array) -> jax.Array:
    """The most probable component of each point x [B, ...]: [B] ints."""
    logp = self._component_logp(
        _flat(x), jnp.asarray(self.means)[None], jnp.asarray(self.stds)[None] ** 2)
    return jnp.argmax(logp, axis=-1)

  def mode_statistics(self, x: jax.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empirical (weights [K], means [K, D], variances [K, D]) of x split by `assign`.

    A component that no point is assigned to gets weight 0 and NaN moments.
    """
    flat = np.asarray(_flat(x), np.float64)
    k = np.asarray(self.assign(x))
    n_k = np.bincount(k, minlength=len(self.weights))
    empty = np.full(self.dim, np.nan)
    means = np.stack([flat[k == j].mean(0) if n else empty for j, n in enumerate(n_k)])
    variances = np.stack([flat[k == j].var(0) if n else empty for j, n in enumerate(n_k)])
    return n_k / len(flat), means, variances
