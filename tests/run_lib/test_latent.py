"""Latent diffusion through the job: an autoencoder trained by LDM's loss, a score model on
its latents (the scale estimated from the data), sampling and evaluation in pixel space, a
converted PyTorch autoencoder, and the bad inputs of both stages."""

import json
import pathlib
import subprocess

import jax
import numpy as np
import pytest
from PIL import Image

import run_lib
from configs.latent import digits_ae, digits_ldm
from tests.run_lib import jobs

pytestmark = pytest.mark.usefixtures('digits_classifier_trained_once')

WEIGHTS = jobs.ROOT / 'tests' / 'testdata' / 'vae_diffusers_tiny.safetensors'


def ae_config(data_dir: str):
  config = digits_ae.get_config('tiny')
  config.data.data_dir = data_dir
  config.training.n_iters = 3
  config.eval.batch_size = 160
  return config


def ldm_config(data_dir: str, autoencoder):
  config = digits_ldm.get_config('tiny')
  config.data.data_dir = data_dir
  config.latent.autoencoder_workdir = str(autoencoder)
  config.training.snapshot_sampling = False
  config.eval.num_samples = 8
  return config


@pytest.fixture(scope='module')
def autoencoder(tmp_path_factory, data_dir) -> pathlib.Path:
  workdir = tmp_path_factory.mktemp('digits_ae')
  jobs.train(ae_config(data_dir), workdir)
  return workdir


@pytest.fixture(scope='module')
def latent(tmp_path_factory, data_dir, autoencoder) -> pathlib.Path:
  workdir = tmp_path_factory.mktemp('digits_ldm')
  jobs.train(ldm_config(data_dir, autoencoder), workdir)
  return workdir


def test_the_autoencoder_trains_with_its_gan_logs_its_terms_and_evaluates(autoencoder,
                                                                         data_dir):
  lines = [json.loads(line) for line in (autoencoder / 'log.jsonl').read_text().splitlines()]
  terms = [line for line in lines if 'loss' in line]
  for key in ('rec', 'nll', 'kl', 'g', 'd', 'd_weight', 'logvar', 'disc_active', 'grad_norm'):
    assert all(np.isfinite(line[key]) for line in terms), key
  assert terms[-1]['disc_active'] == 1.0  # disc_start = 1 in the tiny config
  assert json.loads((autoencoder / 'finished.json').read_text())['step'] == 3
  [metrics] = jobs.evaluate(ae_config(data_dir), autoencoder).values()
  for key in ('test_loss', 'rec_mse', 'rec_l1', 'psnr', 'rfd'):
    assert np.isfinite(metrics[key]), key
  assert metrics['psnr'] == pytest.approx(-10 * np.log10(metrics['rec_mse']), abs=3.0)
  assert (autoencoder / 'eval' / 'reconstructions_00000003.png').exists()
  assert jobs.only(autoencoder / 'eval', 'digits_classifier.npz').exists()  # the rfd's features


def test_sampling_an_autoencoder_says_what_to_do_instead(autoencoder, data_dir):
  line = jobs.error_line(jobs.run_main(autoencoder, f'--config.data.data_dir={data_dir}',
                                       '--mode=sample', devices=1,
                                       config='configs/latent/digits_ae.py:tiny'))
  assert 'trains an autoencoder' in line and 'nothing to sample' in line
  assert f'--config.latent.autoencoder_workdir={autoencoder}' in line


def test_the_latent_model_holds_its_autoencoder_and_a_scale_that_whitens_its_latents(
    latent, autoencoder, data_dir):
  job = run_lib.build(ldm_config(data_dir, autoencoder), str(latent))
  state = job.restore()
  first_stage = run_lib.build(ae_config(data_dir), str(autoencoder)).restore()
  for a, b in zip(jax.tree.leaves(state.params['autoencoder']),
                  jax.tree.leaves(first_stage.ema_params['autoencoder']), strict=True):
    np.testing.assert_array_equal(a, b)  # copied, and not trained
  # The scale was estimated on the first 8 training batches; on 8 others the scaled latents
  # have std 1 within sampling error.
  data = job.data.open('train', 128)
  latents = np.concatenate([np.asarray(job.task.encode(
      state.params, data.batch(100 + i)['image'], jax.random.key(i))) for i in range(8)])
  assert latents.std() == pytest.approx(1.0, abs=0.05)
  assert float(state.params['latent']['scale']) != 1.0


def test_a_latent_model_samples_decoded_images_and_evaluates_in_pixel_space(latent, autoencoder,
                                                                          data_dir):
  job = run_lib.build(ldm_config(data_dir, autoencoder), str(latent))
  images = run_lib.sample(job)
  assert images.shape == (4, 8, 8, 1) and images.dtype == np.uint8
  strip = Image.open(jobs.only(latent / 'samples', 'trajectory_00000002_*.png'))  # decoded
  assert strip.size == (16 * (3 * 9 + 1), 16 * (8 * 9 + 1))
  [metrics] = run_lib.evaluate(job).values()
  for key in ('test_loss', 'fd', 'kid', 'rec_mse', 'rfd'):
    assert np.isfinite(metrics[key]), key


