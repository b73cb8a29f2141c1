import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sde_lib import get_sde, toy
from sde_lib.parameterization import OUTPUTS, TIME_INPUTS, Parameterization, song_et_al

MIXTURE = toy.GaussianMixture(np.array([[1.0] * 12, [-1.0] * 12]), 0.3, np.array([0.4, 0.6]))


def ideal_net_fn(param: Parameterization, sde):
  """What a perfectly trained network outputs for MIXTURE under `param`.

  It reads time back from its time input, as a network has to, and outputs what
  the parameterisation asks for, with the levels' own alpha and std when discrete.
  """
  def time_of(time_cond):
    if param.time_input == 't999':
      return time_cond / 999
    if param.time_input == 'ddpm_index':
      return time_cond / (sde.N - 1)
    if param.time_input == 'ncsn_level':
      return (sde.N - 1 - time_cond) / (sde.N - 1)
    return sde.t_from_log_snr(-jnp.log(time_cond))

  def net(x, time_cond):
    t = time_of(time_cond)
    score = MIXTURE.score_fn(sde)(x, t)
    alpha, std = param.coefficients(sde, t)
    alpha, std = alpha.reshape(-1, 1, 1, 1), std.reshape(-1, 1, 1, 1)
    if param.output == 'eps':
      return -std * score
    if param.output == 'score':
      return score * std if param.scale_by_sigma else score
    x0 = (x + std**2 * score) / alpha
    if param.output == 'v':  # with x = alpha x0 + std eps, written from x0 and eps apart
      return alpha * (-std * score) - std * x0
    return x0

  return net


CASES = [('vpsde', Parameterization('eps', 't999')),
         ('vpsde', Parameterization('eps', 'ddpm_index')),
         ('vpsde', Parameterization('x0', 't999')),
         ('vpsde', Parameterization('v', 't999')),
         ('vpsde', Parameterization('score', 'sigma', scale_by_sigma=True)),
         ('subvpsde', Parameterization('eps', 't999')),
         ('subvpsde', Parameterization('x0', 'sigma')),
         ('subvpsde', Parameterization('v', 't999')),
         ('vesde', Parameterization('score', 'sigma', scale_by_sigma=True)),
         ('vesde', Parameterization('score', 'sigma')),
         ('vesde', Parameterization('score', 'ncsn_level', scale_by_sigma=True)),
         ('vesde', Parameterization('eps', 'sigma')),
         ('vesde', Parameterization('x0', 'ncsn_level')),
         ('vesde', Parameterization('v', 'sigma'))]


@pytest.mark.parametrize('name, param', CASES, ids=[f'{n}-{p}' for n, p in CASES])
@jax.enable_x64(True)  # x0-networks' scores divide by std^2: float32 would lose digits
def test_score_and_denoiser_of_the_ideal_network_are_exact(name, param):
  sde = get_sde(name)
  net = ideal_net_fn(param, sde)
  x = jax.random.normal(jax.random.key(0), (5, 2, 2, 3), jnp.float64)
  levels = jnp.array([1, 10, 400, 800, 999])  # t = 0 is singular for VP
  t = levels / (sde.N - 1)  # on the discrete grid, where discrete and continuous agree
  exact = MIXTURE.score_fn(sde)(x, t)
  np.testing.assert_allclose(param.score_fn(sde, net)(x, t), exact, rtol=1e-8, atol=1e-8)
  alpha, std = (v.reshape(-1, 1, 1, 1) for v in param.coefficients(sde, t))
  np.testing.assert_allclose(param.denoise_fn(sde, net)(x, t), (x + std**2 * exact) / alpha,
                             rtol=1e-8, atol=1e-8)


def test_song_et_al_chooses_the_published_parameterisations():
  vp, subvp, ve = get_sde('vpsde'), get_sde('subvpsde'), get_sde('vesde')
  assert song_et_al(vp, continuous=True, scale_by_sigma=False) == Parameterization('eps', 't999')
  assert song_et_al(vp, continuous=False, scale_by_sigma=False) == Parameterization(
      'eps', 'ddpm_index')
  assert song_et_al(subvp, continuous=False, scale_by_sigma=False) == Parameterization(
      'eps', 't999')
  assert song_et_al(ve, continuous=True, scale_by_sigma=True) == Parameterization(
      'score', 'sigma', scale_by_sigma=True)
  assert song_et_al(ve, continuous=False, scale_by_sigma=False) == Parameterization(
      'score', 'ncsn_level')


