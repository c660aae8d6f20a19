"""Versions: ours, and the nncf release whose output we reproduce byte for byte."""

__version__ = "0.1.0"
NNCF_COMPATIBLE_VERSION = "3.4.0"
