"""Captions as tokens: a tokenizer's ids of a caption, then an end-of-text token, then
padding.

Three tokenizers, chosen by `text.tokenizer`:
- `bytes`: UTF-8 bytes (258 ids: the bytes, EOT, PAD); nothing to download or train.
- `words`: a closed vocabulary of lower-cased words, digits and punctuation marks, taken
  from the training captions; a caption with a word outside it is refused, naming the word.
  One token per word: "seven" is one token, not five bytes that share their first with
  "six".
- `bpe`: byte-pair encoding (GPT-2's and GLIDE's kind) trained by the `tokenizers` library
  on the training captions, for open vocabularies.
A trained tokenizer is a JSON file (`save` / `load`); its `fingerprint` names its ids.
"""

import abc
import dataclasses
import functools
import hashlib
import json
import pathlib
import re
from collections.abc import Iterable, Sequence

import numpy as np

TOKENIZERS = ('bytes', 'words', 'bpe')
EOT = 256  # the byte tokenizer's end of text, after a caption's bytes
PAD = 257  # after EOT, up to max_len
VOCAB_SIZE = 258

# A word tokenizer's units: a run of letters, one digit or one punctuation mark. Numbers go
# digit by digit, so that "the number 37" has the tokens of 3 and 7, not an unseen "37".
_WORDS = re.compile(r'[^\W\d_]+|\d|[^\w\s]|_')


def as_str(caption: str | bytes) -> str:
  """A caption as str: tfds Text features decode to UTF-8 bytes."""
  return caption.decode('utf-8', errors='replace') if isinstance(caption, bytes) else caption


class Tokenizer(abc.ABC):
  """Ids [0, vocab_size) of captions; eot and pad are the last two."""

  name: str

  @property
  @abc.abstractmethod
  def vocab_size(self) -> int:
    """Every id, EOT and PAD included."""

  @property
  def eot(self) -> int:
    return self.vocab_size - 2

  @property
  def pad(self) -> int:
    return self.vocab_size - 1

  @abc.abstractmethod
  def encode(self, caption: str | bytes) -> list[int]:
    """The ids of one caption (bytes are UTF-8), without EOT."""

  @abc.abstractmethod
  def decode(self, ids: Sequence[int]) -> str:
    """The caption of ids (no EOT or PAD among them)."""

  def to_json(self) -> str:
    """What `load` reads back; '' for the byte tokenizer, which has no file."""
    return ''

  @property
  def fingerprint(self) -> str:
    """The tokenizer's name and, for a trained one, the SHA-256 of its file's text."""
    saved = self.to_json()
    return self.name + (':' + hashlib.sha256(saved.encode()).hexdigest()[:16] if saved else '')

  def save(self, path: str | pathlib.Path) -> None:
    pathlib.Path(path).write_text(self.to_json())


class ByteTokenizer(Tokenizer):
  """UTF-8 bytes: a caption keeps its bytes, which truncation may cut inside a character
  (decoded as U+FFFD)."""

  name = 'bytes'

  @property
  def vocab_size(self) -> int:
    return VOCAB_SIZE

  def encode(self, caption: str | bytes) -> list[int]:
    return list(caption if isinstance(caption, bytes) else caption.encode('utf-8'))

  def decode(self, ids: Sequence[int]) -> str:
    return bytes(int(i) for i in ids).decode('utf-8', errors='replace')


BYTES = ByteTokenizer()


@dataclasses.dataclass(frozen=True)
class WordTokenizer(Tokenizer):
  """Lower-cased words, digits and punctuation marks of a closed vocabulary
  (`from_captions`); decoding joins them with spaces, but for none before a punctuation
  mark or between two digits."""

  words: tuple[str, ...]
  name = 'words'

  @classmethod
  def from_captions(cls, captions: Iterable[str]) -> 'WordTokenizer':
    return cls(tuple(sorted({w for c in captions for w in _WORDS.findall(c.lower())})))

  @property
  def vocab_size(self) -> int:
    return len(self.words) + 2

  @functools.cached_property
  def _ids(self) -> dict[str, int]:
    return {w: i for i, w in enumerate(self.words)}

  def encode(self, caption: str | bytes) -> list[int]:
    caption = as_str(caption)
    words, ids = _WORDS.findall(caption.lower()), self._ids
    unknown = sorted({w for w in words if w not in ids})
    if unknown:
      raise ValueError(f'caption {caption!r} has words outside the tokenizer\'s vocabulary of '
                       f'{len(self.words)}: {unknown}')
    return [ids[w] for w in words]

  def decode(self, ids: Sequence[int]) -> str:
    text = ''
    for i in ids:
      word = self.words[int(i)]
      joined = not text or not word[0].isalnum() or word.isdigit() and text[-1].isdigit()
      text += ('' if joined else ' ') + word
    return text

  def to_json(self) -> str:
    return json.dumps({'tokenizer': 'words', 'words': list(self.words)})


