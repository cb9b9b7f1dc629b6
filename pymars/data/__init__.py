"""Data: the `mars-rd-1` evaluation protocol (`protocol`) and procedural test scenes (`synthetic`)."""
from . import protocol, synthetic
