"""The MNIST classifier: deterministic training, accuracy on held-out digits (scikit-learn's
enlarged: no test reads real MNIST), other sizes resized to its own, pairs read half by
half; and the job's MNIST metric end to end on tfds' mock data."""

import json

import jax
import numpy as np
import pytest
import sklearn.datasets
import tensorflow_datasets as tfds

import run_lib
from configs.mnist import pixel
from metrics import feature_classifier, features
from metrics import mnist as mnist_lib


@pytest.fixture(scope='module')
def digits_28():
  """scikit-learn's 8x8 digits resized to MNIST's 28x28 in [0, 1]; the last 360 (other
  writers) held out. A learnable stand-in for MNIST that ships with the suite."""
  data = sklearn.datasets.load_digits()
  images = np.asarray(jax.image.resize((data.images / 16.0)[..., None], (len(data.images), 28,
                                                                        28, 1), 'linear'),
                      np.float32)
  return (images[:1437], data.target[:1437]), (images[1437:], data.target[1437:])


def test_random_shifts_move_each_image_within_its_range_and_fill_with_zeros():
  images = np.arange(2 * 5 * 6, dtype=np.float32).reshape(2, 5, 6, 1) + 1
  shifted = feature_classifier.random_shifts(images, np.random.default_rng(0), 2)
  for image, out in zip(images, shifted):
    # Some (dy, dx) in [-2, 2]^2 moves the image onto `out`, zeros where it left.
    matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
               if np.array_equal(out, np.roll(np.pad(image, ((2, 2), (2, 2), (0, 0))),
                                              (dy, dx), (0, 1))[2:-2, 2:-2])]
    assert matches


def test_mnist_classifier_training_is_deterministic(digits_28):
  (images, labels), _ = digits_28
  first, second, other_seed = (mnist_lib.train_mnist_classifier(images, labels, seed=seed,
                                                                steps=3, batch_size=16)
                               for seed in (0, 0, 1))
  jax.tree.map(np.testing.assert_array_equal, first, second)
  assert not np.array_equal(first['dense']['kernel'], other_seed['dense']['kernel'])


@pytest.fixture(scope='module')
def classifier(digits_28):
  (images, labels), _ = digits_28
  return mnist_lib.train_mnist_classifier(images, labels, steps=150, batch_size=64)


def test_mnist_classifier_learns_held_out_digits_and_reads_other_sizes(digits_28, classifier):
  _, (test_images, test_labels) = digits_28
  params = classifier
  features_, logits = mnist_lib.mnist_features(params, test_images)
  assert features_.shape == (len(test_images), 128) and logits.shape == (len(test_images), 10)
  assert np.mean(np.argmax(logits, axis=1) == test_labels) > 0.9
  # A cascade's 14x14 base is resized to 28x28 first: the same digits read alike.
  small = jax.image.resize(test_images, (len(test_images), 14, 14, 1), 'linear')
  _, small_logits = mnist_lib.mnist_features(params, small)
  assert np.mean(np.argmax(small_logits, axis=1) == np.argmax(logits, axis=1)) > 0.8


def test_pairs_are_read_half_by_half_in_order(digits_28, classifier):
  _, (images, labels) = digits_28
  left, right = images[:-1], images[1:]  # pairs of consecutive held-out digits
  canvases = np.concatenate([left, right], axis=2)  # [N, 28, 56, 1]
  features_, pairs = mnist_lib.mnist_pair_features(classifier, canvases)
  assert features_.shape == (len(left), 256) and pairs.shape == (len(left), 100)
  _, left_logits = mnist_lib.mnist_features(classifier, left)
  _, right_logits = mnist_lib.mnist_features(classifier, right)
  # The pair's most likely label is the two halves' most likely digits, in order.
  np.testing.assert_array_equal(np.argmax(pairs, axis=1),
                                10 * np.argmax(left_logits, 1) + np.argmax(right_logits, 1))
  truth = 10 * labels[:-1] + labels[1:]
  assert np.mean(np.argmax(pairs, axis=1) == truth) > 0.8
  # A cascade's 14x28 base is resized to 28x56 first.
  small = jax.image.resize(canvases, (len(left), 14, 28, 1), 'linear')
  assert mnist_lib.mnist_pair_features(classifier, small)[1].shape == (len(left), 100)


def test_mnist_classifier_refuses_other_images():
  with pytest.raises(ValueError, match=r'need images \[N, 28, 28, 1\]'):
    mnist_lib.train_mnist_classifier(np.zeros((4, 8, 8, 1)), np.zeros(4), steps=1)


def test_the_job_measures_mnist_in_its_classifiers_features(tmp_path, monkeypatch):
  assert features.recipe('mnist') is features.mnist_features
  assert features.recipe('mnist_pairs') is features.mnist_pair_features
  trained, train = [], mnist_lib.train_mnist_classifier

  def train_briefly(images, labels, **options):
    trained.append(images.shape)
    return train(images, labels, **options, steps=2, batch_size=8)

  monkeypatch.setattr(features.mnist, 'train_mnist_classifier', train_briefly)
  config = pixel.get_config('tiny')
  config.data.data_dir = str(tmp_path / 'tfds')
  config.data.download = True  # mock_data's no-op download_and_prepare
  config.eval.metrics = ('fid',)
  config.eval.num_samples = 8
  config.eval.batch_size = 12
  workdir = tmp_path / 'work'
  with tfds.testing.mock_data(num_examples=24):
    run_lib.train(run_lib.build(config, str(workdir)))
    (metrics,) = run_lib.evaluate(run_lib.build(config, str(workdir))).values()
    assert trained == [(24, 28, 28, 1)]  # the training split, at 28x28
    assert np.isfinite([metrics['fd'], metrics['kid'], metrics['is']]).all()
    # The classifier is cached in the workdir: a second evaluation trains none.
    run_lib.evaluate(run_lib.build(config, str(workdir)))
    assert len(trained) == 1
  assert (workdir / 'eval' / 'mnist_classifier.npz').exists()
  reference = np.load(workdir / 'eval' / 'reference_features.npz')
  assert 'MNIST classifier' in json.loads(str(reference['tag']))['features']
