import collections
import shutil
import socket
import time

import jax
import numpy as np
import pytest
import sklearn.datasets
import tensorflow_datasets as tfds
from PIL import Image

from data import bundled, common, folders, pipeline, transforms


def _refuse_network(*args, **kwargs):
  raise OSError('the network is off in this test')


@pytest.fixture(scope='session')
def digits_dir(tmp_path_factory):
  """A data_dir with the digits built once, with the network off to prove it is offline."""
  data_dir = tmp_path_factory.mktemp('tfds')
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(socket.socket, 'connect', _refuse_network)
    patch.setattr(socket, 'getaddrinfo', _refuse_network)
    bundled.prepare_digits(data_dir)
  return data_dir


@pytest.fixture(scope='session')
def sklearn_digits():
  digits = sklearn.datasets.load_digits()
  return bundled.digits_to_uint8(digits.images)[..., None], digits.target  # [N, 8, 8, 1]


def _records(data_dir, split):
  source = tfds.data_source(bundled.DIGITS_TFDS_NAME, split=split, data_dir=data_dir,
                            download=False)
  return [source[i] for i in range(len(source))]


def _key(image_u8, label):
  return image_u8.tobytes() + bytes([int(label)])


def _open(data_dir, split='test', *, name='digits', **overrides):
  kwargs = {'data_dir': data_dir, 'image_size': 8, 'centered': False, 'random_flip': False,
            'uniform_dequantization': False, 'global_batch_size': 60, 'seed': 0}
  return pipeline.get_dataset(name, split, **{**kwargs, **overrides})


def _ids(image, label):
  """Identifies digits by their pixels: the 1797 (image, label) pairs are all distinct."""
  pixels = np.round(np.asarray(image) * 255).astype(np.uint8)  # [B, 8, 8, 1]
  return [_key(p, l) for p, l in zip(pixels, label)]


def test_digits_builder_holds_every_image_with_its_label_in_the_fixed_split(
    digits_dir, sklearn_digits):
  images, labels = sklearn_digits
  assert len({_key(i, l) for i, l in zip(images, labels)}) == 1797
  for split, indices in zip(['train', 'test'], bundled.digits_split()):
    records = _records(digits_dir, split)
    assert len(records) == len(indices)
    assert all(r['image'].dtype == np.uint8 and r['image'].shape == (8, 8, 1) for r in records)
    got = collections.Counter(_key(r['image'], r['label']) for r in records)
    assert got == collections.Counter(_key(images[i], labels[i]) for i in indices)
  assert images.min() == 0 and images.max() == 255


def test_digits_split_is_fixed_and_a_partition():
  train, test = bundled.digits_split()
  assert (len(train), len(test)) == (1497, 300)
  np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(1797))
  # Golden values: a change of split would silently change every reported test metric.
  assert test[:8].tolist() == [1081, 1707, 927, 713, 262, 182, 303, 895]
  assert train[:5].tolist() == [1620, 1256, 393, 268, 546]


def test_rebuilding_gives_the_same_records_in_the_same_order(digits_dir, tmp_path):
  bundled.prepare_digits(tmp_path)
  for split in ['train', 'test']:
    before, after = _records(digits_dir, split), _records(tmp_path, split)
    assert [_key(r['image'], r['label']) for r in before] == [
        _key(r['image'], r['label']) for r in after]


def test_prepare_digits_is_idempotent_and_fast(digits_dir):
  files = sorted((digits_dir / bundled.DIGITS_TFDS_NAME).rglob('*'))
  mtimes = [f.stat().st_mtime_ns for f in files]
  start = time.perf_counter()
  bundled.prepare_digits(digits_dir)
  assert time.perf_counter() - start < 1.0
  assert sorted((digits_dir / bundled.DIGITS_TFDS_NAME).rglob('*')) == files
  assert [f.stat().st_mtime_ns for f in files] == mtimes


def test_dataset_metadata(digits_dir):
  ds = _open(digits_dir, 'train', global_batch_size=32)
  assert (ds.num_examples, ds.num_channels, ds.num_classes) == (1497, 1, 10)
  assert ds.host_batch_size == 32


AUGMENTED = {'random_flip': True, 'uniform_dequantization': True, 'centered': True}


