import math

import jax
import numpy as np
import pytest
import scipy.linalg
import sklearn.datasets
from flax import traverse_util

import evaluation
import input_pipeline
from evaluation import EvaluationError


def _assert_trees_equal(a, b):
  """Same keys, shapes and bits."""
  jax.tree.map(np.testing.assert_array_equal, a, b)


# ----------------------------------------------------------------------------------------------
# Frechet distance.


def _random_covariance(rng, d):
  a = rng.normal(size=(d, d))
  return a @ a.T / d + 0.1 * np.eye(d)


def _trace_sqrt_product(sigma1, sigma2):
  """Tr((S1 S2)^{1/2}) = Tr((S1^{1/2} S2 S1^{1/2})^{1/2}), through symmetric eigensolvers."""
  w, v = np.linalg.eigh(sigma1)
  root1 = v @ np.diag(np.sqrt(w)) @ v.T
  return np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(root1 @ sigma2 @ root1), 0, None)))


def test_feature_statistics_are_the_mean_and_unbiased_covariance():
  x = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
  mu, sigma = evaluation.feature_statistics(x)
  centred = x.astype(np.float64) - x.astype(np.float64).mean(axis=0)
  assert mu.dtype == sigma.dtype == np.float64
  np.testing.assert_allclose(mu, x.astype(np.float64).sum(axis=0) / 50, rtol=1e-12)
  np.testing.assert_allclose(sigma, centred.T @ centred / 49, rtol=1e-12)


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
  rng = np.random.default_rng(0)
  mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
  var1, var2 = rng.uniform(0.1, 3, size=6), rng.uniform(0.1, 3, size=6)
  expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
  fd = evaluation.frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2))
  assert fd == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_of_full_covariances_is_symmetric_and_matches_eigh():
  rng = np.random.default_rng(1)
  mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
  sigma1, sigma2 = _random_covariance(rng, 8), _random_covariance(rng, 8)
  expected = (np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2)
              - 2 * _trace_sqrt_product(sigma1, sigma2))
  assert evaluation.frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-9)
  assert evaluation.frechet_distance(mu2, sigma2, mu1, sigma1) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_of_samples_converges_to_the_population_value():
  rng = np.random.default_rng(2)
  mu1, mu2 = np.zeros(4), np.array([1.0, 0.0, -0.5, 0.0])
  sigma1, sigma2 = _random_covariance(rng, 4), _random_covariance(rng, 4)
  x = rng.multivariate_normal(mu1, sigma1, size=50_000)
  y = rng.multivariate_normal(mu2, sigma2, size=50_000)
  exact = evaluation.frechet_distance(mu1, sigma1, mu2, sigma2)
  estimate = evaluation.frechet_distance(*evaluation.feature_statistics(x),
                                         *evaluation.feature_statistics(y))
  assert estimate == pytest.approx(exact, rel=0.03)


@pytest.mark.parametrize('n', [500, 5])  # 5 < D: singular covariances
def test_frechet_distance_of_a_set_with_itself_is_zero(n):
  stats = evaluation.feature_statistics(np.random.default_rng(3).normal(size=(n, 10)))
  assert abs(evaluation.frechet_distance(*stats, *stats)) < 1e-6


def test_frechet_distance_retries_with_an_offset_when_sqrtm_fails(monkeypatch):
  sqrtm = scipy.linalg.sqrtm
  calls = []

  def failing_once(a):
    calls.append(a)
    return np.full_like(a, np.inf) if len(calls) == 1 else sqrtm(a)

  monkeypatch.setattr(scipy.linalg, 'sqrtm', failing_once)
  fd = evaluation.frechet_distance(np.zeros(3), np.eye(3), np.ones(3), 4 * np.eye(3), eps=1e-6)
  assert len(calls) == 2
  assert fd == pytest.approx(3 + 3 * (2 - 1) ** 2, rel=1e-5)


def test_frechet_distance_rejects_non_covariances_and_mismatched_shapes():
  with pytest.raises(EvaluationError, match='imaginary component'):
    evaluation.frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.diag([-1.0, 1.0]))
  with pytest.raises(EvaluationError, match='mismatched'):
    evaluation.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


# ----------------------------------------------------------------------------------------------
# Kernel distance.


def _brute_force_mmd2(x, y):
  def k(a, b):
    return (a @ b / x.shape[1] + 1) ** 3

  m, n = len(x), len(y)
  xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
  xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
  return xx + yy - 2 * xy


def test_kernel_distance_is_the_unbiased_polynomial_mmd_of_whole_small_sets():
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(6, 3)), rng.normal(1.0, size=(5, 3))
  mean, std = evaluation.kernel_distance(x, y, num_subsets=3)  # subsets clamp to all rows
  assert mean == pytest.approx(_brute_force_mmd2(x, y), rel=1e-12)
  assert std < 1e-9


