"""main.py: the command line. Bad config files, keys, values, names, data, workdirs and
checkpoints give one 'error:' line and write nothing; a device per core."""

import os
import time

import pytest

from configs.digits import ve as digits_ve
from tests.run_lib import jobs


@pytest.mark.parametrize('override, message', [
    ('--config.sde.name=ddim', "unknown sde 'ddim'"),
    ('--config.model.name=unet', "unknown model 'unet'"),
    ('--config.sampling.predictor=heun', "unknown sampling.predictor 'heun'"),
    ('--config.data.dataset=cifar10', 'cifar10'),
    # MNIST comes from the user's prepared tfds directory; one without it says how to make it.
    ('--config.data.dataset=mnist', "dataset 'mnist' is not prepared in "),
])
def test_bad_names_and_missing_data_fail_with_one_line(tmp_path, data_dir, override, message):
  start = time.monotonic()
  result = jobs.run_main(tmp_path / 'work', f'--config.data.data_dir={tmp_path / "empty"}'
                         if 'dataset' in override else f'--config.data.data_dir={data_dir}',
                         override)
  assert message in jobs.error_line(result)
  assert time.monotonic() - start < 60  # never the 200 s tfds network retry


@pytest.mark.parametrize('overrides, message', [
    (['--config.model.output=velocity'],
     "unknown parameterisation output 'velocity'; known: ['eps'"),
    (['--config.data.dataset=cifar10', '--config.data.data_dir='], 'cifar10'),
    (['--config=configs/digits/ve.py:bogus'],
     "Error whilst parsing config file: ValueError: unknown config variant 'bogus'"),
    (['--mode=sweep'], 'configs/digits/ve.py has no sweep() listing the points'),
])
def test_bad_paths_fail_with_one_line_and_write_nothing(tmp_path, data_dir, overrides, message):
  start = time.monotonic()
  result = jobs.run_main(tmp_path / 'work', f'--config.data.data_dir={data_dir}', *overrides)
  assert message in jobs.error_line(result)
  assert time.monotonic() - start < 60  # never the 200 s tfds network retry
  assert not list((tmp_path / 'work').glob('checkpoints/[0-9]*'))


@pytest.mark.parametrize('form', ['--config=FILE', '--config FILE'])
@pytest.mark.parametrize('case, message', [
    ('missing', 'config file {file} not found'),
    ('no_get_config', 'config file {file} has no get_config() returning the config'),
    ('raises', 'Error whilst parsing config file: ValueError: no such dataset here'),
    ('syntax', 'config file {file} failed to load: SyntaxError: invalid syntax'),
])
def test_bad_config_files_fail_with_one_line_in_either_flag_form(tmp_path, form, case,
                                                                 message):
  file = tmp_path / f'{case}.py'
  code = {'no_get_config': 'x = 1\n', 'syntax': 'def get_config(:\n',
          'raises': 'def get_config():\n  raise ValueError("no such dataset here")\n'}
  if case in code:
    file.write_text(code[case])
  argv = [f'--config={file}'] if form == '--config=FILE' else ['--config', str(file)]
  result = jobs.run_main(tmp_path / 'work', *argv, config=None)
  assert message.format(file=file) in jobs.error_line(result)
  assert not (tmp_path / 'work').exists()


@pytest.mark.parametrize('override, message', [
    ('--config.training.batchsize=8',
     'unknown config key --config.training.batchsize (did you mean batch_size?)'),
    ('--config.training.batch_size=eight', '--config.training.batch_size=eight: invalid literal'),
    ('--mode=serve', 'value should be one of <train|eval|sample|sweep>'),
])
def test_unknown_config_keys_and_wrong_types_fail(tmp_path, override, message):
  assert message in jobs.error_line(jobs.run_main(tmp_path, override))


def test_unwritable_workdir_fails_with_one_line(tmp_path):
  blocker = tmp_path / 'file'
  blocker.write_text('not a directory')
  assert 'not writable' in jobs.error_line(jobs.run_main(blocker / 'workdir'))


def test_eval_metrics_and_levels_from_the_command_line(tmp_path, data_dir):
  # ml_collections reads a tuple override as one string: the names are split on commas.
  result = jobs.run_main(tmp_path, f'--config.data.data_dir={data_dir}', '--mode=eval',
                         '--config.eval.metrics=loss,accuracy')
  assert ("eval.metrics 'accuracy' does not apply to training.task='diffusion'"
          in jobs.error_line(result))
  result = jobs.run_main(tmp_path, f'--config.data.data_dir={data_dir}', '--config.data.levels=1')
  assert 'data.levels must be an integer >= 2' in jobs.error_line(result)
  assert not list(tmp_path.glob('checkpoints/[0-9]*'))


def _snapshot(workdir) -> dict[str, bytes]:
  return {str(p.relative_to(workdir)): p.read_bytes()
          for p in sorted((workdir / 'checkpoints').rglob('*')) if p.is_file()}


def test_mismatched_checkpoint_fails_and_is_left_intact(tiny_workdir, data_dir):
  before = _snapshot(tiny_workdir)
  result = jobs.run_main(tiny_workdir, f'--config.data.data_dir={data_dir}',
                         '--config.model.nf=16', '--mode=sample')
  assert 'does not match the configured model' in jobs.error_line(result)
  assert _snapshot(tiny_workdir) == before


def test_corrupt_checkpoint_fails_and_is_left_intact(tiny_workdir, data_dir):
  latest = tiny_workdir / 'checkpoints' / '2'
  for path in latest.rglob('*'):
    if path.is_file() and path.stat().st_size > 64 and 'ocdbt' in str(path):
      path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
  before = _snapshot(tiny_workdir)
  result = jobs.run_main(tiny_workdir, f'--config.data.data_dir={data_dir}', '--mode=sample')
  assert 'cannot restore checkpoint 2' in jobs.error_line(result)
  assert _snapshot(tiny_workdir) == before


@pytest.mark.parametrize('cores, devices', [(1, 1), (2, 2), (6, 4), (8, 8), (12, 8)])
def test_main_gives_each_core_a_device_as_far_as_the_batches_divide(monkeypatch, cores,
                                                                     devices):
  import main
  config = digits_ve.get_config()
  config.eval.batch_size = 160  # with training's 128 and sampling's 64
  monkeypatch.setattr(os, 'sched_getaffinity', lambda pid: set(range(cores)))
  monkeypatch.setenv('XLA_FLAGS', '--xla_cpu_enable_fast_math=false')
  main._use_every_core(config)
  assert os.environ['XLA_FLAGS'] == ('--xla_cpu_enable_fast_math=false '
                                     f'--xla_force_host_platform_device_count={devices}')
  main._use_every_core(config)  # a count already set is kept
  assert os.environ['XLA_FLAGS'].count('device_count') == 1


def test_warnings_a_user_cannot_act_on_are_silenced():
  import main
  quiet = [type('Record', (), {'msg': msg})() for msg in (
      'OpenCV is not installed. We recommend using OpenCV because it is faster',
      'Type handler registry type "%s" overriding %s', 'training.n_jitted_steps=%d: XLA')]
  assert [main._quiet(record) for record in quiet] == [False, False, True]
