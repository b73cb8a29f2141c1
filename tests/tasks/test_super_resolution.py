"""The super-resolution task against an exact answer: Gaussian high-resolution images whose
low-resolution image is the task's own (linear) downsampling, so that p(x_hi | x_lo) and,
with noise-conditioning augmentation, p(x_hi | x_lo diffused to level s) are Gaussian in
closed form. A stand-in network that reads the task's conditioning inputs (the upsampled
low-resolution channels and the level's time input) and returns the exact conditional
score lets the samplers recover those conditionals."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sde_lib
import tasks
from sde_lib import conditioning, sampling
from sde_lib.parameterization import Parameterization
from tests.optimized import OPTIMIZED

HI, LO = 4, 2  # 4x4 images given their 2x2 downsampling
N = 4000  # samples per check
SDE = sde_lib.VPSDE()
PARAMETERIZATION = Parameterization(output='score', time_input='t999')


def _linear_map(fn, size: int) -> np.ndarray:
  """The matrix [out, in] of a linear map of [1, size, size, 1] images."""
  basis = jnp.eye(size * size).reshape(-1, size, size, 1)
  return np.asarray(fn(basis)).reshape(size * size, -1).T.astype(np.float64)


DOWN = _linear_map(lambda x: conditioning.downsample(x, (LO, LO)), HI)  # [4, 16]
UP = _linear_map(lambda x: conditioning.upsample(x, (HI, HI)), LO)  # [16, 4]
RNG = np.random.default_rng(0)
MEAN = RNG.normal(0.0, 0.3, HI * HI)
_B = RNG.normal(size=(HI * HI, HI * HI))
COV = 0.5 * (_B @ _B.T / (HI * HI) + 0.3 * np.eye(HI * HI))


def exact_conditional(z: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray]:
  """Mean and covariance of x given z = alpha(s) DOWN x + std(s) e (e standard normal)."""
  a, sd = (float(f(jnp.asarray([s]))[0]) for f in (SDE.alpha, SDE.std))
  gain = a * COV @ DOWN.T @ np.linalg.inv(a**2 * DOWN @ COV @ DOWN.T + sd**2 * np.eye(LO * LO))
  return MEAN + gain @ (z - a * DOWN @ MEAN), COV - a * gain @ DOWN @ COV


class ExactSuperResolution(nn.Module):
  """The exact score of p_t(x_t | z) for Gaussian data, from the network's inputs alone:
  z from the upsampled channels `cond`, s from its time input `aug_cond`, t from time_cond
  (all through the 't999' time input)."""

  @nn.compact
  def __call__(self, x, time_cond, *, train=False, cond=None, aug_cond=None, **unused):
    t, s = time_cond / 999, aug_cond / 999
    # The bilinear upsampling is injective: its pseudo-inverse recovers z exactly.
    z = cond.reshape(len(x), -1) @ jnp.asarray(np.linalg.pinv(UP).T, jnp.float32)

    def score(x, t, s, z):
      a, sd = SDE.alpha(t[None])[0], SDE.std(t[None])[0]
      a_s, sd_s = SDE.alpha(s[None])[0], SDE.std(s[None])[0]
      down, cov, mean = (jnp.asarray(m, jnp.float32) for m in (DOWN, COV, MEAN))
      gain = a_s * cov @ down.T @ jnp.linalg.inv(a_s**2 * down @ cov @ down.T
                                                 + sd_s**2 * jnp.eye(LO * LO))
      post_mean = mean + gain @ (z - a_s * down @ mean)
      post_cov = cov - a_s * gain @ down @ cov
      c_t = a**2 * post_cov + sd**2 * jnp.eye(HI * HI)
      return -jnp.linalg.solve(c_t, x - a * post_mean)

    out = jax.vmap(score)(x.reshape(len(x), -1), t, s, z)
    return out.reshape(x.shape)


def _task(aug_level: float = 0.0) -> tasks.SuperResolution:
  return tasks.SuperResolution(SDE, PARAMETERIZATION, ExactSuperResolution(),
                               loss_fn=None, low_size=(LO, LO), aug_level=aug_level)


def test_the_linear_maps_are_those_of_the_pipeline():
  # Downsampling averages: a constant image stays constant; upsampling is its right inverse
  # only on the constant images, but injective.
  np.testing.assert_allclose(DOWN.sum(axis=1), 1.0, atol=1e-6)
  assert np.linalg.matrix_rank(UP) == LO * LO


@pytest.mark.parametrize('method, options', [
    ('pc', dict(predictor='reverse_diffusion', corrector='none', n_steps=500)),
    ('ode', dict(n_steps=50)),
])
@pytest.mark.parametrize('s', [0.0, 0.1])  # std(0.1) = 0.32: the condition is noisy
def test_sampling_with_the_exact_conditional_score_recovers_the_conditional(method, options, s):
  task = _task()
  z = DOWN @ MEAN * float(SDE.alpha(jnp.asarray([s]))[0]) + 0.6  # a condition off the mean
  batch = {'low': jnp.broadcast_to(jnp.asarray(z, jnp.float32).reshape(1, LO, LO, 1),
                                   (N, LO, LO, 1)), 'aug_level': jnp.full((N,), s)}
  score_fn = task.score_fn({'score': {}}, **task.image_inputs(batch, (HI, HI)))
  x_T = SDE.prior_sampling(jax.random.key(1), (N, HI, HI, 1))
  out = jax.jit(lambda rng, x: sampling.sample(method, rng, SDE, score_fn, x, **options).x,
                compiler_options=OPTIMIZED)(jax.random.key(2), x_T)  # 500 PC steps
  x = np.asarray(out, np.float64).reshape(N, -1)
  mean, cov = exact_conditional(z, s)
  scale = np.sqrt(np.diag(cov))
  # Monte Carlo: the mean's standard error is scale / sqrt(N) ~ 0.016 scale.
  assert np.max(np.abs(x.mean(0) - mean) / scale) < 0.1
  np.testing.assert_allclose(np.cov(x.T), cov, atol=0.1 * np.max(np.diag(cov)))
  # Far from the unconditional distribution: the condition is read.
  assert np.max(np.abs(mean - MEAN) / scale) > 0.3


def test_sampling_inputs_diffuse_the_low_image_to_the_configured_level():
  task = _task(aug_level=0.3)
  low = jnp.broadcast_to(jnp.asarray(DOWN @ MEAN, jnp.float32).reshape(1, LO, LO, 1),
                         (N, LO, LO, 1))
  inputs = task.sampling_inputs(jax.random.key(3), low, (HI, HI))
  np.testing.assert_allclose(inputs['aug_cond'], 0.3 * 999, rtol=1e-6)
  z = np.asarray(inputs['cond']).reshape(N, -1) @ np.linalg.pinv(UP).T
  a, sd = float(SDE.alpha(jnp.asarray([0.3]))[0]), float(SDE.std(jnp.asarray([0.3]))[0])
  noise = (z - a * DOWN @ MEAN) / sd
  assert np.max(np.abs(noise.mean(0))) < 0.06 and np.max(np.abs(noise.std(0) - 1)) < 0.06


def test_training_conditions_draw_the_level_uniformly_and_diffuse_the_downsampled_image():
  task = _task()  # aug_max = 1: s ~ U[0, T]
  images = jnp.broadcast_to(jnp.asarray(MEAN, jnp.float32).reshape(1, HI, HI, 1),
                            (N, HI, HI, 1))
  batch = task.conditions(jax.random.key(4), {'image': images}, train=True)
  s = np.asarray(batch['aug_level'], np.float64)
  assert 0.0 <= s.min() and s.max() <= SDE.T
  assert abs(s.mean() - 0.5) < 0.02 and abs(s.var() - 1 / 12) < 0.01  # U[0, 1]
  a, sd = np.asarray(SDE.alpha(jnp.asarray(s))), np.asarray(SDE.std(jnp.asarray(s)))
  noise = (np.asarray(batch['low']).reshape(N, -1) - a[:, None] * (DOWN @ MEAN)) / sd[:, None]
  assert np.max(np.abs(noise.mean(0))) < 0.06 and np.max(np.abs(noise.std(0) - 1)) < 0.06
  # The test loss draws its levels the same way (augmentation is not training-only).
  test = task.conditions(jax.random.key(4), {'image': images}, train=False)
  np.testing.assert_array_equal(test['aug_level'], batch['aug_level'])
  capped = dataclasses.replace(task, aug_max=0.25).conditions(jax.random.key(4),
                                                              {'image': images}, train=True)
  np.testing.assert_allclose(capped['aug_level'], 0.25 * batch['aug_level'], rtol=1e-5)
