import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sde_lib import get_sde, sampling, toy

ALL_SDES = ['vpsde', 'subvpsde', 'vesde']
COMBINATIONS = [(p, c) for p in sampling.PREDICTORS for c in sampling.CORRECTORS
                if (p, c) != ('none', 'none')]


def assert_recovers_mixture(gmm, x, *, weight_tol, mean_tol, std_rtol):
  weights, means, variances = gmm.mode_statistics(x)
  np.testing.assert_allclose(weights, gmm.weights, atol=weight_tol, err_msg='mode weights')
  np.testing.assert_allclose(means, gmm.means, atol=mean_tol, err_msg='mode means')
  np.testing.assert_allclose(np.sqrt(variances), gmm.stds, rtol=std_rtol, err_msg='mode stds')


@pytest.mark.parametrize('name', ALL_SDES)
@pytest.mark.parametrize('predictor, corrector', COMBINATIONS)
def test_pc_sampler_recovers_the_mixture(gmm, name, predictor, corrector):
  sde = get_sde(name, N=100)
  # Corrector-only sampling needs several Langevin steps per level to equilibrate,
  # and annealed Langevin a larger step, tied as it is to the small sub-VP std.
  n_steps = 1 if predictor != 'none' else 20
  snr = 0.5 if (predictor, corrector) == ('none', 'ald') else 0.16
  sample = jax.jit(functools.partial(
      sampling.pc_sample, sde=sde, score_fn=gmm.score_fn(sde), shape=(2000, 2),
      predictor=predictor, corrector=corrector, n_steps=n_steps, snr=snr))
  x, nfe = sample(jax.random.key(0))
  assert nfe == 100 * ((predictor != 'none') + n_steps * (corrector != 'none'))
  assert_recovers_mixture(gmm, x, weight_tol=0.05, mean_tol=0.15, std_rtol=0.2)


@pytest.mark.parametrize('name', ALL_SDES)
@pytest.mark.parametrize('method', ['dopri5', 'tsit5'])
def test_ode_sampler_recovers_the_mixture(gmm, name, method):
  sde = get_sde(name)
  x, _ = sampling.ode_sample(jax.random.key(0), sde, gmm.score_fn(sde), (2000, 2),
                             method=method)
  assert_recovers_mixture(gmm, x, weight_tol=0.04, mean_tol=0.06, std_rtol=0.1)


def test_ode_maps_the_prior_onto_the_data_deterministically(gmm):
  sde = get_sde('vpsde')
  x_T = sde.prior_sampling(jax.random.key(1), (64, 2))
  first, _ = sampling.ode_sample(jax.random.key(2), sde, gmm.score_fn(sde), (64, 2), x_T=x_T)
  second, _ = sampling.ode_sample(jax.random.key(3), sde, gmm.score_fn(sde), (64, 2), x_T=x_T)
  np.testing.assert_allclose(first, second, rtol=1e-6)


@pytest.mark.parametrize('name', ALL_SDES)
@pytest.mark.parametrize('method, order', [('euler', 1), ('heun', 2)])
def test_fixed_step_solvers_converge_at_their_order(name, method, order):
  # One anisotropic Gaussian: a mixture's trajectories near the boundary between
  # modes keep the error pre-asymptotic until very small steps.
  gaussian = toy.GaussianMixture(np.array([[1.0, -1.0]]), np.array([[0.3, 0.6]]), np.ones(1))
  steps = [32, 64, 128, 256]
  with jax.enable_x64(True):
    sde = get_sde(name)
    x_T = sde.prior_sampling(jax.random.key(0), (32, 2)).astype(jnp.float64)
    solve = functools.partial(sampling.ode_sample, jax.random.key(0), sde,
                              gaussian.score_fn(sde), (32, 2), x_T=x_T)
    reference, _ = solve(method='dopri5', rtol=1e-10, atol=1e-10)
    errors = [float(jnp.sqrt(jnp.mean((solve(method=method, n_steps=n)[0] - reference) ** 2)))
              for n in steps]
  measured = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
  assert abs(measured - order) < 0.4, (errors, measured)


@pytest.mark.parametrize('method', ['dopri5', 'tsit5', 'heun', 'euler'])
def test_ode_nfe_counts_score_evaluations(gmm, method):
  sde = get_sde('vesde')
  calls = []

  def counted_score(x, t):
    jax.debug.callback(lambda: calls.append(1))
    return gmm.score_fn(sde)(x, t)

  _, nfe = sampling.ode_sample(jax.random.key(0), sde, counted_score, (8, 2), method=method,
                               n_steps=20, denoise=True)
  jax.effects_barrier()
  assert int(nfe) == len(calls)


