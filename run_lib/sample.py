"""Sampling from a job's network: the compiled sampler, draws, cascades, completion of test
images, and --mode sample."""

import hashlib
import json
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

import sde_lib
from data import scaling
from run_lib import io
from run_lib.conditions import Prompts
from run_lib.errors import JobError
from run_lib.job import Job
from run_lib.mesh import gather

_TRAJECTORY_ROWS = 8  # samples shown in the trajectory strip
_TEST_INPUTS = 64  # distinct test images whose inputs an upsampler's snapshots draw from


def global_array(job: Job, x: np.ndarray) -> jax.Array:
  """An array every host holds whole, sharded over the batch axis of the job's mesh."""
  return jax.make_array_from_callback(x.shape, job.sharded, lambda index: x[index])


class Drawn(NamedTuple):
  """Samples as uint8 images [N, H, W, C], what each cost, the trajectory strip, for a
  class-conditional job the class of each sample [N], for a text-conditional job the
  caption of each (and the labels of the test examples the captions come from, if known),
  and the length of a grid row (one per class or caption; None: a square grid)."""

  images: np.ndarray
  nfe: int
  strip: np.ndarray | None = None
  labels: np.ndarray | None = None
  captions: tuple[str, ...] | None = None
  per_row: int | None = None


class Sampled(NamedTuple):
  """What the compiled sampler returns: model-space images [n, H, W, C] (a latent model's
  decoded), the score evaluations, and with frames, for the first rows of the batch, the
  trajectory's states and the denoiser's predictions of x(0) from them, [F, R, H, W, C]
  each (decoded); None without frames."""

  images: jax.Array
  nfe: jax.Array
  states: jax.Array | None = None
  denoised: jax.Array | None = None


def compiled_sampler(job: Job, n: int, n_frames: int, per_row: int = 1):
  """The jitted sampler of n images, compiled once per job, size, frame count and (for a
  class-conditional job) samples per class: run(params, classifier_params, rng, first,
  tokens, low) -> Sampled, where `first` is the number of the batch's first sample, which
  sets the classes (Conditioning.labels), `tokens` [n, L] are the captions of a
  text-conditional job and `low` [n, ...] the images (model space) an upsampler's samples
  are drawn given (each None otherwise)."""
  key = ('sampler', n, n_frames, per_row)
  if key not in job.compiled:
    task, shape = job.task, (n,) + job.task.sample_shape(job.image_shape)
    rows = min(n, _TRAJECTORY_ROWS)
    conditional = (bool(job.conditioning.classes) or job.conditioning.text
                   or task.input_shape(job.image_shape) is not None)

    @jax.jit
    def run(params, classifier_params, rng, first, tokens, low):
      prior_rng, rng = jax.random.split(rng)
      # Sharding the initial noise splits the whole sampler over the devices.
      x_T = jax.lax.with_sharding_constraint(job.sde.prior_sampling(prior_rng, shape),
                                             job.sharded)
      conditions = {}
      if job.conditioning.classes:
        conditions['label'] = jax.lax.with_sharding_constraint(
            job.conditioning.labels(first + jnp.arange(n), per_row), job.sharded)
      if tokens is not None:
        conditions['tokens'] = tokens
      if low is not None:
        conditions['inputs'] = task.sampling_inputs(jax.random.fold_in(prior_rng, 1), low,
                                                    shape[1:3])
      score_fn = job.sampling_score_fn(params, conditions, classifier_params)
      out = job.sampler(rng, job.sde, score_fn, x_T, n_frames=n_frames)
      images = task.to_images(params, out.x)
      if not n_frames:
        return Sampled(images, out.nfe)
      states = out.trajectory.x[:, :rows]
      if conditional:  # the guided prediction of the first rows, from their own conditions
        first_rows = jax.tree.map(lambda leaf: leaf[:rows], conditions)
        guided = job.sampling_score_fn(params, first_rows, classifier_params)
        denoise_fn = lambda x, t: sde_lib.denoiser(job.sde, guided, x, t)
      else:
        denoise_fn = task.denoise_fn(params)
      # The last state is the sample itself, at a time the network may not be defined at.
      denoised = jax.vmap(lambda t, x: denoise_fn(x, jnp.full(x.shape[:1], t)))(
          out.trajectory.t[:-1], states[:-1])
      frames = jax.vmap(lambda x: task.to_images(params, x))
      return Sampled(images, out.nfe, frames(states),
                     frames(jnp.concatenate([denoised, states[-1:]])))

    job.compiled[key] = run
  return job.compiled[key]


