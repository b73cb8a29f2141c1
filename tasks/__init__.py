"""What the job trains and samples: pure objects over explicit arguments (no ConfigDict).

Every task has

  name: str                                  its config name (training.task)
  batch_keys: tuple[str, ...]                the keys of the dict batch its loss reads
  samples: bool                              whether it is a generative model to sample
  metrics: tuple[str, ...]                   the eval.metrics that apply to it
  frozen: tuple[str, ...]                    trees it reads but never trains
  init(rng, image_shape) -> {name: tree}     its named parameter trees
  loss_terms(params, batch, rng, *, train, weights=None, step=None) -> {name: scalar}
  loss(...) -> scalar                        loss_terms(...)['loss']

A task that samples (`samples`) also has

  sample_shape(image_shape) -> shape         what its samplers draw in (a latent model's: latents)
  input_shape(image_shape) -> shape | None   the image each sample is drawn given (an
                                             upsampler's low-resolution image), or None;
                                             then input_of(images) makes it of real images
  to_images(params, x) -> images             its samples as model-space images (decoded)
  score_fn(params, labels, caption, **inputs), denoise_fn(params)

and one that does not says what its workdir is for instead (`use_instead`).

`train=True` is the training loss (dropout, label dropout); `train=False` the test
loss, per-example `weights` masking padded examples; `step`, the training step, for
objectives that change over training (an autoencoder's GAN terms start late). loss_terms
holds the objective, 'loss', and whatever else the job logs beside it. `init` makes every
tree, the frozen ones as stand-ins of the right shapes: the job fills them in (weights read
from files, another job's model) and its optimiser neither sees nor differentiates them.
run_lib's train loop, checkpoints and evaluation know tasks only through this; each task
adds the functions its users need (`Diffusion.score_fn`, `NoisyClassifier.logits_fn`, ...).

  diffusion         a score network, optionally class- or text-conditional (classifier-free
                    guidance; a jointly trained text encoder, GLIDE)
  super_resolution  a diffusion model of images given a low-resolution one, with noise-
                    conditioning augmentation: a cascade's upsampler
  classifier        a noise-conditional classifier (classifier guidance)
  autoencoder       latent diffusion's first stage: a KL autoencoder trained by LDM's
                    reconstruction, KL, LPIPS and PatchGAN losses
  latent            a score network of a frozen autoencoder's latents (latent diffusion)

"""

from tasks.autoencoder import Autoencoder
from tasks.classifier import NoisyClassifier
from tasks.diffusion import Caption, Diffusion
from tasks.latent import Latent
from tasks.super_resolution import SuperResolution

TASKS = {'diffusion': Diffusion, 'super_resolution': SuperResolution,
         'classifier': NoisyClassifier, 'autoencoder': Autoencoder, 'latent': Latent}

__all__ = ['TASKS', 'Autoencoder', 'Caption', 'Diffusion', 'Latent', 'NoisyClassifier',
           'SuperResolution']
