"""Private helpers with no place in the compression layers: atomic folder writes, worker pools."""
