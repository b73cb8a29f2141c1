"""The one reader of the ConfigDict: `build(config, workdir) -> Job`.

Everything a job needs is made here, once, from the config and checked now rather than
at the first snapshot hours later: the SDE and parameterisation, the task with its
networks (a constructor per training.task, `TASK_BUILDERS`), the optimiser, the sampler,
what samples are conditioned on, the evaluators of eval.metrics, how the data is opened,
and what comes from other workdirs (a guiding classifier, a first stage, a cascade's base),
whose saved configs are read here too. Bad values raise ValueError (or JobError for
another workdir) naming the key; main.py prints either as one line.
"""

import ast
import dataclasses
import functools
import json
import math
import os
import pathlib
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import optax

import models
import sde_lib
import tasks
from configs import default as default_config
from data import bundled, pipeline, text, transforms
from metrics import features
from run_lib import evaluate
from run_lib import state as state_lib
from run_lib.conditions import (MASKS, SAMPLING_TASKS, Completion, Conditioning, named_mask,
                                read_captions, read_mask, test_prompts)
from run_lib.errors import JobError
from run_lib.job import (FINISHED, TOKENIZER_FILE, Data, Evaluation, Job, Sampling, Sweep,
                         Training)
from run_lib.mesh import check_divisible, create_mesh
from run_lib.stages import (CascadeBase, FirstStage, FirstStageWeights, GuidingClassifier,
                            LpipsWeights)
from sde_lib import sampling
from sde_lib.parameterization import Parameterization, song_et_al

_TEST_PROMPTS = 8  # distinct test captions drawn by default, one grid row each


def build(config: ml_collections.ConfigDict, workdir: str) -> Job:
  """The job of `config` in `workdir` (created if need be), every part checked.

  Raises:
    ValueError: a bad config value, naming the key.
    JobError: an unwritable workdir, or another workdir the config names that does not
      fit (a classifier, an autoencoder).
  """
  path = make_workdir(workdir)
  for key in ('sampling.batch_size', 'sampling.num_samples', 'eval.batch_size',
              'eval.num_samples', 'training.batch_size'):
    section, name = key.split('.')
    if config[section][name] < 1:
      raise ValueError(f'{key} must be at least 1, got {config[section][name]}')
  check_divisible('sampling.batch_size', config.sampling.batch_size)
  tokenizer = create_tokenizer(config, path)
  data = create_data(config, path, tokenizer)
  image_shape = data.image_size + (config.data.num_channels,)
  sde = create_sde(config)
  sampler = create_sampler(config, sde)
  task, fill_frozen = _create_task(config, sde, image_shape, tokenizer=tokenizer)
  classifier = None
  if config.sampling.guidance == 'classifier':
    if not _pixel_space(task, image_shape):
      raise ValueError("sampling.guidance='classifier' guides a pixel-space diffusion model "
                       '(its classifier reads images), not a training.task='
                       f"'{config.training.task}' model")
    classifier = load_classifier(config, sde, image_shape)
  conditioning = create_conditioning(
      config, num_classes=config.model.num_classes,
      classifier_classes=classifier.job.task.num_outputs if classifier else 0,
      text=config.text.layers > 0)
  completion = create_completion(config, image_shape)
  if completion.task and not _pixel_space(task, image_shape):
    raise ValueError(f'sampling.task={completion.task!r} completes test images with a '
                     f"pixel-space diffusion model, not a training.task='{config.training.task}' "
                     'model')
  prompts = None
  if conditioning.text:
    prompts = functools.cache(_prompts_reader(config, data))
  base = None
  if task.samples and task.input_shape(image_shape) is not None:
    base = functools.cache(_base_loader(config, task.input_shape(image_shape), tokenizer))
  elif config.sampling.cascade_from:
    raise ValueError("sampling.cascade_from names the base stage of an upsampler "
                     "(training.task='super_resolution')")
  return Job(
      workdir=path, seed=config.seed, sde=sde, task=task, optimizer=create_optimizer(config),
      sampler=sampler, conditioning=conditioning, completion=completion, data=data,
      image_shape=image_shape, training=create_training(config), sampling=Sampling(
          config.sampling.batch_size, config.sampling.num_samples,
          config.sampling.trajectory_frames),
      evaluation=create_evaluation(config, task), sweep=Sweep(
          config.sweep.index, config.sweep.metric, config.sweep.x),
      mesh=create_mesh(),
      manager=state_lib.checkpoint_manager(path, config.training.snapshot_freq),
      config_json=config.to_json_best_effort(indent=2), classifier=classifier,
      prompts=prompts, base=base, fill_frozen=fill_frozen)


def _pixel_space(task: Any, image_shape: tuple[int, ...]) -> bool:
  """Whether a task samples images themselves from noise alone (not latents, nor given a
  low-resolution image): what classifier guidance and completion by replacement need."""
  return (task.samples and tuple(task.sample_shape(image_shape)) == tuple(image_shape)
          and task.input_shape(image_shape) is None)


