"""Benchmarks that print ratios measured side by side in one run: ``python -m bench`` (``make bench``).

Sections (``python -m bench --only fit,loaders``):

- ``fit``: fit against the raw training loop it wraps, same model, data and seed (MLP with and without a metric,
  the week 3 CNN, the week 7 LSTM), with a 95 % interval of the ratio
- ``loaders``: TensorLoader against torch's DataLoader (default, the best worker count, and a BatchSampler) on
  MNIST-sized tensors
- ``startup``: ``import esc_course`` against ``import torch``; ``esc-course --help``
- ``labs``: every lab's quick run, per lab and in total
- ``cuda``: bf16 autocast + channels_last + cudnn.benchmark against fp32, torch.compile, share of the GPU's peak
  (only where CUDA is available)

Results are written to ``bench/results/<device>-<time>.json`` with the device, the versions and the machine's load.
"""
