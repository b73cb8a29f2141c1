import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from sde_lib import VESDE, VPSDE, SubVPSDE, denoiser, get_sde, reverse, toy
from tests.optimized import OPTIMIZED

ALL_SDES = ['vpsde', 'subvpsde', 'vesde']
# Every SDE and schedule, as (name, kwargs of get_sde).
ALL_SCHEDULES = [('vpsde', {}), ('vpsde', {'schedule': 'cosine'}), ('subvpsde', {}),
                 ('vesde', {})]
SCHEDULE_IDS = ['vpsde', 'vpsde-cosine', 'subvpsde', 'vesde']


def test_vp_discrete_schedule_is_ddpm_linear():
  sde = get_sde('vpsde')
  betas = np.linspace(1e-4, 0.02, 1000)
  np.testing.assert_allclose(sde.discrete_betas, betas, rtol=1e-12)
  np.testing.assert_allclose(sde.alphas_cumprod, np.cumprod(1 - betas), rtol=1e-12)
  # DDPM's published value: alpha_bar_T ~ 4.0358e-5 for T = 1000.
  np.testing.assert_allclose(sde.alphas_cumprod[-1], 4.0358e-5, rtol=1e-3)


def test_ve_discrete_sigmas_are_geometric():
  sigmas = get_sde('vesde').discrete_sigmas
  assert sigmas[0] == pytest.approx(0.01) and sigmas[-1] == pytest.approx(50.0)
  ratios = sigmas[1:] / sigmas[:-1]
  np.testing.assert_allclose(ratios, (50 / 0.01) ** (1 / 999), rtol=1e-10)


def test_subvp_std_never_exceeds_vp_std():
  t = jnp.linspace(1e-5, 1.0, 2001)
  x = jnp.zeros((t.shape[0], 1))
  vp_std = get_sde('vpsde').marginal_prob(x, t)[1]
  subvp_std = get_sde('subvpsde').marginal_prob(x, t)[1]
  assert np.all(np.asarray(subvp_std) <= np.asarray(vp_std))
  # sub-VP's variance is the square of VP's: std_sub = std_vp^2.
  np.testing.assert_allclose(subvp_std, vp_std**2, rtol=1e-5)


def _simulate_forward(sde, x0, n_paths, n_steps, rng, keep):
  """Euler-Maruyama simulation of the forward SDE in float64; returns x(t) after each of the
  step counts `keep` (increasing), not every step's (4000 x 20000 paths would be 1.3 GB)."""
  dt = sde.T / n_steps
  x = jnp.broadcast_to(x0, (n_paths,) + x0.shape)
  if isinstance(sde, VESDE):  # x(0) carries sigma_min noise; see VESDE's docstring
    x = x + sde.sigma_min * jax.random.normal(jax.random.fold_in(rng, n_steps), x.shape)

  def step(x, i):
    t = jnp.full((n_paths,), i * dt)
    drift, diffusion = sde.sde(x, t)
    # float32 normals: half the random bits of float64 ones, far below the test's tolerance
    z = jax.random.normal(jax.random.fold_in(rng, i), x.shape, jnp.float32).astype(x.dtype)
    return x + drift * dt + diffusion[:, None] * jnp.sqrt(dt) * z, None

  kept = []
  for start, stop in zip((0, *keep[:-1]), keep):
    x = jax.lax.scan(step, x, jnp.arange(start, stop))[0]
    kept.append(x)
  return kept


@pytest.mark.parametrize('name', ALL_SDES)
def test_marginal_prob_matches_monte_carlo_of_forward_sde(name):
  with jax.enable_x64(True):
    sde = get_sde(name)
    x0 = jnp.array([1.5, -0.5])
    n_paths, n_steps = 20_000, 4000
    times = (0.1, 0.4, 1.0)
    kept = jax.jit(lambda rng: _simulate_forward(
        sde, x0, n_paths, n_steps, rng, [round(t * n_steps) for t in times]),
        compiler_options=OPTIMIZED)(jax.random.key(0))
    for t, xt in zip(times, kept, strict=True):
      xt = np.asarray(xt)
      mean, std = sde.marginal_prob(x0[None], jnp.array([t]))
      mean, std = np.asarray(mean[0]), float(std[0])
      # Monte Carlo standard errors of the mean and of the std, 5 sigma wide,
      # plus 1% for the Euler-Maruyama bias (first order in dt).
      np.testing.assert_allclose(xt.mean(0), mean, atol=5 * std / np.sqrt(n_paths) + 1e-2 * std)
      np.testing.assert_allclose(xt.std(0), std, rtol=5 / np.sqrt(2 * n_paths) + 1e-2)


