"""Sampling and evaluating the tiny digits model through the job: the files of --mode
sample and --mode eval, named by their settings; inpainting and colorization."""

import dataclasses
import json

import flax.linen as nn
import jax
import numpy as np
import pytest
from PIL import Image

import run_lib
from run_lib.sample import complete, completion_grid
from tests.run_lib import jobs

pytestmark = pytest.mark.usefixtures('digits_classifier_trained_once')


def test_trajectory_strip_puts_each_samples_predictions_under_its_states():
  states = np.zeros((3, 2, 4, 4, 1), np.uint8)  # [F, R, H, W, C]
  denoised = np.full_like(states, 255)
  denoised[:, 1] = 200
  strip = run_lib.trajectory_strip(states, denoised)[..., 0]
  assert strip.shape == (4 * 5 + 1, 3 * 5 + 1)
  tile_rows = [strip[1 + 5 * r:5 + 5 * r, 1:-1] for r in range(4)]
  assert [np.unique(row[row != 128]).tolist() for row in tile_rows] == [[0], [255], [0], [200]]


def test_sample_and_eval_from_the_checkpoint(tiny_workdir, data_dir):
  workdir = tiny_workdir
  config = jobs.tiny_config(data_dir)
  images = jobs.sample(config, workdir)
  assert images.shape == (4, 8, 8, 1) and images.dtype == np.uint8
  saved = jobs.only(workdir / 'samples', 'samples_00000002_*.npz')
  np.testing.assert_array_equal(np.load(saved)['images'], images)
  record = json.loads(saved.with_suffix('.json').read_text())
  assert record['step'] == 2 and record['sampler']['method'] == 'pc'
  assert record['num_samples'] == 4
  # 3 frames of 4 samples, each a row of states over a row of predictions, 16x enlarged.
  strip = Image.open(saved.with_name(saved.name.replace('samples_', 'trajectory_')
                                     ).with_suffix('.png'))
  assert strip.size == (16 * (3 * 9 + 1), 16 * (8 * 9 + 1))
  results = jobs.evaluate(config, workdir)
  metrics = json.loads(jobs.only(workdir / 'eval', 'step_00000002_*.json').read_text())
  assert results[2] == {k: v for k, v in metrics.items() if k != 'settings'}
  assert [name for name, _ in metrics['settings']['evaluators']] == ['loss', 'bpd_ode', 'fid']
  for key in ('test_loss', 'bpd_ode', 'fd', 'kid', 'is'):
    assert np.isfinite(metrics[key]), key
  assert metrics['bpd_ode'] > 0
  # A second evaluation of the same settings finds the first; with others it is its own.
  assert jobs.evaluate(config, workdir) == results
  config.eval.metrics = ('loss',)
  again = jobs.evaluate(config, workdir)
  assert again[2]['test_loss'] == results[2]['test_loss'] and 'fd' not in again[2]
  assert len(list((workdir / 'eval').glob('step_00000002_*.json'))) == 2


def test_runs_of_other_settings_write_files_of_their_own(tiny_workdir, data_dir):
  config = jobs.tiny_config(data_dir)
  config.sampling.trajectory_frames = 0
  first = jobs.sample(config, tiny_workdir)
  config.sampling.update(method='ddim', n_steps=3, num_samples=8)
  second = jobs.sample(config, tiny_workdir)
  saved = sorted((tiny_workdir / 'samples').glob('samples_00000002_*.npz'))
  assert len(saved) == 2
  by_count = {len(np.load(path)['images']): np.load(path)['images'] for path in saved}
  np.testing.assert_array_equal(by_count[4], first)
  np.testing.assert_array_equal(by_count[8], second)
  # The same settings again: the same files, rewritten with the same samples.
  np.testing.assert_array_equal(jobs.sample(config, tiny_workdir), second)
  assert sorted((tiny_workdir / 'samples').glob('samples_00000002_*.npz')) == saved


def test_inpainting_keeps_the_known_pixels_and_writes_input_mask_and_completions(tiny_workdir,
                                                                                 data_dir):
  config = jobs.tiny_config(data_dir)
  config.sampling.update(task='inpaint', mask='left', completions=3, num_samples=5)
  images = jobs.sample(config, tiny_workdir)
  path = jobs.only(tiny_workdir / 'samples', 'inpaint_00000002_*.npz')
  saved = np.load(path)
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
  grid = Image.open(path.with_suffix('.png'))
  assert grid.size == (16 * (6 * 9 + 1), 16 * (2 * 9 + 1))

  # A PNG mask: white pixels are regenerated.
  mask = np.zeros((8, 8), np.uint8)
  mask[2:5, 3:6] = 255
  Image.fromarray(mask).save(tiny_workdir / 'mask.png')
  config.sampling.update(mask=str(tiny_workdir / 'mask.png'), num_samples=2, completions=1)
  images = jobs.sample(config, tiny_workdir)
  [path] = set(tiny_workdir.glob('samples/inpaint_00000002_*.npz')) - {path}
  saved = np.load(path)
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
  (tmp_path / 'bad.png').write_text('not a png')
  config = jobs.tiny_config(data_dir)
  config.sampling.update(sampling)
  jobs.expect_build_error(config, tmp_path / 'work', message, (ValueError, run_lib.JobError))


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
  config = jobs.tiny_config(data_dir)
  config.data.update(dataset=f'folder:{tmp_path / "images"}', num_channels=3)
  config.sampling.update(task='colorize', completions=4, num_samples=4)
  job = run_lib.build(config, str(tmp_path / 'work'))
  job = dataclasses.replace(job, task=dataclasses.replace(job.task, model=_GaussianPixels()))
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
