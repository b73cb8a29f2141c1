"""--mode eval: test loss, bits/dim and sample quality (FD/FID, KID, IS) of checkpoints.

The compiled loss/bits-per-dim program, the test split and the reference features of
the real images are built once per job (the features are also cached in workdir/eval,
keyed by what made them), so evaluating many checkpoints or sweep points pays for
them once.
"""

import json
import time
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

import evaluation
import input_pipeline
import sde_lib
from run_lib import build, io
from run_lib.build import Job, create_dataset, data_dir, split_images, stream, test_prompts
from run_lib.errors import JobError
from run_lib.mesh import check_divisible, gather
from run_lib.sample import draw_cascade, text_stage
from sde_lib.utils import batch_broadcast


def _to_unit_range(images: jax.Array, centered: bool) -> jax.Array:
  """Model-space images back to [0, 1]."""
  return (images + 1.0) / 2.0 if centered else images


def _whole_split(data, config: ml_collections.ConfigDict) -> tuple[np.ndarray, np.ndarray]:
  """All images of a split (every host's share), in [0, 1], and their labels."""
  examples = split_images(data, config.eval.batch_size)
  return np.asarray(_to_unit_range(examples['image'], config.data.centered)), examples['label']


# Datasets whose sample quality is measured in the bundled digits classifier's features.
_DIGIT_FEATURES = {'digits': evaluation.digits_features,
                   'digit_pairs': evaluation.digit_pair_features}

# Fractions of T at which a classifier job's accuracy is reported.
CLASSIFIER_TIMES = (0.0, 0.25, 0.5, 0.75, 1.0)


