import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from models import get_model, layers

TINY = dict(nf=8, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4, 8), dropout=0.1,
            init_scale=1.0)


def _tiny_model(name='ncsnpp', **overrides):
  if name.startswith('ncsnv2'):
    return get_model(name)(**{'nf': 8, **overrides})
  return get_model(name)(**{**TINY, **overrides})


def _inputs(size, batch=2, channels=3, seed=0):
  """Images of side `size` or of (height, width) `size`, and their times."""
  hw = (size, size) if isinstance(size, int) else size
  x = jax.random.normal(jax.random.key(seed), (batch, *hw, channels))
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


# Every other variant on 8x16 images: the up and down paths, attention (at heights 4 and 8)
# and the input and output skips take H != W.
@pytest.mark.parametrize('options, size',
                         [(o, (8, 16) if i % 2 else 8) for i, o in enumerate(NCSNPP_OPTIONS)],
                         ids=lambda v: ','.join(f'{k}={x}' for k, x in v.items()) or 'default'
                         if isinstance(v, dict) else str(v))
def test_ncsnpp_output_has_the_input_shape(options, size):
  x, t = _inputs(size)
  _, apply = _init_apply(_tiny_model(**options), x, t)
  out = apply(x, t)
  assert out.shape == x.shape and bool(jnp.all(jnp.isfinite(out)))


@pytest.mark.parametrize('name, size', [('ddpm', (16, 8))])  # NCSNv2: the data-parallel test
def test_other_networks_output_has_the_input_shape(name, size):
  x, t = _inputs(size, channels=1)
  _, apply = _init_apply(_tiny_model(name), x, t)
  out = apply(x, t)
  assert out.shape == x.shape and bool(jnp.all(jnp.isfinite(out)))


@pytest.mark.parametrize('name', ['ncsnv2_128', 'ncsnv2_256'])
def test_deeper_ncsnv2_stacks_return_the_input_shape(name):
  # Their extra stages are the 64-px network's blocks, run above; XLA would spend 15-25 s
  # compiling each deeper stack only to repeat that, so the shapes are traced, not run.
  x, t = _inputs((16, 32), channels=1)
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


def _context(length=5, seed=6):
  """Text features [2, length, 7] and their mask: 3 real tokens in row 0, 4 in row 1."""
  context = jax.random.normal(jax.random.key(seed), (2, length, 7))
  return context, jnp.arange(length)[None, :] < jnp.array([[3], [4]])


def _without(tree, *names):
  """The parameter tree less the sub-trees called one of `names`, at any depth."""
  return {k: _without(v, *names) if isinstance(v, dict) else v for k, v in tree.items()
          if k not in names}


