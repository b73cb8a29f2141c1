"""The autoencoder task against LDM's loss recomputed independently: the KL in closed form
(numpy), the adaptive weight and every term through full decoder applies (not the task's
decode_features + apply_conv_out), the hinge loss on hand-set logits, and the one-gradient
objective's gradients against the generator's and the discriminator's losses alone. Then a
few Adam steps on the digits, and the frozen LPIPS tree.

Parameters are drawn by numpy (as tests/models/test_autoencoder.py's): a jitted Flax init of
even a tiny autoencoder compiles for seconds; one test covers `init` on a smaller one.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import sklearn.datasets

import models
import tasks
from tasks.autoencoder import adopt_weight, hinge_d_loss
from tests.models import reference_weights


def _autoencoder(size: int) -> models.AutoencoderKL:
  return models.AutoencoderKL(in_channels=1, out_channels=1, ch=8, ch_mult=(1, 2),
                              num_res_blocks=1, resolution=size, mid_attention=False,
                              z_channels=2, embed_dim=2, norm_groups=4)


AE = _autoencoder(8)
DISC = models.NLayerDiscriminator(ndf=8, n_layers=1)  # 8x8 images -> 2x2 patch logits
KL_WEIGHT, DISC_WEIGHT, DISC_FACTOR, DISC_START = 0.1, 0.5, 0.7, 10
GAN = tasks.Autoencoder(AE, centered=True, kl_weight=KL_WEIGHT, logvar_init=0.5,
                        discriminator=DISC, disc_start=DISC_START, disc_weight=DISC_WEIGHT,
                        disc_factor=DISC_FACTOR)
L2 = tasks.Autoencoder(AE, centered=False, rec_loss='l2')
SHAPE = (8, 8, 1)
RNG = jax.random.key(3, impl='rbg')  # threefry's take seconds longer to compile


@functools.cache
def _digits() -> np.ndarray:
  """scikit-learn's digits in [0, 1], [1797, 8, 8, 1]."""
  return np.float32(sklearn.datasets.load_digits().images[..., None] / 16.0)


def _random_params(task: tasks.Autoencoder, image_shape, seed: int = 0) -> dict:
  """The task's trees, drawn by numpy: kernels U(+-1/sqrt(fan_in)) as PyTorch's default,
  norm scales near 1, biases near 0, logvar = logvar_init."""
  shapes = jax.eval_shape(lambda key: task.init(key, image_shape), jax.random.key(0, impl='rbg'))
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    if not leaf.shape:
      return np.float32(task.logvar_init)
    if len(leaf.shape) > 1:
      bound = 1 / np.sqrt(np.prod(leaf.shape[:-1]))
      return np.float32(rng.uniform(-bound, bound, leaf.shape))
    scale = jax.tree_util.keystr(path).endswith("'scale']")
    return np.float32(scale + 0.1 * rng.normal(size=leaf.shape))

  return jax.tree_util.tree_map_with_path(draw, shapes)


def _with_kernel(ae_params: dict, kernel: jax.Array) -> dict:
  decoder = {**ae_params['decoder'], 'conv_out': {**ae_params['decoder']['conv_out'],
                                                  'kernel': kernel}}
  return {**ae_params, 'decoder': decoder}


def _decode(ae_params: dict, z: jax.Array) -> jax.Array:
  """The full decoder, in [-1, 1]."""
  return AE.apply({'params': ae_params}, z, method='decode')


def _posterior(ae_params: dict, x: jax.Array) -> models.DiagonalGaussian:
  return AE.apply({'params': ae_params}, x, method='encode')


def _disc(disc_params: dict, x: jax.Array) -> jax.Array:
  return DISC.apply({'params': disc_params}, x)


@jax.jit
def _gan_terms_and_grads(params, images, step):
  def loss(p):
    terms = GAN.loss_terms(p, {'image': images}, RNG, train=True, step=step)
    return terms['loss'], terms

  (_, terms), grads = jax.value_and_grad(loss, has_aux=True)(params)
  return terms, grads


def _nll_l1(x, x_rec, logvar):
  return jnp.sum(jnp.abs(x - x_rec) / jnp.exp(logvar) + logvar) / x.shape[0]


