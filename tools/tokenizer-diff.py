#!/usr/bin/env python3
"""Differential tokenizer fuzzing: random hard strings through Ingot (`ingot tokenize --each`) and through llama.cpp
(llama-cpp-python's library, vocabulary only), on llama.cpp's own vocabulary files (the sdist's
`models/ggml-vocab-*.gguf`, fetched by tools/fetch-fixtures.sh --llama-vocab) and on SmolLM2's.

Strings are drawn from a grammar of pieces that tokenizers disagree on: words of many scripts, digit runs,
contractions, whitespace of every kind (no-break, ideographic, thin, zero-width, CR LF), ASCII punctuation runs,
emoji with skin tones and joiners, combining marks, the vocabulary's own special tokens and chat markers, other
vocabulary entries, and random code points. Each string is tokenized without BOS/EOS, once plain and once with special
tokens parsed (--parse-special).

`--relabel PRE` runs each vocabulary again under another pre-tokenizer name (the same tokens and merges, that name's
splitting rules; llama.cpp tokenizes it, so names without a shipped vocabulary are covered too).

`--corpus FILE...` also tokenizes each file whole, plain, through both (the Shakespeare corpus, say).

`--hf FORM...` also writes each SentencePiece vocabulary (Llama 2's, Phi-3's, Baichuan's) as a SentencePiece-style
BPE tokenizer.json in each FORM (tools/make-tokenizer-json.py: `legacy`, or a Metaspace pre-tokenizer `first`,
`always`, `never`, each also with `-split`) and compares Ingot on that file with the `tokenizers` library on the same
file (special tokens not split in plain mode: `encode_special_tokens`). The legacy form is llama.cpp's SentencePiece
tokenizing written as tokenizer.json, so Ingot's ids on it are also compared with llama.cpp's on the GGUF (for Phi-3 in
plain mode only: its special tokens strip the whitespace after them, C's isspace in llama.cpp, Unicode's in tokenizers).

`--record FILE` writes the strings and llama.cpp's ids, relabelled runs with the name they ran under (a fixture that
tools/check-tokenizer.py checks in CI, relabelling the vocabulary the same way).

Needs llama-cpp-python and gguf (`pip install llama-cpp-python gguf`, as for the reference scripts; the README says more):

    /tmp/refenv/bin/python tools/tokenizer-diff.py --count 10000 --seed 1
    /tmp/refenv/bin/python tools/tokenizer-diff.py --count 200 --vocab deepseek-llm --relabel deepseek-v3
"""
import argparse
import glob
import json
import os
import random
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Tokenizers Ingot does not implement (WordPiece), as tools/check-tokenizer.py says.
UNSUPPORTED = {"bert-bge", "nomic-bert-moe"}

WORDS = {
    "latin": ["hello", "World", "THE", "naïve", "café", "Straße", "Ærøskøbing", "résumé", "x", "I", "a"],
    "cyrillic": ["Привет", "мир", "ЁЖИК"], "greek": ["Γειά", "σου", "κόσμε"], "cjk": ["你好", "世界", "日本語", "のテキスト", "東京"],
    "hangul": ["한국어", "텍스트"], "arabic": ["مرحبا", "بالعالم"], "hebrew": ["שלום", "עולם"], "devanagari": ["नमस्ते", "४२"],
    "thai": ["สวัสดี"], "code": ["def", "return", "self.x", "foo_bar", "camelCase", "HTTPServer", "__init__", "i++"],
}
SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\n ", "\u00a0", "\u3000", "\u2009", "\u200b", "\u202f", "\u2028",
          "\u0085", "\u000b", "\u000c", " \u00a0 ", "\u00a0\u00a0"]
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'VE", "'M", "'LL", "'D", "’s", "n't"]
PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
OTHER_PUNCT = ["…", "—", "–", "«", "»", "“", "”", "‘", "’", "¿", "¡", "。", "，", "、", "！", "？", "：", "・", "·", "§", "©", "°", "±", "€", "£", "¥"]
EMOJI = ["😀", "🎉", "👍🏽", "👨‍👩‍👧", "❤️", "🧑🏽‍🚀", "🇫🇷", "🏳️‍🌈", "✅", "1️⃣", "©️", "🤷‍♀️"]
MARKS = ["e\u0301", "a\u0308", "n\u0303", "\u0301", "\u0327c", "\u0915\u094d\u0937", "\u05d1\u05bc"]
MARKERS = ["<|im_start|>", "<|im_end|>", "<s>", "</s>", "<unk>", "<|endoftext|>", "<|begin▁of▁sentence|>", "<|end▁of▁sentence|>",
           "[INST]", "[/INST]", "<|user|>", "<|assistant|>", "<|eot_id|>", "<|start_header_id|>", "<pad>", "<mask>", "<|"]


