"""One pixel-space stage on MNIST at 28x28: DDPM++ (VP SDE, continuous time) at 28, 14 and
7 pixels, 20 minutes on a 2-core CPU; the peer of the latent model and the cascade
(benchmarks/mnist_stages.py).

  python main.py --config configs/mnist/pixel.py --workdir workdir/mnist_pixel --mode train \
      --config.data.data_dir=../shared/data/tfds
  python main.py --config configs/mnist/pixel.py --workdir workdir/mnist_pixel --mode eval \
      --config.data.data_dir=../shared/data/tfds
"""

from configs.mnist.common import mnist_config


def get_config(variant: str = ''):
  return mnist_config(variant)
