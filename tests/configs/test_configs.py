"""Every experiment config under configs/: the keys of configs/default.py, a buildable SDE and
network, valid sampler names, the paper configurations' published parameter counts and the
measured ones of our conditional CIFAR-10 and GLIDE-shaped configurations.
"""

import importlib
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import pytest
from absl import flags
from ml_collections import config_flags

from configs.default import get_default_config
from run_lib import builder
from sde_lib import sampling

ROOT = pathlib.Path(__file__).resolve().parents[2]

CONFIG_FILES = sorted(
    path.relative_to(ROOT / 'configs').as_posix()
    for path in (ROOT / 'configs').rglob('*.py') if 'def get_config(' in path.read_text())

# Parameters of the published implementation for each of Song et al.'s configurations
# (score_sde and score_sde_pytorch agree on every NCSN++/DDPM++/DDPM network). NCSNv2 64 px
# follows ermongroup/ncsnv2 and the PyTorch port (score_sde's JAX copy: 33,970,563). NCSN,
# which score_sde cannot build as published, follows ermongroup/ncsn with as many levels.
PUBLISHED_PARAMETERS = {
    've/cifar10_ncsnpp.py': 62_693_251,
    've/cifar10_ncsnpp_continuous.py': 62_758_915,
    've/cifar10_ncsnpp_deep_continuous.py': 107_587_075,
    've/cifar10_ddpm.py': 35_218_947,
    've/celeba_ncsnpp.py': 62_693_251,
    've/bedroom_ncsnpp_continuous.py': 65_574_549,
    've/church_ncsnpp_continuous.py': 65_574_549,
    've/celebahq_256_ncsnpp_continuous.py': 65_574_549,
    've/ffhq_256_ncsnpp_continuous.py': 65_574_549,
    've/celebahq_ncsnpp_continuous.py': 105_785_896,
    've/ffhq_ncsnpp_continuous.py': 105_785_896,
    've/ncsnv2/cifar10.py': 29_694_083,
    've/ncsnv2/celeba.py': 29_694_083,
    've/ncsnv2/bedroom.py': 83_445_379,
    've/ncsn/cifar10.py': 30_117_635,
    've/ncsn/cifar10_5.py': 30_117_635,
    've/ncsn/cifar10_124.py': 39_750_659,
    've/ncsn/cifar10_1245.py': 39_750_659,
    've/ncsn/celeba.py': 30_117_635,
    've/ncsn/celeba_5.py': 30_117_635,
    've/ncsn/celeba_124.py': 51_379_715,
    've/ncsn/celeba_1245.py': 51_379_715,
    'vp/cifar10_ddpmpp.py': 61_804_419,
    'vp/cifar10_ddpmpp_continuous.py': 61_804_419,
    'vp/cifar10_ddpmpp_deep_continuous.py': 106_632_579,
    'vp/cifar10_ncsnpp.py': 62_693_251,
    'vp/cifar10_ncsnpp_continuous.py': 62_693_251,
    'vp/cifar10_ncsnpp_deep_continuous.py': 107_521_411,
    'vp/ddpm/cifar10.py': 35_218_947,
    'vp/ddpm/cifar10_continuous.py': 35_218_947,
    'vp/ddpm/bedroom.py': 111_569_923,
    'vp/ddpm/church.py': 111_569_923,
    'vp/ddpm/celebahq.py': 111_569_923,
    'subvp/cifar10_ddpm_continuous.py': 35_218_947,
    'subvp/cifar10_ddpmpp_continuous.py': 61_804_419,
    'subvp/cifar10_ddpmpp_deep_continuous.py': 106_632_579,
    'subvp/cifar10_ncsnpp_continuous.py': 62_693_251,
    'subvp/cifar10_ncsnpp_deep_continuous.py': 107_521_411,
}

# Our own configurations without a published network (conditional CIFAR-10, and GLIDE's
# shapes on our network: every tree of the task, text encoder included), as measured by
# count_parameters: a guard against unnoticed architecture changes. The class-conditional
# NCSN++ is VP NCSN++ plus an 11 x 512 label embedding (10 classes and the null class).
# GLIDE's own code builds 385,030,726 and 398,361,286 (benchmarks/glide_parameters.py; the
# configs' docstrings account for the difference).
MEASURED_PARAMETERS = {
    'guided/cifar10_ncsnpp_cfg.py': 62_698_883,
    'guided/cifar10_ve_classifier.py': 25_502_858,
    'guided/cifar10_ve_guided.py': 62_758_915,
    'text/glide_base64.py': 329_038_723,
    'text/glide_upsample256.py': 346_412_035,
    # score network 287,000,899 (LDM's ADM U-Net: 274M), the frozen kl-f4 55,312,063, scale 1
    'latent/celebahq256_ldm.py': 342_312_963,
}

# LDM's first stages: the 'autoencoder' tree alone (discriminator and LDM's logvar apart), as
# LDM's ldm/models/autoencoder.py and diffusers' AutoencoderKL build them
# (tests/models/test_autoencoder.py).
PUBLISHED_AUTOENCODER_PARAMETERS = {
    'latent/kl_f4.py': 55_312_063,
    'latent/kl_f8.py': 83_653_863,
}

