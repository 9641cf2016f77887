#!/usr/bin/env python3
"""Makes a small llama GGUF with a real SentencePiece vocabulary: Llama 2's 32000-token tokenizer as llama.cpp ships
it for its tokenizer tests (models/ggml-vocab-llama-spm.gguf, fetched by tools/fetch-fixtures.sh into
.cache/llama-vocab/), with random F16 weights (seed fixed) for a 2-layer llama of hidden size 64. It is what
SentencePiece conversion (tokenizer.model <-> tokenizer.ggml.* with scores) is checked on. Reference code only:
gguf-py and numpy.

usage: tools/make-spm-model.py VOCAB_GGUF OUT_GGUF
"""
import argparse

import numpy as np
from gguf import GGUFReader, GGUFWriter, GGMLQuantizationType

HIDDEN, LAYERS, HEADS, KV, FFN = 64, 2, 4, 2, 128


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vocab")
    ap.add_argument("out")
    a = ap.parse_args()
    r = GGUFReader(a.vocab)
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    n = len(tokens)
    w = GGUFWriter(a.out, "llama")
    w.add_name("Tiny Llama SPM")
    w.add_block_count(LAYERS)
    w.add_context_length(2048)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(1)
    w.add_vocab_size(n)
    w.add_rope_dimension_count(HIDDEN // HEADS)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(r.fields["tokenizer.ggml.scores"].contents())
    w.add_token_types(r.fields["tokenizer.ggml.token_type"].contents())
    # The vocabulary's special ids and flags, those it has (Llama 2's has all).
    for key, add in [("bos_token_id", w.add_bos_token_id), ("eos_token_id", w.add_eos_token_id),
                     ("unknown_token_id", w.add_unk_token_id), ("add_bos_token", w.add_add_bos_token),
                     ("add_eos_token", w.add_add_eos_token)]:
        if "tokenizer.ggml." + key in r.fields:
            add(r.fields["tokenizer.ggml." + key].contents())
    rng = np.random.default_rng(11)

    def t(name, *shape, norm=False):
        if norm:
            w.add_tensor(name, (1 + rng.standard_normal(shape) * 0.05).astype(np.float32))
        else:
            w.add_tensor(name, (rng.standard_normal(shape) * 0.05).astype(np.float16), raw_dtype=GGMLQuantizationType.F16)

    d = HIDDEN // HEADS
    t("token_embd.weight", n, HIDDEN)
    t("output_norm.weight", HIDDEN, norm=True)
    t("output.weight", n, HIDDEN)
    for i in range(LAYERS):
        p = f"blk.{i}."
        t(p + "attn_norm.weight", HIDDEN, norm=True)
        t(p + "attn_q.weight", HEADS * d, HIDDEN)
        t(p + "attn_k.weight", KV * d, HIDDEN)
        t(p + "attn_v.weight", KV * d, HIDDEN)
        t(p + "attn_output.weight", HIDDEN, HEADS * d)
        t(p + "ffn_norm.weight", HIDDEN, norm=True)
        t(p + "ffn_gate.weight", FFN, HIDDEN)
        t(p + "ffn_up.weight", FFN, HIDDEN)
        t(p + "ffn_down.weight", HIDDEN, FFN)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
