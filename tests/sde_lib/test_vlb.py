import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from sde_lib import VPSDE, get_sde, likelihood, toy, vlb

MU, S = 0.3, 0.45  # Gaussian data N(MU, S^2) in each dimension: every term is closed form
GAUSSIAN = toy.GaussianMixture(np.full((1, 2), MU), S, np.ones(1))


def _chain(betas):
  """DDPM's tables from the betas, written out again: abar, beta-tilde, posterior coefficients."""
  abar = np.cumprod(1 - betas)
  abar_prev = np.append(1.0, abar[:-1])
  beta_tilde = betas * (1 - abar_prev) / (1 - abar)
  coef1 = betas * np.sqrt(abar_prev) / (1 - abar)
  coef2 = (1 - abar_prev) * np.sqrt(1 - betas) / (1 - abar)
  return abar, beta_tilde, coef1, coef2


def _gaussian_x0(x, abar):
  """E[x_0 | x_n = x] for x_0 ~ N(MU, S^2) and x_n = sqrt(abar) x_0 + sqrt(1 - abar) z."""
  a = np.sqrt(abar)
  return MU + a * S**2 * (x - a * MU) / (abar * S**2 + 1 - abar)


def _kl(m1, v1, m2, v2):
  return 0.5 * (np.log(v2 / v1) + v1 / v2 + (m1 - m2) ** 2 / v2 - 1)


def _decoder_nll(x0, mean, var, levels, centered):
  """-log p(x_0 | x_1) per element, by scipy: the density, or the mass of x_0's bin."""
  if levels is None:
    return -stats.norm.logpdf(x0, mean, np.sqrt(var))
  half = (1.0 if centered else 0.5) / (levels - 1)
  k = np.round(((x0 + 1) / 2 if centered else x0) * (levels - 1))
  upper = np.where(k == levels - 1, np.inf, x0 + half)
  lower = np.where(k == 0, -np.inf, x0 - half)
  std = np.sqrt(var)
  return -np.log(stats.norm.cdf(upper, mean, std) - stats.norm.cdf(lower, mean, std))


KERNELS = ['beta_tilde', 'beta', 'learned']
DATA = [(None, False), (17, False), (256, True)]


@pytest.mark.parametrize('kernel_name', KERNELS)
@pytest.mark.parametrize('levels, centered', DATA, ids=['continuous', '17', '256-centered'])
@jax.enable_x64(True)
def test_each_term_of_gaussian_data_is_its_closed_form(kernel_name, levels, centered):
  # At given x_0 and x_n, with the exact posterior mean of Gaussian data (linear in x_n):
  # the decoder at level 0 (x_0 at the grid's ends included) and the KL above, by numpy.
  sde = get_sde('vpsde', N=100)
  level = np.array([0, 0, 0, 1, 2, 50, 99])
  rng = np.random.default_rng(0)
  if levels is None:
    x0 = rng.normal(MU, S, (7, 2))
  else:
    k = rng.integers(0, levels, (7, 2))
    k[0], k[1] = [0, levels - 1], [levels - 1, 0]
    x0 = k / (levels - 1) * (2 if centered else 1) - (1 if centered else 0)
  betas = sde.discrete_betas
  abar, beta_tilde, coef1, coef2 = (a[level][:, None] for a in _chain(betas))
  x_t = np.sqrt(abar) * x0 + np.sqrt(1 - abar) * rng.normal(size=(7, 2))
  v = rng.uniform(-1.5, 1.5, (7, 2))  # learned: also outside [-1, 1]

  score_fn = GAUSSIAN.score_fn(sde, discrete=True)
  if kernel_name == 'learned':
    kernel = vlb.learned_range_kernel(sde, lambda x, t: (score_fn(x, t), jnp.asarray(v)))
  else:
    kernel = vlb.fixed_kernel(sde, score_fn, variance=kernel_name)
  bits = vlb.term(sde, kernel, jnp.asarray(x0), jnp.asarray(x_t), jnp.asarray(level),
                  levels=levels, centered=centered)

  clipped = np.where(level == 0, _chain(betas)[1][1], beta_tilde[:, 0])[:, None]
  var = {'beta_tilde': clipped + 0 * v,
         'beta': np.where(level == 0, clipped[:, 0], betas[level])[:, None] + 0 * v,
         'learned': np.exp((v + 1) / 2 * np.log(betas[level])[:, None]
                           + (1 - v) / 2 * np.log(clipped))}[kernel_name]
  mean = coef1 * _gaussian_x0(x_t, abar) + coef2 * x_t
  kl = _kl(coef1 * x0 + coef2 * x_t, np.maximum(beta_tilde, 1e-300), mean, var)
  decoder = _decoder_nll(x0, mean, var, levels, centered)
  expected = np.where(level == 0, decoder.mean(-1), kl.mean(-1)) / np.log(2)
  np.testing.assert_allclose(bits, expected, rtol=1e-9)

  # KL(N(sqrt(abar) x_0, 1 - abar) || N(0, 1)); -log(1 - abar) - abar cancels to abar^2 / 2.
  abar_N = _chain(betas)[0][-1]
  prior = 0.5 * (abar_N * x0**2 - abar_N - np.log1p(-abar_N)).mean(-1) / np.log(2)
  np.testing.assert_allclose(vlb.prior_term(sde, jnp.asarray(x0)), prior, rtol=1e-6)