# (score model sampled with sampling.guidance='classifier', the classifier's config): what
# run_lib.builder.load_classifier checks when sampling, checked here before anyone trains.
CLASSIFIER_GUIDANCE_PAIRS = [
    ('guided/cifar10_ve_guided.py', 'guided/cifar10_ve_classifier.py'),
]


def load(relative_path: str) -> ml_collections.ConfigDict:
  module = importlib.import_module('configs.' + relative_path[:-3].replace('/', '.'))
  return module.get_config()


def flatten(config: ml_collections.ConfigDict, prefix: str = '') -> dict:
  flat = {}
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      flat.update(flatten(value, f'{prefix}{key}.'))
    else:
      flat[prefix + key] = value
  return flat


def types(config: ml_collections.ConfigDict, prefix: str = '') -> dict:
  """The type of every key; a placeholder's (unset, None) is the type it was declared with,
  `object` for the keys that take several (an image size: a side or (height, width))."""
  found = {}
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      found.update(types(value, f'{prefix}{key}.'))
    else:
      found[prefix + key] = config.get_type(key)
  return found


def test_every_paper_configuration_exists():
  named = {*PUBLISHED_PARAMETERS, *MEASURED_PARAMETERS, *PUBLISHED_AUTOENCODER_PARAMETERS,
           *sum(CLASSIFIER_GUIDANCE_PAIRS, ())}
  missing = sorted(named - set(CONFIG_FILES))
  assert not missing, f'no config file with get_config() for {missing}'


@pytest.mark.parametrize('path', CONFIG_FILES)
def test_config_has_exactly_the_default_keys_and_types(path):
  config = load(path)
  assert isinstance(config, ml_collections.ConfigDict)
  defaults, values = flatten(get_default_config()), flatten(config)
  assert sorted(values) == sorted(defaults), (
      f'new keys: {sorted(set(values) - set(defaults))}; '
      f'missing keys: {sorted(set(defaults) - set(values))}')
  expected = types(get_default_config())
  wrong_types = {key: (type(values[key]).__name__, expected[key].__name__)
                 for key in defaults
                 if expected[key] is not object and type(values[key]) is not expected[key]
                 and not (values[key] is None and defaults[key] is None)}  # unset placeholder
  assert not wrong_types, f'(ours, default) types differ: {wrong_types}'
  config.lock()
  with pytest.raises(AttributeError):
    config.training.batchsize = 64


# A latent config's default latent.autoencoder_workdir -> the config that trains it.
FIRST_STAGE_CONFIGS = {'workdir/digits_ae': 'latent/digits_ae.py',
                       'workdir/kl_f4': 'latent/kl_f4.py', 'workdir/mnist_ae': 'mnist/ae.py'}


def first_stage(config: ml_collections.ConfigDict) -> builder.FirstStage | None:
  """A latent config's autoencoder, built from the config file that trains its default
  latent.autoencoder_workdir instead of a trained workdir."""
  if config.training.task != 'latent':
    return None
  ae_config = load(FIRST_STAGE_CONFIGS[config.latent.autoencoder_workdir])
  assert ae_config.training.task == 'autoencoder'
  for key in ('image_size', 'num_channels', 'centered'):
    assert ae_config.data[key] == config.data[key], key
  return builder.first_stage_of(ae_config, config.latent.autoencoder_workdir)


def build_task(config: ml_collections.ConfigDict):
  """The config's task, as run_lib.build builds it (a latent config's autoencoder from its
  config file)."""
  return builder.create_task(config, first_stage=first_stage(config))


_shapes = {}


def parameter_shapes(config: ml_collections.ConfigDict) -> dict:
  """The config's task's parameter trees initialised from shapes only (jax.eval_shape: no
  memory spent); configs sharing a network share them."""
  task = build_task(config)
  shape = builder.image_hw(config, 'data.image_size') + (config.data.num_channels,)
  key = (repr(task.model), repr(getattr(task, 'text', None)), task.name,
         getattr(task, 'low_size', 0), task.batch_keys, shape,
         repr(getattr(task, 'first_stage', None)))
  if key not in _shapes:
    _shapes[key] = jax.eval_shape(lambda: task.init(jax.random.key(0), shape))
  return _shapes[key]


def count_parameters(config: ml_collections.ConfigDict) -> int:
  return sum(leaf.size for leaf in jax.tree.leaves(parameter_shapes(config)))


