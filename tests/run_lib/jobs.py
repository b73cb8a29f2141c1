"""What the job tests share: tiny configs, the job's modes on a config, main.py in a
subprocess, and the one-line errors of bad settings."""

import json
import os
import pathlib
import subprocess
import sys

import ml_collections
import pytest

import run_lib
from configs.digits import ve as digits_ve
from configs.text import digit_pairs

ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY = 'configs/digits/ve.py:tiny'


def tiny_config(data_dir: str, **training) -> ml_collections.ConfigDict:
  """The tiny VE digits config on the session's digits, with training.* changes."""
  config = digits_ve.get_config('tiny')
  config.data.data_dir = data_dir
  config.training.update(training)
  return config


def text_config(data_dir: str, module=digit_pairs, **sampling_options):
  """A tiny text config (digit pairs by default) reading at most 16 tokens."""
  config = module.get_config('tiny')
  config.data.data_dir = data_dir
  config.text.max_len = 16
  config.sampling.update(sampling_options)
  return config


def train(config: ml_collections.ConfigDict, workdir) -> run_lib.TrainState:
  return run_lib.train(run_lib.build(config, str(workdir)))


def sample(config: ml_collections.ConfigDict, workdir):
  return run_lib.sample(run_lib.build(config, str(workdir)))


def evaluate(config: ml_collections.ConfigDict, workdir) -> dict:
  return run_lib.evaluate(run_lib.build(config, str(workdir)))


def losses(workdir: pathlib.Path) -> dict[int, float]:
  lines = [json.loads(line) for line in (workdir / 'log.jsonl').read_text().splitlines()]
  return {line['step']: line['loss'] for line in lines if 'loss' in line}


def run_main(workdir, *overrides, devices: int = 4, config: str | None = TINY,
             timeout: int = 300) -> subprocess.CompletedProcess:
  """main.py with --config (unless None), --workdir and the overrides, on `devices` CPU
  devices at the session's XLA optimisation level."""
  flags = [f for f in os.environ.get('XLA_FLAGS', '').split()
           if not f.startswith('--xla_force_host_platform_device_count')]
  env = {**os.environ, 'XLA_FLAGS': ' '.join(
      [f'--xla_force_host_platform_device_count={devices}'] + flags)}
  command = [sys.executable, 'main.py', *([f'--config={config}'] if config else []),
             f'--workdir={workdir}', *overrides]
  return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=timeout)


def error_line(result: subprocess.CompletedProcess) -> str:
  """The one 'error: ' line of a failed run."""
  assert result.returncode != 0
  lines = [line for line in result.stderr.splitlines() if line.startswith('error: ')]
  assert len(lines) == 1, result.stderr[-3000:]
  return lines[0]


def override(config: ml_collections.ConfigDict, overrides: dict) -> ml_collections.ConfigDict:
  """The config with 'section.key' overrides."""
  for key, value in overrides.items():
    section, name = key.split('.')
    config[section][name] = value
  return config


def expect_build_error(config: ml_collections.ConfigDict, workdir, message: str,
                       error: type[Exception] | tuple = ValueError) -> None:
  """Building the job fails with `error`, whose message holds `message` in its first line."""
  with pytest.raises(error) as raised:
    run_lib.build(config, str(workdir))
  assert message in str(raised.value).splitlines()[0]


def expect_job_error(config: ml_collections.ConfigDict, workdir: pathlib.Path,
                     message: str) -> None:
  """`--mode train` of the config fails as main.py reports it, in the one line holding
  `message`, and leaves no checkpoint in workdir (main.py's own reporting of these errors:
  tests/test_main.py)."""
  with pytest.raises(run_lib.USER_ERRORS) as raised:
    run_lib.train(run_lib.build(config, str(workdir)))
  assert message in ' '.join(str(raised.value).split())
  assert not list(workdir.glob('checkpoints/[0-9]*'))


def only(directory: pathlib.Path, pattern: str) -> pathlib.Path:
  """The one file of directory matching pattern (outputs are named by their settings)."""
  [path] = sorted(directory.glob(pattern))
  return path
