"""The FID Inception network: its parameter count, pytorch-fid's weights converted, saved
and loaded, its resize against PyTorch's, and its one-line errors."""

import math

import jax
import numpy as np
import pytest
from flax import traverse_util

from metrics import inception
from metrics.statistics import EvaluationError


def _assert_trees_equal(a, b):
  """Same keys, shapes and bits."""
  jax.tree.map(np.testing.assert_array_equal, a, b)


# ----------------------------------------------------------------------------------------------
# Inception-v3 (FID variant).

INCEPTION_SHAPES = jax.eval_shape(inception.InceptionV3(resize_to=75).init, jax.random.key(0),
                                  jax.ShapeDtypeStruct((1, 75, 75, 3), np.float32))


def _random_inception_variables(seed=0):
  """Random variables of the shapes model.init declares; He-scaled so features stay O(1).

  model.init itself spends ~20 s compiling 95 initialisers on 2 CPU cores.
  """
  rng = np.random.default_rng(seed)
  flat = {}
  for path, leaf in traverse_util.flatten_dict(INCEPTION_SHAPES, sep='/').items():
    if path.endswith('kernel'):
      fan_in = math.prod(leaf.shape[:-1])
      value = rng.normal(0, math.sqrt(2 / fan_in), leaf.shape)
    elif path.endswith(('scale', 'var')):
      value = rng.uniform(0.5, 1.5, leaf.shape)
    else:
      value = rng.normal(0, 0.1, leaf.shape)
    flat[path] = value.astype(np.float32)
  return traverse_util.unflatten_dict(flat, sep='/')


@pytest.fixture(scope='module')
def inception_variables():
  return _random_inception_variables()


def _to_pytorch_fid_state_dict(variables):
  """The inverse of convert_pytorch_fid_state_dict, plus what the real file also holds."""
  renamed = {'scale': 'weight', 'bias': 'bias', 'mean': 'running_mean', 'var': 'running_var'}
  state_dict = {'fc.bias': np.zeros(1008, np.float32)}
  for path, value in traverse_util.flatten_dict(variables, sep='/').items():
    _, *module, leaf = path.split('/')
    name = '.'.join(module)
    if leaf == 'kernel':
      state_dict[f'{name}.weight'] = value.transpose(3, 2, 0, 1) if value.ndim == 4 else value.T
    else:
      state_dict[f'{name}.{renamed[leaf]}'] = value
    if leaf == 'mean':
      state_dict[f'{name}.num_batches_tracked'] = np.array(0)
  return state_dict


def test_inception_has_the_fid_networks_parameter_count():
  # torchvision's inception_v3: 27,161,264, of which 3,326,696 in the aux classifier; the FID
  # graph has 1008 classes (+8 * 2049) and the Inception Score's logits drop fc's 1008 biases.
  params = sum(leaf.size for leaf in jax.tree.leaves(INCEPTION_SHAPES['params']))
  assert params == 27_161_264 - 3_326_696 + 8 * 2049 - 1008


def test_inception_weights_roundtrip_and_features(tmp_path, inception_variables):
  path = tmp_path / 'inception.npz'
  inception.save_inception_params(inception_variables, path)
  loaded = inception.load_inception_params(path)
  _assert_trees_equal(loaded, inception_variables)

  images = np.random.default_rng(0).uniform(-1, 1, size=(3, 8, 8, 1)).astype(np.float32)
  features, logits = inception.inception_features(loaded, images, batch_size=2, resize_to=75)
  assert features.shape == (3, 2048) and logits.shape == (3, 1008)
  assert np.all(np.isfinite(logits)) and features.std() > 1e-2
  # The last image went through a zero-padded batch; alone at the head of a batch it agrees.
  alone, _ = inception.inception_features(loaded, images[[2, 0]], batch_size=2, resize_to=75)
  np.testing.assert_allclose(features[2], alone[0], rtol=1e-5, atol=1e-6)


def test_inception_runs_at_full_resolution(inception_variables):
  images = np.zeros((1, 32, 32, 3), np.float32)
  features, logits = inception.inception_features(inception_variables, images)
  assert features.shape == (1, 2048) and logits.shape == (1, 1008)
  assert np.all(np.isfinite(features))


