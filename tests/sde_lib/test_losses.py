import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sde_lib import get_sde, losses, toy, vlb
from sde_lib.parameterization import Parameterization

ALL_SDES = ['vpsde', 'subvpsde', 'vesde']
SCALE = 0.5  # data ~ N(0, SCALE^2 I): every loss has a closed-form minimum.
GAUSSIAN = toy.GaussianMixture(np.zeros((1, 3)), SCALE, np.ones(1))


def _mean_and_error(loss_fn, n_batches=200):
  """Loss averaged over independent batches, with 5 standard errors."""
  values = np.asarray(jax.jit(jax.vmap(loss_fn))(jax.random.split(jax.random.key(0), n_batches)))
  return values.mean(), 5 * values.std() / np.sqrt(n_batches)


def _batch(rng, n=500):
  return GAUSSIAN.sample(jax.random.fold_in(rng, 1), n)


@pytest.mark.parametrize('name', ALL_SDES)
@pytest.mark.parametrize('weighting', losses.WEIGHTINGS)
def test_dsm_loss_at_the_exact_score_equals_its_closed_form(name, weighting):
  sde = get_sde(name)
  eps = 1e-2 if weighting == 'likelihood' else 1e-5  # g^2/std^2 ~ 1/t: heavy-tailed at t -> 0
  score_fn = GAUSSIAN.score_fn(sde)
  mean, error = _mean_and_error(lambda rng: losses.dsm_loss(
      rng, score_fn, _batch(rng), sde=sde, weighting=weighting, eps=eps))
  # With x_t = m x_0 + std z and the exact score, E (std score + z)^2 per dimension
  # is the posterior variance of z: m^2 s^2 / (m^2 s^2 + std^2).
  t = np.linspace(eps, 1.0, 200_001)
  m, std = (np.asarray(v, np.float64) for v in sde.marginal_prob(jnp.ones((t.size, 1)), t))
  m = m[:, 0]
  per_dim = m**2 * SCALE**2 / (m**2 * SCALE**2 + std**2)
  if weighting == 'likelihood':
    per_dim = per_dim * np.asarray(sde.sde(jnp.zeros((t.size, 1)), t)[1], np.float64) ** 2 / std**2
  elif weighting == 'v':
    per_dim = per_dim * ((m**2 + std**2) / m) ** 2
  assert mean == pytest.approx(np.trapezoid(per_dim, t) / (1.0 - eps), abs=error)


def test_ddpm_loss_at_the_exact_score_equals_its_closed_form():
  sde = get_sde('vpsde')
  alphas_cumprod = sde.alphas_cumprod
  variances = alphas_cumprod * SCALE**2 + 1 - alphas_cumprod
  score_fn = lambda x, t: -x / jnp.asarray(variances, x.dtype)[sde.timestep(t)][:, None]
  mean, error = _mean_and_error(lambda rng: losses.ddpm_loss(rng, score_fn, _batch(rng), sde=sde))
  assert mean == pytest.approx(np.mean(alphas_cumprod * SCALE**2 / variances), abs=error)


def test_smld_loss_at_the_exact_score_equals_its_closed_form():
  sde = get_sde('vesde')
  variances = SCALE**2 + sde.discrete_sigmas**2
  score_fn = lambda x, t: -x / jnp.asarray(variances, x.dtype)[sde.timestep(t)][:, None]
  mean, error = _mean_and_error(lambda rng: losses.smld_loss(rng, score_fn, _batch(rng), sde=sde))
  # Summed over the 3 dimensions (reduce_mean=False, as in NCSN).
  assert mean == pytest.approx(3 * np.mean(SCALE**2 / variances), abs=error)


def _perturbations(score_fn):
  return {
      'scaled': lambda x, t: 1.2 * score_fn(x, t),
      'shifted': lambda x, t: score_fn(x, t) + 0.3,
      'gaussian': lambda x, t: -x,
  }


@pytest.mark.parametrize('name', ALL_SDES)
@pytest.mark.parametrize('weighting', losses.WEIGHTINGS)
def test_dsm_loss_is_lowest_at_the_exact_score(gmm, name, weighting):
  sde = get_sde(name)
  batch = gmm.sample(jax.random.key(0), 4096)
  loss = functools.partial(losses.dsm_loss, jax.random.key(1), batch=batch, sde=sde,
                           weighting=weighting)
  exact = loss(gmm.score_fn(sde))
  for label, perturbed in _perturbations(gmm.score_fn(sde)).items():
    assert exact < loss(perturbed), label


