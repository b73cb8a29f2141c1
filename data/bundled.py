"""The datasets scorelab builds itself, offline into a tfds data directory on first use:
scikit-learn's 8x8 handwritten digits (`Digits`, 'digits'), two of them side by side on a
16x16 canvas with a caption naming them (`DigitPairs`, 'digit_pairs'), and two real MNIST
digits side by side on a 28x56 canvas with the same captions (`MnistPairs`,
'mnist_pairs', built from tfds' `mnist` prepared in the same data directory)."""

import functools
import io
import os
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from data.common import DatasetError, Example, PathLike, fixed_split, one_line

DIGITS_TFDS_NAME = 'scorelab_digits'
DIGITS_SPLIT_SEED = 0
DIGITS_NUM_TEST = 300


# ---------------------------------------------------------------------------------------
# The bundled 8x8 digits.


def digits_split(num_examples: int = 1797) -> tuple[np.ndarray, np.ndarray]:
  """The fixed train/test split of scikit-learn's digits.

  Args:
    num_examples: the number of images in `sklearn.datasets.load_digits()`.

  Returns:
    (train, test): indices into `load_digits()`, 1497 and 300 of them, from a permutation
    drawn with `np.random.RandomState(DIGITS_SPLIT_SEED)`.
  """
  return fixed_split(num_examples, DIGITS_NUM_TEST, DIGITS_SPLIT_SEED)


def digits_to_uint8(images: np.ndarray) -> np.ndarray:
  """Maps the digits' gray levels 0..16 to uint8 as round(v * 255 / 16)."""
  return np.round(np.asarray(images, np.float64) * 255 / 16).astype(np.uint8)


def png(image: np.ndarray) -> bytes:
  """PNG bytes of a [H, W] uint8 image (tfds would need TensorFlow to encode arrays)."""
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format='PNG')
  return buffer.getvalue()


class Digits(tfds.core.GeneratorBasedBuilder):
  """scikit-learn's 8x8 handwritten digits (UCI optdigits test set) as a tfds dataset.

  1797 grayscale images of 10 classes; levels 0..16 stored as round(v * 255 / 16). The
  split is fixed by `digits_split`: 1497 train, 300 test. The data ship with
  scikit-learn, so preparing it needs no network.
  """

  name = DIGITS_TFDS_NAME
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES: ClassVar[dict[str, str]] = {'1.0.0': 'Initial release.'}

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description='scikit-learn 8x8 handwritten digits, levels 0..16 mapped to 0..255.',
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(shape=(8, 8, 1), encoding_format='png'),
            'label': tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=('image', 'label'),
        homepage='https://archive.ics.uci.edu/dataset/80',
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
    del dl_manager  # nothing to download
    pixels, labels = _load_digits()
    train, test = digits_split(len(labels))
    return {
        'train': self._generate_examples(pixels, labels, train),
        'test': self._generate_examples(pixels, labels, test),
    }

  def _generate_examples(
      self, pixels: np.ndarray, labels: np.ndarray, indices: np.ndarray
  ) -> Iterator[tuple[int, Example]]:
    for i in indices:
      yield int(i), {'image': png(pixels[i]), 'label': int(labels[i])}


def _load_digits() -> tuple[np.ndarray, np.ndarray]:
  """scikit-learn's digits: pixels uint8 [1797, 8, 8] (see `digits_to_uint8`), labels [1797]."""
  # Imported here: it takes two seconds (scipy) and only a first build needs it.
  import sklearn.datasets  # pylint: disable=g-import-not-at-top

  digits = sklearn.datasets.load_digits()
  return digits_to_uint8(digits.images), digits.target


def _prepare_offline(builder_class: Callable[..., tfds.core.GeneratorBasedBuilder],
                     data_dir: PathLike, what: str) -> None:
  """Builds a bundled dataset into `data_dir` as array_record; a no-op when already built."""
  data_dir = os.fspath(data_dir)
  try:
    builder = builder_class(data_dir=data_dir, file_format='array_record')
    if builder.is_prepared():
      return
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  except Exception as e:
    # Another host sharing data_dir may have won the race to the final rename.
    if not builder_class(data_dir=data_dir).is_prepared():
      raise DatasetError(f'could not build {what} in {data_dir}: {one_line(e)}') from e