@pytest.mark.parametrize('levels, centered', [(17, False), (256, True)])
@jax.enable_x64(True)
def test_discretised_gaussian_is_a_distribution_over_the_levels(levels, centered):
  # Its probabilities sum to one over the grid, for narrow, wide and far-off Gaussians;
  # each matches scipy (log-survival functions, so far tails are compared in full).
  grid = np.arange(levels) / (levels - 1) * (2 if centered else 1) - (1 if centered else 0)
  half = (1.0 if centered else 0.5) / (levels - 1)
  for mean, std in [(0.2, 0.05), (0.0, 1e-3), (0.7, 30.0), (-4.0, 0.1), (1.0, 1e4)]:
    x = jnp.asarray(grid)[None]
    logp = np.asarray(vlb.discretized_gaussian_log_likelihood(
        x, jnp.full_like(x, mean), jnp.full_like(x, 2 * np.log(std)), levels=levels,
        centered=centered))[0]
    assert special.logsumexp(logp) == pytest.approx(0.0, abs=1e-9), (mean, std)
    upper = np.where(np.arange(levels) == levels - 1, np.inf, grid + half)
    lower = np.where(np.arange(levels) == 0, -np.inf, grid - half)
    log_sf_lower, log_sf_upper = (stats.norm.logsf(e, mean, std) for e in (lower, upper))
    log_cdf_upper, log_cdf_lower = (stats.norm.logcdf(e, mean, std) for e in (upper, lower))
    right = lower > mean  # the bin lies above the mean: sf(lower) - sf(upper)
    with np.errstate(divide='ignore'):
      expected = np.where(
          right, log_sf_lower + np.log1p(-np.exp(log_sf_upper - log_sf_lower)),
          log_cdf_upper + np.log1p(-np.exp(log_cdf_lower - log_cdf_upper)))
    np.testing.assert_allclose(logp, expected, rtol=1e-6, err_msg=str((mean, std)))
  # Far tails stay finite (improved DDPM floors the mass at 1e-12, i.e. -27.6 nats).
  far = vlb.discretized_gaussian_log_likelihood(
      jnp.asarray(grid[-2:-1]), jnp.array([grid[0]]), jnp.array([2 * np.log(0.01)]),
      levels=levels, centered=centered)
  assert -1e6 < float(far[0]) < -1e3