def test_timestep_maps_level_times_and_sampler_grid_to_levels():
  sde = get_sde('vesde')
  levels = jnp.arange(sde.N)
  np.testing.assert_array_equal(sde.timestep(levels / (sde.N - 1)), levels)
  grid = jnp.linspace(sde.T, 1e-3, sde.N)  # pc_sample's time grid
  np.testing.assert_array_equal(sde.timestep(grid), levels[::-1])


def test_vp_discretize_is_the_ddpm_step():
  sde = get_sde('vpsde')
  i = jnp.array([0, 10, 500, 999])
  x = jnp.ones((4, 3))
  f, G = sde.discretize(x, i / (sde.N - 1))
  betas = sde.discrete_betas[np.asarray(i)]
  np.testing.assert_allclose(f + x, np.sqrt(1 - betas)[:, None] * np.ones((4, 3)), rtol=1e-6)
  np.testing.assert_allclose(G, np.sqrt(betas), rtol=1e-6)


def test_ve_discretize_is_the_smld_step():
  sde = get_sde('vesde')
  i = np.array([0, 1, 500, 999])
  f, G = sde.discretize(jnp.ones((4, 2)), jnp.asarray(i / (sde.N - 1)))
  sigmas = sde.discrete_sigmas
  expected = np.sqrt(sigmas[i] ** 2 - np.where(i == 0, 0.0, sigmas[i - 1]) ** 2)
  np.testing.assert_allclose(G, expected, rtol=1e-5)
  np.testing.assert_array_equal(f, 0.0)


def test_subvp_discretize_is_euler_maruyama():
  sde = get_sde('subvpsde', N=500)
  x = jnp.full((2, 3), 2.0)
  t = jnp.array([0.2, 0.9])
  drift, diffusion = sde.sde(x, t)
  f, G = sde.discretize(x, t)
  np.testing.assert_allclose(f, drift / 500, rtol=1e-6)
  np.testing.assert_allclose(G, diffusion * np.sqrt(1 / 500), rtol=1e-6)


@pytest.mark.parametrize('name', ALL_SDES)
def test_prior_logp_and_sampling_match_the_prior(name):
  sde = get_sde(name)
  scale = 50.0 if name == 'vesde' else 1.0
  z = sde.prior_sampling(jax.random.key(0), (4000, 3))
  assert float(jnp.std(z)) == pytest.approx(scale, rel=0.03)
  expected = stats.norm(0, scale).logpdf(np.asarray(z[:5])).sum(-1)
  np.testing.assert_allclose(sde.prior_logp(z[:5]), expected, rtol=1e-5)


def test_prior_sampling_noise_does_not_depend_on_batch_size():
  sde = get_sde('vpsde')
  small = sde.prior_sampling(jax.random.key(3), (4, 5))
  large = sde.prior_sampling(jax.random.key(3), (16, 5))
  np.testing.assert_array_equal(small, large[:4])


@pytest.mark.parametrize('name', ALL_SDES)
@pytest.mark.parametrize('probability_flow', [False, True])
def test_reverse_drift_and_diffusion(name, probability_flow):
  sde = get_sde(name)
  x = jax.random.normal(jax.random.key(0), (3, 4))
  t = jnp.array([0.1, 0.5, 0.9])
  score_fn = lambda x, t: -2.0 * x
  drift, diffusion = sde.sde(x, t)
  rev_drift, rev_diffusion = reverse(sde, score_fn, probability_flow).sde(x, t)
  weight = 0.5 if probability_flow else 1.0
  np.testing.assert_allclose(rev_drift, drift + weight * diffusion[:, None] ** 2 * 2.0 * x,
                             rtol=1e-5)
  np.testing.assert_allclose(rev_diffusion, 0.0 if probability_flow else diffusion)
  f, G = sde.discretize(x, t)
  rev_f, rev_G = reverse(sde, score_fn, probability_flow).discretize(x, t)
  np.testing.assert_allclose(rev_f, f + weight * G[:, None] ** 2 * 2.0 * x, rtol=1e-5)
  np.testing.assert_allclose(rev_G, 0.0 if probability_flow else G)