def test_dsm_gradient_vanishes_at_the_exact_score():
  sde = get_sde('vpsde')
  batch = GAUSSIAN.sample(jax.random.key(0), 20_000)

  def loss(theta):  # the score family theta * exact score; theta = 1 is exact
    return losses.dsm_loss(jax.random.key(1), lambda x, t: theta * GAUSSIAN.score_fn(sde)(x, t),
                           batch, sde=sde)

  grad = jax.grad(loss)
  assert float(grad(0.8)) < 0 < float(grad(1.2))
  assert abs(float(grad(1.0))) < 0.05 * abs(float(grad(0.8)))


@pytest.mark.parametrize('loss_fn, name', [(losses.ddpm_loss, 'vesde'),
                                           (losses.smld_loss, 'vpsde')])
def test_discrete_losses_reject_the_wrong_sde(loss_fn, name):
  with pytest.raises(ValueError, match='needs a'):
    loss_fn(jax.random.key(0), lambda x, t: x, jnp.zeros((2, 3)), sde=get_sde(name))


@pytest.mark.parametrize('loss_fn, name', [(losses.dsm_loss, 'vpsde'), (losses.ddpm_loss, 'vpsde'),
                                           (losses.smld_loss, 'vesde')])
def test_weights_average_over_the_weighted_examples_only(loss_fn, name):
  sde = get_sde(name)
  loss = functools.partial(loss_fn, jax.random.key(0), GAUSSIAN.score_fn(sde), sde=sde)
  batch = _batch(jax.random.key(1), 8)
  mask = jnp.arange(8) < 5
  padded = jnp.where(mask[:, None], batch, 1e3)  # what padding holds must not matter
  np.testing.assert_allclose(loss(padded, weights=mask.astype(jnp.float32)),
                             loss(batch, weights=mask.astype(jnp.float32)), rtol=1e-6)
  np.testing.assert_allclose(loss(batch, weights=jnp.full(8, 2.0)), loss(batch), rtol=1e-6)
  per_example = [loss(batch, weights=jnp.eye(8)[i]) for i in range(8)]
  np.testing.assert_allclose(loss(batch, weights=mask.astype(jnp.float32)),
                             np.mean(per_example[:5]), rtol=1e-5)


def _labelled_draws(gmm, n, seed=0):
  k_rng, z_rng = jax.random.split(jax.random.key(seed))
  y = jax.random.choice(k_rng, len(gmm.weights), (n,), p=jnp.asarray(gmm.weights))
  x = jnp.asarray(gmm.means)[y] + jnp.asarray(gmm.stds)[y] * jax.random.normal(z_rng, (n, 2))
  return x, y


def test_classifier_loss_of_a_constant_classifier_is_the_label_cross_entropy(gmm):
  # Logits that ignore x_t: the loss is -log w_y averaged over the (weighted) examples.
  x, y = _labelled_draws(gmm, 64)
  prior = jnp.log(jnp.asarray(gmm.weights, jnp.float32))
  logits_fn = lambda x, t: jnp.broadcast_to(prior + 3.0, (x.shape[0], 3))
  weights = jnp.arange(64) % 2
  for w in (None, weights):
    loss = losses.classifier_loss(jax.random.key(1), logits_fn, x, y, sde=get_sde('vpsde'),
                                  weights=w)
    terms = -np.log(gmm.weights)[np.asarray(y)]
    expected = terms.mean() if w is None else (terms * weights).sum() / weights.sum()
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


@pytest.mark.parametrize('name', ['vpsde', 'vesde'])
def test_classifier_loss_is_lowest_at_the_exact_posterior(gmm, name):
  # A proper scoring rule: shifting the exact posterior's logits by any bias raises the
  # expected loss, and its gradient in the bias vanishes (Monte Carlo, common noise).
  sde = get_sde(name)
  x, y = _labelled_draws(gmm, 20_000)
  log_posterior = gmm.class_log_prob_fn(sde)
  exact = lambda x, t: jnp.stack([log_posterior(x, t, jnp.full(x.shape[:1], k))
                                  for k in range(3)], -1)
  loss_at = jax.jit(lambda bias: losses.classifier_loss(
      jax.random.key(1), lambda x, t: exact(x, t) + bias, x, y, sde=sde))
  zero = jnp.zeros(3)
  assert float(jnp.max(jnp.abs(jax.grad(loss_at)(zero)))) < 0.02
  for bias in ([0.5, 0.0, 0.0], [0.0, -0.5, 0.0], [0.0, 0.3, -0.3]):
    assert float(loss_at(jnp.asarray(bias))) > float(loss_at(zero)) + 1e-3


