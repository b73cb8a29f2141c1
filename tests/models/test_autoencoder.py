"""The KL autoencoder against PyTorch (diffusers and LDM), closed forms and the LDM paper.

tests/testdata/vae_*_tiny.* were written by benchmarks/autoencoder_reference.py (its docstring
has the command): a tiny diffusers AutoencoderKL with random weights, the same weights in
LDM's layout, and PyTorch's outputs on a fixed input.
"""

import json
import pathlib
import re
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from models import (AutoencoderKL, DiagonalGaussian, apply_conv_out, convert_state_dict,
                    read_safetensors)

DATA = pathlib.Path(__file__).resolve().parents[1] / 'testdata'
LAYOUTS = ('diffusers', 'compvis')
# The reference's architecture, as the converter must read it from the shapes (norm_groups
# and resolution it is told).
TINY = dict(in_channels=3, out_channels=3, ch=4, ch_mult=(1, 2, 2), num_res_blocks=1,
            resolution=16, attn_resolutions=(4,), mid_attention=True, z_channels=2,
            embed_dim=2, use_quant_conv=True, resamp_with_conv=True, norm_groups=2)
MODEL = AutoencoderKL(**TINY)


def _tensors(layout):
  return read_safetensors(DATA / f'vae_{layout}_tiny.safetensors')


def _convert(tensors, **options):
  return convert_state_dict(tensors, norm_groups=2, resolution=16, **options)


@pytest.fixture(scope='module')
def reference():
  return dict(np.load(DATA / 'vae_tiny_reference.npz'))


@pytest.fixture(scope='module')
def converted():
  return {layout: _convert(_tensors(layout)) for layout in LAYOUTS}


@jax.jit
def _outputs(params, x):
  """The tiny model's posterior and decode(mean), in one program (compiled once for both
  layouts)."""
  decoded, posterior = MODEL.apply({'params': params}, x, sample_posterior=False)
  return dict(mean=posterior.mean, logvar=posterior.logvar, decoded=decoded)


@pytest.fixture(scope='module')
def outputs(converted, reference):
  return {layout: _outputs(params, reference['x']) for layout, (_, params) in converted.items()}


def _random_params(model, x, seed=0):
  """Random parameters of the model's shapes, drawn by numpy: a jitted Flax init compiles
  every initialiser's threefry, tens of seconds on CPU even for a tiny autoencoder."""
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), x, sample_posterior=False))
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    if len(leaf.shape) > 1:  # a kernel: unit-variance outputs
      return np.float32(rng.normal(size=leaf.shape) / np.sqrt(np.prod(leaf.shape[:-1])))
    scale = jax.tree_util.keystr(path).endswith("'scale']")
    return np.float32(scale + 0.1 * rng.normal(size=leaf.shape))

  return jax.tree_util.tree_map_with_path(draw, shapes)


# --- DiagonalGaussian --------------------------------------------------------------------------

def _gaussian(seed=0, shape=(3, 2, 2, 2)):
  rng = np.random.default_rng(seed)
  return DiagonalGaussian(jnp.asarray(rng.normal(size=shape), jnp.float32),
                          jnp.asarray(rng.uniform(-2, 1, shape), jnp.float32))


def test_kl_equals_the_closed_form():
  q = _gaussian()
  mean, std = np.float64(q.mean), np.exp(0.5 * np.float64(q.logvar))
  # KL(N(m, s^2) || N(0, 1)) = log(1 / s) + (s^2 + m^2) / 2 - 1/2 per dimension.
  expected = np.sum(-np.log(std) + (std**2 + mean**2) / 2 - 0.5, axis=(1, 2, 3))
  np.testing.assert_allclose(q.kl(), expected, rtol=1e-5)