def prepare_digits(data_dir: PathLike) -> None:
  """Builds the digits into `data_dir` in array_record format; a no-op when already built.

  Raises:
    DatasetError: the build failed.
  """
  _prepare_offline(Digits, data_dir, 'the digits')




DIGIT_PAIRS_TFDS_NAME = 'scorelab_digit_pairs'
DIGIT_PAIRS_NUM_TRAIN = 20000
DIGIT_PAIRS_NUM_TEST = 1000
DIGIT_PAIRS_SIZE = 16  # the side of the canvas
# Where the two 8x8 digits lie on the 16x16 canvas: rows 4-11, columns 0-7 and 8-15.
DIGIT_PAIRS_ROWS = slice(4, 12)
DIGIT_PAIRS_LEFT, DIGIT_PAIRS_RIGHT = slice(0, 8), slice(8, 16)
DIGIT_NAMES = ('zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine')
# Digits as characters or words, named left first or right first: a model has to read the
# words and their order. Fields: left, right (characters), left_word, right_word. No
# articles, which would read "a 8"; every caption fits in 31 bytes, the default max_len's.
PAIR_TEMPLATES = (
    '{left} to the left of {right}',
    '{right} to the right of {left}',
    '{right} on the right, {left} on the left',
    '{left_word}, then {right_word}',
    '{left} and {right}, in that order',
    'left {left}, right {right}',
    '{right_word} after {left_word}',
    '{left} first, then {right_word}',
    'the number {left}{right}',
    'right: {right_word}, left: {left_word}',
)
# Seeds of legacy RandomStates, whose streams are frozen across numpy versions: the held-out
# template of each pair, and each split's draws of digits and templates.
_HELD_OUT_SEED = 0
_PAIR_SEEDS = {'train': 1, 'test': 2}


def _check_pair(left: int, right: int) -> None:
  if not (0 <= left < 10 and 0 <= right < 10):
    raise ValueError(f'digits must be in 0..9, got left={left}, right={right}')


def pair_caption(left: int, right: int, template: int) -> str:
  """The caption of a pair of digits, e.g. '3 to the left of 7' for (3, 7, 0).

  Args:
    left: the digit on the left, 0..9.
    right: the digit on the right, 0..9.
    template: an index into PAIR_TEMPLATES.

  Raises:
    ValueError: a digit or the template is out of range.
  """
  _check_pair(left, right)
  if not 0 <= template < len(PAIR_TEMPLATES):
    raise ValueError(f'template must be in [0, {len(PAIR_TEMPLATES)}), got {template}')
  return PAIR_TEMPLATES[template].format(
      left=left, right=right, left_word=DIGIT_NAMES[left], right_word=DIGIT_NAMES[right])


@functools.cache
def _held_out_templates() -> np.ndarray:
  """[10, 10]: the held-out template of each pair (left, right)."""
  return np.random.RandomState(_HELD_OUT_SEED).randint(len(PAIR_TEMPLATES), size=(10, 10))


def held_out_template(left: int, right: int) -> int:
  """The template of the pair (left, right) that only its test examples use.

  Raises:
    ValueError: a digit is out of 0..9.
  """
  _check_pair(left, right)
  return int(_held_out_templates()[left, right])