def test_samples_do_not_depend_on_the_batch_they_are_drawn_in(gmm):
  sde = get_sde('vesde', N=50)
  sample = functools.partial(sampling.pc_sample, jax.random.key(5), sde, gmm.score_fn(sde),
                             predictor='ancestral_sampling', corrector='ald')
  small, _ = sample((4, 2))
  large, _ = sample((12, 2))
  np.testing.assert_allclose(small, large[:4], rtol=1e-6)


def test_pc_sampler_compiles_to_one_loop(gmm):
  def n_equations(n_levels):
    sde = get_sde('vpsde', N=n_levels)
    jaxpr = jax.make_jaxpr(lambda r: sampling.pc_sample(r, sde, gmm.score_fn(sde), (4, 2))[0])(
        jax.random.key(0))
    return len(jaxpr.eqns), str(jaxpr).count('scan[') + str(jaxpr).count('while[')

  assert n_equations(10) == n_equations(1000)
  assert n_equations(10)[1] >= 1


@pytest.mark.parametrize('kwargs, message', [
    ({'predictor': 'leapfrog'}, "unknown predictor 'leapfrog'; known: ['ancestral_sampling'"),
    ({'corrector': 'hmc'}, "unknown corrector 'hmc'; known: ['ald', 'langevin', 'none']"),
    ({'n_steps': 0}, 'n_steps must be a positive integer, got 0'),
    ({'eps': 0.0}, 'eps must lie in (0, T=1.0), got 0.0'),
    ({'x_T': jnp.zeros((3, 2))}, 'x_T has shape (3, 2) but shape is (4, 2)'),
    ({'predictor': 'ancestral_sampling', 'probability_flow': True}, 'no probability-flow form'),
])
def test_pc_sampler_bad_input(gmm, kwargs, message):
  sde = get_sde('vpsde', N=10)
  with pytest.raises(ValueError) as error:
    sampling.pc_sample(jax.random.key(0), sde, gmm.score_fn(sde), (4, 2), **kwargs)
  assert message in str(error.value)


@pytest.mark.parametrize('kwargs, message', [
    ({'method': 'rk4'}, "unknown ODE method 'rk4'; known: ['dopri5', 'euler', 'heun', 'tsit5']"),
    ({'x_T': jnp.zeros((4, 3))}, 'x_T has shape (4, 3) but shape is (4, 2)'),
    ({'eps': 2.0}, 'eps must lie in (0, T=1.0), got 2.0'),
])
def test_ode_sampler_bad_input(gmm, kwargs, message):
  sde = get_sde('vpsde')
  with pytest.raises(ValueError) as error:
    sampling.ode_sample(jax.random.key(0), sde, gmm.score_fn(sde), (4, 2), **kwargs)
  assert message in str(error.value)


@pytest.mark.parametrize('method', ['pc', 'ode'])
@pytest.mark.parametrize('name', ['vpsde', 'vesde'])
def test_trajectory_frames_follow_the_diffused_marginals(name, method):
  # From a Gaussian, every intermediate state x(t) of an exact-score sampler is
  # distributed as N(m(t) mu, m(t)^2 s^2 + std(t)^2).
  gaussian = toy.GaussianMixture(np.array([[1.5, -1.0]]), np.array([[0.5, 0.3]]), np.ones(1))
  sde = get_sde(name, N=1000)
  sampler = sampling.pc_sample if method == 'pc' else sampling.ode_sample
  x_T = sde.prior_sampling(jax.random.key(1), (4000, 2))
  run = jax.jit(lambda rng, n_frames: sampler(rng, sde, gaussian.score_fn(sde), x_T.shape,
                                              x_T=x_T, n_frames=n_frames), static_argnums=1)
  x, _, trajectory = run(jax.random.key(0), 6)
  assert trajectory.x.shape == (6, 4000, 2) and trajectory.t.shape == (6,)
  np.testing.assert_allclose(run(jax.random.key(0), 0)[0], x, rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(trajectory.x[0], x_T)
  np.testing.assert_array_equal(trajectory.x[-1], x)
  assert trajectory.t[0] == sde.T and trajectory.t[-1] == (0.0 if method == 'pc' else 1e-3)
  assert np.all(np.diff(trajectory.t) < 0)
  for t, frame in zip(trajectory.t[1:], trajectory.x[1:]):  # x_T: the prior, not p_T
    marginal = gaussian.marginal(sde, float(t))
    np.testing.assert_allclose(frame.mean(0), marginal.means[0], atol=0.07 * marginal.stds.max())
    np.testing.assert_allclose(frame.std(0), marginal.stds[0], rtol=0.04)


@pytest.mark.parametrize('n_frames', [1, -2, 2.5, True])
def test_bad_frame_counts_are_refused(n_frames):
  sde = get_sde('vesde', N=10)
  with pytest.raises(ValueError, match='n_frames'):
    sampling.pc_sample(jax.random.key(0), sde, lambda x, t: -x, (2, 2), n_frames=n_frames)