def test_discretised_gaussian_has_finite_gradients_at_the_ends_and_in_the_tails():
  levels = 256
  x = jnp.array([-1.0, 1.0, 0.0, 0.5, -0.3])
  mean = jnp.array([0.5, -0.5, 0.0, -0.9, -0.3])
  log_var = jnp.array([-9.0, -9.0, 12.0, -12.0, 0.0])
  grads = jax.grad(lambda m, lv: jnp.sum(vlb.discretized_gaussian_log_likelihood(
      x, m, lv, levels=levels, centered=True)), argnums=(0, 1))(mean, log_var)
  assert all(np.all(np.isfinite(g)) for g in grads)


def _hermite(n):
  nodes, weights = np.polynomial.hermite_e.hermegauss(n)
  return nodes, weights / weights.sum()


def _expected_bound(sde, kernel, mixture, n_nodes=32):
  """E over x_0 ~ mixture and every x_n ~ q(x_n | x_0) of the bound, and E[-log2 p(x_0)],
  in bits (1-D data), by Gauss-Hermite quadrature through `vlb.term` and `vlb.prior_term`."""
  nodes, weights = _hermite(n_nodes)
  x0 = (mixture.means[:, :1] + mixture.stds[:, :1] * nodes).ravel()  # [K * Q]
  w0 = (mixture.weights[:, None] * weights).ravel()
  nll = np.sum(w0 * -np.asarray(mixture.log_prob(jnp.asarray(x0)[:, None]))) / np.log(2)
  x0_rows = jnp.asarray(np.repeat(x0, n_nodes))[:, None]  # every x_0 with every z
  z_rows = jnp.asarray(np.tile(nodes, x0.size))[:, None]
  w_rows = jnp.asarray(np.repeat(w0, n_nodes) * np.tile(weights, x0.size))

  def expected_term(level):
    level = jnp.full(x0_rows.shape[0], level)
    x_t = vlb.q_sample(sde, x0_rows, level, z_rows)
    return jnp.sum(w_rows * vlb.term(sde, kernel, x0_rows, x_t, level, levels=None,
                                     centered=False))

  terms = jax.jit(lambda: jax.lax.map(expected_term, jnp.arange(sde.N)))()
  prior = np.sum(w0 * np.asarray(vlb.prior_term(sde, jnp.asarray(x0)[:, None])))
  return float(np.sum(terms)) + prior, nll


def _optimal_kernel(sde, mixture):
  """The Gaussian reverse step nearest (in KL) to q(x_{n-1} | x_n) of 1-D mixture data: its
  mean, by Tweedie's posterior mean, and its variance, beta-tilde + coef1^2 Var[x_0 | x_n]
  with Var[x_0 | x_n] = (1 - abar) / abar (1 + (1 - abar) d score / dx), second-order Tweedie.
  """
  score_fn = mixture.score_fn(sde, discrete=True)
  mean_kernel = vlb.fixed_kernel(sde, score_fn)
  abar, beta_tilde, coef1, _ = (jnp.asarray(a) for a in _chain(sde.discrete_betas))

  def kernel(x, level):
    t = (level / (sde.N - 1)).astype(x.dtype)
    slope = jax.jvp(lambda y: score_fn(y, t), (x,), (jnp.ones_like(x),))[1]  # 1-D: exact
    a, c = abar[level][:, None], coef1[level][:, None]
    var_x0 = (1 - a) / a * (1 + (1 - a) * slope)
    return mean_kernel(x, level)[0], jnp.log(beta_tilde[level][:, None] + c**2 * var_x0)

  return kernel


@jax.enable_x64(True)
def test_bound_of_gaussian_data_exceeds_its_nll_by_the_prior_kl_at_the_optimal_variances():
  # With every reverse step the exact q(x_{n-1} | x_n), Gaussian for Gaussian data, the
  # bound's expectation is the data's entropy plus KL(q(x_N) || N(0, 1)), at any N.
  # Beta and beta-tilde are not the optimal variances, and their bounds lie above.
  gaussian = toy.GaussianMixture(np.array([[MU]]), S, np.ones(1))
  sde = get_sde('vpsde', N=100)
  abar_N = sde.alphas_cumprod[-1]
  prior_kl = _kl(np.sqrt(abar_N) * MU, abar_N * S**2 + 1 - abar_N, 0.0, 1.0) / np.log(2)
  bound, nll = _expected_bound(sde, _optimal_kernel(sde, gaussian), gaussian, n_nodes=8)
  assert nll == pytest.approx(0.5 * np.log2(2 * np.pi * np.e * S**2), rel=1e-12)
  assert bound - nll == pytest.approx(prior_kl, rel=1e-6, abs=1e-12)
  for variance in ('beta', 'beta_tilde'):
    fixed, _ = _expected_bound(sde, vlb.fixed_kernel(
        sde, gaussian.score_fn(sde, discrete=True), variance=variance), gaussian, n_nodes=8)
    assert fixed - nll > prior_kl + 0.01


