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
horizontal flip; uniform dequantisation `(x * 255 + U[0, 1)) / 256`; then `2 x - 1` if
`centered`.

`'digits'` is scikit-learn's 8x8 handwritten digits, built offline into the data directory
on first use as the tfds dataset `scorelab_digits` (see `Digits`); `'folder:/path'` is a
folder of the user's own PNG/JPEG images, one subfolder per class (see `open_folder`); every
other name is a tfds builder name (`cifar10`, `mnist`, `celeb_a`, `lsun/bedroom`, ...) that
must already be prepared in array_record format, unless `download=True`.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import math
import os
from collections.abc import Callable, Iterator
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
    # Imported here: it takes two seconds (scipy) and only a first build needs it.
    import sklearn.datasets  # pylint: disable=g-import-not-at-top

    digits = sklearn.datasets.load_digits()
    train, test = digits_split(len(digits.target))
    return {
        'train': self._generate_examples(digits.images, digits.target, train),
        'test': self._generate_examples(digits.images, digits.target, test),
    }

  def _generate_examples(
      self, images: np.ndarray, labels: np.ndarray, indices: np.ndarray
  ) -> Iterator[tuple[int, Example]]:
    pixels = digits_to_uint8(images)  # [N, 8, 8]
    for i in indices:
      yield int(i), {'image': _png(pixels[i]), 'label': int(labels[i])}


def prepare_digits(data_dir: PathLike) -> None:
  """Builds the digits into `data_dir` in array_record format; a no-op when already built.

  Raises:
    DatasetError: the build failed.
  """
  data_dir = os.fspath(data_dir)
  try:
    builder = Digits(data_dir=data_dir, file_format='array_record')
    if builder.is_prepared():
      return
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  except Exception as e:
    # Another host sharing data_dir may have won the race to the final rename.
    if not Digits(data_dir=data_dir).is_prepared():
      raise DatasetError(f'could not build the digits in {data_dir}: {_one_line(e)}') from e


# name -> (tfds name, function that builds it offline into a data_dir)
BUNDLED: dict[str, tuple[str, Callable[[PathLike], None]]] = {
    'digits': (DIGITS_TFDS_NAME, prepare_digits),
}


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


def preprocess(record: dict[str, Any], *, image_size: int, crop: int | None) -> Example:
  """Decodes a tfds record: image float32 [image_size, image_size, C] in [0, 1], label int32."""
  image = to_uint8_image(record['image']).astype(np.float32) / 255
  label = record.get('label', 0)  # unlabelled datasets get the null class 0 == num_classes
  return {'image': resize(image, image_size=image_size, crop=crop),
          'label': np.asarray(label, np.int32)}


def augment(
    example: Example, rng: np.random.Generator, *, random_flip: bool,
    uniform_dequantization: bool,
) -> Example:
  """Random horizontal flip, then uniform dequantisation (x * 255 + U[0, 1)) / 256."""
  image = example['image']  # [H, W, C] in [0, 1]
  # Draw the coin whatever random_flip, so that the noise is the same with or without flips.
  flip = rng.random() < 0.5
  if random_flip and flip:
    image = image[:, ::-1]
  if uniform_dequantization:
    image = (image * 255 + rng.random(image.shape, dtype=np.float32)) / 256
  return {**example, 'image': image}


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
  """

  num_examples: int
  num_channels: int
  num_classes: int
  image_size: int
  global_batch_size: int
  host_batch_size: int
  process_index: int
  process_count: int
  _train: grain.MapDataset = dataclasses.field(repr=False)  # host batches, by step
  _eval: grain.MapDataset = dataclasses.field(repr=False)  # examples, in order, no noise

  def batch(self, step: int) -> Example:
    """The training batch of `step` for this host.

    Returns:
      image: float32 [host_batch_size, image_size, image_size, num_channels].
      label: int32 [host_batch_size].
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
      image, label as in `batch`, and mask: bool [batch_size // process_count], False on
      padding (whose image and label are zeros).
    """
    per_host = host_batch_size(batch_size, self.process_index, self.process_count)
    num_batches = math.ceil(self.num_examples / batch_size)
    padding = {
        'image': np.zeros((self.image_size, self.image_size, self.num_channels), np.float32),
        'label': np.zeros((), np.int32),
        'mask': np.False_,
    }

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
    seed: int,
    process_index: int = 0,
    process_count: int = 1,
    download: bool = False,
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
    uniform_dequantization: add U[0, 1) / 256 noise to training images.
    global_batch_size: examples per training step over all hosts.
    seed: determines the order of examples and the augmentation noise.
    process_index: this host, in [0, process_count).
    process_count: the number of hosts.
    download: let tfds download a missing dataset (needs internet and TensorFlow).

  Returns:
    An `ImageDataset`.

  Raises:
    DatasetError: the dataset is unknown, missing or corrupt (one line, within a second
      for tfds; a folder's open reads every image header).
    ValueError: the batch size does not divide among the hosts.
  """
  per_host = host_batch_size(global_batch_size, process_index, process_count)
  if name.startswith(FOLDER_PREFIX):
    source, num_channels, num_classes = open_folder(name[len(FOLDER_PREFIX):], split)
  else:
    source, info = open_source(name, split, data_dir=data_dir, download=download)
    features = info.features
    num_channels = features['image'].shape[-1]
    label = features['label'] if 'label' in features else None  # noqa: SIM401 (no .get)
    num_classes = label.num_classes if isinstance(label, tfds.features.ClassLabel) else 0
  crop = _CENTRAL_CROP.get(name.split('/')[0].split(':')[0])

  # grain reseeds its shuffle with seed + epoch: hash the seed so that run seeds 0 and 1 do
  # not see the same permutations one epoch apart. Two 32-bit words: order and noise.
  shuffle_seed, noise_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(2))
  examples = grain.MapDataset.source(source).map(
      functools.partial(preprocess, image_size=image_size, crop=crop))
  train = (
      examples.shuffle(seed=shuffle_seed)
      .repeat()  # index g of the stream is example g % n of epoch g // n's permutation
      .random_map(  # the generator of position g is keyed by (noise_seed, g)
          functools.partial(augment, random_flip=random_flip,
                            uniform_dequantization=uniform_dequantization),
          seed=noise_seed)
      .map(functools.partial(center, centered=centered))
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
      _train=train,
      _eval=examples.map(functools.partial(center, centered=centered)),
  )
