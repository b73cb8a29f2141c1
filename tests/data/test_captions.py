"""Captions in the input pipeline: the byte tokenizer, the bundled digit pairs, caption_key."""

import collections
import pathlib
import time

import numpy as np
import pytest
import sklearn.datasets
import tensorflow_datasets as tfds
from PIL import Image

from data import bundled, common, pipeline, text, transforms
from data.text import EOT, PAD

NUM_TEMPLATES = len(bundled.PAIR_TEMPLATES)
# Every caption of the digit pairs -> (left, right, template): inverts pair_caption.
CAPTIONS = {bundled.pair_caption(left, right, t): (left, right, t)
            for t in range(NUM_TEMPLATES) for left in range(10) for right in range(10)}
AUGMENTED = {'random_flip': True, 'uniform_dequantization': True, 'centered': True}


@pytest.fixture(scope='module')
def pairs_dir(pairs_data_dir):
  """The session's digit pairs (tests/conftest.py), built once."""
  return pathlib.Path(pairs_data_dir)


def _read(data_dir, tfds_name, split):
  source = tfds.data_source(tfds_name, split=split, data_dir=data_dir, download=False)
  return source.__getitems__(range(len(source)))


@pytest.fixture(scope='module')
def pair_records(pairs_dir):
  """Both splits' records: image [N, 16, 16], caption (a list of str), left, right, label."""
  splits = {}
  for split in ['train', 'test']:
    records = _read(pairs_dir, bundled.DIGIT_PAIRS_TFDS_NAME, split)
    splits[split] = {
        'image': np.stack([r['image'][..., 0] for r in records]),
        'caption': [r['caption'].decode() for r in records],
        **{key: np.array([r[key] for r in records]) for key in ['left', 'right', 'label']},
    }
  return splits


@pytest.fixture(scope='module')
def digits_by_class():
  """split -> class -> the set of pixel bytes of that split's 8x8 digits of the class."""
  digits = sklearn.datasets.load_digits()
  pixels = bundled.digits_to_uint8(digits.images)
  by_class = {}
  for split, indices in zip(['train', 'test'], bundled.digits_split()):
    by_class[split] = collections.defaultdict(set)
    for i in indices:
      by_class[split][int(digits.target[i])].add(pixels[i].tobytes())
  return by_class


def _open(data_dir, split='train', *, name='digit_pairs', **overrides):
  kwargs = {'data_dir': data_dir, 'image_size': 16, 'centered': False, 'random_flip': False,
            'uniform_dequantization': False, 'global_batch_size': 64, 'seed': 0,
            'caption_key': 'caption'}
  return pipeline.get_dataset(name, split, **{**kwargs, **overrides})


def _assert_fast_one_line_error(error, match, call):
  start = time.perf_counter()
  with pytest.raises(error, match=match) as raised:
    call()
  assert time.perf_counter() - start < 5
  assert '\n' not in str(raised.value)
  return str(raised.value)


# ---------------------------------------------------------------------------------------
# The byte tokenizer.


def test_tokens_are_the_bytes_then_eot_then_padding_and_round_trip():
  captions = ['3 to the left of 7', 'a', 'x' * 31, 'seven after three']
  tokens, truncated = text.tokenize(captions, max_len=32)
  assert tokens.dtype == np.int32 and tokens.shape == (4, 32)
  assert tokens[0].tolist() == [ord(c) for c in captions[0]] + [EOT] + [PAD] * 13
  assert tokens[2].tolist() == [ord('x')] * 31 + [EOT]  # 31 bytes fit exactly
  eot = [row.tolist().index(EOT) for row in tokens]
  assert eot == [len(c) for c in captions]
  assert np.all(np.sum(tokens == EOT, axis=1) == 1)
  assert not truncated.any()
  assert text.detokenize(tokens) == captions
  # Every byte is its own token, below EOT and PAD; the vocabulary holds all three kinds.
  every_byte, _ = text.tokenize([bytes(range(256))], max_len=257)
  np.testing.assert_array_equal(every_byte[0], np.arange(257))
  assert (EOT, PAD, text.VOCAB_SIZE) == (256, 257, 258)