def draw(job: Job, params: Any, rng: jax.Array, n: int, n_frames: int = 0, *, first: int = 0,
         per_row: int | None = None, prompts: Prompts | None = None,
         inputs: np.ndarray | None = None) -> Drawn:
  """n images drawn with the job's sampler from these parameters, on every device.

  With n_frames >= 2 also the `io.trajectory_strip` of the first few samples. A
  class-conditional job draws samples first.. of the classes in turn, per_row each
  (default: n spread over the classes); a text-conditional one the captions of `prompts`
  (default: the job's) in turn; an upsampler draws given `inputs` [n, h, w, C] (model
  space; default: those of the first test images).
  """
  if job.task.input_shape(job.image_shape) is not None and inputs is None:
    inputs = test_inputs(job, n)
  low = None if inputs is None else global_array(job, inputs)
  prompts = (prompts or job.prompts()) if job.prompts is not None else None
  grid_row = per_row or (prompts.per_row(n) if prompts else job.per_row(n))
  per_row = grid_row or 1
  classifier_params = job.classifier.params if job.classifier else None
  index = first + np.arange(n)
  labels = job.conditioning.labels(index, per_row) if job.conditioning.classes else None
  captions, tokens = None, None
  if prompts:
    chosen = prompts.index(index, per_row)
    captions = tuple(prompts.captions[i] for i in chosen)
    tokens = global_array(job, prompts.tokens[chosen])
    labels = None if prompts.labels is None else prompts.labels[chosen]
  out = compiled_sampler(job, n, n_frames, per_row)(params, classifier_params, rng,
                                                    jnp.int32(first), tokens, low)
  to_uint8 = lambda x: scaling.to_uint8(gather(x), centered=job.data.centered)
  strip = None
  if n_frames:
    strip = io.trajectory_strip(to_uint8(out.states), to_uint8(out.denoised))
  return Drawn(to_uint8(out.images), int(out.nfe), strip, labels, captions, grid_row)


