"""What is in a dataset, for ``datumio inspect``, as typed reports (frozen dataclasses with a
``to_json()``): the summary (counts, imbalance, sizes, encoding, format) in
:mod:`~datumio.inspect.summary`, duplicate records in :mod:`~datumio.inspect.duplicates`,
field statistics in :mod:`~datumio.inspect.fields` (their types in
:mod:`~datumio.inspect.field_stats`), one record in :mod:`~datumio.inspect.record`, and the
sampling report (what a sampler would draw) in :mod:`~datumio.inspect.sampling`."""
