import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sde_lib import get_sde, sampling, toy
from sde_lib.sampling import schedules

ALL_SDES = ['vpsde', 'subvpsde', 'vesde']
COMBINATIONS = [(p, c) for p in sampling.PREDICTORS for c in sampling.CORRECTORS
                if (p, c) != ('none', 'none')]
# (method, options, schedule): every sampler and order with a schedule that fits it.
SAMPLERS = [
    ('pc', {'predictor': 'euler_maruyama', 'corrector': 'none'}, 'uniform'),
    ('ode', {'solver': 'heun'}, 'karras'),
    ('ode', {'solver': 'dopri5', 'rtol': 1e-3, 'atol': 1e-3}, 'uniform'),
    ('ddim', {}, 'logsnr'),
    ('ddim', {'eta': 1.0}, 'uniform'),
    ('dpm_solver_pp', {'order': 1}, 'logsnr'),
    ('dpm_solver_pp', {'order': 2}, 'logsnr'),
    ('dpm_solver_pp', {'order': 3}, 'karras'),
    ('dpm_solver_pp_sde', {'order': 2}, 'logsnr'),
    ('dpm_solver_pp_sde', {'order': 3}, 'quadratic'),
    ('unipc', {'order': 1}, 'logsnr'),
    ('unipc', {'order': 2}, 'logsnr'),
    ('unipc', {'order': 3}, 'logsnr'),
    ('unipc', {'order': 3, 'variant': 'bh1'}, 'karras'),
    ('edm_heun', {}, 'karras'),
    ('edm_heun', {'s_churn': 10.0, 's_min': 0.05, 's_max': 50.0, 's_noise': 1.003}, 'karras'),
]
SAMPLER_IDS = [f'{m}-{"-".join(f"{k}={v}" for k, v in o.items())}-{s}' for m, o, s in SAMPLERS]


def assert_recovers_mixture(gmm, x, *, weight_tol, mean_tol, std_rtol):
  weights, means, variances = gmm.mode_statistics(x)
  np.testing.assert_allclose(weights, gmm.weights, atol=weight_tol, err_msg='mode weights')
  np.testing.assert_allclose(means, gmm.means, atol=mean_tol, err_msg='mode means')
  np.testing.assert_allclose(np.sqrt(variances), gmm.stds, rtol=std_rtol, err_msg='mode stds')


def _x_T(sde, n, dim=2, seed=1):
  return sde.prior_sampling(jax.random.key(seed), (n, dim))


@pytest.mark.parametrize('name', ALL_SDES)
@pytest.mark.parametrize('predictor, corrector', COMBINATIONS)
def test_pc_sampler_recovers_the_mixture(gmm, name, predictor, corrector):
  sde = get_sde(name, N=100)
  # Corrector-only sampling needs several Langevin steps per level to equilibrate,
  # and annealed Langevin a larger step, tied as it is to the small sub-VP std.
  n_steps = 1 if predictor != 'none' else 20
  snr = 0.5 if (predictor, corrector) == ('none', 'ald') else 0.16
  x_T = _x_T(sde, 2000)
  sample = jax.jit(lambda rng: sampling.pc_sample(
      rng, sde, gmm.score_fn(sde), x_T, ts=schedules.uniform(sde, 100, eps=1e-3),
      predictor=predictor, corrector=corrector, corrector_steps=n_steps, snr=snr))
  out = sample(jax.random.key(0))
  assert out.nfe.dtype == jnp.int32 and out.trajectory is None
  assert out.nfe == 100 * ((predictor != 'none') + n_steps * (corrector != 'none'))
  assert_recovers_mixture(gmm, out.x, weight_tol=0.05, mean_tol=0.15, std_rtol=0.2)


@pytest.mark.parametrize('name', ALL_SDES)
@pytest.mark.parametrize('method, options, schedule', SAMPLERS, ids=SAMPLER_IDS)
def test_every_sampler_recovers_the_mixture_at_50_evaluations(gmm, name, method, options,
                                                              schedule):
  sde = get_sde(name)
  n_steps = {'edm_heun': 25, 'ode': 25}.get(method, 50)  # Heun: 2 evaluations a step
  out = jax.jit(lambda rng, x_T: sampling.sample(
      method, rng, sde, gmm.score_fn(sde), x_T, n_steps=n_steps, schedule=schedule,
      **options))(jax.random.key(0), _x_T(sde, 2000))
  if options.get('solver') != 'dopri5':
    assert int(out.nfe) <= 50
  assert_recovers_mixture(gmm, out.x, weight_tol=0.05, mean_tol=0.15, std_rtol=0.2)


