import Foundation
import IngotCalibrate
import IngotFormats
import IngotModel
import IngotNumerics
import Testing

@Suite("AWQ")
struct AWQTests {
    @Test("the grid of candidates is llm-compressor's for each duo_scaling setting")
    func candidates() {
        var o = AWQOptions()
        let duo = o.candidates
        #expect(duo.count == 20)
        #expect(duo[0].ratio == 0 && !duo[0].duo)
        #expect(duo[1].ratio == 0 && duo[1].duo && duo[19].ratio == 1 && duo[19].duo)
        #expect(abs(duo[10].ratio - 9.0 / 18) < 1e-7)
        o.scaling = .activations
        let act = o.candidates
        #expect(act.count == 20 && act.allSatisfy { !$0.duo } && abs(act[1].ratio - 1.0 / 19) < 1e-7 && act[19].ratio == 1)
        o.scaling = .both
        let both = o.candidates
        #expect(both.count == 20 && !both[0].duo && both[1].duo && both[0].ratio == 0 && both[2].ratio == both[3].ratio)
        #expect(abs(both[2].ratio - 1.0 / 9) < 1e-7 && both[19].ratio == 1)
    }

    @Test("a rescaling's importance weights follow the inputs: divided by the multipliers' squares, per matrix")
    func importance() {
        let c = ChannelScaling(columnMultipliers: [2, 0.5])
        #expect(c.importance([4, 4, 8, 1]) == [1, 16, 2, 4])
        #expect(ChannelScaling(columnDivisors: [2, 2]).importance([3, 5]) == [3, 5])
    }

    @Test("a grid's round trip of a whole weight gives each value's code's value", arguments: [
        IntegerGrid.Rule.mlxAffine(bits: 4, storedAs: .f16), .mlxAffine(bits: 3, storedAs: .bf16),
        .compressedTensors(bits: 4, symmetric: true, arithmetic: .f16), .compressedTensors(bits: 4, symmetric: false, arithmetic: .bf16),
        .compressedTensors(bits: 8, symmetric: true, arithmetic: .f32),
    ])
    func gridRoundTrip(rule: IntegerGrid.Rule) {
        let (rows, cols, group) = (6, 128, 32)
        var w = Self.values(rows * cols, seed: 7, scale: 0.3).enumerated().map { i, v in i % 41 == 5 ? v * 9 : v }
        let grid = w.withUnsafeBufferPointer { IntegerGrid(rule, rows: rows, cols: cols, groupSize: group, fitting: $0.baseAddress!) }
        let expected = w.indices.map { i -> Float in
            let g = (i / cols) * (cols / group) + (i % cols) / group
            return grid.value(grid.code(w[i], group: g), group: g)
        }
        w.withUnsafeMutableBufferPointer { grid.roundTrip($0.baseAddress!) }
        #expect(w == expected)
    }

    static let hidden = 128, heads = 4, ffn = 256, vocab = 64, layers = 2

    static func values(_ n: Int, seed: UInt64, scale: Float) -> [Float] {
        var s = seed
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return (Float(Int64(bitPattern: s >> 11) % 2000) / 1000 - 1) * scale
        }
    }

    /// A two-layer llama in F32 with as many KV heads as heads (so v → o is a smoothing too), and a few input channels
    /// of each norm made large, as real models' outlier channels are.
    static func weights() -> [(name: String, dims: [Int], values: [Float])] {
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
    static func write(_ path: String, _ tensors: [(name: String, dims: [Int], values: [Float])], scaling: [String: ChannelScaling] = [:],
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
                #expect(s.fits(rows: rows, cols: cols))
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

    static func logits(_ path: String, _ windows: [[Int32]]) throws -> [[Float]] {
        let model = try DecoderModel(gguf: try GGUFFile(path: path))
        (model.halfPrecisionCache, model.activationRounding) = (false, .exact)
        let ws = MatMulWorkspace(threads: 2)
        return try windows.map { try model.logits($0, outputs: 0..<$0.count, workspace: ws) }
    }

    static func meanSquare(_ a: [[Float]], _ b: [[Float]]) -> Double {
        var se = 0.0, n = 0
        for (x, y) in zip(a, b) { for k in x.indices { se += Double(x[k] - y[k]) * Double(x[k] - y[k]) }; n += x.count }
        return se / Double(n)
    }

    @Test("the rescaled model computes what the original does, and rounded to Q4_0 it errs less than rounded as it was")
    func smoothing() throws {
        let dir = NSTemporaryDirectory() + "ingot-awq-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tensors = Self.weights()
        try Self.write(dir + "/f32.gguf", tensors)
        let windows = (0..<4).map { w in Self.values(48, seed: UInt64(100 + w), scale: 1).map { Int32(abs($0) * 63.99) } }
        let model = try DecoderModel(gguf: try GGUFFile(path: dir + "/f32.gguf"))
        model.halfPrecisionCache = false
        let linears = tensors.map(\.name).filter { $0.hasPrefix("blk.") && !$0.hasSuffix("norm.weight") }
        let awq = AWQ(model: model, windows: windows, options: AWQOptions())
        let scaling = try awq.search(BlockRounding(types: Dictionary(uniqueKeysWithValues: linears.map { ($0, GGMLType.q4_0) })))
        // Every smoothing of both blocks: attn_norm → q, k, v; v → o; ffn_norm → gate, up; up → down.
        #expect(awq.outcomes.map(\.smoother) == (0..<Self.layers).flatMap { l in
            ["attn_norm", "attn_v", "ffn_norm", "ffn_up"].map { "blk.\(l).\($0).weight" } })
        #expect(awq.outcomes.allSatisfy { $0.loss <= $0.initialLoss })
        #expect(awq.outcomes.contains { $0.loss < 0.9 * $0.initialLoss })
        #expect(scaling["blk.0.attn_norm.weight"]?.columnDivisors?.count == Self.hidden)
        #expect(scaling["blk.1.ffn_up.weight"]?.rowDivisors?.count == Self.ffn && scaling["blk.1.ffn_up.weight"]?.columnMultipliers != nil)
        #expect(scaling["blk.0.attn_v.weight"]?.rowDivisors != nil && scaling["blk.0.attn_output.weight"]?.columnMultipliers != nil)

        try Self.write(dir + "/scaled-f32.gguf", tensors, scaling: scaling)
        let reference = try Self.logits(dir + "/f32.gguf", windows)
        let scaled = try Self.logits(dir + "/scaled-f32.gguf", windows)
        let peak = reference.flatMap { $0 }.map(abs).max()!
        #expect(zip(reference, scaled).allSatisfy { zip($0, $1).allSatisfy { abs($0 - $1) <= 1e-4 * peak } })

        let q4: (String) -> GGMLType = { linears.contains($0) ? .q4_0 : .f32 }
        try Self.write(dir + "/rtn.gguf", tensors, type: q4)
        try Self.write(dir + "/awq.gguf", tensors, scaling: scaling, type: q4)
        let rtn = Self.meanSquare(try Self.logits(dir + "/rtn.gguf", windows), reference)
        let smoothed = Self.meanSquare(try Self.logits(dir + "/awq.gguf", windows), reference)
        #expect(smoothed < 0.8 * rtn, "logits' mean squared error: AWQ \(smoothed), round to nearest \(rtn)")
    }
}
