"""Test-session settings, applied before jax is imported.

- 4 forced CPU devices, so multi-device code paths are exercised;
- a persistent compilation cache shared by the session's processes: the job's
  tests compile the same tiny networks in several processes;
- `data_dir`: the bundled digits, prepared once per session (per pytest worker).
"""

import os
import tempfile

import pytest

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=4')
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', tempfile.mkdtemp(prefix='scorelab-jax-cache-'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')


@pytest.fixture(scope='session')
def data_dir(tmp_path_factory) -> str:
  import input_pipeline  # after the settings above: it imports jax

  path = tmp_path_factory.mktemp('data')
  input_pipeline.prepare_digits(path)
  return str(path)
