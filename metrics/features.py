"""The feature network each dataset's sample quality is measured in: a registry.

FD, KID and IS compare samples with real images in some network's features. For the
bundled digits and digit pairs that is a small classifier of the digits, trained from
scratch when first needed (`metrics.digits`); for every other dataset it is the FID
Inception network, from a local weights file (`metrics.inception`). A dataset gets its own
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
from metrics import digits, inception, statistics


class FeatureSource(Protocol):
  """What a recipe gets from the job that evaluates."""

  seed: int  # of a trained feature network's initialisation and batches
  image_size: int  # the side of the images measured

  def train_split(self, dataset: str, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """A dataset's training split: images [N, S, S, C] in [0, 1] and labels [N]."""

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
class DigitFeatures:
  """The digits classifier's features of 8x8 digits; its logits classify the same classes,
  so class-conditional samples also get their accuracy."""

  params: Any
  description: str

  def __call__(self, images: ArrayLike) -> tuple[jax.Array, jax.Array]:
    return digits.digits_features(self.params, images)

  def label_metrics(self, real_features, real_labels, fake_features, fake_logits, labels):
    return statistics.class_metrics(real_features, real_labels, fake_features, labels,
                                    fake_logits)


@dataclasses.dataclass(frozen=True, eq=False)
class DigitPairFeatures:
  """The digits classifier's features of both halves of digit pairs. Its 100 ordered pairs
  are too many classes for FD per class: samples drawn for prompts get whether they show
  the prompt's digits (`statistics.pair_accuracy`) where the classifier can read them, at
  the pairs' own 16x16."""

  params: Any
  description: str
  image_size: int

  def __call__(self, images: ArrayLike) -> tuple[jax.Array, jax.Array]:
    return digits.digit_pair_features(self.params, images)

  def label_metrics(self, real_features, real_labels, fake_features, fake_logits, labels):
    del real_features, real_labels, fake_features
    if self.image_size != bundled.DIGIT_PAIRS_SIZE:
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
      *source.train_split('digits', 8), seed=source.seed))


def _digits_description(source: FeatureSource) -> str:
  return f'digits classifier (seed {source.seed})'


def digit_features(source: FeatureSource) -> DigitFeatures:
  return DigitFeatures(_digits_params(source), _digits_description(source))


def digit_pair_features(source: FeatureSource) -> DigitPairFeatures:
  return DigitPairFeatures(_digits_params(source), _digits_description(source),
                           source.image_size)


def inception_features(source: FeatureSource) -> InceptionFeatures:
  path = source.inception_weights()
  return InceptionFeatures(inception.load_inception_params(path), f'FID Inception {path}')


Recipe = Callable[[FeatureSource], FeatureNetwork]

# data.dataset -> the recipe of its features; any other dataset is measured by Inception.
FEATURES: dict[str, Recipe] = {
    'digits': digit_features,
    'digit_pairs': digit_pair_features,
}


def recipe(dataset: str) -> Recipe:
  """The recipe of a dataset's feature network."""
  return FEATURES.get(dataset, inception_features)