def _paths(tree):
  return {jax.tree_util.keystr(p): leaf.shape
          for p, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def _max_diff(a, b):
  return float(jnp.max(jnp.abs(a - b)))


def test_context_reaches_every_attention_block_and_its_masked_tokens_do_not():
  x, t = _inputs(8)
  cond = jax.random.normal(jax.random.key(5), (2, 8, 8, 2))
  context, mask = _context()
  model = _tiny_model()
  params = jax.jit(functools.partial(model.init, cond=cond, context=context,
                                     context_mask=mask))(_key(), x, t)['params']
  blocks = [name for name in params if name.startswith('AttnBlock')]  # down 2, middle 1, up 2
  assert len(blocks) == 5 and all('encoder_kv' in params[name] for name in blocks)
  # Without a context the tree is the plain network's, name for name.
  plain = _without(params, 'encoder_kv')
  assert _paths(plain) == _paths(jax.eval_shape(model.init, _key(), x, t, cond=cond)['params'])
  apply = jax.jit(lambda p, cond, **kw: model.apply({'params': p}, x, t, cond=cond, **kw))
  base = apply(params, cond, context=context, context_mask=mask)
  assert _max_diff(apply(params, -cond, context=context, context_mask=mask), base) > 1e-4
  assert _max_diff(apply(params, cond, context=-context, context_mask=mask), base) > 1e-4
  # The masked tokens do count once unmasked.
  assert _max_diff(apply(params, cond, context=context, context_mask=jnp.ones_like(mask)),
                   base) > 1e-4
  other = jax.random.normal(jax.random.key(7), context.shape)
  np.testing.assert_allclose(apply(params, cond, context=jnp.where(mask[..., None], context, other),
                                   context_mask=mask), base, atol=1e-6)
  np.testing.assert_allclose(apply(params, cond, context=context[:, :4], context_mask=mask[:, :4]),
                             base, atol=1e-6)  # the last token is masked in both rows
  # Text tokens that all get no weight leave the image-only network (another program, which
  # sums its softmax in another order: float32 rounding apart).
  np.testing.assert_allclose(
      apply(params, cond, context=context, context_mask=jnp.zeros_like(mask)),
      apply(plain, cond), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('embedding_type', ['fourier', 'positional'])
def test_context_pooled_and_aug_cond_make_their_layers_only_when_given(embedding_type):
  x, t = _inputs(8)
  model = _tiny_model(embedding_type=embedding_type)
  names = lambda **kw: set(jax.eval_shape(model.init, _key(), x, t, **kw)['params'])
  aug_names = {'aug_Dense_0', 'aug_Dense_1'} | (
      {'aug_GaussianFourierProjection_0'} if embedding_type == 'fourier' else set())
  assert names(context_pooled=jnp.ones((2, 6))) - names() == {'pooled_projection'}
  assert names(aug_cond=t) - names() == aug_names
  assert names(context_pooled=jnp.ones((2, 6)), aug_cond=t) - names() == {
      'pooled_projection', *aug_names}


def test_context_pooled_and_aug_cond_are_added_to_the_time_embedding():
  x, t = _inputs(8)
  pooled = jax.random.normal(jax.random.key(8), (2, 6))
  aug = jnp.array([0.3, 0.8])  # positive: a sigma for fourier embeddings
  model = _tiny_model()
  params = jax.jit(functools.partial(model.init, context_pooled=pooled, aug_cond=aug))(
      _key(), x, t)['params']
  apply = jax.jit(lambda p, t, pooled, aug: model.apply({'params': p}, x, t,
                                                        context_pooled=pooled, aug_cond=aug))
  base = apply(params, t, pooled, aug)
  assert _max_diff(apply(params, t, -pooled, aug), base) > 1e-4
  assert _max_diff(apply(params, t, pooled, aug[::-1]), base) > 1e-4
  # The augmentation level is embedded as time is, and added: with the time embedding's
  # weights the two inputs can be swapped.
  twin = {**params, **{'aug_' + name: params[name] for name in params if 'aug_' + name in params}}
  assert _max_diff(apply(twin, t, pooled, aug), base) > 1e-4  # aug_* are their own weights
  np.testing.assert_allclose(apply(twin, aug, pooled, t), apply(twin, t, pooled, aug), atol=1e-5)
  # The pooled feature's projection is added to temb: with a zero kernel its bias is the time
  # embedding's last bias, shifted.
  bias = jax.random.normal(jax.random.key(9), params['pooled_projection']['bias'].shape)
  zero = {'kernel': jnp.zeros_like(params['pooled_projection']['kernel'])}
  as_pooled = {**params, 'pooled_projection': {**zero, 'bias': bias}}
  as_time = {**params, 'pooled_projection': {**zero, 'bias': jnp.zeros_like(bias)},
             'Dense_1': {**params['Dense_1'], 'bias': params['Dense_1']['bias'] + bias}}
  np.testing.assert_allclose(apply(as_pooled, t, pooled, aug), apply(as_time, t, pooled, aug),
                             atol=1e-5)


def test_an_unconditional_network_embeds_what_it_is_given():
  x, t = _inputs(8)
  same_x = jnp.broadcast_to(x[:1], x.shape)
  pooled = jax.random.normal(jax.random.key(8), (2, 6))
  model = _tiny_model(conditional=False)
  params = jax.jit(functools.partial(model.init, context_pooled=pooled, aug_cond=t))(
      _key(), x, t)['params']
  # No time embedding, but the residual blocks read the embedding of the other two.
  assert {'pooled_projection', 'aug_Dense_0', 'Dense_0'} & set(params) == {
      'pooled_projection', 'aug_Dense_0'}
  assert 'Dense_0' in params['ResnetBlockBigGAN_0']
  assert 'Dense_0' not in jax.eval_shape(model.init, _key(), x, t)['params']['ResnetBlockBigGAN_0']
  apply = jax.jit(lambda x, t, pooled, aug: model.apply({'params': params}, x, t,
                                                        context_pooled=pooled, aug_cond=aug))
  # The rows differ only in the augmentation level, then only in the pooled feature.
  out = apply(same_x, t, jnp.broadcast_to(pooled[:1], pooled.shape), t)
  assert _max_diff(out[0], out[1]) > 1e-4
  out = apply(same_x, t, pooled, jnp.full_like(t, t[0]))
  assert _max_diff(out[0], out[1]) > 1e-4
  np.testing.assert_array_equal(apply(x, t, pooled, t), apply(x, 3 * t, pooled, t))  # not time


def _np_attn_block(p, x, context, mask, skip_rescale, heads=1, position=None):
  """AttnBlock in float64 numpy: per head, one softmax over [pixel keys; real text keys];
  a position embedding [H * W, C] added to the pixels' query and key inputs."""
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), p)
  b, height, width, c = x.shape
  groups = min(c // 4, 32)
  grouped = x.reshape(b, height * width, groups, c // groups)
  normed = (grouped - grouped.mean((1, 3), keepdims=True)) / np.sqrt(
      grouped.var((1, 3), keepdims=True) + 1e-6)
  h = normed.reshape(b, height * width, c) * p['GroupNorm_0']['scale'] + p['GroupNorm_0']['bias']
  where = h if position is None else h + np.asarray(position, np.float64)
  dense = lambda name, a: a @ p[name]['Dense_0']['kernel'] + p[name]['Dense_0']['bias']
  q, k, v = dense('NIN_0', where), dense('NIN_1', where), dense('NIN_2', h)
  real = np.ones((b, height * width), bool)
  if context is not None:
    kv = dense('encoder_kv', context)
    k, v = np.concatenate([k, kv[..., :c]], 1), np.concatenate([v, kv[..., c:]], 1)
    real = np.concatenate([real, mask], 1)
  width_h = c // heads
  outs = []
  for i in range(heads):
    part = slice(i * width_h, (i + 1) * width_h)
    logits = np.where(real[:, None, :],
                      q[..., part] @ k[..., part].transpose(0, 2, 1) / np.sqrt(width_h), -np.inf)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    outs.append(weights @ v[..., part])
  out = x + dense('NIN_3', np.concatenate(outs, -1)).reshape(x.shape)
  return out / np.sqrt(2) if skip_rescale else out


@pytest.mark.parametrize('with_context, skip_rescale, head_channels, position', [
    (True, True, 0, 'none'), (True, False, 0, 'none'), (False, True, 0, 'none'),
    (True, True, 4, 'sinusoidal'), (True, False, 2, 'learned'), (False, True, 2, 'sinusoidal')])
def test_attention_block_is_one_softmax_per_head_over_pixel_and_text_keys(
    with_context, skip_rescale, head_channels, position):
  x = np.random.default_rng(0).normal(size=(2, 2, 3, 8)).astype(np.float32)
  context = np.random.default_rng(1).normal(size=(2, 4, 5)).astype(np.float32)
  # Row 0: a hole and a real last token; row 1: no real token (the pixels only).
  mask = np.array([[True, False, True, True], [False] * 4])
  inputs = (x, context, mask) if with_context else (x,)
  block = layers.AttnBlock(skip_rescale=skip_rescale, init_scale=1.0,
                           head_channels=head_channels, position=position)
  params = block.init(jax.random.key(0), *inputs)['params']
  assert set(params) == {'GroupNorm_0', 'NIN_0', 'NIN_1', 'NIN_2', 'NIN_3'} | (
      {'encoder_kv'} if with_context else set()) | (
      {'position'} if position == 'learned' else set())
  embedding = {'none': None, 'sinusoidal': layers.sinusoidal_position_2d(2, 3, 8),
               'learned': params.get('position')}[position]
  expected = _np_attn_block(params, x.astype(np.float64), *(
      (context.astype(np.float64), mask) if with_context else (None, None)), skip_rescale,
      heads=8 // head_channels if head_channels else 1, position=embedding)
  out = block.apply({'params': params}, *inputs)
  assert _max_diff(out, x) > 0.1  # the attention is not a vanishing residual
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match='context_mask was given without a context'):
    block.apply({'params': params}, x, context_mask=mask)


def test_only_a_position_embedding_lets_attention_tell_equal_pixels_apart():
  # Every pixel the same and a caption to read: without positions every pixel's query is
  # the same, so every pixel gets the same output, whatever the weights; with either
  # embedding the left half can read the caption differently from the right.
  x = jnp.broadcast_to(jax.random.normal(jax.random.key(0), (1, 1, 1, 8)), (2, 4, 4, 8))
  context, mask = _context()
  for position in layers.POSITIONS:
    block = layers.AttnBlock(init_scale=1.0, head_channels=4, position=position)
    params = block.init(jax.random.key(1), x, context, mask)['params']
    if position == 'learned':  # as if trained: its initial std of 0.02 makes a tiny effect
      params['position'] = jax.random.normal(jax.random.key(2), (16, 8))
    out = block.apply({'params': params}, x, context, mask)
    if position == 'none':
      np.testing.assert_allclose(out, jnp.broadcast_to(out[:, :1, :1], out.shape), atol=1e-6)
    else:
      assert _max_diff(out[:, :, :2].mean((1, 2)), out[:, :, 2:].mean((1, 2))) > 1e-3, position


def _caption_change_by_half(position: str) -> tuple[float, float]:
  """An attention block trained to draw, on a blank canvas, the value its one-token caption
  names on the left half and nothing on the right; how much the output changes between
  two captions, on the left half and on the right."""
  values = jnp.linspace(-1.0, 1.0, 4)
  context = jax.nn.one_hot(jnp.arange(4), 4)[:, None]  # [4 captions, 1 token, 4]
  x = jnp.zeros((4, 4, 4, 8))
  left = (jnp.arange(4) < 2)[None, None, :, None]
  target = jnp.where(left, values[:, None, None, None], 0.0) * jnp.ones(x.shape)
  block = layers.AttnBlock(init_scale=1.0, head_channels=4, position=position)
  optimizer = optax.adam(3e-2)
  loss = lambda p: jnp.mean(jnp.square(block.apply({'params': p}, x, context) - target))

  @jax.jit
  def step(params, opt_state):
    updates, opt_state = optimizer.update(jax.grad(loss)(params), opt_state)
    return optax.apply_updates(params, updates), opt_state

  params = block.init(jax.random.key(0), x, context)['params']
  opt_state = optimizer.init(params)
  for _ in range(150):
    params, opt_state = step(params, opt_state)
  out = block.apply({'params': params}, x, context)
  change = jnp.abs(out[3] - out[0]).mean(-1)  # caption 3 against caption 0, per pixel
  return float(change[:, :2].mean()), float(change[:, 2:].mean())


def test_trained_with_positions_a_caption_of_the_left_digit_changes_the_left_half_only():
  # With positions the block learns to read the caption on the left half only; without,
  # every pixel's query is the same, so another caption changes both halves alike.
  left_change, right_change = _caption_change_by_half('sinusoidal')
  assert left_change > 1.0 and right_change < 0.2 * left_change, (left_change, right_change)
  np.testing.assert_allclose(*_caption_change_by_half('none'), rtol=1e-4)


def test_every_text_attention_block_at_every_configured_resolution_gets_gradients():
  # The recipe's layout (configs/text/digit_pairs_16.py) at test size: text attention at 8
  # and 4 pixels of a 16-pixel image; a learned position's shape tells each block's size.
  model = _tiny_model(ch_mult=(1, 2, 2), attn_resolutions=(8, 4), attn_head_channels=4,
                      attn_position='learned')
  x, t = _inputs(16)
  context, mask = _context()
  params = jax.jit(functools.partial(model.init, context=context, context_mask=mask))(
      _key(), x, t)['params']
  grads = jax.jit(jax.grad(lambda p: jnp.sum(jnp.square(model.apply(
      {'params': p}, x, t, context=context, context_mask=mask, train=False)))))(params)
  blocks = sorted(name for name in params if name.startswith('AttnBlock'))
  sizes = [int(np.sqrt(params[name]['position'].shape[0])) for name in blocks]
  # one per level on the way down (8, 4) and up (4, 8), and the middle block's (4)
  assert sorted(sizes) == [4, 4, 4, 8, 8], sizes
  for name in blocks:
    for part in ('encoder_kv', 'position'):
      norm = optax.global_norm(grads[name][part])
      assert norm > 0, (name, part)


def test_the_2d_sinusoidal_embedding_codes_row_and_column_apart():
  height, width, c = 3, 5, 12
  e = layers.sinusoidal_position_2d(height, width, c).reshape(height, width, c)
  frequencies = 1.0 / 10000 ** (np.arange(3) / 3)
  rows = np.arange(height)[:, None] * frequencies
  np.testing.assert_allclose(e[:, 0, :6], np.concatenate([np.sin(rows), np.cos(rows)], 1),
                             rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(e[:, :, :6], np.broadcast_to(e[:, :1, :6], (3, 5, 6)))
  np.testing.assert_array_equal(e[:, :, 6:], np.broadcast_to(e[:1, :, 6:], (3, 5, 6)))
  assert len({tuple(v) for v in e.reshape(-1, c).round(6)}) == height * width
  with pytest.raises(ValueError, match='divisible by 4'):
    layers.sinusoidal_position_2d(2, 2, 6)


def test_bad_attention_options_name_the_value():
  x = jnp.zeros((1, 4, 4, 8))
  with pytest.raises(ValueError, match='head_channels=3 must divide the 8 channels'):
    layers.AttnBlock(head_channels=3).init(_key(), x)
  # The tiny network on 8x8 images: attention at 8 px (8 channels), 4 px and the middle (16).
  assert _tiny_model().attention_widths(8) == {8, 16}
  assert _tiny_model(attn_resolutions=()).attention_widths(8) == {16}
  with pytest.raises(ValueError, match="unknown attn_position 'rope'"):
    _tiny_model(attn_position='rope').init(_key(), *_inputs(8))


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
  x, t = _inputs((8, 16), batch=2 * n)  # and on images of H != W
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


def _np_group_norm(h, scale, bias, groups, eps=1e-6):
  b, height, width, c = h.shape
  g = h.reshape(b, height, width, groups, c // groups)
  mean = g.mean(axis=(1, 2, 4), keepdims=True)
  var = g.var(axis=(1, 2, 4), keepdims=True)
  return ((g - mean) / np.sqrt(var + eps)).reshape(h.shape) * scale + bias


@pytest.mark.parametrize('block', [layers.ResnetBlockDDPM, layers.ResnetBlockBigGAN])
def test_scale_shift_norm_scales_and_shifts_the_second_norm_by_the_embedding(block):
  # ADM's block: GroupNorm(h) (1 + scale) + shift, (scale, shift) = Dense(act(temb)); the
  # additive block's parameters are untouched by the option's existence.
  x = np.random.default_rng(0).normal(size=(2, 4, 4, 8)).astype(np.float32)
  temb = np.random.default_rng(1).normal(size=(2, 16)).astype(np.float32)
  module = block(act=jax.nn.swish, out_ch=8, dropout=0.0, init_scale=1.0, scale_shift=True)
  params = module.init(_key(), x, temb, train=False)['params']
  assert params['Dense_0']['kernel'].shape == (16, 16)
  plain = block(act=jax.nn.swish, out_ch=8, dropout=0.0, init_scale=1.0)
  assert plain.init(_key(), x, temb, train=False)['params']['Dense_0']['kernel'].shape == (16, 8)

  def conv(h, p):  # 3x3, 'SAME'
    return np.asarray(jax.lax.conv_general_dilated(
        h, p['kernel'], (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))) + p['bias']

  swish = lambda v: v / (1 + np.exp(-v))
  gn = lambda h, p: _np_group_norm(h, np.asarray(p['scale']), np.asarray(p['bias']), 2)
  dense = params['Dense_0']
  scale, shift = np.split(swish(temb) @ np.asarray(dense['kernel']) + np.asarray(dense['bias']),
                          2, axis=-1)
  h = conv(swish(gn(x, params['GroupNorm_0'])), params['Conv_0'])
  h = gn(h, params['GroupNorm_1']) * (1 + scale[:, None, None]) + shift[:, None, None]
  h = conv(swish(h), params['Conv_1'])
  skip_rescale = block is layers.ResnetBlockBigGAN
  expected = (x + h) / np.sqrt(2.0) if skip_rescale else x + h
  out = module.apply({'params': params}, x, temb, train=False)
  np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
