"""Text-conditional and cascaded jobs: training with captions, sampling from a captions
file under classifier-free guidance on text, a cascade (base -> upsampler) in --mode sample
and eval, and their bad input."""

import dataclasses
import logging
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import run_lib
from configs.cascade import digits_4, digits_sr
from configs.digits import vp as digits_vp
from configs.text import digit_pairs, digit_pairs_sr
from run_lib import io
from run_lib.errors import JobError
from run_lib.evaluate import consistency_mse
from sde_lib import sampling
from tests.tasks.test_text_task import PooledMLP

pytestmark = pytest.mark.usefixtures('digits_classifier_trained_once')

ROOT = pathlib.Path(__file__).resolve().parents[1]


def text_config(data_dir: str, module=digit_pairs, **sampling_options):
  config = module.get_config('tiny')
  config.data.data_dir = data_dir
  config.text.max_len = 16
  config.sampling.update(sampling_options)
  return config


class _Warnings(logging.Handler):
  def __init__(self):
    super().__init__(logging.WARNING)
    self.messages = []

  def emit(self, record):
    self.messages.append(record.getMessage())


TRAINING_WARNINGS = _Warnings()


@pytest.fixture(scope='module')
def text_trained(tmp_path_factory, pairs_data_dir) -> pathlib.Path:
  """A 2-step text run whose captions longer than 15 bytes (most) were truncated."""
  workdir = tmp_path_factory.mktemp('text')
  logger = logging.getLogger('absl')
  logger.addHandler(TRAINING_WARNINGS)
  try:
    run_lib.train(text_config(pairs_data_dir), str(workdir))
  finally:
    logger.removeHandler(TRAINING_WARNINGS)
  return workdir


def test_training_reads_captions_with_its_own_encoder_tree(text_trained, pairs_data_dir):
  job = run_lib.Job(text_config(pairs_data_dir), str(text_trained))
  state = job.restore()
  assert sorted(state.params) == ['score', 'text']
  assert 'encoder_kv' in str(jax.tree_util.tree_structure(state.params['score']))
  # The snapshot grid: one of each of the first 4 test captions, each beside its row.
  grid = Image.open(text_trained / 'samples' / 'step_00000002.png')
  assert grid.height == io.png_scale(8) * (4 * 9 + 1)
  assert grid.width > 2 * io.png_scale(8) * (1 * 9 + 1)


def test_truncated_captions_are_counted_in_the_log(text_trained):
  # 8 captions a step, each logging step the count so far; a caption has 15 to 29 bytes.
  counts = [int(m.split()[0]) for m in TRAINING_WARNINGS.messages
            if 'were longer than text.max_len=16 tokens and truncated' in m]
  assert counts and counts == sorted(counts) and 8 < counts[-1] <= 16


def test_sample_draws_the_captions_of_a_file_one_row_each(text_trained, pairs_data_dir,
                                                           tmp_path):
  captions = tmp_path / 'prompts.txt'
  captions.write_text('left 3, right 7\n\nleft 1, right 2\n')
  config = text_config(pairs_data_dir, captions_file=str(captions), num_samples=4,
                                guidance_scale=3.0)
  images = run_lib.sample(config, str(text_trained))
  saved = np.load(text_trained / 'samples' / 'samples_00000002.npz')
  assert saved['captions'].tolist() == ['left 3, right 7'] * 2 + ['left 1, right 2'] * 2
  np.testing.assert_array_equal(saved['images'], images)
  assert images.shape == (4, 8, 8, 1)
  grid = Image.open(text_trained / 'samples' / 'samples_00000002.png')
  assert grid.height == io.png_scale(8) * (2 * 9 + 1)  # two rows, captions beside


