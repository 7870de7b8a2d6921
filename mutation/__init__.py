"""The mutation harness: do the tests notice when a documented guarantee breaks?

``mutants.py`` runs the mutants of ``catalog.py``; CONTRIBUTING.md says how and when.
It is a development tool, not part of the ``datumio`` package.
"""
