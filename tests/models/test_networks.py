import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from models import get_model

TINY = dict(nf=8, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4, 8), dropout=0.1,
            init_scale=1.0)


def _tiny_model(name='ncsnpp', **overrides):
  if name.startswith('ncsnv2'):
    return get_model(name)(**{'nf': 8, **overrides})
  return get_model(name)(**{**TINY, **overrides})


def _inputs(size, batch=2, channels=3, seed=0):
  x = jax.random.normal(jax.random.key(seed), (batch, size, size, channels))
  return x, jnp.linspace(0.5, 2.0, batch)  # positive: a sigma for fourier embeddings


def _key(seed=1):
  # Threefry makes XLA compile a network's init 4x slower on CPU than RBG does.
  return jax.random.key(seed, impl='rbg')


def _init_apply(model, x, t, **kwargs):
  params = jax.jit(functools.partial(model.init, **kwargs))(_key(), x, t)['params']
  apply = jax.jit(lambda p, x, t, **kw: model.apply({'params': p}, x, t, **kw))
  return params, functools.partial(apply, params)


NCSNPP_OPTIONS = [
    dict(),  # NCSN++: biggan blocks, FIR, fourier, residual input path
    dict(fir=False, progressive_input='none', embedding_type='positional'),  # DDPM++
    dict(resblock_type='ddpm', progressive='output_skip', progressive_input='input_skip',
         progressive_combine='cat'),
    dict(progressive='residual', progressive_input='input_skip', skip_rescale=False),
    dict(resblock_type='ddpm', fir=False, resamp_with_conv=False, progressive='residual'),
    dict(conditional=False, centered=False, nonlinearity='elu'),
]


@pytest.mark.parametrize('options, size', [(o, 8 + 8 * (i % 2)) for i, o in enumerate(NCSNPP_OPTIONS)],
                         ids=lambda v: ','.join(f'{k}={x}' for k, x in v.items()) or 'default'
                         if isinstance(v, dict) else str(v))
def test_ncsnpp_output_has_the_input_shape(options, size):
  x, t = _inputs(size)
  _, apply = _init_apply(_tiny_model(**options), x, t)
  out = apply(x, t)
  assert out.shape == x.shape and bool(jnp.all(jnp.isfinite(out)))


@pytest.mark.parametrize('name, size', [('ddpm', 16)])  # NCSNv2: the data-parallel test
def test_other_networks_output_has_the_input_shape(name, size):
  x, t = _inputs(size, channels=1)
  _, apply = _init_apply(_tiny_model(name), x, t)
  out = apply(x, t)
  assert out.shape == x.shape and bool(jnp.all(jnp.isfinite(out)))


@pytest.mark.parametrize('name', ['ncsnv2_128', 'ncsnv2_256'])
def test_deeper_ncsnv2_stacks_return_the_input_shape(name):
  # Their extra stages are the 64-px network's blocks, run above; XLA would spend 15-25 s
  # compiling each deeper stack only to repeat that, so the shapes are traced, not run.
  x, t = _inputs(16, channels=1)
  model = _tiny_model(name)
  out = jax.eval_shape(lambda: model.apply(model.init(_key(), x, t), x, t))
  assert out.shape == x.shape and out.dtype == x.dtype


@pytest.mark.parametrize('name', ['ncsnpp', 'ddpm'])
def test_output_depends_on_time(name):
  options = {'embedding_type': 'positional'} if name == 'ncsnpp' else {}
  x, _ = _inputs(8)
  model = _tiny_model(name, **options)
  _, apply = _init_apply(model, x, jnp.array([10.0, 10.0]))
  same_x = jnp.broadcast_to(x[:1], x.shape)
  out = apply(same_x, jnp.array([10.0, 500.0]))
  assert float(jnp.max(jnp.abs(out[0] - out[1]))) > 1e-3


def test_output_depends_on_the_class_label_and_accepts_the_null_class():
  x, t = _inputs(8)
  model = _tiny_model(num_classes=3)
  _, apply = _init_apply(model, x, t, class_labels=jnp.array([0, 1]))
  same = jnp.broadcast_to(x[:1], x.shape), jnp.full_like(t, t[0])
  out = apply(*same, class_labels=jnp.array([0, 1]))
  assert float(jnp.max(jnp.abs(out[0] - out[1]))) > 1e-3
  null = apply(*same, class_labels=jnp.array([3, 3]))  # the classifier-free 'no label'
  np.testing.assert_allclose(null[0], null[1], rtol=1e-5)