def _torch_bilinear_matrix(n_in, n_out):
  """F.interpolate(mode='bilinear', align_corners=False) along one axis, as a matrix."""
  source = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0)
  lower = np.floor(source).astype(int)
  upper = np.minimum(lower + 1, n_in - 1)
  weights = np.zeros((n_out, n_in))
  np.add.at(weights, (np.arange(n_out), lower), 1 - (source - lower))
  np.add.at(weights, (np.arange(n_out), upper), source - lower)
  return weights


@pytest.mark.parametrize('n_in, n_out', [(8, 299), (300, 75)])
def test_resize_matches_pytorch_bilinear(n_in, n_out):
  image = np.random.default_rng(0).normal(size=(n_in, n_in))
  resized = jax.image.resize(image, (n_out, n_out), 'bilinear', antialias=False)
  matrix = _torch_bilinear_matrix(n_in, n_out)
  np.testing.assert_allclose(resized, matrix @ image @ matrix.T, atol=1e-5)


def test_convert_pytorch_fid_state_dict(inception_variables):
  state_dict = _to_pytorch_fid_state_dict(inception_variables)
  converted = inception.convert_pytorch_fid_state_dict(state_dict)
  _assert_trees_equal(converted, inception_variables)

  # Torch semantics of one (1, 7) BasicConv2d, in numpy: cross-correlation of the zero-padded
  # NCHW input with OIHW weights, then BatchNorm with eps 1e-3, then ReLU.
  name = 'Mixed_6b.branch7x7_2'
  weight = state_dict[f'{name}.conv.weight']  # [128, 128, 1, 7]
  x = np.random.default_rng(1).normal(size=(2, 5, 9, weight.shape[1])).astype(np.float32)
  padded = np.pad(x, ((0, 0), (0, 0), (3, 3), (0, 0)))
  conv = sum(np.einsum('bhwi,oi->bhwo', padded[:, :, j:j + 9], weight[:, :, 0, j])
             for j in range(7))
  bn = {key: state_dict[f'{name}.bn.{key}'] for key in ('weight', 'bias', 'running_mean',
                                                       'running_var')}
  expected = np.maximum((conv - bn['running_mean']) / np.sqrt(bn['running_var'] + 1e-3)
                        * bn['weight'] + bn['bias'], 0)
  layer = {collection: converted[collection]['Mixed_6b']['branch7x7_2']
           for collection in ('params', 'batch_stats')}
  out = inception.BasicConv2d(len(weight), (1, 7), padding=(0, 3)).apply(layer, x)
  np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_convert_rejects_a_state_dict_of_another_network(inception_variables):
  state_dict = _to_pytorch_fid_state_dict(inception_variables)
  state_dict['fc.weight'] = np.zeros((1000, 2048), np.float32)  # torchvision's ImageNet head
  with pytest.raises(EvaluationError, match='fc/kernel has shape'):
    inception.convert_pytorch_fid_state_dict(state_dict)
  state_dict['AuxLogits.fc.weight'] = np.zeros((1000, 768), np.float32)
  with pytest.raises(EvaluationError, match='1 unexpected'):
    inception.convert_pytorch_fid_state_dict(state_dict)


def _one_line_error(path):
  with pytest.raises(EvaluationError) as info:
    inception.load_inception_params(path)
  message = str(info.value)
  assert '\n' not in message and str(path) in message
  return message


def test_missing_or_bad_inception_weights_give_one_line_errors(tmp_path, inception_variables):
  assert 'convert_pytorch_fid_state_dict' in _one_line_error(tmp_path / 'missing.npz')

  garbage = tmp_path / 'garbage.npz'
  garbage.write_bytes(b'not an npz file')
  assert 'save_inception_params' in _one_line_error(garbage)

  flat = traverse_util.flatten_dict(inception_variables, sep='/')
  wrong_shape = tmp_path / 'wrong_shape.npz'
  np.savez(wrong_shape, **{**flat, 'params/fc/kernel': np.zeros((2048, 1000), np.float32)})
  assert 'params/fc/kernel has shape (2048, 1000), expected (2048, 1008)' in _one_line_error(
      wrong_shape)

  missing_key = tmp_path / 'missing_key.npz'
  np.savez(missing_key, **{k: v for k, v in flat.items() if not k.startswith('params/Mixed_7c')})
  assert 'missing' in _one_line_error(missing_key)