@jax.jit
def _gan_reference(params, x):
  """LDM's terms and gradients recomputed through full decoder applies, without the task."""
  ae, disc, logvar = params['autoencoder'], params['discriminator'], params['logvar']['logvar']
  posterior = _posterior(ae, x)
  z = posterior.sample(RNG)  # the task's latents: encode(params, images, rng)
  kernel = ae['decoder']['conv_out']['kernel']
  nll = lambda k: _nll_l1(x, _decode(_with_kernel(ae, k), z), logvar)
  g = lambda k: -jnp.mean(_disc(disc, _decode(_with_kernel(ae, k), z)))
  x_rec = _decode(ae, z)

  def hinge(disc_params):
    return DISC_FACTOR * hinge_d_loss(_disc(disc_params, x), _disc(disc_params, x_rec))

  # Without the stop_gradients the generator's GAN term would train the discriminator too.
  leak = jax.grad(lambda p: -jnp.mean(_disc(p, x_rec)))(disc)
  return {'mean': posterior.mean, 'logvar': posterior.logvar, 'nll': nll(kernel),
          'g': g(kernel), 'nll_grad': jax.grad(nll)(kernel), 'g_grad': jax.grad(g)(kernel),
          'disc_grad': jax.grad(hinge)(disc), 'leak': leak}


@jax.jit
def _generator_grad(trainable, disc_params, x, d_weight):
  """The gradient of LDM's generator loss alone (the discriminator a constant)."""

  def generator(trees):
    ae, logvar = trees['autoencoder'], trees['logvar']['logvar']
    posterior = _posterior(ae, x)
    x_rec = _decode(ae, posterior.sample(RNG))
    g = -jnp.mean(_disc(disc_params, x_rec))
    return (_nll_l1(x, x_rec, logvar) + KL_WEIGHT * jnp.mean(posterior.kl())
            + d_weight * DISC_FACTOR * g)

  return jax.grad(generator)(trainable)


@pytest.fixture(scope='module')
def gan():
  # Images of H != W: pairs of digits side by side, 8x16 (the PatchGAN's logits 2x6).
  params = _random_params(GAN, (8, 16, 1))
  images = 2.0 * np.concatenate([_digits()[:6], _digits()[6:12]], axis=2) - 1.0  # centered
  # One program for both steps: the step is an argument.
  before, after = (_gan_terms_and_grads(params, images, jnp.int32(step))
                   for step in (DISC_START - 1, DISC_START))
  return {'params': params, 'x': images, 'before': before, 'after': after,
          'reference': _gan_reference(params, images)}


def test_kl_equals_the_closed_form(gan):
  mean, logvar = (np.float64(gan['reference'][k]) for k in ('mean', 'logvar'))
  kl = 0.5 * np.sum(mean**2 + np.exp(logvar) - 1 - logvar, axis=(1, 2, 3))  # [B]
  terms, _ = gan['after']
  np.testing.assert_allclose(terms['kl'], np.mean(kl), rtol=1e-5)
  assert np.mean(kl) > 0.1  # not a vanishing posterior, where any formula agrees


def test_adaptive_weight_is_ldms(gan):
  reference = gan['reference']
  nll_grad, g_grad = (np.float64(reference[k]) for k in ('nll_grad', 'g_grad'))
  ratio = np.linalg.norm(nll_grad) / (np.linalg.norm(g_grad) + 1e-4)
  assert 1 < ratio < 1e4  # not clipped: the formula decides
  for terms, _ in (gan['before'], gan['after']):  # computed before disc_start too, as LDM's
    np.testing.assert_allclose(terms['d_weight'], DISC_WEIGHT * ratio, rtol=1e-4)
    np.testing.assert_allclose(terms['nll'], reference['nll'], rtol=1e-5)
    np.testing.assert_allclose(terms['g'], reference['g'], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(terms['logvar'], 0.5)


def test_gan_terms_count_from_disc_start_on(gan):
  terms, grads = gan['before']
  assert terms['disc_active'] == 0.0
  np.testing.assert_array_equal(terms['loss'], terms['nll'] + KL_WEIGHT * terms['kl'])
  for leaf in jax.tree.leaves(grads['discriminator']):
    np.testing.assert_array_equal(leaf, 0.0)
  assert all(np.any(leaf != 0) for leaf in jax.tree.leaves(grads['autoencoder']))

  terms, grads = gan['after']
  assert terms['disc_active'] == 1.0
  gan_part = DISC_FACTOR * (terms['d_weight'] * terms['g'] + terms['d'])
  assert abs(gan_part) > 0.1
  np.testing.assert_allclose(terms['loss'], terms['nll'] + KL_WEIGHT * terms['kl'] + gan_part,
                             rtol=1e-6)
  np.testing.assert_array_equal(adopt_weight(0.7, jnp.arange(8, 12), threshold=10),
                                np.float32([0, 0, 0.7, 0.7]))


def _assert_trees_close(actual, expected, *, rtol=1e-4):
  for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
    np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * np.max(np.abs(e)))


