import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sde_lib import get_sde, toy


@pytest.mark.parametrize('name, kwargs', [('vpsde', {}), ('vpsde', {'schedule': 'cosine'}),
                                          ('subvpsde', {}), ('vesde', {})],
                         ids=['vpsde', 'vpsde-cosine', 'subvpsde', 'vesde'])
@pytest.mark.parametrize('t', [1e-3, 0.3, 1.0])
def test_score_is_the_gradient_of_the_marginal_log_density(gmm, name, kwargs, t):
  sde = get_sde(name, **kwargs)
  x = 3.0 * jax.random.normal(jax.random.key(0), (16, 2))
  marginal = gmm.marginal(sde, t)
  expected = jax.vmap(jax.grad(lambda v: marginal.log_prob(v[None])[0]))(x)
  score = gmm.score_fn(sde)(x, jnp.full((16,), t))
  np.testing.assert_allclose(score, expected, rtol=1e-4, atol=1e-4)


def test_log_prob_integrates_to_one(gmm):
  grid = np.linspace(-6, 6, 601)
  xx, yy = np.meshgrid(grid, grid)
  points = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], -1))
  mass = np.exp(np.asarray(gmm.log_prob(points))).sum() * (grid[1] - grid[0]) ** 2
  assert mass == pytest.approx(1.0, abs=1e-4)


def test_sample_has_the_mixture_statistics(gmm):
  x = gmm.sample(jax.random.key(0), 20_000)
  weights, means, variances = gmm.mode_statistics(x)
  np.testing.assert_allclose(weights, gmm.weights, atol=0.015)
  np.testing.assert_allclose(means, gmm.means, atol=0.03)
  np.testing.assert_allclose(variances, gmm.stds**2, rtol=0.06)


def test_score_accepts_image_shaped_batches():
  mixture = toy.GaussianMixture(np.zeros((2, 12)), 1.0, np.ones(2))
  x = jnp.ones((3, 2, 2, 3))
  score = mixture.score_fn(get_sde('vesde'))(x, jnp.full((3,), 0.5))
  assert score.shape == x.shape


@pytest.mark.parametrize('kwargs, message', [
    ({'means': np.zeros(3), 'stds': 1.0, 'weights': np.ones(1)}, 'means must have shape [K, D]'),
    ({'means': np.zeros((2, 3)), 'stds': np.ones(3)[:2], 'weights': np.ones(2)}, 'do not broadcast'),
    ({'means': np.zeros((2, 3)), 'stds': 1.0, 'weights': np.ones(3)}, 'weights must have shape [2]'),
    ({'means': np.zeros((2, 3)), 'stds': 0.0, 'weights': np.ones(2)}, 'must be positive'),
])
def test_bad_mixture_arguments_raise(kwargs, message):
  with pytest.raises(ValueError, match=message.replace('[', r'\[').replace(']', r'\]')):
    toy.GaussianMixture(**kwargs)


def test_mode_statistics_of_an_unvisited_mode_are_empty(gmm):
  x = jnp.asarray(gmm.means[:2] + 0.01)  # one point at each of the first two modes
  weights, means, variances = gmm.mode_statistics(x)
  np.testing.assert_array_equal(weights, [0.5, 0.5, 0.0])
  np.testing.assert_allclose(means[:2], gmm.means[:2] + 0.01, rtol=1e-6)
  assert np.all(np.isnan(means[2])) and np.all(np.isnan(variances[2]))


@pytest.mark.parametrize('name, kwargs', [('vpsde', {}), ('vpsde', {'schedule': 'cosine'}),
                                          ('vesde', {})])
def test_discrete_score_is_the_score_of_the_discrete_levels_marginal(gmm, name, kwargs):
  # Level i of N = 50: x_i = alpha_i x_0 + std_i z with the levels' own alpha_i and std_i.
  sde = get_sde(name, N=50, **kwargs)
  x = 3.0 * jax.random.normal(jax.random.key(0), (3, 2))
  t = jnp.array([0.0, 10.0, 49.0]) / 49
  alpha, std = (np.asarray(v, np.float64) for v in sde.discrete_marginal(t))
  score = gmm.score_fn(sde, discrete=True)(x, t)
  for b in range(3):
    level = toy.GaussianMixture(alpha[b] * gmm.means,
                                np.sqrt((alpha[b] * gmm.stds) ** 2 + std[b] ** 2), gmm.weights)
    expected = jax.grad(lambda v: level.log_prob(v[None])[0])(x[b])
    np.testing.assert_allclose(score[b], expected, rtol=1e-4, atol=1e-4)
  if name == 'vpsde':  # VE's geometric sigmas are its continuous sigma(t) at the levels
    assert not np.allclose(score, gmm.score_fn(sde)(x, t), rtol=1e-3)