def test_a_pytorch_autoencoder_from_safetensors_drives_a_latent_model(tmp_path, data_dir):
  # The tiny random diffusers VAE of tests/models (RGB, f = 4, 2 latent channels, 2 groups):
  # a folder of 8x8 RGB images has 2x2x2 latents.
  rng = np.random.default_rng(0)
  (tmp_path / 'images').mkdir()
  for i in range(12):
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), np.uint8)).save(
        tmp_path / 'images' / f'{i}.png')
  config = digits_ldm.get_config('tiny')
  config.data.update(dataset=f'folder:{tmp_path / "images"}', num_channels=3)
  config.latent.update(autoencoder_workdir='', autoencoder_weights=str(WEIGHTS))
  config.autoencoder.norm_groups = 2
  # What this test is about is the first stage: no test losses, grids or trajectory.
  config.training.update(batch_size=4, snapshot_sampling=False, eval_freq=0)
  config.sampling.trajectory_frames = 0
  job = run_lib.build(config, str(tmp_path / 'work'))
  run_lib.train(job)
  images = run_lib.sample(job)
  assert images.shape == (4, 8, 8, 3)
  assert job.task.sample_shape(job.image_shape) == (2, 2, 2)
  assert set(job.restore().params) == {'score', 'autoencoder', 'latent'}


@pytest.mark.parametrize('case, message', [
    ('missing', "latent.autoencoder_workdir '{ae}' has no config.json: train an autoencoder "
                'there first'),
    ('unfinished', "the autoencoder in '{ae}' is unfinished (checkpoint 3 of "
                   'training.n_iters=3): finish its training first'),
    ('another_size', "the autoencoder in '{ae}' was trained on images (8, 8, 1)"),
    ('not_an_autoencoder', "latent.autoencoder_workdir '{ae}' holds a diffusion job, not an "
                           'autoencoder'),
    ('both', "training.task='latent' needs its autoencoder: set one of"),
    ('rgb_weights', "takes 3-channel images; the data have 1 (data.num_channels)"),
    ('bad_weights', 'latent.autoencoder_weights'),
])
def test_bad_latent_settings_fail_with_one_line_and_write_nothing(tmp_path, data_dir, autoencoder,
                                                                 case, message):
  config = ldm_config(data_dir, autoencoder)
  ae, weights = autoencoder, ''
  if case == 'missing':
    ae = tmp_path / 'nowhere'
  elif case == 'unfinished':  # its checkpoints without the marker of a training that ended
    ae = tmp_path / 'unfinished'
    ae.mkdir()
    for name in ('config.json', 'checkpoints'):
      subprocess.run(['cp', '-r', str(autoencoder / name), str(ae)], check=True)
  elif case == 'another_size':
    config.data.image_size = 16
  elif case == 'not_an_autoencoder':
    ae = tmp_path / 'diffusion'
    ae.mkdir()
    saved = json.loads(digits_ldm.get_config('tiny').to_json())
    saved['training']['task'] = 'diffusion'
    (ae / 'config.json').write_text(json.dumps(saved))
  elif case == 'both':
    weights = str(WEIGHTS)
  else:
    bad = tmp_path / 'bad.safetensors'
    bad.write_bytes(b'not a safetensors file')
    ae, weights = '', str(WEIGHTS if case == 'rgb_weights' else bad)
    config.autoencoder.norm_groups = 2
  config.latent.update(autoencoder_workdir=str(ae), autoencoder_weights=weights)
  jobs.expect_job_error(config, tmp_path / 'work', message.format(ae=ae))


@pytest.mark.parametrize('overrides, message', [
    ({'autoencoder.disc_layers': 2},
     'autoencoder.disc_layers=2 leaves no patches of 8x8 images (at most 1; 0 for no '
     'discriminator)'),
    ({'autoencoder.ch_mult': (1, 2, 2, 2, 2)},
     'autoencoder.ch_mult=(1, 2, 2, 2, 2) downsamples by f = 16, which does not divide '
     'data.image_size=8'),
    ({'autoencoder.norm_groups': 3}, 'autoencoder.norm_groups=3 must divide every width [8, 16]'),
    ({'autoencoder.rec_loss': 'l3'}, "unknown autoencoder.rec_loss 'l3'; known: ['l1', 'l2']"),
    ({'autoencoder.attn_resolutions': (3,)}, 'autoencoder.attn_resolutions: attn_resolutions [3]'),
    ({'autoencoder.lpips_weights': 'lpips.safetensors'},
     'autoencoder.lpips_weights: LPIPS (VGG16) needs images of at least 16x16, not 8x8'),
    ({'text.layers': 1}, "text.layers > 0 conditions a score network, not training.task="
                         "'autoencoder'"),
    ({'eval.metrics': ('fid',)}, "eval.metrics 'fid' does not apply to training.task="
                                 "'autoencoder'; its metrics: ['loss', 'reconstruction']"),
])
def test_bad_autoencoder_settings_name_the_key(tmp_path, overrides, message):
  jobs.expect_build_error(jobs.override(digits_ae.get_config('tiny'), overrides), tmp_path,
                          message)
