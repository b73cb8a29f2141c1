"""The input pipeline: tfds datasets read through grain as pure functions of the step.

Images come from `tfds.data_source` (array_record files, random access, no TensorFlow), or
from a folder of image files read the same way, and are turned into batches by a grain
`MapDataset`, so that

  * `ds.batch(step)` is a pure function of `(seed, step)`: a resumed run sees exactly the
    batches it would have seen, whatever the number of hosts it restarts on;
  * each epoch is a fresh permutation of the split (grain's `shuffle` reseeds per epoch),
    the global batch of step `s` is the next `global_batch_size` examples of that infinite
    stream, and host `p` of `P` takes the contiguous slice `[p * B, (p + 1) * B)`, B = global
    batch / P;
  * random flips and dequantisation noise of the example at stream position `g = s * global
    batch + i` are drawn from a generator keyed by `(seed, g)`, so they do not depend on the
    batch size per host either.

Preprocessing follows Song et al.'s score_sde `datasets.py`: decode to float in [0, 1]
(x / 255); central 140x140 crop for CelebA; resize with antialiased bilinear interpolation
(PIL on float32 channels, equal to `tf.image.resize(..., antialias=True)` to float rounding;
non-square images are centre-cropped to a square first instead of being squashed); random
horizontal flip; uniform dequantisation `(x (levels - 1) + U[0, 1)) / levels`; then `2 x - 1` if
`centered`.

`'digits'` is scikit-learn's 8x8 handwritten digits, built offline into the data directory
on first use as the tfds dataset `scorelab_digits` (see `Digits`); `'digit_pairs'` is two of
them side by side on a 16x16 canvas with a caption such as 'three, then seven', built the
same way (see `DigitPairs`); `'folder:/path'` is a folder of the user's own PNG/JPEG images,
one subfolder per class (see `open_folder`); every other name is a tfds builder name
(`cifar10`, `mnist`, `celeb_a`, `lsun/bedroom`, `coco_captions`, ...) that must already be
prepared in array_record format, unless `download=True`.

With `caption_key`, examples also carry a caption as byte-level tokens (see `tokenize`), for
text-conditional models; a training example of an image with several captions takes one
drawn with its own keyed generator, so captions are as deterministic as the noise.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import grain
import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

Example = dict[str, np.ndarray]
PathLike = str | os.PathLike[str]

DIGITS_TFDS_NAME = 'scorelab_digits'
DIGITS_SPLIT_SEED = 0
DIGITS_NUM_TEST = 300
FOLDER_PREFIX = 'folder:'  # data.dataset='folder:/path/to/images'
FOLDER_EXTENSIONS = ('.png', '.jpg', '.jpeg')  # compared in lower case
FOLDER_SPLIT_SEED = 0
FOLDER_TEST_PERCENT = 10  # of a folder's images (at least one) form its test split
# PIL modes read from folders: RGBA, palette, 16-bit, CMYK, ... would need a choice (of
# background, palette, scaling) that the user makes better by converting the files.
_FOLDER_CHANNELS = {'L': 1, 'RGB': 3}
# Song et al. crop CelebA's 178x218 portraits to the central 140x140 before resizing.
_CENTRAL_CROP = {'celeb_a': 140}
_ARRAY_FORMATS = ('array_record', 'parquet')  # the formats tfds.data_source can read


class DatasetError(ValueError):
  """A dataset is unknown, not prepared, or unreadable; the message says what to do."""


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
  return _fixed_split(num_examples, DIGITS_NUM_TEST, DIGITS_SPLIT_SEED)


def _fixed_split(num_examples: int, num_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  # Legacy RandomState: its permutation is frozen across numpy versions, so the split is too.
  perm = np.random.RandomState(seed).permutation(num_examples)
  return perm[num_test:], perm[:num_test]


def digits_to_uint8(images: np.ndarray) -> np.ndarray:
  """Maps the digits' gray levels 0..16 to uint8 as round(v * 255 / 16)."""
  return np.round(np.asarray(images, np.float64) * 255 / 16).astype(np.uint8)


def _png(image: np.ndarray) -> bytes:
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
      yield int(i), {'image': _png(pixels[i]), 'label': int(labels[i])}


def _load_digits() -> tuple[np.ndarray, np.ndarray]:
  """scikit-learn's digits: pixels uint8 [1797, 8, 8] (see `digits_to_uint8`), labels [1797]."""
  # Imported here: it takes two seconds (scipy) and only a first build needs it.
  import sklearn.datasets  # pylint: disable=g-import-not-at-top

  digits = sklearn.datasets.load_digits()
  return digits_to_uint8(digits.images), digits.target