def test_time_inputs_follow_ddpm_and_ncsn_conventions():
  t = jnp.array([0.0, 0.5, 1.0])
  vp, ve = get_sde('vpsde'), get_sde('vesde')
  np.testing.assert_allclose(Parameterization('eps', 'ddpm_index').time_condition(vp, t),
                             [0, 499.5, 999])
  np.testing.assert_allclose(Parameterization('eps', 't999').time_condition(vp, t),
                             [0, 499.5, 999])
  # NCSN counts levels from the largest sigma down.
  np.testing.assert_array_equal(Parameterization('score', 'ncsn_level').time_condition(ve, t),
                                [999, 500, 0])
  np.testing.assert_allclose(Parameterization('score', 'sigma').time_condition(ve, t),
                             [0.01, np.sqrt(0.01 * 50), 50], rtol=1e-5)


def test_discrete_vp_score_uses_ddpm_std():
  sde = get_sde('vpsde')
  score_fn = Parameterization('eps', 'ddpm_index').score_fn(sde, lambda x, c: jnp.ones_like(x))
  t = jnp.array([0.0, 0.25, 1.0])
  expected = -1.0 / np.sqrt(1 - sde.alphas_cumprod[[0, 249, 999]])
  np.testing.assert_allclose(score_fn(jnp.ones((3, 1)), t)[:, 0], expected, rtol=1e-5)


@pytest.mark.parametrize('kwargs, message', [
    ({'output': 'noise'}, f"unknown parameterisation output 'noise'; known: {list(OUTPUTS)}"),
    ({'time_input': 'step'}, f"unknown parameterisation time_input 'step'; known: "
                             f"{list(TIME_INPUTS)}"),
])
def test_unknown_parameterisations_are_refused(kwargs, message):
  with pytest.raises(ValueError) as error:
    Parameterization(**kwargs)
  assert message in str(error.value)


@pytest.mark.parametrize('output', OUTPUTS)
def test_learned_variance_networks_give_the_score_and_v_from_one_call(output):
  # The first half of the channels is read as today's output, the second is v.
  sde = get_sde('vpsde')
  plain = Parameterization(output, 'ddpm_index')
  learned = Parameterization(output, 'ddpm_index', learned_variance=True)
  x = jax.random.normal(jax.random.key(0), (3, 2, 2, 3))
  t = jnp.array([0.1, 0.5, 0.9])
  mean_net = lambda x, c: 0.5 * x + c[:, None, None, None] / 999
  v = jnp.linspace(-1.0, 1.0, 36).reshape(3, 2, 2, 3)
  calls = []

  def net(x, c):
    calls.append(1)
    return jnp.concatenate([mean_net(x, c), v], axis=-1)

  score, v_out = learned.score_and_v_fn(sde, net)(x, t)
  assert len(calls) == 1
  np.testing.assert_array_equal(v_out, v)
  np.testing.assert_array_equal(score, plain.score_fn(sde, mean_net)(x, t))
  np.testing.assert_array_equal(learned.score_fn(sde, net)(x, t), score)
  np.testing.assert_array_equal(learned.denoise_fn(sde, net)(x, t),
                                plain.denoise_fn(sde, mean_net)(x, t))


def test_learned_variance_contract_is_checked():
  sde = get_sde('vpsde')
  x, t = jnp.ones((2, 4, 4, 3)), jnp.array([0.2, 0.4])
  with pytest.raises(ValueError, match='needs a network with learned variances'):
    Parameterization().score_and_v_fn(sde, lambda x, c: x)
  with pytest.raises(ValueError, match=r'outputs \[..., 2C\] for x \[..., C\], got output '
                                       r'\(2, 4, 4, 3\) for x \(2, 4, 4, 3\)'):
    Parameterization(learned_variance=True).score_fn(sde, lambda x, c: x)(x, t)
  assert Parameterization() == Parameterization(learned_variance=False)
