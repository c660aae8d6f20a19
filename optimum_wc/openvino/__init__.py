"""The OpenVINO side: reading the graph, finding weights, building decompression subgraphs, the compressed model."""
