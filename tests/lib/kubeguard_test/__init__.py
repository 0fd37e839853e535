"""Helpers shared by the Molecule verifiers (testinfra) and other tests.

Importable because pyproject.toml puts tests/lib on pytest's pythonpath:
``from kubeguard_test import sshcheck``.
"""
