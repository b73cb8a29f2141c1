"""The per-dataset registry of feature networks: which network measures which dataset, what
a recipe asks of the job, and the label metrics each network gives."""

import numpy as np
import pytest

from metrics import features, statistics


class _Source:
  """A FeatureSource that records what a recipe asks for."""

  seed = 3

  def __init__(self, image_size: tuple[int, int]):
    self.image_size = image_size
    self.asked = []

  def train_split(self, dataset, image_size):
    self.asked.append(('train_split', dataset, image_size))
    rng = np.random.default_rng(0)
    return rng.uniform(size=(64, 8, 8, 1)).astype(np.float32), np.arange(64) % 10

  def cached(self, name, make):
    self.asked.append(('cached', name))
    return make()

  def inception_weights(self):
    raise FileNotFoundError('no weights here')


def test_the_digits_and_their_pairs_have_their_classifier_and_others_inception():
  assert features.recipe('digits') is features.digit_features
  assert features.recipe('digit_pairs') is features.digit_pair_features
  assert features.recipe('cifar10') is features.inception_features
  assert features.recipe('folder:/my/images') is features.inception_features
  with pytest.raises(FileNotFoundError):  # Inception needs the job's weights file
    features.inception_features(_Source((32, 32)))


def test_a_trained_feature_network_is_the_digits_classifier_cached_by_the_job(monkeypatch):
  trained = []
  monkeypatch.setattr(features.digits, 'train_digits_classifier',
                      lambda images, labels, *, seed: trained.append(seed) or 'params')
  source = _Source((16, 16))
  pairs = features.recipe('digit_pairs')(source)
  assert source.asked == [('cached', 'digits_classifier'), ('train_split', 'digits', (8, 8))]
  assert trained == [3] and pairs.params == 'params'
  assert pairs.description == 'digits classifier (seed 3)' == features.recipe('digits')(
      _Source((8, 8))).description


def test_label_metrics_score_classes_or_prompts_where_the_network_reads_them():
  rng = np.random.default_rng(1)
  real, fake = rng.normal(size=(40, 4)), rng.normal(size=(40, 4))
  real_labels, labels = np.arange(40) % 2, np.arange(40) % 2
  logits = np.eye(10)[labels] * 9.0
  digit = features.ClassifierFeatures(None, None, 'digits').label_metrics(
      real, real_labels, fake, logits, labels)
  assert digit == statistics.class_metrics(real, real_labels, fake, labels, logits)
  assert digit['accuracy'] == 1.0
  inception = features.InceptionFeatures(None, 'inception').label_metrics(
      real, real_labels, fake, logits, labels)
  assert 'accuracy' not in inception and 'fd_class0' in inception
  pair_logits, pairs = np.eye(100)[[37, 73, 37]], np.array([37, 73, 73])
  at_16 = features.PairFeatures(None, None, 'pairs', (16, 16), (16, 16))
  assert at_16.label_metrics(None, None, None, pair_logits, pairs) == statistics.pair_accuracy(
      pair_logits, pairs)
  # A cascade's 8x8 base: its halves are unreadable, so it gets no prompt accuracy.
  assert features.PairFeatures(None, None, 'pairs', (8, 8), (16, 16)).label_metrics(
      None, None, None, pair_logits, pairs) == {}
