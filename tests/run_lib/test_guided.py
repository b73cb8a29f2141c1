"""Guided jobs: a class-conditional model (label dropout in training, classes and
classifier-free guidance in sampling and evaluation), a noise-conditional classifier and
classifier guidance of an unconditional model by it, and their bad input."""

import dataclasses
import pathlib
import sys
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from PIL import Image

import run_lib
import sde_lib
import tasks
from configs.digits import ve as digits_ve
from configs.digits import vp as digits_vp
from configs.guided import digits_cfg, digits_classifier
from metrics import statistics
from run_lib import builder, io
from run_lib.state import TrainState
from sde_lib.parameterization import Parameterization
from tests.run_lib import jobs

pytestmark = pytest.mark.usefixtures('digits_classifier_trained_once')


def cfg_config(data_dir: str, **sampling):
  config = digits_cfg.get_config('tiny')
  config.data.data_dir = data_dir
  config.training.n_iters = 3
  config.sampling.update(sampling)
  return config


def _trained(tmp_path_factory, name: str, config) -> pathlib.Path:
  workdir = tmp_path_factory.mktemp(name)
  jobs.train(config, workdir)
  return workdir


@pytest.fixture(scope='module')
def trained(tmp_path_factory, data_dir) -> pathlib.Path:
  return _trained(tmp_path_factory, 'cfg', cfg_config(data_dir))


def test_sample_draws_the_requested_classes_one_row_each(
    trained, data_dir):
  options = dict(class_labels='3,7', num_samples=6, batch_size=4)
  guided = jobs.sample(cfg_config(data_dir, guidance_scale=2.0, **options), trained)
  path = jobs.only(trained / 'samples', 'samples_00000003_*.npz')
  saved = np.load(path)
  np.testing.assert_array_equal(saved['labels'], [3, 3, 3, 7, 7, 7])
  np.testing.assert_array_equal(saved['images'], guided)
  grid = Image.open(path.with_suffix('.png'))
  scale = io.png_scale(8)
  assert grid.size == ((3 * 9 + 1) * scale, (2 * 9 + 1) * scale)  # 3 columns, a row per class
  assert path.with_name(path.name.replace('samples_', 'trajectory_')).with_suffix('.png').exists()



@pytest.mark.parametrize('scale, interval', [(2.0, None), (3.0, (0.3, 0.7))])
def test_the_job_samples_the_network_under_classifier_free_guidance(trained, data_dir, scale,
                                                                    interval):
  # The samplers' score is uncond + s (cond - uncond) of the trained network itself, inside
  # the interval, and its conditional score outside.
  lo, hi = interval or (0.0, 1.0)
  job = run_lib.build(cfg_config(data_dir, guidance_scale=scale, guidance_t_lo=lo,
                                 guidance_t_hi=hi), str(trained))
  # Three steps from a zero-initialised last layer barely use the labels: perturbed, the
  # network's scores of different classes differ by O(1).
  params = job.restore().ema_params
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(1), len(leaves))
  params = jax.tree.unflatten(tree, [p + 0.3 * jax.random.normal(k, p.shape)
                                     for p, k in zip(leaves, keys, strict=True)])
  x = jax.random.normal(jax.random.key(0), (8, 8, 8, 1))
  t, labels = jnp.linspace(0.1, 0.9, 8), jnp.arange(8) % 10
  cond, uncond, guided = jax.jit(lambda params: (
      job.task.score_fn(params, labels)(x, t),
      job.task.score_fn(params, jnp.full_like(labels, 10))(x, t),
      job.sampling_score_fn(params, {'label': labels})(x, t)))(params)
  inside = ((t >= lo) & (t <= hi))[:, None, None, None]
  expected = jnp.where(inside, uncond + scale * (cond - uncond), cond)
  np.testing.assert_allclose(guided, expected, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(cond))))
  assert float(jnp.min(jnp.max(jnp.abs(cond - uncond), axis=(1, 2, 3)))) > 0.1  # labels matter