def test_batch_is_a_pure_function_of_seed_and_step(digits_dir):
  a, b = _open(digits_dir, seed=3, **AUGMENTED), _open(digits_dir, seed=3, **AUGMENTED)
  for step in [0, 7, 12]:  # 7 and 12 are in later epochs (5 steps per epoch)
    x, y = a.batch(step), b.batch(step)
    assert x['image'].shape == (60, 8, 8, 1) and x['image'].dtype == np.float32
    assert x['label'].shape == (60,) and x['label'].dtype == np.int32
    np.testing.assert_array_equal(x['image'], y['image'])
    np.testing.assert_array_equal(x['label'], y['label'])
  assert not np.array_equal(a.batch(0)['image'], a.batch(1)['image'])
  other_seed = _open(digits_dir, seed=4, **AUGMENTED)
  assert not np.array_equal(a.batch(0)['label'], other_seed.batch(0)['label'])


def test_resumed_iteration_matches_batch(digits_dir):
  ds = _open(digits_dir, seed=1, **AUGMENTED)
  batches = ds.batches(start_step=9)
  for step in range(9, 13):
    got, expected = next(batches), ds.batch(step)
    np.testing.assert_array_equal(got['image'], expected['image'])
    np.testing.assert_array_equal(got['label'], expected['label'])


def test_each_epoch_is_a_fresh_permutation_of_the_split(digits_dir):
  ds = _open(digits_dir, 'test', global_batch_size=60)  # 300 / 60 = 5 steps an epoch
  (split,) = ds.epoch(300)
  everything = collections.Counter(_ids(split['image'], split['label']))
  orders = []
  for epoch in range(3):
    steps = [ds.batch(5 * epoch + k) for k in range(5)]
    ids = [i for s in steps for i in _ids(s['image'], s['label'])]
    assert collections.Counter(ids) == everything  # each example exactly once
    orders.append(ids)
  assert orders[0] != orders[1] != orders[2]


def test_seeds_do_not_share_permutations_a_few_epochs_apart(digits_dir):
  # grain reseeds shuffles with seed + epoch; hashing the run seed keeps seed 1's first
  # epoch from being seed 0's second.
  first = {}
  for seed in [0, 1]:
    ds = _open(digits_dir, 'test', global_batch_size=300, seed=seed)
    first[seed] = [_ids(**ds.batch(e)) for e in range(3)]
  assert first[1][0] not in first[0]


