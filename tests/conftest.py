"""Test-session settings, applied before jax is imported.

- 4 forced CPU devices, so multi-device code paths are exercised, and XLA's fastest
  compilation (-O0, the older fusion emitters);
- a persistent compilation cache shared by the session's processes: the job's
  tests compile the same tiny networks in several processes;
- `data_dir`: the bundled digits, prepared once per session in a directory its workers
  share, and the digit pairs (`pairs_data_dir`) for the modules that use them;
- `digits_classifier_trained_once`: the eval's feature classifier trained once per session;
- `reference`: a tiny digits job's 6-step run, trained once per worker; `tiny_workdir`, a
  copy of a trained one kept in tests/testdata.
"""

import contextlib
import fcntl
import os
import pathlib
import shutil
import tempfile

import pytest

# LLVM at -O0 and XLA:CPU's older fusion emitters: the suite compiles hundreds of small
# programs and runs each a few times, so compilation, not execution, is its time (models and
# samplers' tests: 250 s against 290 s at -O0; the tiny digits train step compiles in 3 s
# instead of 4.7 s without the new emitters). Tests that run long loops compile them
# optimised (tests/optimized.py).
os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=4 '
                      '--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false')
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', tempfile.mkdtemp(prefix='scorelab-jax-cache-'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')
# What the session's processes (pytest-xdist's workers inherit the environment) build once.
SHARED = pathlib.Path(os.environ.setdefault('SCORELAB_TEST_SHARED',
                                            tempfile.mkdtemp(prefix='scorelab-tests-')))


@contextlib.contextmanager
def _one_at_a_time(name: str):
  """Holds the session-wide lock `name`: the first process builds, the others wait."""
  with open(SHARED / f'{name}.lock', 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    yield


@pytest.fixture(scope='session')
def data_dir() -> str:
  from data import bundled  # after the settings above: it imports jax

  path = SHARED / 'data'
  with _one_at_a_time('data'):
    bundled.prepare_digits(path)
  return str(path)


@pytest.fixture(scope='session')
def pairs_data_dir(data_dir) -> str:
  """The data directory with the digit pairs built too (the eval's digits classifier of
  pairs trains on the digits beside them)."""
  from data import bundled

  with _one_at_a_time('data'):
    bundled.prepare_digit_pairs(data_dir)
  return data_dir


@pytest.fixture(scope='module')
def digits_classifier_trained_once():
  """Makes the job's eval train its digits feature classifier once per session.

  The classifier is a pure function of its training images, labels and seed (its own
  tests, in tests/metrics/test_digits.py, check that bit for bit), and every digits workdir
  of the job tests trains the same one, ~10 s each at the suite's -O0; modules that evaluate
  workdirs use this, and the first process to need one trains it for the others. Modules
  that do not leave the function as it is.
  """
  import hashlib

  import flax
  import jax
  import numpy as np

  from metrics import digits

  train = digits.train_digits_classifier

  def train_once(images, labels, **options):
    key = hashlib.sha256(b''.join([np.ascontiguousarray(images).tobytes(),
                                   np.ascontiguousarray(labels).tobytes(),
                                   repr(sorted(options.items())).encode()])).hexdigest()
    path = SHARED / f'digits_classifier-{key[:16]}.msgpack'
    with _one_at_a_time('digits_classifier'):
      if not path.exists():
        path.write_bytes(flax.serialization.msgpack_serialize(
            jax.device_get(train(images, labels, **options))))
      return flax.serialization.msgpack_restore(path.read_bytes())

  digits.train_digits_classifier = train_once
  yield
  digits.train_digits_classifier = train


@pytest.fixture(scope='session')
def reference(tmp_path_factory, data_dir):
  """An uninterrupted 6-step run of the tiny VE digits config: (workdir, final state)."""
  from tests.run_lib import jobs

  workdir = tmp_path_factory.mktemp('reference')
  state = jobs.train(jobs.tiny_config(data_dir, n_iters=6), workdir)
  return workdir, state


@pytest.fixture
def tiny_workdir(tmp_path) -> pathlib.Path:
  """A trained workdir of the tiny VE digits config to change: tests/testdata's, written by an
  earlier version (configs/digits/ve.py:tiny, 2 steps: its checkpoint 2 and config.json)."""
  workdir = tmp_path / 'tiny'
  shutil.copytree(pathlib.Path(__file__).parent / 'testdata' / 'digits_ve_tiny_v0', workdir)
  return workdir