def test_one_gradient_is_the_generators_and_the_discriminators(gan):
  params, reference = gan['params'], gan['reference']
  terms, grads = gan['after']
  _assert_trees_close(grads['discriminator'], reference['disc_grad'])
  trainable = {'autoencoder': params['autoencoder'], 'logvar': params['logvar']}
  generator_grad = _generator_grad(trainable, params['discriminator'], gan['x'],
                                   terms['d_weight'])
  _assert_trees_close({k: grads[k] for k in trainable}, generator_grad)
  # The generator's term would leak this much into the discriminator's gradient without
  # the stop_gradients: enough for the comparison above to see.
  leak = DISC_FACTOR * terms['d_weight'] * optax.tree.norm(reference['leak'])
  assert leak > 0.1 * optax.tree.norm(reference['disc_grad'])


def test_hinge_loss_on_hand_set_logits():
  real = jnp.float32([2.0, 0.5, -1.0, 1.0]).reshape(2, 1, 2, 1)  # relu(1 - .): 0, .5, 2, 0
  fake = jnp.float32([-2.0, 0.0, 0.5, -0.5]).reshape(2, 1, 2, 1)  # relu(1 + .): 0, 1, 1.5, .5
  np.testing.assert_allclose(hinge_d_loss(real, fake), 0.5 * (0.625 + 0.75))
  np.testing.assert_allclose(hinge_d_loss(real, fake, weights=jnp.float32([1, 0])),
                             0.5 * (0.25 + 0.5))


def test_training_with_a_discriminator_needs_the_step(gan):
  with pytest.raises(ValueError, match='step'):
    GAN.loss_terms(gan['params'], {'image': gan['x']}, RNG, train=True)


@jax.jit
def _l2_test_terms(params, images, weights):
  return L2.loss_terms(params, {'image': images}, RNG, train=False, weights=weights)


@pytest.fixture(scope='module')
def l2():
  params = _random_params(L2, SHAPE)
  images = _digits()[:5]

  @jax.jit
  def outputs(params, images):
    x = 2.0 * images - 1.0  # L2 is not centered: the network sees [-1, 1]
    posterior = _posterior(params['autoencoder'], x)
    mode = L2.encode(params, images, None, sample=False)
    return {'x': x, 'mean': posterior.mean, 'mode': mode,
            'x_rec': _decode(params['autoencoder'], posterior.sample(RNG)),
            'decoded_mode': _decode(params['autoencoder'], posterior.mean),
            'reconstruct': L2.reconstruct(params, images), 'decode': L2.decode(params, mode),
            'terms': _l2_test_terms(params, images, jnp.ones(5))}

  return outputs(params, images)


def test_l2_nll_is_the_summed_squared_error(l2):
  terms = l2['terms']
  x, x_rec = np.float64(l2['x']), np.float64(l2['x_rec'])
  np.testing.assert_allclose(terms['nll'], np.sum((x - x_rec)**2) / 5, rtol=1e-5)
  np.testing.assert_allclose(terms['rec'], np.mean((x - x_rec)**2), rtol=1e-5)
  np.testing.assert_allclose(terms['loss'], terms['nll'] + 1e-6 * terms['kl'], rtol=1e-6)
  for name in ('g', 'd', 'd_weight', 'disc_active', 'perceptual', 'logvar'):
    assert terms[name] == 0.0, name


