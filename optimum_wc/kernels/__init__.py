"""Pure-numpy compression kernels: arrays in, typed records out. Nothing here imports openvino."""

from optimum_wc.kernels.records import CompressedWeight, GroupedWeight
from optimum_wc.kernels.registry import (
    KERNELS,
    Kernel,
    compress,
    compress_grouped,
    decompress,
    dequantize_grouped,
    store,
    stored_bits_per_weight,
)

__all__ = [
    "KERNELS",
    "CompressedWeight",
    "GroupedWeight",
    "Kernel",
    "compress",
    "compress_grouped",
    "decompress",
    "dequantize_grouped",
    "store",
    "stored_bits_per_weight",
]