COSINE_SAMPLERS = [('ddim', {}, 'logsnr'), ('dpm_solver_pp', {'order': 2}, 'logsnr'),
                   ('ode', {'solver': 'heun'}, 'karras'),
                   ('ode', {'solver': 'dopri5', 'rtol': 1e-3, 'atol': 1e-3}, 'uniform'),
                   ('pc', {'predictor': 'ancestral_sampling', 'corrector': 'none'}, 'uniform')]


@pytest.mark.parametrize('method, options, schedule', COSINE_SAMPLERS,
                         ids=[f'{m}-{"-".join(map(str, o.values()))}-{s}'
                              for m, o, s in COSINE_SAMPLERS])
def test_samplers_recover_the_mixture_on_the_cosine_schedule(gmm, method, options, schedule):
  # The cosine VP's finite end (log-SNR -5.77, beta 997 at T for N = 1000) is what the
  # log-SNR grids and the ODE solvers step from; PC's ancestral steps use its discrete
  # betas, the last one clipped at 0.999.
  sde = get_sde('vpsde', schedule='cosine')
  n_steps = {'ode': 25, 'pc': 100}.get(method, 50)
  out = jax.jit(lambda rng, x_T: sampling.sample(
      method, rng, sde, gmm.score_fn(sde), x_T, n_steps=n_steps, schedule=schedule,
      **options))(jax.random.key(0), _x_T(sde, 2000))
  assert_recovers_mixture(gmm, out.x, weight_tol=0.05, mean_tol=0.15, std_rtol=0.2)


@pytest.mark.parametrize('method, options, schedule', SAMPLERS, ids=SAMPLER_IDS)
def test_nfe_counts_every_score_evaluation(gmm, method, options, schedule):
  sde = get_sde('vesde')
  calls = []

  def counted_score(x, t):
    jax.debug.callback(lambda: calls.append(1))
    return gmm.score_fn(sde)(x, t)

  out = sampling.sample(method, jax.random.key(0), sde, counted_score, _x_T(sde, 8),
                        n_steps=7, schedule=schedule, **options)
  jax.effects_barrier()
  assert int(out.nfe) == len(calls)


# Orders of accuracy against a tight probability-flow solve from the same x_T, on grids
# that end at eps (no final jump to sigma = 0, whose size does not shrink with n).
ORDERS = [
    ('ddim', {}, 'logsnr', 1), ('ode', {'solver': 'euler'}, 'uniform', 1),
    ('ode', {'solver': 'heun'}, 'uniform', 2), ('edm_heun', {}, 'karras', 2),
    ('dpm_solver_pp', {'order': 2, 'lower_order_final': False}, 'logsnr', 2),
    ('dpm_solver_pp', {'order': 3, 'lower_order_final': False}, 'karras', 3),
    # UniC raises the order by one (Zhao et al., Thm 3.3): UniPC-p converges at p + 1.
    ('unipc', {'order': 2, 'lower_order_final': False}, 'logsnr', 3),
    ('unipc', {'order': 3, 'lower_order_final': False}, 'karras', 4),
]


@pytest.mark.parametrize('name', ['vpsde', 'vesde'])
@pytest.mark.parametrize('method, options, schedule, order', ORDERS,
                         ids=[f'{m}-{o}-{s}' for m, o, s, _ in ORDERS])
