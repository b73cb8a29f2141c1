"""tfds datasets opened for random access (`tfds.data_source`, no TensorFlow), failing fast
and in one line: missing, unprepared, in a format without random access, corrupt."""

import os
from typing import Any

import tensorflow_datasets as tfds

from data.bundled import BUNDLED
from data.common import DatasetError, PathLike, one_line

_ARRAY_FORMATS = ('array_record', 'parquet')  # the formats tfds.data_source can read


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
          f'cannot read record {index} of {self._where} ({one_line(e)}): the files are '
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
    raise DatasetError(f'cannot open dataset {name!r} in {data_dir}: {one_line(e)}') from e

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
          f'downloading {tfds_name!r} into {data_dir} failed: {one_line(e)}') from e
  else:
    raise DatasetError(_missing_message(tfds_name, data_dir))

  where = f'{tfds_name}[{split}] in {builder.data_dir}'
  try:
    source = tfds.data_source(tfds_name, split=split, data_dir=data_dir, download=False)
  except Exception as e:  # unknown split names, missing shards
    raise DatasetError(f'cannot open {where}: {one_line(e)}') from e
  source = _CheckedSource(source, where)
  if not len(source):
    raise DatasetError(f'{where} is empty')
  if 'image' not in builder.info.features:
    raise DatasetError(f'{where} has no image feature')
  # Reading both ends touches the first chunk and the footer, where truncation shows.
  for index in (0, len(source) - 1):
    source[index]
  return source, builder.info


def _feature_leaves(feature: Any, path: str = '') -> list[tuple[str, Any]]:
  """(path, feature) of every leaf of a tfds feature, with paths as records nest them."""
  while isinstance(feature, tfds.features.Sequence):  # a Sequence of dicts decodes to a dict
    feature = feature.feature
  if not isinstance(feature, tfds.features.FeaturesDict):
    return [(path, feature)]
  return [leaf for name, inner in feature.items()
          for leaf in _feature_leaves(inner, f'{path}/{name}' if path else name)]


def check_caption_key(features: tfds.features.FeaturesDict, caption_key: str,
                       name: str) -> None:
  """Raises DatasetError unless `caption_key` names a Text feature, naming those there are."""
  leaves = dict(_feature_leaves(features))
  if not isinstance(leaves.get(caption_key), tfds.features.Text):
    there = ', '.join(f'{path} ({type(f).__name__})' for path, f in sorted(leaves.items()))
    raise DatasetError(f'dataset {name!r} has no text feature {caption_key!r} to take captions '
                       f'from (caption_key); its features: {there}')
