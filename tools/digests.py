"""Digests the checks and reference scripts under tools/ share: xxh64 of a whole file and of each GGUF tensor."""
import xxhash


def file_xxh64(path):
    h = xxhash.xxh64()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tensor_digests(path):
    """{name: "TYPE xxh64"} for every tensor of a GGUF file (gguf-py's reader)."""
    from gguf import GGUFReader
    return {t.name: f"{t.tensor_type.name} {xxhash.xxh64(bytes(t.data)).hexdigest()}" for t in GGUFReader(path).tensors}