def _prepare_offline(builder_class: type[tfds.core.GeneratorBasedBuilder], data_dir: PathLike,
                     what: str) -> None:
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
      raise DatasetError(f'could not build {what} in {data_dir}: {_one_line(e)}') from e


def prepare_digits(data_dir: PathLike) -> None:
  """Builds the digits into `data_dir` in array_record format; a no-op when already built.

  Raises:
    DatasetError: the build failed.
  """
  _prepare_offline(Digits, data_dir, 'the digits')


# ---------------------------------------------------------------------------------------
# The bundled digit pairs: two digits side by side, captioned.

DIGIT_PAIRS_TFDS_NAME = 'scorelab_digit_pairs'
DIGIT_PAIRS_NUM_TRAIN = 20000
DIGIT_PAIRS_NUM_TEST = 1000
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
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(shape=(16, 16, 1), encoding_format='png'),
            'caption': tfds.features.Text(),
            'left': tfds.features.ClassLabel(num_classes=10),
            'right': tfds.features.ClassLabel(num_classes=10),
            'label': tfds.features.ClassLabel(num_classes=100),  # 10 * left + right
        }),
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
      canvas = np.zeros((16, 16), np.uint8)
      canvas[DIGIT_PAIRS_ROWS, DIGIT_PAIRS_LEFT] = pixels[a]
      canvas[DIGIT_PAIRS_ROWS, DIGIT_PAIRS_RIGHT] = pixels[b]
      yield i, {'image': _png(canvas), 'caption': pair_caption(left, right, int(template)),
                'left': left, 'right': right, 'label': 10 * left + right}


def prepare_digit_pairs(data_dir: PathLike) -> None:
  """Builds the digit pairs into `data_dir` in array_record format; a no-op when built.

  Raises:
    DatasetError: the build failed.
  """
  _prepare_offline(DigitPairs, data_dir, 'the digit pairs')


# name -> (tfds name, function that builds it offline into a data_dir)
BUNDLED: dict[str, tuple[str, Callable[[PathLike], None]]] = {
    'digits': (DIGITS_TFDS_NAME, prepare_digits),
    'digit_pairs': (DIGIT_PAIRS_TFDS_NAME, prepare_digit_pairs),
}


# ---------------------------------------------------------------------------------------
# Captions as tokens.

TOKENIZERS = ('bytes',)
EOT = 256  # end of text, after a caption's bytes
PAD = 257  # after EOT, up to max_len
VOCAB_SIZE = 258


def tokenize(captions: Sequence[str | bytes], *, max_len: int,
             tokenizer: str = 'bytes') -> tuple[np.ndarray, np.ndarray]:
  """Tokens of captions: their UTF-8 bytes, then EOT, then PAD up to max_len.

  A byte-level vocabulary needs no download. The empty caption, [EOT, PAD, ...], is the
  null caption of classifier-free guidance. Nothing is stripped.

  Args:
    captions: str, or bytes as tfds Text features decode to (taken as UTF-8).
    max_len: tokens per caption, at least 2; a caption keeps its first max_len - 1 bytes,
      which may cut a character in two.
    tokenizer: one of TOKENIZERS.

  Returns:
    (tokens, truncated): int32 [N, max_len], and bool [N], True where a caption had more
    than max_len - 1 bytes.

  Raises:
    ValueError: an unknown tokenizer, or max_len < 2.
    TypeError: `captions` is a single string, or holds something else than str and bytes.
  """
  if tokenizer not in TOKENIZERS:
    raise ValueError(f'unknown tokenizer {tokenizer!r}; known: {list(TOKENIZERS)}')
  if max_len < 2:
    raise ValueError(f'max_len must be at least 2 (a byte and EOT), got {max_len}')
  if isinstance(captions, (str, bytes)):  # would be tokenized as one caption per character
    raise TypeError(f'captions must be a sequence of captions, got the string {captions!r}')
  tokens = np.full((len(captions), max_len), PAD, np.int32)
  truncated = np.zeros(len(captions), bool)
  for i, caption in enumerate(captions):
    if isinstance(caption, str):
      caption = caption.encode('utf-8')
    elif not isinstance(caption, bytes):
      raise TypeError(f'a caption must be str or bytes, got {type(caption).__name__}')
    truncated[i] = len(caption) > max_len - 1
    caption = caption[:max_len - 1]
    tokens[i, :len(caption)] = np.frombuffer(caption, np.uint8)
    tokens[i, len(caption)] = EOT
  return tokens, truncated