def test_the_job_samples_under_classifier_free_guidance_on_the_captions(text_trained,
                                                                         pairs_data_dir):
  job = run_lib.Job(text_config(pairs_data_dir, guidance_scale=3.0),
                    str(text_trained))
  params = job.restore().ema_params
  # Two steps from zero-initialised last layers barely read the text: perturbed, they do.
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(0), len(leaves))
  params = jax.tree.unflatten(tree, [p + 0.3 * jax.random.normal(k, p.shape)
                                     for p, k in zip(leaves, keys, strict=True)])
  tokens = jnp.asarray(job.prompts.tokens[:2])
  x = jax.random.normal(jax.random.key(1), (2, 8, 8, 1))
  t = jnp.full((2,), 0.5)
  task = job.task
  conditional, unconditional, guided = jax.jit(lambda params: (
      task.score_fn(params, caption=task.encode_text(params, tokens))(x, t),
      task.score_fn(params)(x, t), job.sampling_score_fn(params, None, None, tokens)(x, t)))(
          params)
  assert float(jnp.max(jnp.abs(conditional - unconditional))) > 1e-3
  np.testing.assert_allclose(guided, unconditional + 3.0 * (conditional - unconditional),
                             rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('method', sorted(sampling.SAMPLERS))
def test_every_sampler_takes_the_text_guided_score(text_trained, pairs_data_dir, method):
  # A cheap network through the job's own guidance: its samples move with the scale.
  job = run_lib.Job(text_config(pairs_data_dir), str(text_trained))
  job.task = dataclasses.replace(job.task, model=PooledMLP())
  params = job.task.init(jax.random.key(2), (8, 8, 1))
  tokens = jnp.asarray(job.prompts.tokens[:4])
  x_T = job.sde.prior_sampling(jax.random.key(3), (4, 8, 8, 1))
  # Langevin steps would follow a random network's field anywhere: the config's predictor.
  options = {'pc': dict(predictor='euler_maruyama', corrector='none')}.get(method, {})
  out = {}
  for scale in (1.0, 4.0):
    job.conditioning = dataclasses.replace(job.conditioning, scale=scale)
    score_fn = job.sampling_score_fn(params, None, None, tokens)
    out[scale] = jax.jit(lambda rng, x: sampling.sample(method, rng, job.sde, score_fn, x,
                                                        n_steps=4, **options))(
        jax.random.key(4), x_T)
  if method != 'ode':  # (adaptive steps)
    assert out[1.0].nfe == out[4.0].nfe  # one (doubled) network call per evaluation
  assert np.all(np.isfinite(out[4.0].x))
  assert float(jnp.max(jnp.abs(out[4.0].x - out[1.0].x))) > 1e-3


def _write(path: pathlib.Path, text: str) -> str:
  path.write_text(text)
  return str(path)


@pytest.mark.parametrize('lines, message', [
    ('', 'has no captions'),
    ('\n  \n', 'has no captions'),
    ('a\nb\nc\nd\ne\n', 'has 5 captions but sampling.num_samples=4 draws only the first 4'),
    ('3 to the left of 7\n', 'caption on line 1 .* has 18 bytes; the model reads at most '
                              'text.max_len - 1 = 15'),
])
def test_bad_caption_files_name_the_problem(text_trained, pairs_data_dir, tmp_path, lines,
                                            message):
  config = text_config(pairs_data_dir, num_samples=4,
                                captions_file=_write(tmp_path / 'c.txt', lines))
  with pytest.raises(JobError, match=message):
    run_lib.sample(config, str(text_trained))


def test_a_missing_caption_file_is_named(text_trained, pairs_data_dir, tmp_path):
  config = text_config(pairs_data_dir, captions_file=str(tmp_path / 'none.txt'))
  with pytest.raises(JobError, match='none.txt.*does not exist'):
    run_lib.sample(config, str(text_trained))


@pytest.mark.parametrize('module, overrides, message', [
    (digit_pairs, {'data.caption_key': ''}, 'set data.caption_key'),
    (digits_vp, {'data.caption_key': 'caption'}, 'needs a text encoder'),
    (digits_vp, {'conditioning.caption_dropout': 0.2}, 'needs a text encoder'),
    (digit_pairs, {'text.tokenizer': 'gpt2'}, "unknown text.tokenizer 'gpt2'"),
    (digit_pairs, {'text.max_len': 1}, 'text.max_len must be at least 2'),
    (digit_pairs, {'text.heads': 3}, 'multiple of text.heads=3'),
    (digit_pairs, {'conditioning.caption_dropout': 1.5}, 'caption_dropout must be in'),
    (digit_pairs, {'model.num_classes': 10}, 'guided by its captions'),
    (digit_pairs, {'model.name': 'ncsnv2_64'}, 'needs a network with attention layers'),
    (digit_pairs_sr, {'conditioning.low_size': 16}, 'conditioning.low_size in [1, data.image_size'),
    (digit_pairs_sr, {'conditioning.aug_level': 2.0}, 'aug_level must be in [0, 1]'),
    (digit_pairs_sr, {'conditioning.aug_max': -0.1}, 'aug_max must be in [0, 1]'),
    (digit_pairs_sr, {'sampling.task': 'inpaint'}, 'not a training.task=.super_resolution'),
    (digits_vp, {'conditioning.low_size': 4}, "need training.task='super_resolution'"),
])
def test_bad_text_and_cascade_values_name_the_key(tmp_path, module, overrides, message):
  config = module.get_config('tiny')
  for key, value in overrides.items():
    section, name = key.split('.')
    config[section][name] = value
  with pytest.raises(ValueError, match=message.replace('[', r'\[').replace('(', r'\(')):
    run_lib.Job(config, str(tmp_path))


def test_a_caption_key_the_dataset_lacks_is_one_line_through_main(tmp_path, data_dir):
  result = subprocess.run(
      [sys.executable, 'main.py', '--config=configs/text/digit_pairs.py:tiny',
       f'--workdir={tmp_path}', '--config.data.dataset=digits',
       f'--config.data.data_dir={data_dir}'],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode != 0
  errors = [line for line in result.stderr.splitlines() if line.startswith('error:')]
  assert len(errors) == 1 and "'caption'" in errors[0] and 'image' in errors[0], result.stderr
  assert not list((tmp_path / 'checkpoints').glob('*'))


# ---------------------------------------------------------------------------------------
# Cascades.


@pytest.fixture(scope='module')
def cascade(tmp_path_factory, data_dir) -> tuple[pathlib.Path, pathlib.Path]:
  base, upsampler = tmp_path_factory.mktemp('base4'), tmp_path_factory.mktemp('sr')
  for config, workdir in ((digits_4.get_config('tiny'), base),
                          (digits_sr.get_config('tiny'), upsampler)):
    config.data.data_dir = data_dir
    config.training.snapshot_sampling = workdir == upsampler  # its snapshots: test images
    run_lib.train(config, str(workdir))
  return base, upsampler


def cascade_config(data_dir, base, **sampling_options):
  config = digits_sr.get_config('tiny')
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
  images = run_lib.sample(cascade_config(data_dir, base), str(upsampler))
  saved = np.load(upsampler / 'samples' / 'samples_00000002.npz')
  assert images.shape == (4, 8, 8, 1) and saved['stage0_images'].shape == (4, 4, 4, 1)
  np.testing.assert_array_equal(saved['images'], images)
  # The base samples with its own config (PC, its N = 10 levels), the upsampler with DDIM.
  assert '(10 + 3 score evaluations each, base first, ddim)' in capsys.readouterr().out
  for name in ('stage0_00000002.png', 'cascade_00000002.png', 'samples_00000002.png'):
    assert (upsampler / 'samples' / name).exists(), name
  strip = Image.open(upsampler / 'samples' / 'cascade_00000002.png')
  assert strip.size == (io.png_scale(8) * (4 * 9 + 1), io.png_scale(8) * (2 * 9 + 1))


def test_base_overrides_change_the_base_stage_only(cascade, data_dir, capsys):
  base, upsampler = cascade
  run_lib.sample(cascade_config(data_dir, base, base_overrides='sampling.n_steps=5'),
                 str(upsampler))
  assert '(5 + 3 score evaluations each' in capsys.readouterr().out


def test_a_cascade_is_evaluated_on_its_final_images(cascade, data_dir):
  base, upsampler = cascade
  metrics = run_lib.evaluate(cascade_config(data_dir, base), str(upsampler))[2]
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
    run_lib.sample(config, str(upsampler))


def test_a_base_of_another_size_or_without_captions_is_refused(cascade, data_dir, tmp_path,
                                                               pairs_data_dir):
  base, upsampler = cascade
  # The 4x4 base cannot feed an 8 -> 16 upsampler, nor a text upsampler at all.
  config = text_config(pairs_data_dir, digit_pairs_sr, cascade_from=str(base))
  job = run_lib.Job(config, str(tmp_path))
  with pytest.raises(JobError,
                     match=r'samples images \(4, 4, 1\); the upsampler takes \(8, 8, 1\)'):
    job.base
  config.conditioning.low_size = 4
  config.data.image_size = 8
  job = run_lib.Job(config, str(tmp_path / 'other'))
  with pytest.raises(JobError, match='reads none: a text cascade needs the same tokens'):
    job.base


def test_a_base_without_a_checkpoint_is_refused(cascade, data_dir, tmp_path):
  base, upsampler = cascade
  empty = tmp_path / 'untrained'
  empty.mkdir()
  (empty / 'config.json').write_text((base / 'config.json').read_text())
  with pytest.raises(JobError, match='no checkpoint in .*train the base model first'):
    run_lib.sample(cascade_config(data_dir, empty), str(upsampler))


def test_a_text_cascade_draws_its_captions_through_both_stages(text_trained, pairs_data_dir,
                                                               tmp_path):
  config = text_config(pairs_data_dir, digit_pairs_sr)
  config.training.update(n_iters=1, snapshot_sampling=False, eval_freq=100)
  run_lib.train(config, str(tmp_path))
  captions = tmp_path / 'prompts.txt'
  captions.write_text('left 3, right 7\nleft 1, right 2\n')
  config.sampling.update(cascade_from=str(text_trained), captions_file=str(captions),
                         method='ddim', n_steps=2, num_samples=4)
  images = run_lib.sample(config, str(tmp_path))
  saved = np.load(tmp_path / 'samples' / 'samples_00000001.npz')
  assert images.shape == (4, 16, 16, 1) and saved['stage0_images'].shape == (4, 8, 8, 1)
  assert saved['captions'].tolist() == ['left 3, right 7'] * 2 + ['left 1, right 2'] * 2