def test_deterministic_samplers_converge_at_their_order(name, method, options, schedule, order):
  # One anisotropic Gaussian: a mixture's trajectories near the boundary between
  # modes keep the error pre-asymptotic until very small steps.
  gaussian = toy.GaussianMixture(np.array([[1.0, -1.0]]), np.array([[0.3, 0.6]]), np.ones(1))
  steps, eps = [16, 32, 64, 128], 1e-3
  with jax.enable_x64(True):
    sde = get_sde(name)
    score_fn = gaussian.score_fn(sde)
    x_T = _x_T(sde, 32, seed=0).astype(jnp.float64)
    reference = sampling.ode_sample(None, sde, score_fn, x_T, ts=jnp.array([sde.T, eps, eps]),
                                    rtol=1e-11, atol=1e-11).x
    run = jax.jit(lambda ts: sampling.SAMPLERS[method](
        jax.random.key(0), sde, score_fn, x_T, ts=ts, **options).x)
    errors = [float(jnp.sqrt(jnp.mean(
        (run(schedules.SCHEDULES[schedule](sde, n + 1, eps=eps)[:-1]) - reference) ** 2)))
        for n in steps]
  measured = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
  assert abs(measured - order) < 0.4, (errors, measured)


def test_third_order_needs_the_whole_second_difference():
  # A quadratic x0(lambda) is integrated exactly by the order-3 step; with half of
  # the second difference (the published 3M code) it is not.
  h = 0.5
  x0 = lambda lam: lam**2  # noqa: E731
  d1_0, d1_1 = x0(0.0) - x0(-h), x0(-h) - x0(-2 * h)
  d1, d2 = d1_0 + 0.5 * (d1_0 - d1_1), (d1_0 - d1_1)
  phi_1 = np.expm1(-h)
  phi_2, phi_3 = phi_1 / h + 1, (phi_1 / h + 1) / h - 0.5
  u = np.linspace(0, h, 200_001)
  exact = np.trapezoid(np.exp(u - h) * x0(u), u)
  np.testing.assert_allclose(-phi_1 * x0(0.0) + phi_2 * d1 - phi_3 * d2, exact, rtol=1e-8)
  assert abs(-phi_1 * x0(0.0) + phi_2 * d1 - phi_3 * d2 / 2 - exact) > 0.4 * exact


def test_ddim_with_eta_1_steps_draw_from_the_posterior_at_the_denoised_x0(gmm):
  # x_t = a x_s + sqrt(v) n and x_s | x0 ~ N(alpha_s x0, std_s^2): q(x_s | x_t, x0) in
  # closed form, against 20000 one-step draws from the same x_t.
  sde = get_sde('vpsde')
  t, s = 0.4, 0.3
  x_t = jnp.tile(jnp.array([[0.7, -1.2]]), (20000, 1))
  x_s = sampling.ddim_sample(jax.random.key(0), sde, gmm.score_fn(sde), x_t,
                             ts=jnp.array([t, s]), eta=1.0).x
  alpha_t, std_t, alpha_s, std_s = (float(f(jnp.asarray(u))) for f, u in (
      (sde.alpha, t), (sde.std, t), (sde.alpha, s), (sde.std, s)))
  a = alpha_t / alpha_s
  v = std_t**2 - a**2 * std_s**2
  x0 = np.asarray(sampling.core.denoise(sde, gmm.score_fn(sde), x_t[:1], jnp.asarray(t)))[0]
  var = 1.0 / (1.0 / std_s**2 + a**2 / v)
  mean = var * (alpha_s * x0 / std_s**2 + a * np.asarray(x_t[0]) / v)
  np.testing.assert_allclose(x_s.mean(0), mean, atol=4 * np.sqrt(var / 20000))
  np.testing.assert_allclose(x_s.var(0), var, rtol=0.04)


def test_ddim_with_eta_1_draws_what_ancestral_ddpm_draws():
  # From a Gaussian, both reach N(mu, s^2) through the same posterior means; DDPM's
  # variance beta and DDIM's posterior variance beta-tilde differ per step, not in
  # the limit of many steps.
  gaussian = toy.GaussianMixture(np.array([[1.5, -1.0]]), np.array([[0.5, 0.2]]), np.ones(1))
  sde = get_sde('vpsde')
  x_T = _x_T(sde, 8000)
  ts = schedules.uniform(sde, 1000, eps=1e-3)
  ddim = sampling.ddim_sample(jax.random.key(0), sde, gaussian.score_fn(sde), x_T, ts=ts,
                              eta=1.0).x
  ddpm = sampling.pc_sample(jax.random.key(0), sde, gaussian.score_fn(sde), x_T, ts=ts,
                            predictor='ancestral_sampling', corrector='none').x
  for x in (ddim, ddpm):
    np.testing.assert_allclose(x.mean(0), gaussian.means[0], atol=0.02)
    np.testing.assert_allclose(x.std(0), gaussian.stds[0], rtol=0.04)
  np.testing.assert_allclose(ddim.std(0), ddpm.std(0), rtol=0.04)