@pytest.mark.parametrize('name', ['vpsde', 'subvpsde', 'vesde'])
def test_denoiser_is_the_posterior_mean_of_gaussian_data(name):
  # x(0) ~ N(mu, s^2): E[x(0) | x(t)] = mu + m s^2 (x(t) - m mu) / (m^2 s^2 + std^2).
  mu, s = np.array([0.7, -1.2]), np.array([0.4, 1.5])
  sde = get_sde(name)
  gaussian = toy.GaussianMixture(mu[None], s[None], np.ones(1))
  t = jnp.array([0.01, 0.3, 0.9])
  x = jax.random.normal(jax.random.key(0), (3, 2)) * 3.0
  mean, std = sde.marginal_prob(jnp.ones((3, 1)), t)
  m, std = np.asarray(mean), np.asarray(std)[:, None]
  expected = mu + m * s**2 * (np.asarray(x) - m * mu) / (m**2 * s**2 + std**2)
  np.testing.assert_allclose(denoiser(sde, gaussian.score_fn(sde), x, t), expected, rtol=1e-5,
                             atol=1e-5)


def test_sde_passes_through_jit_as_an_argument():
  @jax.jit
  def std_at(sde, t):
    return sde.marginal_prob(jnp.zeros((1, 1)), t)[1]

  np.testing.assert_allclose(std_at(get_sde('vesde'), jnp.array([1.0])), [50.0], rtol=1e-5)
  np.testing.assert_allclose(std_at(get_sde('vesde', sigma_max=10.0), jnp.array([1.0])),
                             [10.0], rtol=1e-5)


def test_get_sde_defaults_are_the_papers():
  assert get_sde('vpsde') == VPSDE(beta_min=0.1, beta_max=20.0, N=1000)
  assert get_sde('subvpsde') == SubVPSDE(beta_min=0.1, beta_max=20.0, N=1000)
  assert get_sde('vesde') == VESDE(sigma_min=0.01, sigma_max=50.0, N=1000)
  with pytest.raises(dataclasses.FrozenInstanceError):
    get_sde('vpsde').beta_max = 1.0


@pytest.mark.parametrize('name, kwargs, message', [
    ('ddpm', {}, "unknown sde 'ddpm'; known: ['subvpsde', 'vesde', 'vpsde']"),
    ('vesde', {'beta_min': 0.1}, "unknown argument(s) ['beta_min'] for sde 'vesde'"),
    ('vesde', {'sigma_min': 0.0}, 'sigma_min=0.0'),
    ('vesde', {'sigma_min': -1.0}, 'sigma_min=-1.0'),
    ('vesde', {'sigma_min': 60.0}, 'sigma_max=50.0'),
    ('vpsde', {'beta_min': 0.0}, 'beta_min=0.0'),
    ('subvpsde', {'beta_min': 1.0, 'beta_max': 0.5}, 'beta_max=0.5'),
    ('vpsde', {'N': 0}, 'N must be an integer >= 2, got 0'),
    ('vpsde', {'N': 10.5}, 'got 10.5'),
    ('vpsde', {'T': -1.0}, 'T must be positive, got -1.0'),
    ('vpsde', {'schedule': 'quadratic'},
     "unknown VP schedule 'quadratic'; known: ['linear', 'cosine']"),
    ('vpsde', {'schedule': 'cosine', 'cosine_s': 0.0}, 'cosine_s must be positive, got 0.0'),
    ('subvpsde', {'schedule': 'cosine'}, "unknown argument(s) ['schedule'] for sde 'subvpsde'"),
])
def test_bad_sde_arguments_raise_naming_the_value(name, kwargs, message):
  with pytest.raises(ValueError) as error:
    get_sde(name, **kwargs)
  assert message in str(error.value)


@pytest.mark.parametrize('name, kwargs', ALL_SCHEDULES, ids=SCHEDULE_IDS)
def test_coefficients_agree_with_marginal_prob_and_each_other(name, kwargs):
  with jax.enable_x64(True):
    sde = get_sde(name, **kwargs)
    t = jnp.concatenate([jnp.geomspace(1e-6, 1e-2, 9), jnp.linspace(0.02, 1.0, 50)])
    x = jnp.linspace(-2.0, 3.0, 4)[None].repeat(t.shape[0], 0)
    mean, std = sde.marginal_prob(x, t)
    alpha = sde.alpha(t)
    np.testing.assert_allclose(mean, alpha[:, None] * x, rtol=1e-14)
    np.testing.assert_allclose(sde.std(t), std, rtol=1e-14)
    lam = sde.log_snr(t)
    np.testing.assert_allclose(lam, np.log(np.asarray(alpha) / np.asarray(std)), rtol=1e-12)
    assert np.all(np.diff(lam) < 0)
    np.testing.assert_allclose(sde.t_from_log_snr(lam), t, rtol=1e-9)