def test_kernel_distance_estimates_the_population_mmd_without_bias():
  # d = 1: k(x, y) = (xy + 1)^3, so MMD^2 = sum_j c_j (E X^j - E Y^j)^2 with c = (3, 3, 1)
  # for j = 1, 2, 3. X ~ N(0, 1), Y ~ N(mu, 1): E Y = mu, E Y^2 = 1 + mu^2, E Y^3 = mu^3 + 3 mu.
  mu = 0.5
  exact = 3 * mu ** 2 + 3 * mu ** 4 + (mu ** 3 + 3 * mu) ** 2
  rng = np.random.default_rng(1)
  x, y = rng.normal(size=(100_000, 1)), rng.normal(mu, size=(100_000, 1))
  mean, std = evaluation.kernel_distance(x, y, num_subsets=100, subset_size=1000)
  assert abs(mean - exact) < 4 * std / math.sqrt(100)
  assert std > 0


def test_kernel_distance_is_near_zero_for_one_distribution_and_positive_for_shifted():
  rng = np.random.default_rng(2)
  x, y = rng.normal(size=(2000, 16)), rng.normal(size=(2000, 16))
  same, same_std = evaluation.kernel_distance(x, y, num_subsets=20, subset_size=500)
  shifted, _ = evaluation.kernel_distance(x, y + 0.3, num_subsets=20, subset_size=500)
  assert abs(same) < 3 * same_std
  assert shifted > 20 * same_std + abs(same)


# ----------------------------------------------------------------------------------------------
# Inception score.


def test_inception_score_of_identical_predictions_is_one():
  logits = np.tile(np.random.default_rng(0).normal(size=(1, 7)), (100, 1))
  mean, std = evaluation.inception_score(logits, splits=10)
  assert mean == pytest.approx(1.0, abs=1e-12) and std < 1e-12


@pytest.mark.parametrize('classes_per_sample', [1, 2])
def test_inception_score_of_evenly_spread_confident_predictions(classes_per_sample):
  # Each sample is uniform over `classes_per_sample` of K classes, each chunk covers the K
  # classes evenly: KL = log K - log classes_per_sample. Logits of 1000 overflow a naive exp.
  k, n = 10, 200
  labels = np.arange(n) % k
  logits = np.zeros((n, k))
  for shift in range(classes_per_sample):
    logits[np.arange(n), (labels + shift) % k] = 1000.0
  mean, std = evaluation.inception_score(logits, splits=10)
  assert mean == pytest.approx(k / classes_per_sample, rel=1e-12) and std < 1e-9


# ----------------------------------------------------------------------------------------------
# Inception-v3 (FID variant).

