"""A folder of the user's own PNG/JPEG images as a dataset: one subfolder per class, a
fixed train/test split, every header checked when it opens."""

import os
from typing import Any

import numpy as np
from PIL import Image

from data.common import DatasetError, PathLike, fixed_split, one_line
from data.transforms import to_uint8_image

FOLDER_PREFIX = 'folder:'  # data.dataset='folder:/path/to/images'
FOLDER_EXTENSIONS = ('.png', '.jpg', '.jpeg')  # compared in lower case
FOLDER_SPLIT_SEED = 0
FOLDER_TEST_PERCENT = 10  # of a folder's images (at least one) form its test split
# PIL modes read from folders: RGBA, palette, 16-bit, CMYK, ... would need a choice (of
# background, palette, scaling) that the user makes better by converting the files.
_FOLDER_CHANNELS = {'L': 1, 'RGB': 3}


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
  train, test = fixed_split(num_examples, num_test, FOLDER_SPLIT_SEED)
  return np.sort(train), np.sort(test)


def _visible_entries(path: str) -> list[os.DirEntry[str]]:
  """A directory's entries in name order, less hidden ones (.DS_Store, .ipynb_checkpoints)."""
  try:
    with os.scandir(path) as entries:
      return sorted((e for e in entries if not e.name.startswith('.')), key=lambda e: e.name)
  except OSError as e:
    raise DatasetError(f'cannot list {path}: {one_line(e)}') from e


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
      raise DatasetError(f'cannot read image {path}: {one_line(e)}') from e
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
      raise DatasetError(f'cannot read image {path}: {one_line(e)}') from e
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