@jax.enable_x64(True)
def test_bound_approaches_the_nll_of_mixture_data_as_n_grows():
  """Gaussian reverse steps with the optimal mean and variance miss the mixture's
  non-Gaussian q(x_{n-1} | x_n) by less as the steps shrink. Cosine schedule, continuous
  decoder, quadrature over data and noise (32 nodes; 64 move them by 5e-5 at N = 10, < 3e-6
  beyond); NLL 1.7106 bits/dim; measured gaps (bits/dim): 0.0391 at N = 10, 6.6e-4 at
  N = 100, 8e-6 at N = 1000: second order in 1 / N."""
  mixture = toy.GaussianMixture(np.array([[-1.0], [1.2]]), np.array([[0.3], [0.5]]),
                                np.array([0.4, 0.6]))
  gaps = []
  for n in (10, 100, 1000):
    sde = get_sde('vpsde', schedule='cosine', N=n)
    bound, nll = _expected_bound(sde, _optimal_kernel(sde, mixture), mixture)
    gaps.append(bound - nll)
  assert gaps[0] > 0.03 and gaps[0] > 20 * gaps[1] > 0 and gaps[1] > 20 * gaps[2]
  assert -5e-5 < gaps[2] < 1e-4, gaps


def _gaussian_expected_terms(sde, x0, variance):
  """E[decoder | x_0] and E[sum of KL terms | x_0] [B] (bits/dim) of the continuous bound for
  Gaussian data with the exact posterior mean, in closed form: x_0 - E[x_0 | x_n] =
  (1 - g a)(x_0 - MU) - g std z with a = sqrt(abar), g = a S^2 / (abar S^2 + 1 - abar)."""
  betas = sde.discrete_betas
  abar, beta_tilde, coef1, _ = _chain(betas)
  var = np.where(np.arange(sde.N) == 0, beta_tilde[1],
                 beta_tilde if variance == 'beta_tilde' else betas)
  a = np.sqrt(abar)
  g = a * S**2 / (abar * S**2 + 1 - abar)
  sq = (1 - g * a) ** 2 * (x0[..., None] - MU) ** 2 + g**2 * (1 - abar)  # [B, D, N]
  decoder = 0.5 * np.log(2 * np.pi * var[0]) + sq[..., 0] / (2 * var[0])
  kl = 0.5 * (np.log(var[1:] / beta_tilde[1:]) + beta_tilde[1:] / var[1:] - 1
              + coef1[1:] ** 2 * sq[..., 1:] / var[1:])
  return decoder.mean(-1) / np.log(2), kl.sum(-1).mean(-1) / np.log(2)


def _within(values, expected, message):
  difference = np.asarray(values) - expected
  error = 5 * difference.std() / np.sqrt(difference.size)
  assert abs(difference.mean()) < error, (message, difference.mean(), error)