def test_kl_and_sample_agree_with_monte_carlo():
  q, n = _gaussian(1, (2, 2, 2, 1)), 50_000
  tiled = DiagonalGaussian(*(jnp.tile(a, (n, 1, 1, 1)) for a in q))
  z = np.float64(tiled.sample(jax.random.key(0))).reshape((n,) + q.mean.shape)
  mean, std = np.float64(q.mean), np.float64(q.std)
  np.testing.assert_allclose(z.mean(0), mean, atol=0.03)
  np.testing.assert_allclose(z.std(0), std, rtol=0.03)
  # KL = E_q[log q(z) - log p(z)], with log densities from scipy.
  log_ratio = np.sum(stats.norm.logpdf(z, mean, std) - stats.norm.logpdf(z), axis=(2, 3, 4))
  estimate, error = log_ratio.mean(0), log_ratio.std(0) / np.sqrt(n)
  assert np.all(np.abs(estimate - np.float64(q.kl())) < 4 * error), (estimate, q.kl(), error)
  # nll is -log q, summed per example.
  np.testing.assert_allclose([-q.nll(jnp.float32(sample)) for sample in z[:3]],
                             np.sum(stats.norm.logpdf(z[:3], mean, std), axis=(2, 3, 4)),
                             rtol=1e-5)


def test_from_moments_splits_and_clips_the_log_variance_as_ldm():
  moments = jnp.array([1.0, -2.0, 50.0, -100.0]).reshape(1, 1, 1, 4)
  q = DiagonalGaussian.from_moments(moments)
  np.testing.assert_array_equal(q.mean.ravel(), [1.0, -2.0])
  np.testing.assert_array_equal(q.logvar.ravel(), [20.0, -30.0])
  assert q.mode() is q.mean


# --- the network ---------------------------------------------------------------------------

@pytest.mark.parametrize('ch_mult', [(1, 2), (1, 2, 2), (1, 1, 2, 2)], ids=['f2', 'f4', 'f8'])
def test_shapes_per_downsampling_factor(ch_mult):
  model = AutoencoderKL(ch=8, ch_mult=ch_mult, num_res_blocks=1, z_channels=3, embed_dim=5,
                        resolution=16, attn_resolutions=(16, 8), norm_groups=4)
  f = model.downsampling_factor
  assert f == 2**(len(ch_mult) - 1)
  x = jnp.zeros((2, 16, 24, 3))
  (reconstruction, posterior), _ = jax.eval_shape(
      lambda: model.init_with_output(jax.random.key(0), x, jax.random.key(1)))
  assert reconstruction.shape == x.shape
  assert posterior.mean.shape == posterior.logvar.shape == (2, 16 // f, 24 // f, 5)


def test_call_decodes_a_posterior_sample_and_decode_features_feed_the_last_layer():
  model = AutoencoderKL(ch=4, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(),
                        mid_attention=False, z_channels=2, embed_dim=2, norm_groups=2)
  x = np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)

  @jax.jit
  def run(params, x, rng):  # arguments, not constants that XLA would fold through the model
    apply = lambda *args, **kwargs: model.apply(params, *args, **kwargs)
    reconstruction, posterior = apply(x, rng)
    z = posterior.sample(rng)
    features = apply(z, method='decode_features')  # XLA merges the decoders of z
    conv_out = params['params']['decoder']['conv_out']
    return (reconstruction, posterior, z, apply(z, method='decode'), features,
            apply_conv_out(conv_out, features))

  reconstruction, posterior, z, decoded_z, features, from_features = run(
      _random_params(model, x), x, jax.random.key(1))
  assert np.min(np.abs(z - posterior.mean)) > 0  # a sample, not the mean
  np.testing.assert_array_equal(reconstruction, decoded_z)
  assert features.shape == (2, 8, 8, 4)
  np.testing.assert_allclose(from_features, reconstruction, atol=1e-6)


def test_bad_sizes_and_options_raise():
  model = AutoencoderKL(ch=8, ch_mult=(1, 2, 2), num_res_blocks=1, norm_groups=4)
  init = lambda m, size: jax.eval_shape(lambda: m.init(
      jax.random.key(0), jnp.zeros((1, size, size, 3)), sample_posterior=False))
  with pytest.raises(ValueError, match='divisible by 4'):
    init(model, 18)
  with pytest.raises(ValueError, match=r'attn_resolutions \[32\]'):
    init(model.clone(attn_resolutions=(32,)), 16)
  with pytest.raises(ValueError, match='embed_dim'):
    init(model.clone(use_quant_conv=False, embed_dim=3), 16)
  with pytest.raises(ValueError, match='needs an rng'):
    jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3))))


