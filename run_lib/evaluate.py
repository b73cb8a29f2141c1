"""--mode eval: the evaluators of eval.metrics over chosen checkpoints.

An evaluator is a frozen object built from its eval.* settings (`EVALUATORS`, named in
the config as big_vision names its evaluators) and called with the job's `Evaluation`
context, the parameters and the step; it returns its own keys. Its `name` is its
eval.metrics name; `samples` says whether it draws samples (its numbers then depend on
the sampler too). The context builds what
can be built once, once per job: the compiled per-batch programs, the test batches, and
the feature network with the real images' features (also cached in workdir/eval, keyed by
what made them), so evaluating many checkpoints or sweep points pays for them once.
"""

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import tqdm

import sde_lib
from data import scaling
from metrics import statistics
from run_lib import io
from run_lib.conditions import test_prompts
from run_lib.errors import JobError
from run_lib.job import Job
from run_lib.mesh import check_divisible, gather
from run_lib import sample
from run_lib.sample import draw_cascade, text_stage
from sde_lib.utils import batch_broadcast


class Evaluation:
  """The evaluation of one job's checkpoints: what can be built once is built once."""

  def __init__(self, job: Job):
    self.job = job
    check_divisible('eval.batch_size', job.evaluation.batch_size)
    self.out = job.workdir / 'eval'
    self.out.mkdir(parents=True, exist_ok=True)
    self.key = job.stream('eval')
    self._test = None
    # (feature network, real features, their labels)
    self._features = None

  def per_batch(self, name: str, fn: Callable, params: Any,
                step: int) -> list[tuple[Any, np.ndarray]]:
    """fn(params, batch, mask, rng) jitted once (under `name`) and run on every test batch,
    batch i with fold_in(key of `name`, i): [(its outputs, the batch's gathered mask)]."""
    job = self.job
    if name not in job.compiled:
      job.compiled[name] = jax.jit(fn, in_shardings=(job.replicated, job.sharded, job.sharded,
                                                     job.replicated))
    key = jax.random.fold_in(self.key, _BATCH_KEYS[name])
    results = []
    for i, batch in enumerate(tqdm.tqdm(self.test_batches(), desc=f'eval {step} {name}',
                                        disable=jax.process_index() != 0)):
      inputs = {k: jax.make_array_from_process_local_data(job.sharded, batch[k])
                for k in job.task.batch_keys}
      mask = jax.make_array_from_process_local_data(job.sharded, batch['mask'])
      results.append((job.compiled[name](params, inputs, mask, jax.random.fold_in(key, i)),
                      gather(mask)))
    return results

  @staticmethod
  def rows(parts: list[tuple[Any, np.ndarray]], pick: Callable = lambda out: out) -> np.ndarray:
    """The real (unpadded) rows of every host of `per_batch`'s per-example outputs, in
    order: pick(outputs) [B, ...] of each batch, gathered and masked."""
    return np.concatenate([gather(pick(out))[mask] for out, mask in parts])

  def test_batches(self) -> list[dict[str, np.ndarray]]:
    """This host's share of the eval split's batches, in order, padded."""
    if self._test is None:
      ev = self.job.evaluation
      self._test = list(self.job.data.open(ev.split, ev.batch_size).epoch(ev.batch_size))
    return self._test

  def features(self):
    """(feature network, real features [N, D], their labels [N]); the real ones cached in
    workdir/eval."""
    if self._features is None:
      job, ev = self.job, self.job.evaluation
      network = ev.features(_FeatureSource(self))
      tag = {'dataset': job.data.dataset, 'split': ev.split,
             'image_size': list(job.data.image_size),  # as its JSON reads back
             'centered': job.data.centered, 'features': network.description}
      cache = self.out / 'reference_features.npz'
      real = None
      if cache.exists():
        with np.load(cache, allow_pickle=False) as saved:
          if json.loads(str(saved['tag'])) == tag and 'labels' in saved:
            real, labels = saved['features'], saved['labels']
      if real is None:
        examples = job.data.examples(ev.split, ev.batch_size)
        images = scaling.to_unit(examples['image'], centered=job.data.centered)
        labels = examples['label']
        real = np.asarray(network(images)[0])
        if jax.process_index() == 0:
          tmp = cache.with_name('reference_features.tmp.npz')
          np.savez(tmp, features=real, labels=labels, tag=json.dumps(tag, sort_keys=True))
          tmp.rename(cache)
      self._features = (network, real, labels)
    return self._features

  def metrics(self, params: Any, step: int) -> dict[str, Any]:
    """The metrics of eval.metrics for these parameters, and the seconds they took."""
    started = time.monotonic()
    metrics = {}
    for evaluator in self.job.evaluation.evaluators:
      metrics.update(evaluator(self, params, step))
    return {**metrics, 'step': step, 'seconds': time.monotonic() - started}


