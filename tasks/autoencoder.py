"""The autoencoder task: Latent Diffusion's first stage (Rombach et al. 2022), a KL
autoencoder trained by LDM's `LPIPSWithDiscriminator` (CompVis/latent-diffusion,
ldm/modules/losses/contperceptual.py, with taming-transformers' hinge loss and adopt_weight).

The objective of LDM, for images x in [-1, 1] and a posterior sample z ~ q(z | x):

  rec       = |x - D(z)| (or squared) + perceptual_weight * LPIPS(x, D(z))   per pixel
  nll       = sum over pixels of rec / exp(logvar) + logvar, mean over the batch
  kl        = KL(q(z | x) || N(0, I)) summed over latent dims, mean over the batch
  g         = -mean(disc(D(z)))
  d_weight  = disc_weight * clip(|grad_W nll| / (|grad_W g| + 1e-4), 0, 1e4), W the
              decoder's last kernel, held constant (LDM's calculate_adaptive_weight)
  generator = nll + kl_weight * kl + d_weight * disc_factor(step) * g
  d         = 0.5 * (mean(relu(1 - disc(x))) + mean(relu(1 + disc(D(z)))))   (hinge)

LDM trains the generator (autoencoder and logvar) and the discriminator with two optimisers
in alternate steps. Here one gradient of one scalar trains all of them,

  loss = generator(autoencoder, logvar; discriminator held by stop_gradient)
         + disc_factor(step) * d(discriminator; x and D(z) held by stop_gradient),

whose gradient is the generator's gradient on the autoencoder and logvar and the hinge
loss's on the discriminator. One difference from LDM: its discriminator step comes after
the generator's update on the same batch and sees a reconstruction by the updated
autoencoder (a fresh posterior sample); here it sees the one before the update. Adam's
update is per parameter, so one Adam over all trees is LDM's two Adams with the same
hyperparameters (LDM: lr for both, betas (0.5, 0.9)), as long as nothing couples the trees:
a gradient clip by global norm would (LDM clips neither).
"""

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

import models
from data import scaling

REC_LOSSES = ('l1', 'l2')


def _batch_mean(values: jax.Array, weights: jax.Array | None) -> jax.Array:
  """The (weighted) mean of per-example values [B]."""
  if weights is None:
    return jnp.mean(values)
  return jnp.sum(weights * values) / jnp.sum(weights)


def _per_example_mean(values: jax.Array) -> jax.Array:
  return jnp.mean(values.reshape(values.shape[0], -1), axis=-1)


def hinge_d_loss(logits_real: jax.Array, logits_fake: jax.Array, *,
                 weights: jax.Array | None = None) -> jax.Array:
  """taming's hinge_d_loss: 0.5 * (mean(relu(1 - real)) + mean(relu(1 + fake))).

  Args:
    logits_real: [B, ...] the discriminator's logits of real images (patches).
    logits_fake: [B, ...] its logits of reconstructions.
    weights: optional [B] weights of the examples (each example's mean over its patches,
      then the weighted mean over the batch; the plain mean without weights).
  """
  real = _per_example_mean(jax.nn.relu(1.0 - logits_real))
  fake = _per_example_mean(jax.nn.relu(1.0 + logits_fake))
  return 0.5 * (_batch_mean(real, weights) + _batch_mean(fake, weights))


def adopt_weight(weight: float, step: jax.Array, *, threshold: int) -> jax.Array:
  """taming's adopt_weight: `weight` from `step` >= threshold on, 0 before."""
  return jnp.where(step >= threshold, weight, 0.0).astype(jnp.float32)


def adaptive_weight(nll_grad: jax.Array, g_grad: jax.Array, *, disc_weight: float) -> jax.Array:
  """LDM's calculate_adaptive_weight from the two losses' gradients w.r.t. the last layer:
  disc_weight * clip(|nll_grad| / (|g_grad| + 1e-4), 0, 1e4), held constant."""
  ratio = jnp.linalg.norm(nll_grad) / (jnp.linalg.norm(g_grad) + 1e-4)
  return jax.lax.stop_gradient(jnp.clip(ratio, 0.0, 1e4)) * disc_weight