# Counted with LDM's own Encoder and Decoder (CompVis/latent-diffusion a506df5, its
# models/first_stage_models/kl-f*/config.yaml, plus quant_conv and post_quant_conv) and with
# diffusers 0.42.1's AutoencoderKL of the same shape, which agree; kl-f8 is Stable
# Diffusion's VAE. The discriminator and LPIPS of LDM's loss are not counted.
PAPER_SIZES = [
    ('kl-f4', dict(ch_mult=(1, 2, 4), z_channels=3, embed_dim=3), 55_312_063),
    ('kl-f8', dict(ch_mult=(1, 2, 4, 4), z_channels=4, embed_dim=4), 83_653_863),
    ('kl-f16', dict(ch_mult=(1, 1, 2, 2, 4), z_channels=16, embed_dim=16,
                    attn_resolutions=(16,)), 69_610_963),
]
# kl-f32 (ch_mult (1, 1, 2, 2, 4, 4), z 64, attention at 16 and 8) has 103,880,131 in both too.


@pytest.mark.parametrize('name, options, expected', PAPER_SIZES, ids=[r[0] for r in PAPER_SIZES])
def test_parameter_count_equals_ldms(name, options, expected):
  model = AutoencoderKL(ch=128, num_res_blocks=2, resolution=256, **options)
  f = model.downsampling_factor
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, f, f, 3)),
                                             sample_posterior=False))
  assert sum(leaf.size for leaf in jax.tree.leaves(shapes)) == expected


# --- PyTorch checkpoints ---------------------------------------------------------------------

def test_the_converter_reads_the_architecture_from_the_shapes(converted, reference):
  # What the shapes cannot tell is the reference script's too.
  assert (reference['norm_groups'], reference['resolution']) == (2, 16)
  assert tuple(reference['attn_resolutions']) == TINY['attn_resolutions']
  for options, _ in converted.values():
    assert options == TINY


def test_both_layouts_give_the_same_parameters(converted):
  (_, diffusers), (_, compvis) = converted['diffusers'], converted['compvis']
  jax.tree.map(np.testing.assert_array_equal, diffusers, compvis)


@pytest.mark.parametrize('layout', LAYOUTS)
def test_converted_checkpoint_reproduces_pytorch(layout, outputs, reference):
  out = outputs[layout]
  for name in ('mean', 'logvar', 'decoded'):
    np.testing.assert_allclose(out[name], reference[name], atol=1e-5, err_msg=name)
  assert np.std(reference['decoded']) > 0.1  # not a vanishing output


def _params_equal(a, b):
  jax.tree.map(np.testing.assert_array_equal, a, b)


def test_old_diffusers_attention_names(converted):
  renames = {'to_q': 'query', 'to_k': 'key', 'to_v': 'value', 'to_out.0': 'proj_attn'}
  old = {re.sub(r'\.(to_q|to_k|to_v|to_out\.0)\.', lambda m: f'.{renames[m[1]]}.', key): value
         for key, value in _tensors('diffusers').items()}
  assert 'encoder.mid_block.attentions.0.query.weight' in old
  options, params = _convert(old)
  assert options == TINY
  _params_equal(params, converted['diffusers'][1])


def test_other_models_keys_are_ignored_and_a_prefix_is_read(converted):
  ldm_checkpoint = {'first_stage_model.' + key: value
                    for key, value in _tensors('compvis').items()}
  ldm_checkpoint['first_stage_model.loss.discriminator.main.0.weight'] = np.zeros((64, 3, 4, 4))
  ldm_checkpoint['model.diffusion_model.input_blocks.0.0.weight'] = np.zeros((8, 4, 3, 3))
  options, params = _convert(ldm_checkpoint, prefix='first_stage_model.')
  assert options == TINY
  _params_equal(params, converted['compvis'][1])


