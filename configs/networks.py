"""The score networks of Song et al.'s configs, as blocks of `config.model` keys.

score_sde repeats each network's keys in every config that uses it; here each
is written once. Experiment files add what varies between them:
`embedding_type` ('fourier' for continuous VE, 'positional' otherwise),
`scale_by_sigma`, `ema_rate`, and `dropout` (a per-dataset default, see
configs/datasets.py). score_sde's `attention_type`, `conv_size` and
`normalization` are dropped: its networks never read them (NCSN++/DDPM always
use GroupNorm and DDPM attention, NCSNv2 InstanceNorm++).

Parameter counts (tests/configs/test_configs.py checks them against the published
implementation): NCSN++ CIFAR-10 62,758,915 (Fourier) / 62,693,251 (positional),
DDPM++ 61,804,419, DDPM 35,218,947, NCSN++ 256 px 65,574,549, NCSN++ 1024 px
105,785,896, DDPM 256 px 111,569,923, NCSNv2 29,694,083 / 83,445,379 (128 px);
NCSN (v1) 29,683,715 + 43,392 per noise level, checked against ermongroup/ncsn.
"""

import ml_collections


def ncsnpp(model: ml_collections.ConfigDict) -> None:
  """NCSN++ for 32-64 px: 4 BigGAN blocks per level, FIR resampling, residual input path."""
  model.name = 'ncsnpp'
  model.nf = 128
  model.ch_mult = (1, 2, 2, 2)
  model.num_res_blocks = 4
  model.attn_resolutions = (16,)
  model.resamp_with_conv = True
  model.conditional = True
  model.fir = True
  model.fir_kernel = (1, 3, 3, 1)
  model.skip_rescale = True
  model.resblock_type = 'biggan'
  model.progressive = 'none'
  model.progressive_input = 'residual'
  model.progressive_combine = 'sum'
  model.init_scale = 0.0
  model.fourier_scale = 16.0
  model.nonlinearity = 'swish'


def ncsnpp_deep(model: ml_collections.ConfigDict) -> None:
  """NCSN++ (deep): 8 residual blocks per level."""
  ncsnpp(model)
  model.num_res_blocks = 8


def ddpmpp(model: ml_collections.ConfigDict) -> None:
  """DDPM++: NCSN++ without FIR resampling and without the input path."""
  ncsnpp(model)
  model.fir = False
  model.progressive_input = 'none'


def ddpmpp_deep(model: ml_collections.ConfigDict) -> None:
  """DDPM++ (deep): 8 residual blocks per level."""
  ddpmpp(model)
  model.num_res_blocks = 8


def ncsnpp_256(model: ml_collections.ConfigDict) -> None:
  """NCSN++ for 256 px: 7 levels of 2 blocks, output_skip / input_skip paths."""
  ncsnpp(model)
  model.ch_mult = (1, 1, 2, 2, 2, 2, 2)
  model.num_res_blocks = 2
  model.progressive = 'output_skip'
  model.progressive_input = 'input_skip'


def ncsnpp_1024(model: ml_collections.ConfigDict) -> None:
  """NCSN++ for 1024 px: nf = 16, 8 levels of 1 block, output_skip / input_skip paths."""
  ncsnpp(model)
  model.nf = 16
  model.ch_mult = (1, 2, 4, 8, 16, 32, 32, 32)
  model.num_res_blocks = 1
  model.progressive = 'output_skip'
  model.progressive_input = 'input_skip'


def ddpm(model: ml_collections.ConfigDict) -> None:
  """score_sde's DDPM U-Net for 32 px (35.2M; Ho et al.'s has 2 more attention blocks).

  Our DDPM is NCSN++ with DDPM blocks, and every config.model key it has is
  passed to it, so the keys that make it DDPM are set here. score_sde's DDPM
  configs inherit embedding_type = 'fourier' from the dataset defaults but its
  DDPM network never reads it and always embeds positionally: so does this one.
  """
  model.name = 'ddpm'
  model.nf = 128
  model.ch_mult = (1, 2, 2, 2)
  model.num_res_blocks = 2
  model.attn_resolutions = (16,)
  model.resamp_with_conv = True
  model.conditional = True
  model.nonlinearity = 'swish'
  model.init_scale = 0.0
  model.resblock_type = 'ddpm'
  model.fir = False
  model.skip_rescale = False
  model.progressive = 'none'
  model.progressive_input = 'none'
  model.embedding_type = 'positional'


def ddpm_256(model: ml_collections.ConfigDict) -> None:
  """score_sde's DDPM U-Net for 256 px (LSUN, CelebA-HQ)."""
  ddpm(model)
  model.ch_mult = (1, 1, 2, 2, 4, 4)


def ncsnv2(model: ml_collections.ConfigDict) -> None:
  """NCSNv2 for up to 64 px (CIFAR-10, CelebA): RefineNet with InstanceNorm++ and ELU."""
  model.name = 'ncsnv2_64'
  model.nf = 128
  model.nonlinearity = 'elu'
  model.interpolation = 'bilinear'
  model.adjust_padding = False


def ncsnv2_128(model: ml_collections.ConfigDict) -> None:
  """NCSNv2 for 96-128 px (LSUN): one more downsampling stage, 4 nf channels deep."""
  ncsnv2(model)
  model.name = 'ncsnv2_128'


def ncsn(model: ml_collections.ConfigDict) -> None:
  """NCSN (v1): the 64-px NCSNv2 RefineNet with InstanceNorm++ conditioned on the noise level.

  run_lib gives it one row of norm scales per level of the SDE (num_levels = sde.N).
  """
  model.name = 'ncsn'
  model.nf = 128
  model.nonlinearity = 'elu'
  model.interpolation = 'bilinear'
  model.adjust_padding = False
