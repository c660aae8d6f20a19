"""Resident pages of memory-mapped weights given back: only for shared read-only file mappings, data unchanged."""

from __future__ import annotations

import ctypes
import mmap
import sys

import numpy as np
import pytest

import openvino as ov
from openvino import opset13 as opset
import optimum_wc
from optimum_wc.openvino import pages

ROWS, COLUMNS, LAYERS = 512, 512, 4  # 1 MiB float32 per weight


def _mapping_rss(address: int) -> int:
    """Resident bytes of the mapping that holds ``address`` (from /proc/self/smaps)."""
    inside = False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5:
                low, high = (int(value, 16) for value in fields[0].split("-"))
                inside = low <= address < high
            elif inside and fields[0] == "Rss:":
                return int(fields[1]) * 1024
    raise AssertionError("no mapping holds the address")


def _saved_ir(folder) -> tuple:
    rng = np.random.default_rng(0)
    x = opset.parameter([1, COLUMNS], np.float32, name="x")
    value = x.output(0)
    for index in range(LAYERS):
        weight = opset.constant(rng.standard_normal((ROWS, COLUMNS)).astype(np.float32), name=f"w{index}")
        value = opset.matmul(value, weight, False, True, name=f"mm{index}").output(0)
    bias = opset.constant(
        rng.standard_normal(ROWS).astype(np.float32), name="bias"
    )  # stays float: keeps the .bin mapped
    value = opset.add(value, bias, name="add").output(0)
    ov.save_model(ov.Model([opset.result(value)], [x]), folder / "m.xml", compress_to_fp16=False)
    return folder / "m.xml"


def _weights(model: ov.Model) -> list[np.ndarray]:
    return [
        op.data for op in model.get_ordered_ops() if op.get_type_name() == "Constant" and op.get_byte_size() >= 2**20
    ]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/smaps and madvise are Linux's")
def test_release_drops_the_pages_of_a_mapped_weight_and_keeps_its_values(tmp_path):
    model = ov.Core().read_model(_saved_ir(tmp_path))
    weight = _weights(model)[0]
    before = weight.copy()  # reads every page
    resident = _mapping_rss(weight.ctypes.data)
    released = pages.release(weight)
    assert released >= weight.nbytes - 2 * mmap.PAGESIZE  # all but the partial pages at the ends
    assert _mapping_rss(weight.ctypes.data) <= resident - released + mmap.PAGESIZE
    assert np.array_equal(weight, before)  # faulted in again from the file


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise is Linux's")
def test_memory_that_could_lose_data_is_left_alone(tmp_path):
    anonymous = np.arange(4 * mmap.PAGESIZE, dtype=np.uint8)
    assert pages.release(anonymous) == 0 and anonymous[-1] == (4 * mmap.PAGESIZE - 1) % 256
    path = tmp_path / "data.npy"
    np.save(path, np.zeros(4 * mmap.PAGESIZE, np.uint8))
    private = np.load(path, mmap_mode="c")  # copy-on-write: a written page exists only in this process
    private[:] = 7
    assert pages.release(private) == 0 and (private == 7).all()
    shared_read_only = np.load(path, mmap_mode="r")
    assert pages.release(shared_read_only) > 0 and (shared_read_only == 0).all()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/smaps and madvise are Linux's")
@pytest.mark.parametrize("large", [True, False])
def test_compressing_a_large_read_ir_leaves_its_float_weights_not_resident(large, tmp_path, monkeypatch):
    """After compress_weights of a model whose weights take half the available memory (faked here), the float
    weights' pages of the .bin mapping are no longer resident; with memory to spare they all stay mapped, not read
    twice from the file (the check can fail either way)."""
    if large:
        monkeypatch.setattr("optimum_wc.compress.spill_threshold", lambda: 1)
    model = ov.Core().read_model(_saved_ir(tmp_path))
    address = _weights(model)[0].ctypes.data
    optimum_wc.compress_weights(model, mode="int8_asym", progress=False)
    bin_bytes = (tmp_path / "m.bin").stat().st_size
    if large:
        assert _mapping_rss(address) <= 2 * LAYERS * mmap.PAGESIZE
    else:
        assert _mapping_rss(address) >= bin_bytes - 2 * mmap.PAGESIZE


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="mmap with MAP_FIXED_NOREPLACE and madvise are Linux's"
)
def test_memory_mapped_anew_where_a_released_file_mapping_was_is_left_alone(tmp_path):
    """The map read for an earlier release is not trusted for memory mapped since at the same addresses."""
    path = tmp_path / "data.npy"
    np.save(path, np.zeros(8 * mmap.PAGESIZE, np.uint8))
    mapped = np.load(path, mmap_mode="r")
    assert pages.release(mapped) > 0  # the file mapping is now in the remembered map
    start = mapped.ctypes.data // mmap.PAGESIZE * mmap.PAGESIZE
    length = 4 * mmap.PAGESIZE
    mapped._mmap.close()
    del mapped
    libc = pages._libc
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    prot, flags = (
        mmap.PROT_READ | mmap.PROT_WRITE,
        mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x100000,
    )  # MAP_FIXED_NOREPLACE
    address = libc.mmap(start, length, prot, flags, -1, 0)
    if address != start:
        pytest.skip("the kernel did not map anonymous memory at the old addresses")
    anonymous = np.ctypeslib.as_array((ctypes.c_uint8 * length).from_address(address))
    anonymous[:] = 9
    assert pages.release(anonymous) == 0 and (anonymous == 9).all()
    libc.munmap(ctypes.c_void_p(address), ctypes.c_size_t(length))