def detokenize(tokens: np.ndarray) -> list[str]:
  """The captions of tokens [N, max_len]: the bytes before each row's first EOT, as UTF-8.

  Bytes that do not decode, e.g. a character cut in two by truncation, become U+FFFD.
  """
  tokens = np.asarray(tokens)
  if tokens.ndim != 2:
    raise ValueError(f'tokens must be [N, max_len], got shape {tokens.shape}')
  # A row without EOT (not from `tokenize`) ends at its first token that is not a byte.
  ends = np.argmax(np.concatenate([tokens, np.full((len(tokens), 1), EOT)], 1) >= EOT, 1)
  return [bytes(row[:end].astype(np.uint8)).decode('utf-8', errors='replace')
          for row, end in zip(tokens, ends)]


# ---------------------------------------------------------------------------------------
# Pure preprocessing of one example.


def to_uint8_image(image: np.ndarray | bytes) -> np.ndarray:
  """A decoded tfds image as uint8 [H, W, C].

  `tfds.data_source` decodes Image features to arrays itself (with OpenCV, or PIL when
  OpenCV is missing); encoded bytes (e.g. read with `tfds.decode.SkipDecoding`) are decoded
  here with PIL.
  """
  if isinstance(image, bytes):
    with Image.open(io.BytesIO(image)) as decoded:
      image = np.asarray(decoded)
  image = np.asarray(image, np.uint8)
  return image[..., None] if image.ndim == 2 else image


def resize(image: np.ndarray, *, image_size: int, crop: int | None = None) -> np.ndarray:
  """Centre-crops to a square and resizes with antialiased bilinear interpolation.

  Args:
    image: float32 [H, W, C].
    image_size: side of the output.
    crop: side of the central square to keep first (Song et al.'s 140 for CelebA); by
      default the largest one, so that non-square images are cropped, not squashed.

  Returns:
    float32 [image_size, image_size, C]; the input itself when no resizing is needed.
  """
  height, width, channels = image.shape
  side = min(height, width) if crop is None else crop
  top, left = (height - side) // 2, (width - side) // 2
  # Crop before resizing (PIL's `box` would let the filter see pixels outside the crop).
  image = image[top:top + side, left:left + side]
  if side == image_size:
    return image
  # PIL's float ('F') bilinear filter widens with the scale factor, as TF's antialias does.
  planes = [
      np.asarray(Image.fromarray(np.ascontiguousarray(image[..., k])).resize(
          (image_size, image_size), Image.Resampling.BILINEAR))
      for k in range(channels)
  ]
  return np.stack(planes, axis=-1)


def preprocess(record: dict[str, Any], *, image_size: int, crop: int | None,
               caption_key: str = '') -> Example:
  """Decodes a tfds record.

  Args:
    record: as `tfds.data_source` decodes it.
    image_size: side of the output image.
    crop: as in `resize`.
    caption_key: the text feature to take captions from, '/' between nested names, e.g.
      'caption' or 'captions/text'; '' for none.

  Returns:
    image: float32 [image_size, image_size, C] in [0, 1].
    label: int32 [].
    captions: with caption_key, the record's captions as an object array [K] of bytes or
      str; a Text feature gives K = 1, a record without any captions the empty one.
  """
  image = to_uint8_image(record['image']).astype(np.float32) / 255
  label = record.get('label', 0)  # unlabelled datasets get the null class 0 == num_classes
  example = {'image': resize(image, image_size=image_size, crop=crop),
             'label': np.asarray(label, np.int32)}
  if caption_key:
    value = record
    for name in caption_key.split('/'):
      value = value[name]
    # A Sequence of Text decodes to a list or an array of bytes, a Text to bytes.
    captions = np.asarray(value, dtype=object).reshape(-1)
    example['captions'] = captions if len(captions) else np.array([b''], dtype=object)
  return example


