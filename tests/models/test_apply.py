import jax
import jax.numpy as jnp
import pytest

from models import get_model, net_fn
from sde_lib import get_sde
from sde_lib.parameterization import Parameterization


def test_training_mode_needs_a_dropout_key():
  with pytest.raises(ValueError, match='needs an rng'):
    net_fn(get_model('ncsnpp')(), {}, train=True)


def test_bfloat16_compute_gives_a_float32_score_close_to_float32_compute():
  sde = get_sde('vesde')
  model = get_model('ncsnpp')(nf=8, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4,),
                              init_scale=1.0, fir=False, progressive_input='none')
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
  t = jnp.array([0.3, 0.7])
  params = jax.jit(model.init)(jax.random.key(1, impl='rbg'), x, sde.sigma(t))['params']
  param = Parameterization('score', 'sigma', scale_by_sigma=True)
  full = jax.jit(lambda x, t: param.score_fn(sde, net_fn(model, params))(x, t))(x, t)
  half = jax.jit(lambda x, t: param.score_fn(
      sde, net_fn(model, params, compute_dtype=jnp.bfloat16))(x, t))(x, t)
  assert half.dtype == jnp.float32
  relative_error = float(jnp.linalg.norm(half - full) / jnp.linalg.norm(full))
  assert 0 < relative_error < 0.02  # bfloat16 keeps 8 bits of mantissa
