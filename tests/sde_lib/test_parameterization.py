import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models import get_score_fn, time_condition
from sde_lib import VESDE, get_sde, toy


class IdealNetwork(nn.Module):
  """What a perfectly trained network outputs for a Gaussian mixture.

  It reads time the way the networks do (from `time_cond`) and outputs what each
  parameterisation asks for: the noise -std * score for VP/sub-VP, the score
  (times sigma when scale_by_sigma) for VE.
  """

  mixture: toy.GaussianMixture
  sde: object
  continuous: bool
  scale_by_sigma: bool = False

  def _time(self, time_cond):
    sde = self.sde
    if isinstance(sde, VESDE):
      if self.continuous:
        return jnp.log(time_cond / sde.sigma_min) / np.log(sde.sigma_max / sde.sigma_min)
      return (sde.N - 1 - time_cond) / (sde.N - 1)
    return time_cond / (999 if self.continuous else sde.N - 1)

  def __call__(self, x, time_cond, *, train=False):
    t = self._time(time_cond)
    score = self.mixture.score_fn(self.sde)(x, t)
    _, std = self.sde.marginal_prob(x, t)
    std = std.reshape(-1, *([1] * (x.ndim - 1)))
    if isinstance(self.sde, VESDE):
      return score * std if self.scale_by_sigma else score
    return -std * score


MIXTURE = toy.GaussianMixture(np.array([[1.0] * 12, [-1.0] * 12]), 0.3, np.array([0.4, 0.6]))


@pytest.mark.parametrize('name, continuous, scale_by_sigma', [
    ('vpsde', True, False), ('subvpsde', True, False), ('subvpsde', False, False),
    ('vesde', True, True), ('vesde', True, False), ('vesde', False, True)])
def test_score_of_the_ideal_network_is_the_exact_score(name, continuous, scale_by_sigma):
  sde = get_sde(name)
  network = IdealNetwork(MIXTURE, sde, continuous or name == 'subvpsde', scale_by_sigma)
  score_fn = get_score_fn(sde, network, {}, continuous=continuous)
  x = jax.random.normal(jax.random.key(0), (5, 2, 2, 3))
  levels = jnp.array([1, 10, 400, 800, 999])  # t = 0 is singular for VP
  t = levels / (sde.N - 1)  # on the discrete grid, where discrete and continuous agree
  np.testing.assert_allclose(score_fn(x, t), MIXTURE.score_fn(sde)(x, t), rtol=2e-4, atol=2e-4)


def test_discrete_time_conditions_follow_ddpm_and_ncsn_conventions():
  t = jnp.array([0.0, 0.5, 1.0])
  np.testing.assert_allclose(time_condition(get_sde('vpsde'), t, continuous=False),
                             [0, 499.5, 999])
  np.testing.assert_allclose(time_condition(get_sde('vpsde'), t, continuous=True),
                             [0, 499.5, 999])
  # NCSN counts levels from the largest sigma down.
  np.testing.assert_array_equal(time_condition(get_sde('vesde'), t, continuous=False),
                                [999, 500, 0])
  np.testing.assert_allclose(time_condition(get_sde('vesde'), t, continuous=True),
                             [0.01, np.sqrt(0.01 * 50), 50], rtol=1e-5)


def test_vp_discrete_score_uses_ddpm_std():
  sde = get_sde('vpsde')
  score_fn = get_score_fn(sde, _Constant(), {}, continuous=False)
  t = jnp.array([0.0, 0.25, 1.0])
  expected = -1.0 / np.sqrt(1 - sde.alphas_cumprod[[0, 249, 999]])
  np.testing.assert_allclose(score_fn(jnp.ones((3, 1)), t)[:, 0], expected, rtol=1e-5)


class _Constant(nn.Module):
  @nn.compact
  def __call__(self, x, time_cond, *, train=False):
    return jnp.ones_like(x)


def test_training_mode_needs_a_dropout_key():
  with pytest.raises(ValueError, match='needs an rng'):
    get_score_fn(get_sde('vpsde'), _Constant(), {}, continuous=True, train=True)


def test_bfloat16_compute_gives_a_float32_score_close_to_float32_compute():
  from models import get_model
  sde = get_sde('vesde')
  model = get_model('ncsnpp')(nf=8, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4,),
                              init_scale=1.0, fir=False, progressive_input='none')
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
  t = jnp.array([0.3, 0.7])
  params = jax.jit(model.init)(jax.random.key(1, impl='rbg'), x, sde.sigma(t))['params']
  full = jax.jit(lambda x, t: get_score_fn(sde, model, params, continuous=True)(x, t))(x, t)
  half = jax.jit(lambda x, t: get_score_fn(sde, model, params, continuous=True,
                                           compute_dtype=jnp.bfloat16)(x, t))(x, t)
  assert half.dtype == jnp.float32
  relative_error = float(jnp.linalg.norm(half - full) / jnp.linalg.norm(full))
  assert 0 < relative_error < 0.02  # bfloat16 keeps 8 bits of mantissa