def piece(rng, specials, vocab_texts):
    kind = rng.randrange(14)
    if kind == 0:
        script = rng.choice(list(WORDS))
        w = rng.choice(WORDS[script])
        return rng.choice(["", " "]) + (w.upper() if rng.random() < 0.1 else w)
    if kind == 1:
        return "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 14)))
    if kind == 2:
        return rng.choice(["1,000", "3.14159", "-42", "1e-9", "0x1F", "2026-11-27", "½", "²", "٣", "४", "①", "Ⅻ"])
    if kind == 3:
        return "".join(rng.choice(SPACES) for _ in range(rng.randint(1, 3)))
    if kind == 4:
        return rng.choice(CONTRACTIONS)
    if kind == 5:
        return "".join(rng.choice(PUNCT) for _ in range(rng.randint(1, 6)))
    if kind == 6:
        return rng.choice(OTHER_PUNCT)
    if kind == 7:
        return rng.choice(EMOJI)
    if kind == 8:
        return rng.choice(MARKS)
    if kind == 9:
        return rng.choice(MARKERS + specials) if specials else rng.choice(MARKERS)
    if kind == 10 and vocab_texts:
        return rng.choice(vocab_texts)
    if kind == 11:
        # A random code point from the planes text uses (no surrogates, no noncharacters' neighbours).
        lo, hi = rng.choice([(0x20, 0x7F), (0xA0, 0x24F), (0x370, 0x52F), (0x590, 0x6FF), (0x900, 0xDFF), (0x1100, 0x11FF),
                             (0x2000, 0x2BFF), (0x3000, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xFF00, 0xFFEF),
                             (0x1F300, 0x1FAFF), (0x10000, 0x1007F), (0xE0000, 0xE007F)])
        return chr(rng.randint(lo, hi))
    if kind == 12:
        return rng.choice(["a", "b", "A", " the", " of"]) * rng.randint(2, 40)
    return rng.choice(["<", ">", "|", "<|", "|>", "</", "/>", "▁", "Ġ", "Ċ", "\\n", "@@", "##"])


def strings(rng, n, specials, vocab_texts):
    out = []
    for _ in range(n):
        out.append("".join(piece(rng, specials, vocab_texts) for _ in range(rng.randint(1, 8))))
    return out


def vocabulary(path):
    """The vocabulary's special tokens (control and user-defined) and a sample of ordinary entries, as text."""
    from gguf import GGUFReader
    r = GGUFReader(path)
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    types = r.fields["tokenizer.ggml.token_type"].contents() if "tokenizer.ggml.token_type" in r.fields else [1] * len(tokens)
    model = r.fields["tokenizer.ggml.model"].contents()
    specials = [t for t, ty in zip(tokens, types) if ty in (3, 4) and t]
    normal = [t for t, ty in zip(tokens, types) if ty == 1]
    rng = random.Random(len(tokens))
    sample = rng.sample(normal, min(2000, len(normal)))
    if model == "gpt2":
        # Byte-level entries: map the printable stand-ins back to bytes.
        table = byte_decoder()
        texts = []
        for t in sample:
            try:
                texts.append(bytes(table[c] for c in t).decode("utf-8"))
            except (KeyError, UnicodeDecodeError):
                pass
        sample = texts
    else:
        sample = [t.replace("▁", " ") for t in sample]
    return specials[:400], sample


