"""The one reader of the ConfigDict: SDE, parameterisation, network, task, optimiser,
sampler, conditioning, data and the `Job` that train, sample, evaluate and sweep share."""

import ast
import dataclasses
import functools
import json
import os
import pathlib
from collections.abc import Iterator
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from PIL import Image

import input_pipeline
import models
from configs import default as default_config
import sde_lib
import tasks
from run_lib import state as state_lib
from run_lib.errors import JobError
from run_lib.mesh import check_divisible, create_mesh, gather
from sde_lib import controllable, guidance, sampling
from sde_lib.parameterization import Parameterization, song_et_al


def create_sde(config: ml_collections.ConfigDict) -> sde_lib.SDE:
  """The SDE named by config.sde, with only the hyperparameters that SDE has."""
  cls = sde_lib.SDES.get(config.sde.name)
  if cls is None:
    raise ValueError(f'unknown sde {config.sde.name!r}; known: {sorted(sde_lib.SDES)}')
  if cls is not sde_lib.VPSDE and config.sde.schedule != 'linear':
    raise ValueError(f'sde.schedule={config.sde.schedule!r} is an option of the VP SDE '
                     f"(vpsde), not {config.sde.name!r}")
  fields = {f.name for f in dataclasses.fields(cls)}
  return cls(**{k: v for k, v in config.sde.items() if k in fields})


def create_parameterization(config: ml_collections.ConfigDict,
                            sde: sde_lib.SDE) -> Parameterization:
  """What the network predicts and sees: config.model.output / time_input, each
  defaulting ('') to Song et al.'s choice for the SDE and training.continuous."""
  published = song_et_al(sde, continuous=config.training.continuous,
                         scale_by_sigma=config.model.scale_by_sigma)
  return Parameterization(output=config.model.output or published.output,
                          time_input=config.model.time_input or published.time_input,
                          scale_by_sigma=config.model.scale_by_sigma,
                          learned_variance=config.model.learned_variance)


# Networks that take text tokens in their attention layers (GLIDE's concatenated keys and
# values) and extra input channels (a super-resolution model's low-resolution image).
_TEXT_MODELS = ('ncsnpp', 'ddpm')


def create_model(config: ml_collections.ConfigDict) -> nn.Module:
  """The network named by config.model.name, given the config.model keys it has; for
  training.task='classifier' the noise-conditional classifier on its encoder, for
  'autoencoder' the autoencoder of config.autoencoder."""
  if config.training.task not in tasks.TASKS:
    raise ValueError(f'unknown training.task {config.training.task!r}; known: '
                     f'{list(tasks.TASKS)}')
  if config.training.task == 'autoencoder':
    return create_autoencoder(config)
  cls = models.get_model(config.model.name)
  if config.training.task == 'super_resolution' and config.model.name not in _TEXT_MODELS:
    raise ValueError(f"training.task='super_resolution' concatenates the low-resolution image "
                     f'to the input of {list(_TEXT_MODELS)}, not model {config.model.name!r}')
  if config.training.task == 'classifier':
    if cls is not models.NCSNpp:
      raise ValueError(f"training.task='classifier' builds on the ncsnpp encoder, not model "
                       f'{config.model.name!r}')
    if config.model.num_classes:
      raise ValueError("training.task='classifier' takes no class conditioning "
                       '(model.num_classes must be 0; its classes are model.num_outputs)')
    cls = models.Classifier
  options = {f.name for f in dataclasses.fields(cls)} - {'parent', 'name'}
  kwargs = {k: v for k, v in config.model.items() if k in options}
  kwargs['centered'] = config.data.centered
  if 'num_classes' in options:
    kwargs['num_classes'] = config.model.num_classes or None
  if 'num_levels' in options:  # NCSN: one row of norm scales per noise level
    kwargs['num_levels'] = config.sde.N
  if config.model.learned_variance:
    if 'out_channels' not in options or config.training.task != 'diffusion':
      raise ValueError('model.learned_variance needs a diffusion model of '
                       f"{list(_TEXT_MODELS)}, not {config.training.task} "
                       f'{config.model.name!r}')
    kwargs['out_channels'] = 2 * config.data.num_channels
  return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()})


def create_autoencoder(config: ml_collections.ConfigDict) -> models.AutoencoderKL:
  """LDM's KL autoencoder of config.autoencoder for the data's images."""
  a, data = config.autoencoder, config.data
  f = 2 ** (len(a.ch_mult) - 1)
  if data.image_size % f:
    raise ValueError(f'autoencoder.ch_mult={tuple(a.ch_mult)} downsamples by f = {f}, which '
                     f'does not divide data.image_size={data.image_size}')
  for key in ('ch', 'z_channels', 'embed_dim', 'norm_groups', 'num_res_blocks'):
    if a[key] < 1:
      raise ValueError(f'autoencoder.{key} must be at least 1, got {a[key]}')
  widths = sorted({a.ch * m for m in a.ch_mult})
  if any(w % a.norm_groups for w in widths):
    raise ValueError(f'autoencoder.norm_groups={a.norm_groups} must divide every width '
                     f'{widths} (autoencoder.ch times ch_mult)')
  model = models.AutoencoderKL(
      in_channels=data.num_channels, out_channels=data.num_channels, ch=a.ch,
      ch_mult=tuple(a.ch_mult), num_res_blocks=a.num_res_blocks, resolution=data.image_size,
      attn_resolutions=tuple(a.attn_resolutions), mid_attention=a.mid_attention,
      z_channels=a.z_channels, embed_dim=a.embed_dim, dropout=a.dropout,
      norm_groups=a.norm_groups)
  try:
    model._attn_levels()  # noqa: SLF001 (checks attn_resolutions now, not at the first call)
  except ValueError as e:
    raise ValueError(f'autoencoder.attn_resolutions: {e}') from None
  return model


