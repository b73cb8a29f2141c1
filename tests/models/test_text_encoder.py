import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models import TextEncoder

TINY = dict(vocab_size=50, max_len=16, width=16, layers=2, heads=2, mlp_ratio=4)
# Two captions, of 5 and 3 real tokens, the last of each being the end-of-text token 49.
CAPTIONS = [[7, 3, 21, 8, 49], [12, 30, 49]]


def _tokens(pad, seed=0):
  """CAPTIONS followed by `pad` padding tokens (the shorter one by more), with random ids."""
  length = max(map(len, CAPTIONS)) + pad
  rng = np.random.default_rng(seed)
  tokens = rng.integers(0, TINY['vocab_size'], (len(CAPTIONS), length))
  mask = np.zeros((len(CAPTIONS), length), bool)
  for row, caption in enumerate(CAPTIONS):
    tokens[row, :len(caption)], mask[row, :len(caption)] = caption, True
  return jnp.asarray(tokens, jnp.int32), jnp.asarray(mask)


ENCODER = TextEncoder(**TINY)


@pytest.fixture(scope='module')
def params():
  return jax.jit(ENCODER.init)(jax.random.key(0), *_tokens(0))['params']


def _encode(params, tokens, mask):
  return ENCODER.apply({'params': params}, tokens, mask)


def test_a_captions_features_do_not_depend_on_its_padding_nor_the_padding_ids(params):
  # One program: the encoder compiles once for the five lengths and paddings.
  runs = jax.jit(lambda: [_encode(params, *_tokens(pad, seed)) for pad, seed in
                          [(0, 0), (3, 0), (3, 1), (10, 0), (10, 2)]])()
  (ref_features, ref_pooled), others = runs[0], runs[1:]
  assert float(jnp.std(ref_pooled)) > 0.1  # not a vanishing feature
  for features, pooled in others:
    for row, caption in enumerate(CAPTIONS):
      np.testing.assert_allclose(features[row, :len(caption)], ref_features[row, :len(caption)],
                                 rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(pooled, ref_pooled, rtol=1e-5, atol=1e-5)


def test_the_pooled_feature_is_the_last_real_tokens(params):
  tokens, mask = _tokens(4)
  mask = mask.at[0, 1].set(False)  # a hole before the end: still the last True that pools
  features, pooled = jax.jit(_encode)(params, tokens, mask)
  last = [len(caption) - 1 for caption in CAPTIONS]
  np.testing.assert_array_equal(pooled, features[np.arange(len(CAPTIONS)), last])


def test_word_order_changes_the_pooled_feature(params):
  tokens, mask = _tokens(2)
  swapped = tokens.at[0, 0].set(tokens[0, 1]).at[0, 1].set(tokens[0, 0])
  (_, pooled), (_, pooled_swapped) = jax.jit(lambda: [_encode(params, tokens, mask),
                                                      _encode(params, swapped, mask)])()
  assert float(jnp.max(jnp.abs(pooled[0] - pooled_swapped[0]))) > 1e-3
  np.testing.assert_array_equal(pooled[1], pooled_swapped[1])  # the other caption's own


def test_an_all_padding_row_is_finite_and_pools_position_0(params):
  tokens, mask = _tokens(3)
  mask = mask.at[1].set(False)
  features, pooled = jax.jit(_encode)(params, tokens, mask)
  assert bool(jnp.all(jnp.isfinite(features))) and bool(jnp.all(jnp.isfinite(pooled)))
  np.testing.assert_array_equal(pooled[1], features[1, 0])


def test_gradients_reach_every_parameter_and_are_finite(params):
  tokens, mask = _tokens(3)
  loss = lambda p: jnp.sum(_encode(p, tokens, mask)[1] ** 2)
  grads = jax.jit(jax.grad(loss))(params)
  for path, grad in jax.tree_util.tree_leaves_with_path(grads):
    assert bool(jnp.all(jnp.isfinite(grad))), jax.tree_util.keystr(path)
    assert float(jnp.max(jnp.abs(grad))) > 0, jax.tree_util.keystr(path)
  used = np.unique(np.asarray(tokens)[np.asarray(mask)])
  unused = np.setdiff1d(np.arange(TINY['vocab_size']), used)
  embedding_grad = grads['token_embedding']['embedding']
  assert float(jnp.min(jnp.max(jnp.abs(embedding_grad[used]), axis=1))) > 0
  # Padding's token ids get no gradient: nothing real attends to them.
  assert float(jnp.max(jnp.abs(embedding_grad[unused]))) == 0


@pytest.mark.parametrize('overrides', [dict(), dict(layers=3, mlp_ratio=2, width=8, heads=4)])
def test_the_parameter_count_is_the_closed_form(overrides):
  options = {**TINY, **overrides}
  width, ratio = options['width'], options['mlp_ratio']
  per_layer = (2 * width  # ln_1
               + 3 * width * width + 3 * width  # qkv
               + width * width + width  # attention output
               + 2 * width  # ln_2
               + ratio * width * width + ratio * width  # MLP in
               + ratio * width * width + width)  # MLP out
  expected = ((options['vocab_size'] + options['max_len']) * width + options['layers'] * per_layer
              + 2 * width)  # final LayerNorm
  tokens, mask = _tokens(0)
  params = jax.eval_shape(TextEncoder(**options).init, jax.random.key(0), tokens, mask)
  assert sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params)) == expected


def test_bad_lengths_and_widths_raise():
  tokens, mask = _tokens(12)  # 17 tokens
  with pytest.raises(ValueError, match='17 tokens exceed max_len=16'):
    jax.eval_shape(TextEncoder(**TINY).init, jax.random.key(0), tokens, mask)
  with pytest.raises(ValueError, match='width=16 does not split into heads=3'):
    jax.eval_shape(TextEncoder(**{**TINY, 'heads': 3}).init, jax.random.key(0), *_tokens(0))