def test_embed_dim_and_missing_quant_convs_are_read_from_the_shapes():
  tensors = _tensors('compvis')
  rng = np.random.default_rng(0)
  tensors['quant_conv.weight'] = rng.normal(size=(6, 4, 1, 1)).astype(np.float32)
  tensors['quant_conv.bias'] = np.zeros(6, np.float32)
  tensors['post_quant_conv.weight'] = rng.normal(size=(2, 3, 1, 1)).astype(np.float32)
  options, params = _convert(tensors)
  assert options == {**TINY, 'embed_dim': 3}
  assert params['quant_conv']['kernel'].shape == (1, 1, 4, 6)
  without = {k: v for k, v in tensors.items() if 'quant_conv' not in k}
  options, params = _convert(without)
  assert options == {**TINY, 'use_quant_conv': False}
  assert 'quant_conv' not in params and 'post_quant_conv' not in params


def _without(tensors, key):
  return {k: v for k, v in tensors.items() if k != key}


def _with(tensors, key, value):
  return {**tensors, key: value}


BAD = [  # (name, layout, how the state dict is spoilt, the key the message names)
    ('missing', 'compvis', lambda t: _without(t, 'decoder.up.1.block.1.conv2.bias'),
     'decoder.up.1.block.1.conv2.bias'),
    ('missing decoder attention', 'diffusers',
     lambda t: _without(t, 'decoder.up_blocks.0.attentions.1.to_v.weight'),
     'decoder.up_blocks.0.attentions.1.to_v.weight'),
    ('missing post_quant_conv', 'compvis', lambda t: _without(t, 'post_quant_conv.weight'),
     'post_quant_conv.weight'),
    ('wrong shape', 'diffusers',
     lambda t: _with(t, 'encoder.mid_block.resnets.1.conv1.weight', np.zeros((8, 8, 1, 3))),
     'encoder.mid_block.resnets.1.conv1.weight'),
    ('wrong width', 'compvis',
     lambda t: _with(t, 'decoder.norm_out.weight', np.zeros(5, np.float32)),
     'decoder.norm_out.weight'),
    ('unexpected', 'compvis',
     lambda t: _with(t, 'encoder.down.0.block.0.conv_shortcut.weight', np.zeros((4, 4, 3, 3))),
     'encoder.down.0.block.0.conv_shortcut.weight'),
    ('not an autoencoder', 'diffusers',
     lambda t: {'conv_in.weight': np.zeros((320, 4, 3, 3))}, 'encoder.down.0.block.0.conv1'),
]


@pytest.mark.parametrize('name, layout, spoil, key', BAD, ids=[row[0] for row in BAD])
def test_a_bad_state_dict_raises_naming_the_key(name, layout, spoil, key):
  with pytest.raises(ValueError, match=re.escape(key)) as error:
    _convert(spoil(_tensors(layout)))
  assert '\n' not in str(error.value)


def test_read_safetensors_rejects_missing_corrupt_and_bfloat16_files(tmp_path):
  with pytest.raises(ValueError, match='no such file'):
    read_safetensors(tmp_path / 'missing.safetensors')
  (tmp_path / 'corrupt.safetensors').write_bytes(b'not a safetensors file')
  with pytest.raises(ValueError, match='not a readable safetensors file'):
    read_safetensors(tmp_path / 'corrupt.safetensors')
  # The format: an 8-byte little-endian header length, a JSON header, the raw data.
  header = json.dumps({'w': {'dtype': 'BF16', 'shape': [2], 'data_offsets': [0, 4]}}).encode()
  (tmp_path / 'bf16.safetensors').write_bytes(struct.pack('<Q', len(header)) + header +
                                              bytes(4))
  with pytest.raises(ValueError, match='convert them to float32'):
    read_safetensors(tmp_path / 'bf16.safetensors')
