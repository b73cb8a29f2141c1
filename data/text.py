"""Captions as tokens: UTF-8 bytes, an end-of-text token and padding, the vocabulary of
scorelab's text encoders (nothing to download or train)."""

from collections.abc import Sequence

import numpy as np

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