def test_evaluation_scores_the_conditional_model(trained, data_dir):
  config = cfg_config(data_dir, guidance_scale=2.0)
  config.eval.metrics = ('loss', 'fid')
  [metrics] = jobs.evaluate(config, trained).values()
  assert np.isfinite(metrics['test_loss']) and np.isfinite(metrics['fd'])
  assert metrics['guidance_scale'] == 2.0 and metrics['num_samples'] == 8
  # 8 samples over the 10 classes: one each of classes 0-7, scored by the digit classifier.
  assert sorted(k for k in metrics if k.startswith('accuracy_class')) == [
      f'accuracy_class{k}' for k in range(8)]
  assert 0.0 <= metrics['accuracy'] <= 1.0
  assert not any(k.startswith('fd_class') for k in metrics)  # one sample per class: no FD


class _LabelEcho(nn.Module):
  """score = w x + label: its loss shows which labels the network saw."""

  record: Callable  # of the labels seen

  @nn.compact
  def __call__(self, x, time_cond, class_labels=None, train=False):
    self.record(class_labels)
    return self.param('w', nn.initializers.ones, ()) * x + class_labels[:, None].astype(x.dtype)


def test_train_step_drops_labels_to_the_null_class_at_the_configured_rate():
  seen = []

  def loss_fn(rng, score_fn, images, weights=None):
    return jnp.mean(score_fn(images, jnp.ones(images.shape[:1])) ** 2)

  params = {'score': {'w': jnp.ones(())}}
  state = TrainState(jnp.zeros((), jnp.int32), params, params, optax.sgd(0.1).init(params))
  batch = {'image': jnp.ones((4000, 1)), 'label': jnp.arange(4000) % 10}
  sde = sde_lib.VESDE()
  for rate in (0.0, 0.2, 1.0):
    task = tasks.Diffusion(sde, Parameterization('score', 'sigma', scale_by_sigma=False),
                           _LabelEcho(seen.append), loss_fn, num_classes=10, label_dropout=rate)
    step = run_lib.make_train_step(
        lambda params, batch, rng, step: task.loss_terms(params, batch, rng, train=True,
                                                         step=step),
        optax.sgd(0.1), ema_rate=0.9)
    new_state, metrics = step(state, batch, jax.random.key(0))
    labels = np.asarray(seen[-1])
    dropped = labels == 10
    assert abs(dropped.mean() - rate) < 5 * np.sqrt(rate * (1 - rate) / 4000) + 1e-9
    np.testing.assert_array_equal(labels[~dropped], np.asarray(batch['label'])[~dropped])
    expected = np.mean((1.0 + labels) ** 2)
    np.testing.assert_allclose(float(metrics['loss']), expected, rtol=1e-5)
    # The test loss sees every label as it is.
    test_loss = task.loss(new_state.params, batch, jax.random.key(1), train=False)
    np.testing.assert_array_equal(seen[-1], batch['label'])
    assert np.isfinite(float(test_loss))


def test_a_dropped_batch_trains_the_null_embedding_and_a_kept_one_the_classes():
  task = builder.create_task(digits_cfg.get_config('tiny'))
  params = jax.jit(task.init, static_argnums=1)(jax.random.key(0), (8, 8, 1))
  batch = {'image': jax.random.uniform(jax.random.key(1), (8, 8, 8, 1)),
           'label': jnp.array([3, 3, 3, 3, 7, 7, 7, 7])}
  # Half dropped: the rows of the labels kept and the null row get gradients, no other.
  task = dataclasses.replace(task, label_dropout=0.5)
  rng = jax.random.key(2)
  kept = sde_lib.conditioning.drop_labels(jax.random.fold_in(rng, 1), batch['label'],
                                          num_classes=10, rate=0.5)
  assert 10 in kept.tolist() and {3, 7} & set(kept.tolist())  # this key drops some, keeps some
  grads = jax.jit(jax.grad(lambda p: task.loss(p, batch, rng, train=True)))(params)
  row_norms = np.linalg.norm(grads['score']['label_embedding']['embedding'], axis=1)
  assert np.flatnonzero(row_norms).tolist() == sorted(set(kept.tolist()))