@pytest.mark.parametrize('process_count', [2, 3])
def test_hosts_take_contiguous_slices_of_the_global_batch(digits_dir, process_count):
  whole = _open(digits_dir, 'train', global_batch_size=48, **AUGMENTED)
  for step in [0, 40]:  # 40 * 48 > 1497: a later epoch
    expected = whole.batch(step)
    hosts = [
        _open(digits_dir, 'train', global_batch_size=48, process_index=p,
              process_count=process_count, **AUGMENTED).batch(step)
        for p in range(process_count)
    ]
    assert all(h['image'].shape[0] == 48 // process_count for h in hosts)
    # Equal bit for bit: flips and noise depend on the stream position, not the host.
    np.testing.assert_array_equal(np.concatenate([h['image'] for h in hosts]),
                                  expected['image'])
    np.testing.assert_array_equal(np.concatenate([h['label'] for h in hosts]),
                                  expected['label'])


def test_batch_size_must_divide_among_hosts(digits_dir):
  with pytest.raises(ValueError, match='divisible'):
    _open(digits_dir, global_batch_size=10, process_count=3)
  with pytest.raises(ValueError, match='process_index'):
    _open(digits_dir, global_batch_size=10, process_index=2, process_count=2)


def test_centred_and_uncentred_ranges(digits_dir):
  plain = _open(digits_dir, centered=False).batch(2)['image']
  centred = _open(digits_dir, centered=True).batch(2)['image']
  assert plain.min() == 0 and plain.max() == 1
  assert centred.min() == -1 and centred.max() == 1
  np.testing.assert_allclose(centred, 2 * plain - 1, atol=1e-6)
  # Undequantised pixels sit on the 8-bit grid.
  np.testing.assert_allclose(plain * 255, np.round(plain * 255), atol=1e-4)


def test_flips_mirror_some_images_and_keep_the_others(digits_dir):
  plain = _open(digits_dir, 'train').batch(4)['image']
  flipped = _open(digits_dir, 'train', random_flip=True).batch(4)['image']
  mirrored = np.all(flipped == plain[:, :, ::-1], axis=(1, 2, 3))
  kept = np.all(flipped == plain, axis=(1, 2, 3))
  assert np.all(mirrored | kept)
  assert 10 < np.sum(mirrored & ~kept) < 50 and np.sum(kept & ~mirrored) > 10


def test_dequantisation_adds_uniform_noise_below_one_level(digits_dir):
  plain = _open(digits_dir, 'train', global_batch_size=120).batch(5)['image']
  noisy = _open(digits_dir, 'train', global_batch_size=120,
                uniform_dequantization=True).batch(5)['image']
  assert noisy.min() >= 0 and noisy.max() <= 1
  noise = 256 * noisy - 255 * plain  # (255 x + u) / 256 = y  <=>  u = 256 y - 255 x
  assert noise.min() >= -1e-4 and noise.max() < 1 + 1e-4
  assert abs(noise.mean() - 0.5) < 0.02 and abs(noise.var() - 1 / 12) < 0.01
  # The noise is independent of whether flips are on: the coin is drawn first either way.
  both = _open(digits_dir, 'train', global_batch_size=120, uniform_dequantization=True,
               random_flip=True).batch(5)['image']
  kept = np.all(np.round(both * 255) == np.round(noisy * 255), axis=(1, 2, 3))
  assert kept.sum() > 20
  np.testing.assert_array_equal(both[kept], noisy[kept])


@pytest.mark.parametrize('process_count', [1, 2])
def test_epoch_covers_the_split_once_in_order_with_a_mask(digits_dir, sklearn_digits,
                                                          process_count):
  hosts = [
      list(_open(digits_dir, 'test', process_index=p, process_count=process_count,
                 **AUGMENTED).epoch(64))
      for p in range(process_count)
  ]
  assert [len(h) for h in hosts] == [5] * process_count  # ceil(300 / 64)
  steps = [{k: np.concatenate([h[s][k] for h in hosts]) for k in hosts[0][s]}
           for s in range(5)]
  masks = np.concatenate([s['mask'] for s in steps])
  assert masks.dtype == bool and masks.shape == (320,)
  np.testing.assert_array_equal(masks, np.arange(320) < 300)  # padding at the very end
  images = np.concatenate([s['image'] for s in steps])[masks]
  labels = np.concatenate([s['label'] for s in steps])[masks]
  # No flips or noise: exactly the stored pixels, centred, each example once.
  ids = _ids((images + 1) / 2, labels)
  pixels, targets = sklearn_digits
  test = bundled.digits_split()[1]
  assert collections.Counter(ids) == collections.Counter(
      _key(pixels[i], targets[i]) for i in test)
  # In the data source's order.
  assert ids == [_key(r['image'], r['label']) for r in _records(digits_dir, 'test')]
  padding = np.concatenate([s['image'] for s in steps])[~masks]
  assert np.all(padding == 0)


def test_resize_is_tf_antialiased_bilinear():
  # jax.image.resize reproduces tf.image.resize(antialias=True), which score_sde uses.
  rng = np.random.default_rng(0)
  for size, new in [(32, 16), (32, 8), (28, 32), (64, 24)]:
    image = rng.random((size, size, 3), dtype=np.float32)
    expected = jax.image.resize(image, (new, new, 3), method='linear', antialias=True)
    got = transforms.resize(image, image_size=new)
    np.testing.assert_allclose(got, expected, atol=1e-5)
  image = rng.random((8, 8, 1), dtype=np.float32)
  np.testing.assert_array_equal(transforms.resize(image, image_size=8), image)


def test_non_square_and_celeba_images_are_centre_cropped():
  rng = np.random.default_rng(1)
  celeb = rng.random((218, 178, 3), dtype=np.float32)
  expected = jax.image.resize(celeb[39:179, 19:159], (64, 64, 3), 'linear', antialias=True)
  np.testing.assert_allclose(transforms.resize(celeb, image_size=64, crop=140), expected,
                             atol=1e-5)
  wide = rng.random((20, 30, 1), dtype=np.float32)
  np.testing.assert_array_equal(transforms.resize(wide, image_size=20), wide[:, 5:25])


def test_images_of_another_aspect_ratio_are_cropped_to_the_outputs_then_resized():
  rng = np.random.default_rng(2)
  square = rng.random((20, 20, 1), dtype=np.float32)
  # To (height, width) = (5, 10): the central 10x20 band, then halved.
  expected = jax.image.resize(square[5:15], (5, 10, 1), 'linear', antialias=True)
  np.testing.assert_allclose(transforms.resize(square, image_size=(5, 10)), expected, atol=1e-5)
  np.testing.assert_array_equal(transforms.resize(square, image_size=(20, 10)), square[:, 5:15])
  wide = rng.random((10, 20, 3), dtype=np.float32)
  np.testing.assert_array_equal(transforms.resize(wide, image_size=(10, 20)), wide)
  # A crop is the central region's height, its width by the output's aspect ratio.
  np.testing.assert_array_equal(transforms.resize(wide, image_size=(4, 8), crop=4),
                                wide[3:7, 6:14])
  assert transforms.image_hw(28) == (28, 28) and transforms.image_hw([28, 56]) == (28, 56)
  for bad in (0, (28,), (28, 0), '28', (28.0, 56), True):
    with pytest.raises(ValueError, match='an image size'):
      transforms.image_hw(bad)


def test_a_dataset_opened_at_another_aspect_ratio_batches_it(digits_dir):
  ds = _open(digits_dir, 'train', image_size=(4, 8))
  assert ds.image_size == (4, 8) and ds.batch(0)['image'].shape[1:] == (4, 8, 1)
  part = next(ds.epoch(7))
  assert part['image'].shape == (7, 4, 8, 1) and part['mask'].all()


def test_png_bytes_decode_like_arrays():
  image = np.arange(64, dtype=np.uint8).reshape(8, 8)
  decoded = transforms.to_uint8_image(bundled.png(image))
  np.testing.assert_array_equal(decoded, image[..., None])
  np.testing.assert_array_equal(transforms.to_uint8_image(image), image[..., None])


def _assert_fast_one_line_error(match, call):
  start = time.perf_counter()
  with pytest.raises(common.DatasetError, match=match) as error:
    call()
  assert time.perf_counter() - start < 5
  assert '\n' not in str(error.value)
  return str(error.value)


def test_missing_dataset_fails_fast_saying_how_to_get_it(tmp_path):
  message = _assert_fast_one_line_error('not prepared', lambda: pipeline.get_dataset(
      'cifar10', 'train', data_dir=tmp_path, image_size=32, centered=True,
      random_flip=True, uniform_dequantization=False, global_batch_size=8, seed=0))
  assert 'download_and_prepare' in message and '--config.data.download=True' in message
  assert not list(tmp_path.iterdir())  # and it wrote nothing


def test_unknown_dataset_and_split_fail_fast(digits_dir, tmp_path):
  _assert_fast_one_line_error('unknown dataset', lambda: _open(tmp_path, 'train', name='nope'))
  _assert_fast_one_line_error('cannot open', lambda: _open(digits_dir, 'validation'))


@pytest.mark.parametrize('size', [0, 1000, 200_000])
def test_corrupt_files_raise_a_one_line_error(digits_dir, tmp_path, size):
  shutil.copytree(digits_dir, tmp_path, dirs_exist_ok=True)
  (shard,) = (tmp_path / bundled.DIGITS_TFDS_NAME).rglob('*-train.array_record-*')
  with open(shard, 'r+b') as f:
    f.truncate(size)
  _assert_fast_one_line_error('corrupt', lambda: _open(tmp_path, 'train'))


def test_a_tfds_dataset_by_name_through_the_same_path(tmp_path):
  # mock_data replaces the records with random ones and download_and_prepare with a no-op
  # (hence download=True), without TensorFlow; the rest of the path is the real one.
  with tfds.testing.mock_data(num_examples=10):
    ds = pipeline.get_dataset(
        'cifar10', 'train', data_dir=tmp_path, image_size=16, centered=True,
        random_flip=True, uniform_dequantization=True, global_batch_size=4, seed=0,
        download=True)
    assert (ds.num_examples, ds.num_channels, ds.num_classes) == (10, 3, 10)
    batch = ds.batch(3)
    assert batch['image'].shape == (4, 16, 16, 3) and batch['label'].dtype == np.int32
    assert -1 <= batch['image'].min() and batch['image'].max() <= 1
    assert np.all((0 <= batch['label']) & (batch['label'] < 10))
    np.testing.assert_array_equal(batch['image'], ds.batch(3)['image'])
    masks = np.concatenate([b['mask'] for b in ds.epoch(4)])
    np.testing.assert_array_equal(masks, np.arange(12) < 10)


# ---------------------------------------------------------------------------------------
# Folders of the user's own images.

CLASSES = {'cat': 5, 'dog': 6, 'emu': 9}  # 20 images: 2 of them test
EXTENSIONS = ['.png', '.PNG', '.jpg', '.jpeg']


def _write(path, value, *, mode='L', size=(4, 4)):
  """A uniform image of gray level `value` (JPEG keeps a flat image to within a level)."""
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.new(mode, size, value if mode == 'L' else (value,) * len(mode)).save(path)
  return path


@pytest.fixture
def class_folder(tmp_path):
  """CLASSES as subfolders; image k (in class, then name order) has gray level 10 k + 5."""
  k = 0
  for name, count in CLASSES.items():
    for i in range(count):
      _write(tmp_path / name / f'{i:02d}{EXTENSIONS[k % 4]}', 10 * k + 5)
      k += 1
    (tmp_path / name / 'notes.txt').write_text('not an image')  # ignored, as are
  _write(tmp_path / 'cat' / 'deeper' / 'x.png', 255)  # deeper folders
  _write(tmp_path / '.thumbnails' / 'x.png', 255)  # and hidden ones
  return tmp_path


def _open_folder(path, split='train', **overrides):
  return _open(None, split, name=f'folder:{path}', **{'image_size': 4, **overrides})


def _folder_examples(ds):
  """(k, label) of every example of an ordered epoch of `class_folder`, in order."""
  (whole,) = ds.epoch(ds.num_examples)
  k = np.round((whole['image'].mean(axis=(1, 2, 3)) * 255 - 5) / 10).astype(int)
  return list(zip(k.tolist(), whole['label'].tolist()))


def test_folder_split_is_fixed_disjoint_and_covers_every_image():
  for n in [2, 9, 10, 20, 101]:
    train, test = folders.folder_split(n)
    assert len(test) == max(1, n // 10)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(n))
  # Golden values: the split must not change with numpy, the hosts or the run.
  assert folders.folder_split(20)[1].tolist() == [1, 18]


def test_folder_labels_come_from_subfolders_and_splits_partition_it(class_folder):
  labels = [label for label, count in enumerate(CLASSES.values()) for _ in range(count)]
  every = list(enumerate(labels))
  train, test = (_open_folder(class_folder, split) for split in ['train', 'test'])
  assert (train.num_examples, train.num_channels, train.num_classes) == (18, 1, 3)
  assert (test.num_examples, test.num_channels, test.num_classes) == (2, 1, 3)
  train_ids, test_ids = _folder_examples(train), _folder_examples(test)
  # In file order, each image once, the test images those folder_split holds out.
  _, held_out = folders.folder_split(len(every))
  assert test_ids == [every[k] for k in held_out]
  assert train_ids == [e for k, e in enumerate(every) if k not in held_out]


@pytest.mark.parametrize('mode', ['L', 'RGB'])
@pytest.mark.parametrize('centered', [False, True])
def test_folder_batches_have_the_shape_range_and_determinism_of_tfds_ones(tmp_path, mode,
                                                                          centered):
  for k in range(10):  # a rising ramp of gray levels in each, 0 to 255
    ramp = np.linspace(0, 255, 36).reshape(6, 6).round().astype(np.uint8)
    image = np.stack([np.roll(ramp, k, axis=1)] * len(mode), -1).squeeze()
    Image.fromarray(image).save(tmp_path / f'{k}.png')
  options = {'centered': centered, 'global_batch_size': 6, 'image_size': 6}
  ds = _open_folder(tmp_path, **options)
  assert (ds.num_examples, ds.num_channels, ds.num_classes) == (9, len(mode), 0)
  batch = ds.batch(2)
  assert batch['image'].shape == (6, 6, 6, len(mode)) and batch['image'].dtype == np.float32
  assert batch['label'].dtype == np.int32 and np.all(batch['label'] == 0)
  low = -1 if centered else 0
  assert batch['image'].min() == low and batch['image'].max() == 1
  np.testing.assert_array_equal(batch['image'], _open_folder(tmp_path, **options).batch(2)['image'])
  other_seed = _open_folder(tmp_path, seed=1, **options).batch(2)['image']
  assert not np.array_equal(batch['image'], other_seed)
  hosts = [_open_folder(tmp_path, process_index=p, process_count=2, **options).batch(2)
           for p in range(2)]
  np.testing.assert_array_equal(np.concatenate([h['image'] for h in hosts]), batch['image'])


def test_folder_images_are_centre_cropped_and_resized_like_tfds_ones(tmp_path):
  rng = np.random.default_rng(0)
  pixels = rng.integers(0, 256, (2, 6, 12, 3), dtype=np.uint8)  # wide: [N, H, W, C]
  for k, image in enumerate(pixels):
    Image.fromarray(image).save(tmp_path / f'{k}.png')
  (held_out,) = folders.folder_split(2)[1]
  (got,) = _open_folder(tmp_path, 'test', image_size=3).epoch(1)
  expected = transforms.resize(pixels[held_out] / np.float32(255), image_size=3)
  np.testing.assert_allclose(got['image'][0], expected, atol=1e-6)
  np.testing.assert_allclose(expected, transforms.resize(
      pixels[held_out, :, 3:9] / np.float32(255), image_size=3), atol=1e-6)


def _no_folder(root):
  return root / 'missing', 'does not exist'


def _empty_folder(root):
  (root / 'readme.txt').write_text('no images here')
  return root, 'holds no'


def _corrupt_file(root):
  _write(root / 'fine.png', 0)
  (root / 'bad.jpg').write_bytes(b'not a jpeg at all')
  return root, 'cannot read image .*bad.jpg'


def _mixed_channels(root):
  _write(root / 'a.png', 0)
  _write(root / 'b.png', 0, mode='RGB')
  return root, 'mix channel counts.*a.png is L.*b.png is RGB'


def _rgba(root):
  _write(root / 'a.png', 0, mode='RGBA')
  _write(root / 'b.png', 0, mode='RGBA')
  return root, 'a.png has mode RGBA'


def _images_beside_classes(root):
  _write(root / 'a.png', 0)
  _write(root / 'cats' / 'b.png', 0)
  return root, r'both images \(a.png, ...\) and class subfolders \(cats'


def _empty_class(root):
  _write(root / 'cats' / 'a.png', 0)
  _write(root / 'cats' / 'b.png', 0)
  (root / 'dogs').mkdir()
  return root, 'class folder .*dogs holds no'


def _one_image(root):
  _write(root / 'a.png', 0)
  return root, 'needs at least 2'


@pytest.mark.parametrize('make', [_no_folder, _empty_folder, _corrupt_file, _mixed_channels,
                                  _rgba, _images_beside_classes, _empty_class, _one_image])
def test_bad_folders_raise_a_one_line_error_naming_the_folder_or_file(tmp_path, make):
  path, match = make(tmp_path)
  message = _assert_fast_one_line_error(match, lambda: _open_folder(path))
  assert str(tmp_path) in message


def test_unknown_folder_split_and_missing_path_fail_fast(class_folder):
  _assert_fast_one_line_error("'train' and 'test', not 'validation'",
                              lambda: _open_folder(class_folder, 'validation'))
  _assert_fast_one_line_error('needs a path', lambda: _open_folder(''))


def test_truncated_pixels_fail_when_read_naming_the_file(tmp_path):
  noise = np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)
  for k in range(10):
    Image.fromarray(noise).save(tmp_path / f'{k}.png')
  bad = tmp_path / f'{folders.folder_split(10)[0][0]}.png'  # a train image
  bad.write_bytes(bad.read_bytes()[:200])  # the header still reads
  ds = _open_folder(tmp_path, global_batch_size=9)
  with pytest.raises(common.DatasetError, match=f'cannot read image {bad}'):
    ds.batch(0)  # holds every train image