@pytest.mark.parametrize('name, kwargs, expected', [
    ('vpsde', {}, 0.0), ('vpsde', {'schedule': 'cosine'}, 0.0), ('subvpsde', {}, 0.0),
    ('vesde', {}, -np.inf)], ids=SCHEDULE_IDS)
def test_infinite_log_snr_is_the_time_of_the_clean_data(name, kwargs, expected):
  sde = get_sde(name, **kwargs)
  t = sde.t_from_log_snr(jnp.inf)
  assert float(t) == expected
  assert float(sde.std(t)) == 0.0 and float(sde.alpha(t)) == 1.0
  assert float(sde.log_snr(t)) == np.inf


def test_coefficients_have_the_papers_closed_forms():
  t = jnp.array([0.1, 0.5, 1.0])
  vp, subvp, ve = get_sde('vpsde'), get_sde('subvpsde'), get_sde('vesde')
  integral = 0.1 * t + 0.5 * (20.0 - 0.1) * t**2  # int_0^t beta
  np.testing.assert_allclose(vp.alpha(t), np.exp(-0.5 * integral), rtol=1e-6)
  np.testing.assert_allclose(vp.std(t), np.sqrt(1 - np.exp(-integral)), rtol=1e-6)
  np.testing.assert_allclose(subvp.std(t), 1 - np.exp(-integral), rtol=1e-6)
  np.testing.assert_allclose(ve.std(t), 0.01 * 5000.0**t, rtol=1e-6)
  np.testing.assert_allclose(ve.log_snr(t), -np.log(0.01 * 5000.0**t), rtol=1e-6)


def test_discrete_marginals_are_ddpm_and_smld_levels():
  vp, ve = get_sde('vpsde'), get_sde('vesde')
  t = jnp.array([0.0, 0.25, 1.0])
  alpha, std = vp.discrete_marginal(t)
  np.testing.assert_allclose(alpha, np.sqrt(vp.alphas_cumprod[[0, 249, 999]]), rtol=1e-6)
  np.testing.assert_allclose(std, vp.sqrt_1m_alphas_cumprod[[0, 249, 999]], rtol=1e-6)
  alpha, std = ve.discrete_marginal(t)
  np.testing.assert_array_equal(alpha, 1.0)
  np.testing.assert_allclose(std, ve.discrete_sigmas[[0, 249, 999]], rtol=1e-6)
  with pytest.raises(ValueError, match='SubVPSDE has no discrete noise levels'):
    get_sde('subvpsde').discrete_marginal(t)


def _improved_ddpm_betas(n, s=0.008, max_beta=0.999):
  """improved-diffusion's betas_for_alpha_bar with its cosine alpha_bar, as they wrote it."""
  alpha_bar = lambda t: math.cos((t + s) / (1 + s) * math.pi / 2) ** 2
  return np.array([min(1 - alpha_bar((i + 1) / n) / alpha_bar(i / n), max_beta)
                   for i in range(n)])


@pytest.mark.parametrize('n', [50, 1000])
def test_cosine_discrete_betas_are_improved_ddpms(n):
  sde = get_sde('vpsde', schedule='cosine', N=n)
  np.testing.assert_allclose(sde.discrete_betas, _improved_ddpm_betas(n), rtol=1e-12)
  assert sde.discrete_betas[-1] == 0.999
  np.testing.assert_allclose(sde.alphas_cumprod, np.cumprod(1 - _improved_ddpm_betas(n)),
                             rtol=1e-12)
  # Before the clip, abar telescopes to f((i + 1) / n) / f(0): the 'cosine' in the name.
  f = lambda u: np.cos((u + 0.008) / 1.008 * np.pi / 2) ** 2
  np.testing.assert_allclose(sde.alphas_cumprod[:-1], f(np.arange(1, n) / n) / f(0), rtol=1e-10)
  alpha, std = sde.discrete_marginal(jnp.array([0.0, 1.0]))
  np.testing.assert_allclose(alpha**2, sde.alphas_cumprod[[0, -1]], rtol=1e-5)
  np.testing.assert_allclose(std**2, 1 - sde.alphas_cumprod[[0, -1]], rtol=1e-5)


