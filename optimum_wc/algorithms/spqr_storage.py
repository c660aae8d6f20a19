"""How a SpQR-compressed weight is stored in the IR, and how many bits that costs.

- codes ``[d_out, groups, beta_1]``: u4 (4 bits) or u3 (3 bits; widened to u4 in the graph, so that OpenVINO keeps
  them packed at run time instead of folding them into a float matrix);
- each statistic (scale, zero point): codes ``[d_out / beta_2, beta_2, groups]`` in the smallest type that holds
  them (u3 up to 3 bits, u4, else u8), and ``step`` and ``minimum`` ``[d_out / beta_2, 1, groups]`` (float16, or
  u8 for integer zero points);
- outliers, row by row (CSR): column indices and float16 corrections (32 bits an outlier), and the offset of each
  row's first outlier (``d_out`` of them; 16 bits a row). Indices and offsets are u16, or i32 beyond 65535;
- the act-order permutation of the input columns (u16 or i32), when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from optimum_wc.algorithms.spqr import SecondLevel, SpQRResult
from optimum_wc.kernels.packing import PackedArray, pack


@dataclass(frozen=True)
class StoredStatistic:
    codes: PackedArray
    step: np.ndarray  # float16
    minimum: np.ndarray  # float16

    @property
    def nbytes(self) -> int:
        return self.codes.data.nbytes + self.step.nbytes + self.minimum.nbytes


@dataclass(frozen=True)
class StoredOutliers:
    offsets: PackedArray  # [d_out]: where each row's outliers start
    columns: PackedArray
    values: np.ndarray  # float16
    count: int  # outliers

    @property
    def nbytes(self) -> int:
        return self.offsets.data.nbytes + self.columns.data.nbytes + self.values.nbytes


@dataclass(frozen=True)
class SpQRStored:
    """A SpQR weight as written into the IR (see the module docstring)."""

    codes: PackedArray
    scale: StoredStatistic
    zero_point: StoredStatistic
    outliers: StoredOutliers | None
    permutation: PackedArray | None
    original_shape: tuple[int, ...]
    owns_permutation: bool = True  # False when an earlier weight stores the same permutation (it is shared)

    @property
    def parts(self) -> dict[str, int]:
        """Bytes stored for this weight, by part (a shared permutation is counted with its first weight)."""
        return {
            "codes": self.codes.data.nbytes,
            "statistics": self.scale.nbytes + self.zero_point.nbytes,
            "outliers": 0 if self.outliers is None else self.outliers.nbytes,
            "permutation": 0 if self.permutation is None or not self.owns_permutation else self.permutation.data.nbytes,
        }

    @property
    def nbytes(self) -> int:
        """Bytes of everything stored for this weight."""
        return sum(self.parts.values())

    @property
    def num_outliers(self) -> int:
        return 0 if self.outliers is None else self.outliers.count


def share_permutations(stored: list[SpQRStored]) -> list[SpQRStored]:
    """Marks every permutation equal to an earlier one as not owned: the IR holds it once (OpenVINO writes equal
    constants once, and layers with the same input share one Gather)."""
    seen: set[bytes] = set()
    shared = []
    for weight in stored:
        if weight.permutation is not None:
            key = weight.permutation.data.tobytes()
            weight = replace(weight, owns_permutation=key not in seen)
            seen.add(key)
        shared.append(weight)
    return shared


def code_storage(bits: int) -> str:
    return "u3" if bits <= 3 else "u4" if bits == 4 else "u8"


def index_storage(size: int) -> str:
    return "u16" if size <= 2**16 else "i32"


def _statistic(level: SecondLevel, bits: int, beta_2: int) -> StoredStatistic:
    rows, groups = level.codes.shape
    codes = level.codes.reshape(rows // beta_2, beta_2, groups)
    chunks = (rows // beta_2, 1, groups)
    return StoredStatistic(pack(codes, code_storage(bits)), level.step.reshape(chunks), level.minimum.reshape(chunks))


def to_spqr_storage(result: SpQRResult) -> SpQRStored:
    settings = result.settings
    rows, columns = result.codes.shape
    beta = settings.group_size
    codes = pack(result.codes.reshape(rows, columns // beta, beta), code_storage(settings.bits))
    outliers = None
    if len(result.outliers):
        found = result.outliers
        offsets = np.searchsorted(found.rows, np.arange(rows))
        outliers = StoredOutliers(
            pack(offsets, index_storage(len(found) + 1)),
            pack(found.columns, index_storage(columns)),
            found.values.astype(np.float16),
            len(found),
        )
    permutation = None if result.permutation is None else pack(result.permutation, index_storage(columns))
    return SpQRStored(
        codes,
        _statistic(result.scale, settings.qq_scale_bits, settings.qq_groupsize),
        _statistic(result.zero_point, settings.qq_zero_bits, settings.qq_groupsize),
        outliers,
        permutation,
        (rows, columns),
    )