def _draw_pairs(labels: np.ndarray, indices: np.ndarray, num_examples: int,
                split: str) -> tuple[np.ndarray, np.ndarray]:
  """A split's pairs of digits and the templates of their captions.

  Each of the 100 ordered pairs of classes comes num_examples / 100 times, in a random
  order; each digit is drawn uniformly from the split's digits of its class.

  Args:
    labels: the digits' labels [1797].
    indices: the digits the split draws from (one split of `digits_split`).
    num_examples: pairs to draw, a multiple of 100.
    split: 'train' (the templates other than each pair's held-out one) or 'test' (the
      held-out one).

  Returns:
    (pairs, templates): indices into the digits [num_examples, 2], left then right, and
    indices into PAIR_TEMPLATES [num_examples].
  """
  rng = np.random.RandomState(_PAIR_SEEDS[split])
  classes = rng.permutation(np.arange(num_examples) % 100)
  digits = np.stack([classes // 10, classes % 10], axis=1)  # [N, 2]: left, right
  by_class = indices[np.argsort(labels[indices], kind='stable')]
  counts = np.bincount(labels[indices], minlength=10)
  pairs = by_class[(np.cumsum(counts) - counts)[digits] + rng.randint(counts[digits])]
  held_out = _held_out_templates()[classes // 10, classes % 10]
  if split == 'test':
    return pairs, held_out
  others = rng.randint(len(PAIR_TEMPLATES) - 1, size=num_examples)
  return pairs, others + (others >= held_out)  # uniform over the templates but held_out


def _pair_features(shape: tuple[int, int]) -> tfds.features.FeaturesDict:
  """A pairs dataset's features: grey images of (height, width), a caption, both digits
  and the pair's label."""
  return tfds.features.FeaturesDict({
      'image': tfds.features.Image(shape=shape + (1,), encoding_format='png'),
      'caption': tfds.features.Text(),
      'left': tfds.features.ClassLabel(num_classes=10),
      'right': tfds.features.ClassLabel(num_classes=10),
      'label': tfds.features.ClassLabel(num_classes=100),  # 10 * left + right
  })


class DigitPairs(tfds.core.GeneratorBasedBuilder):
  """Two of the bundled digits side by side on a 16x16 canvas, with a caption naming them.

  Rows 4..11 hold the digits, the left one in columns 0..7 and the right one in columns
  8..15; the rest is the digits' background, 0. Pixels are stored as in `Digits`. The train
  split's DIGIT_PAIRS_NUM_TRAIN pairs are drawn from the digits' train split, the test
  split's DIGIT_PAIRS_NUM_TEST from their test split, so test images hold unseen digits;
  each of the 100 labels 10 * left + right is equally frequent (200 and 10 examples).
  Each caption is `pair_caption(left, right, template)`: test examples use their pair's
  `held_out_template`, train examples one of the others, so that no test caption is ever
  seen in training. Every draw is from a fixed seed: the dataset is the same everywhere.
  """

  name = DIGIT_PAIRS_TFDS_NAME
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES: ClassVar[dict[str, str]] = {'1.0.0': 'Initial release.'}

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description='Pairs of scikit-learn 8x8 digits side by side, with captions.',
        features=_pair_features((DIGIT_PAIRS_SIZE, DIGIT_PAIRS_SIZE)),
        supervised_keys=('image', 'label'),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
    del dl_manager  # nothing to download
    pixels, labels = _load_digits()
    train, test = digits_split(len(labels))
    return {
        'train': self._generate_examples(pixels, labels, train, DIGIT_PAIRS_NUM_TRAIN, 'train'),
        'test': self._generate_examples(pixels, labels, test, DIGIT_PAIRS_NUM_TEST, 'test'),
    }

  def _generate_examples(
      self, pixels: np.ndarray, labels: np.ndarray, indices: np.ndarray, num_examples: int,
      split: str,
  ) -> Iterator[tuple[int, Example]]:
    pairs, templates = _draw_pairs(labels, indices, num_examples, split)
    for i, ((a, b), template) in enumerate(zip(pairs, templates)):
      left, right = int(labels[a]), int(labels[b])
      canvas = np.zeros((DIGIT_PAIRS_SIZE, DIGIT_PAIRS_SIZE), np.uint8)
      canvas[DIGIT_PAIRS_ROWS, DIGIT_PAIRS_LEFT] = pixels[a]
      canvas[DIGIT_PAIRS_ROWS, DIGIT_PAIRS_RIGHT] = pixels[b]
      yield i, {'image': png(canvas), 'caption': pair_caption(left, right, int(template)),
                'left': left, 'right': right, 'label': 10 * left + right}


def prepare_digit_pairs(data_dir: PathLike) -> None:
  """Builds the digit pairs into `data_dir` in array_record format; a no-op when built.

  Raises:
    DatasetError: the build failed.
  """
  _prepare_offline(DigitPairs, data_dir, 'the digit pairs')


# ---------------------------------------------------------------------------------------
# Pairs of real MNIST digits, built from tfds' mnist prepared in the same data directory.

MNIST_PAIRS_TFDS_NAME = 'scorelab_mnist_pairs'
MNIST_PAIRS_NUM_TRAIN = 60000
MNIST_PAIRS_NUM_TEST = 1000
MNIST_SIZE = 28  # the side of an MNIST digit
MNIST_PAIRS_SHAPE = (MNIST_SIZE, 2 * MNIST_SIZE)  # (height, width) of the canvas


def mnist_split(data_dir: PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
  """One split of tfds' `mnist` in data_dir: images uint8 [N, 28, 28] and labels [N].

  Raises:
    DatasetError: mnist is not prepared there (the message says how to prepare it).
  """
  # Imported here: data.sources imports this module's BUNDLED.
  from data import sources  # pylint: disable=g-import-not-at-top

  source, _ = sources.open_source('mnist', split, data_dir=data_dir)
  records = [source[i] for i in range(len(source))]
  images = np.stack([np.asarray(r['image'], np.uint8).reshape(MNIST_SIZE, MNIST_SIZE)
                     for r in records])
  return images, np.array([int(r['label']) for r in records])


class MnistPairs(tfds.core.GeneratorBasedBuilder):
  """Two real MNIST digits side by side on a 28x56 canvas, with a caption naming them: the
  digit pairs' captions (`pair_caption`, held-out phrasings in the test split) on MNIST.

  The left digit fills columns 0..27, the right one 28..55. The train split's
  MNIST_PAIRS_NUM_TRAIN pairs are drawn from MNIST's training split, the test split's
  MNIST_PAIRS_NUM_TEST from its test split (so test pairs hold unseen digits); each of the
  100 labels 10 * left + right is equally frequent. Every draw is from a fixed seed, so the
  dataset is the same wherever it is built from the same MNIST.

  Built from `mnist_dir`, the data directory holding tfds' prepared `mnist`; reading a
  built one needs no source.
  """

  name = MNIST_PAIRS_TFDS_NAME
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES: ClassVar[dict[str, str]] = {'1.0.0': 'Initial release.'}

  def __init__(self, *, mnist_dir: PathLike | None = None, **kwargs):
    self._mnist_dir = mnist_dir
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description='Pairs of MNIST digits side by side, with captions.',
        features=_pair_features(MNIST_PAIRS_SHAPE),
        supervised_keys=('image', 'label'),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
    del dl_manager  # nothing to download
    return {split: self._generate_examples(*mnist_split(self._mnist_dir, split), num, split)
            for split, num in (('train', MNIST_PAIRS_NUM_TRAIN), ('test', MNIST_PAIRS_NUM_TEST))}

  def _generate_examples(self, pixels: np.ndarray, labels: np.ndarray, num_examples: int,
                         split: str) -> Iterator[tuple[int, Example]]:
    pairs, templates = _draw_pairs(labels, np.arange(len(labels)), num_examples, split)
    for i, ((a, b), template) in enumerate(zip(pairs, templates)):
      left, right = int(labels[a]), int(labels[b])
      canvas = np.concatenate([pixels[a], pixels[b]], axis=1)
      yield i, {'image': png(canvas), 'caption': pair_caption(left, right, int(template)),
                'left': left, 'right': right, 'label': 10 * left + right}


def prepare_mnist_pairs(data_dir: PathLike) -> None:
  """Builds the MNIST pairs into `data_dir` from the `mnist` prepared there; a no-op when
  built.

  Raises:
    DatasetError: mnist is missing from data_dir (the message says how to prepare it), or
      the build failed.
  """
  _prepare_offline(functools.partial(MnistPairs, mnist_dir=data_dir), data_dir,
                   "the MNIST pairs (from tfds' mnist in the same data directory)")


# name -> (tfds name, function that builds it offline into a data_dir)
BUNDLED: dict[str, tuple[str, Callable[[PathLike], None]]] = {
    'digits': (DIGITS_TFDS_NAME, prepare_digits),
    'digit_pairs': (DIGIT_PAIRS_TFDS_NAME, prepare_digit_pairs),
    'mnist_pairs': (MNIST_PAIRS_TFDS_NAME, prepare_mnist_pairs),
}


