"""The job end to end on a tiny digits model: train, eval, sample, resume, devices, bad input."""

import dataclasses
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time

import flax.linen as nn
import jax
import numpy as np
import pytest
from PIL import Image

import run_lib
from configs.digits import ve as digits_ve
from run_lib.sample import complete, completion_grid

pytestmark = pytest.mark.usefixtures('digits_classifier_trained_once')

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = 'configs/digits/ve.py:tiny'


def tiny_config(data_dir: str, **training):
  config = digits_ve.get_config('tiny')
  config.data.data_dir = data_dir
  config.training.update(training)
  return config


def _params(state) -> list[np.ndarray]:
  return [np.asarray(leaf) for leaf in jax.tree.leaves(state.params)]


def _losses(workdir: pathlib.Path) -> dict[int, float]:
  lines = [json.loads(line) for line in (workdir / 'log.jsonl').read_text().splitlines()]
  return {line['step']: line['loss'] for line in lines if 'loss' in line}


@pytest.fixture(scope='module')
def reference(tmp_path_factory, data_dir):
  """An uninterrupted 6-step run: (workdir, final state)."""
  workdir = tmp_path_factory.mktemp('reference')
  state = run_lib.train(tiny_config(data_dir, n_iters=6), str(workdir))
  return workdir, state


def run_main(workdir, *overrides, devices=4, config=TINY, timeout=300):
  env = {**os.environ, 'XLA_FLAGS': f'--xla_force_host_platform_device_count={devices}'}
  command = [sys.executable, 'main.py', f'--config={config}', f'--workdir={workdir}', *overrides]
  return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=timeout)


def test_train_writes_checkpoints_logs_and_sample_grids(reference):
  workdir, state = reference
  assert int(state.step) == 6
  assert sorted(int(p.name) for p in (workdir / 'checkpoints').iterdir() if p.name.isdigit()) == [
      2, 4, 6]
  assert sorted(_losses(workdir)) == [1, 2, 3, 4, 5, 6]
  assert list((workdir / 'tensorboard').glob('events.out.tfevents.*'))
  assert (workdir / 'samples' / 'step_00000006.png').exists()
  assert json.loads((workdir / 'config.json').read_text())['training']['n_iters'] == 6


# The tiny VE digits run's losses before the job trained tasks (tasks.Diffusion, parameters
# as named trees): that change reproduced them, and every parameter, bit for bit on this
# machine (4 CPU devices). The tolerance only allows for another CPU's float rounding.
LOSSES_BEFORE_TASKS = [61.31703186035156, 64.80130767822266, 57.44453811645508,
                       69.41082000732422, 59.408164978027344, 67.75634765625]
TEST_LOSSES_BEFORE_TASKS = [61.555442810058594, 62.19342041015625, 64.918701171875,
                            63.65620422363281, 64.79695892333984, 60.176021575927734]


def test_the_diffusion_task_reproduces_the_losses_of_the_job_before_tasks(reference):
  workdir, state = reference
  lines = [json.loads(line) for line in (workdir / 'log.jsonl').read_text().splitlines()]
  np.testing.assert_allclose([line['loss'] for line in lines if 'loss' in line],
                             LOSSES_BEFORE_TASKS, rtol=1e-5)
  np.testing.assert_allclose([line['test_loss'] for line in lines if 'test_loss' in line],
                             TEST_LOSSES_BEFORE_TASKS, rtol=1e-5)
  assert list(state.params) == ['score'] and list(state.ema_params) == ['score']


def test_trajectory_strip_puts_each_samples_predictions_under_its_states():
  states = np.zeros((3, 2, 4, 4, 1), np.uint8)  # [F, R, H, W, C]
  denoised = np.full_like(states, 255)
  denoised[:, 1] = 200
  strip = run_lib.trajectory_strip(states, denoised)[..., 0]
  assert strip.shape == (4 * 5 + 1, 3 * 5 + 1)
  tile_rows = [strip[1 + 5 * r:5 + 5 * r, 1:-1] for r in range(4)]
  assert [np.unique(row[row != 128]).tolist() for row in tile_rows] == [[0], [255], [0], [200]]


