"""MNIST pairs: built from the mnist of the data directory (here a stand-in of 28x28 digits:
no test reads real MNIST), two digits of the same split side by side whose caption names
them, batched at 28x56; and a missing mnist said in one line."""

import collections

import numpy as np
import pytest
import sklearn.datasets
import tensorflow_datasets as tfds
from PIL import Image

from data import bundled, pipeline
from data.common import DatasetError


def _stand_in(split):
  """scikit-learn's digits enlarged to 28x28 uint8, as mnist_split returns: the first 300
  for 'train', the next 100 for 'test'."""
  digits = sklearn.datasets.load_digits()
  part = slice(0, 300) if split == 'train' else slice(300, 400)
  images = np.stack([np.asarray(Image.fromarray(image).resize((28, 28)))
                     for image in bundled.digits_to_uint8(digits.images[part])])
  return images, digits.target[part]


@pytest.fixture(scope='module')
def pairs_dir(tmp_path_factory):
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(bundled, 'mnist_split', lambda data_dir, split: _stand_in(split))
    patch.setattr(bundled, 'MNIST_PAIRS_NUM_TRAIN', 200)
    patch.setattr(bundled, 'MNIST_PAIRS_NUM_TEST', 100)
    data_dir = tmp_path_factory.mktemp('mnist_pairs')
    bundled.prepare_mnist_pairs(data_dir)
  return data_dir


def test_pairs_hold_two_digits_of_the_split_that_their_caption_names(pairs_dir):
  for split, size in (('train', 200), ('test', 100)):
    source = tfds.data_source(bundled.MNIST_PAIRS_TFDS_NAME, split=split, data_dir=pairs_dir,
                              download=False)
    assert len(source) == size
    images, labels = _stand_in(split)
    by_class = collections.defaultdict(set)
    for image, label in zip(images, labels):
      by_class[int(label)].add(image.tobytes())
    for record in source.__getitems__(range(len(source))):
      image, left, right = record['image'][..., 0], int(record['left']), int(record['right'])
      assert image.shape == bundled.MNIST_PAIRS_SHAPE and record['label'] == 10 * left + right
      assert image[:, :28].tobytes() in by_class[left]
      assert image[:, 28:].tobytes() in by_class[right]
      caption = record['caption'].decode()
      held_out = bundled.pair_caption(left, right, bundled.held_out_template(left, right))
      assert (caption == held_out) == (split == 'test'), caption
      assert caption in {bundled.pair_caption(left, right, k)
                         for k in range(len(bundled.PAIR_TEMPLATES))}


def test_the_pipeline_batches_the_pairs_at_28x56_with_their_captions(pairs_dir):
  ds = pipeline.get_dataset('mnist_pairs', 'test', data_dir=pairs_dir, image_size=(28, 56),
                            centered=False, random_flip=False, uniform_dequantization=False,
                            global_batch_size=10, seed=0, caption_key='caption')
  batch = ds.batch(0)
  assert batch['image'].shape == (10, 28, 56, 1) and batch['tokens'].shape == (10, 32)
  assert ds.num_classes == 100


def test_without_mnist_in_the_data_directory_one_line_says_how_to_prepare_it(tmp_path):
  with pytest.raises(DatasetError) as raised:
    bundled.prepare_mnist_pairs(tmp_path)
  message = str(raised.value)
  assert '\n' not in message
  assert "could not build the MNIST pairs (from tfds' mnist in the same data directory)" in message
  assert "dataset 'mnist' is not prepared in" in message