def _check_network_size(config: ml_collections.ConfigDict, task: Any,
                        image_shape: tuple[int, ...]) -> None:
  """Raises ValueError unless the U-Net's downsampling divides what it reads: the images,
  or a latent model's latents."""
  model = getattr(task, 'model', None)
  if not isinstance(model, models.NCSNpp):
    return
  f = model.downsampling_factor
  height, width = (task.sample_shape(image_shape) if task.samples else image_shape)[:2]
  if height % f or width % f:
    what = ('data.image_size' if (height, width) == tuple(image_shape[:2]) else
            "the autoencoder's latents")
    raise ValueError(f'model.ch_mult={tuple(config.model.ch_mult)} downsamples by {f}, which '
                     f'does not divide {what} ({height}x{width})')


def image_hw(config: ml_collections.ConfigDict, key: str) -> tuple[int, int]:
  """(height, width) of an image-size key (data.image_size, conditioning.low_size): a side
  (a square) or (height, width); ValueError naming the key otherwise."""
  section, name = key.split('.')
  try:
    return transforms.image_hw(config[section][name])
  except ValueError:
    raise ValueError(f'{key} must be a side or (height, width), each at least 1 pixel, got '
                     f'{config[section][name]!r}') from None


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


# ---------------------------------------------------------------------------------------
# The mathematics and the networks.


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
# values), extra input channels (a super-resolution model's low-resolution image) and
# learned variances (out_channels).
_TEXT_MODELS = ('ncsnpp', 'ddpm')


