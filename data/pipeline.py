"""The input pipeline: datasets read through grain as pure functions of the step.

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
on first use as the tfds dataset `scorelab_digits` (`data.bundled.Digits`); `'digit_pairs'`
is two of them side by side on a 16x16 canvas with a caption such as 'three, then seven',
built the same way (`data.bundled.DigitPairs`); `'folder:/path'` is a folder of the user's
own PNG/JPEG images, one subfolder per class (`data.folders.open_folder`); every other name
is a tfds builder name (`cifar10`, `mnist`, `celeb_a`, `lsun/bedroom`, `coco_captions`,
...) that must already be prepared in array_record format, unless `download=True`
(`data.sources.open_source`).

With `caption_key`, examples also carry a caption as byte-level tokens (`data.text`), for
text-conditional models; a training example of an image with several captions takes one
drawn with its own keyed generator, so captions are as deterministic as the noise.
"""

import dataclasses
import functools
import math
from collections.abc import Iterator

import grain
import numpy as np
import tensorflow_datasets as tfds

from data import text
from data.common import DatasetError, Example, PathLike
from data.folders import FOLDER_PREFIX, open_folder
from data.sources import check_caption_key, open_source
from data.text import tokenize
from data.transforms import (augment, image_hw, preprocess, record_captions, to_model_space,
                             tokenize_caption)

# Song et al. crop CelebA's 178x218 portraits to the central 140x140 before resizing.
_CENTRAL_CROP = {'celeb_a': 140}


def host_batch_size(global_batch_size: int, process_index: int, process_count: int) -> int:
  """The per-host share of a global batch; raises ValueError unless it divides evenly."""
  if not 0 <= process_index < process_count:
    raise ValueError(f'process_index {process_index} not in [0, {process_count})')
  if global_batch_size <= 0 or global_batch_size % process_count:
    raise ValueError(
        f'batch size {global_batch_size} must be positive and divisible by the '
        f'{process_count} processes')
  return global_batch_size // process_count


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
    image_size: (H, W) of the images.
    global_batch_size: examples per training step over all hosts.
    host_batch_size: this host's share, global_batch_size // process_count.
    process_index: this host.
    process_count: the number of hosts.
    max_len: tokens per caption (see `tokenize`); 0 when examples carry no captions.
    tokenizer: the tokenizer of the captions (data.text); None without captions.
  """

  num_examples: int
  num_channels: int
  num_classes: int
  image_size: tuple[int, int]
  global_batch_size: int
  host_batch_size: int
  process_index: int
  process_count: int
  max_len: int
  tokenizer: text.Tokenizer | None
  _train: grain.MapDataset = dataclasses.field(repr=False)  # host batches, by step
  _eval: grain.MapDataset = dataclasses.field(repr=False)  # examples, in order, no noise

  def batch(self, step: int) -> Example:
    """The training batch of `step` for this host.

    Returns:
      image: float32 [host_batch_size, H, W, num_channels].
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
        'image': np.zeros(self.image_size + (self.num_channels,), np.float32),
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


def split_captions(name: str, split: str, *, data_dir: PathLike | None, caption_key: str,
                   download: bool = False) -> list[str]:
  """Every caption of every record of a tfds split, in order: what a tokenizer is trained
  on (data.text).

  Raises:
    DatasetError: as `get_dataset`: a missing or corrupt dataset, a folder (no captions),
      or no text feature caption_key.
  """
  if name.startswith(FOLDER_PREFIX):
    raise _folder_captions(caption_key)
  source, info = open_source(name, split, data_dir=data_dir, download=download)
  check_caption_key(info.features, caption_key, name)
  return [text.as_str(c) for i in range(len(source))
          for c in record_captions(source[i], caption_key)]


def _folder_captions(caption_key: str) -> DatasetError:
  return DatasetError(f'image folders have no captions: caption_key {caption_key!r} needs a '
                      "tfds dataset with a text feature, e.g. 'digit_pairs'")


def get_dataset(
    name: str,
    split: str,
    *,
    data_dir: PathLike | None,
    image_size: int | tuple[int, int],
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
    tokenizer: text.Tokenizer = text.BYTES,
) -> ImageDataset:
  """Opens a split as deterministic per-step training batches and ordered eval epochs.

  Args:
    name: 'digits', a tfds builder name ('cifar10', 'mnist', 'celeb_a', 'lsun/bedroom') or
      'folder:/path/to/images' (see `open_folder`).
    split: a tfds split name, e.g. 'train' or 'test'; a folder has only these two.
    data_dir: the tfds data directory (the digits are built there on first use); None
      is tfds' default. Folders do not use it.
    image_size: the side of the square images returned, or their (height, width).
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
    tokenizer: the captions' tokenizer (data.text), with caption_key.

  Returns:
    An `ImageDataset`.

  Raises:
    DatasetError: the dataset is unknown, missing or corrupt (one line, within a second
      for tfds; a folder's open reads every image header), or it has no text feature
      caption_key (folders have none).
    ValueError: the batch size does not divide among the hosts; with caption_key,
      max_len < 2.
  """
  per_host = host_batch_size(global_batch_size, process_index, process_count)
  image_size = image_hw(image_size)
  if caption_key:
    tokenize([''], max_len=max_len, tokenizer=tokenizer)  # fails fast on bad options
  if name.startswith(FOLDER_PREFIX):
    if caption_key:
      raise _folder_captions(caption_key)
    source, num_channels, num_classes = open_folder(name[len(FOLDER_PREFIX):], split)
  else:
    source, info = open_source(name, split, data_dir=data_dir, download=download)
    features = info.features
    if caption_key:
      check_caption_key(features, caption_key, name)
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
      train.map(functools.partial(to_model_space, centered=centered))
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
      tokenizer=tokenizer if caption_key else None,
      _train=train,
      _eval=examples.map(functools.partial(to_model_space, centered=centered)),
  )
