import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sde_lib import get_sde, likelihood, toy

ALL_SDES = ['vpsde', 'subvpsde', 'vesde']
EPS = 1e-5


def _exact_bpd(gmm, sde, x, z):
  """-log2 p_eps(x) / D through the change of variables, with the model's prior at z.

  The ODE maps p_eps onto p_T exactly; the model then scores x(T) = z under the
  SDE's prior instead of p_T, so this is what the estimator should return.
  """
  logp = (gmm.marginal(sde, EPS).log_prob(x) - gmm.marginal(sde, sde.T).log_prob(z)
          + sde.prior_logp(z))
  return -np.asarray(logp) / (x.shape[1] * np.log(2))


@pytest.mark.parametrize('name', ALL_SDES)
def test_exact_trace_bits_per_dim_match_the_mixture_density(gmm, name):
  sde = get_sde(name)
  x = gmm.sample(jax.random.key(0), 16)
  bpd, z, nfe = likelihood.bits_per_dim(jax.random.key(1), sde, gmm.score_fn(sde), x,
                                        estimator='exact', eps=EPS)
  np.testing.assert_allclose(bpd, _exact_bpd(gmm, sde, x, z), atol=2e-3)
  if name != 'vesde':
    # VP's prior matches p_T; VE's N(0, 50^2) misses the data's mean shift at T
    # by ~0.02 bits/dim for this mixture, which the line above accounts for.
    np.testing.assert_allclose(bpd, -np.asarray(gmm.log_prob(x)) / (2 * np.log(2)), atol=0.01)
  assert int(nfe) > 0


@pytest.mark.parametrize('name', ALL_SDES)
@pytest.mark.parametrize('estimator', ['rademacher', 'gaussian'])
def test_hutchinson_bits_per_dim_are_unbiased(gmm, name, estimator):
  sde = get_sde(name)
  x = gmm.sample(jax.random.key(0), 512)
  bpd, z, _ = likelihood.bits_per_dim(jax.random.key(1), sde, gmm.score_fn(sde), x,
                                      estimator=estimator, eps=EPS, rtol=1e-4, atol=1e-4)
  difference = np.asarray(bpd) - _exact_bpd(gmm, sde, x, z)
  assert abs(difference.mean()) < 5 * difference.std() / np.sqrt(len(difference)) + 2e-3


@pytest.mark.parametrize('levels', [256, 17])
@pytest.mark.parametrize('centered', [True, False])
def test_dequantised_bits_per_dim_match_the_closed_form(centered, levels):
  # Model N(0, s^2 I) in model space: E_u[-log2 p(y)] / D + log2(levels) - centered is closed
  # form, with y = (x + u) / levels (or 2 (x + u) / levels - 1), u ~ U[0, 1).
  s = 0.6
  gaussian = toy.GaussianMixture(np.zeros((1, 3)), s, np.ones(1))
  sde = get_sde('vpsde')
  pixels = jax.random.randint(jax.random.key(0), (256, 3), 0, levels)
  bpd, _, _ = likelihood.bits_per_dim(jax.random.key(1), sde, gaussian.score_fn(sde), pixels,
                                      estimator='exact', eps=EPS, levels=levels,
                                      centered=centered)
  scale, shift = (2.0, 1.0) if centered else (1.0, 0.0)
  p = np.asarray(pixels, np.float64)
  mean_sq = (scale * (p + 0.5) / levels - shift) ** 2 + (scale / levels) ** 2 / 12  # E_u[y^2]
  offset = np.log2(levels) - centered
  expected = (0.5 * np.log(2 * np.pi * s**2) + mean_sq / (2 * s**2)) / np.log(2) + offset
  assert float(jnp.mean(bpd)) == pytest.approx(expected.mean(), abs=2e-3)


def test_dequantised_bits_per_dim_are_not_negative_where_grid_densities_are():
  # A model that piles its mass on three 8-bit grid points: its density at the
  # grid points is huge (negative "bits/dim", the original's bug), but the
  # dequantised data cannot gain from it.
  pixels = np.array([[10, 200], [128, 40], [60, 60]])
  grid = 2 * pixels / 256 - 1
  peaked = toy.GaussianMixture(grid, 5e-4, np.ones(3))
  sde = get_sde('vpsde')
  at_grid, _, _ = likelihood.bits_per_dim(jax.random.key(0), sde, peaked.score_fn(sde),
                                          jnp.asarray(grid, jnp.float32), estimator='exact')
  assert np.all(np.asarray(at_grid) + 7 < 0)
  dequantised, _, _ = likelihood.bits_per_dim(jax.random.key(0), sde, peaked.score_fn(sde),
                                              pixels, estimator='exact', levels=256)
  assert np.all(np.asarray(dequantised) > 0)


@pytest.mark.parametrize('kwargs, message', [
    ({'estimator': 'skilling'}, "unknown estimator 'skilling'"),
    ({'eps': 0.0}, 'eps must lie in (0, T=1.0), got 0.0'),
    ({'levels': 1}, 'levels must be an integer >= 2, got 1'),
    ({'levels': 8.0}, 'levels must be an integer >= 2, got 8.0'),
    ({'method': 'rk45'}, "unknown ODE method 'rk45'"),
])
def test_bits_per_dim_bad_input(gmm, kwargs, message):
  sde = get_sde('vpsde')
  with pytest.raises(ValueError) as error:
    likelihood.bits_per_dim(jax.random.key(0), sde, gmm.score_fn(sde), jnp.zeros((2, 2)),
                            **kwargs)
  assert message in str(error.value)