def test_truncation_keeps_max_len_minus_one_bytes_and_flags_them():
  captions = ['abcdefghijkl'[:n] for n in range(13)]
  tokens, truncated = text.tokenize(captions, max_len=8)
  np.testing.assert_array_equal(truncated, [n > 7 for n in range(13)])
  assert truncated.sum() == 5
  assert text.detokenize(tokens) == [c[:7] for c in captions]
  np.testing.assert_array_equal(tokens[:, -1][8:], EOT)  # the cut ones end in EOT, no PAD
  assert [row.tolist().index(EOT) for row in tokens] == [min(n, 7) for n in range(13)]


def test_the_empty_caption_is_eot_then_padding():
  tokens, truncated = text.tokenize([''], max_len=5)
  assert tokens.tolist() == [[EOT, PAD, PAD, PAD, PAD]] and truncated.tolist() == [False]
  assert text.detokenize(tokens) == ['']
  assert text.tokenize([], max_len=5)[0].shape == (0, 5)


def test_unicode_is_utf8_and_a_cut_character_decodes_as_a_replacement():
  caption = ' é∑😀 '  # 1 + 2 + 3 + 4 + 1 bytes; spaces are kept
  tokens, truncated = text.tokenize([caption], max_len=12)
  assert tokens[0, :11].tolist() == list(caption.encode('utf-8')) and not truncated[0]
  assert text.detokenize(tokens) == [caption]
  cut, truncated = text.tokenize([caption], max_len=5)  # 4 bytes: ' ', 'é', '∑'[0]
  assert truncated[0] and text.detokenize(cut) == [' é\ufffd']


def test_bytes_str_and_numpy_object_captions_tokenize_alike():
  expected, _ = text.tokenize(['two, then one'] * 4, max_len=16)
  for captions in [[b'two, then one'] * 2 + [np.str_('two, then one'), np.bytes_(b'two, then one')],
                   np.array([b'two, then one', 'two, then one'] * 2, dtype=object)]:
    np.testing.assert_array_equal(text.tokenize(captions, max_len=16)[0], expected)


def test_tokenizer_errors():
  with pytest.raises(ValueError, match='max_len must be at least 2'):
    text.tokenize(['a'], max_len=1)
  with pytest.raises(TypeError, match='sequence of captions'):
    text.tokenize('one caption', max_len=8)
  with pytest.raises(TypeError, match='str or bytes, got int'):
    text.tokenize([3], max_len=8)
  with pytest.raises(ValueError, match=r'\[N, max_len\]'):
    text.detokenize(np.array([65, EOT]))


# ---------------------------------------------------------------------------------------
# The bundled digit pairs.


def _word_or_digit_position(caption, digit):
  positions = [caption.find(s) for s in (str(digit), bundled.DIGIT_NAMES[digit])]
  return min(p for p in positions if p >= 0)


def test_pair_captions_name_both_digits_in_order_in_varied_phrasings():
  assert len(CAPTIONS) == 100 * NUM_TEMPLATES  # all distinct, so (a, b) and (b, a) differ
  assert NUM_TEMPLATES >= 8
  assert bundled.DIGIT_NAMES[3] == 'three' and len(bundled.DIGIT_NAMES) == 10
  in_words = right_first = 0
  for t in range(NUM_TEMPLATES):
    caption = bundled.pair_caption(3, 7, t)
    assert caption != bundled.pair_caption(7, 3, t)
    in_words += 'seven' in caption
    right_first += _word_or_digit_position(caption, 7) < _word_or_digit_position(caption, 3)
  assert 3 <= in_words <= NUM_TEMPLATES - 3 and right_first >= 3
  assert bundled.pair_caption(3, 7, 0) == '3 to the left of 7'
  assert bundled.pair_caption(3, 7, 3) == 'three, then seven'
  # Each fits the default max_len of 32 tokens whole.
  assert max(len(c.encode()) for c in CAPTIONS) <= 31
  for bad in [(10, 0, 0), (0, -1, 0), (0, 0, NUM_TEMPLATES), (0, 0, -1)]:
    with pytest.raises(ValueError, match='must be in'):
      bundled.pair_caption(*bad)


def test_every_pair_has_a_fixed_held_out_template():
  held_out = np.array([[bundled.held_out_template(a, b) for b in range(10)]
                       for a in range(10)])
  assert held_out.min() >= 0 and held_out.max() < NUM_TEMPLATES
  assert len(np.unique(held_out)) == NUM_TEMPLATES  # every template is held out somewhere
  # Golden values: a change would silently change the test split and every metric on it.
  assert held_out[0, :5].tolist() == [5, 0, 3, 3, 7]
  assert held_out[3, 7] == 7
  with pytest.raises(ValueError, match='digits must be in 0..9'):
    bundled.held_out_template(0, 10)


