"""Building a job: a frozen Job of built parts with no ConfigDict, each task's parts from its
constructor, and bad settings, checkpoints and data refused in one line before anything
is written."""

import dataclasses
import json

import ml_collections
import numpy as np
import pytest
from PIL import Image

import run_lib
import tasks
from configs.digits import vp_learned
from configs.guided import digits_cfg
from configs.latent import digits_ae
from configs.mnist import ae as mnist_ae
from configs.mnist import ldm as mnist_ldm
from configs.mnist import pixel as mnist_pixel
from configs.text import digit_pairs_sr
from run_lib import builder, stages
from run_lib.evaluate import VariationalBound
from tests.run_lib import jobs


def _fields_hold_no_config(value, seen) -> bool:
  """Whether no dataclass field, tuple, dict or closure inside value holds a ConfigDict."""
  if id(value) in seen:
    return True
  seen.add(id(value))
  if isinstance(value, ml_collections.ConfigDict):
    return False
  if dataclasses.is_dataclass(value) and not isinstance(value, type):
    return all(_fields_hold_no_config(getattr(value, f.name), seen)
               for f in dataclasses.fields(value))
  if isinstance(value, (tuple, list)):
    return all(_fields_hold_no_config(v, seen) for v in value)
  if isinstance(value, dict):
    return all(_fields_hold_no_config(v, seen) for v in value.values())
  if callable(value):
    inner = getattr(value, '__wrapped__', value)  # functools.cache
    parts = list(getattr(inner, 'args', ())) + list(getattr(inner, 'keywords', {}).values())
    cells = getattr(inner, '__closure__', None) or ()
    return all(_fields_hold_no_config(v, seen) for v in parts + [c.cell_contents for c in cells])
  return True


@pytest.mark.parametrize('config', [
    jobs.tiny_config(''), digits_cfg.get_config('tiny'), vp_learned.get_config('tiny'),
    digits_ae.get_config('tiny'),
    jobs.override(digit_pairs_sr.get_config('tiny'), {'sampling.cascade_from': '/a/base'}),
], ids=['ve', 'cfg', 'learned', 'autoencoder', 'upsampler'])
def test_a_job_is_frozen_and_holds_no_config(tmp_path, config):
  job = run_lib.build(config, str(tmp_path))
  with pytest.raises(dataclasses.FrozenInstanceError):
    job.seed = 1
  assert _fields_hold_no_config(job, set())


def test_each_task_gets_what_fills_its_frozen_trees(tmp_path):
  assert run_lib.build(jobs.tiny_config(''), str(tmp_path / 'a')).fill_frozen is None
  ae = digits_ae.get_config('tiny')
  assert run_lib.build(ae, str(tmp_path / 'b')).fill_frozen is None  # no LPIPS at 8x8
  ae.data.image_size = 16
  ae.autoencoder.lpips_weights = '/weights/lpips.safetensors'
  job = run_lib.build(ae, str(tmp_path / 'c'))
  assert job.task.frozen == ('lpips',)
  assert job.fill_frozen == stages.LpipsWeights('/weights/lpips.safetensors')
  with pytest.raises(run_lib.JobError, match="autoencoder.lpips_weights '/weights/lpips"):
    job.frozen_params(None)


def test_every_training_task_has_its_constructor():
  assert list(builder.TASK_BUILDERS) == list(tasks.TASKS)


@pytest.mark.parametrize('sampling, message', [
    ({'method': 'leapfrog'}, "unknown sampling.method 'leapfrog'; known: ['ddim', 'dpm_solver_pp'"),
    ({'method': 'unipc', 'order': 4}, 'sampling.* (unipc): order must be one of [1, 2, 3], got 4'),
    ({'method': 'ddim', 'n_steps': 0},
     'sampling.* (ddim): n_steps must be a positive integer, got 0'),
    ({'schedule': 'karras'},
     "sampling.* (pc): schedule 'karras' does not fit sampler 'pc'; allowed: ['uniform']"),
    ({'method': 'ode', 'schedule': 'logsnr'},
     "schedule 'logsnr' does not fit sampler 'ode' (ODE solver 'dopri5'); allowed: ['uniform']"),
    ({'method': 'ode', 'n_steps': 1}, 'ode solves from T to eps, then denoises: n_steps must be '
                                      'at least 2, got 1'),
    ({'schedule': 'cosine'}, "unknown sampling.schedule 'cosine'; known: ['karras'"),
    ({'method': 'ddim', 'eta': 2.0}, 'eta must lie in [0, 1], got 2.0'),
    ({'method': 'ddim', 'eps': 1.5}, 'eps must lie in [0, T=1.0)'),
    ({'method': 'pc', 'n_steps': 1}, 'pc needs at least 2 levels'),
    ({'num_samples': 0}, 'sampling.num_samples must be at least 1, got 0'),
    ({'cascade_from': '/a/base'}, "sampling.cascade_from names the base stage of an upsampler"),
])
def test_bad_sampler_settings_name_the_value_and_the_allowed_ones(tmp_path, sampling, message):
  # main.py prints these ValueErrors as its one error line.
  config = jobs.tiny_config('')
  config.sampling.update(sampling)
  jobs.expect_build_error(config, tmp_path, message)


@pytest.mark.parametrize('model, message', [
    # The tiny digits network: nf 8, one level, its middle attention block 8 channels wide.
    ({'attn_head_channels': 3}, 'model.attn_head_channels=3 must divide the width of every '
                                'attention layer: [8]'),
    ({'attn_head_channels': -4}, 'model.attn_head_channels=-4 must divide'),
])
def test_bad_attention_settings_name_the_value(tmp_path, model, message):
  config = jobs.tiny_config('')
  config.model.update(model)
  jobs.expect_build_error(config, tmp_path, message)


