"""Which model ids optimum-intel's per-model tables name, read without importing optimum-intel.

Looking an id up in optimum-intel's tables (its tuned default configs and default ignored scopes,
``optimum/intel/openvino/configuration.py``) imports that module, and with it torch and transformers: seconds and
hundreds of MiB, for an ``optimum-wc export`` of an OpenVINO IR that needs neither. The tables' keys are string
literals, so they are read from the module's source with ``ast``: the keys of the tables' dict literals, and every
other literal shaped like a Hub id (``org/name``, for the aliases the module adds in code). Only an id that may match
one (as given, as a local folder's ``_name_or_path``, or by the folder's name) is looked up for real; where the
source does not hold the tables as dict literals (another layout in a later optimum-intel), every id is.
"""

from __future__ import annotations

import ast
from functools import lru_cache
import importlib.util
import json
import pathlib

TABLES = ("_DEFAULT_4BIT_WQ_CONFIGS", "_DEFAULT_8BIT_WQ_CONFIGS", "_DEFAULT_IGNORED_SCOPE_CONFIGS")


@lru_cache(maxsize=1)
def table_ids() -> frozenset[str] | None:
    """Every model id a table may name (a superset), or None where the source does not show them as literals."""
    try:
        spec = importlib.util.find_spec("optimum.intel")  # finds the package without running it
        if spec is None or not spec.submodule_search_locations:
            return None
        source = pathlib.Path(spec.submodule_search_locations[0], "openvino", "configuration.py").read_text()
        tree = ast.parse(source)
    except (ImportError, OSError, SyntaxError, ValueError):
        return None
    ids: set[str] = set()
    found = set()
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if not isinstance(target, ast.Name) or target.id not in TABLES:
            continue
        if not isinstance(node.value, ast.Dict):
            return None
        for key in node.value.keys:
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                return None
            ids.add(key.value)
        found.add(target.id)
    if found != set(TABLES):
        return None
    for node in ast.walk(tree):  # ids that code adds to the tables (aliases of other ids)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _hub_id_shaped(node.value):
            ids.add(node.value)
    return frozenset(ids)


def _hub_id_shaped(text: str) -> bool:
    return text.count("/") == 1 and not any(c.isspace() for c in text) and all(text.split("/"))


def may_be_named(model_id: str) -> bool:
    """False only where no table of optimum-intel names ``model_id``: not as given, not as its folder's
    ``config.json`` ``_name_or_path``, not by the folder's name."""
    ids = table_ids()
    if ids is None:
        return True
    candidates = {str(model_id)}
    config = pathlib.Path(model_id, "config.json")
    try:
        if config.is_file():
            name = json.loads(config.read_text()).get("_name_or_path")
            if isinstance(name, str):
                candidates.add(name)
    except (OSError, ValueError, AttributeError):
        return True  # optimum-intel's own lookup decides (and reports) what it makes of this file
    folder = pathlib.Path(str(model_id)).name
    return bool(candidates & ids) or any(folder == name.split("/")[-1] for name in ids)
