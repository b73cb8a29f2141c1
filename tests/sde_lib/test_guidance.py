"""Guidance and conditioning transforms against a mixture whose class posteriors are exact."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sde_lib import conditioning, get_sde, guidance, likelihood, sampling, toy

ALL_SDES = ['vpsde', 'subvpsde', 'vesde']
# One sampler of each family of the registry, at ~50 evaluations.
GUIDED_SAMPLERS = [
    ('pc', {'predictor': 'reverse_diffusion', 'corrector': 'langevin'}, 25, 'uniform'),
    ('ode', {'solver': 'heun'}, 25, 'karras'), ('ddim', {}, 50, 'logsnr'),
    ('dpm_solver_pp', {'order': 2}, 50, 'logsnr'),
    ('dpm_solver_pp_sde', {'order': 2}, 50, 'logsnr'), ('unipc', {'order': 3}, 50, 'logsnr'),
    ('edm_heun', {}, 25, 'karras')]


def _points(n=16, seed=0):
  return 3.0 * jax.random.normal(jax.random.key(seed), (n, 2))


def _labels(n, k=3):
  return jnp.arange(n) % k


@pytest.mark.parametrize('name', ALL_SDES)
def test_mixture_class_scores_obey_bayes_rule(gmm, name):
  # grad log p(x | y) = grad log p(x) + grad log p(y | x): three functions, one identity.
  sde = get_sde(name)
  x, t, y = _points(), jnp.linspace(0.05, 1.0, 16), _labels(16)
  conditional = gmm.conditional_score_fn(sde)(x, t, y)
  log_posterior = gmm.class_log_prob_fn(sde)
  posterior_grad = jax.grad(lambda x: jnp.sum(log_posterior(x, t, y)))(x)
  np.testing.assert_allclose(conditional, gmm.score_fn(sde)(x, t) + posterior_grad,
                             rtol=1e-4, atol=1e-4)
  # The conditional score is component y's, diffused: a Gaussian's closed form.
  m, s = sde.alpha(t)[:, None], sde.std(t)[:, None]
  mean, std = m * gmm.means[y], np.sqrt((m * gmm.stds[y]) ** 2 + s**2)
  np.testing.assert_allclose(conditional, (mean - x) / std**2, rtol=1e-5, atol=1e-5)
  posteriors = jnp.stack([log_posterior(x, t, jnp.full((16,), k)) for k in range(3)], -1)
  np.testing.assert_allclose(jax.nn.logsumexp(posteriors, -1), 0.0, atol=1e-5)
  # The null class (K = 3) is the unconditional score.
  np.testing.assert_allclose(gmm.conditional_score_fn(sde)(x, t, jnp.full((16,), 3)),
                             gmm.score_fn(sde)(x, t), rtol=1e-6)


@pytest.mark.parametrize('name', ALL_SDES)
@pytest.mark.parametrize('scale', [0.0, 1.0, 3.0])
def test_classifier_free_guidance_equals_exact_classifier_guidance(gmm, name, scale):
  # With exact scores, score_cond - score_uncond = grad log p(y | x_t): both transforms
  # must give the same guided score at every scale.
  sde = get_sde(name)
  x, t, y = _points(), jnp.linspace(0.05, 1.0, 16), _labels(16)
  free = guidance.classifier_free(gmm.conditional_score_fn(sde), y, jnp.full_like(y, 3),
                                  scale=scale)(x, t)
  log_prob = gmm.class_log_prob_fn(sde)
  with_classifier = guidance.classifier(gmm.score_fn(sde), lambda x, t: log_prob(x, t, y),
                                        scale=scale)(x, t)
  np.testing.assert_allclose(free, with_classifier, rtol=1e-4, atol=1e-4)
  expected = {0.0: gmm.score_fn(sde)(x, t), 1.0: gmm.conditional_score_fn(sde)(x, t, y)}
  if scale in expected:  # the convention: s = 0 unconditional, s = 1 conditional
    np.testing.assert_allclose(free, expected[scale], rtol=1e-5, atol=1e-5)


def test_classifier_free_guidance_makes_one_batched_call_and_keeps_to_its_interval(gmm):
  sde = get_sde('vpsde')
  x, t, y = _points(8), jnp.linspace(0.1, 0.9, 8), _labels(8)
  calls = []

  def cond_score(x, t, labels):
    calls.append(x.shape[0])
    return gmm.conditional_score_fn(sde)(x, t, labels)

  inside = guidance.classifier_free(cond_score, y, jnp.full_like(y, 3), scale=4.0,
                                    interval=(0.3, 0.6))(x, t)
  assert calls == [16]
  guided = guidance.classifier_free(cond_score, y, jnp.full_like(y, 3), scale=4.0)(x, t)
  conditional = gmm.conditional_score_fn(sde)(x, t, y)
  in_interval = np.asarray((t >= 0.3) & (t <= 0.6))
  assert 0 < in_interval.sum() < 8
  np.testing.assert_allclose(inside[in_interval], guided[in_interval], rtol=1e-6)
  np.testing.assert_allclose(inside[~in_interval], conditional[~in_interval], rtol=1e-6)
  assert float(jnp.max(jnp.abs(guided - conditional))) > 0.1


@pytest.mark.parametrize('method, options, n_steps, schedule', GUIDED_SAMPLERS,
                         ids=[m for m, *_ in GUIDED_SAMPLERS])
@pytest.mark.parametrize('transform', ['classifier', 'classifier_free'])
def test_every_sampler_draws_the_requested_class_under_guidance_at_scale_one(
    gmm, method, options, n_steps, schedule, transform):
  # At s = 1 either transform is the exact conditional score: the draws of class y must be
  # component y, with its mean and spread, whatever the sampler.
  sde = get_sde('vpsde', N=n_steps)
  n = 1500
  y = _labels(n)
  if transform == 'classifier':
    log_prob = gmm.class_log_prob_fn(sde)
    score_fn = guidance.classifier(gmm.score_fn(sde), lambda x, t: log_prob(x, t, y), scale=1.0)
  else:
    score_fn = guidance.classifier_free(gmm.conditional_score_fn(sde), y, jnp.full_like(y, 3),
                                        scale=1.0)
  x_T = sde.prior_sampling(jax.random.key(1), (n, 2))
  out = jax.jit(lambda rng: sampling.sample(method, rng, sde, score_fn, x_T, n_steps=n_steps,
                                            schedule=schedule, **options))(jax.random.key(0))
  x, y = np.asarray(out.x), np.asarray(y)
  assert np.mean(np.asarray(gmm.assign(x)) == y) > 0.99
  for k in range(3):
    np.testing.assert_allclose(x[y == k].mean(0), gmm.means[k], atol=0.1)
    np.testing.assert_allclose(x[y == k].std(0), gmm.stds[k, 0], rtol=0.15)


def test_guidance_above_one_pushes_draws_away_from_the_other_classes(gmm):
  # s > 1 tilts towards p(x) p(y | x)^s: for component 2 at (2, -2), whose neighbours sit at
  # (-2, -2) and (2, 2), the draws move to larger x_0 and smaller x_1, and further from
  # both neighbours, than the s = 1 draws of the component itself.
  sde = get_sde('vpsde')
  n = 1000
  y = jnp.full((n,), 2)
  log_prob = gmm.class_log_prob_fn(sde)
  x_T = sde.prior_sampling(jax.random.key(1), (n, 2))
  draws = {}
  for scale in (1.0, 4.0):
    score_fn = guidance.classifier(gmm.score_fn(sde), lambda x, t: log_prob(x, t, y), scale=scale)
    draws[scale] = np.asarray(sampling.sample('dpm_solver_pp', None, sde, score_fn, x_T,
                                              n_steps=30, schedule='logsnr', order=2).x)
    assert np.mean(np.asarray(gmm.assign(draws[scale])) == 2) > 0.99
  shift = draws[4.0].mean(0) - draws[1.0].mean(0)
  assert shift[0] > 0.05 and shift[1] < -0.05
  nearest = lambda x: np.min(np.linalg.norm(x[:, None] - gmm.means[None, :2], axis=-1), axis=1)
  assert nearest(draws[4.0]).mean() > nearest(draws[1.0]).mean() + 0.1


@pytest.mark.parametrize('name', ['vpsde', 'vesde'])
def test_likelihood_of_the_conditional_score_is_the_class_density(gmm, name):
  # The probability-flow ODE of the guided score at s = 1 transports component y, so
  # bits/dim are -log2 N(x; mu_y, s_y^2) / D up to the prior's mismatch at T.
  sde = get_sde(name)
  y = jnp.full((16,), 1)
  x = gmm.means[1] + gmm.stds[1] * jax.random.normal(jax.random.key(0), (16, 2))
  score_fn = guidance.classifier_free(gmm.conditional_score_fn(sde), y, jnp.full_like(y, 3),
                                      scale=1.0)
  bpd, z, _ = likelihood.bits_per_dim(jax.random.key(1), sde, score_fn, x, estimator='exact',
                                      eps=1e-5)
  component = toy.GaussianMixture(gmm.means[1:2], gmm.stds[1:2], np.ones(1))
  logp = (component.marginal(sde, 1e-5).log_prob(x) - component.marginal(sde, sde.T).log_prob(z)
          + sde.prior_logp(z))
  np.testing.assert_allclose(bpd, -np.asarray(logp) / (2 * np.log(2)), atol=2e-3)


def test_label_dropout_rate_and_per_example_draws():
  labels = jnp.arange(20_000) % 10
  rng = jax.random.key(3)
  dropped = conditioning.drop_labels(rng, labels, num_classes=10, rate=0.15)
  is_null = np.asarray(dropped == 10)
  assert abs(is_null.mean() - 0.15) < 5 * np.sqrt(0.15 * 0.85 / 20_000)
  np.testing.assert_array_equal(np.asarray(dropped)[~is_null], np.asarray(labels)[~is_null])
  # Example i's draw depends on i alone: a slice of the batch drops the same examples.
  np.testing.assert_array_equal(conditioning.drop_labels(rng, labels[:100], num_classes=10,
                                                         rate=0.15), dropped[:100])
  np.testing.assert_array_equal(conditioning.drop_labels(rng, labels, num_classes=10, rate=0.0),
                                labels)
  assert bool(jnp.all(conditioning.drop_labels(rng, labels, num_classes=10, rate=1.0) == 10))


def test_drop_replaces_whole_conditions_of_a_pytree():
  cond = {'label': jnp.arange(64) % 5, 'tokens': jnp.ones((64, 7), jnp.int32)}
  null = {'label': 5, 'tokens': jnp.zeros((7,), jnp.int32)}
  out = conditioning.drop(jax.random.key(0), cond, null, rate=0.5)
  label_dropped = np.asarray(out['label'] == 5)
  assert 0 < label_dropped.sum() < 64
  # One draw per example drops its label and its caption together.
  np.testing.assert_array_equal(np.asarray(out['tokens']).sum(-1) == 0, label_dropped)
  with pytest.raises(ValueError, match=r'a drop rate must be in \[0, 1\], got 1.5'):
    conditioning.drop(jax.random.key(0), cond, null, rate=1.5)
