"""Text-conditional and cascaded jobs: training with captions, sampling from a captions
file under classifier-free guidance on text, a cascade (base -> upsampler) in --mode sample
and eval, and their bad input."""

import dataclasses
import logging
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import run_lib
from configs.digits import vp as digits_vp
from configs.text import digit_pairs, digit_pairs_sr
from data import bundled, text
from run_lib import io
from run_lib.errors import JobError
from sde_lib import sampling
from tests.run_lib import jobs
from tests.tasks.test_text_task import PooledMLP

pytestmark = pytest.mark.usefixtures('digits_classifier_trained_once')

ROOT = jobs.ROOT


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
    jobs.train(jobs.text_config(pairs_data_dir), workdir)
  finally:
    logger.removeHandler(TRAINING_WARNINGS)
  return workdir


def test_training_reads_captions_with_its_own_encoder_tree(text_trained, pairs_data_dir):
  job = run_lib.build(jobs.text_config(pairs_data_dir), str(text_trained))
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
  config = jobs.text_config(pairs_data_dir, captions_file=str(captions), num_samples=4,
                                guidance_scale=3.0)
  images = jobs.sample(config, text_trained)
  path = jobs.only(text_trained / 'samples', 'samples_00000002_*.npz')
  saved = np.load(path)
  assert saved['captions'].tolist() == ['left 3, right 7'] * 2 + ['left 1, right 2'] * 2
  np.testing.assert_array_equal(saved['images'], images)
  assert images.shape == (4, 8, 8, 1)
  grid = Image.open(path.with_suffix('.png'))
  assert grid.height == io.png_scale(8) * (2 * 9 + 1)  # two rows, captions beside


def test_the_job_samples_under_classifier_free_guidance_on_the_captions(text_trained,
                                                                         pairs_data_dir):
  job = run_lib.build(jobs.text_config(pairs_data_dir, guidance_scale=3.0), str(text_trained))
  params = job.restore().ema_params
  # Two steps from zero-initialised last layers barely read the text: perturbed, they do.
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(0), len(leaves))
  params = jax.tree.unflatten(tree, [p + 0.3 * jax.random.normal(k, p.shape)
                                     for p, k in zip(leaves, keys, strict=True)])
  tokens = jnp.asarray(job.prompts().tokens[:2])
  x = jax.random.normal(jax.random.key(1), (2, 8, 8, 1))
  t = jnp.full((2,), 0.5)
  task = job.task
  conditional, unconditional, guided = jax.jit(lambda params: (
      task.score_fn(params, caption=task.encode_text(params, tokens))(x, t),
      task.score_fn(params)(x, t), job.sampling_score_fn(params, {'tokens': tokens})(x, t)))(
          params)
  assert float(jnp.max(jnp.abs(conditional - unconditional))) > 1e-3
  np.testing.assert_allclose(guided, unconditional + 3.0 * (conditional - unconditional),
                             rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('method', sorted(sampling.SAMPLERS))
def test_every_sampler_takes_the_text_guided_score(text_trained, pairs_data_dir, method):
  # A cheap network through the job's own guidance: its samples move with the scale.
  job = run_lib.build(jobs.text_config(pairs_data_dir), str(text_trained))
  job = dataclasses.replace(job, task=dataclasses.replace(job.task, model=PooledMLP()))
  params = jax.jit(job.task.init, static_argnums=1)(jax.random.key(2), (8, 8, 1))
  tokens = jnp.asarray(job.prompts().tokens[:4])
  x_T = job.sde.prior_sampling(jax.random.key(3), (4, 8, 8, 1))
  # Langevin steps would follow a random network's field anywhere: the config's predictor.
  options = {'pc': dict(predictor='euler_maruyama', corrector='none')}.get(method, {})
  out = {}
  for scale in (1.0, 4.0):
    job = dataclasses.replace(job, conditioning=dataclasses.replace(job.conditioning,
                                                                     scale=scale))
    score_fn = job.sampling_score_fn(params, {'tokens': tokens})
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
  config = jobs.text_config(pairs_data_dir, num_samples=4,
                                captions_file=_write(tmp_path / 'c.txt', lines))
  with pytest.raises(JobError, match=message):
    jobs.sample(config, text_trained)


def test_a_missing_caption_file_is_named(text_trained, pairs_data_dir, tmp_path):
  config = jobs.text_config(pairs_data_dir, captions_file=str(tmp_path / 'none.txt'))
  with pytest.raises(JobError, match='none.txt.*does not exist'):
    jobs.sample(config, text_trained)


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
    (digit_pairs_sr, {'sampling.task': 'inpaint'}, "not a training.task='super_resolution'"),
    (digits_vp, {'conditioning.low_size': 4}, "need training.task='super_resolution'"),
])
def test_bad_text_and_cascade_values_name_the_key(tmp_path, module, overrides, message):
  jobs.expect_build_error(jobs.override(module.get_config('tiny'), overrides), tmp_path,
                          message)


def test_a_caption_key_the_dataset_lacks_is_one_line_through_main(tmp_path, data_dir):
  line = jobs.error_line(jobs.run_main(tmp_path, '--config.data.dataset=digits',
                                       f'--config.data.data_dir={data_dir}',
                                       config='configs/text/digit_pairs.py:tiny'))
  assert "'caption'" in line and 'image' in line
  assert not list((tmp_path / 'checkpoints').glob('*'))


