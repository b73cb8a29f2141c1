"""The job's likelihoods: the variational bound (bpd_vlb) and the probability-flow bits/dim
(bpd_ode) at the data's grey levels, learned variances trained by the hybrid loss, and their
bad settings."""

import numpy as np
import pytest

import run_lib
from configs.digits import ve as digits_ve
from configs.digits import vp, vp_learned
from tests.run_lib import jobs


def tiny_learned(data_dir: str):
  config = vp_learned.get_config('tiny')
  config.data.data_dir = data_dir
  config.training.snapshot_sampling = False
  config.sampling.trajectory_frames = 0
  config.eval.metrics = ('loss', 'bpd_vlb')
  config.eval.batch_size = 160
  return config


@pytest.fixture(scope='module')
def learned(tmp_path_factory, data_dir):
  workdir = tmp_path_factory.mktemp('learned')
  jobs.train(tiny_learned(data_dir), workdir)
  return workdir


def test_a_network_with_learned_variances_trains_and_its_bound_adds_up(learned, data_dir):
  job = run_lib.build(tiny_learned(data_dir), str(learned))
  state = job.restore()
  # The network outputs the noise and v: twice the image's channels.
  out = job.task.model.apply({'params': state.params['score']},
                             np.zeros((1, 8, 8, 1), np.float32), np.zeros((1,), np.float32))
  assert out.shape == (1, 8, 8, 2)
  [metrics] = run_lib.evaluate(job).values()
  parts = metrics['bpd_vlb_prior'] + metrics['bpd_vlb_decoder'] + metrics['bpd_vlb_terms']
  assert metrics['bpd_vlb'] == pytest.approx(parts, rel=1e-5)
  # Of discrete data every part is a KL or a -log probability: none is negative.
  assert min(metrics[k] for k in ('bpd_vlb_prior', 'bpd_vlb_decoder', 'bpd_vlb_terms')) >= 0
  assert np.isfinite(metrics['test_loss'])


def test_the_estimated_bound_is_near_the_exact_one(learned, tmp_path, data_dir):
  exact = tiny_learned(data_dir)
  exact.eval.metrics = ('bpd_vlb',)
  estimate = jobs.override(exact.copy_and_resolve_references(), {'eval.vlb_terms': 3})
  values = []
  for config in (exact, estimate):
    job = run_lib.build(config, str(learned))
    values.append(run_lib.Evaluation(job).metrics(job.restore().ema_params, 0))
  # The same prior and decoder terms (the same draws), the KL sum estimated from 3 of 9.
  assert values[1]['bpd_vlb_prior'] == pytest.approx(values[0]['bpd_vlb_prior'])
  assert values[1]['bpd_vlb_terms'] == pytest.approx(values[0]['bpd_vlb_terms'], rel=0.5)


@pytest.mark.parametrize('config_of, overrides, message', [
    (digits_ve.get_config, {'eval.metrics': ('bpd_vlb',)},
     "eval.metrics 'bpd_vlb' is DDPM's bound on the chain of the VP SDE's discrete levels; "
     "'vesde' has no such chain: use bpd_ode"),
    (digits_ve.get_config, {'sde.schedule': 'cosine'},
     "sde.schedule='cosine' is an option of the VP SDE (vpsde), not 'vesde'"),
    (vp_learned.get_config, {'sde.schedule': 'quadratic'},
     "unknown VP schedule 'quadratic'; known: ['linear', 'cosine']"),
    (vp_learned.get_config, {'training.continuous': True},
     "model.learned_variance trains by the hybrid loss on DDPM's discrete levels"),
    (vp_learned.get_config, {'eval.vlb_variance': 'sigma'},
     "unknown eval.vlb_variance 'sigma'; known: ['beta', 'beta_tilde']"),
    (vp_learned.get_config, {'eval.vlb_terms': -1},
     'eval.vlb_terms must be 0 (all terms) or more, got -1'),
    (vp.get_config, {'eval.metrics': ('bpd_vlb',)},
     "eval.metrics 'bpd_vlb': DDPM's chain needs betas below 1; N=10 levels of beta_max=20.0 "
     'reach 2: take more levels (N > 20) (sde.N)'),
    (vp_learned.get_config, {'model.name': 'ncsnv2_64'},
     "model.learned_variance needs a diffusion model of ['ncsnpp', 'ddpm']"),
])
def test_bad_likelihood_settings_name_the_key(tmp_path, config_of, overrides, message):
  jobs.expect_build_error(jobs.override(config_of('tiny'), overrides), tmp_path, message)


def test_a_continuous_time_model_is_bounded_at_the_levels_log_snr(tmp_path, data_dir):
  # The continuous VP network is asked about chain level i where its own marginal is the
  # level's; at the levels' indices i T / (N - 1) it would be asked about level 0 at t = 0,
  # where its std is 0 (the decoder term was then hundreds of bits/dim).
  config = vp.get_config('tiny')
  config.data.data_dir = data_dir
  config.training.snapshot_sampling = False
  config.sde.N = 40  # the tiny config's 10 levels of beta_max = 20 are no chain (betas > 1)
  config.eval.metrics = ('bpd_vlb',)
  config.eval.batch_size = 160
  job = run_lib.build(config, str(tmp_path))
  run_lib.train(job)
  [metrics] = run_lib.evaluate(job).values()
  assert 0 < metrics['bpd_vlb_decoder'] < np.log2(17) + 1
  assert metrics['bpd_vlb_decoder'] < metrics['bpd_vlb'] < np.inf
