"""Sampling from a job's network: the compiled sampler, and --mode sample."""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

import sde_lib
from run_lib import io
from run_lib.build import Job, create_dataset, stream
from run_lib.errors import JobError
from run_lib.mesh import gather
from run_lib.state import TrainState

_TRAJECTORY_ROWS = 8  # samples shown in the trajectory strip


class Drawn(NamedTuple):
  """Samples as uint8 images [N, H, W, C], what each cost, the trajectory strip, and for
  a class-conditional job the class of each sample [N]."""

  images: np.ndarray
  nfe: int
  strip: np.ndarray | None = None
  labels: np.ndarray | None = None


def compiled_sampler(job: Job, n: int, n_frames: int, per_row: int = 1):
  """The jitted sampler of n images, compiled once per job, size, frame count and (for a
  class-conditional job) samples per class: run(params, rng, first), where `first` is
  the number of the batch's first sample, which sets the classes (Conditioning.labels).

  With n_frames it also returns, for the first rows of the batch, the trajectory's
  states and the denoiser's predictions of x(0) from them, [F, R, ...] each.
  """
  key = ('sampler', n, n_frames, per_row)
  if key not in job.compiled:
    shape = (n,) + job.image_shape
    rows = min(n, _TRAJECTORY_ROWS)
    conditional = bool(job.conditioning.classes)

    @jax.jit
    def run(params, classifier_params, rng, first):
      prior_rng, rng = jax.random.split(rng)
      # Sharding the initial noise splits the whole sampler over the devices.
      x_T = jax.lax.with_sharding_constraint(job.sde.prior_sampling(prior_rng, shape),
                                             job.sharded)
      labels = (jax.lax.with_sharding_constraint(
          job.conditioning.labels(first + jnp.arange(n), per_row), job.sharded)
                if conditional else None)
      score_fn = job.sampling_score_fn(params, labels, classifier_params)
      out = job.sampler(rng, job.sde, score_fn, x_T, n_frames=n_frames)
      if not n_frames:
        return out.x, out.nfe
      states = out.trajectory.x[:, :rows]
      if conditional:  # the guided prediction of the first rows, from their own labels
        guided = job.sampling_score_fn(params, labels[:rows], classifier_params)
        denoise_fn = lambda x, t: sde_lib.denoiser(job.sde, guided, x, t)
      else:
        denoise_fn = job.task.denoise_fn(params)
      # The last state is the sample itself, at a time the network may not be defined at.
      denoised = jax.vmap(lambda t, x: denoise_fn(x, jnp.full(x.shape[:1], t)))(
          out.trajectory.t[:-1], states[:-1])
      return out.x, out.nfe, (states, jnp.concatenate([denoised, states[-1:]]))

    job.compiled[key] = run
  return job.compiled[key]


def draw(job: Job, params: Any, rng: jax.Array, n: int, n_frames: int = 0, *, first: int = 0,
         per_row: int | None = None) -> Drawn:
  """n images drawn with the job's sampler from these parameters, on every device.

  With n_frames >= 2 also the `io.trajectory_strip` of the first few samples. A
  class-conditional job draws samples first.. of the classes in turn, per_row each
  (default: n spread over the classes).
  """
  c = job.conditioning
  per_row = (per_row or c.per_row(n)) if c.classes else 1
  classifier_params = job.classifier.params if job.classifier else None
  out = compiled_sampler(job, n, n_frames, per_row)(params, classifier_params, rng,
                                                    jnp.int32(first))
  images = io.to_uint8_images(gather(out[0]), job.centered)
  labels = c.labels(first + np.arange(n), per_row) if c.classes else None
  if not n_frames:
    return Drawn(images, int(out[1]), labels=labels)
  states, denoised = out[2]
  strip = io.trajectory_strip(io.to_uint8_images(gather(states), job.centered),
                              io.to_uint8_images(gather(denoised), job.centered))
  return Drawn(images, int(out[1]), strip, labels)


