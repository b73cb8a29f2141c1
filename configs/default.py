"""Every configuration key of scorelab, with defaults; experiment configs override them.

Experiment files start from `get_default_config()` and change what differs, so a
key never exists in only some configs. main.py loads configs with
`lock_config=True`: a misspelt override such as `--config.training.batchsize=64`
fails instead of being ignored.
"""

import ml_collections
from ml_collections.config_dict import FieldReference, placeholder


def get_default_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 42

  config.data = data = ml_collections.ConfigDict()
  # 'digits' (bundled), a tfds name ('cifar10', 'celeb_a', ...) or 'folder:/path/to/images'
  # (PNG/JPEG, one subfolder per class; see data.folders.open_folder).
  data.dataset = 'digits'
  data.data_dir = ''  # tfds data_dir; '' means workdir/data for digits, tfds' default otherwise
  data.download = False  # let tfds download and prepare a missing dataset (needs internet)
  # A side (square images) or (height, width): --config.data.image_size=28 or =(28,56).
  data.image_size = FieldReference(8, field_type=object)
  data.num_channels = 1
  data.centered = False  # False: data in [0, 1], networks map it to [-1, 1] themselves
  data.random_flip = False
  data.uniform_dequantization = False
  # Grey levels of the data: 256 for 8-bit images (the bundled digits have 17). Both
  # likelihoods (eval.metrics bpd_ode, bpd_vlb) and the training dequantisation use them.
  data.levels = 256
  # A text feature of the dataset, e.g. 'caption' (digit_pairs) or 'captions/text'
  # (coco_captions: one of an image's captions per epoch); '' for none. Needs text.layers > 0.
  data.caption_key = ''

  config.sde = sde = ml_collections.ConfigDict()
  sde.name = 'vesde'  # 'vpsde', 'subvpsde', 'vesde'
  sde.N = 1000  # discrete levels (num_scales in score_sde)
  sde.beta_min = 0.1
  sde.beta_max = 20.0
  sde.sigma_min = 0.01
  sde.sigma_max = 50.0
  # VP only: 'linear' betas (Ho et al.; beta_min, beta_max) or improved DDPM's 'cosine'
  # alphas_cumprod (Nichol & Dhariwal 2021) with offset cosine_s.
  sde.schedule = 'linear'
  sde.cosine_s = 0.008

  config.model = model = ml_collections.ConfigDict()
  model.name = 'ncsnpp'  # see models.MODELS
  model.ema_rate = 0.999
  # Network options: each is passed to the network class that has it.
  model.nf = 128
  model.ch_mult = (1, 2, 2, 2)
  model.num_res_blocks = 4
  model.attn_resolutions = (16,)
  model.attn_head_channels = 0  # > 0: heads of that many channels (ADM); 0: one head
  model.attn_position = 'none'  # pixel positions in attention: 'sinusoidal' or 'learned'
  model.dropout = 0.1
  model.resamp_with_conv = True
  model.conditional = True
  model.fir = True
  model.fir_kernel = (1, 3, 3, 1)
  model.skip_rescale = True
  model.resblock_type = 'biggan'
  model.progressive = 'none'
  model.progressive_input = 'residual'
  model.progressive_combine = 'sum'
  model.embedding_type = 'fourier'
  model.fourier_scale = 16.0
  model.init_scale = 0.0
  model.scale_shift_norm = False  # ADM's scale-shift norm in the residual blocks
  model.nonlinearity = 'swish'
  # The parameterisation (sde_lib.parameterization): '' is Song et al.'s for the SDE
  # and training.continuous (eps for VP/sub-VP, score for VE).
  model.output = ''  # '', 'eps', 'score', 'x0', 'v'
  model.time_input = ''  # '', 't999', 'ddpm_index', 'sigma', 'ncsn_level'
  model.scale_by_sigma = True  # a 'score' network's output is divided by sigma
  # Improved DDPM's learned variances: the network also outputs v, the interpolation of the
  # reverse step's log-variance between beta-tilde and beta, trained by the hybrid loss
  # (training.vlb_weight) on DDPM's discrete levels of a VP SDE; the bound (bpd_vlb) uses it.
  model.learned_variance = False
  model.num_classes = 0  # > 0: condition on class labels (label num_classes = none)
  # training.task='classifier': models.Classifier, the encoder of the ncsnpp options above.
  model.num_outputs = 10  # its classes
  model.pooling = 'attention'  # 'attention' (ADM) or 'mean'
  model.interpolation = 'bilinear'  # NCSNv2 only
  model.adjust_padding = False  # NCSNv2 only

  # The text encoder of a text-conditional score network (GLIDE, models.TextEncoder), trained
  # jointly with it; its tokens reach every attention layer, its pooled feature the time
  # embedding. Defaults: GLIDE's base model's transformer, but for the tokenizer.
  config.text = text = ml_collections.ConfigDict()
  text.layers = 0  # 0: no text conditioning
  text.width = 512
  text.heads = 8
  text.max_len = 128  # tokens, the end-of-text token included; longer captions are truncated
  # 'bytes': UTF-8 bytes + end-of-text + padding (nothing to download or train); 'words': the
  # training captions' words and punctuation, one token each (closed vocabularies); 'bpe':
  # byte-pair encoding of text.vocab_size ids trained on the training captions (`tokenizers`).
  # A trained tokenizer is written to workdir/tokenizer.json on the first run and read from
  # there after; text.tokenizer_file starts a workdir from another's (a cascade's stages).
  text.tokenizer = 'bytes'
  text.tokenizer_file = ''
  text.vocab_size = 1024  # 'bpe' only: merges stop there (GLIDE's GPT-2 BPE: 50,257)

  # training.task='autoencoder': Latent Diffusion's first stage (models.AutoencoderKL, trained
  # by LDM's LPIPSWithDiscriminator loss, tasks.Autoencoder). Defaults: LDM's kl-f8 (Stable
  # Diffusion's VAE) and its loss settings.
  config.autoencoder = autoencoder = ml_collections.ConfigDict()
  autoencoder.ch = 128
  autoencoder.ch_mult = (1, 2, 4, 4)  # f = 2^(len - 1) = 8
  autoencoder.num_res_blocks = 2
  autoencoder.attn_resolutions = ()  # image sizes (of data.image_size's levels) with attention
  autoencoder.mid_attention = True
  autoencoder.z_channels = 4
  autoencoder.embed_dim = 4  # the latent's channels
  autoencoder.dropout = 0.0
  autoencoder.norm_groups = 32  # also read for latent.autoencoder_weights (not in the file)
  autoencoder.rec_loss = 'l1'  # 'l1' (LDM) or 'l2'
  autoencoder.kl_weight = 1e-6
  autoencoder.logvar_init = 0.0
  # The PatchGAN (taming's NLayerDiscriminator, hinge loss, LDM's adaptive weight): 0 layers
  # for none; its terms start at step disc_start.
  autoencoder.disc_layers = 3
  autoencoder.disc_ndf = 64
  autoencoder.disc_start = 50001
  autoencoder.disc_weight = 0.5
  autoencoder.disc_factor = 1.0
  # LPIPS (VGG16) needs weights that cannot be downloaded here: a local .safetensors / .npz
  # of the lpips package's state dict (models.lpips says how to make one); '' for none.
  autoencoder.lpips_weights = ''
  autoencoder.perceptual_weight = 1.0

  # training.task='latent': a score model (config.model, config.sde) of the latents of a
  # frozen autoencoder: the one trained in latent.autoencoder_workdir, or a PyTorch
  # AutoencoderKL (diffusers or CompVis layout, e.g. Stable Diffusion's VAE) in the local
  # .safetensors file latent.autoencoder_weights.
  config.latent = latent = ml_collections.ConfigDict()
  latent.autoencoder_workdir = ''
  latent.autoencoder_weights = ''
  latent.scale = 0.0  # latents times this; 0: 1 / their std over scale_batches training batches
  latent.scale_batches = 8
  latent.sample_posterior = True  # encode to a posterior sample (LDM), else its mean

  config.training = training = ml_collections.ConfigDict()
  training.batch_size = 128  # global, over all devices and hosts
  # 'diffusion': the score network; 'autoencoder': a KL autoencoder (config.autoencoder);
  # 'latent': a score network of an autoencoder's latents (config.latent);
  # 'super_resolution': a score network of images given a
  # low-resolution one (conditioning.low_size), a cascade's upsampler; 'classifier': a
  # noise-conditional classifier of x_t (losses.classifier_loss) for classifier guidance,
  # t drawn as the score model's.
  training.task = 'diffusion'
  training.n_iters = 1_300_001
  training.continuous = True  # continuous-time DSM; False: DDPM (VP) or SMLD (VE) loss
  training.reduce_mean = False
  # The continuous loss's weighting over time (sde_lib.losses.dsm_loss): 'noise' (Song et
  # al.'s, the noise prediction's MSE), 'likelihood' (g^2: a bound on the NLL) or 'v'
  # (v-prediction's MSE, Salimans & Ho 2022: more weight at high noise)
  training.loss_weighting = 'noise'
  training.vlb_weight = 0.001  # model.learned_variance: lambda of L_simple + lambda L_vlb
  # Steps per compiled call (lax.scan): fewer dispatches on accelerators. Keep 1 on CPU,
  # where XLA runs convolutions ~7x slower inside a loop.
  training.n_jitted_steps = 1
  training.log_freq = 50
  training.eval_freq = 100  # steps between test-loss evaluations
  training.snapshot_freq = 50_000  # kept checkpoints (and sample grids)
  training.snapshot_freq_for_preemption = 10_000  # overwritten checkpoint
  training.snapshot_sampling = True
  training.max_minutes = 0.0  # > 0: stop (with a checkpoint) after this wall time

  config.optim = optim = ml_collections.ConfigDict()
  optim.optimizer = 'adam'
  optim.lr = 2e-4
  optim.beta1 = 0.9
  optim.beta2 = 0.999
  optim.eps = 1e-8
  optim.weight_decay = 0.0
  optim.warmup = 5000
  optim.grad_clip = 1.0  # global-norm clipping; <= 0 disables it

  config.sampling = sampling = ml_collections.ConfigDict()
  # 'pc' | 'ode' | 'ddim' | 'dpm_solver_pp' | 'dpm_solver_pp_sde' | 'unipc' | 'edm_heun'
  sampling.method = 'pc'
  sampling.n_steps = placeholder(int)  # time steps (PC: noise levels); None: the SDE's N
  sampling.schedule = 'uniform'  # 'uniform' | 'karras' | 'logsnr' | 'quadratic'
  sampling.eps = 1e-3  # the last time before the final denoising step to sigma = 0
  sampling.rho = 7.0  # the 'karras' schedule's exponent
  sampling.predictor = 'reverse_diffusion'  # pc
  sampling.corrector = 'langevin'  # pc
  sampling.snr = 0.16  # pc: the corrector's signal-to-noise ratio
  sampling.corrector_steps = 1  # pc: corrector steps per noise level
  sampling.probability_flow = False  # pc: predict along the probability-flow ODE
  sampling.denoise = True  # pc: drop the last step's noise (score_sde's noise_removal)
  sampling.ode_method = 'dopri5'  # ode: 'dopri5', 'tsit5' (adaptive), 'heun', 'euler'
  sampling.rtol = 1e-5  # ode (adaptive)
  sampling.atol = 1e-5
  sampling.eta = 0.0  # ddim: 0 deterministic, 1 ancestral
  sampling.order = 2  # dpm_solver_pp, dpm_solver_pp_sde (1-3), unipc (1-3; 3 is usual)
  sampling.lower_order_final = True  # dpm_solver_pp*, unipc
  sampling.s_churn = 0.0  # edm_heun: EDM's stochasticity (0: Algorithm 1)
  sampling.s_min = 0.0  # edm_heun: the sigma range that gets churn
  sampling.s_max = float('inf')
  sampling.s_noise = 1.0
  sampling.batch_size = 64  # samples per PNG grid and per sampling call
  sampling.num_samples = 64  # --mode sample
  sampling.trajectory_frames = 0  # >= 2: --mode sample also draws the denoising trajectory
  # Class-conditional models (model.num_classes > 0): the classes to draw, e.g. '3,7'
  # ('': every class), one grid row each, and classifier-free guidance (sde_lib.guidance):
  # scale s = 1 the conditional model, 0 the unconditional one (Ho & Salimans' w = s - 1),
  # applied for t in [guidance_t_lo, guidance_t_hi] (Kynkaanniemi et al. 2024), s = 1 elsewhere.
  sampling.class_labels = ''
  # 'classifier': guide an unconditional model by the noise-conditional classifier trained
  # in sampling.classifier_workdir (same SDE and image shape), scale sampling.guidance_scale.
  sampling.guidance = ''  # '' (classifier-free for class-conditional models) or 'classifier'
  sampling.classifier_workdir = ''
  sampling.guidance_scale = 1.0
  sampling.guidance_t_lo = 0.0
  sampling.guidance_t_hi = 1.0
  # Controllable generation of --mode sample (sde_lib.controllable, by replacement at every
  # sampler step): 'inpaint' regenerates the region sampling.mask of test images ('left',
  # 'right', 'top', 'bottom' halves, the 'center' square of half the side, or a PNG file of
  # the image size whose white pixels are regenerated); 'colorize' keeps the grey level of
  # RGB test images. sampling.completions per test image, sampling.num_samples in all.
  sampling.task = ''  # '' (samples from the prior), 'inpaint' or 'colorize'
  sampling.mask = 'center'
  sampling.completions = 4
  # Text-conditional models: one caption per line, sampling.num_samples images in equal
  # blocks of consecutive lines (one grid row each); '' draws the first test captions.
  # Classifier-free guidance on the captions by sampling.guidance_scale.
  sampling.captions_file = ''
  # A super-resolution job's base stage: the workdir of the model whose samples it upsamples
  # in --mode sample and eval (itself a diffusion or, for longer cascades, super_resolution
  # job), sampled with its own config.
  sampling.cascade_from = ''
  # Changes to the base stage's saved config for this run, 'key=value,...', e.g.
  # 'sampling.guidance_scale=3,sampling.n_steps=50'.
  sampling.base_overrides = ''

  # Conditioning transforms of the training batch (sde_lib.conditioning).
  config.conditioning = conditioning = ml_collections.ConfigDict()
  conditioning.label_dropout = 0.0  # P(label -> the null class): classifier-free guidance
  conditioning.caption_dropout = 0.0  # P(caption -> the empty caption); GLIDE: 0.2
  # training.task='super_resolution': the side of the low-resolution input, and its noise
  # augmentation level s / T when sampling (Ho et al. 2021), drawn ~ U[0, aug_max] in
  # training (1: as imagen-pytorch). 0.2: imagen-pytorch's lowres_sample_noise_level;
  # Imagen samples at 0.1-0.3. Short runs learn to read a noisy input slowly (measured in
  # configs/cascade/digits_sr.py, which uses 0.05): aug_max 0 trains the plain upsampler.
  conditioning.low_size = FieldReference(0, field_type=object)  # a side or (height, width)
  conditioning.aug_level = 0.2
  conditioning.aug_max = 1.0

  config.eval = evaluate = ml_collections.ConfigDict()
  evaluate.begin_ckpt = 0  # 0: the latest checkpoint only
  evaluate.end_ckpt = 0
  evaluate.batch_size = 256
  # What --mode eval computes, each writing its own keys into eval/step_*.json:
  #   loss      test_loss: the task's training loss on the eval.bpd_dataset split
  #   bpd_ode   bpd_ode: bits/dim (data.levels) through the probability-flow ODE
  #   bpd_vlb   bpd_vlb (+ _prior, _decoder, _terms): DDPM's variational bound (VP SDE)
  #   fid       fd, kid, is (+ class metrics, a cascade's consistency) of eval.num_samples
  #             samples, and their nfe
  #   accuracy  accuracy_t*: a noise-conditional classifier's accuracy at fixed times
  #   reconstruction  rec_mse, rec_l1, psnr, rfd: an autoencoder's (a latent model's first
  #             stage's) reconstructions of the test split, and their FD to it
  # A task takes those that apply to it (its `metrics`); others fail when the job starts.
  evaluate.metrics = ('loss', 'bpd_ode', 'fid')
  evaluate.bpd_dataset = 'test'
  evaluate.bpd_estimator = 'rademacher'
  evaluate.rtol = 1e-5  # the probability-flow ODE's tolerances for bits/dim
  evaluate.atol = 1e-5
  # bpd_vlb: the reverse steps' fixed variance ('beta_tilde' or 'beta', Ho et al.'s two; a
  # model with learned variances uses its own), the number of the N - 1 KL terms drawn per
  # image (0: all of them, exact; K: an unbiased estimate from K), and whether the
  # prediction of x(0) is clipped to the data's range (improved DDPM's clip_denoised).
  evaluate.vlb_variance = 'beta_tilde'
  evaluate.vlb_terms = 0
  evaluate.vlb_clip_denoised = True
  evaluate.num_samples = 512
  evaluate.inception_weights = ''  # local .npz of the FID Inception network
  # KID's subsets (Binkowski et al.: 1000); below both set sizes, or its std is 0.
  evaluate.kid_subset_size = 1000

  # --mode sweep (configs/sweeps/): see run_lib/sweep.py.
  config.sweep = sweep = ml_collections.ConfigDict()
  sweep.index = -1  # >= 0: run only this point (a cluster array job's task index)
  sweep.metric = 'fd'  # the metric plotted: 'fd', 'kid', 'is', 'bpd_ode', 'test_loss', ...
  sweep.x = ''  # the plot's x axis: a swept key or 'nfe'; '' is the last swept key
  return config
