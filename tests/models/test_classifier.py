import jax
import jax.numpy as jnp
import pytest

from models import Classifier, get_model

TINY = dict(nf=8, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4,), dropout=0.0,
            init_scale=1.0)


def _inputs(batch=4, size=8):
  x = jax.random.normal(jax.random.key(0), (batch, size, size, 1))
  return x, jnp.linspace(0.1, 2.0, batch)


def _paths(tree):
  return {jax.tree_util.keystr(p): leaf.shape
          for p, leaf in jax.tree_util.tree_leaves_with_path(tree)}


@pytest.mark.parametrize('pooling, options', [
    ('attention', dict()),
    ('mean', dict(fir=False, progressive_input='none', embedding_type='positional')),
])
def test_logits_depend_on_the_image_and_the_time_and_share_the_score_networks_encoder(
    pooling, options):
  model = Classifier(num_outputs=10, pooling=pooling, **TINY, **options)
  x, t = _inputs()
  key = jax.random.key(1, impl='rbg')
  params = jax.jit(model.init)(key, x, t)['params']
  apply = jax.jit(lambda x, t: model.apply({'params': params}, x, t))
  logits = apply(x, t)
  assert logits.shape == (4, 10) and bool(jnp.all(jnp.isfinite(logits)))
  same_x = jnp.broadcast_to(x[:1], x.shape)
  assert float(jnp.max(jnp.abs(apply(same_x, t)[0] - apply(same_x, t)[1]))) > 1e-4
  assert float(jnp.max(jnp.abs(apply(x, jnp.full_like(t, 0.5))[0]
                               - apply(x[::-1], jnp.full_like(t, 0.5))[-1]))) == 0.0
  # Its body is the U-Net's encoder, parameter for parameter; only the final norm and the
  # head are its own.
  unet = _paths(jax.eval_shape(get_model('ncsnpp')(**TINY, **options).init, key, x, t)['params'])
  mine = _paths(params)
  own = {p for p in mine if p.startswith(("['AttentionPool_0']", "['head']", "['GroupNorm_"))}
  body = {p: s for p, s in mine.items() if p not in own}
  assert own and body and all(unet.get(p) == s for p, s in body.items())
  assert len(body) < len(unet) / 1.5  # no decoder


def test_the_guidance_gradient_is_finite_and_reaches_every_pixel():
  model = Classifier(num_outputs=10, **TINY)
  x, t = _inputs()
  params = jax.jit(model.init)(jax.random.key(1, impl='rbg'), x, t)['params']
  y = jnp.array([0, 3, 5, 9])
  log_prob = lambda x: jnp.take_along_axis(jax.nn.log_softmax(
      model.apply({'params': params}, x, t)), y[:, None], -1).sum()
  grad = jax.jit(jax.grad(log_prob))(x)
  assert grad.shape == x.shape and bool(jnp.all(jnp.isfinite(grad)))
  assert float(jnp.min(jnp.max(jnp.abs(grad), axis=(1, 2, 3)))) > 0


def test_bad_pooling_and_heads_raise():
  x, t = _inputs()
  with pytest.raises(ValueError, match="unknown pooling 'max'; known: \\['attention', 'mean'\\]"):
    jax.eval_shape(Classifier(pooling='max', **TINY).init, jax.random.key(0), x, t)
  with pytest.raises(ValueError, match='16 channels do not split into 3 heads'):
    jax.eval_shape(Classifier(num_heads=3, **TINY).init, jax.random.key(0), x, t)
