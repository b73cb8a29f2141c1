"""LPIPS-VGG16 against the lpips package (PyTorch), its weight conversion and files.

The reference, tests/testdata/lpips_reference.npz, was written by benchmarks/lpips_reference.py
in a torch interpreter with weights that `reference_weights` regenerates here from a seed.
Every LPIPS call below has the reference's shape, so the network compiles once.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import safetensors.numpy

from models import LPIPS, convert_lpips_state_dict, load_lpips_params
from models.lpips import _unit_normalize
from tests.models import reference_weights

REFERENCE = os.path.join(os.path.dirname(__file__), '..', 'testdata', 'lpips_reference.npz')


def _to_unit_range(images: np.ndarray) -> np.ndarray:
  # As benchmarks/lpips_reference.py maps its uint8 images.
  return images.astype(np.float32) / np.float32(127.5) - np.float32(1)


@pytest.fixture(scope='module')
def reference() -> dict[str, np.ndarray]:
  with np.load(REFERENCE, allow_pickle=False) as data:
    return {name: data[name] for name in data.files}


@pytest.fixture(scope='module')
def tensors(reference) -> dict[str, np.ndarray]:
  tensors = reference_weights.random_lpips_state_dict(0)
  assert reference_weights.fingerprint(tensors) == str(reference['lpips_weights_sha256']), (
      'the regenerated weights are not those of the reference (numpy changed its generator?): '
      'rerun benchmarks/lpips_reference.py')
  return tensors


@pytest.fixture(scope='module')
def params(tensors):
  return convert_lpips_state_dict(tensors)


@jax.jit
def _layer_distances(params, x0: jax.Array, x1: jax.Array) -> jax.Array:
  return LPIPS().apply({'params': params}, x0, x1, method='layer_distances')


def test_matches_the_lpips_package_layer_by_layer(reference, params):
  x0, x1 = _to_unit_range(reference['lpips_x0']), _to_unit_range(reference['lpips_x1'])
  layers = np.asarray(_layer_distances(params, x0, x1))  # [2, 5]
  np.testing.assert_allclose(layers, reference['lpips_layers'], rtol=1e-4)
  np.testing.assert_allclose(layers.sum(-1), reference['lpips'], rtol=1e-4)
  # The noisy copy is nearer than the unrelated image, by far.
  assert reference['lpips'][0] < 0.2 * reference['lpips'][1]


def test_is_zero_on_equal_images_symmetric_and_non_negative(reference, params):
  x0, x1 = _to_unit_range(reference['lpips_x0']), _to_unit_range(reference['lpips_x1'])
  # Not exactly 0: XLA rounds the two halves of the batch's normalisations differently.
  assert np.abs(np.asarray(_layer_distances(params, x0, x0))).max() < 1e-12
  np.testing.assert_allclose(_layer_distances(params, x1, x0), _layer_distances(params, x0, x1),
                             rtol=1e-6)
  noise = np.random.default_rng(3).uniform(-1, 1, x0.shape).astype(np.float32)
  assert float(jnp.min(_layer_distances(params, x0, noise))) > 0


def test_grey_images_are_compared_as_rgb_and_the_distance_sums_the_layers(reference, params):
  x0, x1 = _to_unit_range(reference['lpips_x0']), _to_unit_range(reference['lpips_x1'])
  grey0, grey1 = x0[..., :1], x1[..., :1]
  np.testing.assert_allclose(
      jax.jit(LPIPS().apply)({'params': params}, grey0, grey1),
      _layer_distances(params, *(np.repeat(g, 3, axis=-1) for g in (grey0, grey1))).sum(-1),
      rtol=1e-6)


def test_unit_normalisation_has_finite_gradients_at_all_zero_features():
  x = np.zeros((2, 4), np.float32)
  x[0] = [3.0, 0.0, -4.0, 0.0]  # norm 5; row 1 is an all-zero feature vector
  np.testing.assert_allclose(_unit_normalize(jnp.asarray(x)),
                             [[0.6, 0.0, -0.8, 0.0], [0.0] * 4], rtol=1e-6)
  weights = jnp.arange(1.0, 5.0)
  grad = jax.jit(jax.grad(lambda x: jnp.sum(_unit_normalize(x) * weights)))(x)
  assert bool(jnp.all(jnp.isfinite(grad)))
  # The control: the formula as written in the lpips package has a NaN gradient there.
  naive = lambda x: x / (jnp.sqrt(jnp.sum(x**2, axis=-1, keepdims=True)) + 1e-10)
  naive_grad = jax.jit(jax.grad(lambda x: jnp.sum(naive(x) * weights)))(x)
  assert bool(jnp.all(jnp.isnan(naive_grad[1])))
  np.testing.assert_allclose(grad[0], naive_grad[0], rtol=1e-6)


def test_rejects_images_too_small_or_of_different_shapes(params):
  apply = lambda a, b: jax.eval_shape(LPIPS().apply, {'params': params}, a, b)
  image = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.float32)
  assert apply(image(2, 16, 16, 3), image(2, 16, 16, 3)).shape == (2,)
  with pytest.raises(ValueError, match='at least 16x16'):
    apply(image(2, 15, 32, 3), image(2, 15, 32, 3))
  with pytest.raises(ValueError, match='of one shape'):
    apply(image(2, 32, 32, 3), image(1, 32, 32, 3))


def _assert_same_tree(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)


def test_conversion_accepts_torchvision_names_aliases_and_the_scaling_buffers(tensors, params):
  # The layout of torchvision's vgg16 state dict (with its classifier) and the lin layers
  # under both of the package's names, as `state_dict()` lists them.
  renamed = {}
  for name, value in tensors.items():
    if name.startswith('net.'):
      renamed['features.' + name.split('.', 2)[2]] = value
    else:
      renamed[name] = renamed[name.replace('lin', 'lins.', 1)] = value
  renamed['classifier.0.weight'] = np.zeros((4, 2), np.float32)
  renamed['scaling_layer.shift'] = np.array([-0.030, -0.088, -0.188]).reshape(1, 3, 1, 1)
  renamed['scaling_layer.scale'] = np.array([0.458, 0.448, 0.450]).reshape(1, 3, 1, 1)
  _assert_same_tree(convert_lpips_state_dict(renamed), params)
  # OIHW -> HWIO, checked on one weight.
  np.testing.assert_array_equal(params['conv3_2']['kernel'][2, 0, 5, 7],
                                tensors['net.slice3.12.weight'][7, 5, 2, 0])


@pytest.mark.parametrize('edit, message', [
    (lambda t: t.pop('lin3.model.1.weight'), 'missing for 1 params'),
    (lambda t: t.pop('net.slice2.5.bias'), r'missing .* conv2_1/bias'),
    (lambda t: t.update({'net.slice1.1.weight': np.zeros(3)}), 'unexpected weight'),
    (lambda t: t.update({'net.slice1.0.weight': np.zeros((64, 3, 11, 11))}), 'has shape'),
    (lambda t: t.update({'scaling_layer.scale': np.ones(3)}), 'not the'),
    (lambda t: t.update({'lins.0.model.1.weight': np.zeros((1, 64, 1, 1))}), 'differs'),
])
def test_conversion_rejects_missing_unknown_and_misshapen_weights(tensors, edit, message):
  edited = dict(tensors)
  edit(edited)
  with pytest.raises(ValueError, match=message):
    convert_lpips_state_dict(edited)


def test_loads_safetensors_and_npz_files_with_clear_errors(tensors, params, tmp_path):
  safetensors.numpy.save_file(tensors, tmp_path / 'lpips.safetensors')
  _assert_same_tree(load_lpips_params(tmp_path / 'lpips.safetensors'), params)
  np.savez(tmp_path / 'lpips.npz', **tensors)
  _assert_same_tree(load_lpips_params(tmp_path / 'lpips.npz'), params)
  with pytest.raises(ValueError, match='not found'):
    load_lpips_params(tmp_path / 'absent.safetensors')
  for name in ('bad.safetensors', 'bad.npz', 'bad.pth'):
    (tmp_path / name).write_bytes(b'not a weights file')
  with pytest.raises(ValueError, match='cannot read'):
    load_lpips_params(tmp_path / 'bad.safetensors')
  with pytest.raises(ValueError, match='cannot read'):
    load_lpips_params(tmp_path / 'bad.npz')
  with pytest.raises(ValueError, match='.safetensors or .npz'):
    load_lpips_params(tmp_path / 'bad.pth')
  np.savez(tmp_path / 'partial.npz', **{k: v for k, v in tensors.items() if 'lin' not in k})
  with pytest.raises(ValueError, match='missing for 5 params'):
    load_lpips_params(tmp_path / 'partial.npz')