@jax.enable_x64(True)
def test_cosine_drift_is_the_derivative_of_its_marginal():
  # A VP SDE with drift -beta x / 2 and diffusion sqrt(beta) has marginal variance
  # 1 - alpha^2 if and only if beta = -d log alpha^2 / dt: with alpha^2 + std^2 = 1
  # below, this is the whole consistency of sde() with marginal_prob().
  sde = get_sde('vpsde', schedule='cosine')
  t = jnp.concatenate([jnp.geomspace(1e-6, 1e-2, 9), jnp.linspace(0.02, 1.0, 50)])
  np.testing.assert_allclose(sde.alpha(t) ** 2 + sde.std(t) ** 2, 1.0, rtol=1e-14)
  expected = jax.vmap(jax.grad(lambda s: -2.0 * sde.log_mean_coeff(s)))(t)
  np.testing.assert_allclose(sde.beta(t), expected, rtol=1e-10)
  x = jnp.linspace(-1.0, 2.0, t.size)[:, None]
  drift, diffusion = sde.sde(x, t)
  np.testing.assert_allclose(drift, -0.5 * sde.beta(t)[:, None] * x, rtol=1e-14)
  np.testing.assert_allclose(diffusion**2, sde.beta(t), rtol=1e-14)
  # The closed form: alpha^2 = cos^2(phi(u)) / cos^2(phi(0)), u = u_max t.
  phi = lambda u: (u + 0.008) / 1.008 * np.pi / 2
  u = sde.cosine_u_max * np.asarray(t)
  np.testing.assert_allclose(sde.alpha(t) ** 2, np.cos(phi(u)) ** 2 / np.cos(phi(0)) ** 2,
                             rtol=1e-12)


def test_cosine_schedule_ends_where_a_discrete_step_reaches_the_clip():
  # For N = 1000 the end is DPM-Solver's NoiseScheduleVP('cosine').cosine_t_max, with its
  # cosine_beta_max = 999: a finite log-SNR and beta at T.
  dpm_solver_t_max = math.atan(999.0 * 1.008 / math.pi) * 2.0 * 1.008 / math.pi - 0.008
  with jax.enable_x64(True):
    for n in (100, 1000, 10_000):
      sde = get_sde('vpsde', schedule='cosine', N=n)
      T = jnp.array(1.0)
      assert float(sde.beta(T)) * sde.T / sde.cosine_u_max / n == pytest.approx(0.999, rel=1e-9)
      assert np.isfinite(float(sde.log_snr(T)))
    assert get_sde('vpsde', schedule='cosine').cosine_u_max == pytest.approx(dpm_solver_t_max,
                                                                            rel=1e-12)
    assert float(get_sde('vpsde', schedule='cosine').log_snr(T)) == pytest.approx(-5.7699, abs=1e-4)


@pytest.mark.parametrize('schedule', ['linear', 'cosine'])
def test_continuous_schedule_matches_the_discrete_levels_to_first_order(schedule):
  # Level i at time i T / (N - 1): alpha(t_i)^2 = abar_i + O(1/N). Measured: N times the
  # largest gap is 1.61 (linear) and 2.39 (cosine) at N = 100, 1000 and 10000.
  with jax.enable_x64(True):
    for n in (100, 1000, 10_000):
      sde = get_sde('vpsde', schedule=schedule, N=n)
      alpha = np.asarray(sde.alpha(jnp.arange(n) * (sde.T / (n - 1))))
      assert n * np.max(np.abs(alpha**2 - sde.alphas_cumprod)) < 2.5


def test_linear_schedule_is_the_default_and_unchanged():
  sde = get_sde('vpsde')
  assert sde == get_sde('vpsde', schedule='linear') and sde.schedule == 'linear'
  t = jnp.array([0.1, 0.5, 1.0])
  np.testing.assert_array_equal(sde.beta(t), 0.1 + t * (20.0 - 0.1))
  assert get_sde('vpsde', schedule='cosine') != sde


@pytest.mark.parametrize('schedule', ['linear', 'cosine'])
def test_log_snr_round_trip_holds_in_float32(schedule):
  # Samplers build their grids in float32: near T the cosine inverse needs 1 - q as a
  # sigmoid of its own (as 1 - sigmoid it rounds to 0 and lands past T).
  sde = get_sde('vpsde', schedule=schedule)
  t = jnp.linspace(1e-3, 1.0, 200, dtype=jnp.float32)
  back = sde.t_from_log_snr(sde.log_snr(t))
  assert back.dtype == jnp.float32
  np.testing.assert_allclose(back, t, rtol=1e-5)
