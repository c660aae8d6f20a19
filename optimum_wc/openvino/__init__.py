"""The OpenVINO side: reading the graph, finding weights, building decompression subgraphs, the compressed model."""

from optimum_wc.openvino import log2 as _log2  # noqa: F401  (registers nncf's OpenVINO log2 with the kernels)