@pytest.mark.parametrize('variance', ['beta_tilde', 'beta'])
@jax.enable_x64(True)
def test_bits_per_dim_and_its_k_term_estimate_are_unbiased(variance):
  # The exact sum over levels (one draw of x_n per level) and the estimate from K = 3 levels
  # per example, against the closed-form expectation given x_0; both within 5 standard
  # errors over 4000 examples, each the other's Monte Carlo check.
  sde = get_sde('vpsde', N=50)
  x0 = GAUSSIAN.sample(jax.random.key(0), 4000)
  kernel = vlb.fixed_kernel(sde, GAUSSIAN.score_fn(sde, discrete=True), variance=variance)
  decoder, kl = _gaussian_expected_terms(sde, np.asarray(x0), variance)
  prior = np.asarray(vlb.prior_term(sde, x0))
  for n_terms in (None, 3):
    bound = jax.jit(lambda rng, x: vlb.bits_per_dim(rng, sde, kernel, x, levels=None,
                                                    centered=False, n_terms=n_terms))(
        jax.random.key(1), x0)
    np.testing.assert_allclose(bound.prior, prior, rtol=1e-12)
    np.testing.assert_allclose(bound.total, bound.prior + bound.decoder + bound.kl, rtol=1e-12,
                               atol=1e-12)
    _within(bound.decoder, decoder, 'decoder')
    _within(bound.kl, kl, f'kl, n_terms={n_terms}')


def test_probability_flow_and_bound_on_the_mixture(gmm):
  """On the 2-D mixture with exact scores (linear VP, N = 1000, continuous data, float32),
  the probability-flow bits/dim (exact trace) is the NLL up to the solver, and DDPM's bound
  with Ho et al.'s fixed beta-tilde lies above it.

  Measured: NLL 1.36 bits/dim; flow - NLL +0.0004 on average, at most 0.009, on 64
  points; bound - NLL 0.81 +- 0.03 on 4000 (one draw of x_n per level: 1.5 bits/dim of
  noise per example), 0.17 +- 0.02 with beta.
  Beta-tilde is far from the optimal variance at the first levels, where the posterior's
  coef1^2 Var[x_0 | x_n] is as large as beta-tilde itself.
  """
  sde = get_sde('vpsde')
  x = gmm.sample(jax.random.key(0), 4000)
  nll = -np.asarray(gmm.log_prob(x)) / (2 * np.log(2))
  flow, _, _ = likelihood.bits_per_dim(jax.random.key(1), sde, gmm.score_fn(sde), x[:64],
                                       estimator='exact')
  np.testing.assert_allclose(flow, nll[:64], atol=0.01)
  kernel = vlb.fixed_kernel(sde, gmm.score_fn(sde, discrete=True))
  bound = jax.jit(lambda rng, x: vlb.bits_per_dim(rng, sde, kernel, x, levels=None,
                                                  centered=False))(jax.random.key(2), x)
  gap = np.asarray(bound.total) - nll
  assert 0.65 < gap.mean() < 0.95 and gap.mean() > 10 * gap.std() / np.sqrt(gap.size)


@jax.enable_x64(True)
def test_learned_range_spans_beta_tilde_to_beta():
  sde = get_sde('vpsde', N=100)
  score_fn = GAUSSIAN.score_fn(sde, discrete=True)
  x = jax.random.normal(jax.random.key(0), (4, 2))
  level = jnp.array([0, 1, 30, 99])
  for v, variance in ((-1.0, 'beta_tilde'), (1.0, 'beta')):
    learned = vlb.learned_range_kernel(sde, lambda x, t: (score_fn(x, t), jnp.full_like(x, v)))
    mean, log_var = learned(x, level)
    fixed_mean, fixed_log_var = vlb.fixed_kernel(sde, score_fn, variance=variance)(x, level)
    np.testing.assert_allclose(mean, fixed_mean, rtol=1e-12)
    # fixedlarge's level 0 is beta-tilde at level 1; learned_range's top there is beta_0.
    expected = np.array(fixed_log_var)
    if variance == 'beta':
      expected[0] = np.log(sde.discrete_betas[0])
    np.testing.assert_allclose(log_var, expected, rtol=1e-12)


