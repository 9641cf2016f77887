"""Digests the checks and reference scripts under tools/ share: xxh64 of a whole file and of each GGUF tensor, and the
ids `ingot tokenize` gives texts, checked against recorded digests."""
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


def ids_of_texts(ingot, model, texts, add_special=False, parse_special=False):
    """The ids `ingot tokenize MODEL` gives each text, from one process (`--each`, a JSON list of texts)."""
    import json
    import os
    import subprocess
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump(texts, f)
    try:
        cmd = [ingot, "tokenize", model, "--each", f.name] + ([] if add_special else ["--no-special"])
        cmd += ["--parse-special"] if parse_special else []
        return json.loads(subprocess.run(cmd, check=True, capture_output=True).stdout)
    finally:
        os.unlink(f.name)


def plays_differing(ingot, model, plays, folder):
    """The plays (entries of fixtures/tokenizer/shakespeare.json or alike: file, count, sha256 of the ids joined by
    commas) whose ids under `ingot tokenize MODEL` differ from the recorded ones, and the number of ids. One process
    tokenizes every play; the first play also goes through `--text FILE`, which must give the same ids, so that
    reading a file stays checked too."""
    import hashlib
    import json
    import os
    import subprocess
    each = ids_of_texts(ingot, model, [open(os.path.join(folder, p["file"]), encoding="utf-8").read() for p in plays],
                        add_special=True)
    first = json.loads(subprocess.run([ingot, "tokenize", model, "--text", os.path.join(folder, plays[0]["file"]), "--json"],
                                      check=True, capture_output=True).stdout)["ids"]
    bad = [p["file"] for p, ids in zip(plays, each)
           if len(ids) != p["count"] or hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest() != p["sha256"]]
    if first != each[0]:
        bad.append(plays[0]["file"] + " (--text)")
    return bad, sum(len(ids) for ids in each)