class Evaluator:
  """The evaluation of one job's checkpoints: what can be built once is built once.

  Each name of eval.metrics (checked against the task's `metrics` when the job is built)
  is one method of METRICS, writing its own keys; programs are compiled on first use."""

  def __init__(self, job: Job):
    self.job = job
    self.config = job.config
    self.ev = job.config.eval
    check_divisible('eval.batch_size', self.ev.batch_size)
    self.out = job.workdir / 'eval'
    self.out.mkdir(parents=True, exist_ok=True)
    self.key = stream(self.config, 'eval')
    self._test = None
    # (features_fn(images in [0, 1]) -> (features, logits), real features, their labels)
    self._features = None

  def _per_batch(self, name: str, fn, params: Any, step: int) -> list[tuple[Any, np.ndarray]]:
    """fn(params, batch, mask, rng) jitted once (under `name`) and run on every test batch,
    batch i with fold_in(key of `name`, i): [(its outputs, the batch's gathered mask)]."""
    job = self.job
    if name not in job.compiled:
      job.compiled[name] = jax.jit(fn, in_shardings=(job.replicated, job.sharded, job.sharded,
                                                     job.replicated))
    key = jax.random.fold_in(self.key, _METRIC_KEYS[name])
    results = []
    for i, batch in enumerate(tqdm.tqdm(self.test_batches(), desc=f'eval {step} {name}',
                                        disable=jax.process_index() != 0)):
      inputs = {k: jax.make_array_from_process_local_data(job.sharded, batch[k])
                for k in job.task.batch_keys}
      mask = jax.make_array_from_process_local_data(job.sharded, batch['mask'])
      results.append((job.compiled[name](params, inputs, mask, jax.random.fold_in(key, i)),
                      gather(mask)))
    return results

  def test_loss(self, params: Any, step: int) -> dict[str, float]:
    """The task's loss (train=False) over the test split, weighted by real examples."""
    task = self.job.task

    def loss(params, batch, mask, rng):
      return task.loss(params, batch, rng, train=False, weights=mask.astype(batch['image'].dtype))

    parts = [(float(out), int(mask.sum())) for out, mask in
             self._per_batch('eval_loss', loss, params, step)]
    return {'test_loss': sum(l * n for l, n in parts) / sum(n for _, n in parts)}

  def accuracy(self, params: Any, step: int) -> dict[str, float]:
    """A noise-conditional classifier's accuracy on the test split diffused to each of
    CLASSIFIER_TIMES (fractions of T)."""
    job = self.job

    def correct(params, batch, mask, rng):
      images, labels = batch['image'], batch['label']
      logits_fn = job.task.logits_fn(params)
      hits = []
      for i, t in enumerate(CLASSIFIER_TIMES):
        t = jnp.full(images.shape[:1], t * job.sde.T, images.dtype)
        mean, std = job.sde.marginal_prob(images, t)
        z = jax.random.normal(jax.random.fold_in(rng, i), images.shape, images.dtype)
        x_t = mean + batch_broadcast(std, z) * z
        hits.append(jnp.sum(mask * (jnp.argmax(logits_fn(x_t, t), -1) == labels)))
      return jnp.stack(hits)

    parts = self._per_batch('eval_accuracy', correct, params, step)
    hits = sum(np.asarray(out) for out, _ in parts)
    count = sum(int(mask.sum()) for _, mask in parts)
    return {f'accuracy_t{t:g}': float(h / count)
            for t, h in zip(CLASSIFIER_TIMES, hits, strict=True)}

  def _levels(self, images: jax.Array) -> jax.Array:
    """Model-space images as their integer grey levels k in [0, data.levels - 1]."""
    levels = self.config.data.levels
    return jnp.round(_to_unit_range(images, self.config.data.centered) * (levels - 1))

  def bpd_ode(self, params: Any, step: int) -> dict[str, float]:
    """Bits/dim of the dequantised test split at its data.levels grey levels, through the
    probability-flow ODE; a conditional model's of p(x | the image's label or caption)."""
    job, ev, config = self.job, self.ev, self.config

    def bpd(params, batch, mask, rng):
      del mask
      conditions = job.task.conditions(rng, batch, train=False)
      bpd, _, _ = sde_lib.likelihood.bits_per_dim(
          rng, job.sde, job.task.conditional_score_fn(params, conditions),
          self._levels(batch['image']), estimator=ev.bpd_estimator, levels=config.data.levels,
          centered=config.data.centered, rtol=ev.rtol, atol=ev.atol)
      return bpd

    parts = self._per_batch('eval_bpd_ode', bpd, params, step)
    return {'bpd_ode': float(np.mean(np.concatenate([gather(out)[mask] for out, mask in parts])))}

  def bpd_vlb(self, params: Any, step: int) -> dict[str, float]:
    """DDPM's variational bound in bits/dim on the test split at its data.levels grey
    levels (sde_lib.vlb; N = sde.N levels): the total, and its prior, decoder and KL parts.
    A conditional model's is of p(x | the image's label or caption)."""
    job, ev, config = self.job, self.ev, self.config
    levels, centered = config.data.levels, config.data.centered
    clip = ((-1.0, 1.0) if centered else (0.0, 1.0)) if ev.vlb_clip_denoised else None

    def bound(params, batch, mask, rng):
      del mask
      conditions = job.task.conditions(rng, batch, train=False)
      kernel = job.task.reverse_kernel(params, conditions, variance=ev.vlb_variance,
                                       clip_denoised=clip)
      # The bound is of the data on its grid k / (levels - 1) in model space.
      x = self._levels(batch['image']) / (levels - 1)
      return sde_lib.vlb.bits_per_dim(rng, job.sde, kernel, 2.0 * x - 1.0 if centered else x,
                                      levels=levels, centered=centered,
                                      n_terms=ev.vlb_terms or None)

    parts = self._per_batch('eval_bpd_vlb', bound, params, step)
    names = {'total': 'bpd_vlb', 'prior': 'bpd_vlb_prior', 'decoder': 'bpd_vlb_decoder',
             'kl': 'bpd_vlb_terms'}
    return {key: float(np.mean(np.concatenate([gather(getattr(out, part))[mask]
                                               for out, mask in parts])))
            for part, key in names.items()}

  def reconstruction(self, params: Any, step: int) -> dict[str, float]:
    """An autoencoder's (a latent model's first stage's) reconstructions of the test split
    through its posterior mean: mean squared and absolute error and PSNR in [0, 1] units, and
    rfd, the Frechet distance of the reconstructions to the test images in the sample
    metrics' feature space. Writes eval/reconstructions_<step>.png: test images over their
    reconstructions."""
    job, centered = self.job, self.config.data.centered

    def errors(params, batch, mask, rng):
      del mask, rng
      images = batch['image']
      unit = lambda x: jnp.clip(_to_unit_range(x, centered), 0.0, 1.0)
      rec = unit(job.task.reconstruct(params, images))
      diff = (rec - unit(images)).reshape(images.shape[0], -1)
      return jnp.mean(jnp.square(diff), -1), jnp.mean(jnp.abs(diff), -1), rec, unit(images)

    features_fn, real, _ = self.features()
    parts = self._per_batch('eval_reconstruction', errors, params, step)
    mse, l1, features, shown = [], [], [], None
    for (sq, ab, rec, real_images), mask in parts:
      rec = gather(rec)[mask]
      mse.append(gather(sq)[mask])
      l1.append(gather(ab)[mask])
      features.append(np.asarray(features_fn(rec)[0]))
      shown = (gather(real_images)[mask], rec) if shown is None else shown
    mse = np.concatenate(mse)
    fd = evaluation.frechet_distance(*evaluation.feature_statistics(real),
                                     *evaluation.feature_statistics(np.concatenate(features)))
    if jax.process_index() == 0:
      pairs = np.stack(shown, 1)  # [n, 2, H, W, C]: the first batch's images and theirs
      columns = min(len(pairs), 16)
      rows = pairs[:columns].transpose(1, 0, 2, 3, 4).reshape((-1,) + pairs.shape[2:])
      io.save_png(self.out / f'reconstructions_{step:08d}.png',
                  io.image_grid(io.to_uint8_images(rows, False), columns),
                  scale=io.png_scale(self.config.data.image_size))
    return {'rec_mse': float(mse.mean()), 'rec_l1': float(np.concatenate(l1).mean()),
            'psnr': float(np.mean(-10.0 * np.log10(np.maximum(mse, 1e-10)))), 'rfd': float(fd)}

  def test_batches(self) -> list[dict[str, np.ndarray]]:
    if self._test is None:
      data = create_dataset(self.config, self.job.workdir, self.ev.bpd_dataset,
                            self.ev.batch_size)
      self._test = (data, list(data.epoch(self.ev.batch_size)))
    return self._test[1]

  def _feature_extractor(self):
    """(features_fn, what made them): the digits classifier (of the digit pairs' two
    halves), or the FID Inception network."""
    config = self.config
    if config.data.dataset in _DIGIT_FEATURES:
      cache = self.out / 'digits_classifier.npz'
      if cache.exists():
        params = flax.serialization.msgpack_restore(cache.read_bytes())
      else:
        params = evaluation.train_digits_classifier(*self._digits_train_split(),
                                                    seed=config.seed)
        if jax.process_index() == 0:
          cache.write_bytes(flax.serialization.msgpack_serialize(jax.device_get(params)))
      features = _DIGIT_FEATURES[config.data.dataset]
      return (lambda images: features(params, images), f'digits classifier (seed {config.seed})')
    path = self.ev.inception_weights
    if not path:
      raise JobError('sample-quality metrics need the FID Inception weights: set '
                     '--config.eval.inception_weights=/path/to/inception.npz (see evaluation.py '
                     'for converting pytorch-fid\'s file), or leave fid out of eval.metrics')
    variables = evaluation.load_inception_params(path)
    return (lambda images: evaluation.inception_features(variables, images * 2.0 - 1.0),
            f'FID Inception {path}')

  def _digits_train_split(self) -> tuple[np.ndarray, np.ndarray]:
    """The bundled digits' train split in [0, 1] and its labels (of the digit pairs too,
    whose halves are those digits)."""
    config, batch = self.config, self.ev.batch_size
    data = input_pipeline.get_dataset(
        'digits', 'train', data_dir=data_dir(config, self.job.workdir), image_size=8,
        centered=False, random_flip=False, uniform_dequantization=False,
        global_batch_size=batch, seed=config.seed, process_index=jax.process_index(),
        process_count=jax.process_count())
    examples = split_images(data, batch)
    return examples['image'], examples['label']

  def features(self):
    """(features_fn, real features [N, D], their labels [N]); the real ones cached in
    workdir/eval."""
    if self._features is None:
      features_fn, made_by = self._feature_extractor()
      config = self.config
      tag = {'dataset': config.data.dataset, 'split': self.ev.bpd_dataset,
             'image_size': config.data.image_size, 'centered': config.data.centered,
             'features': made_by}
      cache = self.out / 'reference_features.npz'
      real = None
      if cache.exists():
        with np.load(cache, allow_pickle=False) as saved:
          if json.loads(str(saved['tag'])) == tag and 'labels' in saved:
            real, labels = saved['features'], saved['labels']
      if real is None:
        data = create_dataset(config, self.job.workdir, self.ev.bpd_dataset, self.ev.batch_size)
        images, labels = _whole_split(data, config)
        real = np.asarray(features_fn(images)[0])
        if jax.process_index() == 0:
          tmp = cache.with_name('reference_features.tmp.npz')
          np.savez(tmp, features=real, labels=labels, tag=json.dumps(tag, sort_keys=True))
          tmp.rename(cache)
      self._features = (features_fn, real, labels)
    return self._features

  def sample_quality(self, params: Any) -> dict[str, float]:
    """FD, KID and IS of eval.num_samples samples, and the sampler's NFE; for samples of
    requested classes also FD per class and, on the digits (whose feature network
    classifies the same classes), their class accuracy."""
    n = self.ev.num_samples
    # Text-conditional models (and cascades driven by text) draw one sample per test
    # caption, whose labels are known.
    text_job = text_stage(self.job)
    prompts = (test_prompts(text_job.config, text_job.workdir, n, distinct=False)
               if text_job.conditioning.text else None)
    done = draw_cascade(self.job, params, jax.random.fold_in(self.key, 1), n,
                        desc='eval samples', prompts=prompts)
    drawn = done.final
    images, labels = drawn.images, drawn.labels
    if labels is not None:
      # Class-conditional draws come in class blocks; the Inception Score's contiguous
      # splits would each see one class (IS = 1). Shuffled, the splits mix the classes.
      order = np.random.default_rng(self.config.seed).permutation(n)
      images, labels = images[order], labels[order]
    features_fn, real, real_labels = self.features()
    fake_features, fake_logits = features_fn(images / 255.0)
    metrics = evaluation.feature_metrics(real, fake_features, fake_logits,
                                         is_splits=min(10, n), seed=self.config.seed,
                                         kid_subset_size=self.ev.kid_subset_size)
    if labels is not None and self.config.data.dataset == 'digit_pairs':
      # 100 ordered pairs: too many for FD per class; whether the prompt was followed, where
      # the classifier can read the digits (at the full 16x16; see digit_pair_features).
      if self.config.data.image_size == 16:
        metrics.update(evaluation.pair_accuracy(fake_logits, labels))
    elif labels is not None:
      classifies = self.config.data.dataset == 'digits'
      metrics.update(evaluation.class_metrics(real, real_labels, fake_features, labels,
                                              fake_logits if classifies else None))
    if done.stages:
      metrics['consistency_mse'] = consistency_mse(drawn.images, done.stages[-1].images)
      metrics.update({f'nfe_stage{k}': stage.nfe for k, stage in enumerate(done.stages)})
    c = text_job.conditioning if prompts else self.job.conditioning
    guided = {'guidance': c.guidance, 'guidance_scale': c.scale} if c.guidance else {}
    return {**metrics, 'num_samples': n, 'nfe': drawn.nfe, 'sampler': self.job.sampler.method,
            **guided}

  def metrics(self, params: Any, step: int) -> dict[str, Any]:
    """The metrics of eval.metrics for these parameters, and the seconds they took."""
    started = time.monotonic()
    metrics = {}
    for name in self.job.metrics:
      metrics.update(METRICS[name](self, params, step))
    return {**metrics, 'step': step, 'seconds': time.monotonic() - started}