@dataclasses.dataclass(frozen=True, eq=False)
class Autoencoder:
  """LDM's KL autoencoder with its learned log-variance and, optionally, its PatchGAN
  discriminator and LPIPS perceptual loss (module docstring).

  Trainable trees: 'autoencoder' (the AutoencoderKL's params), 'logvar' ({'logvar': a
  scalar}) and 'discriminator' when there is one. The LPIPS network's params are the frozen
  tree 'lpips' (`frozen`): the job loads them from a file and puts them into params, the
  loss reads them and never differentiates them.

  Attributes:
    model: the autoencoder; its in_channels and out_channels are the images'.
    centered: model-space images are in [-1, 1] (True) or [0, 1] (False); the network and
      every loss term see [-1, 1].
    rec_loss: the pixel error, 'l1' (LDM) or 'l2'.
    kl_weight: of the KL term (1e-6 in LDM's kl-f8 config).
    logvar_init: the initial value of the learned scalar log-variance of the NLL.
    discriminator: the PatchGAN; None trains without a GAN.
    disc_start: the step from which the GAN terms count (before it they are multiplied by 0).
    disc_weight: LDM's discriminator_weight, which multiplies the adaptive weight.
    disc_factor: the GAN terms' factor from disc_start on.
    lpips: the perceptual distance, images of at least 16 x 16 with 1 or 3 channels; None
      for none.
    perceptual_weight: of the LPIPS distance in the per-pixel reconstruction loss.
  """

  model: models.AutoencoderKL
  centered: bool
  rec_loss: str = 'l1'
  kl_weight: float = 1e-6
  logvar_init: float = 0.0
  discriminator: models.NLayerDiscriminator | None = None
  disc_start: int = 50001
  disc_weight: float = 0.5
  disc_factor: float = 1.0
  lpips: models.LPIPS | None = None
  perceptual_weight: float = 1.0

  name: ClassVar[str] = 'autoencoder'
  samples: ClassVar[bool] = False
  batch_keys: ClassVar[tuple[str, ...]] = ('image',)
  metrics: ClassVar[tuple[str, ...]] = ('loss', 'reconstruction')
  # What to do with its workdir instead of sampling it.
  use_instead: ClassVar[str] = ('--mode eval shows its reconstructions; train a latent model on '
                                'it with --config.training.task=latent '
                                '--config.latent.autoencoder_workdir={workdir}')

  def __post_init__(self):
    if self.rec_loss not in REC_LOSSES:
      raise ValueError(f'unknown rec_loss {self.rec_loss!r}; known: {list(REC_LOSSES)}')
    for name in ('kl_weight', 'disc_weight', 'disc_factor', 'perceptual_weight'):
      if getattr(self, name) < 0:
        raise ValueError(f'{name} must be >= 0, got {getattr(self, name)}')

  @property
  def frozen(self) -> tuple[str, ...]:
    """The trees the job puts into params but never trains."""
    return ('lpips',) if self.lpips is not None else ()

  def init(self, rng: jax.Array, image_shape: tuple[int, ...]) -> dict[str, Any]:
    """The trees for images of `image_shape` [H, W, C]; with LPIPS a stand-in 'lpips' of
    its shapes (random VGG weights) that the job replaces by the loaded ones."""
    ae_rng, disc_rng, noise_rng = jax.random.split(rng, 3)
    x = jnp.zeros((1,) + tuple(image_shape))
    trees = {'autoencoder': self.model.init(ae_rng, x, sample_posterior=False)['params'],
             'logvar': {'logvar': jnp.asarray(self.logvar_init, jnp.float32)}}
    if self.discriminator is not None:
      # Noise, not zeros: an ActNorm discriminator initialises its scale from this batch's
      # spread (taming's from the first training batch), infinite for a constant one.
      noise = jax.random.uniform(noise_rng, (2,) + tuple(image_shape), minval=-1.0, maxval=1.0)
      trees['discriminator'] = self.discriminator.init(disc_rng, noise)['params']
    if self.lpips is not None:
      images = jnp.zeros((1, 16, 16, 3))  # the stand-in's shapes do not depend on the size
      trees['lpips'] = self.lpips.init(jax.random.fold_in(rng, 3), images, images)['params']
    return trees

  def _to_network(self, images: jax.Array) -> jax.Array:
    return scaling.to_centered(images, centered=self.centered)

  def _to_model(self, x: jax.Array) -> jax.Array:
    return scaling.from_centered(x, centered=self.centered)

  def _posterior(self, params: dict, x: jax.Array, *, train: bool = False,
                 dropout_rng: jax.Array | None = None) -> models.DiagonalGaussian:
    rngs = {'dropout': dropout_rng} if train else {}
    return self.model.apply({'params': params['autoencoder']}, x, train=train, method='encode',
                            rngs=rngs)

  def encode(self, params: dict, images: jax.Array, rng: jax.Array | None, *,
             sample: bool = True) -> jax.Array:
    """Latents [B, h, w, embed_dim] of model-space images [B, H, W, C]: a posterior sample
    drawn with `rng`, or with sample=False the posterior's mode (rng unused)."""
    posterior = self._posterior(params, self._to_network(images))
    return posterior.sample(rng) if sample else posterior.mode()

  def decode(self, params: dict, latents: jax.Array) -> jax.Array:
    """Model-space images [B, H, W, C] of latents [B, h, w, embed_dim], not clipped."""
    x = self.model.apply({'params': params['autoencoder']}, latents, method='decode')
    return self._to_model(x)

  def reconstruct(self, params: dict, images: jax.Array) -> jax.Array:
    """Model-space images decoded from their posterior's mode (what evaluation and grids
    show), not clipped."""
    return self.decode(params, self.encode(params, images, None, sample=False))

  def loss_terms(self, params: dict, batch: dict, rng: jax.Array, *, train: bool,
                 weights: jax.Array | None = None,
                 step: jax.Array | None = None) -> dict[str, jax.Array]:
    """Every scalar of the objective (module docstring); 'loss' is the one to minimise.

    The latents decoded are `encode(params, batch['image'], rng)`, a posterior sample, in
    training and in the test loss alike (as LDM's validation): the test loss is then an
    estimate of the objective training minimises. Dropout (train=True) draws from keys
    folded from rng.

    Args:
      params: the trainable trees and, with LPIPS, the frozen 'lpips'.
      batch: {'image': [B, H, W, C]} in model space.
      rng: key of the posterior sample.
      train: dropout on; otherwise the test loss.
      weights: optional [B] weights of the examples in every batch mean (0 on padding).
      step: the training step (int32 scalar), which switches the GAN terms on at
        disc_start. None (evaluation) leaves the GAN out: the loss is nll + kl_weight * kl,
        what LDM's validation loss amounts to (its adaptive weight is 0 without a graph),
        and the padded examples of a batch, which the discriminator's batch statistics
        would mix into the real ones' logits, cannot change it. Training with a
        discriminator needs it.

    Returns:
      loss; rec: the mean pixel error (|x - x_rec| or its square, in [-1, 1]);
      perceptual: the mean LPIPS distance (0 without LPIPS); nll; kl; g and d: the
      generator's and the discriminator's (hinge) GAN losses before disc_factor(step)
      (0 without a GAN or step); d_weight: the adaptive weight times disc_weight; logvar;
      disc_active: 1.0 from disc_start on, else 0.0.

    Raises:
      ValueError: training with a discriminator and no step.
    """
    gan = self.discriminator is not None and step is not None
    if train and self.discriminator is not None and step is None:
      raise ValueError('training an Autoencoder with a discriminator needs the step')
    x = self._to_network(batch['image'])  # [B, H, W, C]
    encode_rng, decode_rng = jax.random.fold_in(rng, 1), jax.random.fold_in(rng, 2)
    posterior = self._posterior(params, x, train=train, dropout_rng=encode_rng)
    z = posterior.sample(rng)
    rngs = {'dropout': decode_rng} if train else {}
    features = self.model.apply({'params': params['autoencoder']}, z, train=train,
                                method='decode_features', rngs=rngs)
    conv_out = params['autoencoder']['decoder']['conv_out']

    def reconstruction(kernel):  # a function of the last kernel, for the adaptive weight
      return models.apply_conv_out({**conv_out, 'kernel': kernel}, features)

    logvar = params['logvar']['logvar']
    lpips_params = jax.lax.stop_gradient(params['lpips']) if self.lpips is not None else None

    def nll_terms(x_rec):
      error = jnp.abs(x - x_rec) if self.rec_loss == 'l1' else jnp.square(x - x_rec)
      if self.lpips is None:
        perceptual = jnp.zeros(x.shape[:1])
      else:
        perceptual = self.lpips.apply({'params': lpips_params}, x, x_rec)  # [B]
      rec = error + self.perceptual_weight * perceptual[:, None, None, None]
      nll = jnp.sum((rec / jnp.exp(logvar) + logvar).reshape(x.shape[0], -1), axis=-1)
      return _batch_mean(nll, weights), (error, perceptual)

    x_rec = reconstruction(conv_out['kernel'])
    nll_loss, (error, perceptual) = nll_terms(x_rec)
    kl_loss = _batch_mean(posterior.kl(), weights)
    generator_loss = nll_loss + self.kl_weight * kl_loss
    zero = jnp.zeros((), jnp.float32)
    g_loss = d_loss = d_weight = disc_active = zero
    if gan:
      disc_params = params['discriminator']
      frozen_disc = models.discriminator_fn(self.discriminator,
                                            jax.lax.stop_gradient(disc_params))

      def g_of(x_rec):
        return -_batch_mean(_per_example_mean(frozen_disc(x_rec)), weights)

      g_loss = g_of(x_rec)
      if self.disc_factor > 0:
        kernel = conv_out['kernel']
        nll_grad = jax.grad(lambda k: nll_terms(reconstruction(k))[0])(kernel)
        g_grad = jax.grad(lambda k: g_of(reconstruction(k)))(kernel)
        d_weight = adaptive_weight(nll_grad, g_grad, disc_weight=self.disc_weight)
      factor = adopt_weight(self.disc_factor, step, threshold=self.disc_start)
      disc_active = (step >= self.disc_start).astype(jnp.float32)
      generator_loss = generator_loss + d_weight * factor * g_loss
      # Separate calls: the discriminator's BatchNorm normalises each batch by its own
      # statistics (as LDM's two calls do).
      disc = models.discriminator_fn(self.discriminator, disc_params)
      d_loss = hinge_d_loss(disc(jax.lax.stop_gradient(x)),
                            disc(jax.lax.stop_gradient(x_rec)), weights=weights)
      loss = generator_loss + factor * d_loss
    else:
      loss = generator_loss
    return {'loss': loss, 'rec': _batch_mean(_per_example_mean(error), weights),
            'perceptual': _batch_mean(perceptual, weights), 'nll': nll_loss, 'kl': kl_loss,
            'g': g_loss, 'd': d_loss, 'd_weight': d_weight, 'logvar': logvar,
            'disc_active': disc_active}

  def loss(self, params: dict, batch: dict, rng: jax.Array, *, train: bool,
           weights: jax.Array | None = None, step: jax.Array | None = None) -> jax.Array:
    """loss_terms(...)['loss']."""
    return self.loss_terms(params, batch, rng, train=train, weights=weights, step=step)['loss']
