"""What the data modules share: the error type, example and path types, fixed splits."""

import os

import numpy as np

Example = dict[str, np.ndarray]
PathLike = str | os.PathLike[str]


class DatasetError(ValueError):
  """A dataset is unknown, not prepared, or unreadable; the message says what to do."""


def one_line(e: BaseException) -> str:
  """An exception as its type and the first line of its message."""
  lines = str(e).strip().splitlines()
  return f'{type(e).__name__}: {lines[0] if lines else ""}'


def fixed_split(num_examples: int, num_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """(train, test) indices of a split fixed by `seed`: the last num_examples - num_test and
  the first num_test of a permutation of range(num_examples)."""
  # Legacy RandomState: its permutation is frozen across numpy versions, so the split is too.
  perm = np.random.RandomState(seed).permutation(num_examples)
  return perm[num_test:], perm[:num_test]
