"""The trained tokenizers of captions: a closed word vocabulary and byte-pair encoding,
their files, and how they tokenize (the byte tokenizer: tests/data/test_captions.py)."""

import json
import pickle

import numpy as np
import pytest

from data import bundled, text

# Every caption the digit pairs can have: ten phrasings of the 100 ordered pairs.
CAPTIONS = [bundled.pair_caption(left, right, t) for t in range(len(bundled.PAIR_TEMPLATES))
            for left in range(10) for right in range(10)]


@pytest.fixture(scope='module')
def bpe():
  return text.BPETokenizer.train(CAPTIONS, vocab_size=300)


def test_words_are_one_token_each_and_round_trip():
  words = text.WordTokenizer.from_captions(CAPTIONS)
  # Digits, digit names, the phrasings' words and their two punctuation marks; numbers are
  # read digit by digit ("the number 37").
  assert {'seven', 'three', 'left', 'right', ',', ':', '7'} <= set(words.words)
  assert '37' not in words.words and words.encode('the number 37')[2:] == words.encode('3 7')
  assert words.vocab_size == len(words.words) + 2
  assert (words.eot, words.pad) == (len(words.words), len(words.words) + 1)
  tokens, truncated = text.tokenize(CAPTIONS, max_len=12, tokenizer=words)
  assert not truncated.any() and tokens.max() == words.pad
  assert text.detokenize(tokens, words) == CAPTIONS
  # "seven" and "six" share their first byte but no token.
  seven, six = (words.encode(w) for w in ('seven', 'six'))
  assert len(seven) == len(six) == 1 and seven != six
  # Case and spacing are not part of a word.
  assert words.encode('Seven  ,  THREE') == words.encode('seven, three')


def test_a_word_outside_the_vocabulary_is_named():
  words = text.WordTokenizer.from_captions(['3 to the left of 7'])
  with pytest.raises(ValueError, match=r"outside the tokenizer's vocabulary of 6: \['eight', "
                                       r"'right'\]"):
    text.tokenize(['eight to the right of 7'], max_len=8, tokenizer=words)


def test_bpe_round_trips_the_captions_in_fewer_tokens_than_bytes(bpe):
  tokens, truncated = text.tokenize(CAPTIONS, max_len=32, tokenizer=bpe)
  assert not truncated.any() and bpe.vocab_size <= 302
  assert text.detokenize(tokens, bpe) == CAPTIONS
  lengths = np.argmax(tokens == bpe.eot, axis=1)
  assert lengths.mean() < 0.5 * np.mean([len(c) for c in CAPTIONS])
  # Merges learnt on these captions; a word never seen still tokenizes, byte by byte.
  assert text.detokenize(text.tokenize(['zebra'], max_len=8, tokenizer=bpe)[0], bpe) == ['zebra']


@pytest.mark.parametrize('kind', ['words', 'bpe'])
def test_a_saved_tokenizer_reloads_to_the_same_ids_and_fingerprint(tmp_path, bpe, kind):
  tokenizer = text.WordTokenizer.from_captions(CAPTIONS) if kind == 'words' else bpe
  tokenizer.save(tmp_path / 'tokenizer.json')
  loaded = text.load(tmp_path / 'tokenizer.json')
  assert loaded.name == kind and loaded.fingerprint == tokenizer.fingerprint
  np.testing.assert_array_equal(text.tokenize(CAPTIONS, max_len=32, tokenizer=loaded)[0],
                                text.tokenize(CAPTIONS, max_len=32, tokenizer=tokenizer)[0])
  # The input pipeline's threads and processes get it pickled.
  assert pickle.loads(pickle.dumps(tokenizer)).encode(CAPTIONS[5]) == tokenizer.encode(
      CAPTIONS[5])
  other = text.WordTokenizer.from_captions(CAPTIONS[:100])
  assert other.fingerprint != text.WordTokenizer.from_captions(CAPTIONS).fingerprint
  assert text.BYTES.fingerprint == 'bytes' and not text.BYTES.to_json()


def test_bad_tokenizer_files_are_named(tmp_path):
  with pytest.raises(ValueError, match='no tokenizer file .*none.json'):
    text.load(tmp_path / 'none.json')
  (tmp_path / 'bad.json').write_text('not json')
  with pytest.raises(ValueError, match='bad.json.* is not a tokenizer file'):
    text.load(tmp_path / 'bad.json')
  (tmp_path / 'gpt.json').write_text(json.dumps({'tokenizer': 'gpt2'}))
  with pytest.raises(ValueError, match="unknown tokenizer 'gpt2'; known: \\['words', 'bpe'\\]"):
    text.load(tmp_path / 'gpt.json')