@pytest.mark.parametrize('image_size, shown', [(28, '28x28'), ((16, 28), '16x28')])
def test_a_unet_whose_downsampling_does_not_divide_the_images_fails_naming_both(
    tmp_path, image_size, shown):
  config = mnist_pixel.get_config('tiny')
  config.data.image_size = image_size
  config.model.ch_mult = (1, 2, 2, 2)  # 28 -> 14 -> 7 -> 3.5
  jobs.expect_build_error(config, tmp_path, 'model.ch_mult=(1, 2, 2, 2) downsamples by 8, '
                          f'which does not divide data.image_size ({shown})')


@pytest.mark.parametrize('image_size', ['28', (0, 8), (28, 56, 1), 2.5])
def test_a_bad_image_size_names_the_key(tmp_path, image_size):
  config = jobs.tiny_config('')
  config.data.image_size = image_size
  jobs.expect_build_error(config, tmp_path, 'data.image_size must be a side or (height, '
                          f'width), each at least 1 pixel, got {image_size!r}')


def test_a_unet_whose_downsampling_does_not_divide_the_latents_fails_naming_them():
  config = mnist_ldm.get_config('tiny')
  config.model.ch_mult = (1, 2)  # MNIST's autoencoder makes 7x7 latents
  first_stage = builder.first_stage_of(mnist_ae.get_config('tiny'), 'mnist_ae')
  with pytest.raises(ValueError, match=r"model.ch_mult=\(1, 2\) downsamples by 2, which does "
                                       r"not divide the autoencoder's latents \(7x7\)"):
    builder.create_task(config, first_stage=first_stage)


@pytest.mark.parametrize('training, message', [
    ({'loss_weighting': 'snr'}, "unknown training.loss_weighting 'snr'; known: ['noise', "),
    ({'loss_weighting': 'v', 'continuous': False},
     "training.loss_weighting='v' needs training.continuous=True"),
])
def test_bad_loss_weightings_name_the_value(tmp_path, training, message):
  config = jobs.tiny_config('')
  config.training.update(training)
  jobs.expect_build_error(config, tmp_path, message)


@pytest.mark.parametrize('metrics, message', [
    (('loss', 'fid', 'bpd'), "unknown eval.metrics name 'bpd'; known: ['loss', 'bpd_ode'"),
    (('loss', 'accuracy'),
     "eval.metrics 'accuracy' does not apply to training.task='diffusion'; its metrics: "
     "['loss', 'bpd_ode'"),
    (('fid', 'fid'), "eval.metrics names a metric twice: ('fid', 'fid')"),
])
def test_bad_eval_metrics_name_the_metric_and_the_allowed_ones(tmp_path, metrics, message):
  config = jobs.tiny_config('')
  config.eval.metrics = metrics
  jobs.expect_build_error(config, tmp_path, message)


def test_eval_metrics_build_their_evaluators_with_their_settings(tmp_path):
  config = vp_learned.get_config('tiny')
  config.sde.N = 40  # a chain: betas below 1
  config.eval.update(metrics=('bpd_vlb, loss',), vlb_variance='beta', vlb_terms=3)
  evaluation = run_lib.build(config, str(tmp_path)).evaluation
  assert evaluation.names == ('bpd_vlb', 'loss')
  assert evaluation.evaluators[0] == VariationalBound('beta', 3, True)


def test_a_checkpoint_of_another_task_fails_naming_both_trees(tiny_workdir, data_dir):
  config = jobs.tiny_config(data_dir)
  config.training.task = 'classifier'
  config.model.num_outputs = 10
  config.eval.metrics = ('loss', 'accuracy')
  with pytest.raises(run_lib.JobError, match=r"holds the parameter trees \[score\], the "
                                             r"configured task \['classifier'\]"):
    run_lib.build(config, str(tiny_workdir)).restore()


def test_a_folder_of_images_with_another_channel_count_than_the_config_fails(tmp_path):
  (tmp_path / 'images').mkdir()
  for name in ('a.png', 'b.png'):
    Image.new('RGB', (8, 8), (10, 200, 30)).save(tmp_path / 'images' / name)
  config = jobs.tiny_config('')
  config.data.dataset = f'folder:{tmp_path / "images"}'
  with pytest.raises(ValueError, match=r'3-channel images but data.num_channels is 1: set '
                                       r'--config.data.num_channels=3'):
    run_lib.build(config, str(tmp_path / 'work')).data.open('train', 8)


def test_a_feature_classifier_reads_its_own_dataset_of_the_jobs_data_directory(tmp_path,
                                                                                  data_dir):
  data = run_lib.build(jobs.tiny_config(data_dir), str(tmp_path)).data
  plain = data.plain('digits', 8)
  assert (plain.data_dir, plain.centered, plain.random_flip, plain.num_channels) == (
      data_dir, False, False, None)
  examples = plain.examples('train', 100, limit=250)
  assert examples['image'].shape == (250, 8, 8, 1)
  assert 0.0 <= examples['image'].min() and examples['image'].max() <= 1.0
  np.testing.assert_array_equal(examples['image'], data.examples('train', 100,
                                                                 limit=250)['image'])


def test_a_samplers_settings_are_json_that_names_an_infinite_bound(tmp_path):
  config = jobs.tiny_config('')
  config.sampling.update(method='edm_heun', n_steps=5, schedule='karras')
  settings = run_lib.build(config, str(tmp_path)).sampler.settings()
  assert settings['s_max'] == 'inf' and settings['n_steps'] == 5
  assert json.loads(json.dumps(settings, allow_nan=False)) == settings
