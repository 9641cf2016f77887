import Foundation
import IngotCalibrate
import IngotFormats
import IngotModel
import IngotNumerics
import IngotTestSupport
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

    static let hidden = TinyLlama.hidden, heads = TinyLlama.heads, ffn = TinyLlama.ffn, vocab = TinyLlama.vocab, layers = TinyLlama.layers

    static func values(_ n: Int, seed: UInt64, scale: Float) -> [Float] { TinyLlama.values(n, seed: seed, scale: scale) }
    static func weights() -> [(name: String, dims: [Int], values: [Float])] { TinyLlama.weights() }
    static func write(_ path: String, _ tensors: [(name: String, dims: [Int], values: [Float])], scaling: [String: ChannelScaling] = [:],
                      type: (String) -> GGMLType = { _ in .f32 }) throws {
        try TinyLlama.write(path, tensors, scaling: scaling, type: type)
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