def test_ddim_with_eta_0_and_many_steps_is_the_probability_flow_endpoint(gmm):
  sde = get_sde('vpsde')
  x_T = _x_T(sde, 256)
  ts = schedules.logsnr(sde, 1000, eps=1e-3)
  ddim = sampling.ddim_sample(None, sde, gmm.score_fn(sde), x_T, ts=ts).x
  flow = sampling.ode_sample(None, sde, gmm.score_fn(sde), x_T, ts=ts, rtol=1e-7, atol=1e-7).x
  assert float(jnp.sqrt(jnp.mean((ddim - flow) ** 2))) < 5e-3  # first order: ~2e-3


def test_dpm_solver_pp_order_1_and_unipc_order_1_predictor_are_ddim(gmm):
  sde = get_sde('vesde')
  x_T = _x_T(sde, 64)
  ts = schedules.karras(sde, 12, eps=1e-3)
  ddim = sampling.ddim_sample(None, sde, gmm.score_fn(sde), x_T, ts=ts).x
  dpm = sampling.dpm_solver_pp_sample(None, sde, gmm.score_fn(sde), x_T, ts=ts, order=1).x
  np.testing.assert_allclose(dpm, ddim, rtol=1e-5, atol=1e-5)


def test_ode_maps_the_prior_onto_the_data_deterministically(gmm):
  sde = get_sde('vpsde')
  x_T = _x_T(sde, 64)
  ts = schedules.uniform(sde, 2, eps=1e-3)
  first = sampling.ode_sample(jax.random.key(2), sde, gmm.score_fn(sde), x_T, ts=ts).x
  second = sampling.ode_sample(jax.random.key(3), sde, gmm.score_fn(sde), x_T, ts=ts).x
  np.testing.assert_allclose(first, second, rtol=1e-6)


