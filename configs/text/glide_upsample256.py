"""GLIDE's released small upsampler (Nichol et al. 2021; openai/glide-text2im,
`model_and_diffusion_defaults_upsampler()`) on scorelab's network: 64 -> 256 px given the
caption, the second stage of configs/text/glide_base64.py's cascade.

GLIDE's base model but for 256 px: 2 residual blocks per resolution, channel multipliers
(1, 1, 2, 2, 4, 4) (256 down to 8 px), attention still at 32, 16 and 8 px, its own text
transformer of the base's shape, and the linear noise schedule, which scorelab's VP SDE is
exactly (beta 0.1 -> 20 over N = 1000 levels: DDPM's 1e-4 -> 0.02). The 64 px image is
upsampled bilinearly and concatenated to the input, as GLIDE's SuperResText2ImUNet does.
GLIDE's notebook samples it with DDIM (eta 0) on 27 steps ('fast27', 10 in each of the two
least noisy fifths of the 1000 steps, 3, 2 and 2 in the others), no guidance, and the initial
noise scaled by upsample_temp = 0.997: here DDIM, guidance s = 1 and no temperature
(scorelab has none), on 27 uniform steps. The
captions are still dropped 20% of the time in training, so that the upsampler can be
guided too (--config.sampling.guidance_scale).

Noise-conditioning augmentation: GLIDE's released upsampler has none. Its network has no
input for an augmentation level, and the notebook conditions it on the base model's samples
as they are, only rounded to 8 bits (`low_res=((samples+1)*127.5).round()/127.5 - 1`); its
training code is not released. scorelab's upsampler always trains with augmentation (the
64 px image diffused to s ~ U[0, T], s embedded by its own layers, Ho et al. 2021) and
samples at conditioning.aug_level, kept at the default 0.2 (imagen-pytorch's; Imagen uses
0.1-0.3); --config.conditioning.aug_level=0 conditions on the clean base samples, as GLIDE.

Parameters (tests/configs/test_configs.py, benchmarks/glide_parameters.py): 346,412,035, the score
network 295,775,235 and the text encoder 50,636,800. GLIDE's own code builds 398,361,286: its
text transformer 76,695,808, the rest 321,665,478. The differences are those of
configs/text/glide_base64.py: the text side (26,059,008 fewer: the 258-token byte vocabulary
against GPT-2's 50,257 BPE tokens, no padding embedding, the pooled projection counted in our
score network), no scale-shift norm (14,912,448), one attention block per resolution on the
up path instead of 3 (14,579,712 of the 6 missing blocks), no 6-channel learned-variance
output (5,187); ours only, the 1x1 shortcuts of the resampling blocks (2,474,304), the
pooled projection (393,984) and the embedding of the augmentation level ('aug_Dense_0',
'aug_Dense_1': 738,816). The attention has GLIDE's heads of 64 channels
(model.attn_head_channels, no parameter more); there is no fp16.

Data: tfds `coco_captions` as for the base, at 256 px; the 64 px condition is the training
image downsampled by the input pipeline's antialiased resize, as the base's images are.

  python main.py --config configs/text/glide_upsample256.py \
      --workdir workdir/glide/upsample256 --mode train
  python main.py --config configs/text/glide_upsample256.py \
      --workdir workdir/glide/upsample256 --mode sample \
      --config.sampling.cascade_from=workdir/glide/base64 \
      --config.sampling.captions_file=prompts.txt
"""

import ml_collections

from configs.text import glide_base64


def get_config() -> ml_collections.ConfigDict:
  config = glide_base64.get_config()
  config.training.task = 'super_resolution'
  config.data.image_size = 256
  config.conditioning.low_size = 64
  config.conditioning.aug_level = 0.2  # the default; GLIDE's released upsampler: none

  model = config.model
  model.num_res_blocks = 2
  model.ch_mult = (1, 1, 2, 2, 4, 4)  # 256, 128, 64, 32, 16, 8 px
  model.attn_resolutions = (32, 16, 8)
  model.attn_head_channels = 64  # num_head_channels

  sampling = config.sampling
  sampling.eta = 0.0  # DDIM, as GLIDE's ddim_sample_loop
  sampling.n_steps = 27  # as many as GLIDE's fast27
  sampling.guidance_scale = 1.0  # GLIDE's notebook does not guide the upsampler
  return config