def augment(
    example: Example, rng: np.random.Generator, *, random_flip: bool,
    uniform_dequantization: bool, levels: int = 256,
) -> Example:
  """Random horizontal flip, then uniform dequantisation (x (levels - 1) + U[0, 1)) / levels
  of images of `levels` grey levels k / (levels - 1).

  An example with captions [K] (see `preprocess`) keeps one of them, drawn uniformly, as
  captions [1].
  """
  image = example['image']  # [H, W, C] in [0, 1]
  # Draw the coin whatever random_flip, so that the noise is the same with or without flips.
  flip = rng.random() < 0.5
  if random_flip and flip:
    image = image[:, ::-1]
  if uniform_dequantization:
    image = (image * (levels - 1) + rng.random(image.shape, dtype=np.float32)) / levels
  example = {**example, 'image': image}
  if 'captions' in example:
    # Drawn last, so that the images are the same with captions or without.
    k = rng.integers(len(example['captions']))
    example['captions'] = example['captions'][k:k + 1]
  return example


def tokenize_caption(example: Example, *, max_len: int, tokenizer: str) -> Example:
  """Replaces an example's captions [K] by the tokens of the first one (see `tokenize`).

  Returns:
    The example without captions, with tokens int32 [max_len] and truncated bool [].
  """
  tokens, truncated = tokenize(example['captions'][:1], max_len=max_len, tokenizer=tokenizer)
  rest = {key: value for key, value in example.items() if key != 'captions'}
  return {**rest, 'tokens': tokens[0], 'truncated': truncated[0]}


def center(example: Example, *, centered: bool) -> Example:
  """Maps images from [0, 1] to [-1, 1] when `centered`."""
  if not centered:
    return example
  return {**example, 'image': 2 * example['image'] - 1}


def host_batch_size(global_batch_size: int, process_index: int, process_count: int) -> int:
  """The per-host share of a global batch; raises ValueError unless it divides evenly."""
  if not 0 <= process_index < process_count:
    raise ValueError(f'process_index {process_index} not in [0, {process_count})')
  if global_batch_size <= 0 or global_batch_size % process_count:
    raise ValueError(
        f'batch size {global_batch_size} must be positive and divisible by the '
        f'{process_count} processes')
  return global_batch_size // process_count


# ---------------------------------------------------------------------------------------
# Opening a split.


def _one_line(e: BaseException) -> str:
  lines = str(e).strip().splitlines()
  return f'{type(e).__name__}: {lines[0] if lines else ""}'


class _CheckedSource:
  """A tfds data source whose read errors become DatasetError naming the files."""

  def __init__(self, source: Any, where: str):
    self._source = source
    self._where = where

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> dict[str, Any]:
    try:
      return self._source[index]
    except Exception as e:
      # array_record and the decoders raise RuntimeError, OSError or ValueError on
      # truncated or corrupt files; say which files to rebuild rather than where it broke.
      raise DatasetError(
          f'cannot read record {index} of {self._where} ({_one_line(e)}): the files are '
          'corrupt or incomplete; delete that directory and prepare the dataset again') from e


def _missing_message(tfds_name: str, data_dir: str) -> str:
  return (
      f'dataset {tfds_name!r} is not prepared in {data_dir}: prepare it where there is '
      'internet and TensorFlow with `python -c "import tensorflow_datasets as tfds; '
      f"tfds.builder('{tfds_name}', data_dir='{data_dir}', file_format='array_record')"
      '.download_and_prepare()"` (then copy that directory here), or pass '
      '--config.data.download=True')


