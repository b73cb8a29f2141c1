"""Inpainting and colorization by replacement, on Gaussian data whose diffused score and
whose conditionals given the known part are exact."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sde_lib
from sde_lib import controllable, sampling

N = 2000
SDES = {'vpsde': sde_lib.VPSDE(), 'vesde': sde_lib.VESDE(sigma_min=0.01, sigma_max=5.0)}


def gaussian_score(sde, mean: np.ndarray, cov: np.ndarray):
  """The exact score of N(mean, cov) over flattened images, diffused by `sde`."""
  lam, vectors = (jnp.asarray(a, jnp.float32) for a in np.linalg.eigh(cov))
  mean = jnp.asarray(mean, jnp.float32)

  def score(x, t):
    a, s = sde.alpha(t)[:, None], sde.std(t)[:, None]
    z = (x.reshape(len(x), -1) - a * mean) @ vectors
    return (-(z / (a**2 * lam + s**2)) @ vectors.T).reshape(x.shape)

  return score


def conditional(mean, cov, known: np.ndarray, values: np.ndarray):
  """Mean and covariance of the unknown coordinates given the known ones = values."""
  u = ~known
  gain = cov[np.ix_(u, known)] @ np.linalg.inv(cov[np.ix_(known, known)])
  return (mean[u] + gain @ (values - mean[known]),
          cov[np.ix_(u, u)] - gain @ cov[np.ix_(known, u)])


# Four pixels of a 2x2 image with correlation 0.5^distance (row-major), std 0.5; the top
# row is known, one standard deviation above its mean.
PIXEL_MEAN = np.array([0.2, -0.1, 0.3, 0.0])
PIXEL_COV = 0.25 * 0.5 ** np.abs(np.arange(4)[:, None] - np.arange(4)[None])
TOP_ROW = np.array([True, True, False, False])
# One RGB pixel whose grey level is mostly its red: colorization keeps the grey level.
COLOUR_MEAN = np.array([0.3, -0.2, 0.1])
COLOUR_COV = np.array([[0.30, 0.10, 0.0], [0.10, 0.10, 0.02], [0.0, 0.02, 0.05]])


def _inpainting(sde):
  y = PIXEL_MEAN + 0.5 * TOP_ROW
  replacement = controllable.inpainting(
      sde, jnp.broadcast_to(jnp.asarray(y, jnp.float32).reshape(2, 2, 1), (N, 2, 2, 1)),
      jnp.asarray(TOP_ROW.reshape(2, 2), jnp.float32))
  # In the pixel basis the coordinates are the pixels.
  return replacement, gaussian_score(sde, PIXEL_MEAN, PIXEL_COV), np.eye(4), PIXEL_MEAN, \
      PIXEL_COV, TOP_ROW, y, (N, 2, 2, 1)


def _colorization(sde):
  y = COLOUR_MEAN + 0.4
  replacement = controllable.colorization(
      sde, jnp.broadcast_to(jnp.asarray(y, jnp.float32), (N, 1, 1, 3)))
  return replacement, gaussian_score(sde, COLOUR_MEAN, COLOUR_COV), \
      controllable.grey_basis(3), COLOUR_MEAN, COLOUR_COV, np.array([True, False, False]), y, \
      (N, 1, 1, 3)


PROBLEMS = {'inpaint': _inpainting, 'colorize': _colorization}


def _solve(problem: str, sde_name: str, method: str, n_steps: int, **options):
  """(samples' coordinates [N, D], exact conditional mean and covariance of the unknown
  coordinates, their prior mean, the known mask, y's coordinates, the raw output)."""
  sde = SDES[sde_name]
  replacement, score, basis, mean, cov, known, y, shape = PROBLEMS[problem](sde)
  # In the basis, coordinates c = basis^T x are N(basis^T mean, basis^T cov basis).
  c_mean, c_cov, c_y = basis.T @ mean, basis.T @ cov @ basis, basis.T @ y
  x_T = sde.prior_sampling(jax.random.key(1), shape)
  out = jax.jit(lambda x_T: sampling.sample(method, jax.random.key(2), sde, score, x_T,
                                            n_steps=n_steps, replace=replacement,
                                            **options))(x_T)
  coords = np.asarray(replacement.paste(out.x)).reshape(N, -1) @ basis
  exact_mean, exact_cov = conditional(c_mean, c_cov, known, c_y[known])
  return coords, exact_mean, exact_cov, c_mean[~known], known, c_y, out


def test_grey_basis_is_orthonormal_with_the_grey_axis_first():
  for c in (2, 3, 4):
    basis = controllable.grey_basis(c)
    np.testing.assert_allclose(basis.T @ basis, np.eye(c), atol=1e-12)
    np.testing.assert_allclose(basis[:, 0], np.full(c, c**-0.5))
  # score_sde's colorization matrix has the same colour plane (projector onto it).
  score_sde = np.array([[5.7735014e-01, -8.1649649e-01, 4.7008697e-08],
                        [5.7735026e-01, 4.0824834e-01, 7.0710671e-01],
                        [5.7735026e-01, 4.0824822e-01, -7.0710683e-01]])
  colours = controllable.grey_basis(3)[:, 1:]
  np.testing.assert_allclose(colours @ colours.T, score_sde[:, 1:] @ score_sde[:, 1:].T,
                             atol=1e-6)
  with pytest.raises(ValueError, match='at least 2'):
    controllable.grey_basis(1)


def test_replacement_draws_the_known_part_from_the_forward_process():
  sde = SDES['vpsde']
  y = jnp.full((N, 1, 1, 3), 0.6)
  replacement = controllable.colorization(sde, y)
  x = replacement(jax.random.key(0), jnp.zeros_like(y), jnp.float32(0.5))
  coords = np.asarray(x).reshape(N, 3) @ controllable.grey_basis(3)
  grey = 0.6 * np.sqrt(3.0) * float(sde.alpha(jnp.float32(0.5)))
  assert abs(coords[:, 0].mean() - grey) < 4 * float(sde.std(jnp.float32(0.5))) / np.sqrt(N)
  np.testing.assert_allclose(coords[:, 0].std(), float(sde.std(jnp.float32(0.5))), rtol=0.05)
  np.testing.assert_allclose(coords[:, 1:], 0.0, atol=1e-6)  # the unknown part as x had it
  np.testing.assert_allclose(replacement.observed(), np.broadcast_to(0.6, y.shape), atol=1e-6)


# Every sampler family, each on a grid it fits and with few steps (the replacement's bias,
# not the solver's error, is what is measured).
SAMPLERS = [('pc', 50, {}), ('ode', 20, {'solver': 'heun'}), ('ddim', 20, {}),
            ('ddim', 20, {'eta': 1.0}), ('dpm_solver_pp', 20, {'schedule': 'logsnr'}),
            ('dpm_solver_pp_sde', 20, {'schedule': 'logsnr'}),
            ('unipc', 20, {'schedule': 'logsnr'}), ('edm_heun', 20, {'schedule': 'karras'})]


@pytest.mark.parametrize('sde_name', sorted(SDES))
@pytest.mark.parametrize('method, n_steps, options', SAMPLERS)
def test_every_sampler_keeps_the_known_pixels_and_moves_the_rest_toward_the_conditional(
    sde_name, method, n_steps, options):
  coords, exact_mean, exact_cov, prior_mean, known, c_y, out = _solve('inpaint', sde_name, method,
                                                              n_steps, **options)
  np.testing.assert_allclose(coords[:, known], np.broadcast_to(c_y[known], (N, known.sum())),
                             atol=1e-6)
  if method != 'pc':  # grids ending at sigma = 0 end on the data without the paste
    np.testing.assert_allclose(np.asarray(out.x).reshape(N, -1)[:, known],
                               np.broadcast_to(c_y[known], (N, known.sum())), atol=1e-6)
  # Replacement conditions the unknown pixels only through the score's coupling to a fresh
  # noisy copy of the known ones, so their mean moves part of the way from the prior's to
  # the exact conditional's: measured 25-39% for the deterministic samplers, 50-87% for
  # the stochastic ones (their noise lets the unknown part relax), spreads within 18%.
  # Required: at least 20% of the way (the Monte Carlo error is 4%) and stds within 25%.
  unknown = coords[:, ~known]
  shift = exact_mean - prior_mean
  moved = np.dot(unknown.mean(0) - prior_mean, shift) / np.dot(shift, shift)
  assert 0.2 < moved < 1.1, moved
  np.testing.assert_allclose(unknown.std(0), np.sqrt(np.diag(exact_cov)), rtol=0.25)


@pytest.mark.parametrize('problem', sorted(PROBLEMS))
def test_pc_with_langevin_correction_lands_near_the_exact_conditional(problem):
  # Song et al.'s inpainter and colorizer: PC on VE with a Langevin corrector. The
  # corrector lets the unknown part relax toward p_t(unknown | known) at each level, so
  # the bias of plain replacement shrinks: measured mean errors below 0.02 and covariance
  # errors below 0.02 (conditional stds 0.3-0.5). Tolerances: mean 0.06, covariance 0.04.
  coords, exact_mean, exact_cov, prior_mean, known, c_y, _ = _solve(
      problem, 'vesde', 'pc', 100, corrector_steps=1)
  np.testing.assert_allclose(coords[:, known], np.broadcast_to(c_y[known], (N, known.sum())),
                             atol=1e-6)
  assert np.max(np.abs(prior_mean - exact_mean)) > 0.15  # the known part is informative
  np.testing.assert_allclose(coords[:, ~known].mean(0), exact_mean, atol=0.06)
  np.testing.assert_allclose(np.atleast_2d(np.cov(coords[:, ~known].T)), exact_cov, atol=0.04)


def test_masks_broadcast_over_channels():
  sde = SDES['vesde']
  y = jnp.ones((2, 2, 2, 3))
  replacement = controllable.inpainting(sde, y, jnp.array([[1.0, 0.0], [0.0, 0.0]]))
  pasted = np.asarray(replacement.paste(jnp.zeros_like(y)))
  np.testing.assert_array_equal(pasted[:, 0, 0], 1.0)
  np.testing.assert_array_equal(pasted[:, 1], 0.0)
