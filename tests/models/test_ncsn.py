"""NCSN (v1): the conditional InstanceNorm++, conditioning on the level, sizes, score function.

Agreement with the reference code (ermongroup/ncsn, score_sde) was checked once, outside
the tests, which cannot import it: see models.ncsnv2.NCSN.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models import get_model, net_fn
from models.ncsnv2 import InstanceNormPlus
from sde_lib import VESDE
from sde_lib.parameterization import Parameterization

LEVELS = 5
# One downsampling stage instead of three halves the compile time; the
# parameter counts below use the paper's depth (jax.eval_shape, no compile).
SHALLOW = ((2, 1),)


def _tiny_ncsn(**overrides):
  return get_model('ncsn')(**{'nf': 8, 'num_levels': LEVELS, 'stages': SHALLOW, **overrides})


def _count(model, size=8):
  shapes = jax.eval_shape(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, size, size, 3)), jnp.ones((1,))))
  return sum(leaf.size for leaf in jax.tree.leaves(shapes['params']))


@pytest.fixture(scope='module')
def tiny():
  """A tiny NCSN, its parameters (tables randomised away from their init) and x [2, 8, 8, 3]."""
  model = _tiny_ncsn()
  x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 3))
  params = jax.jit(model.init)(jax.random.key(1, impl='rbg'), x, jnp.zeros(2))['params']
  keys = iter(jax.random.split(jax.random.key(2), 1000))
  params = jax.tree_util.tree_map_with_path(
      lambda path, p: p + 0.3 * jax.random.normal(next(keys), p.shape)
      if 'embedding' in jax.tree_util.keystr(path) else p, params)
  return model, params, x


_jitted = {}


def _apply(model, params, x, levels):
  if model not in _jitted:  # one compilation per network
    _jitted[model] = jax.jit(lambda p, x, t: model.apply({'params': p}, x, t))
  return _jitted[model](params, x, levels)


def _instance_norm_plus(x, gamma, alpha, beta, eps=1e-5):
  """Song & Ermon's (conditional) InstanceNorm++, in float64 numpy."""
  x = np.asarray(x, np.float64)
  mu = x.mean(axis=(1, 2))  # [B, C]
  m, s = mu.mean(-1, keepdims=True), mu.var(-1, keepdims=True)
  h = (x - mu[:, None, None]) / np.sqrt(x.var(axis=(1, 2), keepdims=True) + eps)
  return gamma * (h + alpha * ((mu - m) / np.sqrt(s + eps))[:, None, None]) + beta


def test_conditional_instance_norm_plus_matches_its_formula_row_by_row():
  c, labels = 4, jnp.array([2, 0, 2])
  x = 3.0 + 2.0 * jax.random.normal(jax.random.key(0), (3, 5, 6, c))
  norm = InstanceNormPlus(num_classes=3)
  table = jax.random.normal(jax.random.key(1), (3, 3 * c))  # rows (gamma, alpha, beta)
  out = norm.apply({'params': {'Embed_0': {'embedding': table}}}, x, labels)
  rows = np.asarray(table, np.float64)[np.asarray(labels)][:, None, None, :]
  expected = _instance_norm_plus(x, rows[..., :c], rows[..., c:2 * c], rows[..., 2 * c:])
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
  # The unconditional norm is the same formula with one row.
  gamma, alpha, beta = np.split(np.asarray(table[1]), 3)
  plain = InstanceNormPlus().apply({'params': {'alpha': alpha, 'gamma': gamma, 'beta': beta}}, x)
  np.testing.assert_allclose(plain, _instance_norm_plus(x, gamma, alpha, beta), rtol=1e-5,
                             atol=1e-5)


def test_conditional_tables_start_as_the_unconditional_parameters():
  x = jax.random.normal(jax.random.key(0), (2, 4, 4, 64))
  table = InstanceNormPlus(num_classes=50).init(
      jax.random.key(1), x, jnp.array([0, 1]))['params']['Embed_0']['embedding']
  scales, beta = np.asarray(table[:, :128]), np.asarray(table[:, 128:])
  assert table.shape == (50, 192) and np.all(beta == 0)
  assert abs(scales.mean() - 1.0) < 2e-3 and abs(scales.std() - 0.02) < 1e-3