def test_samples_do_not_depend_on_the_batch_they_are_drawn_in(gmm):
  sde = get_sde('vesde')
  sample = functools.partial(sampling.sample, 'dpm_solver_pp_sde', jax.random.key(5), sde,
                             gmm.score_fn(sde), n_steps=10, schedule='karras')
  x_T = _x_T(sde, 12)
  np.testing.assert_allclose(sample(x_T[:4]).x, sample(x_T).x[:4], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('method', ['pc', 'ddim', 'dpm_solver_pp', 'unipc', 'edm_heun'])
def test_samplers_compile_to_one_loop(gmm, method):
  def n_equations(n_steps):
    sde = get_sde('vpsde')
    jaxpr = jax.make_jaxpr(lambda r, x: sampling.sample(
        method, r, sde, gmm.score_fn(sde), x, n_steps=n_steps).x)(
            jax.random.key(0), jnp.zeros((4, 2)))
    return len(jaxpr.eqns), str(jaxpr).count('scan[') + str(jaxpr).count('while[')

  assert n_equations(10) == n_equations(1000)
  assert n_equations(10)[1] >= 1


@pytest.mark.parametrize('name', ALL_SDES)
def test_schedules_run_from_T_to_eps_and_end_at_sigma_zero(name):
  sde = get_sde(name)
  for schedule in sampling.SCHEDULES:
    ts = np.asarray(schedules.SCHEDULES[schedule](sde, 9, eps=1e-3))
    assert ts.shape == (10,) and ts[0] == sde.T and np.isclose(ts[-2], 1e-3, rtol=1e-6)
    assert np.all(np.diff(ts) < 0), (schedule, ts)
    assert float(sde.std(jnp.asarray(ts[-1]))) == 0.0
  sigma = lambda t: sde.std(t) / sde.alpha(t)  # noqa: E731
  karras = schedules.karras(sde, 9, eps=1e-3, rho=7.0)[:-1]
  s_max, s_min = float(sigma(jnp.asarray(1.0))), float(sigma(jnp.asarray(1e-3)))
  expected = (s_max ** (1 / 7) + np.linspace(0, 1, 9) * (s_min ** (1 / 7) - s_max ** (1 / 7))) ** 7
  np.testing.assert_allclose(sigma(karras), expected, rtol=2e-4)
  lam = sde.log_snr(schedules.logsnr(sde, 9, eps=1e-3)[:-1])
  np.testing.assert_allclose(np.diff(lam), np.diff(lam)[0], rtol=2e-3)
  quadratic = schedules.quadratic(sde, 9, eps=1e-3)[:-1]
  np.testing.assert_allclose(np.diff(np.sqrt(quadratic)), np.diff(np.sqrt(quadratic))[0],
                             rtol=1e-4)


@pytest.mark.parametrize('kwargs, message', [
    ({'method': 'leapfrog'}, "unknown sampler 'leapfrog'; known: ['ddim', 'dpm_solver_pp'"),
    ({'method': 'unipc', 'order': 4}, 'order must be one of [1, 2, 3], got 4'),
    ({'n_steps': 0}, 'n_steps must be a positive integer, got 0'),
    ({'schedule': 'cosine'}, "unknown schedule 'cosine'; known: ['karras', 'logsnr'"),
    ({'method': 'pc', 'schedule': 'karras'},
     "schedule 'karras' does not fit sampler 'pc'; allowed: ['uniform']"),
    ({'method': 'ode', 'schedule': 'logsnr'},
     "schedule 'logsnr' does not fit sampler 'ode' (ODE solver 'dopri5'); allowed: ['uniform']"),
    ({'method': 'ode', 'solver': 'rk4'}, "unknown ODE method 'rk4'; known: ['dopri5', 'euler'"),
    # Its grid [T, 0] would leave the adaptive solve nothing: the denoiser of x_T alone.
    ({'method': 'ode', 'n_steps': 1}, 'ode solves from T to eps, then denoises: n_steps must '
                                      'be at least 2, got 1 (one step is ddim with n_steps=1)'),
    ({'method': 'pc', 'predictor': 'leapfrog'}, "unknown predictor 'leapfrog'"),
    ({'method': 'pc', 'corrector': 'hmc'}, "unknown corrector 'hmc'; known: ['ald', 'langevin'"),
    ({'method': 'pc', 'corrector_steps': 0}, 'corrector_steps must be a positive integer'),
    ({'method': 'pc', 'n_steps': 1}, 'pc needs at least 2 levels'),
    ({'method': 'pc', 'predictor': 'ancestral_sampling', 'probability_flow': True},
     'no probability-flow form'),
    ({'method': 'ddim', 'eta': 1.5}, 'eta must lie in [0, 1], got 1.5'),
    ({'method': 'edm_heun', 's_churn': -1.0}, 'need s_churn >= 0'),
    ({'eps': 0.0}, 'eps must lie in [0, T=1.0) with a noise std > 0 there, got 0.0'),
    ({'n_frames': 1}, 'n_frames must be 0 (no trajectory) or an integer >= 2, got 1'),
])
def test_bad_sampler_input_names_the_value_and_the_allowed_ones(gmm, kwargs, message):
  sde = get_sde('vpsde', N=10)
  kwargs = {'method': 'ddim', 'n_steps': 5, **kwargs}
  with pytest.raises(ValueError) as error:
    sampling.sample(kwargs.pop('method'), jax.random.key(0), sde, gmm.score_fn(sde),
                    jnp.zeros((4, 2)), **kwargs)
  assert message in str(error.value)


def test_ve_may_end_at_sigma_min(gmm):
  # VE's sigma(0) = sigma_min > 0 (EDM's 0.002): eps = 0 is a valid last time.
  sde = get_sde('vesde', sigma_min=0.002, sigma_max=80.0)
  ts = schedules.karras(sde, 10, eps=0.0)
  assert float(sde.std(ts[-2])) == pytest.approx(0.002) and ts[-1] == -jnp.inf
  out = sampling.sample('edm_heun', None, sde, gmm.score_fn(sde), _x_T(sde, 16), n_steps=10,
                        schedule='karras', eps=0.0)
  assert np.all(np.isfinite(out.x))


@pytest.mark.parametrize('method, options, schedule', [
    ('pc', {}, 'uniform'), ('ode', {}, 'uniform'), ('ode', {'solver': 'heun'}, 'karras'),
    ('dpm_solver_pp', {'order': 3}, 'logsnr'), ('unipc', {}, 'logsnr'),
    ('edm_heun', {}, 'karras'), ('ddim', {}, 'logsnr')])
@pytest.mark.parametrize('name', ['vpsde', 'vesde'])
def test_trajectory_frames_follow_the_diffused_marginals(name, method, options, schedule):
  # From a Gaussian, every intermediate state x(t) of an exact-score sampler is
  # distributed as N(alpha(t) mu, alpha(t)^2 s^2 + std(t)^2).
  gaussian = toy.GaussianMixture(np.array([[1.5, -1.0]]), np.array([[0.5, 0.3]]), np.ones(1))
  sde = get_sde(name)
  n_steps = {'pc': 200, 'ddim': 160}.get(method, 40)  # first order: more steps
  x_T = _x_T(sde, 4000)
  run = jax.jit(lambda rng, n_frames: sampling.sample(
      method, rng, sde, gaussian.score_fn(sde), x_T, n_steps=n_steps, schedule=schedule,
      n_frames=n_frames, **options), static_argnums=1)
  out = run(jax.random.key(0), 6)
  trajectory = out.trajectory
  assert trajectory.x.shape == (6, 4000, 2) and trajectory.t.shape == (6,)
  np.testing.assert_allclose(run(jax.random.key(0), 0).x, out.x, rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(trajectory.x[0], x_T)
  np.testing.assert_array_equal(trajectory.x[-1], out.x)
  assert trajectory.t[0] == sde.T and trajectory.t[-1] == sde.t_from_log_snr(jnp.inf)
  assert np.all(np.diff(trajectory.t) < 0)
  for t, frame in zip(trajectory.t[1:], trajectory.x[1:]):  # x_T: the prior, not p_T
    marginal = gaussian.marginal(sde, float(t))
    np.testing.assert_allclose(frame.mean(0), marginal.means[0], atol=0.07 * marginal.stds.max())
    np.testing.assert_allclose(frame.std(0), marginal.stds[0], rtol=0.04)


def test_more_frames_than_steps_repeat_states():
  sde = get_sde('vesde')
  out = sampling.sample('ddim', None, sde, lambda x, t: -x, jnp.ones((2, 2)), n_steps=2,
                        n_frames=5)
  assert out.trajectory.x.shape == (5, 2, 2)
  np.testing.assert_array_equal(out.trajectory.x[-1], out.x)
  assert np.all(np.asarray(out.trajectory.x[:-1]) != 0)


@pytest.mark.parametrize('method, options', [('dpm_solver_pp', {'order': 3}), ('unipc', {}),
                                             ('edm_heun', {}), ('ddim', {})])
def test_samplers_are_differentiable_in_their_grid(gmm, method, options):
  sde = get_sde('vesde')
  x_T = _x_T(sde, 16)
  ts = schedules.karras(sde, 6, eps=1e-3)
  grad = jax.grad(lambda inner: jnp.sum(sampling.SAMPLERS[method](
      None, sde, gmm.score_fn(sde), x_T, ts=ts.at[1:-2].set(inner), **options).x ** 2))(
          ts[1:-2])
  assert np.all(np.isfinite(grad)) and np.any(grad != 0)


def test_a_fitted_grid_beats_the_grid_it_starts_from_on_new_draws(gmm):
  sde = get_sde('vpsde')
  score_fn = gmm.score_fn(sde)

  def draws(seed):
    x_T = _x_T(sde, 512, seed=seed)
    reference = sampling.ode_sample(None, sde, score_fn, x_T, ts=schedules.uniform(sde, 2, eps=1e-3),
                                    rtol=1e-6, atol=1e-6).x
    return x_T, reference

  start = schedules.uniform(sde, 5, eps=1e-3)
  fitted = schedules.fit(sampling.ddim_sample, sde, score_fn, *draws(7), start, steps=60)
  assert fitted[0] == start[0] and fitted[-2] == start[-2] and fitted[-1] == start[-1]
  assert np.all(np.diff(fitted) < 0)
  x_T, reference = draws(8)
  error = lambda ts: float(jnp.mean(  # noqa: E731
      (sampling.ddim_sample(None, sde, score_fn, x_T, ts=ts).x - reference) ** 2))
  assert error(fitted) < 0.8 * error(start)  # 0.129 against 0.191