def test_clip_denoised_clips_the_x0_prediction():
  sde = get_sde('vpsde', N=100)
  x = jnp.array([[3.0, -0.2], [-4.0, 0.5]])
  level = jnp.array([0, 20])
  far_score = lambda x, t: 50.0 * jnp.sign(x)  # Tweedie's x_0 lands far outside [-1, 1]
  clipped, _ = vlb.fixed_kernel(sde, far_score, clip_denoised=(-1.0, 1.0))(x, level)
  x0 = jnp.clip((x + jnp.asarray(1 - sde.alphas_cumprod)[level][:, None] * far_score(x, None))
                / jnp.sqrt(jnp.asarray(sde.alphas_cumprod)[level])[:, None], -1.0, 1.0)
  np.testing.assert_allclose(clipped, vlb.q_posterior(sde, x0, x, level)[0], rtol=1e-6)
  assert np.all(np.abs(np.asarray(clipped[0])) <= 1.0)


def test_the_exact_bound_traces_the_kernel_twice_whatever_n():
  # The decoder, and one lax.scan body for the N - 1 KL terms: one program for any N.
  for n in (30, 200):
    sde = get_sde('vpsde', N=n)
    calls = []
    fixed = vlb.fixed_kernel(sde, GAUSSIAN.score_fn(sde, discrete=True))

    def kernel(x, level):
      calls.append(1)
      return fixed(x, level)

    jax.make_jaxpr(lambda rng, x: vlb.bits_per_dim(rng, sde, kernel, x, levels=None,
                                                   centered=False))(
        jax.random.key(0), jnp.zeros((2, 2)))
    assert len(calls) == 2


@pytest.mark.parametrize('name, kwargs, message', [
    ('vesde', {}, "the bound is DDPM's chain of the VP SDE's discrete levels; VESDE has no "
                  'such chain: use the probability-flow likelihood'),
    ('subvpsde', {}, 'SubVPSDE has no such chain'),
    ('vpsde', {'levels': 1}, 'levels must be an integer >= 2, got 1'),
    ('vpsde', {'n_terms': 0}, 'n_terms must be a positive integer or None, got 0'),
    ('vpsde', {'N': 20}, "DDPM's chain needs betas below 1; N=20 levels of beta_max=20.0 reach "
                         '1: take more levels (N > 20)'),
])
def test_bits_per_dim_bad_input(name, kwargs, message):
  sde = get_sde(name, N=kwargs.get('N', 50))
  kernel = lambda x, level: (x, jnp.zeros_like(x))
  options = {'levels': 256, 'centered': True, **{k: v for k, v in kwargs.items() if k != 'N'}}
  with pytest.raises(ValueError) as error:
    vlb.bits_per_dim(jax.random.key(0), sde, kernel, jnp.zeros((2, 2)), **options)
  assert message in str(error.value)


def test_kernels_refuse_other_sdes_and_variances():
  with pytest.raises(ValueError, match='VESDE has no such chain'):
    vlb.fixed_kernel(get_sde('vesde'), lambda x, t: x)
  with pytest.raises(ValueError, match="unknown variance 'fixedlarge'; known: "):
    vlb.fixed_kernel(get_sde('vpsde'), lambda x, t: x, variance='fixedlarge')


@pytest.mark.parametrize('sde', [VPSDE(N=200), VPSDE(N=1000, schedule='cosine')],
                         ids=['linear', 'cosine'])
def test_a_continuous_time_score_is_asked_where_its_marginal_is_the_levels(sde):
  # At level_times(discrete=False) the SDE's alpha^2 is the chain's alphas_cumprod (but at
  # the last levels, clipped to T); at the discrete times i T / (N - 1) level 0 would be
  # asked at t = 0, where a continuous network's std is 0 and level 0's is sqrt(beta_0).
  times = vlb.level_times(sde, discrete=False)
  inside = times < sde.T
  assert inside.sum() > 0.95 * sde.N and times[0] > 0
  alpha2 = np.asarray(sde.alpha(jnp.asarray(times[inside], jnp.float32)), np.float64) ** 2
  np.testing.assert_allclose(alpha2, sde.alphas_cumprod[inside], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(vlb.level_times(sde), np.arange(sde.N) * sde.T / (sde.N - 1))
  assert float(sde.std(jnp.zeros(()))) == 0.0 < np.sqrt(sde.discrete_betas[0])