def draw_many(job: Job, params: Any, key: jax.Array, n: int, n_frames: int = 0,
              desc: str = 'sampling', prompts: Prompts | None = None,
              inputs: np.ndarray | None = None) -> Drawn:
  """n images in batches of sampling.batch_size, batch i from fold_in(key, i); the strip
  (with n_frames) is the first batch's. A class-conditional job's n samples are the
  classes in turn, a text-conditional job's the captions of `prompts` (default: the
  job's), in equal blocks (one grid row each); an upsampler's are drawn given `inputs`
  [n, h, w, C] (model space), as `draw`."""
  batch = job.sampling.batch_size
  prompts = (prompts or job.prompts()) if job.prompts is not None else None
  per_row = prompts.per_row(n) if prompts else job.per_row(n)
  if inputs is not None:  # the last batch is filled up with its last image
    inputs = inputs[np.minimum(np.arange(-(-n // batch) * batch), n - 1)]
  chunks, labels, captions, nfe, strip = [], [], [], 0, None
  for i in tqdm.trange(-(-n // batch), desc=desc, disable=jax.process_index() != 0):
    drawn = draw(job, params, jax.random.fold_in(key, i), batch, n_frames if i == 0 else 0,
                 first=i * batch, per_row=per_row, prompts=prompts,
                 inputs=None if inputs is None else inputs[i * batch:(i + 1) * batch])
    chunks.append(drawn.images)
    labels.append(drawn.labels)
    captions.extend(drawn.captions or ())
    nfe, strip = drawn.nfe, strip if drawn.strip is None else drawn.strip
  has_labels = labels[0] is not None
  return Drawn(np.concatenate(chunks)[:n], nfe, strip,
               np.concatenate(labels)[:n] if has_labels else None,
               tuple(captions[:n]) if prompts else None, per_row)


def test_images(job: Job, m: int) -> dict[str, np.ndarray]:
  """The first m examples of the test split (images in model space, every host)."""
  examples = job.data.examples('test', job.evaluation.batch_size, limit=m)
  if len(examples['image']) < m:
    raise JobError(f'the test split has {len(examples["image"])} images; sampling.num_samples '
                   f'/ sampling.completions asks for {m}')
  return examples


def test_inputs(job: Job, n: int) -> np.ndarray:
  """The inputs an upsampler draws n samples given in its snapshots: those of the first
  test images (cycling), as of a training image (model space)."""
  key = ('test_inputs', n)
  if key not in job.compiled:
    images = test_images(job, min(n, _TEST_INPUTS))['image']
    images = images[np.arange(n) % len(images)]
    job.compiled[key] = np.asarray(job.task.input_of(jnp.asarray(images)))
  return job.compiled[key]


class Cascaded(NamedTuple):
  """A cascade's samples: the final stage's (`final`, with the captions that drove the
  base) and each earlier stage's, base first."""

  final: Drawn
  stages: tuple[Drawn, ...]


def draw_cascade(job: Job, params: Any, key: jax.Array, n: int, n_frames: int = 0,
                 desc: str = 'sampling', prompts: Prompts | None = None) -> Cascaded:
  """n images of a job; an upsampler's are drawn given n images of its base stage (drawn
  the same way, so longer cascades recurse), each stage with its own parameters, sampler
  and batch size. Captions drive every text stage alike: `prompts`, by default the last
  text stage's; the grid follows the stage that chose the classes or captions."""
  if job.base is None:
    return Cascaded(draw_many(job, params, key, n, n_frames, desc, prompts), ())
  base = job.base()
  if job.prompts is not None:
    prompts = prompts or job.prompts()
  below = draw_cascade(base.job, base.params, jax.random.fold_in(key, 0), n, 0,
                       f'{desc} (base {base.job.workdir.name})',
                       prompts if base.job.conditioning.text else None)
  # The upsampler draws given the base's images as they are saved, in 8 bits.
  inputs = scaling.uint8_to_model(below.final.images, centered=job.data.centered)
  drawn = draw_many(job, params, jax.random.fold_in(key, 1), n, n_frames, desc, prompts, inputs)
  if drawn.captions is None and below.final.captions is not None:
    drawn = drawn._replace(captions=below.final.captions, labels=below.final.labels)
  if drawn.per_row is None:
    drawn = drawn._replace(per_row=below.final.per_row)
  return Cascaded(drawn, below.stages + (below.final,))


def text_stage(job: Job) -> Job:
  """The job whose captions drive a cascade: the last stage that reads text (or the job)."""
  while not job.conditioning.text and job.base is not None:
    job = job.base().job
  return job


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
      conditions = {name: value for name, value in (('label', labels), ('tokens', tokens))
                    if value is not None}
      score_fn = job.sampling_score_fn(params, conditions, classifier_params)
      out = job.sampler(rng, job.sde, score_fn, x_T, replace=replacement)
      return replacement.paste(out.x), out.nfe

    job.compiled[key] = run
  return job.compiled[key]


def complete(job: Job, params: Any, key: jax.Array, n: int) -> Completed:
  """n completions of the first test images, sampling.completions each, in batches of
  sampling.batch_size, batch i from fold_in(key, i). A class-conditional or classifier-
  guided model completes each image under its own label, a text-conditional one under its
  own caption."""
  k, batch, centered = job.completion.completions, job.sampling.batch_size, job.data.centered
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
    chunks.append(scaling.to_uint8(gather(x), centered=centered))
    nfe = int(cost)
  mid_grey = scaling.from_unit(0.5, centered=centered)
  inputs = job.completion.replacement(job.sde, jnp.asarray(originals)).observed(mid_grey)
  return Completed(np.concatenate(chunks)[:n], scaling.to_uint8(originals, centered=centered),
                   scaling.to_uint8(inputs, centered=centered), source,
                   labels if guided else None, nfe)


def completion_grid(job: Job, done: Completed) -> np.ndarray:
  """One row per test image: the original, the input, the mask (inpaint: white where
  regenerated) and its completions."""
  k = job.completion.completions
  columns = [done.originals, done.inputs]
  if job.completion.mask is not None:
    white = scaling.to_uint8(1.0 - job.completion.mask, centered=False)[..., None]
    columns.append(np.broadcast_to(white, done.originals.shape))
  completions = np.zeros((len(done.originals) * k,) + done.images.shape[1:], np.uint8)
  completions[:len(done.images)] = done.images  # a short last row stays black
  rows = np.concatenate([np.stack(columns, 1),
                         completions.reshape((len(done.originals), k) + done.images.shape[1:])],
                        axis=1)
  return io.image_grid(rows.reshape((-1,) + rows.shape[2:]), columns=rows.shape[1])


def settings(job: Job) -> dict[str, Any]:
  """What sets the samples of a --mode sample run besides the checkpoint: the sampler, the
  number of samples, the conditions and their guidance, a completion's, and a cascade's
  base stage (its own settings and checkpoint)."""
  c, done = job.conditioning, job.completion
  out = {'sampler': job.sampler.settings(), 'num_samples': job.sampling.num_samples,
         'trajectory_frames': job.sampling.trajectory_frames, 'classes': list(c.classes),
         'guidance': c.guidance, 'scale': c.scale, 'interval': c.interval}
  if job.prompts is not None:
    out['captions'] = list(job.prompts().captions)
  if job.classifier is not None:
    out['classifier'] = [str(job.classifier.job.workdir), job.classifier.step]
  if done.task:
    out['completion'] = {'task': done.task, 'mask': done.mask_name if done.mask is not None
                         else '', 'completions': done.completions}
  if job.base is not None:
    base = job.base()
    out['base'] = {'workdir': str(base.job.workdir), 'step': base.step, **settings(base.job)}
  return out


def _tag(record: dict[str, Any]) -> str:
  """Eight hex digits of a run's settings: runs with other settings write other files."""
  return hashlib.sha1(json.dumps(record, sort_keys=True).encode()).hexdigest()[:8]


def sample(job: Job) -> np.ndarray:
  """Draws sampling.num_samples images from the latest checkpoint's EMA parameters.

  Writes workdir/samples/samples_<step>_<tag>.npz (uint8 images [N, H, W, C]; for a
  class-conditional job the class of each, labels [N]; for a text-conditional job the
  caption of each, captions [N]), a PNG grid (one row per class or caption, the captions
  beside their rows) and, with sampling.trajectory_frames, trajectory_<step>_<tag>.png: the
  first batch's first samples at that many times from the prior to the end, each row of
  states under-laid with the denoiser's prediction of x(0). <tag> stands for the run's
  settings (`settings`, written beside as samples_<step>_<tag>.json): a run with other
  settings writes files of its own, the same run the same files again.

  Returns:
    The images.
  """
  if not job.task.samples:
    name = job.task.name
    article = 'an' if name[0] in 'aeiou' else 'a'
    raise JobError(f'{job.workdir} trains {article} {name} (training.task={name!r}): nothing '
                   f'to sample; {job.task.use_instead.format(workdir=job.workdir)}')
  state = job.require_state()
  step = int(state.step)
  if job.completion.task:
    return _complete_and_save(job, state.ema_params, step)
  done = draw_cascade(job, state.ema_params, jax.random.fold_in(job.stream('sample'), step),
                      job.sampling.num_samples, job.sampling.trajectory_frames)
  drawn = done.final
  if jax.process_index() == 0:
    record = settings(job)
    name = f'{step:08d}_{_tag(record)}'
    out = job.workdir / 'samples'
    out.mkdir(parents=True, exist_ok=True)
    written = [out / f'samples_{name}.npz', out / f'samples_{name}.png',
               out / f'samples_{name}.json']
    arrays = {'images': drawn.images}
    if drawn.labels is not None:
      arrays['labels'] = drawn.labels
    if drawn.captions is not None:
      arrays['captions'] = np.asarray(drawn.captions, dtype=str)  # loads without pickle
    for k, stage in enumerate(done.stages):  # a cascade's earlier stages, base first
      arrays[f'stage{k}_images'] = stage.images
    np.savez_compressed(written[0], **arrays)
    size = job.image_shape[0]
    save_grid(written[1], drawn, drawn.per_row, size)
    io.write_json(written[2], {'step': step, **record})
    for k, stage in enumerate(done.stages):
      written.append(out / f'stage{k}_{name}.png')
      save_grid(written[-1], stage, drawn.per_row, stage.images.shape[1])
    if done.stages:
      written.append(out / f'cascade_{name}.png')
      io.save_png(written[-1], io.cascade_strip([s.images for s in done.stages] + [drawn.images],
                                                _TRAJECTORY_ROWS), scale=io.png_scale(size))
    if drawn.strip is not None:
      written.append(out / f'trajectory_{name}.png')
      io.save_png(written[-1], drawn.strip, scale=io.png_scale(size))
    text_job = text_stage(job)
    if text_job.conditioning.text:
      print(f'{len(text_job.prompts().captions)} captions from {text_job.prompts().source}, one '
            f'row each, classifier-free guidance scale {text_job.conditioning.scale}')
    elif job.conditioning.guidance:
      print(job.conditioning.describe()
            + (f' (classifier {job.classifier.job.workdir}, step {job.classifier.step})'
               if job.classifier else ''))
    nfe = ' + '.join(str(s.nfe) for s in done.stages + (drawn,))
    stages = ', base first' if done.stages else ''
    print(f'{len(drawn.images)} samples ({nfe} score evaluations each{stages}, '
          f'{job.sampler.method}) from step {step}: ' + ', '.join(str(p) for p in written))
  return drawn.images


def save_grid(path, drawn: Drawn, per_row: int | None, size: int) -> None:
  """The PNG grid of drawn images, one row per class or caption, the captions beside."""
  grid = io.image_grid(drawn.images, columns=per_row)
  if drawn.captions is None:
    io.save_png(path, grid, scale=io.png_scale(size))
  else:
    io.save_captioned_png(path, grid, drawn.captions[::per_row], scale=io.png_scale(size),
                          tile=size)


def _complete_and_save(job: Job, params: Any, step: int) -> np.ndarray:
  task = job.completion.task
  done = complete(job, params, jax.random.fold_in(job.stream('sample'), step),
                  job.sampling.num_samples)
  if jax.process_index() == 0:
    record = settings(job)
    name = f'{step:08d}_{_tag(record)}'
    out = job.workdir / 'samples'
    out.mkdir(parents=True, exist_ok=True)
    written = [out / f'{task}_{name}.npz', out / f'{task}_{name}.png', out / f'{task}_{name}.json']
    arrays = {'images': done.images, 'originals': done.originals, 'inputs': done.inputs,
              'source': done.source}
    if job.completion.mask is not None:
      arrays['mask'] = job.completion.mask.astype(np.uint8)  # 1 kept, 0 regenerated
    if done.labels is not None:
      arrays['labels'] = done.labels
    np.savez_compressed(written[0], **arrays)
    io.save_png(written[1], completion_grid(job, done), scale=io.png_scale(job.image_shape[0]))
    io.write_json(written[2], {'step': step, **record})
    print(f'{len(done.images)} {task} completions of {len(done.originals)} test images '
          f'({job.completion.describe()}, {done.nfe} score evaluations each, '
          f'{job.sampler.method}) from step {step}: ' + ', '.join(str(p) for p in written))
  return done.images