def byte_decoder():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def relabelled(path, pre, folder):
    """A copy of a vocabulary GGUF (no tensors) with tokenizer.ggml.pre set to `pre` (added if missing): the same
    keys in the same order, the one value replaced. Walks the key-value section with struct: gguf-py takes seconds
    to read and write a 150,000-token vocabulary. Gemma 4's vocabulary is its own tokenizer model, whose
    pre-tokenizer is always gemma4; relabelled to another name its model becomes gpt2, so that the name counts."""
    data = open(path, "rb").read()
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def skip(off, vtype):
        if vtype == 8:
            return off + 8 + struct.unpack_from("<Q", data, off)[0]
        if vtype == 9:
            itype, count = struct.unpack_from("<IQ", data, off)
            off += 12
            if itype in sizes:
                return off + count * sizes[itype]
            for _ in range(count):
                off = skip(off, itype)
            return off
        return off + sizes[vtype]

    version, tensors, kvs = struct.unpack_from("<IQQ", data, 4)
    if data[:4] != b"GGUF" or version < 2 or tensors != 0:
        raise ValueError(f"{path}: not a vocabulary-only GGUF v2+")
    off = 24
    pieces, alignment = [], 32
    value = struct.pack("<Q", len(pre.encode())) + pre.encode()
    gpt2 = struct.pack("<Q", 4) + b"gpt2"
    found = False
    for _ in range(kvs):
        start = off
        klen = struct.unpack_from("<Q", data, off)[0]
        key = data[off + 8:off + 8 + klen]
        vtype = struct.unpack_from("<I", data, off + 8 + klen)[0]
        vstart = off + 12 + klen
        off = skip(vstart, vtype)
        if key == b"general.alignment":
            alignment = struct.unpack_from("<I", data, vstart)[0]
        if key == b"tokenizer.ggml.pre":
            pieces.append(data[start:vstart] + value)
            found = True
        elif key == b"tokenizer.ggml.model" and data[vstart:off] == struct.pack("<Q", 6) + b"gemma4" and pre != "gemma4":
            pieces.append(data[start:vstart] + gpt2)
        else:
            pieces.append(data[start:off])
    if not found:
        pieces.append(struct.pack("<Q", 18) + b"tokenizer.ggml.pre" + struct.pack("<I", 8) + value)
    out_bytes = data[:8] + struct.pack("<QQ", 0, kvs + (not found)) + b"".join(pieces)
    if len(data) > off:  # the original pads its end to the alignment: so does the copy
        out_bytes += bytes(-len(out_bytes) % alignment)
    out = os.path.join(folder, f"{os.path.basename(path)[:-5]}-as-{pre}.gguf")
    with open(out, "wb") as f:
        f.write(out_bytes)
    return out


def ingot_corpus(ingot, model, path):
    p = subprocess.run([ingot, "tokenize", model, "--text", path, "--no-special", "--json"], capture_output=True)
    if p.returncode != 0:
        return None, p.stderr.decode(errors="replace").strip()[-300:]
    return json.loads(p.stdout)["ids"], None


def ingot_ids(ingot, model, texts, parse_special):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump(texts, f, ensure_ascii=False)
        path = f.name
    try:
        cmd = [ingot, "tokenize", model, "--each", path, "--no-special"] + (["--parse-special"] if parse_special else [])
        p = subprocess.run(cmd, capture_output=True)
        if p.returncode != 0:
            return None, p.stderr.decode(errors="replace").strip()[-300:]
        return json.loads(p.stdout), None
    finally:
        os.unlink(path)


def is_sentencepiece(path):
    from gguf import GGUFReader
    f = GGUFReader(path).fields.get("tokenizer.ggml.model")
    return f is not None and f.contents() == "llama"