@pytest.mark.parametrize('config_of, overrides, message', [
    (digits_ve.get_config, {'sampling.guidance_scale': 2.0},
     'sampling.guidance_scale=2.0 needs a class-conditional model (model.num_classes > 0)'),
    (digits_ve.get_config, {'conditioning.label_dropout': 0.1},
     'conditioning.label_dropout=0.1 needs a class-conditional model'),
    (digits_ve.get_config, {'sampling.class_labels': '3'},
     "sampling.class_labels='3' needs a class-conditional model"),
    (digits_cfg.get_config, {'sampling.class_labels': '3,12'},
     "sampling.class_labels must be classes in [0, 10) separated by commas, got '3,12'"),
    (digits_cfg.get_config, {'sampling.class_labels': 'three'},
     "sampling.class_labels must be classes in [0, 10) separated by commas, got 'three'"),
    (digits_cfg.get_config, {'conditioning.label_dropout': 1.5},
     'conditioning.label_dropout must be in [0, 1], got 1.5'),
    (digits_cfg.get_config, {'sampling.guidance_t_lo': 0.8, 'sampling.guidance_t_hi': 0.2},
     'sampling.guidance_t_lo=0.8 is above sampling.guidance_t_hi=0.2'),
    (digits_cfg.get_config, {'model.name': 'ncsnv2_64'},
     "model 'ncsnv2_64' has no class conditioning (model.num_classes must be 0)"),
    (digits_classifier.get_config, {'training.task': 'segmentation'},
     "unknown training.task 'segmentation'; known: ['diffusion', 'super_resolution', "
     "'classifier', 'autoencoder', 'latent']"),
    (digits_classifier.get_config, {'model.name': 'ncsnv2_64'},
     "training.task='classifier' builds on the ncsnpp encoder"),
    (digits_classifier.get_config, {'model.num_classes': 10},
     "training.task='classifier' takes no class conditioning"),
])
def test_bad_conditioning_and_classifier_values_name_the_key(tmp_path, config_of, overrides,
                                                              message):
  jobs.expect_build_error(jobs.override(config_of('tiny'), overrides), tmp_path, message)


def test_main_reports_a_bad_class_with_one_error_line(tmp_path, data_dir):
  result = jobs.run_main(tmp_path, f'--config.data.data_dir={data_dir}', '--mode=sample',
                         '--config.sampling.class_labels=10', devices=1,
                         config='configs/guided/digits_cfg.py:tiny')
  assert jobs.error_line(result) == ("error: sampling.class_labels must be classes in [0, 10) "
                                     "separated by commas, got '10'")


# ----------------------------------------------------------------------------------------------
# A noise-conditional classifier and classifier guidance of an unconditional model.

def classifier_config(data_dir: str):
  config = digits_classifier.get_config('tiny')
  config.data.data_dir = data_dir
  config.training.n_iters = 3
  return config


def guided_config(data_dir: str, classifier_dir, **sampling):
  config = digits_vp.get_config('tiny')
  config.data.data_dir = data_dir
  config.training.n_iters = 2
  # The guided sampler is compiled once, by `sample`: no snapshot grids, no strip.
  config.training.snapshot_sampling = False
  config.sampling.trajectory_frames = 0
  config.sampling.update(guidance='classifier', classifier_workdir=str(classifier_dir), **sampling)
  return config


@pytest.fixture(scope='module')
def classifier_dir(tmp_path_factory, data_dir) -> pathlib.Path:
  return _trained(tmp_path_factory, 'classifier', classifier_config(data_dir))


def test_classifier_job_trains_evaluates_accuracy_and_has_nothing_to_sample(classifier_dir,
                                                                           data_dir):
  [metrics] = jobs.evaluate(classifier_config(data_dir), classifier_dir).values()
  assert np.isfinite(metrics['test_loss']) and metrics['step'] == 3
  assert all(0.0 <= metrics[f'accuracy_t{t:g}'] <= 1.0 for t in (0, 0.25, 0.5, 0.75, 1))
  with pytest.raises(run_lib.JobError, match="trains a classifier .* nothing to sample; guide a "
                                             "score model by it with"):
    jobs.sample(classifier_config(data_dir), classifier_dir)
  assert not (classifier_dir / 'samples').exists()


