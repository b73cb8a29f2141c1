"""Sampling from a job's network: the compiled sampler, and --mode sample."""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

import sde_lib
from run_lib import io
from run_lib.build import Job, Prompts, create_dataset, split_images, stream
from run_lib.errors import JobError
from run_lib.mesh import gather
from run_lib.state import TrainState

_TRAJECTORY_ROWS = 8  # samples shown in the trajectory strip
_TEST_LOWS = 64  # distinct test images a super-resolution job's snapshots upsample


def global_array(job: Job, x: np.ndarray) -> jax.Array:
  """An array every host holds whole, sharded over the batch axis of the job's mesh."""
  return jax.make_array_from_callback(x.shape, job.sharded, lambda index: x[index])


class Drawn(NamedTuple):
  """Samples as uint8 images [N, H, W, C], what each cost, the trajectory strip, for a
  class-conditional job the class of each sample [N], and for a text-conditional job the
  caption of each (and the labels of the test examples the captions come from, if known)."""

  images: np.ndarray
  nfe: int
  strip: np.ndarray | None = None
  labels: np.ndarray | None = None
  captions: tuple[str, ...] | None = None


def compiled_sampler(job: Job, n: int, n_frames: int, per_row: int = 1):
  """The jitted sampler of n images, compiled once per job, size, frame count and (for a
  class-conditional job) samples per class: run(params, classifier_params, rng, first,
  tokens, low), where `first` is the number of the batch's first sample, which sets the
  classes (Conditioning.labels), `tokens` [n, L] are the captions of a text-conditional
  job and `low` [n, h, w, C] the low-resolution images (model space) of a
  super-resolution job (each None otherwise).

  With n_frames it also returns, for the first rows of the batch, the trajectory's
  states and the denoiser's predictions of x(0) from them, [F, R, ...] each; a latent
  model's samples, states and predictions come decoded to images.
  """
  key = ('sampler', n, n_frames, per_row)
  if key not in job.compiled:
    shape = (n,) + job.task.sample_shape(job.image_shape)  # a latent model's: latents
    rows = min(n, _TRAJECTORY_ROWS)
    conditional = (bool(job.conditioning.classes) or job.conditioning.text
                   or job.task.name == 'super_resolution')

    @jax.jit
    def run(params, classifier_params, rng, first, tokens, low):
      prior_rng, rng = jax.random.split(rng)
      # Sharding the initial noise splits the whole sampler over the devices.
      x_T = jax.lax.with_sharding_constraint(job.sde.prior_sampling(prior_rng, shape),
                                             job.sharded)
      labels = (jax.lax.with_sharding_constraint(
          job.conditioning.labels(first + jnp.arange(n), per_row), job.sharded)
                if job.conditioning.classes else None)
      inputs = (None if low is None else
                job.task.sampling_inputs(jax.random.fold_in(prior_rng, 1), low, shape[1]))
      score_fn = job.sampling_score_fn(params, labels, classifier_params, tokens, inputs)
      out = job.sampler(rng, job.sde, score_fn, x_T, n_frames=n_frames)
      images = job.task.to_images(params, out.x)  # a latent model's decoded
      if not n_frames:
        return images, out.nfe
      states = out.trajectory.x[:, :rows]
      if conditional:  # the guided prediction of the first rows, from their own conditions
        first_rows = lambda tree: jax.tree.map(lambda leaf: leaf[:rows], tree)
        guided = job.sampling_score_fn(params, first_rows(labels), classifier_params,
                                       first_rows(tokens), first_rows(inputs))
        denoise_fn = lambda x, t: sde_lib.denoiser(job.sde, guided, x, t)
      else:
        denoise_fn = job.task.denoise_fn(params)
      # The last state is the sample itself, at a time the network may not be defined at.
      denoised = jax.vmap(lambda t, x: denoise_fn(x, jnp.full(x.shape[:1], t)))(
          out.trajectory.t[:-1], states[:-1])
      frames = jax.vmap(lambda x: job.task.to_images(params, x))
      return images, out.nfe, (frames(states),
                               frames(jnp.concatenate([denoised, states[-1:]])))

    job.compiled[key] = run
  return job.compiled[key]


