"""What is in a dataset, for ``datumio inspect``: the summary (counts, imbalance, sizes,
encoding, format) in :mod:`~datumio.inspect.summary`, and the sampling report (what a
sampler would draw) in :mod:`~datumio.inspect.sampling`."""