def test_output_has_the_input_shape_and_depends_on_the_level(tiny):
  model, params, x = tiny
  same_x = jnp.broadcast_to(x[:1], x.shape)
  out = _apply(model, params, same_x, jnp.array([0.0, 4.0]))
  assert out.shape == x.shape and bool(jnp.all(jnp.isfinite(out)))
  assert float(jnp.max(jnp.abs(out[0] - out[1]))) > 1e-2
  # The level is rounded to its index; each example sees only its own level.
  again = _apply(model, params, same_x, jnp.array([1e-4, 4.0 - 1e-4]))
  np.testing.assert_allclose(again, out, rtol=1e-6, atol=1e-6)
  swapped = _apply(model, params, x[::-1], jnp.array([4.0, 0.0]))
  np.testing.assert_allclose(swapped[::-1], _apply(model, params, x, jnp.array([0.0, 4.0])),
                             rtol=1e-5, atol=1e-5)


def test_centered_inputs_skip_the_map_to_minus_one_one(tiny):
  model, params, x = tiny
  levels = jnp.array([1.0, 3.0])
  centered = _apply(_tiny_ncsn(centered=True), params, 2 * x - 1, levels)
  np.testing.assert_allclose(centered, _apply(model, params, x, levels), rtol=1e-5, atol=1e-5)


def test_a_level_outside_the_tables_gives_nan(tiny):
  model, params, x = tiny
  out = _apply(model, params, x, jnp.array([0.0, float(LEVELS)]))
  assert bool(jnp.all(jnp.isfinite(out[0]))) and bool(jnp.all(jnp.isnan(out[1])))


@pytest.mark.parametrize('nf, levels', [(8, 1), (8, 7), (16, 3)])
def test_parameter_count_is_ncsnv2s_convolutions_plus_a_table_row_per_level(nf, levels):
  # NCSNv2 (64 px) has the same convolutions and 27 InstanceNorm++ over 81 nf
  # parameters; NCSN's 113 conditional norms hold 3 C parameters per level:
  # 26 nf in the residual blocks, 16 + 28 + 24 + 18 nf in the refine blocks, nf last.
  ncsn = _count(get_model('ncsn')(nf=nf, num_levels=levels))
  assert ncsn == _count(get_model('ncsnv2_64')(nf=nf)) - 81 * nf + 3 * 113 * nf * levels


def test_num_levels_is_required():
  x = jnp.zeros((1, 8, 8, 3))
  with pytest.raises(ValueError, match='NCSN needs num_levels'):
    _tiny_ncsn(num_levels=None).init(jax.random.key(0), x, jnp.zeros(1))


def test_score_fn_feeds_the_level_index_and_gradients_reach_only_the_rows_of_its_levels(tiny):
  model, params, x = tiny
  param = Parameterization('score', 'ncsn_level')  # configs/ve/ncsn: no division by sigma
  sde = VESDE(N=LEVELS, sigma_min=0.01, sigma_max=1.0)
  t = jnp.array([1.0, 0.25])  # the largest sigma (level 0) and timestep 1 (level 3)
  np.testing.assert_array_equal(param.time_condition(sde, t), [0, 3])

  def loss(p):
    score = param.score_fn(sde, net_fn(model, p))(x, t)
    return jnp.sum(score ** 2), score

  grads, score = jax.jit(jax.grad(loss, has_aux=True))(params)
  np.testing.assert_allclose(score, _apply(model, params, x, jnp.array([0.0, 3.0])), rtol=1e-5,
                             atol=1e-5)  # the output itself: no division by sigma
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    name, g = jax.tree_util.keystr(path), np.asarray(g)
    if 'embedding' in name:
      assert np.all(np.abs(g[[0, 3]]).sum(-1) > 0) and np.all(g[[1, 2, 4]] == 0), name
    else:
      assert np.abs(g).sum() > 0, name