@pytest.mark.parametrize('path', CONFIG_FILES)
def test_config_builds_its_sde_network_parameterisation_and_sampler(path):
  config = load(path)
  sde = builder.create_sde(config)
  assert sde.N == config.sde.N
  params = parameter_shapes(config)
  assert jax.tree.leaves(params)
  sampler = builder.create_sampler(config, sde)
  assert sampler.method in sampling.SAMPLERS
  task = build_task(config)
  # The score function of the initialised network runs at the sampler's first time (a
  # classifier's logits, at the time input of its SDE; an upsampler's given its input).
  shape = (2,) + builder.image_hw(config, 'data.image_size') + (config.data.num_channels,)
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  t = jnp.full((2,), sde.T)
  if config.training.task == 'classifier':
    logits = jax.eval_shape(lambda p, x: task.logits_fn(p)(x, t), params, x)
    assert logits.shape == (2, config.model.num_outputs)
    return
  if config.training.task == 'autoencoder':
    reconstruction = jax.eval_shape(task.reconstruct, params, x)
    assert reconstruction.shape == shape
    return
  # A latent model's score is of latents; their decoding is of the images' shape.
  x = jax.ShapeDtypeStruct((2,) + task.sample_shape(shape[1:]), jnp.float32)
  assert jax.eval_shape(task.to_images, params, x).shape == shape
  inputs = {}
  if task.input_shape(shape[1:]) is not None:  # an upsampler's low-resolution image
    low = jnp.zeros((2,) + task.input_shape(shape[1:]))
    inputs = task.sampling_inputs(jax.random.key(0), low, shape[1:3])
  score = jax.eval_shape(lambda p, x: task.score_fn(p, **inputs)(x, t), params, x)
  assert score.shape == x.shape


@pytest.mark.parametrize('path', sorted(PUBLISHED_PARAMETERS))
def test_parameter_count_equals_the_published_one(path):
  assert count_parameters(load(path)) == PUBLISHED_PARAMETERS[path]


@pytest.mark.parametrize('path', sorted(MEASURED_PARAMETERS))
def test_parameter_count_equals_the_measured_one(path):
  assert count_parameters(load(path)) == MEASURED_PARAMETERS[path]


@pytest.mark.parametrize('path', sorted(PUBLISHED_AUTOENCODER_PARAMETERS))
def test_autoencoder_parameter_count_equals_the_published_one(path):
  tree = parameter_shapes(load(path))['autoencoder']
  assert sum(leaf.size for leaf in jax.tree.leaves(tree)) == PUBLISHED_AUTOENCODER_PARAMETERS[path]


@pytest.mark.parametrize('guided_path, classifier_path', CLASSIFIER_GUIDANCE_PAIRS)
def test_guiding_classifier_config_matches_its_score_model(guided_path, classifier_path):
  guided, classifier = load(guided_path), load(classifier_path)
  assert classifier.training.task == 'classifier'
  assert guided.training.task == 'diffusion' and guided.model.num_classes == 0
  assert guided.sampling.guidance == 'classifier' and guided.sampling.classifier_workdir
  sde = builder.create_sde(guided)
  assert builder.create_sde(classifier) == sde
  for key in ('image_size', 'num_channels', 'centered'):
    assert classifier.data[key] == guided.data[key], key
  # The classifier sees the time input of the score network of its SDE.
  assert (builder.create_parameterization(classifier, sde).time_input
          == builder.create_parameterization(guided, sde).time_input)


@pytest.mark.filterwarnings('ignore:the load_module:DeprecationWarning')  # ml_collections' loader
@pytest.mark.parametrize('path', [p for p in CONFIG_FILES if p.startswith('ve/ncsn/')])
def test_ncsn_has_a_norm_table_row_per_noise_level_even_after_overrides(path):
  config = load(path)
  assert builder.create_model(config).num_levels == config.sde.N
  config = _parse_config_flag(['main.py', f'--config={ROOT / "configs" / path}',
                               '--config.sde.N=17'])
  assert builder.create_model(config).num_levels == 17


def _parse_config_flag(argv: list[str]) -> ml_collections.ConfigDict:
  """Parses argv as main.py does (overrides are defined from the argv they come in)."""
  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file('config', lock_config=True, flag_values=flag_values,
                                  sys_argv=argv)
  flag_values(argv)
  return flag_values.config


@pytest.mark.filterwarnings('ignore:the load_module:DeprecationWarning')  # ml_collections' loader
def test_config_flags_loads_a_config_file_locked_with_overrides():
  path = ROOT / 'configs' / 've' / 'cifar10_ncsnpp_continuous.py'
  config = _parse_config_flag(['main.py', f'--config={path}', '--config.training.batch_size=64'])
  assert config.training.batch_size == 64
  assert config.model.nf == 128
  with pytest.raises(AttributeError, match='batch_size'):  # a typo fails, with a suggestion
    _parse_config_flag(['main.py', f'--config={path}', '--config.training.batchsize=64'])


@pytest.mark.parametrize('stages, single', [
    (('mnist/ae.py', 'mnist/ldm.py'), 'mnist/pixel.py'),
    (('mnist/base14.py', 'mnist/sr28.py'), 'mnist/pixel.py'),
    (('text/mnist_pairs_14.py', 'text/mnist_pairs_sr.py'), 'text/mnist_pairs.py'),
])
def test_a_multi_stage_model_budgets_the_single_stage_time_in_all(stages, single):
  # benchmarks/mnist_stages.py compares them at equal wall time; so do their docstrings.
  minutes = [load(path).training.max_minutes for path in (*stages, single)]
  assert sum(minutes[:-1]) == pytest.approx(minutes[-1])
