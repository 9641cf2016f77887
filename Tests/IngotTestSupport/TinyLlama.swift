import IngotFormats
import IngotNumerics

/// A two-layer llama in F32 small enough for unit tests (width 128, 4 heads, feed-forward 256, 64 tokens), with a few
/// input channels of each norm made large, as real models' outlier channels are; and its GGUF writer.
public enum TinyLlama {
    public static let hidden = 128, heads = 4, ffn = 256, vocab = 64, layers = 2

    public static func values(_ n: Int, seed: UInt64, scale: Float) -> [Float] {
        var s = seed
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return (Float(Int64(bitPattern: s >> 11) % 2000) / 1000 - 1) * scale
        }
    }

    /// A two-layer llama in F32 with as many KV heads as heads (so v → o is a smoothing too), and a few input channels
    /// of each norm made large, as real models' outlier channels are.
    public static func weights() -> [(name: String, dims: [Int], values: [Float])] {
        var out: [(String, [Int], [Float])] = [("token_embd.weight", [hidden, vocab], values(hidden * vocab, seed: 1, scale: 1)),
                                               ("output_norm.weight", [hidden], [Float](repeating: 1, count: hidden)),
                                               ("output.weight", [hidden, vocab], values(hidden * vocab, seed: 2, scale: 0.2))]
        for l in 0..<layers {
            let p = "blk.\(l).", seed = UInt64(10 * (l + 1))
            func norm(_ k: UInt64) -> [Float] {
                values(hidden, seed: seed + k, scale: 0.3).enumerated().map { i, v in (1 + v) * (i % 37 == 3 ? 12 : 1) }
            }
            out += [(p + "attn_norm.weight", [hidden], norm(1)), (p + "ffn_norm.weight", [hidden], norm(2)),
                    (p + "attn_q.weight", [hidden, hidden], values(hidden * hidden, seed: seed + 3, scale: 0.15)),
                    (p + "attn_k.weight", [hidden, hidden], values(hidden * hidden, seed: seed + 4, scale: 0.15)),
                    (p + "attn_v.weight", [hidden, hidden], values(hidden * hidden, seed: seed + 5, scale: 0.2)),
                    (p + "attn_output.weight", [hidden, hidden], values(hidden * hidden, seed: seed + 6, scale: 0.1)),
                    (p + "ffn_gate.weight", [hidden, ffn], values(hidden * ffn, seed: seed + 7, scale: 0.1)),
                    (p + "ffn_up.weight", [hidden, ffn], values(hidden * ffn, seed: seed + 8, scale: 0.1)),
                    (p + "ffn_down.weight", [ffn, hidden], values(ffn * hidden, seed: seed + 9, scale: 0.08))]
        }
        return out
    }

    /// Writes the tensors, each rescaled where `scaling` names it and stored as `type(name)`.
    public static func write(_ path: String, _ tensors: [(name: String, dims: [Int], values: [Float])], scaling: [String: ChannelScaling] = [:],
                      type: (String) -> GGMLType = { _ in .f32 }) throws {
        let meta = [
            GGUFKeyValue("general.architecture", .string(GGUFString("llama"))),
            GGUFKeyValue("llama.block_count", .uint32(UInt32(layers))),
            GGUFKeyValue("llama.embedding_length", .uint32(UInt32(hidden))),
            GGUFKeyValue("llama.feed_forward_length", .uint32(UInt32(ffn))),
            GGUFKeyValue("llama.attention.head_count", .uint32(UInt32(heads))),
            GGUFKeyValue("llama.attention.head_count_kv", .uint32(UInt32(heads))),
            GGUFKeyValue("llama.rope.freq_base", .float32(10000)),
            GGUFKeyValue("llama.attention.layer_norm_rms_epsilon", .float32(1e-5)),
        ]
        let infos = try tensors.map { try GGUFTensorInfo(name: $0.name, dimensions: $0.dims, type: type($0.name)) }
        let writer = try GGUFWriter(path: path, metadata: meta, tensors: infos)
        var scratch = QuantScratch()
        for (i, t) in tensors.enumerated() {
            var v = t.values
            let cols = t.dims[0]
            if let s = scaling[t.name] {
                let rows = v.count / cols
                precondition(s.fits(rows: rows, cols: cols), "a scaling of other widths")
                v.withUnsafeMutableBufferPointer { s.apply($0.baseAddress!, firstRow: 0, count: rows, cols: cols) }
            }
            var bytes = [UInt8](repeating: 0, count: infos[i].byteCount)
            v.withUnsafeBufferPointer { vp in bytes.withUnsafeMutableBytes { bp in
                BlockCodec.quantize(infos[i].type, vp.baseAddress!, count: v.count, into: bp.baseAddress!, scratch: &scratch)
            } }
            try bytes.withUnsafeBytes { try writer.write($0) }
        }
        try writer.finish()
    }

}
