"""The PatchGAN discriminator against taming-transformers' (PyTorch, in training mode), its
sizes and initialisation, and ActNorm's data-dependent initialisation."""

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models import NLayerDiscriminator, discriminator_fn
from models.discriminator import ActNorm
from tests.models import reference_weights

REFERENCE = os.path.join(os.path.dirname(__file__), '..', 'testdata', 'lpips_reference.npz')
DISC = dict(in_channels=3, ndf=8, n_layers=3)  # as benchmarks/lpips_reference.py


def _count(tree) -> int:
  return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(tree))


def _param_shapes(model: NLayerDiscriminator, shape: tuple[int, ...]):
  return jax.eval_shape(model.init, jax.random.key(0), jax.ShapeDtypeStruct(shape, jnp.float32))


def _from_taming(tensors: dict[str, np.ndarray], *, n_layers: int) -> dict:
  """Params of NLayerDiscriminator from taming's state dict (BatchNorm, no running stats)."""
  hwio = lambda w: w.transpose(2, 3, 1, 0)
  out = 3 * n_layers + 2
  params = {'conv_in': {'kernel': hwio(tensors['main.0.weight']), 'bias': tensors['main.0.bias']},
            'conv_out': {'kernel': hwio(tensors[f'main.{out}.weight']),
                         'bias': tensors[f'main.{out}.bias']}}
  for n in range(1, n_layers + 1):
    params[f'conv{n}'] = {'kernel': hwio(tensors[f'main.{3 * n - 1}.weight'])}
    params[f'norm{n}'] = {'scale': tensors[f'main.{3 * n}.weight'],
                          'bias': tensors[f'main.{3 * n}.bias']}
  return params


def test_matches_taming_in_training_mode():
  with np.load(REFERENCE, allow_pickle=False) as data:
    x, expected = data['patchgan_x'], data['patchgan_logits']
    sha256 = str(data['patchgan_weights_sha256'])
  tensors = reference_weights.random_patchgan_state_dict(**DISC)
  assert reference_weights.fingerprint(tensors) == sha256, 'rerun benchmarks/lpips_reference.py'
  model = NLayerDiscriminator(ndf=DISC['ndf'], n_layers=DISC['n_layers'])
  params = _from_taming(tensors, n_layers=DISC['n_layers'])
  assert jax.tree.map(np.shape, params) == jax.tree.map(
      np.shape, _param_shapes(model, x.shape)['params'])
  x = x.astype(np.float32) / np.float32(127.5) - np.float32(1)
  logits = np.asarray(jax.jit(discriminator_fn(model, params))(x))
  assert logits.shape == expected.shape == (4, 2, 2, 1)
  np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
  # Batch statistics: an image's logits depend on the rest of its batch.
  alone = np.asarray(jax.jit(discriminator_fn(model, params))(x[:2]))
  assert np.abs(alone - logits[:2]).max() > 1e-3


def test_parameter_counts_are_taming_s():
  with np.load(REFERENCE, allow_pickle=False) as data:
    counts = data['patchgan_params']  # [in_channels, ndf, n_layers, count], counted in PyTorch
  assert [2_765_633] == [count for *config, count in counts if config == [3, 64, 3]]
  for in_channels, ndf, n_layers, count in counts:
    model = NLayerDiscriminator(ndf=int(ndf), n_layers=int(n_layers))
    assert _count(_param_shapes(model, (1, 64, 64, int(in_channels)))) == count
  # ActNorm's loc and scale replace BatchNorm's scale and bias, and the convs before it
  # keep their bias: 128 + 256 + 512 more.
  actnorm = _param_shapes(NLayerDiscriminator(use_actnorm=True), (1, 64, 64, 3))
  assert _count(actnorm) == 2_765_633 + 128 + 256 + 512


@pytest.mark.parametrize('n_layers, size, patches', [(3, 256, 30), (3, 32, 2), (2, 64, 14),
                                                     (1, 16, 6)])
def test_patchgan_output_shape(n_layers, size, patches):
  # Each stride-2 layer halves the side, the two stride-1 4x4 layers with padding 1 take
  # 1 each: 256 -> 128 -> 64 -> 32 -> 31 -> 30.
  model = NLayerDiscriminator(n_layers=n_layers)
  x = jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32)
  variables = _param_shapes(model, x.shape)
  assert set(variables) == {'params'}  # no batch_stats: a pure function of params
  assert jax.eval_shape(model.apply, variables, x).shape == (2, patches, patches, 1)
  assert size // 2**n_layers - 2 == patches


def test_initialisation_is_taming_s_weights_init():
  # One block: compiling the random draws of init is what takes the time on CPU.
  model = NLayerDiscriminator(ndf=128, n_layers=1)
  key = jax.random.key(0, impl='rbg')  # threefry's take seconds longer to compile
  params = jax.jit(model.init)(key, jnp.zeros((2, 16, 16, 3)))['params']
  kernel = np.asarray(params['conv1']['kernel'])  # 4 * 4 * 128 * 256 draws of N(0, 0.02)
  assert abs(kernel.mean()) < 1e-4 and abs(kernel.std() / 0.02 - 1) < 0.01
  scale = np.asarray(params['norm1']['scale'])  # 256 draws of N(1, 0.02)
  assert abs(scale.mean() - 1) < 0.005 and abs(scale.std() / 0.02 - 1) < 0.15
  assert not np.any(params['norm1']['bias'])
  # Conv biases keep PyTorch's default, U(+-1 / sqrt(fan_in)): fan_in = 3 * 4 * 4 here.
  bias = np.asarray(params['conv_in']['bias'])
  assert np.abs(bias).max() <= 48**-0.5 and bias.std() > 0.5 * 48**-0.5 / math.sqrt(3)
  bias = np.asarray(params['conv_out']['bias'])  # fan_in = 256 * 4 * 4
  assert bias.shape == (1,) and 0 < abs(bias[0]) <= 4096**-0.5


def test_actnorm_standardises_the_batch_it_is_initialised_with():
  h = 3 + 2 * np.random.default_rng(0).standard_normal((4, 5, 5, 6)) * np.arange(1, 7)
  h = h.astype(np.float32)
  params = jax.jit(ActNorm().init)(jax.random.key(1, impl='rbg'), h)['params']
  apply = jax.jit(lambda x: ActNorm().apply({'params': params}, x))
  out = np.asarray(apply(h)).reshape(-1, 6)
  np.testing.assert_allclose(out.mean(0), 0, atol=1e-5)
  np.testing.assert_allclose(out.std(0, ddof=1), 1, rtol=1e-5)
  # Afterwards a fixed affine map, not a re-normalisation.
  np.testing.assert_allclose(np.asarray(apply(2 * h)).reshape(-1, 6),
                             2 * out - np.asarray(params['loc'] * params['scale']), rtol=1e-4,
                             atol=1e-5)