def test_sample_and_eval_from_the_checkpoint(reference, data_dir):
  workdir, _ = reference
  config = tiny_config(data_dir, n_iters=6)
  images = run_lib.sample(config, str(workdir))
  assert images.shape == (4, 8, 8, 1) and images.dtype == np.uint8
  assert np.load(workdir / 'samples' / 'samples_00000006.npz')['images'].shape == (4, 8, 8, 1)
  # 3 frames of 4 samples, each a row of states over a row of predictions, 16x enlarged.
  strip = Image.open(workdir / 'samples' / 'trajectory_00000006.png')
  assert strip.size == (16 * (3 * 9 + 1), 16 * (8 * 9 + 1))
  results = run_lib.evaluate(config, str(workdir))
  metrics = json.loads((workdir / 'eval' / 'step_00000006.json').read_text())
  assert results[6] == metrics
  for key in ('test_loss', 'bpd_ode', 'fd', 'kid', 'is'):
    assert np.isfinite(metrics[key]), key
  assert metrics['bpd_ode'] > 0


def test_resume_gives_bit_identical_parameters(reference, tmp_path, data_dir):
  run_lib.train(tiny_config(data_dir, n_iters=3), str(tmp_path))
  resumed = run_lib.train(tiny_config(data_dir, n_iters=6), str(tmp_path))
  for a, b in zip(_params(resumed), _params(reference[1]), strict=True):
    np.testing.assert_array_equal(a, b)


