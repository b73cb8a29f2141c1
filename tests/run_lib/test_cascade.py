"""Cascades through the job: an upsampler's snapshots of test images, a base and an
upsampler sampled and evaluated as one, each stage with its own sampler, and bases that
do not fit. The stages draw images of H != W (4x8 and 8x16), the general case."""

import json
import pathlib

import numpy as np
import pytest
from PIL import Image

import run_lib
from configs.cascade import digits_4, digits_sr
from configs.text import digit_pairs_sr
from run_lib import io
from run_lib.errors import JobError
from run_lib.evaluate import consistency_mse
from tests.run_lib import jobs

pytestmark = pytest.mark.usefixtures('digits_classifier_trained_once')


def _rectangular(config, size):
  """The config on images of `size` (the digits' central rows; an upsampler's input half)."""
  config.data.image_size = size
  if config.training.task == 'super_resolution':
    config.conditioning.low_size = (size[0] // 2, size[1] // 2)
  return config


@pytest.fixture(scope='module')
def cascade(tmp_path_factory, data_dir) -> tuple[pathlib.Path, pathlib.Path]:
  base, upsampler = tmp_path_factory.mktemp('base4'), tmp_path_factory.mktemp('sr')
  for config, workdir in ((_rectangular(digits_4.get_config('tiny'), (4, 8)), base),
                          (_rectangular(digits_sr.get_config('tiny'), (8, 16)), upsampler)):
    config.data.data_dir = data_dir
    config.training.snapshot_sampling = workdir == upsampler  # its snapshots: test images
    jobs.train(config, workdir)
  return base, upsampler


def cascade_config(data_dir, base, **sampling_options):
  config = _rectangular(digits_sr.get_config('tiny'), (8, 16))
  config.data.data_dir = data_dir
  config.sampling.update(method='ddim', n_steps=3, cascade_from=str(base), **sampling_options)
  config.eval.num_samples = 8
  config.eval.metrics = ('loss', 'fid')
  return config


def test_the_upsampler_snapshots_upsample_test_images(cascade):
  _, upsampler = cascade
  assert (upsampler / 'samples' / 'step_00000002.png').exists()


def test_a_cascade_samples_each_stage_with_its_own_sampler(cascade, data_dir, capsys):
  base, upsampler = cascade
  images = jobs.sample(cascade_config(data_dir, base), upsampler)
  path = jobs.only(upsampler / 'samples', 'samples_00000002_*.npz')
  saved = np.load(path)
  assert images.shape == (4, 8, 16, 1) and saved['stage0_images'].shape == (4, 4, 8, 1)
  np.testing.assert_array_equal(saved['images'], images)
  # The base samples with its own config (PC, its N = 10 levels), the upsampler with DDIM.
  assert '(10 + 3 score evaluations each, base first, ddim)' in capsys.readouterr().out
  name = path.stem.replace('samples_', '')
  for kind in ('stage0', 'cascade', 'samples'):
    assert (upsampler / 'samples' / f'{kind}_{name}.png').exists(), kind
  record = json.loads(path.with_suffix('.json').read_text())
  assert record['base']['workdir'] == str(base) and record['base']['sampler']['method'] == 'pc'
  strip = Image.open(upsampler / 'samples' / f'cascade_{name}.png')
  assert strip.size == (io.png_scale(8) * (4 * 17 + 1), io.png_scale(8) * (2 * 9 + 1))


def test_base_overrides_change_the_base_stage_only(cascade, data_dir, capsys):
  base, upsampler = cascade
  jobs.sample(cascade_config(data_dir, base, base_overrides='sampling.n_steps=5'), upsampler)
  assert '(5 + 3 score evaluations each' in capsys.readouterr().out


def test_a_cascade_is_evaluated_on_its_final_images(cascade, data_dir):
  base, upsampler = cascade
  metrics = jobs.evaluate(cascade_config(data_dir, base), upsampler)[2]
  assert metrics['nfe_stage0'] == 10 and metrics['nfe'] == 3
  assert 0.0 <= metrics['consistency_mse'] < 1.0 and np.isfinite(metrics['fd'])


def test_consistency_is_the_mse_of_the_downsampled_images():
  # Constant images stay constant when downsampled: the error is that of the levels.
  levels = np.array([0, 100, 255], np.uint8)[:, None, None, None]
  lows = np.broadcast_to(levels, (3, 4, 4, 1))
  assert consistency_mse(np.broadcast_to(levels, (3, 8, 8, 1)), lows) == pytest.approx(
      0.0, abs=1e-12)
  assert consistency_mse(np.zeros((3, 8, 8, 1), np.uint8), lows) == pytest.approx(
      np.mean((levels / 255.0) ** 2), rel=1e-5)


@pytest.mark.parametrize('overrides, message', [
    ({'cascade_from': ''}, 'samples from a base model'),
    ({'cascade_from': '/nonexistent/base'}, 'has no config.json'),
    ({'base_overrides': 'sampling.n_step=5'}, 'no key .sampling.n_step.'),
    ({'base_overrides': 'sampling.n_steps'}, 'is not key=value'),
    ({'base_overrides': 'sampling.method=3'}, 'sampling.method is a str'),
])
def test_bad_cascades_name_the_problem(cascade, data_dir, overrides, message):
  base, upsampler = cascade
  config = cascade_config(data_dir, base)
  config.sampling.update(overrides)
  with pytest.raises((JobError, ValueError), match=message):
    jobs.sample(config, upsampler)


def test_a_base_of_another_size_or_without_captions_is_refused(cascade, data_dir, tmp_path,
                                                               pairs_data_dir):
  base, upsampler = cascade
  # The 4x8 base cannot feed an 8x8 -> 16x16 upsampler, nor a text upsampler at all.
  config = jobs.text_config(pairs_data_dir, digit_pairs_sr, cascade_from=str(base))
  job = run_lib.build(config, str(tmp_path))
  with pytest.raises(JobError,
                     match=r'samples images \(4, 8, 1\); the upsampler takes \(8, 8, 1\)'):
    job.base()
  _rectangular(config, (8, 16))
  job = run_lib.build(config, str(tmp_path / 'other'))
  with pytest.raises(JobError, match='reads none: a text cascade needs the same tokens'):
    job.base()


@pytest.mark.parametrize('low_size, message', [
    ((4, 4), 'conditioning.low_size=(4, 4) has another aspect ratio than data.image_size=(8, '
             '16): an upsampler enlarges the whole image'),
    ((8, 8), "needs conditioning.low_size in [1, data.image_size=(8, 16))"),
    (0, "needs conditioning.low_size in [1, data.image_size=(8, 16))"),
])
def test_an_upsampler_of_another_aspect_ratio_or_size_is_refused(tmp_path, low_size, message):
  config = _rectangular(digits_sr.get_config('tiny'), (8, 16))
  config.conditioning.low_size = low_size
  jobs.expect_build_error(config, tmp_path, message)


def test_a_base_without_a_checkpoint_is_refused(cascade, data_dir, tmp_path):
  base, upsampler = cascade
  empty = tmp_path / 'untrained'
  empty.mkdir()
  (empty / 'config.json').write_text((base / 'config.json').read_text())
  with pytest.raises(JobError, match='no checkpoint in .*train the base model first'):
    jobs.sample(cascade_config(data_dir, empty), upsampler)