def _options(cls: type, config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The config.model keys that the network class `cls` has, lists as tuples."""
  names = {f.name for f in dataclasses.fields(cls)} - {'parent', 'name'}
  return {k: tuple(v) if isinstance(v, list) else v for k, v in config.model.items()
          if k in names}


def create_model(config: ml_collections.ConfigDict, *,
                 learned_variance: bool = True) -> nn.Module:
  """The score network of config.model, given the config.model keys it has.

  Args:
    learned_variance: whether the task trains learned variances (model.learned_variance
      is refused otherwise).
  """
  cls = models.get_model(config.model.name)
  fields = {f.name for f in dataclasses.fields(cls)}
  kwargs = _options(cls, config)
  kwargs['centered'] = config.data.centered
  k = config.model.num_classes
  if k < 0:
    raise ValueError(f'model.num_classes must be 0 (unconditional) or more, got {k}')
  if 'num_classes' in fields:
    kwargs['num_classes'] = k or None
  elif k:
    raise ValueError(f'model {config.model.name!r} has no class conditioning '
                     '(model.num_classes must be 0)')
  if 'num_levels' in fields:
    kwargs['num_levels'] = config.sde.N  # NCSN: one row of norm scales per noise level
  if config.model.learned_variance:
    if 'out_channels' not in fields or not learned_variance:
      raise ValueError('model.learned_variance needs a diffusion model of '
                       f"{list(_TEXT_MODELS)}, not {config.training.task} "
                       f'{config.model.name!r}')
    kwargs['out_channels'] = 2 * config.data.num_channels
  model = cls(**kwargs)
  heads = kwargs.get('attn_head_channels', 0)
  if heads and hasattr(model, 'attention_widths'):  # checked now, not at the first call
    widths = sorted(model.attention_widths(image_hw(config, 'data.image_size')[0]))
    if heads < 0 or any(w % heads for w in widths):
      raise ValueError(f'model.attn_head_channels={heads} must divide the width of every '
                       f'attention layer: {widths}')
  return model


def create_autoencoder(config: ml_collections.ConfigDict) -> models.AutoencoderKL:
  """LDM's KL autoencoder of config.autoencoder for the data's images."""
  a, data = config.autoencoder, config.data
  f = 2 ** (len(a.ch_mult) - 1)
  height, width = image_hw(config, 'data.image_size')
  if height % f or width % f:
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
      ch_mult=tuple(a.ch_mult), num_res_blocks=a.num_res_blocks, resolution=height,
      attn_resolutions=tuple(a.attn_resolutions), mid_attention=a.mid_attention,
      z_channels=a.z_channels, embed_dim=a.embed_dim, dropout=a.dropout,
      norm_groups=a.norm_groups)
  try:
    model.attn_levels()  # checked now, not at the first call
  except ValueError as e:
    raise ValueError(f'autoencoder.attn_resolutions: {e}') from None
  return model


def create_text_encoder(config: ml_collections.ConfigDict,
                        tokenizer: text.Tokenizer) -> nn.Module | None:
  """The text encoder of config.text reading `tokenizer`'s ids, or None for text.layers = 0
  (then no caption key may be set)."""
  txt, data, rate = config.text, config.data, config.conditioning.caption_dropout
  if txt.layers < 0:
    raise ValueError(f'text.layers must be 0 (no text) or more, got {txt.layers}')
  if not txt.layers:
    for key, value, default in (('data.caption_key', data.caption_key, ''),
                                ('conditioning.caption_dropout', rate, 0.0),
                                ('sampling.captions_file', config.sampling.captions_file, '')):
      if value != default:
        raise ValueError(f'{key}={value!r} needs a text encoder (text.layers > 0)')
    return None
  if config.model.name not in _TEXT_MODELS:
    raise ValueError(f'text conditioning needs a network with attention layers '
                     f'({list(_TEXT_MODELS)}), not model {config.model.name!r}')
  if not data.caption_key:
    raise ValueError('text.layers > 0 trains on captions: set data.caption_key (e.g. '
                     "'caption' for digit_pairs, 'captions/text' for coco_captions)")
  if txt.max_len < 2:
    raise ValueError(f'text.max_len must be at least 2 (a token and the end of text), got '
                     f'{txt.max_len}')
  if txt.width < 1 or txt.heads < 1 or txt.width % txt.heads:
    raise ValueError(f'text.width={txt.width} must be a positive multiple of '
                     f'text.heads={txt.heads}')
  if not 0.0 <= rate <= 1.0:
    raise ValueError(f'conditioning.caption_dropout must be in [0, 1], got {rate}')
  return models.TextEncoder(vocab_size=tokenizer.vocab_size, max_len=txt.max_len,
                            width=txt.width, layers=txt.layers, heads=txt.heads)


def create_tokenizer(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> text.Tokenizer:
  """The captions' tokenizer of config.text: the bytes', or a trained one, which is the
  workdir's own once it has trained (workdir/tokenizer.json, written by train), else
  text.tokenizer_file's, else trained now on the training split's captions.

  Raises:
    ValueError: an unknown text.tokenizer, a missing or foreign tokenizer file, or a workdir
      whose checkpoints read other tokens than the config's.
    DatasetError: the training captions cannot be read.
  """
  txt = config.text
  if txt.tokenizer not in text.TOKENIZERS:
    raise ValueError(f'unknown text.tokenizer {txt.tokenizer!r}; known: '
                     f'{list(text.TOKENIZERS)}')
  own = workdir / TOKENIZER_FILE
  if txt.tokenizer == 'bytes' or not txt.layers:
    if txt.tokenizer_file:
      raise ValueError(f'text.tokenizer_file is the file of a trained tokenizer (words, bpe), '
                       f'not of text.tokenizer={txt.tokenizer!r}')
    if txt.layers and own.exists():
      raise ValueError(f'{workdir} was trained on the tokens of its {TOKENIZER_FILE}; '
                       f"text.tokenizer='bytes' cannot read its checkpoints")
    return text.BYTES
  given = text.load(txt.tokenizer_file) if txt.tokenizer_file else None
  if own.exists():
    tokenizer = text.load(own)
    if given is not None and given.fingerprint != tokenizer.fingerprint:
      raise ValueError(f'text.tokenizer_file {txt.tokenizer_file!r} is not the tokenizer the '
                       f'checkpoints of {workdir} were trained with ({own})')
  elif (workdir / 'config.json').exists():
    raise ValueError(f'{workdir} was trained without a {TOKENIZER_FILE} (on bytes): '
                     f'text.tokenizer={txt.tokenizer!r} cannot read its checkpoints')
  elif given is not None:
    tokenizer = given
  else:
    if txt.tokenizer == 'bpe' and txt.vocab_size < 257:
      raise ValueError(f'text.vocab_size must hold the 256 bytes and a merge, got '
                       f'{txt.vocab_size}')
    data = config.data
    captions = pipeline.split_captions(data.dataset, 'train', data_dir=_data_dir(config, workdir),
                                       caption_key=data.caption_key, download=data.download)
    tokenizer = (text.WordTokenizer.from_captions(captions) if txt.tokenizer == 'words'
                 else text.BPETokenizer.train(captions, txt.vocab_size))
  if tokenizer.name != txt.tokenizer:
    source = own if own.exists() else txt.tokenizer_file
    raise ValueError(f'{source} holds a {tokenizer.name!r} tokenizer, not '
                     f'text.tokenizer={txt.tokenizer!r}')
  return tokenizer


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
  if training.loss_weighting not in sde_lib.losses.WEIGHTINGS:
    raise ValueError(f'unknown training.loss_weighting {training.loss_weighting!r}; known: '
                     f'{list(sde_lib.losses.WEIGHTINGS)}')
  if training.continuous:
    return functools.partial(sde_lib.losses.dsm_loss, sde=sde, reduce_mean=training.reduce_mean,
                             weighting=training.loss_weighting)
  if training.loss_weighting != 'noise':
    raise ValueError(f"training.loss_weighting={training.loss_weighting!r} needs "
                     f"training.continuous=True (the discrete losses weight as 'noise')")
  discrete = {sde_lib.VPSDE: sde_lib.losses.ddpm_loss, sde_lib.VESDE: sde_lib.losses.smld_loss}
  if type(sde) not in discrete:
    raise ValueError(f'discrete training (training.continuous=False) exists for vpsde (DDPM) '
                     f'and vesde (SMLD), not {config.sde.name!r}')
  return functools.partial(discrete[type(sde)], sde=sde, reduce_mean=training.reduce_mean)


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


# ---------------------------------------------------------------------------------------
# The task: one constructor per training.task.


def _diffusion_options(config: ml_collections.ConfigDict, sde: sde_lib.SDE,
                       tokenizer: text.Tokenizer, *,
                       learned_variance: bool = False) -> dict[str, Any]:
  """What every task of the diffusion family takes: the parameterisation, the score
  network, the loss, the classes and their dropout, and the text encoder."""
  rate = config.conditioning.label_dropout
  if not 0.0 <= rate <= 1.0:
    raise ValueError(f'conditioning.label_dropout must be in [0, 1], got {rate}')
  k = config.model.num_classes
  if rate and not k:
    raise ValueError(f'conditioning.label_dropout={rate!r} needs a class-conditional model '
                     '(model.num_classes > 0)')
  options = dict(parameterization=create_parameterization(config, sde),
                 model=create_model(config, learned_variance=learned_variance),
                 loss_fn=create_loss_fn(config, sde), num_classes=k,
                 label_dropout=float(rate))
  encoder = create_text_encoder(config, tokenizer)
  if encoder is not None:
    empty, _ = text.tokenize([''], max_len=config.text.max_len, tokenizer=tokenizer)
    options.update(text=encoder, empty_caption=empty[0], pad_token=tokenizer.pad,
                   caption_dropout=float(config.conditioning.caption_dropout))
  return options


def _no_text(config: ml_collections.ConfigDict) -> None:
  if config.text.layers:
    raise ValueError("text.layers > 0 conditions a score network, not training.task="
                     f"'{config.training.task}'")


def _no_upsampler(config: ml_collections.ConfigDict) -> None:
  if config.conditioning.low_size:
    raise ValueError("conditioning.low_size and sampling.cascade_from need training.task="
                     "'super_resolution'")


BuiltTask = tuple[Any, Callable | None]  # the task, and what fills its frozen trees


def _diffusion(config, sde, image_shape, first_stage, tokenizer) -> BuiltTask:
  del image_shape, first_stage
  _no_upsampler(config)
  return tasks.Diffusion(sde, **_diffusion_options(config, sde, tokenizer,
                                                   learned_variance=True)), None


def _super_resolution(config, sde, image_shape, first_stage, tokenizer) -> BuiltTask:
  del first_stage
  c, (height, width) = config.conditioning, image_shape[:2]
  if config.model.name not in _TEXT_MODELS:
    raise ValueError(f"training.task='super_resolution' concatenates the low-resolution image "
                     f'to the input of {list(_TEXT_MODELS)}, not model {config.model.name!r}')
  try:
    low = image_hw(config, 'conditioning.low_size')
  except ValueError:
    low = (0, 0)
  if not (1 <= low[0] < height and 1 <= low[1] < width):
    raise ValueError(f"training.task='super_resolution' needs conditioning.low_size in "
                     f'[1, data.image_size={config.data.image_size}) along each side, got '
                     f'{c.low_size!r}')
  if low[0] * width != low[1] * height:
    raise ValueError(f'conditioning.low_size={c.low_size!r} has another aspect ratio than '
                     f'data.image_size={config.data.image_size!r}: an upsampler enlarges the '
                     'whole image')
  for key in ('aug_level', 'aug_max'):
    if not 0.0 <= c[key] <= 1.0:
      raise ValueError(f'conditioning.{key} must be in [0, 1] (a fraction of T), got {c[key]}')
  return tasks.SuperResolution(sde, **_diffusion_options(config, sde, tokenizer),
                               low_size=low,
                               aug_level=float(c.aug_level), aug_max=float(c.aug_max)), None


def _latent(config, sde, image_shape, first_stage, tokenizer) -> BuiltTask:
  _no_upsampler(config)
  if config.latent.scale_batches < 1:
    raise ValueError(f'latent.scale_batches must be at least 1, got {config.latent.scale_batches}')
  first_stage = first_stage or load_first_stage(config, image_shape)
  task = tasks.Latent(sde, **_diffusion_options(config, sde, tokenizer),
                      first_stage=first_stage.task,
                      sample_posterior=bool(config.latent.sample_posterior))
  return task, FirstStageWeights(first_stage, float(config.latent.scale),
                                 int(config.latent.scale_batches))


def _classifier(config, sde, image_shape, first_stage, tokenizer) -> BuiltTask:
  del image_shape, first_stage, tokenizer
  _no_text(config)
  _no_upsampler(config)
  if config.model.name != 'ncsnpp':
    raise ValueError(f"training.task='classifier' builds on the ncsnpp encoder, not model "
                     f'{config.model.name!r}')
  if config.model.num_classes:
    raise ValueError("training.task='classifier' takes no class conditioning "
                     '(model.num_classes must be 0; its classes are model.num_outputs)')
  if config.model.learned_variance:
    raise ValueError('model.learned_variance needs a diffusion model of '
                     f"{list(_TEXT_MODELS)}, not classifier {config.model.name!r}")
  model = models.Classifier(**_options(models.Classifier, config), centered=config.data.centered)
  return tasks.NoisyClassifier(sde, create_parameterization(config, sde), model), None


def _autoencoder(config, sde, image_shape, first_stage, tokenizer) -> BuiltTask:
  del sde, first_stage, tokenizer
  _no_text(config)
  _no_upsampler(config)
  a, (height, width) = config.autoencoder, image_shape[:2]
  size = min(height, width)
  model = create_autoencoder(config)
  if a.rec_loss not in tasks.autoencoder.REC_LOSSES:
    raise ValueError(f'unknown autoencoder.rec_loss {a.rec_loss!r}; known: '
                     f'{list(tasks.autoencoder.REC_LOSSES)}')
  for key in ('kl_weight', 'disc_weight', 'disc_factor', 'perceptual_weight', 'disc_layers'):
    if a[key] < 0:
      raise ValueError(f'autoencoder.{key} must be >= 0, got {a[key]}')
  # The PatchGAN halves the size n times, then its two stride-1 4x4 convs take 1 pixel each.
  if a.disc_layers and size // 2**a.disc_layers - 2 < 1:
    most = max((n for n in range(1, 9) if size // 2**n - 2 >= 1), default=0)
    raise ValueError(f'autoencoder.disc_layers={a.disc_layers} leaves no patches of '
                     f'{height}x{width} images (at most {most}; 0 for no discriminator)')
  if a.lpips_weights and size < models.lpips.MIN_SIZE:
    raise ValueError(f'autoencoder.lpips_weights: LPIPS (VGG16) needs images of at least '
                     f'{models.lpips.MIN_SIZE}x{models.lpips.MIN_SIZE}, not {height}x{width}')
  discriminator = (models.NLayerDiscriminator(ndf=a.disc_ndf, n_layers=a.disc_layers)
                   if a.disc_layers else None)
  task = tasks.Autoencoder(
      model, centered=config.data.centered, rec_loss=a.rec_loss, kl_weight=a.kl_weight,
      logvar_init=a.logvar_init, discriminator=discriminator, disc_start=a.disc_start,
      disc_weight=a.disc_weight, disc_factor=a.disc_factor,
      lpips=models.LPIPS() if a.lpips_weights else None,
      perceptual_weight=a.perceptual_weight)
  return task, LpipsWeights(a.lpips_weights) if a.lpips_weights else None


# training.task -> its constructor (config, sde, image_shape, first_stage, tokenizer) ->
# (task, filler).
TASK_BUILDERS = {'diffusion': _diffusion, 'super_resolution': _super_resolution,
                 'classifier': _classifier, 'autoencoder': _autoencoder, 'latent': _latent}
assert list(TASK_BUILDERS) == list(tasks.TASKS)


def _create_task(config: ml_collections.ConfigDict, sde: sde_lib.SDE,
                 image_shape: tuple[int, ...], first_stage: FirstStage | None = None, *,
                 tokenizer: text.Tokenizer) -> BuiltTask:
  name = config.training.task
  if name not in TASK_BUILDERS:
    raise ValueError(f'unknown training.task {name!r}; known: {list(TASK_BUILDERS)}')
  built = TASK_BUILDERS[name](config, sde, image_shape, first_stage, tokenizer)
  _check_network_size(config, built[0], image_shape)
  return built


def create_task(config: ml_collections.ConfigDict, *, first_stage: FirstStage | None = None,
                tokenizer: text.Tokenizer = text.BYTES):
  """The task of training.task (tasks.TASKS) as a job builds it; a latent task's first
  stage is `first_stage` when given (e.g. `first_stage_of` an autoencoder config), else
  latent.autoencoder_workdir's or latent.autoencoder_weights'; a text model reads
  `tokenizer`'s ids (a job's: `create_tokenizer`)."""
  image_shape = image_hw(config, 'data.image_size') + (config.data.num_channels,)
  return _create_task(config, create_sde(config), image_shape, first_stage,
                      tokenizer=tokenizer)[0]


# ---------------------------------------------------------------------------------------
# Sampling: the sampler, what samples are conditioned on, completion.


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

  def settings(self) -> dict[str, Any]:
    """What sets its samples, for naming and describing a run's outputs (JSON: an
    infinite bound, EDM's s_max, as the string 'inf')."""
    values = {'method': self.method, 'n_steps': self.n_steps, 'schedule': self.schedule,
              'eps': self.eps, 'rho': self.rho, **self.options}
    return {k: str(v) if isinstance(v, float) and not math.isfinite(v) else v
            for k, v in values.items()}


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


