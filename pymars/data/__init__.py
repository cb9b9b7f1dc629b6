"""Procedural Mars-like test scenes (`synthetic`): what the tests and examples code when ../shared is absent.

The evaluation protocol (which real tiles) is :mod:`pymars.evaluation.protocol`.
"""
from pymars.data import synthetic