INCEPTION_SHAPES = jax.eval_shape(evaluation.InceptionV3(resize_to=75).init, jax.random.key(0),
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
  evaluation.save_inception_params(inception_variables, path)
  loaded = evaluation.load_inception_params(path)
  _assert_trees_equal(loaded, inception_variables)

  images = np.random.default_rng(0).uniform(-1, 1, size=(3, 8, 8, 1)).astype(np.float32)
  features, logits = evaluation.inception_features(loaded, images, batch_size=2, resize_to=75)
  assert features.shape == (3, 2048) and logits.shape == (3, 1008)
  assert np.all(np.isfinite(logits)) and features.std() > 1e-2
  # The last image went through a zero-padded batch; alone at the head of a batch it agrees.
  alone, _ = evaluation.inception_features(loaded, images[[2, 0]], batch_size=2, resize_to=75)
  np.testing.assert_allclose(features[2], alone[0], rtol=1e-5, atol=1e-6)


def test_inception_runs_at_full_resolution(inception_variables):
  images = np.zeros((1, 32, 32, 3), np.float32)
  features, logits = evaluation.inception_features(inception_variables, images)
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
  converted = evaluation.convert_pytorch_fid_state_dict(state_dict)
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
  out = evaluation.BasicConv2d(len(weight), (1, 7), padding=(0, 3)).apply(layer, x)
  np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_convert_rejects_a_state_dict_of_another_network(inception_variables):
  state_dict = _to_pytorch_fid_state_dict(inception_variables)
  state_dict['fc.weight'] = np.zeros((1000, 2048), np.float32)  # torchvision's ImageNet head
  with pytest.raises(EvaluationError, match='fc/kernel has shape'):
    evaluation.convert_pytorch_fid_state_dict(state_dict)
  state_dict['AuxLogits.fc.weight'] = np.zeros((1000, 768), np.float32)
  with pytest.raises(EvaluationError, match='1 unexpected'):
    evaluation.convert_pytorch_fid_state_dict(state_dict)


def _one_line_error(path):
  with pytest.raises(EvaluationError) as info:
    evaluation.load_inception_params(path)
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


# ----------------------------------------------------------------------------------------------
# The digits classifier.


@pytest.fixture(scope='module')
def digits():
  """scikit-learn's digits in [0, 1], split by position: the last 360 (other writers) held out."""
  data = sklearn.datasets.load_digits()
  images = (data.images / 16.0).astype(np.float32)[..., None]  # [1797, 8, 8, 1]
  return (images[:1437], data.target[:1437]), (images[1437:], data.target[1437:])


@pytest.fixture(scope='module')
def digits_classifier(digits):
  (train_images, train_labels), _ = digits
  return evaluation.train_digits_classifier(train_images, train_labels)


def test_digits_classifier_training_is_deterministic(digits):
  (images, labels), _ = digits
  first, second, other_seed = (evaluation.train_digits_classifier(images, labels, seed=seed,
                                                                  steps=20)
                               for seed in (0, 0, 1))
  _assert_trees_equal(first, second)
  assert not np.array_equal(first['dense']['kernel'], other_seed['dense']['kernel'])


def test_digits_classifier_is_accurate_on_held_out_writers(digits, digits_classifier):
  _, (images, labels) = digits
  features, logits = evaluation.digits_features(digits_classifier, images)
  assert features.shape == (len(images), 64) and logits.shape == (len(images), 10)
  assert np.mean(np.argmax(logits, axis=1) == labels) > 0.95


def test_digits_metrics_separate_real_digits_from_noise(digits, digits_classifier):
  (train_images, _), (test_images, _) = digits
  noise = np.random.default_rng(0).uniform(size=test_images.shape).astype(np.float32)
  train, _ = evaluation.digits_features(digits_classifier, train_images)
  test, test_logits = evaluation.digits_features(digits_classifier, test_images)
  fake, fake_logits = evaluation.digits_features(digits_classifier, noise)
  real_vs_real = evaluation.feature_metrics(train, test, test_logits, kid_subset_size=300)
  real_vs_noise = evaluation.feature_metrics(train, fake, fake_logits, kid_subset_size=300)
  assert real_vs_real['fd'] < 0.1 * real_vs_noise['fd']
  assert real_vs_real['kid'] < 0.1 * real_vs_noise['kid']
  assert real_vs_real['is'] > 8 > 2 * real_vs_noise['is']


def test_class_metrics_score_each_drawn_class_against_its_real_images():
  rng = np.random.default_rng(0)
  means = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
  real_labels = np.repeat([0, 1, 2], 400)
  real = means[real_labels] + rng.normal(size=(1200, 2))
  # Samples of classes 0 and 2 only; class 2's are drawn around class 1's mean.
  fake_labels = np.repeat([0, 2], 400)
  fake = means[np.repeat([0, 1], 400)] + rng.normal(size=(800, 2))
  logits = -((fake[:, None] - means[None]) ** 2).sum(-1)  # nearest mean: 0 for 0, 1 for 2
  metrics = evaluation.class_metrics(real, real_labels, fake, fake_labels, logits)
  assert sorted(metrics) == ['accuracy', 'accuracy_class0', 'accuracy_class2', 'fd_class0',
                             'fd_class2']
  assert metrics['fd_class0'] < 0.1  # same distribution: FD ~ its sampling error
  np.testing.assert_allclose(metrics['fd_class2'], 50.0, rtol=0.05)  # ||(5, -5)||^2
  assert metrics['accuracy_class0'] > 0.98 and metrics['accuracy_class2'] < 0.02
  np.testing.assert_allclose(metrics['accuracy'],
                             (metrics['accuracy_class0'] + metrics['accuracy_class2']) / 2)
  assert 'accuracy' not in evaluation.class_metrics(real, real_labels, fake, fake_labels)


def test_pair_features_read_the_two_digits_of_the_pairs_in_order(pairs_data_dir,
                                                                 digits_classifier):
  data = input_pipeline.get_dataset(
      'digit_pairs', 'test', data_dir=pairs_data_dir, image_size=16, centered=False,
      random_flip=False, uniform_dequantization=False, global_batch_size=200, seed=0)
  batch = next(data.epoch(200))
  images, labels = batch['image'], batch['label']
  features, logits = evaluation.digit_pair_features(digits_classifier, images)
  assert features.shape == (200, 128) and logits.shape == (200, 100)
  # The joint log-probabilities are those of two independent halves: they normalise.
  np.testing.assert_allclose(jax.scipy.special.logsumexp(logits, axis=1), 0.0, atol=1e-4)
  real = evaluation.pair_accuracy(logits, labels)
  assert real['prompt_accuracy'] > 0.85 and min(real['left_accuracy'],
                                                real['right_accuracy']) > 0.92
  swapped = evaluation.pair_accuracy(logits, 10 * (labels % 10) + labels // 10)
  different = labels // 10 != labels % 10
  assert swapped['prompt_accuracy'] < 0.15 + np.mean(~different)
  # An 8x8 rendering (the base stage's size), upsampled, is a feature space for FD only:
  # the classifier of sharp 8x8 digits cannot read its blurred halves.
  small = input_pipeline.get_dataset(
      'digit_pairs', 'test', data_dir=pairs_data_dir, image_size=8, centered=False,
      random_flip=False, uniform_dequantization=False, global_batch_size=200, seed=0)
  small_features, _ = evaluation.digit_pair_features(digits_classifier,
                                                     next(small.epoch(200))['image'])
  assert small_features.shape == (200, 128)