@pytest.mark.parametrize('split', ['train', 'test'])
def test_pair_images_hold_two_digits_of_the_split_side_by_side(pair_records, digits_by_class,
                                                                split):
  records = pair_records[split]
  expected = {'train': bundled.DIGIT_PAIRS_NUM_TRAIN,
              'test': bundled.DIGIT_PAIRS_NUM_TEST}[split]
  assert len(records['image']) == expected == {'train': 20000, 'test': 1000}[split]
  images = records['image']  # [N, 16, 16] uint8
  assert np.all(images[:, :4] == 0) and np.all(images[:, 12:] == 0)  # background rows
  other = 'test' if split == 'train' else 'train'
  for side, columns in [('left', slice(0, 8)), ('right', slice(8, 16))]:
    for block, digit in zip(images[:, 4:12, columns], records[side]):
      # Exactly one of this split's digits of that class, never a digit of the other split.
      assert block.tobytes() in digits_by_class[split][digit]
      assert block.tobytes() not in digits_by_class[other][digit]
  np.testing.assert_array_equal(records['label'], 10 * records['left'] + records['right'])
  # Every pair equally often, drawn from many distinct digits.
  np.testing.assert_array_equal(np.bincount(records['label'], minlength=100), expected // 100)
  assert len({i.tobytes() for i in images[:, 4:12, :8]}) > (1000 if split == 'train' else 250)


def test_captions_name_the_pair_with_held_out_templates_only_in_test(pair_records):
  templates = collections.defaultdict(lambda: collections.defaultdict(set))
  for split, records in pair_records.items():
    for caption, left, right in zip(records['caption'], records['left'], records['right']):
      assert CAPTIONS[caption][:2] == (left, right)
      templates[split][left, right].add(CAPTIONS[caption][2])
  for (left, right), used in templates['train'].items():
    held_out = bundled.held_out_template(left, right)
    assert templates['test'][left, right] == {held_out}
    assert used == set(range(NUM_TEMPLATES)) - {held_out}  # all the others, ~200 examples
  assert not set(pair_records['train']['caption']) & set(pair_records['test']['caption'])
  # Golden values: the draws are frozen, so the dataset is the same on every machine.
  assert pair_records['train']['caption'][:3] == [
      'left 4, right 1', '2 to the left of 1', '6 first, then four']
  assert pair_records['test']['caption'][:3] == [
      'left 9, right 4', 'the number 12', '4 to the left of 2']


def test_rebuilding_gives_the_same_dataset_within_seconds(pairs_dir, pair_records, tmp_path):
  start = time.perf_counter()  # sklearn is imported: what is left is the build itself
  bundled.prepare_digit_pairs(tmp_path)
  assert time.perf_counter() - start < 10  # ~3 s on 2 CPU cores

  def shards(root):
    files = sorted((root / bundled.DIGIT_PAIRS_TFDS_NAME).rglob('*.array_record-*'))
    return {f.name: f.read_bytes() for f in files}

  # In one process the files are the same to the byte; another process (the session's
  # build may be another worker's) writes the same records in the same order, but tfds
  # serialises their features in an order of its own there, so the bytes differ.
  bundled.prepare_digit_pairs(tmp_path / 'again')
  assert len(shards(tmp_path)) == 2 and shards(tmp_path) == shards(tmp_path / 'again')
  for split in ('train', 'test'):
    rebuilt = _read(tmp_path, bundled.DIGIT_PAIRS_TFDS_NAME, split)
    expected = pair_records[split]
    np.testing.assert_array_equal(np.stack([r['image'][..., 0] for r in rebuilt]),
                                  expected['image'])
    assert [r['caption'].decode() for r in rebuilt] == expected['caption']
    np.testing.assert_array_equal([r['label'] for r in rebuilt], expected['label'])
  start = time.perf_counter()
  bundled.prepare_digit_pairs(tmp_path)  # already built: a no-op
  assert time.perf_counter() - start < 1


# ---------------------------------------------------------------------------------------
# Captions through get_dataset.


def test_training_tokens_decode_to_each_examples_caption(pairs_dir):
  ds = _open(pairs_dir, **AUGMENTED)
  assert (ds.num_classes, ds.max_len, ds.tokenizer) == (100, 32, text.BYTES)
  batch = ds.batch(3)
  assert batch['tokens'].dtype == np.int32 and batch['tokens'].shape == (64, 32)
  assert batch['truncated'].dtype == bool and not batch['truncated'].any()
  for caption, label in zip(text.detokenize(batch['tokens']), batch['label']):
    left, right, _ = CAPTIONS[caption]
    assert 10 * left + right == label
  # Captions change nothing else: flips and noise are drawn before the caption.
  plain = _open(pairs_dir, caption_key='', **AUGMENTED)
  assert (plain.max_len, plain.tokenizer) == (0, None) and set(plain.batch(3)) == {'image', 'label'}
  for key in ['image', 'label']:
    np.testing.assert_array_equal(plain.batch(3)[key], batch[key])


def test_caption_batches_are_pure_functions_of_seed_and_step(pairs_dir):
  a, b = _open(pairs_dir, seed=5), _open(pairs_dir, seed=5)
  for step in [0, 400]:  # 400 * 64 > 20000: the second epoch
    np.testing.assert_array_equal(a.batch(step)['tokens'], b.batch(step)['tokens'])
  hosts = [_open(pairs_dir, seed=5, process_index=p, process_count=2).batch(400) for p in range(2)]
  np.testing.assert_array_equal(np.concatenate([h['tokens'] for h in hosts]),
                                a.batch(400)['tokens'])
  assert not np.array_equal(a.batch(0)['tokens'], _open(pairs_dir, seed=6).batch(0)['tokens'])


def test_eval_epochs_carry_the_records_captions_in_order_and_pad_with_the_empty_one(
    pairs_dir, pair_records):
  batches = list(_open(pairs_dir, 'test', **AUGMENTED).epoch(384))  # 3 * 384 = 1152 > 1000
  tokens = np.concatenate([b['tokens'] for b in batches])
  mask = np.concatenate([b['mask'] for b in batches])
  truncated = np.concatenate([b['truncated'] for b in batches])
  np.testing.assert_array_equal(mask, np.arange(1152) < 1000)
  assert text.detokenize(tokens[mask]) == pair_records['test']['caption']
  null, _ = text.tokenize([''], max_len=32)
  np.testing.assert_array_equal(tokens[~mask], np.repeat(null, 152, axis=0))
  assert not truncated.any()


def test_truncated_flags_the_captions_cut_to_max_len(pairs_dir, pair_records):
  ds = _open(pairs_dir, 'test', max_len=16)
  assert ds.max_len == 16
  (whole,) = ds.epoch(1000)
  captions = pair_records['test']['caption']
  assert text.detokenize(whole['tokens']) == [c[:15] for c in captions]
  np.testing.assert_array_equal(whole['truncated'], [len(c) > 15 for c in captions])
  assert 300 < whole['truncated'].sum() < 900
  assert not _open(pairs_dir, max_len=16).batch(0)['truncated'].all()


def test_a_missing_or_non_text_caption_key_fails_naming_the_features(pairs_dir):
  message = _assert_fast_one_line_error(
      common.DatasetError, "no text feature 'text'",
      lambda: _open(pairs_dir, caption_key='text'))
  assert 'caption (Text)' in message and 'label (ClassLabel)' in message
  _assert_fast_one_line_error(common.DatasetError, "no text feature 'label'",
                              lambda: _open(pairs_dir, caption_key='label'))
  _assert_fast_one_line_error(ValueError, 'max_len must be',
                              lambda: _open(pairs_dir, max_len=1))


def test_split_captions_are_every_caption_of_the_split_in_order(pairs_dir, pair_records):
  # What a word or BPE tokenizer is trained on.
  found = pipeline.split_captions('digit_pairs', 'train', data_dir=pairs_dir,
                                  caption_key='caption')
  assert found == pair_records['train']['caption']
  with pytest.raises(common.DatasetError, match="no text feature 'text'"):
    pipeline.split_captions('digit_pairs', 'train', data_dir=pairs_dir,
                            caption_key='text')


def test_folders_have_no_captions(tmp_path):
  for k in range(2):
    Image.new('L', (4, 4), 10 * k).save(tmp_path / f'{k}.png')
  _assert_fast_one_line_error(
      common.DatasetError, "folders have no captions: caption_key 'caption'",
      lambda: _open(None, name=f'folder:{tmp_path}', image_size=4, global_batch_size=2))


# ---------------------------------------------------------------------------------------
# Several captions per image, as in coco_captions.

NUM_IMAGES = 12
CAPTIONS_PER_IMAGE = 3


class CocoLike(tfds.core.GeneratorBasedBuilder):
  """coco_captions' layout in miniature: image i is flat at gray level 20 i, 3 captions."""

  name = 'scorelab_test_coco_like'
  VERSION = tfds.core.Version('1.0.0')

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        'image': tfds.features.Image(shape=(4, 4, 1), encoding_format='png'),
        'captions': tfds.features.Sequence({'text': tfds.features.Text()}),
    }))

  def _split_generators(self, dl_manager):
    return {'train': self._generate_examples()}

  def _generate_examples(self):
    for i in range(NUM_IMAGES):
      image = bundled.png(np.full((4, 4), 20 * i, np.uint8))
      captions = [f'photo {i}, caption {k}' for k in range(CAPTIONS_PER_IMAGE)]
      yield i, {'image': image, 'captions': {'text': captions}}


