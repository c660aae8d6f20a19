"""Checks of an IR on disk before OpenVINO reads it, so that a damaged file is named in the error.

OpenVINO's own messages for a truncated ``.bin`` ("Incorrect weights in bin file!") or a cut ``.xml`` ("Start-end
tags mismatch at offset N") do not say which file is at fault. The ``.xml`` is streamed (not loaded whole) and every
constant's ``offset + size`` is compared with the ``.bin``'s length.
"""

from __future__ import annotations

import os
import pathlib
import xml.etree.ElementTree as ElementTree

from optimum_wc.errors import CorruptModelError


def check_ir_files(xml: str | os.PathLike) -> None:
    """Raises :class:`CorruptModelError` naming the file when ``xml`` or its ``.bin`` cannot hold a valid IR.

    Raises:
        CorruptModelError: The ``.xml`` is missing or not well-formed, or not an IR; the ``.bin`` is missing while
            constants need it, or shorter than the constants it must hold.
    """
    xml = pathlib.Path(xml)
    weights = xml.with_suffix(".bin")
    if not xml.is_file():
        raise CorruptModelError(f"{xml} does not exist.")
    needed, root_tag = 0, None
    try:
        for _, element in ElementTree.iterparse(xml, events=("end",)):
            if element.tag == "data" and element.get("offset") is not None and element.get("size") is not None:
                needed = max(needed, int(element.get("offset")) + int(element.get("size")))
            root_tag = element.tag
            if element.tag == "layer":
                element.clear()
    except (ElementTree.ParseError, ValueError) as exc:
        raise CorruptModelError(
            f"{xml} is not a well-formed OpenVINO IR ({exc}); the file is damaged or truncated."
        ) from exc
    if root_tag != "net":
        raise CorruptModelError(f"{xml} is not an OpenVINO IR (its root element is <{root_tag}>, not <net>).")
    if needed and not weights.is_file():
        raise CorruptModelError(f"{weights} is missing: {xml} needs {needed:,} bytes of weights from it.")
    size = weights.stat().st_size if weights.is_file() else 0
    if size < needed:
        raise CorruptModelError(
            f"{weights} is truncated: {xml.name} needs {needed:,} bytes of weights, the file has {size:,}."
        )