class BPETokenizer(Tokenizer):
  """Byte-level byte-pair encoding of the `tokenizers` library (GPT-2's kind), trained on
  captions by `train`; EOT and PAD come after its vocabulary."""

  name = 'bpe'

  def __init__(self, saved: str):
    import tokenizers  # noqa: PLC0415 (only a BPE job needs it)

    self._saved = saved
    self._tokenizer = tokenizers.Tokenizer.from_str(saved)

  @classmethod
  def train(cls, captions: Iterable[str], vocab_size: int) -> 'BPETokenizer':
    import tokenizers  # noqa: PLC0415
    from tokenizers import decoders, models, pre_tokenizers, trainers  # noqa: PLC0415

    tokenizer = tokenizers.Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(captions, trainer)
    return cls(tokenizer.to_str())

  def __getstate__(self):  # the Rust object pickles through its JSON
    return self._saved

  def __setstate__(self, saved):
    self.__init__(saved)

  @property
  def vocab_size(self) -> int:
    return self._tokenizer.get_vocab_size() + 2

  def encode(self, caption: str | bytes) -> list[int]:
    return self._tokenizer.encode(as_str(caption)).ids

  def decode(self, ids: Sequence[int]) -> str:
    return self._tokenizer.decode([int(i) for i in ids])

  def to_json(self) -> str:
    return json.dumps({'tokenizer': 'bpe', 'bpe': json.loads(self._saved)})


def load(path: str | pathlib.Path) -> Tokenizer:
  """The tokenizer saved at path (`Tokenizer.save`).

  Raises:
    ValueError: the file is missing or is not a tokenizer's.
  """
  path = pathlib.Path(path)
  try:
    saved = json.loads(path.read_text())
    kind = saved['tokenizer']
    if kind == 'words':
      return WordTokenizer(tuple(saved['words']))
    if kind == 'bpe':
      return BPETokenizer(json.dumps(saved['bpe']))
  except FileNotFoundError:
    raise ValueError(f'no tokenizer file {str(path)!r}') from None
  except (ValueError, KeyError, TypeError) as e:
    raise ValueError(f'{str(path)!r} is not a tokenizer file ({type(e).__name__}: {e})') from None
  raise ValueError(f'{str(path)!r} holds an unknown tokenizer {kind!r}; known: '
                   f'{list(TOKENIZERS[1:])}')


def tokenize(captions: Sequence[str | bytes], *, max_len: int,
             tokenizer: Tokenizer = BYTES) -> tuple[np.ndarray, np.ndarray]:
  """Tokens of captions: their ids, then EOT, then PAD up to max_len.

  The empty caption, [EOT, PAD, ...], is the null caption of classifier-free guidance.
  Nothing is stripped.

  Args:
    captions: str, or bytes as tfds Text features decode to (taken as UTF-8).
    max_len: tokens per caption, at least 2; a caption keeps its first max_len - 1 ids.
    tokenizer: a Tokenizer.

  Returns:
    (tokens, truncated): int32 [N, max_len], and bool [N], True where a caption had more
    than max_len - 1 ids.

  Raises:
    ValueError: max_len < 2, or a word outside a word tokenizer's vocabulary.
    TypeError: `captions` is a single string, or holds something else than str and bytes.
  """
  if max_len < 2:
    raise ValueError(f'max_len must be at least 2 (a token and EOT), got {max_len}')
  if isinstance(captions, (str, bytes)):  # would be tokenized as one caption per character
    raise TypeError(f'captions must be a sequence of captions, got the string {captions!r}')
  tokens = np.full((len(captions), max_len), tokenizer.pad, np.int32)
  truncated = np.zeros(len(captions), bool)
  for i, caption in enumerate(captions):
    if not isinstance(caption, (str, bytes)):
      raise TypeError(f'a caption must be str or bytes, got {type(caption).__name__}')
    ids = tokenizer.encode(caption)
    truncated[i] = len(ids) > max_len - 1
    ids = ids[:max_len - 1]
    tokens[i, :len(ids)] = ids
    tokens[i, len(ids)] = tokenizer.eot
  return tokens, truncated


def detokenize(tokens: np.ndarray, tokenizer: Tokenizer = BYTES) -> list[str]:
  """The captions of tokens [N, max_len]: the ids before each row's first EOT, decoded.

  A row without EOT (not from `tokenize`) ends at its first EOT or PAD.
  """
  tokens = np.asarray(tokens)
  if tokens.ndim != 2:
    raise ValueError(f'tokens must be [N, max_len], got shape {tokens.shape}')
  ends = np.argmax(np.concatenate([tokens, np.full((len(tokens), 1), tokenizer.eot)], 1)
                   >= tokenizer.eot, 1)
  return [tokenizer.decode(row[:end]) for row, end in zip(tokens, ends)]