def _learned_variance_net(params):
  """A toy eps network with learned variances: output [B, 2D] = [a x + b, v + w x]."""
  return lambda x, c: jnp.concatenate([params['a'] * x + params['b'],
                                       params['v'] + params['w'] * x], axis=-1)


LEARNED = Parameterization('eps', 'ddpm_index', learned_variance=True)
PARAMS = {'a': 0.3, 'b': -0.1, 'v': 0.2, 'w': 0.05}


def test_hybrid_loss_trains_the_mean_on_ddpm_loss_alone_and_the_variance_on_the_bound():
  sde = get_sde('vpsde', N=100)
  # 8-bit data in [-1, 1]: the decoder at level 0 is the discretised Gaussian.
  batch = jnp.clip(jnp.round((_batch(jax.random.key(0), 256) + 1) * 127.5) / 127.5 - 1, -1, 1)
  rng = jax.random.key(1)

  def hybrid(params, vlb_weight=1e-3):
    return losses.hybrid_loss(rng, LEARNED.score_and_v_fn(sde, _learned_variance_net(params)),
                              batch, sde=sde, levels=256, centered=True, vlb_weight=vlb_weight)

  def ddpm(params):
    return losses.ddpm_loss(rng, LEARNED.score_fn(sde, _learned_variance_net(params)), batch,
                            sde=sde)

  assert float(hybrid(PARAMS, 0.0)) == float(ddpm(PARAMS))
  # lambda = 1 rather than 0.001: any of the bound's gradient leaking into the mean shows.
  grad_hybrid = jax.grad(lambda p: hybrid(p, 1.0))(PARAMS)
  grad_ddpm = jax.grad(ddpm)(PARAMS)
  for name in ('a', 'b'):  # the mean: the bound's gradient is stopped
    np.testing.assert_allclose(grad_hybrid[name], grad_ddpm[name], rtol=1e-6)
  for name in ('v', 'w'):  # the variance: the bound alone moves it
    assert float(grad_ddpm[name]) == 0.0 and abs(float(grad_hybrid[name])) > 1e-3
  assert float(hybrid(PARAMS)) != float(ddpm(PARAMS))


def test_hybrid_loss_bound_part_is_the_bound_less_its_prior_in_expectation():
  # L_hybrid - L_simple = lambda N L_i at a uniform level i: with lambda = 1 its
  # expectation is the sum of the bound's terms, decoder and KLs, as vlb.bits_per_dim
  # measures them. A cosine N = 10 keeps N L_0 from dominating the variance.
  sde = get_sde('vpsde', schedule='cosine', N=10)
  exact_score = GAUSSIAN.score_fn(sde, discrete=True)
  score_and_v = lambda x, t: (exact_score(x, t), jnp.full_like(x, 0.3))

  def difference(rng, reduce_mean=True):
    batch = _batch(rng)
    return (losses.hybrid_loss(rng, score_and_v, batch, sde=sde, levels=None, centered=False,
                               vlb_weight=1.0, reduce_mean=reduce_mean)
            - losses.ddpm_loss(rng, exact_score, batch, sde=sde, reduce_mean=reduce_mean))

  mean, error = _mean_and_error(difference)
  x0 = _batch(jax.random.key(2), 100_000)
  bound = jax.jit(lambda rng, x: vlb.bits_per_dim(
      rng, sde, vlb.learned_range_kernel(sde, score_and_v), x, levels=None,
      centered=False))(jax.random.key(3), x0)
  terms = np.asarray(bound.decoder + bound.kl, np.float64)
  assert mean == pytest.approx(terms.mean(), abs=error + 5 * terms.std() / np.sqrt(terms.size))
  # Summed over the 3 dimensions, the bound's part is in bits: 3 times as large.
  rng = jax.random.key(4)
  np.testing.assert_allclose(difference(rng, reduce_mean=False), 3 * difference(rng), rtol=1e-4)


def test_hybrid_loss_refuses_other_sdes():
  with pytest.raises(ValueError, match='hybrid_loss needs a VPSDE, got VESDE'):
    losses.hybrid_loss(jax.random.key(0), lambda x, t: (x, x), jnp.zeros((2, 3)),
                       sde=get_sde('vesde'), levels=None, centered=False)