# eval.metrics: each name's evaluation; the key streams of the per-batch ones.
METRICS = {'loss': Evaluator.test_loss, 'accuracy': Evaluator.accuracy,
           'bpd_ode': Evaluator.bpd_ode, 'bpd_vlb': Evaluator.bpd_vlb,
           'reconstruction': Evaluator.reconstruction,
           'fid': lambda evaluator, params, step: evaluator.sample_quality(params)}
_METRIC_KEYS = {'eval_loss': 0, 'eval_accuracy': 2, 'eval_bpd_ode': 3, 'eval_bpd_vlb': 4,
                'eval_reconstruction': 5}
assert set(METRICS) == set(build.METRICS)


def consistency_mse(images: np.ndarray, lows: np.ndarray) -> float:
  """The mean squared error, in [0, 1] units, between uint8 upsampled images [N, H, W, C]
  downsampled to their low-resolution inputs' size (the upsampler's own downsampling) and
  those inputs [N, h, w, C]: how faithful a cascade's upsampler is to its base."""
  down = sde_lib.conditioning.downsample(jnp.asarray(images, jnp.float32) / 255.0,
                                         lows.shape[1])
  return float(jnp.mean((down - jnp.asarray(lows, jnp.float32) / 255.0) ** 2))


def _eval_steps(job: Job) -> list[int]:
  """The checkpoints to evaluate: the latest, or the kept ones in [begin_ckpt, end_ckpt]."""
  ev = job.config.eval
  steps = sorted(job.manager.all_steps())
  if not steps:
    raise JobError(f'no checkpoint in {job.workdir / "checkpoints"}; run --mode train first')
  if ev.begin_ckpt <= 0:
    return steps[-1:]
  chosen = [s for s in steps if ev.begin_ckpt <= s <= (ev.end_ckpt or s)]
  if not chosen:
    raise JobError(f'no checkpoint between eval.begin_ckpt={ev.begin_ckpt} and '
                   f'eval.end_ckpt={ev.end_ckpt}; have: {steps}')
  return chosen


def _summary(metrics: dict[str, Any]) -> str:
  return ', '.join(f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}'
                   for k, v in metrics.items() if k != 'step')


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[int, dict[str, Any]]:
  """Test loss, bits/dim and sample quality of chosen checkpoints, into workdir/eval/*.json.

  A checkpoint whose JSON exists is skipped, so a preempted evaluation resumes.

  Returns:
    {step: metrics}.
  """
  job = Job(config, workdir)
  evaluator = Evaluator(job)
  results = {}
  for step in _eval_steps(job):
    path = evaluator.out / f'step_{step:08d}.json'
    if path.exists():
      results[step] = json.loads(path.read_text())
      continue
    metrics = evaluator.metrics(job.restore(step).ema_params, step)
    if jax.process_index() == 0:
      io.write_json(path, metrics)
      print(f'step {step}: {_summary(metrics)} -> {path}')
    results[step] = metrics
  return results