class _FeatureSource:
  """What a feature recipe (metrics.features) gets from the job: other datasets' training
  splits from its data directory, a cache in workdir/eval, the Inception weights."""

  def __init__(self, evaluation: Evaluation):
    self._evaluation = evaluation
    self.seed = evaluation.job.seed
    self.image_size = evaluation.job.data.image_size

  def train_split(self, dataset: str,
                  image_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    examples = self._evaluation.job.data.plain(dataset, image_size).examples(
        'train', self._evaluation.job.evaluation.batch_size)
    return examples['image'], examples['label']

  def cached(self, name: str, make: Callable[[], Any]) -> Any:
    cache = self._evaluation.out / f'{name}.npz'
    if cache.exists():
      return flax.serialization.msgpack_restore(cache.read_bytes())
    value = make()
    if jax.process_index() == 0:
      cache.write_bytes(flax.serialization.msgpack_serialize(jax.device_get(value)))
    return value

  def inception_weights(self) -> str:
    path = self._evaluation.job.evaluation.inception_weights
    if not path:
      raise JobError('sample-quality metrics need the FID Inception weights: set '
                     '--config.eval.inception_weights=/path/to/inception.npz (see '
                     "metrics/inception.py for converting pytorch-fid's file), or leave fid out "
                     'of eval.metrics')
    return path


# ---------------------------------------------------------------------------------------
# The evaluators.


@dataclasses.dataclass(frozen=True)
class TestLoss:
  """test_loss: the task's loss (train=False) over the test split, weighted by real
  examples."""

  name = 'loss'
  samples = False

  def __call__(self, evaluation: Evaluation, params: Any, step: int) -> dict[str, float]:
    task = evaluation.job.task

    def loss(params, batch, mask, rng):
      return task.loss(params, batch, rng, train=False, weights=mask.astype(batch['image'].dtype))

    parts = [(float(out), int(mask.sum())) for out, mask in
             evaluation.per_batch('eval_loss', loss, params, step)]
    return {'test_loss': sum(l * n for l, n in parts) / sum(n for _, n in parts)}


@dataclasses.dataclass(frozen=True)
class NoisyAccuracy:
  """accuracy_t*: a noise-conditional classifier's accuracy on the test split diffused to
  each of `times` (fractions of T)."""

  times: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
  name = 'accuracy'
  samples = False

  def __call__(self, evaluation: Evaluation, params: Any, step: int) -> dict[str, float]:
    job = evaluation.job

    def correct(params, batch, mask, rng):
      images, labels = batch['image'], batch['label']
      logits_fn = job.task.logits_fn(params)
      hits = []
      for i, t in enumerate(self.times):
        t = jnp.full(images.shape[:1], t * job.sde.T, images.dtype)
        mean, std = job.sde.marginal_prob(images, t)
        z = jax.random.normal(jax.random.fold_in(rng, i), images.shape, images.dtype)
        x_t = mean + batch_broadcast(std, z) * z
        hits.append(jnp.sum(mask * (jnp.argmax(logits_fn(x_t, t), -1) == labels)))
      return jnp.stack(hits)

    parts = evaluation.per_batch('eval_accuracy', correct, params, step)
    hits = sum(np.asarray(out) for out, _ in parts)
    count = sum(int(mask.sum()) for _, mask in parts)
    return {f'accuracy_t{t:g}': float(h / count) for t, h in zip(self.times, hits, strict=True)}


def _levels(job: Job, images: jax.Array) -> jax.Array:
  """Model-space images as their integer grey levels k in [0, data.levels - 1]."""
  return scaling.to_levels(images, centered=job.data.centered, levels=job.data.levels)


@dataclasses.dataclass(frozen=True)
class ProbabilityFlowBpd:
  """bpd_ode: bits/dim of the dequantised test split at its data.levels grey levels,
  through the probability-flow ODE; a conditional model's of p(x | the image's label or
  caption)."""

  estimator: str
  rtol: float
  atol: float
  name = 'bpd_ode'
  samples = False

  def __call__(self, evaluation: Evaluation, params: Any, step: int) -> dict[str, float]:
    job = evaluation.job

    def bpd(params, batch, mask, rng):
      del mask
      conditions = job.task.conditions(rng, batch, train=False)
      bpd, _, _ = sde_lib.likelihood.bits_per_dim(
          rng, job.sde, job.task.conditional_score_fn(params, conditions),
          _levels(job, batch['image']), estimator=self.estimator, levels=job.data.levels,
          centered=job.data.centered, rtol=self.rtol, atol=self.atol)
      return bpd

    parts = evaluation.per_batch('eval_bpd_ode', bpd, params, step)
    return {'bpd_ode': float(np.mean(evaluation.rows(parts)))}


@dataclasses.dataclass(frozen=True)
class VariationalBound:
  """bpd_vlb: DDPM's variational bound in bits/dim on the test split at its data.levels grey
  levels (sde_lib.vlb; N = sde.N levels): the total, and its prior, decoder and KL parts.
  A conditional model's is of p(x | the image's label or caption).

  Attributes:
    variance: the reverse steps' fixed variance ('beta_tilde' or 'beta'); a network with
      learned variances uses its own.
    terms: KL terms drawn per image (0: all, exact; K: an unbiased estimate from K).
    clip_denoised: clip the prediction of x(0) to the data's range.
  """

  variance: str
  terms: int
  clip_denoised: bool
  name = 'bpd_vlb'
  samples = False

  def __call__(self, evaluation: Evaluation, params: Any, step: int) -> dict[str, float]:
    job = evaluation.job
    levels, centered = job.data.levels, job.data.centered
    clip = scaling.data_range(centered=centered) if self.clip_denoised else None

    def bound(params, batch, mask, rng):
      del mask
      conditions = job.task.conditions(rng, batch, train=False)
      kernel = job.task.reverse_kernel(params, conditions, variance=self.variance,
                                       clip_denoised=clip)
      # The bound is of the data on its grid k / (levels - 1) in model space.
      x = scaling.from_levels(_levels(job, batch['image']), centered=centered, levels=levels)
      return sde_lib.vlb.bits_per_dim(rng, job.sde, kernel, x, levels=levels,
                                      centered=centered, n_terms=self.terms or None)

    parts = evaluation.per_batch('eval_bpd_vlb', bound, params, step)
    names = {'total': 'bpd_vlb', 'prior': 'bpd_vlb_prior', 'decoder': 'bpd_vlb_decoder',
             'kl': 'bpd_vlb_terms'}
    return {key: float(np.mean(evaluation.rows(parts, lambda out: getattr(out, part))))
            for part, key in names.items()}


@dataclasses.dataclass(frozen=True)
class Reconstruction:
  """rec_mse, rec_l1, psnr, rfd: an autoencoder's (a latent model's first stage's)
  reconstructions of the test split through its posterior mean: mean squared and absolute
  error and PSNR in [0, 1] units, and the Frechet distance of the reconstructions to the
  test images in the sample metrics' feature space. Writes eval/reconstructions_<step>.png:
  test images over their reconstructions."""

  name = 'reconstruction'
  samples = False

  def __call__(self, evaluation: Evaluation, params: Any, step: int) -> dict[str, float]:
    job, centered = evaluation.job, evaluation.job.data.centered

    def errors(params, batch, mask, rng):
      del mask, rng
      images = batch['image']
      unit = lambda x: jnp.clip(scaling.to_unit(x, centered=centered), 0.0, 1.0)
      rec = unit(job.task.reconstruct(params, images))
      diff = (rec - unit(images)).reshape(images.shape[0], -1)
      return jnp.mean(jnp.square(diff), -1), jnp.mean(jnp.abs(diff), -1), rec, unit(images)

    network, real, _ = evaluation.features()
    parts = evaluation.per_batch('eval_reconstruction', errors, params, step)
    mse, l1, features, shown = [], [], [], None
    for (sq, ab, rec, real_images), mask in parts:
      rec = gather(rec)[mask]
      mse.append(gather(sq)[mask])
      l1.append(gather(ab)[mask])
      features.append(np.asarray(network(rec)[0]))
      shown = (gather(real_images)[mask], rec) if shown is None else shown
    mse = np.concatenate(mse)
    fd = statistics.frechet_distance(*statistics.feature_statistics(real),
                                     *statistics.feature_statistics(np.concatenate(features)))
    if jax.process_index() == 0:
      pairs = np.stack(shown, 1)  # [n, 2, H, W, C]: the first batch's images and theirs
      columns = min(len(pairs), 16)
      rows = pairs[:columns].transpose(1, 0, 2, 3, 4).reshape((-1,) + pairs.shape[2:])
      io.save_png(evaluation.out / f'reconstructions_{step:08d}.png',
                  io.image_grid(scaling.to_uint8(rows, centered=False), columns),
                  scale=io.png_scale(job.image_shape[0]))
    return {'rec_mse': float(mse.mean()), 'rec_l1': float(np.concatenate(l1).mean()),
            'psnr': float(np.mean(-10.0 * np.log10(np.maximum(mse, 1e-10)))), 'rfd': float(fd)}


@dataclasses.dataclass(frozen=True)
class SampleQuality:
  """fd, kid, is of `num_samples` samples, and the sampler's NFE; for samples of requested
  classes or captions also the feature network's label metrics (FD and accuracy per
  class, a prompt's accuracy); for a cascade the upsampler's consistency with its base and
  each stage's NFE."""

  num_samples: int
  kid_subset_size: int
  name = 'fid'
  samples = True

  def __call__(self, evaluation: Evaluation, params: Any, step: int) -> dict[str, Any]:
    del step
    job, n = evaluation.job, self.num_samples
    # Text-conditional models (and cascades driven by text) draw one sample per test
    # caption, whose labels are known.
    text_job = text_stage(job)
    prompts = None
    if text_job.conditioning.text:
      ev = text_job.evaluation
      prompts = test_prompts(text_job.data.parts(ev.split, ev.batch_size), n, distinct=False,
                             tokenizer=text_job.data.tokenizer)
    done = draw_cascade(job, params, jax.random.fold_in(evaluation.key, 1), n,
                        desc='eval samples', prompts=prompts)
    drawn = done.final
    images, labels = drawn.images, drawn.labels
    if labels is not None:
      # Class-conditional draws come in class blocks; the Inception Score's contiguous
      # splits would each see one class (IS = 1). Shuffled, the splits mix the classes.
      order = np.random.default_rng(job.seed).permutation(n)
      images, labels = images[order], labels[order]
    network, real, real_labels = evaluation.features()
    fake_features, fake_logits = network(scaling.from_uint8(images))
    metrics = statistics.feature_metrics(real, fake_features, fake_logits,
                                         is_splits=min(10, n), seed=job.seed,
                                         kid_subset_size=self.kid_subset_size)
    if labels is not None:
      metrics.update(network.label_metrics(real, real_labels, np.asarray(fake_features),
                                           np.asarray(fake_logits), labels))
    if done.stages:
      metrics['consistency_mse'] = consistency_mse(drawn.images, done.stages[-1].images)
      metrics.update({f'nfe_stage{k}': stage.nfe for k, stage in enumerate(done.stages)})
    c = text_job.conditioning if prompts else job.conditioning
    guided = {'guidance': c.guidance, 'guidance_scale': c.scale} if c.guidance else {}
    return {**metrics, 'num_samples': n, 'nfe': drawn.nfe, 'sampler': job.sampler.method,
            **guided}


# eval.metrics name -> its evaluator class (run_lib.builder makes it from its eval.* keys).
EVALUATORS = {'loss': TestLoss, 'bpd_ode': ProbabilityFlowBpd, 'bpd_vlb': VariationalBound,
              'fid': SampleQuality, 'accuracy': NoisyAccuracy, 'reconstruction': Reconstruction}
# The key streams of the per-batch programs.
_BATCH_KEYS = {'eval_loss': 0, 'eval_accuracy': 2, 'eval_bpd_ode': 3, 'eval_bpd_vlb': 4,
               'eval_reconstruction': 5}


def consistency_mse(images: np.ndarray, lows: np.ndarray) -> float:
  """The mean squared error, in [0, 1] units, between uint8 upsampled images [N, H, W, C]
  downsampled to their low-resolution inputs' size (the upsampler's own downsampling) and
  those inputs [N, h, w, C]: how faithful a cascade's upsampler is to its base."""
  down = sde_lib.conditioning.downsample(jnp.asarray(scaling.from_uint8(images)), lows.shape[1:3])
  return float(jnp.mean((down - jnp.asarray(scaling.from_uint8(lows))) ** 2))


def _eval_steps(job: Job) -> list[int]:
  """The checkpoints to evaluate: the latest, or the kept ones in [begin_ckpt, end_ckpt]."""
  ev = job.evaluation
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


def settings(job: Job) -> dict[str, Any]:
  """What sets an evaluation's numbers besides the checkpoint: the evaluators with their
  settings, the split, and for samples the sampler (sample.settings)."""
  out = {'evaluators': [[e.name, dataclasses.asdict(e)] for e in job.evaluation.evaluators],
         'split': job.evaluation.split}
  if any(e.samples for e in job.evaluation.evaluators):
    out['sampling'] = sample.settings(job)
  return out


def _summary(metrics: dict[str, Any]) -> str:
  return ', '.join(f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}'
                   for k, v in metrics.items() if k != 'step')


def evaluate(job: Job) -> dict[int, dict[str, Any]]:
  """The metrics of eval.metrics of the chosen checkpoints, into workdir/eval/*.json.

  Each checkpoint's metrics go to eval/step_<step>_<tag>.json, <tag> standing for the
  evaluation's settings (`settings`, also in the file): a checkpoint whose file exists is
  skipped, so a preempted evaluation resumes, and an evaluation with other settings writes
  files of its own.

  Returns:
    {step: metrics}.
  """
  evaluation = Evaluation(job)
  record = settings(job)
  tag = hashlib.sha1(json.dumps(record, sort_keys=True).encode()).hexdigest()[:8]
  results = {}
  for step in _eval_steps(job):
    path = evaluation.out / f'step_{step:08d}_{tag}.json'
    if path.exists():
      results[step] = {k: v for k, v in json.loads(path.read_text()).items()
                       if k != 'settings'}
      continue
    metrics = evaluation.metrics(job.require_state(step).ema_params, step)
    if jax.process_index() == 0:
      io.write_json(path, {**metrics, 'settings': record})
      print(f'step {step}: {_summary(metrics)} -> {path}')
    results[step] = metrics
  return results