def draw_many(job: Job, params: Any, key: jax.Array, n: int, n_frames: int = 0,
              desc: str = 'sampling') -> Drawn:
  """n images in batches of sampling.batch_size, batch i from fold_in(key, i); the strip
  (with n_frames) is the first batch's. A class-conditional job's n samples are the
  classes in turn, in equal blocks (one grid row each)."""
  batch = job.config.sampling.batch_size
  per_row = job.conditioning.per_row(n) if job.conditioning.classes else None
  chunks, labels, nfe, strip = [], [], 0, None
  for i in tqdm.trange(-(-n // batch), desc=desc, disable=jax.process_index() != 0):
    drawn = draw(job, params, jax.random.fold_in(key, i), batch, n_frames if i == 0 else 0,
                 first=i * batch, per_row=per_row)
    chunks.append(drawn.images)
    labels.append(drawn.labels)
    nfe, strip = drawn.nfe, strip if drawn.strip is None else drawn.strip
  return Drawn(np.concatenate(chunks)[:n], nfe, strip,
               np.concatenate(labels)[:n] if per_row else None)


class Completed(NamedTuple):
  """Completions of test images (sampling.task inpaint or colorize), uint8 images.

  Attributes:
    images: [N, H, W, C] the completions, `completions` of each test image in turn.
    originals: [M, H, W, C] the test images.
    inputs: [M, H, W, C] what the sampler kept of them (the regenerated region mid-grey;
      the grey level when colorizing).
    source: [N] the index into originals of each completion.
    labels: [M] the test images' classes, which guide a conditional model; or None.
    nfe: score evaluations per completion.
  """

  images: np.ndarray
  originals: np.ndarray
  inputs: np.ndarray
  source: np.ndarray
  labels: np.ndarray | None
  nfe: int


def compiled_completer(job: Job, n: int):
  """The jitted sampler that completes n images y (model space, sharded):
  run(params, classifier_params, rng, y, labels) -> (completions, nfe). The sampler
  replaces the known part at every step and the result carries it exactly."""
  key = ('completer', n)
  if key not in job.compiled:

    @jax.jit
    def run(params, classifier_params, rng, y, labels):
      prior_rng, rng = jax.random.split(rng)
      x_T = jax.lax.with_sharding_constraint(job.sde.prior_sampling(prior_rng, y.shape),
                                             job.sharded)
      replacement = job.completion.replacement(job.sde, y)
      score_fn = job.sampling_score_fn(params, labels, classifier_params)
      out = job.sampler(rng, job.sde, score_fn, x_T, replace=replacement)
      return replacement.paste(out.x), out.nfe

    job.compiled[key] = run
  return job.compiled[key]


def split_images(data, batch_size: int,
                 limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """A split's images (model space) and labels in order, every host's share gathered;
  only the first `limit` when given (the rest is not read)."""
  images, labels, have = [], [], 0
  for part in data.epoch(batch_size):
    valid = gather(part['mask'])
    images.append(gather(part['image'])[valid])
    labels.append(gather(part['label'])[valid])
    have += int(valid.sum())
    if limit is not None and have >= limit:
      break
  return np.concatenate(images)[:limit], np.concatenate(labels)[:limit]


def test_images(job: Job, m: int) -> tuple[np.ndarray, np.ndarray]:
  """The first m images of the test split (model space, every host) and their labels."""
  batch = job.config.eval.batch_size
  images, labels = split_images(create_dataset(job.config, job.workdir, 'test', batch), batch,
                                limit=m)
  if len(images) < m:
    raise JobError(f'the test split has {len(images)} images; sampling.num_samples / '
                   f'sampling.completions asks for {m}')
  return images, labels


def _global(job: Job, x: np.ndarray) -> jax.Array:
  """An array every host holds whole, sharded over the batch axis of the job's mesh."""
  return jax.make_array_from_callback(x.shape, job.sharded, lambda index: x[index])


def complete(job: Job, params: Any, key: jax.Array, n: int) -> Completed:
  """n completions of the first test images, sampling.completions each, in batches of
  sampling.batch_size, batch i from fold_in(key, i). A class-conditional or classifier-
  guided model completes each image under its own label."""
  k, batch = job.completion.completions, job.config.sampling.batch_size
  originals, labels = test_images(job, -(-n // k))
  source = np.repeat(np.arange(len(originals)), k)[:n]
  guided = bool(job.conditioning.guidance)
  classifier_params = job.classifier.params if job.classifier else None
  chunks, nfe = [], 0
  for i in tqdm.trange(-(-n // batch), desc=job.completion.task,
                       disable=jax.process_index() != 0):
    # The last batch is filled up with its last image; the extra completions are dropped.
    index = source[np.minimum(np.arange(i * batch, (i + 1) * batch), n - 1)]
    y = _global(job, originals[index])
    y_labels = _global(job, labels[index].astype(np.int32)) if guided else None
    x, cost = compiled_completer(job, batch)(params, classifier_params,
                                             jax.random.fold_in(key, i), y, y_labels)
    chunks.append(io.to_uint8_images(gather(x), job.centered))
    nfe = int(cost)
  fill = 0.0 if job.centered else 0.5  # mid-grey in model space
  inputs = job.completion.replacement(job.sde, jnp.asarray(originals)).observed(fill)
  return Completed(np.concatenate(chunks)[:n], io.to_uint8_images(originals, job.centered),
                   io.to_uint8_images(inputs, job.centered), source,
                   labels if guided else None, nfe)


def completion_grid(job: Job, done: Completed) -> np.ndarray:
  """One row per test image: the original, the input, the mask (inpaint: white where
  regenerated) and its completions."""
  k = job.completion.completions
  columns = [done.originals, done.inputs]
  if job.completion.mask is not None:
    white = ((1.0 - job.completion.mask) * 255).astype(np.uint8)[..., None]
    columns.append(np.broadcast_to(white, done.originals.shape))
  completions = np.zeros((len(done.originals) * k,) + done.images.shape[1:], np.uint8)
  completions[:len(done.images)] = done.images  # a short last row stays black
  rows = np.concatenate([np.stack(columns, 1),
                         completions.reshape((len(done.originals), k) + done.images.shape[1:])],
                        axis=1)
  return io.image_grid(rows.reshape((-1,) + rows.shape[2:]), columns=rows.shape[1])


def require_state(job: Job, step: int | None = None) -> TrainState:
  state = job.restore(step)
  if state is None:
    raise JobError(f'no checkpoint in {job.workdir / "checkpoints"}; run --mode train first')
  return state


def sample(config: ml_collections.ConfigDict, workdir: str) -> np.ndarray:
  """Draws config.sampling.num_samples images from the latest checkpoint's EMA parameters.

  Writes workdir/samples/samples_<step>.npz (uint8 images [N, H, W, C], and for a
  class-conditional job the class of each, labels [N]), a PNG grid (one row per class
  when conditional) and, with sampling.trajectory_frames, trajectory_<step>.png: the first
  batch's first samples at that many times from the prior to the end, each row
  of states under-laid with the denoiser's prediction of x(0).

  Returns:
    The images.
  """
  job = Job(config, workdir)
  if not job.task.samples:
    name = job.task.name
    raise JobError(f"{job.workdir} trains a {name} (training.task={name!r}): nothing to "
                   "sample; guide a score model by it with --config.sampling.guidance=classifier "
                   f'--config.sampling.classifier_workdir={job.workdir}')
  state = require_state(job)
  step = int(state.step)
  if job.completion.task:
    return _complete_and_save(job, state, step)
  drawn = draw_many(job, state.ema_params, jax.random.fold_in(stream(config, 'sample'), step),
                    config.sampling.num_samples, config.sampling.trajectory_frames)
  if jax.process_index() == 0:
    out = job.workdir / 'samples'
    out.mkdir(parents=True, exist_ok=True)
    scale = io.png_scale(config.data.image_size)
    written = [out / f'samples_{step:08d}.npz', out / f'samples_{step:08d}.png']
    if drawn.labels is None:
      np.savez_compressed(written[0], images=drawn.images)
      grid = io.image_grid(drawn.images)
    else:  # one row per requested class
      np.savez_compressed(written[0], images=drawn.images, labels=drawn.labels)
      grid = io.image_grid(drawn.images, columns=job.conditioning.per_row(len(drawn.images)))
    io.save_png(written[1], grid, scale=scale)
    if drawn.strip is not None:
      written.append(out / f'trajectory_{step:08d}.png')
      io.save_png(written[2], drawn.strip, scale=scale)
    c = job.conditioning
    if c.guidance:
      print(f'classes {list(c.classes)}, one row each, {c.guidance} guidance scale {c.scale}'
            + (f' for t in [{c.interval[0]}, {c.interval[1]}]' if c.interval else '')
            + (f' (classifier {job.classifier.job.workdir}, step {job.classifier.step})'
               if job.classifier else ''))
    print(f'{len(drawn.images)} samples ({drawn.nfe} score evaluations each, '
          f'{job.sampler.method}) from step {step}: ' + ', '.join(str(p) for p in written))
  return drawn.images


def _complete_and_save(job: Job, state: TrainState, step: int) -> np.ndarray:
  config, task = job.config, job.completion.task
  done = complete(job, state.ema_params, jax.random.fold_in(stream(config, 'sample'), step),
                  config.sampling.num_samples)
  if jax.process_index() == 0:
    out = job.workdir / 'samples'
    out.mkdir(parents=True, exist_ok=True)
    written = [out / f'{task}_{step:08d}.npz', out / f'{task}_{step:08d}.png']
    arrays = {'images': done.images, 'originals': done.originals, 'inputs': done.inputs,
              'source': done.source}
    if job.completion.mask is not None:
      arrays['mask'] = job.completion.mask.astype(np.uint8)  # 1 kept, 0 regenerated
    if done.labels is not None:
      arrays['labels'] = done.labels
    np.savez_compressed(written[0], **arrays)
    io.save_png(written[1], completion_grid(job, done), scale=io.png_scale(config.data.image_size))
    what = (f'mask {config.sampling.mask!r}' if task == 'inpaint' else 'the grey level kept')
    print(f'{len(done.images)} {task} completions of {len(done.originals)} test images ({what}, '
          f'{done.nfe} score evaluations each, {job.sampler.method}) from step {step}: '
          + ', '.join(str(p) for p in written))
  return done.images
