"""Test-session settings, applied before jax is imported.

- 4 forced CPU devices, so multi-device code paths are exercised, and XLA's -O0;
- a persistent compilation cache shared by the session's processes: the job's
  tests compile the same tiny networks in several processes;
- `data_dir`: the bundled digits, prepared once per session (per pytest worker), and the
  digit pairs (`pairs_data_dir`) for the modules that use them;
- `digits_classifier_trained_once`: the eval's feature classifier trained once per worker.
"""

import os
import tempfile

import pytest

# LLVM at -O0: the suite compiles hundreds of small programs and runs each a few times, so
# compilation, not execution, is its time (models and samplers' tests: 250 s against 290 s).
os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=4 '
                      '--xla_backend_optimization_level=0')
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', tempfile.mkdtemp(prefix='scorelab-jax-cache-'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')


@pytest.fixture(scope='session')
def data_dir(tmp_path_factory) -> str:
  import input_pipeline  # after the settings above: it imports jax

  path = tmp_path_factory.mktemp('data')
  input_pipeline.prepare_digits(path)
  return str(path)


@pytest.fixture(scope='session')
def pairs_data_dir(data_dir) -> str:
  """The data directory with the digit pairs built too (the eval's digits classifier of
  pairs trains on the digits beside them)."""
  import input_pipeline

  input_pipeline.prepare_digit_pairs(data_dir)
  return data_dir


@pytest.fixture(scope='module')
def digits_classifier_trained_once():
  """Makes the job's eval train its digits feature classifier once per worker.

  The classifier is a pure function of its training images, labels and seed (its own
  tests, in test_evaluation.py, check that bit for bit), and every digits workdir of the
  job tests trains the same one, ~8 s each; modules that evaluate many workdirs use this.
  """
  import hashlib

  import numpy as np

  import evaluation

  train, trained = evaluation.train_digits_classifier, {}

  def train_once(images, labels, **options):
    key = (hashlib.sha256(np.ascontiguousarray(images)).hexdigest(),
           hashlib.sha256(np.ascontiguousarray(labels)).hexdigest(), repr(sorted(options.items())))
    if key not in trained:
      trained[key] = train(images, labels, **options)
    return trained[key]

  evaluation.train_digits_classifier = train_once
  yield
  evaluation.train_digits_classifier = train