def open_source(
    name: str, split: str, *, data_dir: PathLike | None, download: bool = False
) -> tuple[_CheckedSource, tfds.core.DatasetInfo]:
  """Opens one split of a dataset for random access, failing fast and in one line.

  Args:
    name: 'digits' (built offline on first use) or a tfds builder name, e.g. 'cifar10',
      'lsun/bedroom'.
    split: a tfds split, e.g. 'train', 'test', 'train[:90%]'.
    data_dir: the tfds data directory; None (or '') is tfds' default, $TFDS_DATA_DIR or
      ~/tensorflow_datasets.
    download: let tfds download and prepare a missing dataset (needs internet and, for
      most image datasets, TensorFlow); never touch the network otherwise.

  Returns:
    (source, info): `source[i]` is the i-th decoded record of the split.

  Raises:
    DatasetError: the dataset is unknown, missing, in a format without random access, or
      its files cannot be read.
  """
  data_dir = os.path.expanduser(os.fspath(data_dir or tfds.core.constants.DATA_DIR))
  tfds_name = name
  if name in BUNDLED:
    tfds_name, prepare = BUNDLED[name]
    prepare(data_dir)
  try:
    builder = tfds.builder(tfds_name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError as e:
    raise DatasetError(
        f'unknown dataset {name!r}: neither bundled ({sorted(BUNDLED)}) nor a tfds builder '
        '(https://www.tensorflow.org/datasets/catalog)') from e
  except Exception as e:  # bad config names, unreadable dataset_info.json, ...
    raise DatasetError(f'cannot open dataset {name!r} in {data_dir}: {_one_line(e)}') from e

  if builder.is_prepared():
    file_format = builder.info.file_format
    if file_format is None or file_format.value not in _ARRAY_FORMATS:
      raise DatasetError(
          f'dataset {tfds_name!r} in {builder.data_dir} is stored as {file_format}, which '
          "tfds.data_source cannot read: prepare it again with file_format='array_record'")
  elif download:
    try:
      builder.download_and_prepare(file_format='array_record')
    except Exception as e:
      raise DatasetError(
          f'downloading {tfds_name!r} into {data_dir} failed: {_one_line(e)}') from e
  else:
    raise DatasetError(_missing_message(tfds_name, data_dir))

  where = f'{tfds_name}[{split}] in {builder.data_dir}'
  try:
    source = tfds.data_source(tfds_name, split=split, data_dir=data_dir, download=False)
  except Exception as e:  # unknown split names, missing shards
    raise DatasetError(f'cannot open {where}: {_one_line(e)}') from e
  source = _CheckedSource(source, where)
  if not len(source):
    raise DatasetError(f'{where} is empty')
  if 'image' not in builder.info.features:
    raise DatasetError(f'{where} has no image feature')
  # Reading both ends touches the first chunk and the footer, where truncation shows.
  for index in (0, len(source) - 1):
    source[index]
  return source, builder.info


# ---------------------------------------------------------------------------------------
# Opening a folder of images.


def folder_split(num_examples: int) -> tuple[np.ndarray, np.ndarray]:
  """The fixed train/test split of a folder's images: the same on every host and every run.

  Args:
    num_examples: the number of images in the folder, at least 2.

  Returns:
    (train, test): sorted indices into the folder's list of images (see `open_folder`);
    test holds FOLDER_TEST_PERCENT % of them, at least one, drawn with
    `np.random.RandomState(FOLDER_SPLIT_SEED)`. Adding or removing images reshuffles it.
  """
  num_test = max(1, num_examples * FOLDER_TEST_PERCENT // 100)
  train, test = _fixed_split(num_examples, num_test, FOLDER_SPLIT_SEED)
  return np.sort(train), np.sort(test)


def _visible_entries(path: str) -> list[os.DirEntry[str]]:
  """A directory's entries in name order, less hidden ones (.DS_Store, .ipynb_checkpoints)."""
  try:
    with os.scandir(path) as entries:
      return sorted((e for e in entries if not e.name.startswith('.')), key=lambda e: e.name)
  except OSError as e:
    raise DatasetError(f'cannot list {path}: {_one_line(e)}') from e


def _images(entries: list[os.DirEntry[str]]) -> list[str]:
  return [e.path for e in entries if e.is_file() and e.name.lower().endswith(FOLDER_EXTENSIONS)]


def _scan_folder(root: str) -> tuple[list[str], list[int], int, int]:
  """Lists a folder's images and labels and checks their modes from the headers alone.

  Returns:
    (files, labels, num_channels, num_classes), files in the order of `open_folder`.

  Raises:
    DatasetError: as `open_folder` says.
  """
  if not os.path.isdir(root):
    raise DatasetError(f'{root} is not a folder' if os.path.exists(root)
                       else f'image folder {root} does not exist')
  entries = _visible_entries(root)
  files = _images(entries)
  classes = [e for e in entries if e.is_dir()]
  if files and classes:
    raise DatasetError(
        f'{root} holds both images ({os.path.basename(files[0])}, ...) and class subfolders '
        f'({classes[0].name}, ...): put every image in a class subfolder, or none')
  labels = [0] * len(files)  # unlabelled: the null class of a conditional model
  for label, folder in enumerate(classes):
    in_class = _images(_visible_entries(folder.path))
    if not in_class:  # it would silently be a class without examples
      raise DatasetError(f'class folder {folder.path} holds no {"/".join(FOLDER_EXTENSIONS)} '
                         'images')
    files += in_class
    labels += [label] * len(in_class)
  if len(files) < 2:
    raise DatasetError(f'{root} holds {len(files) or "no"} {"/".join(FOLDER_EXTENSIONS)} '
                       'images; its train/test split needs at least 2')

  first_of_mode: dict[str, str] = {}  # mode -> its first file
  for path in files:
    try:
      with Image.open(path) as image:  # reads the header only
        mode = image.mode
    except Exception as e:  # PIL.UnidentifiedImageError (an OSError), permissions, ...
      raise DatasetError(f'cannot read image {path}: {_one_line(e)}') from e
    if mode not in _FOLDER_CHANNELS:
      raise DatasetError(
          f'{path} has mode {mode}, but folders are read as L (grayscale) or RGB: convert '
          "it, e.g. with PIL's Image.convert('RGB')")
    first_of_mode.setdefault(mode, path)
  if len(first_of_mode) > 1:
    (mode, path), (other, other_path) = first_of_mode.items()
    raise DatasetError(
        f'the images in {root} mix channel counts: {path} is {mode}, {other_path} is {other}; '
        'convert them all to one mode')
  (mode,) = first_of_mode
  return files, labels, _FOLDER_CHANNELS[mode], len(classes)


class _FolderSource:
  """One split of a folder as a random-access source of records like tfds.data_source's."""

  def __init__(self, files: list[str], labels: list[int]):
    self._files = files
    self._labels = labels

  def __len__(self) -> int:
    return len(self._files)

  def __getitem__(self, index: int) -> dict[str, Any]:
    path = self._files[index]
    try:  # decoded here rather than in `preprocess`, so that a bad file is named
      with open(path, 'rb') as f:
        image = to_uint8_image(f.read())
    except Exception as e:  # truncated pixel data passes the header check of _scan_folder
      raise DatasetError(f'cannot read image {path}: {_one_line(e)}') from e
    return {'image': image, 'label': self._labels[index]}


def open_folder(path: PathLike, split: str) -> tuple[_FolderSource, int, int]:
  """Opens one split of a folder of the user's own images, failing fast and in one line.

  The folder holds .png, .jpg or .jpeg files (any letter case), either all directly (labels 0,
  num_classes 0: unlabelled) or all in one subfolder per class (labels 0..K-1 by subfolder
  name; deeper folders are not read). Other files and hidden entries are ignored. The
  images are all L (grayscale, 1 channel) or all RGB (3 channels); other modes, e.g. RGBA
  or palette PNGs, are refused rather than converted by a guess. Opening reads every
  file's header but no pixels; an image is decoded when its record is read.

  Args:
    path: the folder; '~' is expanded.
    split: 'train' or 'test', as fixed by `folder_split` over the images sorted by class
      and then by file name.

  Returns:
    (source, num_channels, num_classes): `source[i]` is the i-th image of the split, in
    that order, as a record {'image': uint8 [H, W, C], 'label': int}.

  Raises:
    DatasetError: the split is unknown; the folder does not exist, has fewer than 2 images,
      an empty class subfolder, images beside class subfolders, a file PIL cannot read or
      of another mode, or images of both modes. The message names the folder or file.
  """
  if not os.fspath(path):
    raise DatasetError(f"{FOLDER_PREFIX!r} needs a path: '{FOLDER_PREFIX}/path/to/images'")
  root = os.path.abspath(os.path.expanduser(os.fspath(path)))
  if split not in ('train', 'test'):
    raise DatasetError(f"image folder {root} has splits 'train' and 'test', not {split!r}")
  files, labels, num_channels, num_classes = _scan_folder(root)
  train, test = folder_split(len(files))
  indices = train if split == 'train' else test
  source = _FolderSource([files[i] for i in indices], [labels[i] for i in indices])
  return source, num_channels, num_classes


# ---------------------------------------------------------------------------------------
# The dataset.


def _feature_leaves(feature: Any, path: str = '') -> list[tuple[str, Any]]:
  """(path, feature) of every leaf of a tfds feature, with paths as records nest them."""
  while isinstance(feature, tfds.features.Sequence):  # a Sequence of dicts decodes to a dict
    feature = feature.feature
  if not isinstance(feature, tfds.features.FeaturesDict):
    return [(path, feature)]
  return [leaf for name, inner in feature.items()
          for leaf in _feature_leaves(inner, f'{path}/{name}' if path else name)]


def _check_caption_key(features: tfds.features.FeaturesDict, caption_key: str,
                       name: str) -> None:
  """Raises DatasetError unless `caption_key` names a Text feature, naming those there are."""
  leaves = dict(_feature_leaves(features))
  if not isinstance(leaves.get(caption_key), tfds.features.Text):
    there = ', '.join(f'{path} ({type(f).__name__})' for path, f in sorted(leaves.items()))
    raise DatasetError(f'dataset {name!r} has no text feature {caption_key!r} to take captions '
                       f'from (caption_key); its features: {there}')


def _read_options(num_threads: int, prefetch: int) -> grain.ReadOptions:
  return grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch)


@dataclasses.dataclass(frozen=True)
class ImageDataset:
  """One split of an image dataset as batches per step, for this host.

  Attributes:
    num_examples: examples in the split.
    num_channels: C of the images.
    num_classes: labels are in [0, num_classes); 0 for unlabelled data, whose labels are
      all 0 (the null class of a conditional model).
    image_size: H == W of the images.
    global_batch_size: examples per training step over all hosts.
    host_batch_size: this host's share, global_batch_size // process_count.
    process_index: this host.
    process_count: the number of hosts.
    max_len: tokens per caption (see `tokenize`); 0 when examples carry no captions.
    tokenizer: the tokenizer of the captions, one of TOKENIZERS; '' without captions.
  """

  num_examples: int
  num_channels: int
  num_classes: int
  image_size: int
  global_batch_size: int
  host_batch_size: int
  process_index: int
  process_count: int
  max_len: int
  tokenizer: str
  _train: grain.MapDataset = dataclasses.field(repr=False)  # host batches, by step
  _eval: grain.MapDataset = dataclasses.field(repr=False)  # examples, in order, no noise

  def batch(self, step: int) -> Example:
    """The training batch of `step` for this host.

    Returns:
      image: float32 [host_batch_size, image_size, image_size, num_channels].
      label: int32 [host_batch_size].
      tokens: int32 [host_batch_size, max_len], with captions only: one of each example's
        captions, drawn anew at each pass over the data.
      truncated: bool [host_batch_size], with captions only: the caption was cut to fit.
    """
    if step < 0:
      raise ValueError(f'step must be >= 0, got {step}')
    return self._train[step]

  def batches(
      self, start_step: int = 0, *, num_threads: int = 4, prefetch: int = 8
  ) -> Iterator[Example]:
    """`batch(start_step), batch(start_step + 1), ...`, prepared ahead in threads."""
    if start_step < 0:
      raise ValueError(f'start_step must be >= 0, got {start_step}')
    steps = self._train[start_step:]
    return iter(steps.to_iter_dataset(_read_options(num_threads, prefetch)))

  def epoch(
      self, batch_size: int, *, num_threads: int = 4, prefetch: int = 8
  ) -> Iterator[Example]:
    """One ordered pass over the split for evaluation: no flips, no dequantisation.

    Global batch k holds examples [k * batch_size, (k + 1) * batch_size), padded past the
    end of the split; this host gets its contiguous share, so every host yields the same
    number of batches, ceil(num_examples / batch_size).

    Args:
      batch_size: the global batch size, divisible by process_count.

    Yields:
      image, label (and tokens, truncated) as in `batch`, and mask: bool [batch_size //
      process_count], False on padding (whose image and label are zeros, whose tokens are
      the empty caption's). Tokens are those of each example's first caption.
    """
    per_host = host_batch_size(batch_size, self.process_index, self.process_count)
    num_batches = math.ceil(self.num_examples / batch_size)
    padding = {
        'image': np.zeros((self.image_size, self.image_size, self.num_channels), np.float32),
        'label': np.zeros((), np.int32),
        'mask': np.False_,
    }
    if self.max_len:
      (null,), _ = tokenize([''], max_len=self.max_len, tokenizer=self.tokenizer)
      padding.update(tokens=null, truncated=np.False_)

    def example(index: int) -> Example:
      if index >= self.num_examples:
        return padding
      return {**self._eval[index], 'mask': np.True_}

    batches = (
        grain.MapDataset.range(num_batches * batch_size)
        .map(example)
        .batch(per_host)
        .slice(slice(self.process_index, None, self.process_count)))
    return iter(batches.to_iter_dataset(_read_options(num_threads, prefetch)))


def get_dataset(
    name: str,
    split: str,
    *,
    data_dir: PathLike | None,
    image_size: int,
    centered: bool,
    random_flip: bool,
    uniform_dequantization: bool,
    global_batch_size: int,
    levels: int = 256,
    seed: int,
    process_index: int = 0,
    process_count: int = 1,
    download: bool = False,
    caption_key: str = '',
    max_len: int = 32,
    tokenizer: str = 'bytes',
) -> ImageDataset:
  """Opens a split as deterministic per-step training batches and ordered eval epochs.

  Args:
    name: 'digits', a tfds builder name ('cifar10', 'mnist', 'celeb_a', 'lsun/bedroom') or
      'folder:/path/to/images' (see `open_folder`).
    split: a tfds split name, e.g. 'train' or 'test'; a folder has only these two.
    data_dir: the tfds data directory (the digits are built there on first use); None
      is tfds' default. Folders do not use it.
    image_size: side of the square images returned.
    centered: scale images to [-1, 1] instead of [0, 1].
    random_flip: flip training images horizontally with probability 1/2.
    uniform_dequantization: add U[0, 1) / levels noise to training images.
    levels: the data's grey levels (256 for 8-bit images, 17 for the bundled digits).
    global_batch_size: examples per training step over all hosts.
    seed: determines the order of examples and the augmentation noise.
    process_index: this host, in [0, process_count).
    process_count: the number of hosts.
    download: let tfds download a missing dataset (needs internet and TensorFlow).
    caption_key: a text feature whose captions the examples carry as tokens, '/' between
      nested names: 'caption' for digit_pairs, 'captions/text' for coco_captions. Of
      several captions of an image, a training example takes one at random (drawn anew
      each epoch), an eval epoch the first. '' for none.
    max_len: tokens per caption, with caption_key.
    tokenizer: one of TOKENIZERS, with caption_key.

  Returns:
    An `ImageDataset`.

  Raises:
    DatasetError: the dataset is unknown, missing or corrupt (one line, within a second
      for tfds; a folder's open reads every image header), or it has no text feature
      caption_key (folders have none).
    ValueError: the batch size does not divide among the hosts; with caption_key, an
      unknown tokenizer or max_len < 2.
  """
  per_host = host_batch_size(global_batch_size, process_index, process_count)
  if caption_key:
    tokenize([''], max_len=max_len, tokenizer=tokenizer)  # fails fast on bad options
  if name.startswith(FOLDER_PREFIX):
    if caption_key:
      raise DatasetError(f'image folders have no captions: caption_key {caption_key!r} needs a '
                         "tfds dataset with a text feature, e.g. 'digit_pairs'")
    source, num_channels, num_classes = open_folder(name[len(FOLDER_PREFIX):], split)
  else:
    source, info = open_source(name, split, data_dir=data_dir, download=download)
    features = info.features
    if caption_key:
      _check_caption_key(features, caption_key, name)
    num_channels = features['image'].shape[-1]
    label = features['label'] if 'label' in features else None  # noqa: SIM401 (no .get)
    num_classes = label.num_classes if isinstance(label, tfds.features.ClassLabel) else 0
  crop = _CENTRAL_CROP.get(name.split('/')[0].split(':')[0])

  # grain reseeds its shuffle with seed + epoch: hash the seed so that run seeds 0 and 1 do
  # not see the same permutations one epoch apart. Two 32-bit words: order and noise.
  shuffle_seed, noise_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(2))
  examples = grain.MapDataset.source(source).map(
      functools.partial(preprocess, image_size=image_size, crop=crop, caption_key=caption_key))
  train = (
      examples.shuffle(seed=shuffle_seed)
      .repeat()  # index g of the stream is example g % n of epoch g // n's permutation
      .random_map(  # the generator of position g is keyed by (noise_seed, g)
          functools.partial(augment, random_flip=random_flip,
                            uniform_dequantization=uniform_dequantization, levels=levels),
          seed=noise_seed))
  if caption_key:  # after augment's choice of one caption
    tokens = functools.partial(tokenize_caption, max_len=max_len, tokenizer=tokenizer)
    train, examples = train.map(tokens), examples.map(tokens)
  train = (
      train.map(functools.partial(center, centered=centered))
      .batch(per_host)
      # Host batches k * P + p, i.e. host p's slice of global batch k, are this host's k-th.
      .slice(slice(process_index, None, process_count)))
  return ImageDataset(
      num_examples=len(source),
      num_channels=num_channels,
      num_classes=num_classes,
      image_size=image_size,
      global_batch_size=global_batch_size,
      host_batch_size=per_host,
      process_index=process_index,
      process_count=process_count,
      max_len=max_len if caption_key else 0,
      tokenizer=tokenizer if caption_key else '',
      _train=train,
      _eval=examples.map(functools.partial(center, centered=centered)),
  )