def hf_forms(a, name, path, texts, work, record):
    """Ingot against the tokenizers library on the vocabulary written as tokenizer.json in each of --hf's forms;
    the legacy form against llama.cpp on the GGUF too."""
    import importlib.util
    from tokenizers import Tokenizer as HFTokenizer
    spec = importlib.util.spec_from_file_location("tokjson", os.path.join(ROOT, "tools/make-tokenizer-json.py"))
    tokjson = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tokjson)
    llama = {}
    if "legacy" in a.hf:
        from llama_cpp import Llama
        llm = Llama(model_path=path, vocab_only=True, verbose=False)
        for parse in (False, True):
            llama[parse] = [list(llm.tokenize(t.encode("utf-8"), add_bos=False, special=parse)) for t in texts]
        del llm
    bad_runs, results = 0, []

    def judge(label, mode, want, got, err, peer, who="ingot", counts=True):
        nonlocal bad_runs
        if got is None:
            print(f"  FAIL  {label:32s} {mode:13s} refused: {err}", flush=True)
            results.append({"vocab": label, "mode": mode, "peer": peer, "strings": len(texts), "differ": None, "error": err})
            bad_runs += 1
            return
        bad = [i for i in range(len(want)) if got[i] != want[i]]
        bad_runs += bool(bad) and counts
        results.append({"vocab": label, "mode": mode, "peer": peer, "strings": len(want), "differ": len(bad)})
        verdict = "ok  " if not bad else "FAIL" if counts else "info"
        print(f"  {verdict}  {label:32s} {mode:13s} {len(want) - len(bad)} of {len(want)} the same as {peer}", flush=True)
        for i in bad[:a.show]:
            print(f"        {texts[i]!r}\n        {peer} {want[i][:24]}\n        {who:9s} {got[i][:24]}")

    # A folder holding only the tokenizer.json (a tiny llama with this vocabulary, converted by Ingot), converted to
    # GGUF by ingot convert: llama.cpp on that GGUF against tokenizers on the file. The legacy form and Metaspace
    # `never` are what GGUF expresses exactly; the other forms' prefix and split rules have no GGUF form.
    import shutil
    from llama_cpp import Llama
    tiny, base = os.path.join(work, f"{name}-tiny.gguf"), os.path.join(work, f"{name}-hf")
    subprocess.run([sys.executable, os.path.join(ROOT, "tools/make-spm-model.py"), path, tiny], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([a.ingot, "convert", tiny, "-o", base, "--to", "hf"], check=True, stdout=subprocess.DEVNULL)

    for form in a.hf:
        js = os.path.join(work, f"{name}-{form}.tokenizer.json")
        doc = tokjson.document(path, form=form)
        strips = any(t["lstrip"] or t["rstrip"] for t in doc["added_tokens"])
        with open(js, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False)
        hf = HFTokenizer.from_file(js)
        label = f"{name} tokenizer.json {form}"
        for parse in (False, True):
            hf.encode_special_tokens = not parse
            want = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
            got, err = ingot_ids(a.ingot, js, texts, parse)
            mode = "parse-special" if parse else "plain"
            judge(label, mode, want, got, err, "tokenizers")
            if a.record:
                record.append({"vocab": name, "form": form, "parse_special": parse,
                               "cases": [{"text": t, "ids": w} for t, w in zip(texts, want)]})
            # With special tokens parsed, Phi-3's differ by construction: llama.cpp strips C's isspace right of them
            # (by model name), a tokenizer.json's rstrip strips Unicode whitespace.
            if form == "legacy" and not (parse and strips):
                judge(label, mode, llama[parse], got, err, "llama.cpp")
        folder = os.path.join(work, f"{name}-{form}-hf")
        shutil.copytree(base, folder)
        os.unlink(os.path.join(folder, "tokenizer.model"))
        shutil.copy(js, os.path.join(folder, "tokenizer.json"))
        converted = folder + ".gguf"
        p = subprocess.run([a.ingot, "convert", folder, "-o", converted, "--to", "gguf"], capture_output=True)
        if p.returncode != 0:
            judge(label + " -> GGUF", "convert", [], None, p.stderr.decode(errors="replace")[-300:], "tokenizers")
        else:
            llm = Llama(model_path=converted, vocab_only=True, verbose=False)
            for parse in (False, True):
                if parse and strips:
                    continue
                hf.encode_special_tokens = not parse
                want = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
                got = [list(llm.tokenize(t.encode("utf-8"), add_bos=False, special=parse)) for t in texts]
                judge(label + " -> GGUF", "parse-special" if parse else "plain", want, got, None, "tokenizers",
                      who="llama.cpp", counts=form in ("legacy", "never"))
            del llm
            os.unlink(converted)
        shutil.rmtree(folder)
        hf.encode_special_tokens = True
        for corpus in a.corpus:
            want = hf.encode(open(corpus, encoding="utf-8").read(), add_special_tokens=False).ids
            got, err = ingot_corpus(a.ingot, js, corpus)
            same = got == want
            bad_runs += not same
            first = next((i for i in range(min(len(got or []), len(want))) if got[i] != want[i]), None)
            results.append({"vocab": label, "mode": "corpus", "peer": "tokenizers", "file": os.path.basename(corpus),
                            "tokens": len(want), "differ": None if got is None else int(not same)})
            print(f"  {'ok  ' if same else 'FAIL'}  {label:32s} {os.path.basename(corpus)}: {len(want)} tokens"
                  + ("" if same else f", ingot {len(got or [])}, first difference at token {first} ({err or ''})"), flush=True)
        os.unlink(js)
    shutil.rmtree(base)
    os.unlink(tiny)
    return bad_runs, results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    ap.add_argument("--vocab-dir", default=os.path.join(ROOT, ".cache/llama-vocab"))
    ap.add_argument("--smollm2", default=os.path.join(ROOT, ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--count", type=int, default=1000, help="strings per vocabulary")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--vocab", nargs="*", help="only these vocabularies (names as in ggml-vocab-NAME.gguf, or smollm2)")
    ap.add_argument("--relabel", nargs="*", default=[], help="also run every vocabulary under these pre-tokenizer names")
    ap.add_argument("--show", type=int, default=3, help="differing strings to print per run")
    ap.add_argument("--record", help="write the strings and llama.cpp's ids here")
    ap.add_argument("--json", help="write the per-run counts here")
    ap.add_argument("--corpus", nargs="*", default=[], help="also tokenize each of these files whole (plain) through both")
    ap.add_argument("--hf", nargs="*", default=[], help="SentencePiece vocabularies as tokenizer.json in these forms, "
                    "against the tokenizers library")
    ap.add_argument("--hf-only", action="store_true", help="run only the --hf comparisons")
    a = ap.parse_args()
    from llama_cpp import Llama

    paths = {os.path.basename(p)[len("ggml-vocab-"):-len(".gguf")]: p for p in glob.glob(os.path.join(a.vocab_dir, "ggml-vocab-*.gguf"))}
    if os.path.exists(a.smollm2):
        paths["smollm2"] = a.smollm2
    names = sorted(n for n in paths if n not in UNSUPPORTED and (not a.vocab or n in a.vocab))
    work = tempfile.mkdtemp(prefix="ingot-tokdiff-")
    results, record = [], []
    total_bad = 0
    for name in names:
        specials, vocab_texts = vocabulary(paths[name])
        rng = random.Random(f"{a.seed}-{name}")
        texts = strings(rng, a.count, specials, vocab_texts)
        variants = [(name, paths[name])] + [(f"{name} as {pre}", relabelled(paths[name], pre, work)) for pre in a.relabel]
        if a.hf and is_sentencepiece(paths[name]):
            bad, runs = hf_forms(a, name, paths[name], texts, work, record)
            total_bad += bad
            results += runs
        for label, path in ([] if a.hf_only else variants):
            llm = Llama(model_path=path, vocab_only=True, verbose=False)
            for parse in (False, True):
                want = [list(llm.tokenize(t.encode("utf-8"), add_bos=False, special=parse)) for t in texts]
                got, err = ingot_ids(a.ingot, path, texts, parse)
                mode = "parse-special" if parse else "plain"
                if got is None:
                    print(f"  FAIL  {label:32s} {mode:13s} refused: {err}", flush=True)
                    results.append({"vocab": label, "mode": mode, "strings": len(texts), "differ": None, "error": err})
                    total_bad += 1
                    continue
                bad = [i for i in range(len(texts)) if got[i] != want[i]]
                total_bad += bool(bad)
                results.append({"vocab": label, "mode": mode, "strings": len(texts), "differ": len(bad)})
                print(f"  {'ok  ' if not bad else 'FAIL'}  {label:32s} {mode:13s} {len(texts) - len(bad)} of {len(texts)} the same",
                      flush=True)
                for i in bad[:a.show]:
                    print(f"        {texts[i]!r}\n        llama.cpp {want[i][:24]}\n        ingot     {got[i][:24]}")
                if a.record:
                    entry = {"vocab": name, "parse_special": parse}
                    if label != name:
                        entry["pre"] = label.split(" as ")[1]
                    record.append(entry | {"cases": [{"text": t, "ids": w} for t, w in zip(texts, want)]})
            for corpus in a.corpus:
                data = open(corpus, "rb").read()
                want = list(llm.tokenize(data, add_bos=False, special=False))
                got, err = ingot_corpus(a.ingot, path, corpus)
                same = got == want
                first = next((i for i in range(min(len(got or []), len(want))) if got[i] != want[i]), None)
                total_bad += not same
                results.append({"vocab": label, "mode": "corpus", "file": os.path.basename(corpus), "tokens": len(want),
                                "differ": None if got is None else int(not same)})
                print(f"  {'ok  ' if same else 'FAIL'}  {label:32s} {os.path.basename(corpus)}: {len(want)} tokens"
                      + ("" if same else f", ingot {len(got or [])}, first difference at token {first} ({err or ''})"), flush=True)
            del llm
    if a.record:
        import llama_cpp
        reference = f"llama-cpp-python {llama_cpp.__version__}, Llama.tokenize(add_bos=False)"
        if a.hf:
            import tokenizers
            reference += f"; runs with a form: tokenizers {tokenizers.__version__}, Tokenizer.encode(add_special_tokens=False)"
        with open(a.record, "w", encoding="utf-8") as f:
            json.dump({"reference": reference,
                       "command": " ".join(["tools/tokenizer-diff.py"] + sys.argv[1:]), "runs": record}, f, ensure_ascii=False)
    if a.json:
        json.dump(results, open(a.json, "w"), indent=1)
    print(f"tokenizer-diff: {len(results) - total_bad} runs the same, {total_bad} differ")
    return 1 if total_bad else 0


if __name__ == "__main__":
    sys.exit(main())