@pytest.fixture(scope='module')
def coco_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp('coco')
  CocoLike(data_dir=path, file_format='array_record').download_and_prepare(
      download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  return path


def _open_coco(coco_dir, **overrides):
  return _open(coco_dir, name=CocoLike.name, **{
      'image_size': 4, 'caption_key': 'captions/text', 'global_batch_size': NUM_IMAGES,
      **overrides})


def _choices(batch):
  """image i -> k of its caption 'photo i, caption k', for each example of a batch."""
  images = np.round(batch['image'].mean(axis=(1, 2, 3)) * 255 / 20).astype(int)
  choices = {}
  for i, caption in zip(images.tolist(), text.detokenize(batch['tokens'])):
    photo, k = caption.removeprefix('photo ').split(', caption ')
    assert int(photo) == i
    choices[i] = int(k)
  return choices


def test_several_captions_one_drawn_per_example_anew_each_epoch(coco_dir):
  ds = _open_coco(coco_dir, seed=1)
  epochs = [_choices(ds.batch(step)) for step in range(8)]  # one epoch a step
  assert all(sorted(e) == list(range(NUM_IMAGES)) for e in epochs)
  for i in range(NUM_IMAGES):  # each example takes more than one caption over the epochs
    assert len({e[i] for e in epochs}) > 1
  counts = collections.Counter(k for e in epochs for k in e.values())
  assert sorted(counts) == [0, 1, 2] and min(counts.values()) >= 16  # of 96, ~32 each
  # Deterministic in (seed, stream position): another dataset, other hosts, agree.
  assert [_choices(_open_coco(coco_dir, seed=1).batch(s)) for s in range(8)] == epochs
  hosts = [_open_coco(coco_dir, seed=1, process_index=p, process_count=2).batch(5)
           for p in range(2)]
  assert {**_choices(hosts[0]), **_choices(hosts[1])} == epochs[5]
  assert _choices(_open_coco(coco_dir, seed=2).batch(0)) != epochs[0]


def test_eval_epochs_take_the_first_of_several_captions(coco_dir):
  (batch,) = _open_coco(coco_dir).epoch(16)
  mask = batch['mask']
  assert mask.sum() == NUM_IMAGES
  assert _choices({k: v[mask] for k, v in batch.items()}) == dict.fromkeys(range(NUM_IMAGES), 0)
  assert text.detokenize(batch['tokens'][~mask]) == [''] * 4


def test_a_record_without_captions_gets_the_empty_one():
  record = {'image': np.zeros((4, 4, 1), np.uint8), 'captions': {'text': []}}
  example = transforms.preprocess(record, image_size=4, crop=None,
                                      caption_key='captions/text')
  assert example['captions'].tolist() == [b'']


def test_the_key_of_nested_captions_is_their_path(coco_dir):
  message = _assert_fast_one_line_error(
      common.DatasetError, "no text feature 'captions'",
      lambda: _open_coco(coco_dir, caption_key='captions'))
  assert 'captions/text (Text)' in message