def create_conditioning(config: ml_collections.ConfigDict, *, num_classes: int,
                        classifier_classes: int = 0, text: bool = False) -> Conditioning:
  """Sampling's classes and guidance, checked against the network's `num_classes`; the
  guiding classifier's `classifier_classes` for sampling.guidance 'classifier'; `text`:
  the network reads captions (classifier-free guidance on them).

  Raises:
    ValueError: naming the bad value.
  """
  k, s = num_classes, config.sampling
  rate = config.conditioning.label_dropout
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
      raise ValueError("sampling.guidance='classifier' guides an unconditional model; this one "
                       f'has model.num_classes={k} (classifier-free guidance: '
                       "sampling.guidance='')")
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
  try:
    classes = tuple(int(c) for c in wanted.split(',')) if wanted else tuple(range(n))
  except ValueError:
    classes = ()
  if not classes or not all(0 <= c < n for c in classes):
    raise ValueError(f'sampling.class_labels must be classes in [0, {n}) separated by commas, '
                     f'got {s.class_labels!r}')
  return Conditioning(k, float(rate), classes, float(s.guidance_scale), interval, guidance)


def create_completion(config: ml_collections.ConfigDict,
                      image_shape: tuple[int, ...]) -> Completion:
  """sampling.task, sampling.mask and sampling.completions, checked."""
  s, data = config.sampling, config.data
  if s.task not in SAMPLING_TASKS:
    raise ValueError(f'unknown sampling.task {s.task!r}; known: {list(SAMPLING_TASKS)}')
  if s.completions < 1:
    raise ValueError(f'sampling.completions must be at least 1, got {s.completions}')
  if s.task == 'colorize' and image_shape[2] < 2:
    raise ValueError(f"sampling.task='colorize' needs colour images; {data.dataset!r} has "
                     f'{image_shape[2]} channel (inpaint works on any)')
  mask = None
  if s.task == 'inpaint':
    if s.mask in MASKS:
      mask = named_mask(s.mask, image_shape[:2])
    elif str(s.mask).lower().endswith('.png'):
      mask = read_mask(s.mask, image_shape[:2])
    else:
      raise ValueError(f'unknown sampling.mask {s.mask!r}; known: {list(MASKS)} or a .png file')
  return Completion(s.task, mask, s.completions, s.mask)


