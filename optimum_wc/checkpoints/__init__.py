"""Import of checkpoints quantized elsewhere (GPTQ, AWQ) into our compressed IR, keeping their integer codes."""

from optimum_wc.checkpoints.formats import READERS, PrequantizedLinear, QuantizationSpec, unpack_columns, unpack_rows
from optimum_wc.checkpoints.storage import ImportedWeight, to_imported

__all__ = [
    "READERS",
    "ImportedWeight",
    "PrequantizedLinear",
    "QuantizationSpec",
    "to_imported",
    "unpack_columns",
    "unpack_rows",
]