def test_model_space_maps(l2):
  assert l2['mode'].shape == (5, 4, 4, 2)
  np.testing.assert_array_equal(l2['mode'], l2['mean'])
  np.testing.assert_allclose(l2['reconstruct'], (l2['decoded_mode'] + 1) / 2, rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(l2['decode'], l2['reconstruct'], rtol=1e-6, atol=1e-6)


def test_zero_weighted_examples_do_not_change_the_test_loss():
  params = _random_params(L2, SHAPE)
  real = _digits()[:4]
  weights = jnp.float32([1, 1, 1, 1, 0, 0])
  padded = [np.concatenate([real, padding]) for padding in
            (np.zeros((2,) + SHAPE, np.float32), _digits()[100:102])]
  first, second = (_l2_test_terms(params, images, weights) for images in padded)
  for name in first:
    np.testing.assert_allclose(first[name], second[name], rtol=1e-6, err_msg=name)
  unweighted = _l2_test_terms(params, padded[1], jnp.ones(6))
  assert abs(unweighted['loss'] - first['loss']) > 1e-3 * first['loss']  # the weights matter


def test_adam_reduces_the_reconstruction_error():
  task = tasks.Autoencoder(AE, centered=False)  # LDM's l1, kl_weight 1e-6
  params = _random_params(task, SHAPE)
  images = _digits()[:16]
  optimizer = optax.adam(3e-3)

  @jax.jit
  def train_step(params, opt_state, step):
    """One Adam step, and the mean |reconstruction - image| (model space) before it."""
    error = jnp.mean(jnp.abs(task.reconstruct(params, images) - images))
    rng = jax.random.fold_in(RNG, step)
    grads = jax.grad(task.loss)(params, {'image': images}, rng, train=True, step=step)
    updates, opt_state = optimizer.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state, error

  opt_state, errors = optimizer.init(params), []
  for step in range(41):
    params, opt_state, error = train_step(params, opt_state, jnp.int32(step))
    errors.append(float(error))
  before, after = errors[0], errors[-1]  # after 0 and 40 steps
  print(f'mean |reconstruction - image| on [0, 1]: {before:.3f} -> {after:.3f}')
  assert after < 0.5 * before


def test_the_frozen_lpips_tree_reaches_the_loss():
  task = tasks.Autoencoder(_autoencoder(16), centered=False, lpips=models.LPIPS(),
                           perceptual_weight=0.5)
  assert task.frozen == ('lpips',) and L2.frozen == ()
  shape = (16, 16, 1)
  params = _random_params(task, shape)
  # init makes every tree, the frozen one as a stand-in of LPIPS's shapes
  assert set(params) == {'autoencoder', 'logvar', 'lpips'}
  assert jax.tree.map(np.shape, params['lpips']) == jax.tree.map(
      np.shape, models.convert_lpips_state_dict(reference_weights.random_lpips_state_dict(0)))
  lpips = models.convert_lpips_state_dict(reference_weights.random_lpips_state_dict(0))
  images = np.repeat(np.repeat(_digits()[:2], 2, axis=1), 2, axis=2)  # [2, 16, 16, 1]

  @jax.jit
  def outputs(params):
    terms = task.loss_terms(params, {'image': images}, RNG, train=False)
    ae = params['autoencoder']
    x = 2.0 * images - 1.0
    x_rec = task.model.apply({'params': ae}, task.model.apply(
        {'params': ae}, x, method='encode').sample(RNG), method='decode')
    distance = models.LPIPS().apply({'params': params['lpips']}, x, x_rec)  # [2]
    return terms, x, x_rec, distance

  terms, x, x_rec, distance = outputs({**params, 'lpips': lpips})
  x, x_rec, distance = np.float64(x), np.float64(x_rec), np.float64(distance)
  assert np.all(distance > 1e-3)
  np.testing.assert_allclose(terms['perceptual'], np.mean(distance), rtol=1e-4)
  expected = np.sum(np.abs(x - x_rec)) / 2 + 0.5 * 16 * 16 * np.mean(distance)
  np.testing.assert_allclose(terms['nll'], expected, rtol=1e-4)

  # LPIPS is linear in its 'lin' layers: doubling them doubles the distances.
  doubled = {**lpips, **{f'lin{k}': {'kernel': 2 * lpips[f'lin{k}']['kernel']}
                         for k in range(5)}}
  terms_doubled = outputs({**params, 'lpips': doubled})[0]
  np.testing.assert_allclose(terms_doubled['perceptual'], 2 * terms['perceptual'], rtol=1e-4)
  np.testing.assert_allclose(terms_doubled['nll'] - terms['nll'],
                             0.5 * 16 * 16 * terms['perceptual'], rtol=1e-3)


def test_init_makes_the_trainable_trees():
  small = models.AutoencoderKL(in_channels=1, out_channels=1, ch=4, ch_mult=(1,),
                               num_res_blocks=0, resolution=8, mid_attention=False,
                               z_channels=1, embed_dim=1, norm_groups=2)
  task = tasks.Autoencoder(small, centered=True, logvar_init=-0.25,
                           discriminator=models.NLayerDiscriminator(ndf=4, n_layers=1,
                                                                     use_actnorm=True))
  params = jax.jit(task.init, static_argnums=1)(jax.random.key(0, impl='rbg'), (8, 8, 1))
  assert set(params) == {'autoencoder', 'logvar', 'discriminator'} and task.frozen == ()
  np.testing.assert_array_equal(params['logvar']['logvar'], np.float32(-0.25))
  assert params['autoencoder']['decoder']['conv_out']['kernel'].shape == (3, 3, 4, 1)
  # ActNorm's data-dependent scale, from a batch that is not constant: finite, moderate.
  scale = params['discriminator']['norm1']['scale']
  assert np.all(np.isfinite(scale)) and np.all(np.abs(scale) < 1e3)
  assert tasks.TASKS['autoencoder'] is tasks.Autoencoder


def test_bad_options_raise():
  with pytest.raises(ValueError, match='rec_loss'):
    tasks.Autoencoder(AE, centered=True, rec_loss='l3')
  with pytest.raises(ValueError, match='kl_weight'):
    tasks.Autoencoder(AE, centered=True, kl_weight=-1.0)