def test_class_labels_need_num_classes():
  x, t = _inputs(8)
  with pytest.raises(ValueError, match='num_classes=None'):
    _tiny_model().init(_key(), x, t, class_labels=jnp.array([0, 1]))


def test_conditioning_channels_and_context_change_the_output():
  x, t = _inputs(8)
  cond = jax.random.normal(jax.random.key(5), (2, 8, 8, 2))
  context = jax.random.normal(jax.random.key(6), (2, 5, 7))
  model = _tiny_model()
  params, apply = _init_apply(model, x, t, cond=cond, context=context)
  assert 'context_q' in str(jax.tree_util.tree_structure(params))
  base = apply(x, t, cond=cond, context=context)
  assert base.shape == x.shape
  assert float(jnp.max(jnp.abs(apply(x, t, cond=-cond, context=context) - base))) > 1e-4
  assert float(jnp.max(jnp.abs(apply(x, t, cond=cond, context=-context) - base))) > 1e-4


@pytest.mark.parametrize('options', [dict(), dict(progressive='output_skip')])
def test_zero_init_scale_starts_every_block_and_the_output_near_zero(options):
  x, t = _inputs(8)
  params, apply = _init_apply(_tiny_model(init_scale=0.0, **options), x, t)
  # init_scale 0 stands for variance scale 1e-10: weights ~1e-5 instead of ~0.3.
  last = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(params)
          if 'Conv_1' in jax.tree_util.keystr(path) and 'kernel' in jax.tree_util.keystr(path)]
  assert last and max(float(jnp.max(jnp.abs(k))) for k in last) < 1e-4
  assert float(jnp.max(jnp.abs(apply(x, t)))) < 1e-3


def test_dropout_is_active_only_in_training():
  x, t = _inputs(8)
  model = _tiny_model(dropout=0.5)
  params = jax.jit(model.init)(_key(), x, t)['params']
  run = lambda key, train: model.apply({'params': params}, x, t, train=train,
                                       rngs={'dropout': key})
  # One program for the four calls: the network compiles once.
  test_0, test_1, train_0, train_1 = jax.jit(lambda: [
      run(jax.random.key(k), train) for train in (False, True) for k in (0, 1)])()
  np.testing.assert_allclose(test_0, test_1)
  assert float(jnp.max(jnp.abs(train_0 - train_1))) > 1e-4


def test_unknown_names_raise():
  with pytest.raises(ValueError, match="unknown model 'unet'; known: \\['ddpm', 'ncsn', 'ncsnpp'"):
    get_model('unet')
  x, t = _inputs(8)
  for bad in (dict(progressive='skip'), dict(resblock_type='resnet'), dict(nonlinearity='gelu'),
              dict(embedding_type='learned')):
    with pytest.raises(ValueError, match='unknown'):
      _tiny_model(**bad).init(_key(), x, t)


@pytest.mark.parametrize('name', ['ncsnpp', 'ncsnv2_64'])
def test_init_and_apply_run_data_parallel_on_several_devices(name):
  n = jax.device_count()
  assert n == 4, 'conftest forces 4 CPU devices'
  mesh = jax.make_mesh((n,), ('data',), axis_types=(jax.sharding.AxisType.Auto,))
  batch, replicated = NamedSharding(mesh, P('data')), NamedSharding(mesh, P())
  x, t = _inputs(8, batch=2 * n)
  model = _tiny_model(name)
  params = jax.jit(model.init, out_shardings=replicated)(_key(), x, t)['params']
  apply = jax.jit(lambda p, x, t: model.apply({'params': p}, x, t),
                  in_shardings=(replicated, batch, batch), out_shardings=batch)
  sharded = apply(params, jax.device_put(x, batch), jax.device_put(t, batch))
  assert len(sharded.sharding.device_set) == n
  single = jax.jit(lambda p, x, t: model.apply({'params': p}, x, t))(
      jax.tree.map(np.asarray, params), np.asarray(x), np.asarray(t))
  np.testing.assert_allclose(sharded, single, rtol=1e-4, atol=1e-5)
  assert single.shape == x.shape and bool(jnp.all(jnp.isfinite(single)))