def draw(job: Job, params: Any, rng: jax.Array, n: int, n_frames: int = 0, *, first: int = 0,
         per_row: int | None = None, prompts: Prompts | None = None,
         low: np.ndarray | None = None) -> Drawn:
  """n images drawn with the job's sampler from these parameters, on every device.

  With n_frames >= 2 also the `io.trajectory_strip` of the first few samples. A
  class-conditional job draws samples first.. of the classes in turn, per_row each
  (default: n spread over the classes); a text-conditional one the captions of `prompts`
  (default: job.prompts) in turn; a super-resolution job upsamples `low` [n, h, w, C]
  (model space; default: the first test images, downsampled).
  """
  if job.task.name == 'super_resolution':
    low = global_array(job, test_lows(job, n) if low is None else low)
  c = job.conditioning
  prompts = (prompts or job.prompts) if c.text else None
  per_row = per_row or (prompts.per_row(n) if prompts else job.per_row(n)) or 1
  classifier_params = job.classifier.params if job.classifier else None
  index = first + np.arange(n)
  labels = c.labels(index, per_row) if c.classes else None
  captions, tokens = None, None
  if prompts:
    chosen = prompts.index(index, per_row)
    captions = tuple(prompts.captions[i] for i in chosen)
    tokens = global_array(job, prompts.tokens[chosen])
    labels = None if prompts.labels is None else prompts.labels[chosen]
  out = compiled_sampler(job, n, n_frames, per_row)(params, classifier_params, rng,
                                                    jnp.int32(first), tokens, low)
  images = io.to_uint8_images(gather(out[0]), job.centered)
  if not n_frames:
    return Drawn(images, int(out[1]), labels=labels, captions=captions)
  states, denoised = out[2]
  strip = io.trajectory_strip(io.to_uint8_images(gather(states), job.centered),
                              io.to_uint8_images(gather(denoised), job.centered))
  return Drawn(images, int(out[1]), strip, labels, captions)


