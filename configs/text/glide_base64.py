"""GLIDE's released small base model (Nichol et al. 2021; openai/glide-text2im,
`model_and_diffusion_defaults()`) on scorelab's network: text to 64x64 images.

The shape is GLIDE's: 192 base channels, 3 residual blocks per resolution, channel
multipliers (1, 2, 3, 4), attention at 32, 16 and 8 px whose keys and values also take the
caption's tokens (GLIDE's `encoder_kv`), residual blocks that resample (ADM's
resblock_updown), dropout 0.1, and a jointly trained 16-layer, width-512, 8-head transformer
over 128 tokens whose pooled feature is added to the time embedding. On scorelab's keys that
is DDPM++ (model.name 'ncsnpp' without FIR or progressive paths, positional time embedding,
BigGAN blocks) with ADM's plain residual sums (skip_rescale False), an eps-predicting
network on the VP SDE trained on its 1000 discrete levels (DDPM's loss, training.continuous
False; the network sees t * 999, GLIDE's timestep index). 20% of the captions are dropped to
the empty one during training, and sampling guides by s = 3 (both GLIDE's; scorelab's
scale is GLIDE's, s = 1 being the plain conditional model). GLIDE's notebook samples this
model with 100 respaced ancestral steps: here DDIM with eta = 1 (DDPM's ancestral step with
the posterior variance) on 100 uniform steps.

Parameters (tests/configs/test_configs.py, benchmarks/glide_parameters.py): 329,038,723, the score
network 278,401,923 and the text encoder 50,636,800. GLIDE's own code builds 385,030,726: its
text transformer 76,695,808, the rest 308,334,918. The differences, to the parameter, are the
parts of GLIDE that scorelab does not have, and two of NCSN++'s own:
- the text side (26,059,008 fewer): GLIDE's GPT-2 BPE vocabulary of 50,257 tokens against
  our 258 (UTF-8 bytes, end-of-text, padding; 128 bytes hold a COCO caption of ~50
  characters, but only about a quarter of what 128 BPE tokens hold), and its learned
  padding embedding; GLIDE counts the projection of the pooled feature to the time
  embedding (transformer_proj, 393,984) in its text part, ours ('pooled_projection') in the
  score network. GLIDE's transformer also attends to the padding (unmasked) and pools the
  last of the 128 positions; ours masks padding and pools the end-of-text token;
- ADM's scale-shift norm (use_scale_shift_norm: each residual block's embedding layer
  outputs a scale and a shift, twice ours; 13,731,264);
- ADM's attention after every up-path residual block at 32, 16 and 8 px (12 blocks);
  NCSN++/DDPM++ have one per resolution there (3): 18,178,560, of which encoder_kv
  5,318,784. The attention has ADM's heads of 64 channels (model.attn_head_channels: 6, 9
  and 12 heads at 32, 16 and 8 px), which split the same parameters as one head would;
- learned variances: GLIDE outputs 6 channels (eps and the variance interpolation, trained
  by the hybrid loss with its VLB term), ours eps only (3 channels, the MSE loss; 5,187);
- ours only: the 1x1 shortcut of NCSN++'s resampling BigGAN blocks (ADM's is the identity;
  1,588,032 more) and the pooled projection above (393,984 more).
Nor does scorelab have GLIDE's cosine noise schedule ('squaredcos_cap_v2'; only the linear VP
schedule, beta 0.1 -> 20, i.e. DDPM's 1e-4 -> 0.02 over 1000 steps, which is the schedule
of GLIDE's upsampler), fp16 (GLIDE runs the U-Net and the transformer in half precision,
ours run in float32), CLIP guidance, or GLIDE's unreleased data and training recipe: the
optimiser and batch here are scorelab's defaults, the EMA rate ADM's 0.9999.

Data: GLIDE's filtered training set is not public; tfds `coco_captions` stands in (one of
an image's captions, about five, per epoch), centre-cropped to a square and resized to 64
px, without random flips (captions name left and right). tfds must have prepared it in
array_record format (or pass --config.data.download=True).

  python main.py --config configs/text/glide_base64.py --workdir workdir/glide/base64 \
      --mode train
  python main.py --config configs/text/glide_base64.py --workdir workdir/glide/base64 \
      --mode sample --config.sampling.captions_file=prompts.txt

The 256 px upsampler of the cascade is configs/text/glide_upsample256.py.
"""

import ml_collections

from configs import networks
from configs.default import get_default_config


def get_config() -> ml_collections.ConfigDict:
  config = get_default_config()

  data = config.data
  data.dataset = 'coco_captions'
  data.caption_key = 'captions/text'
  data.image_size = 64
  data.num_channels = 3
  data.centered = True
  data.random_flip = False
  data.uniform_dequantization = False

  sde = config.sde
  sde.name = 'vpsde'
  sde.N = 1000  # GLIDE's diffusion_steps
  sde.beta_min, sde.beta_max = 0.1, 20.0  # linear: GLIDE's base uses the cosine schedule

  model = config.model
  networks.ddpmpp(model)
  model.nf = 192
  model.ch_mult = (1, 2, 3, 4)
  model.num_res_blocks = 3
  model.attn_resolutions = (32, 16, 8)
  model.attn_head_channels = 64  # num_head_channels
  model.dropout = 0.1
  model.resblock_type = 'biggan'  # ADM's resblock_updown
  model.fir = False
  model.progressive = 'none'
  model.progressive_input = 'none'
  model.skip_rescale = False  # ADM adds residuals and skips unscaled
  model.embedding_type = 'positional'
  model.scale_by_sigma = False
  model.init_scale = 0.0  # ADM zero-initialises each block's last layer
  model.ema_rate = 0.9999

  text = config.text
  text.layers, text.width, text.heads = 16, 512, 8  # xf_layers, xf_width, xf_heads
  text.max_len = 128  # text_ctx
  text.tokenizer = 'bytes'

  training = config.training
  training.task = 'diffusion'
  training.continuous = False  # DDPM's loss on GLIDE's 1000 discrete steps
  training.reduce_mean = True

  config.conditioning.caption_dropout = 0.2  # GLIDE

  sampling = config.sampling
  sampling.method = 'ddim'
  sampling.eta = 1.0  # ancestral, as GLIDE's p_sample_loop
  sampling.n_steps = 100  # GLIDE's notebook: timestep_respacing '100'
  sampling.guidance_scale = 3.0  # GLIDE's notebook
  return config