def test_classifier_guidance_adds_the_classifiers_log_posterior_gradient(
    classifier_dir, data_dir, tmp_path):
  config = guided_config(data_dir, classifier_dir, guidance_scale=3.0, class_labels='3,7',
                         num_samples=6, batch_size=4)
  job = run_lib.build(config, str(tmp_path))
  run_lib.train(job)
  images = run_lib.sample(job)
  saved = np.load(jobs.only(tmp_path / 'samples', 'samples_00000002_*.npz'))
  np.testing.assert_array_equal(saved['labels'], [3, 3, 3, 7, 7, 7])
  np.testing.assert_array_equal(saved['images'], images)

  params, classifier = job.restore().ema_params, job.classifier
  assert classifier.step == 3 and classifier.job.task.num_outputs == 10
  x = jax.random.normal(jax.random.key(0), (8, 8, 8, 1))
  t, labels = jnp.linspace(0.1, 0.9, 8), jnp.arange(8) % 10

  def log_posterior(x):  # the DDPM++ time input t * 999, written out
    logits = classifier.job.task.model.apply({'params': classifier.params['classifier']}, x,
                                             t * 999)
    return jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], -1).sum()

  score, posterior_grad, guided = jax.jit(lambda: (
      job.task.score_fn(params)(x, t), jax.grad(log_posterior)(x),
      job.sampling_score_fn(params, {'label': labels}, classifier.params)(x, t)))()
  np.testing.assert_allclose(guided, score + 3.0 * posterior_grad, rtol=1e-4, atol=1e-5)
  assert float(jnp.max(jnp.abs(posterior_grad))) > 0


def test_classifier_guidance_refuses_a_workdir_that_does_not_fit(classifier_dir, data_dir,
                                                                 tmp_path, trained):
  cases = [
      (guided_config(data_dir, tmp_path / 'none'), run_lib.JobError, 'has no config.json'),
      (guided_config(data_dir, trained), run_lib.JobError,
       'holds a diffusion model, not a classifier'),
      (guided_config(data_dir, ''), ValueError,
       "sampling.guidance='classifier' needs sampling.classifier_workdir"),
  ]
  ve = digits_ve.get_config('tiny')
  ve.sampling.update(guidance='classifier', classifier_workdir=str(classifier_dir))
  cases.append((ve, run_lib.JobError, 'guidance needs the same SDE'))
  cfg = cfg_config(data_dir, guidance='classifier', classifier_workdir=str(classifier_dir))
  cases.append((cfg, ValueError, "guides an unconditional model; this one has "
                                 'model.num_classes=10'))
  free = guided_config(data_dir, classifier_dir)
  free.sampling.guidance = 'free'
  cases.append((free, ValueError, "unknown sampling.guidance 'free'; known: ['', 'classifier']"))
  cases.append((guided_config(data_dir, classifier_dir, class_labels='10'), ValueError,
                'sampling.class_labels must be classes in [0, 10)'))
  for config, error, message in cases:
    jobs.expect_build_error(config, tmp_path / 'work', message, error)


class _PerfectClassifier:
  """A feature network of images whose first pixel is their class: its logits are the
  one-hot class times 30, its label metrics those of a digits classifier."""

  description = 'perfect'

  def __init__(self):
    self.seen = []

  def __call__(self, images):
    self.seen.append(np.asarray(images[:, 0, 0, 0] * 255.0).round().astype(int))
    logits = np.eye(10)[self.seen[-1]] * 30.0
    return logits, logits

  def label_metrics(self, real_features, real_labels, fake_features, fake_logits, labels):
    return statistics.class_metrics(real_features, real_labels, fake_features, labels,
                                    fake_logits)


def test_class_blocked_draws_are_shuffled_before_the_inception_scores_splits(
    trained, data_dir, monkeypatch):
  # 500 draws of the ten classes in blocks of 50: each of IS's ten contiguous splits must see
  # many classes, or the score of perfect class-conditional samples would be 1.
  config = cfg_config(data_dir)
  config.eval.num_samples = 500
  evaluation = run_lib.Evaluation(run_lib.build(config, str(trained)))
  labels = np.repeat(np.arange(10), 50)
  images = np.broadcast_to(labels[:, None, None, None], (500, 8, 8, 1)).astype(np.uint8)
  # run_lib's `evaluate` and `sample` name functions; their modules hold draw_cascade, Drawn.
  evaluate_module, sample_module = (sys.modules[f'run_lib.{m}'] for m in ('evaluate', 'sample'))
  monkeypatch.setattr(evaluate_module, 'draw_cascade', lambda *a, **k: sample_module.Cascaded(
      sample_module.Drawn(images, 1, None, labels), ()))
  network = _PerfectClassifier()
  evaluation._features = (network, np.eye(10).repeat(50, 0) * 30.0, labels)
  metrics = evaluate_module.SampleQuality(500, 1000)(evaluation, None, 0)
  assert sorted(network.seen[0]) == sorted(labels) and len(set(network.seen[0][:50])) >= 8
  assert metrics['is'] > 8.0
  assert metrics['accuracy'] == 1.0  # the labels are shuffled with their images