def test_a_text_cascade_draws_its_captions_through_both_stages(text_trained, pairs_data_dir,
                                                               tmp_path):
  config = jobs.text_config(pairs_data_dir, digit_pairs_sr)
  config.training.update(n_iters=1, snapshot_sampling=False, eval_freq=100)
  jobs.train(config, tmp_path)
  captions = tmp_path / 'prompts.txt'
  captions.write_text('left 3, right 7\nleft 1, right 2\n')
  config.sampling.update(cascade_from=str(text_trained), captions_file=str(captions),
                         method='ddim', n_steps=2, num_samples=4)
  images = jobs.sample(config, tmp_path)
  saved = np.load(jobs.only(tmp_path / 'samples', 'samples_00000001_*.npz'))
  assert images.shape == (4, 16, 16, 1) and saved['stage0_images'].shape == (4, 8, 8, 1)
  assert saved['captions'].tolist() == ['left 3, right 7'] * 2 + ['left 1, right 2'] * 2


@pytest.fixture(scope='module')
def words_trained(tmp_path_factory, pairs_data_dir) -> pathlib.Path:
  """A 1-step text run on the word tokenizer (tokens: one per word)."""
  workdir = tmp_path_factory.mktemp('words')
  config = jobs.text_config(pairs_data_dir)
  config.text.tokenizer = 'words'
  config.training.update(n_iters=1, snapshot_sampling=False, eval_freq=100)
  jobs.train(config, workdir)
  return workdir


def _words_config(pairs_data_dir, **sampling_options):
  config = jobs.text_config(pairs_data_dir, **sampling_options)
  config.text.tokenizer = 'words'
  return config


def test_a_trained_tokenizer_is_the_workdirs_and_its_encoder_reads_its_ids(
    words_trained, pairs_data_dir, tmp_path):
  saved = text.load(words_trained / 'tokenizer.json')
  job = run_lib.build(_words_config(pairs_data_dir), str(words_trained))
  assert job.data.tokenizer.fingerprint == saved.fingerprint and saved.name == 'words'
  assert job.task.text.vocab_size == saved.vocab_size < text.VOCAB_SIZE
  params = job.restore().params
  assert params['text']['token_embedding']['embedding'].shape[0] == saved.vocab_size
  # The test captions, read back through the tokenizer: whole words, none truncated.
  prompts = job.prompts()
  assert all(c in bundled_captions() for c in prompts.captions)
  captions = tmp_path / 'prompts.txt'
  captions.write_text('3 to the left of 7\n8 to the left of zebra\n')
  with pytest.raises(JobError, match=r"line 2 of .*prompts.txt.*vocabulary of \d+: \['zebra'\]"):
    jobs.sample(_words_config(pairs_data_dir, captions_file=str(captions), num_samples=4),
                words_trained)


def bundled_captions() -> set[str]:
  return {bundled.pair_caption(left, right, t) for t in range(len(bundled.PAIR_TEMPLATES))
          for left in range(10) for right in range(10)}


def test_checkpoints_are_not_read_with_another_tokenizer(words_trained, text_trained,
                                                          pairs_data_dir, tmp_path):
  other = tmp_path / 'other.json'
  text.WordTokenizer.from_captions(['3 to the left of 7']).save(other)
  cases = [
      (jobs.text_config(pairs_data_dir), words_trained,
       "was trained on the tokens of its tokenizer.json; text.tokenizer='bytes' cannot read"),
      (_words_config(pairs_data_dir), text_trained,
       "was trained without a tokenizer.json (on bytes): text.tokenizer='words' cannot read"),
  ]
  foreign = _words_config(pairs_data_dir)
  foreign.text.tokenizer_file = str(other)
  cases.append((foreign, words_trained, 'other.json\' is not the tokenizer the checkpoints'))
  bpe = _words_config(pairs_data_dir)
  bpe.text.tokenizer = 'bpe'
  cases.append((bpe, words_trained, "holds a 'words' tokenizer, not text.tokenizer='bpe'"))
  for config, workdir, message in cases:
    jobs.expect_build_error(config, workdir, message)


@pytest.mark.parametrize('overrides, message', [
    ({'text.tokenizer_file': '/no/tokenizer.json'}, "no tokenizer file '/no/tokenizer.json'"),
    ({'text.tokenizer': 'bytes', 'text.tokenizer_file': 'x.json'},
     "text.tokenizer_file is the file of a trained tokenizer (words, bpe), not of "
     "text.tokenizer='bytes'"),
    ({'text.tokenizer': 'bpe', 'text.vocab_size': 100},
     'text.vocab_size must hold the 256 bytes and a merge, got 100'),
])
def test_bad_tokenizer_settings_name_the_key(tmp_path, pairs_data_dir, overrides, message):
  jobs.expect_build_error(jobs.override(_words_config(pairs_data_dir), overrides), tmp_path,
                          message)


def test_a_bpe_job_trains_its_tokenizer_on_the_training_captions(tmp_path, pairs_data_dir):
  config = _words_config(pairs_data_dir)
  config.text.update(tokenizer='bpe', vocab_size=300)
  job = run_lib.build(config, str(tmp_path))
  tokenizer = job.data.tokenizer
  assert tokenizer.name == 'bpe' and job.task.text.vocab_size == tokenizer.vocab_size <= 302
  assert not (tmp_path / 'tokenizer.json').exists()  # written when training starts
  # Held-out test phrasings still round trip (byte-level BPE has every byte).
  batch = next(job.data.open('test', 8).epoch(8))
  assert all(c in bundled_captions() for c in text.detokenize(batch['tokens'], tokenizer))
