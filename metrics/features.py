"""The feature network each dataset's sample quality is measured in: a registry.

FD, KID and IS compare samples with real images in some network's features. For the
bundled digits and digit pairs that is a small classifier of the digits, and for MNIST a
small classifier of MNIST, each trained from scratch when first needed (`metrics.digits`,
`metrics.mnist`); for every other dataset it is the FID Inception network, from a local
weights file (`metrics.inception`). A dataset gets its own
features by one more entry of FEATURES.

An entry is a recipe, `recipe(source) -> FeatureNetwork`, where `source` (a FeatureSource,
given by the job) supplies what the recipe may need and does the job's side effects:
another dataset's training split, a cache for trained parameters, the Inception weights.
"""

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

import jax
import numpy as np
from jax.typing import ArrayLike

from data import bundled, scaling
from metrics import digits, inception, mnist, statistics


class FeatureSource(Protocol):
  """What a recipe gets from the job that evaluates."""

  seed: int  # of a trained feature network's initialisation and batches
  image_size: tuple[int, int]  # (H, W) of the images measured

  def train_split(self, dataset: str,
                  image_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A dataset's training split at (H, W): images [N, H, W, C] in [0, 1], labels [N]."""

  def cached(self, name: str, make: Callable[[], Any]) -> Any:
    """The parameters saved under `name`, or make() saved there."""

  def inception_weights(self) -> str:
    """The path of the FID Inception weights (metrics.inception's .npz)."""


class FeatureNetwork(Protocol):
  """Images [N, H, W, C] in [0, 1] -> (features [N, D], logits [N, K])."""

  description: str  # what made the features: tags cached real features

  def __call__(self, images: ArrayLike) -> tuple[Any, Any]: ...

  def label_metrics(self, real_features: np.ndarray, real_labels: np.ndarray,
                    fake_features: np.ndarray, fake_logits: np.ndarray,
                    labels: np.ndarray) -> dict[str, float]:
    """The metrics of samples drawn for known labels [N] (their classes or prompts)."""


@dataclasses.dataclass(frozen=True, eq=False)
class ClassifierFeatures:
  """A classifier of the data's own classes (the digits', MNIST's): its features, and its
  logits classify the same classes, so class-conditional samples also get their accuracy.

  Attributes:
    apply: (params, images) -> (features, logits).
  """

  apply: Callable[[Any, ArrayLike], tuple[jax.Array, jax.Array]]
  params: Any
  description: str

  def __call__(self, images: ArrayLike) -> tuple[jax.Array, jax.Array]:
    return self.apply(self.params, images)

  def label_metrics(self, real_features, real_labels, fake_features, fake_logits, labels):
    return statistics.class_metrics(real_features, real_labels, fake_features, labels,
                                    fake_logits)


@dataclasses.dataclass(frozen=True, eq=False)
class PairFeatures:
  """A digit classifier's features of both halves of pairs of digits (the digit pairs',
  the MNIST pairs'). Its 100 ordered pairs are too many classes for FD per class: samples
  drawn for prompts get whether they show the prompt's digits (`statistics.pair_accuracy`)
  where the classifier can read them, at the pairs' own size.

  Attributes:
    apply: (params, images) -> (features, pair logits [N, 100]).
    image_size: (H, W) of the images measured.
    readable: (H, W) of the pairs the classifier reads (a cascade's base is smaller).
  """

  apply: Callable[[Any, ArrayLike], tuple[jax.Array, jax.Array]]
  params: Any
  description: str
  image_size: tuple[int, int]
  readable: tuple[int, int]

  def __call__(self, images: ArrayLike) -> tuple[jax.Array, jax.Array]:
    return self.apply(self.params, images)

  def label_metrics(self, real_features, real_labels, fake_features, fake_logits, labels):
    del real_features, real_labels, fake_features
    if tuple(self.image_size) != tuple(self.readable):
      return {}
    return statistics.pair_accuracy(fake_logits, labels)


@dataclasses.dataclass(frozen=True, eq=False)
class InceptionFeatures:
  """The FID Inception network's pool3 features; its ImageNet logits feed the Inception
  Score but classify other classes than the data's, so class-conditional samples get FD
  per class only."""

  variables: Any
  description: str

  def __call__(self, images: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    return inception.inception_features(
        self.variables, scaling.to_centered(np.asarray(images, np.float32), centered=False))

  def label_metrics(self, real_features, real_labels, fake_features, fake_logits, labels):
    del fake_logits
    return statistics.class_metrics(real_features, real_labels, fake_features, labels)


def _digits_params(source: FeatureSource) -> Any:
  # Trained on the bundled digits' training split, whatever dataset is measured.
  return source.cached('digits_classifier', lambda: digits.train_digits_classifier(
      *source.train_split('digits', (8, 8)), seed=source.seed))


def _digits_description(source: FeatureSource) -> str:
  return f'digits classifier (seed {source.seed})'


def digit_features(source: FeatureSource) -> ClassifierFeatures:
  return ClassifierFeatures(digits.digits_features, _digits_params(source),
                            _digits_description(source))


def digit_pair_features(source: FeatureSource) -> PairFeatures:
  return PairFeatures(digits.digit_pair_features, _digits_params(source),
                      _digits_description(source), source.image_size,
                      (bundled.DIGIT_PAIRS_SIZE,) * 2)


def _mnist_params(source: FeatureSource) -> Any:
  # Trained on MNIST's training split at its own 28x28, whatever dataset is measured.
  return source.cached('mnist_classifier', lambda: mnist.train_mnist_classifier(
      *source.train_split('mnist', (mnist.MNIST_SIZE,) * 2), seed=source.seed))


def _mnist_description(source: FeatureSource) -> str:
  return f'MNIST classifier (seed {source.seed})'


def mnist_features(source: FeatureSource) -> ClassifierFeatures:
  return ClassifierFeatures(mnist.mnist_features, _mnist_params(source),
                            _mnist_description(source))


def mnist_pair_features(source: FeatureSource) -> PairFeatures:
  return PairFeatures(mnist.mnist_pair_features, _mnist_params(source),
                      _mnist_description(source), source.image_size, bundled.MNIST_PAIRS_SHAPE)


def inception_features(source: FeatureSource) -> InceptionFeatures:
  path = source.inception_weights()
  return InceptionFeatures(inception.load_inception_params(path), f'FID Inception {path}')


Recipe = Callable[[FeatureSource], FeatureNetwork]

# data.dataset -> the recipe of its features; any other dataset is measured by Inception.
FEATURES: dict[str, Recipe] = {
    'digits': digit_features,
    'digit_pairs': digit_pair_features,
    'mnist': mnist_features,
    'mnist_pairs': mnist_pair_features,
}


def recipe(dataset: str) -> Recipe:
  """The recipe of a dataset's feature network."""
  return FEATURES.get(dataset, inception_features)
