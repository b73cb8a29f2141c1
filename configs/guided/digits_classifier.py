"""A noise-conditional classifier of the bundled digits for classifier guidance: the
encoder half of the default job's DDPM++ (configs/digits/vp.py: the same VP SDE and time
input), attention pooling and a linear head, trained on digits noised as the score model's.

  python main.py --config configs/guided/digits_classifier.py --workdir workdir/digits_clf \
      --mode train
  python main.py --config configs/digits/vp.py --workdir workdir/digits --mode sample \
      --config.sampling.guidance=classifier --config.sampling.classifier_workdir=workdir/digits_clf \
      --config.sampling.guidance_scale=2 --config.sampling.class_labels=3,7
"""

from configs.digits import vp


def get_config(variant: str = ''):
  config = vp.get_config(variant)
  config.training.task = 'classifier'
  config.eval.metrics = ('loss', 'accuracy')
  config.model.num_outputs = 10
  config.model.pooling = 'attention'
  config.model.dropout = 0.1
  if not variant:
    config.training.n_iters = 2000
    config.training.max_minutes = 6.0
  return config
