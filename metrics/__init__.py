"""Sample-quality metrics: FD (FID), KID and IS, and the feature networks they are measured in.

  statistics  FD, KID, IS, per-class metrics and prompt accuracy: float64 NumPy
  inception   the FID Inception-v3 network, pytorch-fid's weights converted to an .npz
  digits      the digits classifier trained from scratch: features of digits and pairs
  mnist       the MNIST classifier trained from scratch: features of 28x28 MNIST digits
  feature_classifier  the deterministic training both classifiers share
  features    FEATURES, the per-dataset registry of feature networks (Inception by default)
"""
