#!/usr/bin/env python3
"""Read a safetensors file written by nanodiff with another reader, as a
check that the format is right. Not run by the tests.

    python3 tests/tensor/safetensors_check.py model.safetensors

Uses the `safetensors` package (pip install safetensors numpy) when it is
installed, and otherwise a few lines of independent parsing of the format:
u64 little-endian header length, JSON header, raw little-endian data.
Prints each tensor's name, shape and the sum of its values, then the
metadata.
"""
import json
import struct
import sys


def load_plain(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack_from("<Q", blob, 0)
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = blob[8 + n:]
    tensors = {}
    for name, entry in header.items():
        assert entry["dtype"] == "F32", f"{name}: {entry['dtype']}"
        begin, end = entry["data_offsets"]
        count = (end - begin) // 4
        values = struct.unpack_from(f"<{count}f", data, begin)
        tensors[name] = (tuple(entry["shape"]), values)
    return tensors, meta


def load_with_package(path):
    from safetensors import safe_open
    from safetensors.numpy import load_file

    arrays = load_file(path)
    with safe_open(path, framework="numpy") as f:
        meta = f.metadata() or {}
    return {k: (a.shape, a.ravel().tolist()) for k, a in arrays.items()}, meta


def main():
    path = sys.argv[1]
    try:
        tensors, meta = load_with_package(path)
        reader = "safetensors package"
    except ImportError:
        tensors, meta = load_plain(path)
        reader = "plain struct/json"
    print(f"{path} ({reader})")
    for name, (shape, values) in tensors.items():
        print(f"  {name}: shape {list(shape)}, sum {sum(values):.9g}")
    for key, value in meta.items():
        print(f"  metadata {key!r}: {value!r}")


if __name__ == "__main__":
    main()
