#!/usr/bin/env python3
"""safetensors interchange check for encore, with nothing but json and numpy.

A second, independent implementation of the format (8-byte little-endian header length, JSON
header, raw little-endian data), so tests/nn/test_checkpoint.cpp can show that files go both
ways without PyTorch or the safetensors package:

  interchange.py read FILE EXPECTED_JSON
      Parses FILE and checks it against EXPECTED_JSON, which the C++ test wrote:
        {"metadata": {...}, "tensors": {name: {"dtype": "F32", "shape": [...],
                                               "data": [flat values]}}}
      Names, dtypes, shapes, metadata and every value bitwise (-0.0 and int64 beyond 2^53
      included); also the layout rules of the format (offsets tile the data section, no
      overlaps, no trailing bytes) and encore's 8-byte alignment of the data section.
      Exit 0 when everything matches, 1 with a list of the differences otherwise.

  interchange.py write FILE
      Writes known tensors (F32, F64, I64, a 0-d and an empty one) and metadata, with the
      header keys and the data in an order unlike encore's, as another writer might.

Exit 2 on bad usage.
"""
import json
import sys

import numpy as np

DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8"), "I64": np.dtype("<i8")}


def parse(path):
    """Returns (metadata, {name: (dtype, shape, array)}, problems) of a safetensors file."""
    problems = []
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        return {}, {}, [f"file is {len(raw)} bytes, shorter than the header length"]
    n = int.from_bytes(raw[:8], "little")
    if 8 + n > len(raw):
        return {}, {}, [f"header length {n} runs past the end of the {len(raw)}-byte file"]
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    if n % 8 != 0:
        problems.append(f"header length {n} is not a multiple of 8 (data section unaligned)")
    data = raw[8 + n :]
    metadata = header.pop("__metadata__", None) or {}
    tensors = {}
    spans = []
    for name, entry in header.items():
        dtype = entry["dtype"]
        shape = entry["shape"]
        begin, end = entry["data_offsets"]
        if dtype not in DTYPES:
            problems.append(f"{name}: unknown dtype {dtype}")
            continue
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if end - begin != count * DTYPES[dtype].itemsize:
            problems.append(f"{name}: data_offsets {begin, end} do not hold shape {shape}")
            continue
        if not 0 <= begin <= end <= len(data):
            problems.append(f"{name}: data_offsets {begin, end} outside the data section")
            continue
        arr = np.frombuffer(data[begin:end], dtype=DTYPES[dtype]).reshape(shape)
        tensors[name] = (dtype, list(shape), arr)
        spans.append((begin, end, name))
    cursor = 0
    for begin, end, name in sorted(spans):
        if begin != cursor:
            problems.append(f"{name}: begins at {begin}, expected {cursor} (hole or overlap)")
        cursor = max(cursor, end)
    if cursor != len(data):
        problems.append(f"the tensors cover {cursor} of {len(data)} data bytes")
    return metadata, tensors, problems


def read(path, expected_path):
    with open(expected_path, encoding="utf-8") as f:
        expected = json.load(f)
    metadata, tensors, problems = parse(path)
    if metadata != expected.get("metadata", {}):
        problems.append(f"metadata {metadata} != expected {expected.get('metadata', {})}")
    want = expected["tensors"]
    for name in sorted(set(want) - set(tensors)):
        problems.append(f"{name}: missing from the file")
    for name in sorted(set(tensors) - set(want)):
        problems.append(f"{name}: in the file but not expected")
    for name in sorted(set(want) & set(tensors)):
        dtype, shape, arr = tensors[name]
        w = want[name]
        if dtype != w["dtype"] or shape != w["shape"]:
            problems.append(f"{name}: {dtype} {shape} != expected {w['dtype']} {w['shape']}")
            continue
        ref = np.array(w["data"], dtype=DTYPES[dtype]).reshape(shape)
        if ref.tobytes() != arr.tobytes():  # bitwise: -0.0, NaN payloads, int64 all exact
            item = DTYPES[dtype].itemsize
            a = np.frombuffer(arr.tobytes(), dtype=np.uint8).reshape(-1, item)
            r = np.frombuffer(ref.tobytes(), dtype=np.uint8).reshape(-1, item)
            diff = np.flatnonzero((a != r).any(axis=1))
            problems.append(
                f"{name}: values differ at flat indices {diff[:10].tolist()}: "
                f"file {arr.reshape(-1)[diff[:5]].tolist()} "
                f"expected {ref.reshape(-1)[diff[:5]].tolist()}"
            )
    for p in problems:
        print("interchange.py read:", p)
    if not problems:
        print(f"interchange.py read: {len(tensors)} tensors match")
    return 0 if not problems else 1


def write(path):
    # The same values as the C++ test's kWeight, kBias, kScale and kCount.
    tensors = {
        "fc.weight": np.array([[0.5, -1.25, 3.0], [0.001, 65504.0, -0.0]], dtype="<f4"),
        "fc.bias": np.array([2.0**-140, 2.5], dtype="<f4"),  # a subnormal
        "scale": np.array([1.0 / 3.0, -2.5e-300, 1e300], dtype="<f8"),
        "count": np.array([[-(2**62), 2**53 + 1], [0, -1]], dtype="<i8"),
        "scalar": np.array(7.0, dtype="<f4"),
        "empty": np.zeros((0, 4), dtype="<f4"),
    }
    names = {v: k for k, v in DTYPES.items()}
    header = {"__metadata__": {"format": "pt", "source": "interchange.py", "note": "ünicode ✓"}}
    chunks = []
    offset = 0
    for name in sorted(tensors, reverse=True):  # data in reverse name order
        arr = tensors[name]
        b = arr.tobytes()  # C order, whatever the strides
        header[name] = {
            "dtype": names[arr.dtype],
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(b)],
        }
        chunks.append(b)
        offset += len(b)
    text = json.dumps(header).encode("utf-8")  # ensure_ascii: the note goes as \u escapes
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for b in chunks:
            f.write(b)
    print(f"interchange.py write: {len(tensors)} tensors to {path}")
    return 0


def main(argv):
    if len(argv) == 4 and argv[1] == "read":
        return read(argv[2], argv[3])
    if len(argv) == 3 and argv[1] == "write":
        return write(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