def create_autoencoder_task(config: ml_collections.ConfigDict,
                            model: models.AutoencoderKL) -> tasks.Autoencoder:
  """The autoencoder task of config.autoencoder (its loss) around `model`."""
  a = config.autoencoder
  if a.rec_loss not in tasks.autoencoder.REC_LOSSES:
    raise ValueError(f'unknown autoencoder.rec_loss {a.rec_loss!r}; known: '
                     f'{list(tasks.autoencoder.REC_LOSSES)}')
  for key in ('kl_weight', 'disc_weight', 'disc_factor', 'perceptual_weight', 'disc_layers'):
    if a[key] < 0:
      raise ValueError(f'autoencoder.{key} must be >= 0, got {a[key]}')
  size = config.data.image_size
  # The PatchGAN halves the size n times, then its two stride-1 4x4 convs take 1 pixel each.
  if a.disc_layers and size // 2**a.disc_layers - 2 < 1:
    most = max((n for n in range(1, 9) if size // 2**n - 2 >= 1), default=0)
    raise ValueError(f'autoencoder.disc_layers={a.disc_layers} leaves no patches of '
                     f'{size}x{size} images (at most {most}; 0 for no discriminator)')
  if a.lpips_weights and size < models.lpips.MIN_SIZE:
    raise ValueError(f'autoencoder.lpips_weights: LPIPS (VGG16) needs images of at least '
                     f'{models.lpips.MIN_SIZE}x{models.lpips.MIN_SIZE}, not {size}x{size}')
  discriminator = (models.NLayerDiscriminator(ndf=a.disc_ndf, n_layers=a.disc_layers)
                   if a.disc_layers else None)
  return tasks.Autoencoder(
      model, centered=config.data.centered, rec_loss=a.rec_loss, kl_weight=a.kl_weight,
      logvar_init=a.logvar_init, discriminator=discriminator, disc_start=a.disc_start,
      disc_weight=a.disc_weight, disc_factor=a.disc_factor,
      lpips=models.LPIPS() if a.lpips_weights else None,
      perceptual_weight=a.perceptual_weight)


@dataclasses.dataclass(frozen=True, eq=False)
class FirstStage:
  """A latent model's frozen autoencoder: its task (network and data range), where it comes
  from, and how to read its weights (the 'autoencoder' tree), done once, when a latent
  model starts training; later its checkpoints hold them."""

  task: tasks.Autoencoder
  source: str
  read_params: Any


def load_first_stage(config: ml_collections.ConfigDict,
                     image_shape: tuple[int, ...]) -> FirstStage:
  """The autoencoder of latent.autoencoder_workdir (a finished autoencoder job of these
  images) or of latent.autoencoder_weights (a PyTorch AutoencoderKL in .safetensors)."""
  latent = config.latent
  if bool(latent.autoencoder_workdir) == bool(latent.autoencoder_weights):
    raise ValueError("training.task='latent' needs its autoencoder: set one of "
                     'latent.autoencoder_workdir (an autoencoder job) and '
                     'latent.autoencoder_weights (a .safetensors file)')
  if latent.autoencoder_weights:
    path = latent.autoencoder_weights
    try:
      options, params = models.convert_state_dict(
          models.read_safetensors(path), norm_groups=config.autoencoder.norm_groups,
          resolution=image_shape[0])
      model = models.AutoencoderKL(**options)
    except ValueError as e:
      raise JobError(f'latent.autoencoder_weights {path!r}: {e}') from None
    if (model.in_channels, model.out_channels) != (image_shape[2],) * 2:
      raise JobError(f'the autoencoder in {path!r} takes {model.in_channels}-channel images; '
                     f'the data have {image_shape[2]} (data.num_channels)')
    # A frozen first stage only encodes and decodes: config.autoencoder's loss terms (its
    # discriminator, LPIPS) are an autoencoder job's, not this one's.
    task = tasks.Autoencoder(model, centered=config.data.centered)
    return FirstStage(task, path, lambda: params)
  path = latent.autoencoder_workdir
  ae_config = saved_config(path, 'latent.autoencoder_workdir',
                           "train an autoencoder there first (training.task='autoencoder')")
  if ae_config.training.task != 'autoencoder':
    raise JobError(f'latent.autoencoder_workdir {path!r} holds a {ae_config.training.task} '
                   "job, not an autoencoder (training.task='autoencoder')")
  ae_shape = (ae_config.data.image_size, ae_config.data.image_size,
              ae_config.data.num_channels)
  if ae_shape != tuple(image_shape) or ae_config.data.centered != config.data.centered:
    raise JobError(f'the autoencoder in {path!r} was trained on images {ae_shape} '
                   f'(centered={ae_config.data.centered}); this job\'s are {tuple(image_shape)} '
                   f'(centered={config.data.centered})')
  ae_job = Job(ae_config, path)
  finished = ae_job.workdir / FINISHED
  if not finished.exists():
    step = ae_job.manager.latest_step()
    raise JobError(f'the autoencoder in {path!r} is unfinished ('
                   + ('no checkpoint' if step is None else f'checkpoint {step} of '
                      f'training.n_iters={ae_config.training.n_iters}')
                   + '): finish its training first')

  def read_params():
    state = ae_job.restore()
    if state is None:
      raise JobError(f'no checkpoint in {ae_job.workdir / "checkpoints"}')
    return jax.device_get(state.ema_params['autoencoder'])

  return FirstStage(ae_job.task, path, read_params)


def first_stage_of(ae_config: ml_collections.ConfigDict, source: str) -> FirstStage:
  """The first stage an autoencoder config describes, without weights (they are the task's
  stand-ins): what tests and benchmarks build a paper-scale latent task from."""
  task = create_autoencoder_task(ae_config, create_autoencoder(ae_config))
  return FirstStage(task, source, None)


# Written into a workdir when its training ends as configured (n_iters or max_minutes): a
# latent model's autoencoder must be one that did.
FINISHED = 'finished.json'


def create_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Adam with linear warmup from 0 and global-norm gradient clipping, as in Song et al."""
  optim = config.optim
  if optim.optimizer != 'adam':
    raise ValueError(f"unknown optimizer {optim.optimizer!r}; known: ['adam']")
  lr = optax.linear_schedule(0.0, optim.lr, optim.warmup) if optim.warmup > 0 else optim.lr
  adam = (optax.adamw(lr, b1=optim.beta1, b2=optim.beta2, eps=optim.eps,
                      weight_decay=optim.weight_decay)
          if optim.weight_decay > 0 else
          optax.adam(lr, b1=optim.beta1, b2=optim.beta2, eps=optim.eps))
  if optim.grad_clip > 0:
    return optax.chain(optax.clip_by_global_norm(optim.grad_clip), adam)
  return adam


def create_loss_fn(config: ml_collections.ConfigDict, sde: sde_lib.SDE) -> tasks.diffusion.LossFn:
  """loss(rng, score_fn, images): continuous DSM, or DDPM's (VP) / SMLD's (VE) discrete loss;
  with model.learned_variance loss(rng, score_and_v_fn, images), improved DDPM's hybrid."""
  training = config.training
  if config.model.learned_variance:
    if training.continuous or not isinstance(sde, sde_lib.VPSDE):
      raise ValueError('model.learned_variance trains by the hybrid loss on DDPM\'s discrete '
                       'levels: training.continuous=False and sde.name=vpsde')
    return functools.partial(sde_lib.losses.hybrid_loss, sde=sde, levels=config.data.levels,
                             centered=config.data.centered, vlb_weight=training.vlb_weight,
                             reduce_mean=training.reduce_mean)
  if training.continuous:
    return functools.partial(sde_lib.losses.dsm_loss, sde=sde, reduce_mean=training.reduce_mean,
                             likelihood_weighting=training.likelihood_weighting)
  if training.likelihood_weighting:
    raise ValueError('likelihood_weighting needs training.continuous=True')
  if isinstance(sde, sde_lib.VPSDE):
    return functools.partial(sde_lib.losses.ddpm_loss, sde=sde, reduce_mean=training.reduce_mean)
  if isinstance(sde, sde_lib.VESDE):
    return functools.partial(sde_lib.losses.smld_loss, sde=sde, reduce_mean=training.reduce_mean)
  raise ValueError(f'discrete training (training.continuous=False) exists for vpsde (DDPM) and '
                   f'vesde (SMLD), not {config.sde.name!r}')


# The config keys each sampler reads, as its keyword arguments.
_SAMPLER_OPTIONS = {
    'pc': {'predictor': 'predictor', 'corrector': 'corrector', 'snr': 'snr',
           'corrector_steps': 'corrector_steps', 'probability_flow': 'probability_flow',
           'denoise': 'denoise'},
    'ode': {'solver': 'ode_method', 'rtol': 'rtol', 'atol': 'atol'},
    'ddim': {'eta': 'eta'},
    'dpm_solver_pp': {'order': 'order', 'lower_order_final': 'lower_order_final'},
    'dpm_solver_pp_sde': {'order': 'order', 'lower_order_final': 'lower_order_final'},
    'unipc': {'order': 'order', 'lower_order_final': 'lower_order_final'},
    'edm_heun': {'s_churn': 's_churn', 's_min': 's_min', 's_max': 's_max', 's_noise': 's_noise'},
}
assert set(_SAMPLER_OPTIONS) == set(sampling.SAMPLERS)


@dataclasses.dataclass(frozen=True)
class SamplerSpec:
  """A configured sampler: sampling.sample's method, grid and options."""

  method: str
  n_steps: int
  schedule: str
  eps: float
  rho: float
  options: dict

  def __call__(self, rng, sde, score_fn, x_T, n_frames: int = 0,
               replace: sampling.Replace | None = None) -> sampling.SampleOutput:
    return sampling.sample(self.method, rng, sde, score_fn, x_T, n_steps=self.n_steps,
                           schedule=self.schedule, eps=self.eps, rho=self.rho,
                           n_frames=n_frames, replace=replace, **self.options)


def create_sampler(config: ml_collections.ConfigDict, sde: sde_lib.SDE) -> SamplerSpec:
  """The sampler of config.sampling, checked now, not at the first snapshot hours later.

  Raises:
    ValueError: naming the bad sampling.* value and the allowed ones.
  """
  s = config.sampling
  if s.method not in _SAMPLER_OPTIONS:
    raise ValueError(f'unknown sampling.method {s.method!r}; known: {sorted(_SAMPLER_OPTIONS)}')
  known = {'predictor': sampling.PREDICTORS, 'corrector': sampling.CORRECTORS,
           'ode_method': sampling.SOLVERS, 'schedule': sampling.SCHEDULES}
  for key, names in known.items():
    if s[key] not in names:
      raise ValueError(f'unknown sampling.{key} {s[key]!r}; known: {sorted(names)}')
  if s.trajectory_frames == 1 or s.trajectory_frames < 0:
    raise ValueError('sampling.trajectory_frames must be 0 (no strip) or at least 2, got '
                     f'{s.trajectory_frames}')
  options = {arg: s[key] for arg, key in _SAMPLER_OPTIONS[s.method].items()}
  spec = SamplerSpec(s.method, sde.N if s.n_steps is None else s.n_steps, s.schedule, s.eps,
                     s.rho, options)
  try:
    # Tracing it once on a stand-in score checks every option; nothing is computed.
    jax.eval_shape(lambda: spec(jax.random.key(0), sde, lambda x, t: -x,
                                jax.numpy.zeros((1, 2))))
  except ValueError as e:
    raise ValueError(f'sampling.* ({spec.method}): {e}') from None
  return spec


@dataclasses.dataclass(frozen=True)
class Conditioning:
  """What the job's samples are conditioned on: nothing (guidance ''), or the classes to
  draw, in blocks of `per_row` consecutive samples, under classifier-free guidance of a
  class-conditional network ('classifier-free') or classifier guidance ('classifier').

  A text-conditional network draws captions instead (Prompts), under classifier-free
  guidance on them.

  Attributes:
    num_classes: the network's classes (its null class), 0 if unconditional.
    label_dropout: the training batches' label dropout.
    classes: the classes drawn, in turn.
    scale: the guidance scale s (sde_lib.guidance).
    interval: (t_lo, t_hi) of classifier-free guidance, or None for every t.
    guidance: '', 'classifier-free' or 'classifier'.
    text: the network reads captions.
  """

  num_classes: int
  label_dropout: float
  classes: tuple[int, ...]
  scale: float
  interval: tuple[float, float] | None
  guidance: str
  text: bool = False

  def labels(self, index, per_row: int):
    """The class of sample number `index` (NumPy or jnp ints): the classes in turn,
    `per_row` samples each."""
    classes = (jnp if isinstance(index, jax.Array) else np).asarray(self.classes, np.int32)
    return classes[(index // per_row) % len(self.classes)]

  def per_row(self, n: int) -> int:
    """Samples per class among n: the grid's row length."""
    return -(-n // len(self.classes))


def create_conditioning(config: ml_collections.ConfigDict, model: nn.Module,
                        classifier_classes: int = 0, text: bool = False) -> Conditioning:
  """model.num_classes, conditioning.label_dropout and sampling's classes and guidance,
  checked together; classifier_classes: the guiding classifier's, for sampling.guidance
  'classifier'; text: the network reads captions (classifier-free guidance on them).

  Raises:
    ValueError: naming the bad value.
  """
  k, s = config.model.num_classes, config.sampling
  rate = config.conditioning.label_dropout
  if k < 0:
    raise ValueError(f'model.num_classes must be 0 (unconditional) or more, got {k}')
  if k and 'num_classes' not in {f.name for f in dataclasses.fields(type(model))}:
    raise ValueError(f'model {config.model.name!r} has no class conditioning '
                     '(model.num_classes must be 0)')
  if not 0.0 <= rate <= 1.0:
    raise ValueError(f'conditioning.label_dropout must be in [0, 1], got {rate}')
  if s.guidance_t_lo > s.guidance_t_hi:
    raise ValueError(f'sampling.guidance_t_lo={s.guidance_t_lo} is above '
                     f'sampling.guidance_t_hi={s.guidance_t_hi}')
  if s.guidance not in ('', 'classifier'):
    raise ValueError(f"unknown sampling.guidance {s.guidance!r}; known: ['', 'classifier']")
  wanted = str(s.class_labels).replace(' ', '').strip('()[]')
  interval = None if (s.guidance_t_lo, s.guidance_t_hi) == (0.0, 1.0) else (
      float(s.guidance_t_lo), float(s.guidance_t_hi))
  if text:
    if k or s.guidance or wanted:
      raise ValueError('a text-conditional model (text.layers > 0) is guided by its captions: '
                       "model.num_classes=0, sampling.class_labels='' and sampling.guidance=''")
    return Conditioning(0, 0.0, (), float(s.guidance_scale), interval, 'classifier-free', True)
  if s.guidance == 'classifier':
    if k:
      raise ValueError(f"sampling.guidance='classifier' guides an unconditional model; this one "
                       f"has model.num_classes={k} (classifier-free guidance: sampling.guidance='')")
    n, guidance = classifier_classes, 'classifier'
  elif k:
    n, guidance = k, 'classifier-free'
  else:
    for key, value, default in (('conditioning.label_dropout', rate, 0.0),
                                ('sampling.guidance_scale', s.guidance_scale, 1.0),
                                ('sampling.class_labels', wanted, '')):
      if value != default:
        raise ValueError(f'{key}={value!r} needs a class-conditional model '
                         "(model.num_classes > 0), sampling.guidance='classifier' or a "
                         'text-conditional model (text.layers > 0)')
    return Conditioning(0, 0.0, (), 1.0, None, '')
  if rate and not k:
    raise ValueError(f'conditioning.label_dropout={rate!r} needs a class-conditional model '
                     '(model.num_classes > 0)')
  try:
    classes = tuple(int(c) for c in wanted.split(',')) if wanted else tuple(range(n))
  except ValueError:
    classes = ()
  if not classes or not all(0 <= c < n for c in classes):
    raise ValueError(f'sampling.class_labels must be classes in [0, {n}) separated by commas, '
                     f'got {s.class_labels!r}')
  return Conditioning(k, float(rate), classes, float(s.guidance_scale), interval, guidance)


MASKS = ('left', 'right', 'top', 'bottom', 'center')


def named_mask(name: str, size: int) -> np.ndarray:
  """[size, size] 1 where pixels are kept, 0 in the region that `name` regenerates."""
  keep = np.ones((size, size), np.float32)
  half, quarter = size // 2, size // 4
  region = {'left': np.s_[:, :half], 'right': np.s_[:, half:], 'top': np.s_[:half],
            'bottom': np.s_[half:], 'center': np.s_[quarter:quarter + half,
                                                    quarter:quarter + half]}[name]
  keep[region] = 0.0
  return keep


def read_mask(path: str, size: int) -> np.ndarray:
  """A PNG mask of the image size: white (>= 128) pixels are regenerated, others kept."""
  try:
    with Image.open(path) as image:
      grey = np.asarray(image.convert('L'))
  except FileNotFoundError:
    raise JobError(f'sampling.mask file {path!r} does not exist; or name a mask: '
                   f'{list(MASKS)}') from None
  except Exception as e:  # PIL raises several kinds for files that are not images
    raise JobError(f'cannot read sampling.mask {path!r}: {type(e).__name__}: {e}') from None
  if grey.shape != (size, size):
    raise JobError(f'sampling.mask {path!r} is {grey.shape[1]}x{grey.shape[0]} pixels; the '
                   f'images are {size}x{size}')
  return (grey < 128).astype(np.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class Completion:
  """What --mode sample completes: nothing (task ''), the masked region of test images
  ('inpaint'), or their colours ('colorize'), `completions` times each.

  Attributes:
    task: '', 'inpaint' or 'colorize'.
    mask: [H, W] 1 where pixels are kept (inpaint), else None.
    completions: completions per test image.
  """

  task: str
  mask: np.ndarray | None
  completions: int

  def replacement(self, sde: sde_lib.SDE, y: jax.Array) -> controllable.Replacement:
    """The sampler's per-step replacement that keeps the known part of the images y."""
    if self.task == 'inpaint':
      return controllable.inpainting(sde, y, self.mask)
    return controllable.colorization(sde, y)


SAMPLING_TASKS = ('', 'inpaint', 'colorize')


def create_completion(config: ml_collections.ConfigDict) -> Completion:
  """sampling.task, sampling.mask and sampling.completions, checked."""
  s, data = config.sampling, config.data
  if s.task not in SAMPLING_TASKS:
    raise ValueError(f'unknown sampling.task {s.task!r}; known: {list(SAMPLING_TASKS)}')
  if s.completions < 1:
    raise ValueError(f'sampling.completions must be at least 1, got {s.completions}')
  if s.task == 'colorize' and data.num_channels < 2:
    raise ValueError(f"sampling.task='colorize' needs colour images; {data.dataset!r} has "
                     f'{data.num_channels} channel (inpaint works on any)')
  mask = None
  if s.task == 'inpaint':
    if s.mask in MASKS:
      mask = named_mask(s.mask, data.image_size)
    elif str(s.mask).lower().endswith('.png'):
      mask = read_mask(s.mask, data.image_size)
    else:
      raise ValueError(f'unknown sampling.mask {s.mask!r}; known: {list(MASKS)} or a .png file')
  return Completion(s.task, mask, s.completions)


def create_text_encoder(config: ml_collections.ConfigDict) -> nn.Module | None:
  """The text encoder of config.text, or None for text.layers = 0 (then no caption key
  may be set)."""
  text, data, rate = config.text, config.data, config.conditioning.caption_dropout
  if text.layers < 0:
    raise ValueError(f'text.layers must be 0 (no text) or more, got {text.layers}')
  if not text.layers:
    for key, value, default in (('data.caption_key', data.caption_key, ''),
                                ('conditioning.caption_dropout', rate, 0.0),
                                ('sampling.captions_file', config.sampling.captions_file, '')):
      if value != default:
        raise ValueError(f'{key}={value!r} needs a text encoder (text.layers > 0)')
    return None
  if config.training.task in ('classifier', 'autoencoder'):
    raise ValueError("text.layers > 0 conditions a score network, not training.task="
                     f"'{config.training.task}'")
  if config.model.name not in _TEXT_MODELS:
    raise ValueError(f'text conditioning needs a network with attention layers '
                     f'({list(_TEXT_MODELS)}), not model {config.model.name!r}')
  if text.tokenizer not in input_pipeline.TOKENIZERS:
    raise ValueError(f'unknown text.tokenizer {text.tokenizer!r}; known: '
                     f'{list(input_pipeline.TOKENIZERS)}')
  if not data.caption_key:
    raise ValueError('text.layers > 0 trains on captions: set data.caption_key (e.g. '
                     "'caption' for digit_pairs, 'captions/text' for coco_captions)")
  if text.max_len < 2:
    raise ValueError(f'text.max_len must be at least 2 (a token and the end of text), got '
                     f'{text.max_len}')
  if text.width < 1 or text.heads < 1 or text.width % text.heads:
    raise ValueError(f'text.width={text.width} must be a positive multiple of '
                     f'text.heads={text.heads}')
  if not 0.0 <= rate <= 1.0:
    raise ValueError(f'conditioning.caption_dropout must be in [0, 1], got {rate}')
  return models.TextEncoder(vocab_size=input_pipeline.VOCAB_SIZE, max_len=text.max_len,
                            width=text.width, layers=text.layers, heads=text.heads)


@dataclasses.dataclass(frozen=True, eq=False)
class Prompts:
  """The captions a text-conditional job draws, in turn, in blocks of `per_row`
  consecutive samples.

  Attributes:
    captions: the captions.
    tokens: [K, text.max_len] their tokens.
    labels: [K] the dataset's labels of the test examples they come from, or None (a
      captions file).
    source: where they come from, for messages.
  """

  captions: tuple[str, ...]
  tokens: np.ndarray
  labels: np.ndarray | None
  source: str

  def per_row(self, n: int) -> int:
    """Samples per caption among n: the grid's row length."""
    return -(-n // len(self.captions))

  def index(self, index: np.ndarray, per_row: int) -> np.ndarray:
    """The caption of sample number `index`: the captions in turn, per_row samples each."""
    return (np.asarray(index) // per_row) % len(self.captions)


def read_captions(config: ml_collections.ConfigDict) -> Prompts:
  """sampling.captions_file: one caption per line (blank lines skipped), each no longer
  than text.max_len tokens and no more lines than sampling.num_samples."""
  path, max_len = config.sampling.captions_file, config.text.max_len
  try:
    lines = pathlib.Path(path).read_text(encoding='utf-8').splitlines()
  except FileNotFoundError:
    raise JobError(f'sampling.captions_file {path!r} does not exist') from None
  except (OSError, UnicodeDecodeError) as e:
    raise JobError(f'cannot read sampling.captions_file {path!r}: {e}') from None
  numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
  if not numbered:
    raise JobError(f'sampling.captions_file {path!r} has no captions (one per line)')
  n = config.sampling.num_samples
  if len(numbered) > n:
    raise JobError(f'sampling.captions_file {path!r} has {len(numbered)} captions but '
                   f'sampling.num_samples={n} draws only the first {n}: set '
                   f'--config.sampling.num_samples={len(numbered)} (or a multiple)')
  captions = tuple(line for _, line in numbered)
  tokens, truncated = input_pipeline.tokenize(captions, max_len=max_len,
                                              tokenizer=config.text.tokenizer)
  if truncated.any():
    line, caption = numbered[int(np.argmax(truncated))]
    raise JobError(f'caption on line {line} of {path!r} has {len(caption.encode())} bytes; '
                   f'the model reads at most text.max_len - 1 = {max_len - 1}')
  return Prompts(captions, tokens, None, path)


def split_parts(data, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
  """A split's examples in order, a batch at a time (images in model space, labels, and
  tokens when it has captions), every host's share gathered, padding dropped."""
  for part in data.epoch(batch_size):
    valid = gather(part['mask'])
    yield {k: gather(v)[valid] for k, v in part.items() if k != 'mask'}


def split_images(data, batch_size: int, limit: int | None = None) -> dict[str, np.ndarray]:
  """A split's examples (`split_parts`) together; only the first `limit` when given (the rest
  is not read)."""
  parts, have = [], 0
  for part in split_parts(data, batch_size):
    parts.append(part)
    have += len(part['image'])
    if limit is not None and have >= limit:
      break
  return {k: np.concatenate([p[k] for p in parts])[:limit] for k in parts[0]}


def test_prompts(config: ml_collections.ConfigDict, workdir: pathlib.Path, n: int, *,
                 distinct: bool) -> Prompts:
  """The captions (and labels) of the first test examples: n of them, or with `distinct`
  the first n different captions (fewer if the split has fewer)."""
  batch = config.eval.batch_size
  tokens, labels, seen = [], [], set()
  for part in split_parts(create_dataset(config, workdir, 'test', batch), batch):
    for row, label in zip(part['tokens'], part['label'], strict=True):
      if distinct and row.tobytes() in seen:
        continue
      seen.add(row.tobytes())
      tokens.append(row)
      labels.append(label)
    if len(tokens) >= n:
      break
  tokens, labels = np.stack(tokens[:n]), np.asarray(labels[:n], np.int32)
  return Prompts(tuple(input_pipeline.detokenize(tokens)), tokens, labels, 'the test split')


def create_task(config: ml_collections.ConfigDict, sde: sde_lib.SDE,
                parameterization: Parameterization, model: nn.Module,
                conditioning: 'Conditioning', text: nn.Module | None = None,
                first_stage: FirstStage | None = None):
  """The task of training.task (a name of tasks.TASKS) with its parts; a latent model's
  with its `first_stage`."""
  if config.training.task == 'classifier':
    return tasks.NoisyClassifier(sde, parameterization, model)
  if config.training.task == 'autoencoder':
    return create_autoencoder_task(config, model)
  c, size = config.conditioning, config.data.image_size
  stage = {}
  if config.training.task == 'super_resolution':
    if not 1 <= c.low_size < size:
      raise ValueError(f"training.task='super_resolution' needs conditioning.low_size in "
                       f'[1, data.image_size={size}), got {c.low_size}')
    for key in ('aug_level', 'aug_max'):
      if not 0.0 <= c[key] <= 1.0:
        raise ValueError(f'conditioning.{key} must be in [0, 1] (a fraction of T), got '
                         f'{c[key]}')
    stage = dict(low_size=int(c.low_size), aug_level=float(c.aug_level),
                 aug_max=float(c.aug_max))
  elif c.low_size or config.sampling.cascade_from:
    raise ValueError("conditioning.low_size and sampling.cascade_from need training.task="
                     "'super_resolution'")
  if config.training.task == 'latent':
    stage = dict(first_stage=first_stage.task,
                 sample_posterior=bool(config.latent.sample_posterior))
  text_options = {}
  if text is not None:
    empty, _ = input_pipeline.tokenize([''], max_len=config.text.max_len,
                                       tokenizer=config.text.tokenizer)
    text_options = dict(text=text, empty_caption=empty[0], pad_token=input_pipeline.PAD,
                        caption_dropout=float(config.conditioning.caption_dropout))
  return tasks.TASKS[config.training.task](
      sde, parameterization, model, create_loss_fn(config, sde),
      num_classes=conditioning.num_classes, label_dropout=conditioning.label_dropout,
      **text_options, **stage)


# eval.metrics names (run_lib.evaluate.METRICS evaluates each); a task lists those that apply.
METRICS = ('loss', 'bpd_ode', 'bpd_vlb', 'fid', 'accuracy', 'reconstruction')


def check_metrics(config: ml_collections.ConfigDict, task) -> tuple[str, ...]:
  """eval.metrics, checked: known names that apply to the task, each once. On the command
  line ml_collections reads --config.eval.metrics=loss,fid as ('loss,fid',): split."""
  names = config.eval.metrics
  names = tuple(name for item in ((names,) if isinstance(names, str) else names)
                for name in (part.strip(' \'"()') for part in str(item).split(',')) if name)
  for name in names:
    if name not in METRICS:
      raise ValueError(f'unknown eval.metrics name {name!r}; known: {list(METRICS)}')
    if name not in task.metrics:
      raise ValueError(f"eval.metrics {name!r} does not apply to training.task="
                       f"'{task.name}'; its metrics: {list(task.metrics)}")
  if len(set(names)) != len(names):
    raise ValueError(f'eval.metrics names a metric twice: {names}')
  if 'bpd_vlb' in names:
    if not isinstance(task.sde, sde_lib.VPSDE):
      raise ValueError(f"eval.metrics 'bpd_vlb' is DDPM's bound on the chain of the VP SDE's "
                       f'discrete levels; {config.sde.name!r} has no such chain: use bpd_ode, '
                       'the probability-flow likelihood')
    try:
      sde_lib.vlb.check_chain(task.sde)
    except ValueError as e:
      raise ValueError(f"eval.metrics 'bpd_vlb': {e} (sde.N)") from None
    if config.eval.vlb_variance not in sde_lib.vlb.VARIANCES:
      raise ValueError(f'unknown eval.vlb_variance {config.eval.vlb_variance!r}; known: '
                       f'{list(sde_lib.vlb.VARIANCES)}')
    if config.eval.vlb_terms < 0:
      raise ValueError(f'eval.vlb_terms must be 0 (all terms) or more, got '
                       f'{config.eval.vlb_terms}')
  return names


@dataclasses.dataclass(frozen=True)
class GuidingClassifier:
  """A noise-conditional classifier trained by another job, for classifier guidance:
  its job (whose task is a tasks.NoisyClassifier), EMA parameters and step."""

  job: 'Job'
  params: Any
  step: int


def _sde_fields(sde: sde_lib.SDE) -> dict:
  # N only sets discrete levels, which continuous-time training and guidance do not use.
  return {f.name: getattr(sde, f.name) for f in dataclasses.fields(sde) if f.name != 'N'}


def saved_config(path: str, key: str, hint: str) -> ml_collections.ConfigDict:
  """The config another job saved in its workdir `path` (named by config key `key`), over
  the defaults: keys added since it was trained take their default values."""
  try:
    saved = json.loads((pathlib.Path(path) / 'config.json').read_text())
  except FileNotFoundError:
    raise JobError(f'{key} {path!r} has no config.json: {hint}') from None
  except (OSError, ValueError) as e:
    raise JobError(f'cannot read {path}/config.json: {e}') from None
  config = default_config.get_default_config()
  config.update(saved)
  return config


def _override(config: ml_collections.ConfigDict, overrides: str) -> None:
  """Applies sampling.base_overrides, 'key=value,key=value' (values as Python literals, or
  strings), to a base stage's saved config."""
  for item in filter(None, (part.strip() for part in overrides.split(','))):
    key, equals, text = item.partition('=')
    if not equals:
      raise ValueError(f'sampling.base_overrides: {item!r} is not key=value')
    try:
      value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
      value = text.strip()
    section, _, name = key.strip().rpartition('.')
    try:
      parent = _section(config, section)
      old = parent[name]
    except (KeyError, AttributeError):
      raise ValueError(f'sampling.base_overrides: the base config has no key {key.strip()!r}'
                       ) from None
    if old is not None and type(old) is not type(value) and not (
        isinstance(old, float) and isinstance(value, int)):
      raise ValueError(f'sampling.base_overrides: {key.strip()} is a {type(old).__name__}, got '
                       f'{value!r}')
    parent[name] = float(value) if isinstance(old, float) else value


def _section(config: ml_collections.ConfigDict, dotted: str) -> ml_collections.ConfigDict:
  for name in filter(None, dotted.split('.')):
    config = config[name]
  return config


@dataclasses.dataclass(frozen=True)
class CascadeBase:
  """The stage a super-resolution job upsamples: its job (a diffusion or super-resolution
  job of its own config and sampler), EMA parameters and step."""

  job: 'Job'
  params: Any
  step: int


def load_base(job: 'Job') -> CascadeBase:
  """The base stage of sampling.cascade_from at its latest checkpoint (EMA), checked
  against the upsampler: its images must be the upsampler's low-resolution inputs, and a
  text-conditional upsampler needs a base that reads the same tokens."""
  config = job.config
  path = config.sampling.cascade_from
  if not path:
    raise JobError(f'{job.workdir} holds an upsampler (training.task=super_resolution): it '
                   'samples from a base model\'s images, --config.sampling.cascade_from='
                   'BASE_WORKDIR')
  base_config = saved_config(path, 'sampling.cascade_from', 'train the base model there first')
  _override(base_config, config.sampling.base_overrides)
  if base_config.training.task not in ('diffusion', 'super_resolution'):
    raise JobError(f'sampling.cascade_from {path!r} holds a {base_config.training.task}, not a '
                   'model to sample')
  base = Job(base_config, path)
  low = (job.task.low_size, job.task.low_size, job.image_shape[2])
  if base.image_shape != low:
    raise JobError(f'the base model in {path!r} samples images {base.image_shape}; the '
                   f'upsampler takes {low} (conditioning.low_size, data.num_channels)')
  if job.conditioning.text:
    ours = {k: config.text[k] for k in ('tokenizer', 'max_len')}
    theirs = {k: base_config.text[k] for k in ('tokenizer', 'max_len')}
    if not base.conditioning.text or ours != theirs:
      raise JobError(f'the upsampler reads captions ({ours}); the base model in {path!r} '
                     + ('reads none' if not base.conditioning.text else f'reads {theirs}')
                     + ': a text cascade needs the same tokens in every stage')
  state = base.restore()
  if state is None:
    raise JobError(f'no checkpoint in {base.workdir / "checkpoints"}; train the base model '
                   'first')
  return CascadeBase(base, state.ema_params, int(state.step))


def load_classifier(config: ml_collections.ConfigDict, sde: sde_lib.SDE,
                    image_shape: tuple[int, ...]) -> GuidingClassifier:
  """The classifier of sampling.classifier_workdir at its latest checkpoint (EMA), checked
  against the score model's SDE and image shape."""
  path = config.sampling.classifier_workdir
  if not path:
    raise ValueError("sampling.guidance='classifier' needs sampling.classifier_workdir")
  c_config = saved_config(path, 'sampling.classifier_workdir',
                          "train a classifier there first (training.task='classifier')")
  if c_config.training.task != 'classifier':
    raise JobError(f'sampling.classifier_workdir {path!r} holds a diffusion model, not a '
                   "classifier (training.task='classifier')")
  job = Job(c_config, path)
  if type(job.sde) is not type(sde) or _sde_fields(job.sde) != _sde_fields(sde):
    raise JobError(f'the classifier in {path!r} was trained under {job.sde}, the score model '
                   f'samples {sde}: guidance needs the same SDE')
  if job.image_shape != image_shape:
    raise JobError(f'the classifier in {path!r} takes images {job.image_shape}, the score model '
                   f'samples {image_shape}')
  state = job.restore()
  if state is None:
    raise JobError(f'no checkpoint in {job.workdir / "checkpoints"}; train the classifier first')
  return GuidingClassifier(job, state.ema_params, int(state.step))


def make_workdir(workdir: str) -> pathlib.Path:
  path = pathlib.Path(workdir).absolute()  # orbax refuses relative checkpoint paths
  try:
    path.mkdir(parents=True, exist_ok=True)
    probe = path / f'.writable-{os.getpid()}'  # one per process: hosts may share the workdir
    probe.write_text('')
    probe.unlink()
  except OSError as e:
    raise JobError(f'workdir {workdir!r} is not writable: {e.strerror or e}') from None
  return path


def data_dir(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> str | None:
  """data.data_dir, by default workdir/data for the bundled datasets (built there)."""
  if config.data.data_dir:
    return config.data.data_dir
  return str(workdir / 'data') if config.data.dataset in input_pipeline.BUNDLED else None


def create_dataset(config: ml_collections.ConfigDict, workdir: pathlib.Path, split: str,
                   batch_size: int):
  """The configured dataset split, sharded over hosts, deterministic in (seed, step)."""
  data = config.data
  if isinstance(data.levels, bool) or not isinstance(data.levels, int) or data.levels < 2:
    raise ValueError(f'data.levels must be an integer >= 2 (the grey levels of the data: 256 '
                     f'for 8-bit images), got {data.levels!r}')
  dataset = input_pipeline.get_dataset(
      data.dataset, split, data_dir=data_dir(config, workdir), image_size=data.image_size,
      centered=data.centered, random_flip=data.random_flip and split == 'train',
      uniform_dequantization=data.uniform_dequantization and split == 'train',
      global_batch_size=batch_size, levels=data.levels, seed=config.seed,
      process_index=jax.process_index(), process_count=jax.process_count(),
      download=data.download,
      caption_key=data.caption_key, max_len=config.text.max_len,
      tokenizer=config.text.tokenizer)
  if dataset.num_channels != data.num_channels:
    raise input_pipeline.DatasetError(
        f'{data.dataset} has {dataset.num_channels}-channel images but data.num_channels is '
        f'{data.num_channels}: set --config.data.num_channels={dataset.num_channels}')
  return dataset


def latent_std(job: 'Job', autoencoder: Any, data) -> float:
  """The std of all elements of the unscaled latents of the first latent.scale_batches
  training batches of `data` (LDM's scale_by_std, over more than its one batch)."""
  k = job.config.latent.scale_batches
  if k < 1:
    raise ValueError(f'latent.scale_batches must be at least 1, got {k}')
  params = {'autoencoder': jax.device_put(autoencoder, job.replicated)}

  @jax.jit
  def moments(params, images, rng):
    z = job.task.unscaled_latents(params, images, rng)
    return jnp.stack([jnp.sum(z), jnp.sum(jnp.square(z)), z.size])

  rng = stream(job.config, 'latent_scale')
  total = np.zeros(3)
  for i in range(k):
    images = jax.make_array_from_process_local_data(job.sharded, data.batch(i)['image'])
    total += np.asarray(moments(params, images, jax.random.fold_in(rng, i)), np.float64)
  mean = total[0] / total[2]
  std = float(np.sqrt(max(total[1] / total[2] - mean**2, 0.0)))
  if not std > 0:
    raise JobError(f'the latents of {job.first_stage.source} have std {std}: no scale')
  return std


_TEST_PROMPTS = 8  # distinct test captions drawn by default, one grid row each

# Streams of randomness, each its own fold of the root key: no two can collide.
STREAMS = {'train': 0, 'test_loss': 1, 'snapshot_samples': 2, 'sample': 3, 'eval': 4,
           'latent_scale': 5}


def stream(config: ml_collections.ConfigDict, name: str) -> jax.Array:
  """The root key of one named stream of randomness of the job."""
  return jax.random.fold_in(jax.random.key(config.seed), STREAMS[name])


class Job:
  """What train/eval/sample/sweep share, built once from the config: SDE, parameterisation,
  network, task, optimiser, sampler, conditioning and guidance, completion (inpainting or
  colorization), mesh and checkpoints."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str):
    self.config = config
    self.workdir = make_workdir(workdir)
    self.sde = create_sde(config)
    self.parameterization = create_parameterization(config, self.sde)
    self.model = create_model(config)
    self.optimizer = create_optimizer(config)
    self.sampler = create_sampler(config, self.sde)
    self.image_shape = (config.data.image_size, config.data.image_size, config.data.num_channels)
    if config.sampling.guidance == 'classifier' and config.training.task not in (
        'diffusion', 'classifier'):
      raise ValueError("sampling.guidance='classifier' guides a pixel-space diffusion model "
                       '(its classifier reads images), not a training.task='
                       f"'{config.training.task}' model")
    self.classifier = (load_classifier(config, self.sde, self.image_shape)
                       if config.sampling.guidance == 'classifier'
                       and config.training.task == 'diffusion'
                       else None)
    self.text_encoder = create_text_encoder(config)
    self.conditioning = create_conditioning(
        config, self.model, self.classifier.job.task.num_outputs if self.classifier else 0,
        text=self.text_encoder is not None)
    self.first_stage = (load_first_stage(config, self.image_shape)
                        if config.training.task == 'latent' else None)
    self.task = create_task(config, self.sde, self.parameterization, self.model,
                            self.conditioning, self.text_encoder, self.first_stage)
    self.metrics = check_metrics(config, self.task)
    self.completion = create_completion(config)
    if self.completion.task and self.task.name != 'diffusion':
      raise ValueError(f'sampling.task={self.completion.task!r} completes test images with a '
                       f"pixel-space diffusion model, not a training.task='{self.task.name}' "
                       'model')

    self.mesh = create_mesh()
    self.replicated = NamedSharding(self.mesh, P())
    self.sharded = NamedSharding(self.mesh, P('data'))  # along the leading (batch) axis
    self.manager = state_lib.checkpoint_manager(self.workdir, config.training.snapshot_freq)
    self.centered = config.data.centered
    for key in ('sampling.batch_size', 'sampling.num_samples', 'eval.batch_size',
                'eval.num_samples', 'training.batch_size'):
      section, name = key.split('.')
      if config[section][name] < 1:
        raise ValueError(f'{key} must be at least 1, got {config[section][name]}')
    check_divisible('sampling.batch_size', config.sampling.batch_size)
    self.compiled: dict = {}  # jitted programs of this job, compiled once each (sample.py)
    self._prompts = None
    self._base = None

  @property
  def base(self) -> CascadeBase:
    """A super-resolution job's base stage (sampling.cascade_from), loaded on first use."""
    if self._base is None:
      self._base = load_base(self)
    return self._base

  @property
  def prompts(self) -> Prompts | None:
    """What a text-conditional job draws: sampling.captions_file, or the first distinct
    test captions, one grid row each; None for other jobs."""
    if self.conditioning.text and self._prompts is None:
      self._prompts = (read_captions(self.config) if self.config.sampling.captions_file else
                       test_prompts(self.config, self.workdir, _TEST_PROMPTS, distinct=True))
    return self._prompts

  def per_row(self, n: int) -> int | None:
    """Samples per grid row among n: per class or per caption drawn; None when neither."""
    if self.conditioning.text:
      return self.prompts.per_row(n)
    return self.conditioning.per_row(n) if self.conditioning.classes else None

  def sampling_score_fn(self, params, labels: jax.Array | None,
                        classifier_params: Any = None, tokens: jax.Array | None = None,
                        image_inputs: dict[str, jax.Array] | None = None) -> sde_lib.ScoreFn:
    """The score the samplers follow: the network's, or its guided score of `labels` [B]:
    classifier-free for a class-conditional network, or by the guiding classifier (with
    its parameters) under sampling.guidance='classifier'; a text-conditional network's
    of the captions' `tokens` [B, L], under classifier-free guidance on them. A
    super-resolution network also gets its `image_inputs` (the task's sampling_inputs),
    the same in the conditional and unconditional halves of classifier-free guidance."""
    c, score_fn, inputs = self.conditioning, self.task.score_fn, image_inputs or {}
    if c.text:
      # Read once per sampling run, outside the sampler's loop.
      caption = self.task.encode_text(params, tokens)
      if c.scale == 1.0:
        return score_fn(params, caption=caption, **inputs)
      return guidance.classifier_free(
          lambda x, t, cond: score_fn(params, caption=cond[0], **cond[1])(x, t),
          (caption, inputs), (self.task.null_caption(params, tokens.shape[0]), inputs),
          scale=c.scale, interval=c.interval)
    if c.guidance == 'classifier':
      return guidance.classifier(score_fn(params, **inputs),
                                 self.classifier.job.task.log_prob_fn(classifier_params, labels),
                                 scale=c.scale)
    if not c.num_classes:
      return score_fn(params, **inputs)
    if c.scale == 1.0:  # the conditional model, inside any interval or out: one plain call
      return score_fn(params, labels, **inputs)
    return guidance.classifier_free(
        lambda x, t, cond: score_fn(params, cond[0], **cond[1])(x, t),
        (labels, inputs), (jnp.full_like(labels, c.num_classes), inputs), scale=c.scale,
        interval=c.interval)

  def frozen_params(self, train_data) -> dict[str, Any] | None:
    """The values of the task's frozen trees at a fresh start (None if it has none): the
    LPIPS weights of an autoencoder's loss (autoencoder.lpips_weights); a latent model's
    autoencoder and its latents' scale, latent.scale or 1 / the std of the latents of
    latent.scale_batches training batches of `train_data`."""
    if not self.task.frozen:
      return None
    if self.task.name == 'autoencoder':
      path = self.config.autoencoder.lpips_weights
      try:
        return {'lpips': models.load_lpips_params(path)}
      except ValueError as e:
        raise JobError(f'autoencoder.lpips_weights {path!r}: {e}') from None
    autoencoder = self.first_stage.read_params()
    scale = self.config.latent.scale or 1.0 / latent_std(self, autoencoder, train_data)
    return {'autoencoder': autoencoder, 'latent': {'scale': np.float32(scale)}}

  def abstract_state(self) -> state_lib.TrainState:
    shapes = jax.eval_shape(lambda: state_lib.init_state(
        self.task, self.optimizer, self.replicated, seed=self.config.seed,
        image_shape=self.image_shape))
    return state_lib.replicated_abstract(shapes, self.replicated)

  def restore(self, step: int | None = None) -> state_lib.TrainState | None:
    return state_lib.restore_checkpoint(self.manager, self.abstract_state(), step)