def _prompts_reader(config: ml_collections.ConfigDict, data: Data) -> Callable:
  """What a text job draws: sampling.captions_file, or the first distinct test captions,
  one grid row each."""
  s, txt = config.sampling, config.text
  if s.captions_file:
    return functools.partial(read_captions, s.captions_file, max_len=txt.max_len,
                             tokenizer=data.tokenizer, num_samples=s.num_samples)
  batch = config.eval.batch_size
  return lambda: test_prompts(data.parts('test', batch), _TEST_PROMPTS, distinct=True,
                              tokenizer=data.tokenizer)


# ---------------------------------------------------------------------------------------
# Data, training and evaluation settings.


def _data_dir(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> str | None:
  """data.data_dir, or workdir/data for the bundled datasets (built there), tfds' own for
  the others."""
  data = config.data
  return data.data_dir or (str(workdir / 'data') if data.dataset in bundled.BUNDLED else None)


def create_data(config: ml_collections.ConfigDict, workdir: pathlib.Path,
                tokenizer: text.Tokenizer) -> Data:
  """How the job opens its dataset (`_data_dir`), its captions read by `tokenizer`."""
  data = config.data
  if isinstance(data.levels, bool) or not isinstance(data.levels, int) or data.levels < 2:
    raise ValueError(f'data.levels must be an integer >= 2 (the grey levels of the data: 256 '
                     f'for 8-bit images), got {data.levels!r}')
  return Data(dataset=data.dataset, data_dir=_data_dir(config, workdir),
              image_size=image_hw(config, 'data.image_size'), num_channels=data.num_channels,
              centered=data.centered, levels=data.levels,
              random_flip=data.random_flip, uniform_dequantization=data.uniform_dequantization,
              download=data.download, caption_key=data.caption_key, max_len=config.text.max_len,
              tokenizer=tokenizer, seed=config.seed)


def create_training(config: ml_collections.ConfigDict) -> Training:
  t = config.training
  return Training(batch_size=t.batch_size, n_iters=t.n_iters, max_minutes=t.max_minutes,
                  n_jitted_steps=t.n_jitted_steps, log_freq=t.log_freq, eval_freq=t.eval_freq,
                  snapshot_freq=t.snapshot_freq,
                  snapshot_freq_for_preemption=t.snapshot_freq_for_preemption,
                  snapshot_sampling=t.snapshot_sampling, ema_rate=config.model.ema_rate)


# The config keys each evaluator reads, as its keyword arguments.
_EVALUATOR_OPTIONS = {
    'loss': {},
    'bpd_ode': {'estimator': 'bpd_estimator', 'rtol': 'rtol', 'atol': 'atol'},
    'bpd_vlb': {'variance': 'vlb_variance', 'terms': 'vlb_terms',
                'clip_denoised': 'vlb_clip_denoised'},
    'fid': {'num_samples': 'num_samples', 'kid_subset_size': 'kid_subset_size'},
    'accuracy': {},
    'reconstruction': {},
}
assert set(_EVALUATOR_OPTIONS) == set(evaluate.EVALUATORS)


def metric_names(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """eval.metrics as names. On the command line ml_collections reads
  --config.eval.metrics=loss,fid as ('loss,fid',): split."""
  names = config.eval.metrics
  return tuple(name for item in ((names,) if isinstance(names, str) else names)
               for name in (part.strip(' \'"()') for part in str(item).split(',')) if name)


def create_evaluation(config: ml_collections.ConfigDict, task: Any) -> Evaluation:
  """The evaluators of eval.metrics, checked: known names that apply to the task (its
  `metrics`), each once, with their settings; and the feature network of the data."""
  names, ev = metric_names(config), config.eval
  for name in names:
    if name not in evaluate.EVALUATORS:
      raise ValueError(f'unknown eval.metrics name {name!r}; known: {list(evaluate.EVALUATORS)}')
    if name not in task.metrics:
      raise ValueError(f"eval.metrics {name!r} does not apply to training.task="
                       f"'{config.training.task}'; its metrics: {list(task.metrics)}")
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
    if ev.vlb_variance not in sde_lib.vlb.VARIANCES:
      raise ValueError(f'unknown eval.vlb_variance {ev.vlb_variance!r}; known: '
                       f'{list(sde_lib.vlb.VARIANCES)}')
    if ev.vlb_terms < 0:
      raise ValueError(f'eval.vlb_terms must be 0 (all terms) or more, got {ev.vlb_terms}')
  evaluators = tuple(
      evaluate.EVALUATORS[name](**{arg: ev[key] for arg, key in _EVALUATOR_OPTIONS[name].items()})
      for name in names)
  return Evaluation(evaluators=evaluators, split=ev.bpd_dataset, batch_size=ev.batch_size,
                    begin_ckpt=ev.begin_ckpt, end_ckpt=ev.end_ckpt,
                    features=features.recipe(config.data.dataset),
                    inception_weights=ev.inception_weights)


# ---------------------------------------------------------------------------------------
# Other workdirs: their saved configs, and what a job takes from them.


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


def _task_class(config: ml_collections.ConfigDict, path: str) -> type:
  """The task class of another workdir's saved config."""
  name = config.training.task
  if name not in tasks.TASKS:
    raise JobError(f'{path}/config.json names an unknown training.task {name!r}')
  return tasks.TASKS[name]


def _sde_fields(sde: sde_lib.SDE) -> dict:
  # N only sets discrete levels, which continuous-time training and guidance do not use.
  return {f.name: getattr(sde, f.name) for f in dataclasses.fields(sde) if f.name != 'N'}


def load_classifier(config: ml_collections.ConfigDict, sde: sde_lib.SDE,
                    image_shape: tuple[int, ...]) -> GuidingClassifier:
  """The classifier of sampling.classifier_workdir at its latest checkpoint (EMA), checked
  against the score model's SDE and image shape."""
  path = config.sampling.classifier_workdir
  if not path:
    raise ValueError("sampling.guidance='classifier' needs sampling.classifier_workdir")
  c_config = saved_config(path, 'sampling.classifier_workdir',
                          "train a classifier there first (training.task='classifier')")
  if not issubclass(_task_class(c_config, path), tasks.NoisyClassifier):
    raise JobError(f'sampling.classifier_workdir {path!r} holds a {c_config.training.task} '
                   "model, not a classifier (training.task='classifier')")
  job = build(c_config, path)
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
          resolution=image_shape[0])  # attn_resolutions are heights
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
  if not issubclass(_task_class(ae_config, path), tasks.Autoencoder):
    raise JobError(f'latent.autoencoder_workdir {path!r} holds a {ae_config.training.task} '
                   "job, not an autoencoder (training.task='autoencoder')")
  ae_shape = image_hw(ae_config, 'data.image_size') + (ae_config.data.num_channels,)
  if ae_shape != tuple(image_shape) or ae_config.data.centered != config.data.centered:
    raise JobError(f'the autoencoder in {path!r} was trained on images {ae_shape} '
                   f'(centered={ae_config.data.centered}); this job\'s are {tuple(image_shape)} '
                   f'(centered={config.data.centered})')
  ae_job = build(ae_config, path)
  if not (ae_job.workdir / FINISHED).exists():
    step = ae_job.manager.latest_step()
    raise JobError(f'the autoencoder in {path!r} is unfinished ('
                   + ('no checkpoint' if step is None else f'checkpoint {step} of '
                      f'training.n_iters={ae_job.training.n_iters}')
                   + '): finish its training first')

  def read_params():
    return jax.device_get(ae_job.require_state().ema_params['autoencoder'])

  return FirstStage(ae_job.task, path, read_params)


def first_stage_of(ae_config: ml_collections.ConfigDict, source: str) -> FirstStage:
  """The first stage an autoencoder config describes, without weights (they are the task's
  stand-ins): what tests and benchmarks build a paper-scale latent task from."""
  task = create_task(ae_config)
  return FirstStage(task, source, None)


def _base_loader(config: ml_collections.ConfigDict, low: tuple[int, ...],
                 tokenizer: text.Tokenizer) -> Callable:
  """load_base of an upsampler of `low` images with sampling.cascade_from and
  sampling.base_overrides (the captions' tokenizer and length when it reads text)."""
  txt = config.text
  tokens = ({'tokenizer': tokenizer.fingerprint, 'max_len': txt.max_len} if txt.layers
            else None)
  return functools.partial(load_base, config.sampling.cascade_from,
                           config.sampling.base_overrides, low=low, tokens=tokens,
                           task_name=config.training.task)


def load_base(path: str, overrides: str, *, low: tuple[int, ...], tokens: dict | None,
              task_name: str) -> CascadeBase:
  """The base stage of an upsampler at its latest checkpoint (EMA): the job in `path`
  (sampling.cascade_from), its saved config changed by `overrides`
  (sampling.base_overrides), checked against the upsampler: its images must be the
  upsampler's low-resolution inputs `low`, and an upsampler that reads captions (their
  `tokens` settings) needs a base that reads the same tokens."""
  if not path:
    raise JobError(f"this job's task is an upsampler (training.task={task_name!r}): it "
                   "samples from a base model's images, --config.sampling.cascade_from="
                   'BASE_WORKDIR')
  base_config = saved_config(path, 'sampling.cascade_from', 'train the base model there first')
  _apply_base_overrides(base_config, overrides)
  if not _task_class(base_config, path).samples:
    raise JobError(f'sampling.cascade_from {path!r} holds a {base_config.training.task}, not '
                   'a model to sample')
  base = build(base_config, path)
  if base.image_shape != low:
    raise JobError(f'the base model in {path!r} samples images {base.image_shape}; the '
                   f'upsampler takes {low} (conditioning.low_size, data.num_channels)')
  if tokens is not None:
    theirs = {'tokenizer': base.data.tokenizer.fingerprint, 'max_len': base_config.text.max_len}
    if not base.conditioning.text or tokens != theirs:
      raise JobError(f'the upsampler reads captions ({tokens}); the base model in {path!r} '
                     + ('reads none' if not base.conditioning.text else f'reads {theirs}')
                     + ': a text cascade needs the same tokens in every stage')
  state = base.restore()
  if state is None:
    raise JobError(f'no checkpoint in {base.workdir / "checkpoints"}; train the base model '
                   'first')
  return CascadeBase(base, state.ema_params, int(state.step))


# ---------------------------------------------------------------------------------------
# Overrides: sweep points, a base stage's changes.


def _node(config: ml_collections.ConfigDict, key: str) -> tuple[ml_collections.ConfigDict, str]:
  """The section holding a dotted key, and the key's last name; KeyError if it has none."""
  *parents, leaf = key.split('.')
  node = config
  for part in parents:
    node = node[part]
    if not isinstance(node, ml_collections.ConfigDict):
      raise KeyError(key)
  if leaf not in node:
    raise KeyError(key)
  return node, leaf


def apply(config: ml_collections.ConfigDict, point: dict[str, Any]) -> ml_collections.ConfigDict:
  """A copy of config with a sweep point's dotted overrides; unknown keys or bad types fail."""
  config = config.copy_and_resolve_references()
  for key, value in point.items():
    try:
      node, leaf = _node(config, key)
      node[leaf] = value
    except (KeyError, AttributeError):
      raise ValueError(f'sweep point {point}: unknown config key {key!r}') from None
    except TypeError as e:
      raise ValueError(f'sweep point {point}: {key}={value!r}: {e}') from None
  return config


@dataclasses.dataclass(frozen=True, eq=False)
class Variants:
  """The jobs of one config under dotted overrides (a sweep's points): each built by
  `build` again, so that every point is checked as a job of its own."""

  _config: ml_collections.ConfigDict

  def check(self, point: dict[str, Any]) -> None:
    """Raises ValueError for an override the config does not take."""
    apply(self._config, point)

  def __call__(self, point: dict[str, Any], workdir: str) -> Job:
    return build(apply(self._config, point), workdir)


def _apply_base_overrides(config: ml_collections.ConfigDict, overrides: str) -> None:
  """Applies sampling.base_overrides, 'key=value,key=value' (values as Python literals, or
  strings), to a base stage's saved config."""
  for item in filter(None, (part.strip() for part in overrides.split(','))):
    key, equals, value_text = item.partition('=')
    key = key.strip()
    if not equals:
      raise ValueError(f'sampling.base_overrides: {item!r} is not key=value')
    try:
      value = ast.literal_eval(value_text.strip())
    except (ValueError, SyntaxError):
      value = value_text.strip()
    try:
      node, leaf = _node(config, key)
    except (KeyError, AttributeError):
      raise ValueError(f'sampling.base_overrides: the base config has no key {key!r}') from None
    old = node[leaf]
    if old is not None and type(old) is not type(value) and not (
        isinstance(old, float) and isinstance(value, int)):
      raise ValueError(f'sampling.base_overrides: {key} is a {type(old).__name__}, got '
                       f'{value!r}')
    node[leaf] = float(value) if isinstance(old, float) else value