def test_kill_9_at_any_moment_then_relaunch_matches_an_uninterrupted_run(reference, tmp_path,
                                                                       data_dir):
  # The session's XLA_FLAGS (conftest: 4 devices, its optimisation level), as the reference.
  process = subprocess.Popen(
      [sys.executable, 'main.py', f'--config={TINY}', f'--workdir={tmp_path}',
       f'--config.data.data_dir={data_dir}', '--config.training.n_iters=1000'],
      cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.monotonic() + 240
  checkpoints = tmp_path / 'checkpoints'
  while time.monotonic() < deadline and not (checkpoints.exists() and any(
      p.name.isdigit() and int(p.name) >= 3 for p in checkpoints.iterdir())):
    time.sleep(0.05)
  process.send_signal(signal.SIGKILL)  # possibly in the middle of writing a checkpoint
  process.wait()
  resumed = run_lib.train(tiny_config(data_dir, n_iters=6), str(tmp_path))
  for a, b in zip(_params(resumed), _params(reference[1]), strict=True):
    np.testing.assert_array_equal(a, b)


def test_one_and_four_devices_give_the_same_losses(reference, tmp_path, data_dir):
  # A relative workdir, as the README's commands give (orbax wants absolute paths).
  result = run_main(os.path.relpath(tmp_path, ROOT), f'--config.data.data_dir={data_dir}',
                    '--config.training.n_iters=6', devices=1)
  assert result.returncode == 0, result.stderr[-2000:]
  one, four = _losses(tmp_path), _losses(reference[0])
  assert sorted(one) == sorted(four)
  np.testing.assert_allclose([one[s] for s in sorted(one)], [four[s] for s in sorted(four)],
                             rtol=1e-5)


def _error_line(result) -> str:
  assert result.returncode != 0
  lines = [line for line in result.stderr.splitlines() if line.startswith('error: ')]
  assert len(lines) == 1, result.stderr[-3000:]
  return lines[0]


@pytest.mark.parametrize('override, message', [
    ('--config.sde.name=ddim', "unknown sde 'ddim'"),
    ('--config.model.name=unet', "unknown model 'unet'"),
    ('--config.sampling.predictor=heun', "unknown sampling.predictor 'heun'"),
    ('--config.data.dataset=cifar10', 'cifar10'),
])
def test_bad_names_and_missing_data_fail_with_one_line(tmp_path, data_dir, override, message):
  start = time.monotonic()
  result = run_main(tmp_path / 'work', f'--config.data.data_dir={tmp_path / "empty"}'
                    if 'dataset' in override else f'--config.data.data_dir={data_dir}', override)
  assert message in _error_line(result)
  assert time.monotonic() - start < 60  # never the 200 s tfds network retry


@pytest.mark.parametrize('sampling, message', [
    ({'method': 'leapfrog'}, "unknown sampling.method 'leapfrog'; known: ['ddim', 'dpm_solver_pp'"),
    ({'method': 'unipc', 'order': 4}, 'sampling.* (unipc): order must be one of [1, 2, 3], got 4'),
    ({'method': 'ddim', 'n_steps': 0},
     'sampling.* (ddim): n_steps must be a positive integer, got 0'),
    ({'schedule': 'karras'},
     "sampling.* (pc): schedule 'karras' does not fit sampler 'pc'; allowed: ['uniform']"),
    ({'method': 'ode', 'schedule': 'logsnr'},
     "schedule 'logsnr' does not fit sampler 'ode' (ODE solver 'dopri5'); allowed: ['uniform']"),
    ({'schedule': 'cosine'}, "unknown sampling.schedule 'cosine'; known: ['karras'"),
    ({'method': 'ddim', 'eta': 2.0}, 'eta must lie in [0, 1], got 2.0'),
    ({'method': 'ddim', 'eps': 1.5}, 'eps must lie in [0, T=1.0)'),
    ({'method': 'pc', 'n_steps': 1}, 'pc needs at least 2 levels'),
    ({'num_samples': 0}, 'sampling.num_samples must be at least 1, got 0'),
])
def test_bad_sampler_settings_name_the_value_and_the_allowed_ones(tmp_path, data_dir, sampling,
                                                                  message):
  # main.py prints these ValueErrors as its one error line.
  config = tiny_config(data_dir)
  config.sampling.update(sampling)
  with pytest.raises(ValueError) as error:
    run_lib.Job(config, str(tmp_path))
  assert message in str(error.value)


@pytest.mark.parametrize('overrides, message', [
    (['--config.model.output=v'], "unknown parameterisation output 'v'; known: ['eps'"),
    (['--config.data.dataset=cifar10', '--config.data.data_dir='], 'cifar10'),
    (['--config=configs/nope.py'], 'config file configs/nope.py not found'),
    (['--config=configs/digits/ve.py:bogus'],
     "Error whilst parsing config file: ValueError: unknown config variant 'bogus'"),
    (['--mode=sweep'], 'configs/digits/ve.py has no sweep() listing the points'),
])
def test_bad_paths_fail_with_one_line_and_write_nothing(tmp_path, data_dir, overrides, message):
  start = time.monotonic()
  result = run_main(tmp_path / 'work', f'--config.data.data_dir={data_dir}', *overrides)
  assert message in _error_line(result)
  assert time.monotonic() - start < 60  # never the 200 s tfds network retry
  assert not list((tmp_path / 'work').glob('checkpoints/[0-9]*'))


@pytest.mark.parametrize('override, message', [
    ('--config.training.batchsize=8',
     'unknown config key --config.training.batchsize (did you mean batch_size?)'),
    ('--config.training.batch_size=eight', '--config.training.batch_size=eight: invalid literal'),
    ('--mode=serve', 'value should be one of <train|eval|sample|sweep>'),
])
def test_unknown_config_keys_and_wrong_types_fail(tmp_path, override, message):
  assert message in _error_line(run_main(tmp_path, override))


def test_two_hosts_train_sample_and_evaluate_as_one_host_does(reference, tmp_path, data_dir):
  # Two processes of two CPU devices each, joined by jax.distributed: the same losses
  # as one process of four, and every host gets the same samples and metrics.
  with socket.socket() as s:
    s.bind(('localhost', 0))
    port = s.getsockname()[1]
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  env['PYTHONPATH'] = str(ROOT)
  processes = [subprocess.Popen([sys.executable, 'tests/multihost_worker.py', str(i), str(port),
                                 str(tmp_path), data_dir], cwd=ROOT, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for i in range(2)]
  outputs = [p.communicate(timeout=300) for p in processes]
  for p, (_, err) in zip(processes, outputs, strict=True):
    assert p.returncode == 0, err[-3000:]
  results = [json.loads(next(line for line in out.splitlines() if line.startswith('result '))[7:])
             for out, _ in outputs]
  for result in results:  # the one measurement that may differ
    assert result['metrics'].pop('seconds') > 0
  assert results[0]['devices'] == 4 and results[0] == results[1]
  losses, reference_losses = _losses(tmp_path), _losses(reference[0])
  np.testing.assert_allclose([losses[s] for s in sorted(reference_losses)],
                             [reference_losses[s] for s in sorted(reference_losses)], rtol=1e-5)


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


def test_unwritable_workdir_fails_with_one_line(tmp_path):
  blocker = tmp_path / 'file'
  blocker.write_text('not a directory')
  assert 'not writable' in _error_line(run_main(blocker / 'workdir'))


def _snapshot(workdir: pathlib.Path) -> dict[str, bytes]:
  return {str(p.relative_to(workdir)): p.read_bytes()
          for p in sorted((workdir / 'checkpoints').rglob('*')) if p.is_file()}


@pytest.fixture
def trained_copy(reference, tmp_path) -> pathlib.Path:
  workdir = tmp_path / 'copy'
  shutil.copytree(reference[0], workdir)
  return workdir


def test_mismatched_checkpoint_fails_and_is_left_intact(trained_copy, data_dir):
  before = _snapshot(trained_copy)
  result = run_main(trained_copy, f'--config.data.data_dir={data_dir}', '--config.model.nf=16',
                    '--mode=sample')
  assert 'does not match the configured model' in _error_line(result)
  assert _snapshot(trained_copy) == before


def test_a_checkpoint_of_another_task_fails_naming_both_trees(trained_copy, data_dir):
  config = tiny_config(data_dir)
  config.training.task = 'classifier'
  config.model.num_outputs = 10
  config.eval.metrics = ('loss', 'accuracy')
  with pytest.raises(run_lib.JobError, match=r"holds the parameter trees \[score\], the "
                                             r"configured task \['classifier'\]"):
    run_lib.Job(config, str(trained_copy)).restore()


def test_corrupt_checkpoint_fails_and_is_left_intact(trained_copy, data_dir):
  latest = trained_copy / 'checkpoints' / '6'
  for path in latest.rglob('*'):
    if path.is_file() and path.stat().st_size > 64 and 'ocdbt' in str(path):
      path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
  before = _snapshot(trained_copy)
  result = run_main(trained_copy, f'--config.data.data_dir={data_dir}', '--mode=sample')
  assert 'cannot restore checkpoint 6' in _error_line(result)
  assert _snapshot(trained_copy) == before


def test_non_finite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(
    trained_copy, data_dir):
  result = run_main(trained_copy, f'--config.data.data_dir={data_dir}',
                    '--config.training.n_iters=30', '--config.optim.lr=1e30')
  line = _error_line(result)
  assert 'non-finite' in line and 'at step' in line
  steps = sorted(int(p.name) for p in (trained_copy / 'checkpoints').iterdir()
                 if p.name.isdigit())
  config = tiny_config(data_dir)
  job_state = run_lib.restore_checkpoint(
      run_lib.checkpoint_manager(trained_copy, config.training.snapshot_freq),
      run_lib.Job(config, str(trained_copy)).abstract_state(), steps[-1])
  assert all(np.all(np.isfinite(p)) for p in _params(job_state))


def test_sweep_evaluates_sampler_points_trains_the_others_and_resumes(trained_copy, data_dir):
  config = tiny_config(data_dir)
  config.eval.metrics = ('loss', 'fid')
  config.sweep.x = 'sampling.n_steps'
  points = [{'sampling.method': 'ddim', 'sampling.n_steps': 2},
            {'sampling.method': 'ddim', 'sampling.n_steps': 4},
            {'sampling.method': 'unipc', 'sampling.n_steps': 3},
            {'training.n_iters': 3}]
  with pytest.raises(ValueError, match="unknown config key 'sampling.nsteps'"):
    run_lib.sweep(config, str(trained_copy), lambda: points + [{'sampling.nsteps': 3}])
  assert not (trained_copy / 'sweep' / 'points').exists() or not list(
      (trained_copy / 'sweep' / 'points').iterdir())

  config.sweep.index = 2  # one task of an array job: only that point
  [record] = run_lib.sweep(config, str(trained_copy), lambda: points)
  assert record['point'] == points[2] and record['nfe'] == 3 and record['step'] == 6
  assert len(list((trained_copy / 'sweep' / 'points').iterdir())) == 1

  config.sweep.index = -1
  records = run_lib.sweep(config, str(trained_copy), lambda: points)
  assert [r['point'] for r in records] == points
  assert [r['nfe'] for r in records[:3]] == [2, 4, 3]
  assert records[2] == record  # found, not run again
  assert records[3]['step'] == 3 and (trained_copy / 'sweep' / 'training.n_iters=3'
                                      / 'checkpoints').exists()
  out = trained_copy / 'sweep'
  table = (out / 'results.md').read_text().splitlines()
  assert table[0].startswith('| sampling.method | sampling.n_steps | training.n_iters | nfe | fd')
  assert len(table) == 2 + len(points)
  assert len((out / 'results.csv').read_text().splitlines()) == 1 + len(points)
  assert Image.open(out / 'results_fd.png').size[0] > 100
  stamps = {p.name: p.stat().st_mtime_ns for p in (out / 'points').iterdir()}
  run_lib.sweep(config, str(trained_copy), lambda: points)  # a re-run finds every point
  assert {p.name: p.stat().st_mtime_ns for p in (out / 'points').iterdir()} == stamps


def test_a_folder_of_images_with_another_channel_count_than_the_config_fails(tmp_path):
  for name in ('a.png', 'b.png'):
    Image.new('RGB', (8, 8), (10, 200, 30)).save(tmp_path / name)
  config = digits_ve.get_config('tiny')
  config.data.dataset = f'folder:{tmp_path}'
  with pytest.raises(ValueError, match=r'3-channel images but data.num_channels is 1: set '
                                       r'--config.data.num_channels=3'):
    run_lib.create_dataset(config, tmp_path, 'train', 8)


def test_inpainting_keeps_the_known_pixels_and_writes_input_mask_and_completions(trained_copy,
                                                                                 data_dir):
  config = tiny_config(data_dir, n_iters=6)
  config.sampling.update(task='inpaint', mask='left', completions=3, num_samples=5)
  images = run_lib.sample(config, str(trained_copy))
  saved = np.load(trained_copy / 'samples' / 'inpaint_00000006.npz')
  np.testing.assert_array_equal(saved['images'], images)
  assert images.shape == (5, 8, 8, 1) and saved['originals'].shape == (2, 8, 8, 1)
  np.testing.assert_array_equal(saved['source'], [0, 0, 0, 1, 1])
  keep = saved['mask'].astype(bool)
  assert keep[:, 4:].all() and not keep[:, :4].any()  # 'left': the left half regenerated
  originals = saved['originals'][saved['source']]
  np.testing.assert_array_equal(images[:, keep], originals[:, keep])
  assert np.any(images[:, ~keep] != originals[:, ~keep])
  np.testing.assert_array_equal(saved['inputs'][:, keep], saved['originals'][:, keep])
  np.testing.assert_array_equal(saved['inputs'][:, ~keep], 128)  # mid-grey where regenerated
  # Two rows (one per test image) of original, input, mask and 3 completions, 16x enlarged.
  grid = Image.open(trained_copy / 'samples' / 'inpaint_00000006.png')
  assert grid.size == (16 * (6 * 9 + 1), 16 * (2 * 9 + 1))

  # A PNG mask: white pixels are regenerated.
  mask = np.zeros((8, 8), np.uint8)
  mask[2:5, 3:6] = 255
  Image.fromarray(mask).save(trained_copy / 'mask.png')
  config.sampling.update(mask=str(trained_copy / 'mask.png'), num_samples=2, completions=1)
  images = run_lib.sample(config, str(trained_copy))
  saved = np.load(trained_copy / 'samples' / 'inpaint_00000006.npz')
  np.testing.assert_array_equal(saved['mask'], mask == 0)
  np.testing.assert_array_equal(images[:, mask == 0], saved['originals'][:, mask == 0])


@pytest.mark.parametrize('sampling, message', [
    ({'task': 'outpaint'}, "unknown sampling.task 'outpaint'; known: ['', 'inpaint', 'colorize']"),
    ({'task': 'colorize'}, "sampling.task='colorize' needs colour images; 'digits' has 1 channel"),
    ({'task': 'inpaint', 'mask': 'middle'}, "unknown sampling.mask 'middle'; known: ['left'"),
    ({'task': 'inpaint', 'mask': 'small.png'}, 'is 4x4 pixels; the images are 8x8'),
    ({'task': 'inpaint', 'mask': 'missing.png'}, "sampling.mask file 'missing.png' does not exist"),
    ({'task': 'inpaint', 'mask': 'bad.png'}, "cannot read sampling.mask 'bad.png'"),
    ({'task': 'inpaint', 'completions': 0}, 'sampling.completions must be at least 1, got 0'),
])
def test_bad_completion_settings_fail_with_one_line(tmp_path, monkeypatch, data_dir, sampling,
                                                    message):
  monkeypatch.chdir(tmp_path)
  Image.new('L', (4, 4)).save('small.png')
  pathlib.Path('bad.png').write_text('not a png')
  config = tiny_config(data_dir)
  config.sampling.update(sampling)
  with pytest.raises((ValueError, run_lib.JobError)) as error:
    run_lib.Job(config, str(tmp_path / 'work'))
  assert message in str(error.value).splitlines()[0]


class _GaussianPixels(nn.Module):
  """sigma times the exact score of pixels ~ N(0.5, 0.1^2): a VE 'score' network scaled by
  sigma that needs no training and keeps samples inside [0, 1]."""

  @nn.compact
  def __call__(self, x, sigma, train=False):
    sigma = sigma[:, None, None, None]
    return -(x - 0.5) * sigma / (0.01 + sigma**2)


def test_colorization_of_a_folder_of_rgb_images_keeps_their_grey_level(tmp_path, data_dir):
  rng = np.random.default_rng(0)
  (tmp_path / 'images').mkdir()
  for i in range(10):  # 10 images: the folder's test split is 1 of them
    image = rng.integers(60, 196, (8, 8, 3), np.uint8)
    Image.fromarray(image).save(tmp_path / 'images' / f'{i}.png')
  config = tiny_config(data_dir)
  config.data.update(dataset=f'folder:{tmp_path / "images"}', num_channels=3)
  config.sampling.update(task='colorize', completions=4, num_samples=4)
  job = run_lib.Job(config, str(tmp_path / 'work'))
  job.task = dataclasses.replace(job.task, model=_GaussianPixels())
  done = complete(job, {'score': {}}, jax.random.key(0), 4)
  assert done.images.shape == (4, 8, 8, 3) and done.originals.shape == (1, 8, 8, 3)
  grey = lambda images: images.astype(np.float64).mean(-1)
  # uint8 rounding of each channel moves the mean by at most half a level.
  np.testing.assert_allclose(grey(done.images), np.broadcast_to(grey(done.originals), (4, 8, 8)),
                             atol=0.5 + 1e-6)
  assert np.abs(done.images.astype(int) - done.originals.astype(int)).max() > 10  # new colours
  np.testing.assert_allclose(done.inputs[..., 0], done.inputs[..., 2], atol=1)  # the grey input
  grid = completion_grid(job, done)  # original, input, 4 completions: no mask column
  assert grid.shape == (9 + 1, 6 * 9 + 1, 3)


@pytest.mark.parametrize('metrics, message', [
    (('loss', 'fid', 'bpd'), "unknown eval.metrics name 'bpd'; known: ['loss', 'bpd_ode'"),
    (('loss', 'accuracy'),
     "eval.metrics 'accuracy' does not apply to training.task='diffusion'; its metrics: "
     "['loss', 'bpd_ode'"),
    (('fid', 'fid'), "eval.metrics names a metric twice: ('fid', 'fid')"),
])
def test_bad_eval_metrics_name_the_metric_and_the_allowed_ones(tmp_path, data_dir, metrics,
                                                               message):
  config = tiny_config(data_dir)
  config.eval.metrics = metrics
  with pytest.raises(ValueError) as error:
    run_lib.Job(config, str(tmp_path))
  assert message in str(error.value)


def test_eval_metrics_and_levels_from_the_command_line(tmp_path, data_dir):
  # ml_collections reads a tuple override as one string: the names are split on commas.
  result = run_main(tmp_path, f'--config.data.data_dir={data_dir}', '--mode=eval',
                    '--config.eval.metrics=loss,accuracy')
  assert ("eval.metrics 'accuracy' does not apply to training.task='diffusion'"
          in _error_line(result))
  result = run_main(tmp_path, f'--config.data.data_dir={data_dir}', '--config.data.levels=1')
  assert 'data.levels must be an integer >= 2' in _error_line(result)
  assert not list(tmp_path.glob('checkpoints/[0-9]*'))
