"""The text-conditional diffusion task: captions read by a jointly trained text encoder,
caption dropout and the null caption, and a model trained on the digit pairs that reads
the word order of its prompts."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from data import bundled, pipeline, text
import models
import sde_lib
import tasks
from models import layers
from sde_lib.parameterization import Parameterization
from tests.optimized import OPTIMIZED

MAX_LEN = 32
STEPS, BATCH = 600, 128  # steps of 128 pairs
SDE = sde_lib.VPSDE()


class PooledMLP(nn.Module):
  """A small score network of 8x8 images given the pooled caption feature: cheap enough to
  train in a test, and order-blind but for what the text encoder puts in that feature."""

  @nn.compact
  def __call__(self, x, time_cond, *, train=False, context=None, context_mask=None,
               context_pooled=None):
    del train, context, context_mask
    h = jnp.concatenate([x.reshape(len(x), -1), layers.sinusoidal_embedding(time_cond, 32),
                         nn.Dense(64)(context_pooled)], axis=-1)
    for width in (256, 256):
      h = nn.swish(nn.Dense(width)(h))
    return nn.Dense(x[0].size)(h).reshape(x.shape)


def _task(model=None, caption_dropout=0.0) -> tasks.Diffusion:
  empty, _ = text.tokenize([''], max_len=MAX_LEN)
  return tasks.Diffusion(
      SDE, Parameterization('eps', 't999'), model or PooledMLP(),
      functools.partial(sde_lib.losses.dsm_loss, sde=SDE, reduce_mean=True),
      text=models.TextEncoder(vocab_size=text.VOCAB_SIZE, max_len=MAX_LEN, width=32,
                              layers=2, heads=2),
      empty_caption=empty[0], pad_token=text.PAD, caption_dropout=caption_dropout)


def _tokens(captions):
  return jnp.asarray(text.tokenize(captions, max_len=MAX_LEN)[0])


def test_the_encoder_reads_the_order_of_the_digit_names():
  # (The encoder's padding invariance: tests/models/test_text_encoder.py.)
  task = _task()
  params = jax.jit(task.init, static_argnums=1)(jax.random.key(0), (8, 8, 1))
  assert sorted(params) == ['score', 'text']
  encode = jax.jit(task.encode_text)  # one program, not one per operation
  for template in range(len(bundled.PAIR_TEMPLATES)):
    captions = [bundled.pair_caption(3, 7, template),
                bundled.pair_caption(7, 3, template)]
    read = encode(params, _tokens(captions))
    assert float(jnp.max(jnp.abs(read.pooled[0] - read.pooled[1]))) > 1e-3, captions


def test_caption_dropout_replaces_whole_captions_by_the_empty_one():
  task = _task(caption_dropout=0.5)
  tokens = _tokens([bundled.pair_caption(i % 10, 3, 1) for i in range(64)])
  batch = task.conditions(jax.random.key(1), {'image': jnp.zeros((64, 8, 8, 1)),
                                              'tokens': tokens}, train=True)
  dropped = np.all(np.asarray(batch['tokens']) == task.empty_caption, axis=1)
  kept = np.all(np.asarray(batch['tokens']) == np.asarray(tokens), axis=1)
  assert np.all(dropped ^ kept) and 20 <= dropped.sum() <= 44
  untouched = task.conditions(jax.random.key(1), {'tokens': tokens}, train=False)
  np.testing.assert_array_equal(untouched['tokens'], tokens)


def test_no_caption_is_the_empty_caption():
  task = _task()
  params = jax.jit(task.init, static_argnums=1)(jax.random.key(2), (8, 8, 1))
  x = jax.random.normal(jax.random.key(3), (3, 8, 8, 1))
  t = jnp.full((3,), 0.5)
  empty_tokens = jnp.broadcast_to(jnp.asarray(task.empty_caption), (3, MAX_LEN))
  none, empty = jax.jit(lambda params: (
      task.score_fn(params)(x, t),
      task.score_fn(params, caption=task.encode_text(params, empty_tokens))(x, t)))(params)
  np.testing.assert_allclose(none, empty, rtol=1e-6)


def _pairs(pairs_data_dir, split, batch, seed=0):
  return pipeline.get_dataset(
      'digit_pairs', split, data_dir=pairs_data_dir, image_size=8, centered=False,
      random_flip=False, uniform_dequantization=False, global_batch_size=batch, seed=seed, caption_key='caption',
      max_len=MAX_LEN)


def test_a_model_trained_on_the_pairs_prefers_its_prompt_to_the_swapped_one(pairs_data_dir):
  task, optimizer = _task(caption_dropout=0.1), optax.adam(3e-3)
  params = jax.jit(task.init, static_argnums=1)(jax.random.key(4), (8, 8, 1))
  opt_state = optimizer.init(params)

  @functools.partial(jax.jit, compiler_options=OPTIMIZED)  # 600 steps
  def step(params, opt_state, batch, rng):
    loss, grads = jax.value_and_grad(task.loss)(params, batch, rng, train=True)
    updates, opt_state = optimizer.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state, loss

  # The training split read once, in batches of seeded permutations: decoding each step's
  # batch through the input pipeline would take as long as the steps.
  train = next(_pairs(pairs_data_dir, 'train', bundled.DIGIT_PAIRS_NUM_TRAIN).epoch(
      bundled.DIGIT_PAIRS_NUM_TRAIN))
  rng = np.random.default_rng(0)
  order = np.concatenate([rng.permutation(len(train['image']))
                          for _ in range(-(-STEPS * BATCH // len(train['image'])))])
  for i in range(STEPS):
    chosen = order[i * BATCH:(i + 1) * BATCH]
    batch = {k: train[k][chosen] for k in ('image', 'tokens')}
    params, opt_state, _ = step(params, opt_state, batch, jax.random.key(i))
  # Held-out test captions of pairs of two different digits, and the same captions with the
  # two digits swapped: from the same x(t), the true caption predicts x(0) better. (At
  # t = 0.3 the gap is ~20 standard errors after 800 steps, ~1 after 300.)
  test = next(_pairs(pairs_data_dir, 'test', 1000).epoch(1000))
  left, right = test['label'] // 10, test['label'] % 10
  keep = left != right
  swapped = _tokens([bundled.pair_caption(r, l, bundled.held_out_template(l, r))
                     for l, r in zip(left[keep], right[keep])])
  images = jnp.asarray(test['image'][keep])

  @jax.jit
  def errors(tokens, t):
    """Per image: the squared error of the prediction of x(0) from x(t)."""
    z = jax.random.normal(jax.random.key(5), images.shape)
    t = jnp.full(images.shape[:1], t)
    alpha, std = (f(t)[:, None, None, None] for f in (SDE.alpha, SDE.std))
    score = task.score_fn(params, caption=task.encode_text(params, tokens))
    x0 = sde_lib.denoiser(SDE, score, alpha * images + std * z, t)
    return jnp.mean((x0 - images) ** 2, axis=(1, 2, 3))  # [B]

  matched = np.asarray(errors(jnp.asarray(test['tokens'][keep]), 0.3))
  gap = np.asarray(errors(swapped, 0.3)) - matched
  print('swapped - matched', gap.mean(), gap.std() / np.sqrt(len(gap)), matched.mean())
  assert gap.mean() > 5 * gap.std() / np.sqrt(len(gap))