def draw_many(job: Job, params: Any, key: jax.Array, n: int, n_frames: int = 0,
              desc: str = 'sampling', prompts: Prompts | None = None,
              low: np.ndarray | None = None) -> Drawn:
  """n images in batches of sampling.batch_size, batch i from fold_in(key, i); the strip
  (with n_frames) is the first batch's. A class-conditional job's n samples are the
  classes in turn, a text-conditional job's the captions of `prompts` (default:
  job.prompts), in equal blocks (one grid row each); a super-resolution job's upsample
  `low` [n, h, w, C] (model space), as `draw`."""
  batch = job.config.sampling.batch_size
  prompts = (prompts or job.prompts) if job.conditioning.text else None
  per_row = prompts.per_row(n) if prompts else job.per_row(n)
  if low is not None:  # the last batch is filled up with its last image
    low = low[np.minimum(np.arange(-(-n // batch) * batch), n - 1)]
  chunks, labels, captions, nfe, strip = [], [], [], 0, None
  for i in tqdm.trange(-(-n // batch), desc=desc, disable=jax.process_index() != 0):
    drawn = draw(job, params, jax.random.fold_in(key, i), batch, n_frames if i == 0 else 0,
                 first=i * batch, per_row=per_row, prompts=prompts,
                 low=None if low is None else low[i * batch:(i + 1) * batch])
    chunks.append(drawn.images)
    labels.append(drawn.labels)
    captions.extend(drawn.captions or ())
    nfe, strip = drawn.nfe, strip if drawn.strip is None else drawn.strip
  has_labels = labels[0] is not None
  return Drawn(np.concatenate(chunks)[:n], nfe, strip,
               np.concatenate(labels)[:n] if has_labels else None,
               tuple(captions[:n]) if prompts else None)


def test_lows(job: Job, n: int) -> np.ndarray:
  """The first n test images (cycling) downsampled to a super-resolution job's inputs:
  what its snapshots upsample during training (model space)."""
  key = ('test_lows', n)
  if key not in job.compiled:
    images = test_images(job, min(n, _TEST_LOWS))['image']
    images = images[np.arange(n) % len(images)]
    job.compiled[key] = np.asarray(
        sde_lib.conditioning.downsample(jnp.asarray(images), job.task.low_size))
  return job.compiled[key]


class Cascaded(NamedTuple):
  """A cascade's samples: the final stage's (`final`, with the captions that drove the
  base) and each earlier stage's, base first."""

  final: Drawn
  stages: tuple[Drawn, ...]


def draw_cascade(job: Job, params: Any, key: jax.Array, n: int, n_frames: int = 0,
                 desc: str = 'sampling', prompts: Prompts | None = None) -> Cascaded:
  """n images of a job; a super-resolution job's are upsampled from n images of its base
  stage (drawn the same way, so longer cascades recurse), each stage with its own
  parameters, sampler and batch size. Captions drive every text stage alike: `prompts`,
  by default the last text stage's."""
  if job.task.name != 'super_resolution':
    return Cascaded(draw_many(job, params, key, n, n_frames, desc, prompts), ())
  base = job.base
  if job.conditioning.text:
    prompts = prompts or job.prompts
  below = draw_cascade(base.job, base.params, jax.random.fold_in(key, 0), n, 0,
                       f'{desc} (base {base.job.workdir.name})',
                       prompts if base.job.conditioning.text else None)
  # The upsampler conditions on the base's images as they are saved, in 8 bits.
  low = below.final.images.astype(np.float32) / 255.0
  low = 2.0 * low - 1.0 if job.centered else low
  drawn = draw_many(job, params, jax.random.fold_in(key, 1), n, n_frames, desc, prompts, low)
  if drawn.captions is None and below.final.captions is not None:
    drawn = drawn._replace(captions=below.final.captions, labels=below.final.labels)
  return Cascaded(drawn, below.stages + (below.final,))


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
  run(params, classifier_params, rng, y, labels, tokens) -> (completions, nfe), labels
  and tokens (captions) the conditions of a conditional job, else None. The sampler
  replaces the known part at every step and the result carries it exactly."""
  key = ('completer', n)
  if key not in job.compiled:

    @jax.jit
    def run(params, classifier_params, rng, y, labels, tokens):
      prior_rng, rng = jax.random.split(rng)
      x_T = jax.lax.with_sharding_constraint(job.sde.prior_sampling(prior_rng, y.shape),
                                             job.sharded)
      replacement = job.completion.replacement(job.sde, y)
      score_fn = job.sampling_score_fn(params, labels, classifier_params, tokens)
      out = job.sampler(rng, job.sde, score_fn, x_T, replace=replacement)
      return replacement.paste(out.x), out.nfe

    job.compiled[key] = run
  return job.compiled[key]


def test_images(job: Job, m: int) -> dict[str, np.ndarray]:
  """The first m examples of the test split (images in model space, every host)."""
  batch = job.config.eval.batch_size
  examples = split_images(create_dataset(job.config, job.workdir, 'test', batch), batch, limit=m)
  if len(examples['image']) < m:
    raise JobError(f'the test split has {len(examples["image"])} images; sampling.num_samples '
                   f'/ sampling.completions asks for {m}')
  return examples


def complete(job: Job, params: Any, key: jax.Array, n: int) -> Completed:
  """n completions of the first test images, sampling.completions each, in batches of
  sampling.batch_size, batch i from fold_in(key, i). A class-conditional or classifier-
  guided model completes each image under its own label, a text-conditional one under its
  own caption."""
  k, batch = job.completion.completions, job.config.sampling.batch_size
  examples = test_images(job, -(-n // k))
  originals, labels, tokens = examples['image'], examples['label'], examples.get('tokens')
  source = np.repeat(np.arange(len(originals)), k)[:n]
  guided = bool(job.conditioning.guidance) and not job.conditioning.text
  classifier_params = job.classifier.params if job.classifier else None
  chunks, nfe = [], 0
  for i in tqdm.trange(-(-n // batch), desc=job.completion.task,
                       disable=jax.process_index() != 0):
    # The last batch is filled up with its last image; the extra completions are dropped.
    index = source[np.minimum(np.arange(i * batch, (i + 1) * batch), n - 1)]
    y = global_array(job, originals[index])
    y_labels = global_array(job, labels[index].astype(np.int32)) if guided else None
    y_tokens = global_array(job, tokens[index]) if job.conditioning.text else None
    x, cost = compiled_completer(job, batch)(params, classifier_params,
                                             jax.random.fold_in(key, i), y, y_labels, y_tokens)
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

  Writes workdir/samples/samples_<step>.npz (uint8 images [N, H, W, C]; for a
  class-conditional job the class of each, labels [N]; for a text-conditional job the
  caption of each, captions [N]), a PNG grid (one row per class or caption, the captions
  beside their rows) and, with sampling.trajectory_frames, trajectory_<step>.png: the first
  batch's first samples at that many times from the prior to the end, each row
  of states under-laid with the denoiser's prediction of x(0).

  Returns:
    The images.
  """
  job = Job(config, workdir)
  if not job.task.samples:
    name = job.task.name
    article = 'an' if name[0] in 'aeiou' else 'a'
    raise JobError(f'{job.workdir} trains {article} {name} (training.task={name!r}): nothing '
                   f'to sample; {_NOT_SAMPLED[name].format(workdir=job.workdir)}')
  state = require_state(job)
  step = int(state.step)
  if job.completion.task:
    return _complete_and_save(job, state, step)
  done = draw_cascade(job, state.ema_params, jax.random.fold_in(stream(config, 'sample'), step),
                      config.sampling.num_samples, config.sampling.trajectory_frames)
  drawn = done.final
  if jax.process_index() == 0:
    out = job.workdir / 'samples'
    out.mkdir(parents=True, exist_ok=True)
    written = [out / f'samples_{step:08d}.npz', out / f'samples_{step:08d}.png']
    arrays = {'images': drawn.images}
    if drawn.labels is not None:
      arrays['labels'] = drawn.labels
    if drawn.captions is not None:
      arrays['captions'] = np.asarray(drawn.captions, dtype=str)  # loads without pickle
    for k, stage in enumerate(done.stages):  # a cascade's earlier stages, base first
      arrays[f'stage{k}_images'] = stage.images
    np.savez_compressed(written[0], **arrays)
    per_row = row_length(job, len(drawn.images))
    save_grid(written[1], drawn, per_row, config.data.image_size)
    for k, stage in enumerate(done.stages):
      written.append(out / f'stage{k}_{step:08d}.png')
      save_grid(written[-1], stage, per_row, stage.images.shape[1])
    if done.stages:
      written.append(out / f'cascade_{step:08d}.png')
      io.save_png(written[-1], io.cascade_strip([s.images for s in done.stages] + [drawn.images],
                                                _TRAJECTORY_ROWS),
                  scale=io.png_scale(config.data.image_size))
    if drawn.strip is not None:
      written.append(out / f'trajectory_{step:08d}.png')
      io.save_png(written[-1], drawn.strip, scale=io.png_scale(config.data.image_size))
    c, text_job = job.conditioning, text_stage(job)
    if text_job.conditioning.text:
      print(f'{len(text_job.prompts.captions)} captions from {text_job.prompts.source}, one row '
            f'each, classifier-free guidance scale {text_job.conditioning.scale}')
    elif c.guidance:
      print(f'classes {list(c.classes)}, one row each, {c.guidance} guidance scale {c.scale}'
            + (f' for t in [{c.interval[0]}, {c.interval[1]}]' if c.interval else '')
            + (f' (classifier {job.classifier.job.workdir}, step {job.classifier.step})'
               if job.classifier else ''))
    nfe = ' + '.join(str(s.nfe) for s in done.stages + (drawn,))
    stages = ', base first' if done.stages else ''
    print(f'{len(drawn.images)} samples ({nfe} score evaluations each{stages}, '
          f'{job.sampler.method}) from step {step}: ' + ', '.join(str(p) for p in written))
  return drawn.images


# What to do instead with the workdir of a task that does not sample.
_NOT_SAMPLED = {
    'classifier': 'guide a score model by it with --config.sampling.guidance=classifier '
                  '--config.sampling.classifier_workdir={workdir}',
    'autoencoder': "--mode eval shows its reconstructions; train a latent model on it with "
                   "--config.training.task=latent --config.latent.autoencoder_workdir={workdir}",
}


def text_stage(job: Job) -> Job:
  """The job whose captions drive a cascade: the last stage that reads text (or the job)."""
  while not job.conditioning.text and job.task.name == 'super_resolution':
    job = job.base.job
  return job


def row_length(job: Job, n: int) -> int | None:
  """Samples per grid row among n of a job (of a cascade's final stage): per class or per
  caption of the stage that chose them; None when neither."""
  if job.task.name == 'super_resolution' and not job.conditioning.text:
    return row_length(job.base.job, n)
  return job.per_row(n)


def save_grid(path, drawn: Drawn, per_row: int | None, size: int) -> None:
  """The PNG grid of drawn images, one row per class or caption, the captions beside."""
  grid = io.image_grid(drawn.images, columns=per_row)
  if drawn.captions is None:
    io.save_png(path, grid, scale=io.png_scale(size))
  else:
    io.save_captioned_png(path, grid, drawn.captions[::per_row], scale=io.png_scale(size),
                          tile=size)


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
