import Foundation
@testable import IngotCalibrate
import IngotFormats
import IngotModel
import IngotNumerics
import Testing

@Suite("GPTQ")
struct GPTQTests {
    /// fixtures/reference/gptq.safetensors: llm-compressor's GPTQ (tools/reference/gptq_reference.py).
    static func fixture() throws -> (file: SafetensorsFile, w: [Float], h: [Float]) {
        let root = String(#filePath).split(separator: "/").dropLast(3).joined(separator: "/")
        let f = try SafetensorsFile(path: "/" + root + "/fixtures/reference/gptq.safetensors")
        return (f, try floats(f, "weight"), try floats(f, "hessian"))
    }

    static func floats(_ f: SafetensorsFile, _ name: String) throws -> [Float] {
        let t = try #require(f.tensor(named: name))
        let d = f.data(for: t)
        return (0..<(d.count / 4)).map { d.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
    }

    @Test("equals llm-compressor's GPTQ on the same weight and Hessian: symmetric and asymmetric int4 groups, int8 per channel, with and without activation order")
    func againstLLMCompressor() throws {
        let (f, w, h) = try Self.fixture()
        let rows = 48, cols = 256
        for (key, value) in f.metadata where key != "reference" {
            let c = try JSONParser.parse(Array(value.utf8), field: key)
            let bits = try #require(c["bits"]?.intValue), sym = c["symmetric"]?.boolValue ?? true
            let group = c["group"]?.intValue ?? cols
            let reference = try Self.floats(f, key)
            let loss = try #require(c["loss"]?.doubleValue)
            var o = GPTQOptions()
            o.activationOrder = c["actorder"]?.stringValue == "weight"
            let grid = w.withUnsafeBufferPointer {
                IntegerGrid(.compressedTensors(bits: bits, symmetric: sym, arithmetic: .f32), rows: rows, cols: cols, groupSize: group,
                            fitting: $0.baseAddress!)
            }
            let r = w.withUnsafeBufferPointer { wp in h.withUnsafeBufferPointer { hp in
                GPTQ.quantize(wp.baseAddress!, rows: rows, cols: cols, hessian: hp.baseAddress!, grid: grid, options: o)
            } }
            #expect(r.roundedToNearest == false, "\(key)")
            // On x86_64 every value is the same. Float sums in another order (another CPU's vector width) could move a
            // value that lies almost halfway between two codes, and the error fed forward with it: nearly every value
            // must be the same, and the loss within 1e-4.
            var same = 0
            for i in 0..<(rows * cols) where r.values[i] == reference[i] { same += 1 }
            #expect(Double(same) / Double(rows * cols) > 0.999, "\(key): \(same) of \(rows * cols) values equal")
            #expect(abs(r.loss / loss - 1) < 1e-4, "\(key): loss \(r.loss) against \(loss)")
            for i in 0..<(rows * cols) { #expect(r.values[i] == grid.value(r.codes[i], group: i / group)) }
        }
    }

    @Test("with a diagonal Hessian no error is fed forward: the codes are round-to-nearest's, for MLX affine and compressed-tensors alike")
    func diagonalHessianIsRoundToNearest() throws {
        let rows = 5, cols = 64
        var state: UInt64 = 7
        let w: [Float] = (0..<(rows * cols)).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2001 - 1000) / 5000
        }
        var h = [Float](repeating: 0, count: cols * cols)
        for i in 0..<cols { h[i * cols + i] = Float(1 + i % 5) }
        let rules: [(IntegerGrid.Rule, Int)] = [(.mlxAffine(bits: 4, storedAs: .f16), 32), (.mlxAffine(bits: 3, storedAs: .bf16), 64),
                                                (.compressedTensors(bits: 4, symmetric: true, arithmetic: .f16), 16),
                                                (.compressedTensors(bits: 4, symmetric: false, arithmetic: .bf16), 32)]
        for (rule, group) in rules {
            let grid = w.withUnsafeBufferPointer { IntegerGrid(rule, rows: rows, cols: cols, groupSize: group, fitting: $0.baseAddress!) }
            let r = w.withUnsafeBufferPointer { wp in h.withUnsafeBufferPointer { hp in
                GPTQ.quantize(wp.baseAddress!, rows: rows, cols: cols, hessian: hp.baseAddress!, grid: grid)
            } }
            let expected: [Int32]
            switch rule {
            case .mlxAffine(let bits, let t):
                let q = w.withUnsafeBufferPointer { MLXAffine.quantize($0.baseAddress!, rows: rows, cols: cols, bits: bits, groupSize: group, storedAs: t) }
                var codes = [Int32](repeating: 0, count: rows * cols)
                for i in 0..<(rows * cols) { codes[i] = r.codes[i] }
                var packed = [UInt8](repeating: 0, count: q.packed.count)
                let gb = MLXAffine.bytesPerGroup(bits: bits, groupSize: group)
                packed.withUnsafeMutableBufferPointer { p in
                    for g in 0..<(rows * cols / group) { MLXAffine.pack(group, bits: bits, into: p.baseAddress! + g * gb) { codes[g * group + $0] } }
                }
                #expect(packed == q.packed, "\(rule)")
                #expect(grid.storedScales == q.scales && grid.storedOffsets == q.biases, "\(rule)")
                expected = codes
            case .compressedTensors(let bits, let sym, let t):
                let q = w.withUnsafeBufferPointer {
                    CompressedTensorsInt.quantize($0.baseAddress!, rows: rows, cols: cols, bits: bits, groupSize: group, symmetric: sym, arithmetic: t)
                }
                expected = q.codes.map(Int32.init)
                #expect(grid.scales == q.scales && grid.offsets.map { Int8($0) } == q.zeroPoints, "\(rule)")
            }
            #expect(r.codes == expected, "\(rule)")
        }
    }

    @Test("GGUF block types: with the type's scales fixed, the error fed forward lowers the output error below the type's own quantizer's",
          arguments: [GGMLType.q4_0, .q5_1, .q8_0, .iq4_NL, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_XS])
    func blockTypes(_ type: GGMLType) throws {
        let rows = 16, cols = 512, tokens = 256
        var rng: UInt64 = 11
        func normal() -> Float {
            var s: Float = 0
            for _ in 0..<4 { rng = rng &* 6364136223846793005 &+ 1442695040888963407; s += Float(rng >> 40) / Float(1 << 24) - 0.5 }
            return s
        }
        let w = (0..<(rows * cols)).map { _ in normal() * 0.05 }
        // Inputs with correlated columns of unequal size, as a layer's are.
        let base = (0..<(tokens * 8)).map { _ in normal() }
        var x = [Float](repeating: 0, count: tokens * cols)
        for t in 0..<tokens { for j in 0..<cols { x[t * cols + j] = base[t * 8 + j % 8] * Float(1 + j % 3) + 0.3 * normal() } }
        var h = [Float](repeating: 0, count: cols * cols)
        for t in 0..<tokens { for i in 0..<cols { let xi = x[t * cols + i]; for j in 0..<cols { h[i * cols + j] += xi * x[t * cols + j] } } }
        let grid = try #require(w.withUnsafeBufferPointer { BlockGrid(type, rows: rows, cols: cols, fitting: $0.baseAddress!) })
        let r = w.withUnsafeBufferPointer { wp in h.withUnsafeBufferPointer { hp in
            GPTQ.quantize(wp.baseAddress!, rows: rows, cols: cols, hessian: hp.baseAddress!, grid: grid)
        } }
        #expect(!r.roundedToNearest)
        var nearest = [Float](repeating: 0, count: rows * cols)
        grid.fitted.withUnsafeBytes { b in nearest.withUnsafeMutableBufferPointer { BlockCodec.dequantize(type, b.baseAddress!, count: rows * cols, into: $0.baseAddress!) } }
        // The values are the grid's, and what the encoded blocks hold.
        var stored = [Float](repeating: 0, count: rows * cols)
        let bytes = r.codes.withUnsafeBufferPointer { grid.encode($0.baseAddress!) }
        bytes.withUnsafeBytes { b in stored.withUnsafeMutableBufferPointer { BlockCodec.dequantize(type, b.baseAddress!, count: rows * cols, into: $0.baseAddress!) } }
        #expect(stored == r.values)
        // ‖(W - Q) Xᵀ‖², the layer's output error over the inputs.
        func outputError(_ q: [Float]) -> Double {
            var e = 0.0
            for r in 0..<rows {
                for t in 0..<tokens {
                    var s = 0.0
                    for j in 0..<cols { s += Double(w[r * cols + j] - q[r * cols + j]) * Double(x[t * cols + j]) }
                    e += s * s
                }
            }
            return e
        }
        let gptq = outputError(r.values), rtn = outputError(nearest)
        #expect(gptq < 0.9 * rtn, "\(type.name): \(gptq) against \(rtn)")
    }

    /// AWQ's two-block llama in F32 at `dir/f32.gguf` (a new temporary folder), four windows of ids, the model and the
    /// names of its blocks' linear layers.
    static func tinyModel() throws -> (dir: String, tensors: [(name: String, dims: [Int], values: [Float])], windows: [[Int32]],
                                       model: DecoderModel, linears: [String]) {
        let dir = NSTemporaryDirectory() + "ingot-gptq-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let tensors = AWQTests.weights()
        try AWQTests.write(dir + "/f32.gguf", tensors)
        let windows = (0..<4).map { w in AWQTests.values(48, seed: UInt64(100 + w), scale: 1).map { Int32(abs($0) * 63.99) } }
        let model = try DecoderModel(gguf: try GGUFFile(path: dir + "/f32.gguf"))
        return (dir, tensors, windows, model, tensors.map(\.name).filter { $0.hasPrefix("blk.") && !$0.hasSuffix("norm.weight") })
    }

    @Test("GPTQ into GGUF block types over a model (AWQ's two-block llama): the blocks hold the type's scales, and the model errs less than rounded to nearest")
    func gptqBlocks() throws {
        let (dir, tensors, windows, model, linears) = try Self.tinyModel()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The K type where the rows hold whole super-blocks, Q5_0 where they do not (ffn_down's 256 columns do).
        let type: (String) -> GGMLType = { name in linears.contains(name) ? (name.contains("ffn_down") ? .q4_K : .q5_0) : .f32 }
        let gptq = try SequentialGPTQ(model: model, windows: windows, options: GPTQOptions())
        let targets = linears.map { SequentialGPTQ.BlockTarget(name: $0, type: type($0)) }
            + [SequentialGPTQ.BlockTarget(name: "output.weight", type: .q4_0), SequentialGPTQ.BlockTarget(name: "blk.0.attn_q.weight", type: .iq2_XS)]
        #expect(try gptq.prepare(blocks: targets) == Set(linears))
        try AWQTests.write(dir + "/rtn.gguf", tensors, type: type)
        let rtnFile = try GGUFFile(path: dir + "/rtn.gguf")
        // Written in the file's order, as the quantizer asks.
        var blocks: [String: [UInt8]] = [:]
        for t in tensors where linears.contains(t.name) {
            let bytes = try #require(try gptq.quantizedBlocks(t.name))
            let info = try #require(rtnFile.tensors.first { $0.name == t.name })
            let plain = Array(rtnFile.data(for: info))
            #expect(bytes.count == plain.count)
            // The scales are the round-to-nearest blocks' (Q5_0: the f16 d of each 22 bytes; Q4_K: the first 16 of 144).
            let (block, head) = type(t.name) == .q4_K ? (144, 16) : (22, 2)
            #expect(stride(from: 0, to: bytes.count, by: block).allSatisfy { bytes[$0..<($0 + head)] == plain[$0..<($0 + head)] }, "\(t.name)")
            #expect(bytes != plain, "\(t.name)")
            blocks[t.name] = bytes
        }
        #expect(gptq.outcomes.count == linears.count && gptq.outcomes.allSatisfy { !$0.roundedToNearest })
        #expect(try gptq.quantizedBlocks("output.weight") == nil)

        let (ours, rtn) = try Self.errors(dir, from: "rtn.gguf", blocks: blocks, windows: windows)
        #expect(ours < 0.8 * rtn, "logits' mean squared error: GPTQ \(ours), round to nearest \(rtn)")
    }

    /// Writes `dir/gptq.gguf`: `dir/from` with `blocks` in place of the tensors they name. The logits' mean squared
    /// errors against `dir/f32.gguf`'s of it and of `dir/rtn.gguf`.
    static func errors(_ dir: String, from: String, blocks: [String: [UInt8]], windows: [[Int32]]) throws -> (gptq: Double, rtn: Double) {
        let file = try GGUFFile(path: dir + "/" + from)
        let writer = try GGUFWriter(path: dir + "/gptq.gguf", metadata: file.metadata, tensors: file.tensors.map {
            try GGUFTensorInfo(name: $0.name, dimensions: $0.dimensions, type: $0.type)
        })
        for info in file.tensors {
            if let b = blocks[info.name] { try b.withUnsafeBytes { try writer.write($0) } } else { try writer.write(file.data(for: info)) }
        }
        try writer.finish()
        let reference = try AWQTests.logits(dir + "/f32.gguf", windows)
        return (AWQTests.meanSquare(try AWQTests.logits(dir + "/gptq.gguf", windows), reference),
                AWQTests.meanSquare(try AWQTests.logits(dir + "/rtn.gguf", windows), reference))
    }

    @Test("AWQ then GPTQ: the model GPTQ calibrates on is the smoothed one, and the smoothed norms with GPTQ's blocks compute what the original does")
    func smoothedGPTQ() throws {
        let (dir, tensors, windows, model, linears) = try Self.tinyModel()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let types = Dictionary(uniqueKeysWithValues: linears.map { ($0, GGMLType.q8_0) })
        let scaling = try AWQ(model: model, windows: windows, options: AWQOptions()).search(BlockRounding(types: types))
        #expect(scaling["blk.1.ffn_norm.weight"]?.columnDivisors != nil)
        let gptq = try SequentialGPTQ(model: model, windows: windows, options: GPTQOptions())
        try gptq.smooth(scaling)
        // The norm the forward pass reads is divided now.
        let norm = try #require(tensors.first { $0.name == "blk.1.ffn_norm.weight" }).values
        #expect(model.blocks[1].branches[1].norm.weight == zip(norm, scaling["blk.1.ffn_norm.weight"]!.columnDivisors!).map { $0 / $1 })
        #expect(throws: ModelError.self) { try model.divideNorm("blk.9.ffn_norm.weight", by: [1]) }
        #expect(try gptq.prepare(blocks: linears.map { SequentialGPTQ.BlockTarget(name: $0, type: .q8_0) }) == Set(linears))
        var blocks: [String: [UInt8]] = [:]
        for name in linears { blocks[name] = try #require(try gptq.quantizedBlocks(name)) }
        // Norms rescaled as the writer rescales them, the linear layers as GPTQ wrote them (Q8_0).
        try AWQTests.write(dir + "/rtn.gguf", tensors, type: { types[$0] ?? .f32 })
        let norms = scaling.filter { !linears.contains($0.key) }
        try AWQTests.write(dir + "/smoothed.gguf", tensors, scaling: norms, type: { types[$0] ?? .f32 })
        let (ours, rtn) = try Self.errors(dir, from: "smoothed.gguf", blocks: blocks, windows: windows)
        // Eight bits leave a small error either way; a norm or layer rescaled on one side only would leave a large one.
        #expect(ours < 2 * rtn, "logits' mean squared error: AWQ then GPTQ \(ours), round to nearest \(rtn)")
    }

    @Test("Hessians: 2/windows · Σ x xᵀ over every window's rows, one sum for layers that read the same input one after another")
    func hessianSums() throws {
        let rows = 20, cols = 100   // two bands of columns
        var state: UInt64 = 11
        func input() -> [Float] {
            (0..<(rows * cols)).map { _ in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Float(Int64(bitPattern: state >> 11) % 1000) / 250
            }
        }
        let a = input(), b = input(), c = input()
        let sums = HessianSums(names: ["q", "k", "o"], workspace: MatMulWorkspace(threads: 2), kernels: .best)
        for x in [a, b] {
            sums.newWindow()
            x.withUnsafeBufferPointer {
                sums.observe("q", matrix: nil, input: $0, rows: rows, columns: cols)
                sums.observe("k", matrix: nil, input: $0, rows: rows, columns: cols)
            }
            c.withUnsafeBufferPointer { sums.observe("o", matrix: nil, input: $0, rows: rows, columns: cols) }
        }
        #expect(sums.key(of: "k") == "q" && sums.key(of: "o") == "o" && sums.key(of: "v") == nil)
        let h = try #require(sums.hessian(of: "k")), o = try #require(sums.hessian(of: "o"))
        for i in 0..<cols {
            for j in 0..<cols {
                var e = 0.0, f = 0.0
                for r in 0..<rows {
                    e += Double(a[r * cols + i]) * Double(a[r * cols + j]) + Double(b[r * cols + i]) * Double(b[r * cols + j])
                    f += 2 * Double(c[r * cols + i]) * Double(c[r * cols + j])
                }
                #expect(abs(Double(h[i * cols + j]) - e) <= 1e-4 * max(1, abs(e)))   // 2/2 windows
                #expect(abs(Double(o[i * cols + j]) - f) <= 1e-4 * max(1, abs(f)))
            }
        }
    }

    @Test("the upper Cholesky factor of the inverse, from one factorization and one triangular inverse")
    func inverseFactor() {
        let n = 37
        // H = A·Aᵀ + n·I, symmetric positive definite.
        var state: UInt64 = 3
        let a: [Double] = (0..<(n * n)).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(Int64(bitPattern: state >> 11) % 1000) / 1000
        }
        var h = [Float](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n {
            var s = 0.0
            for k in 0..<n { s += a[i * n + k] * a[j * n + k] }
            h[i * n + j] = Float(s + (i == j ? Double(n) : 0))
        } }
        // The same reversal-and-inverse steps GPTQ takes, checked by Uᵀ·U·H = I.
        var r = [Float](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0...i { r[i * n + j] = h[(n - 1 - i) * n + (n - 1 - j)] } }
        let ok = r.withUnsafeMutableBufferPointer { GPTQ.cholesky($0.baseAddress!, n, threads: 3) }
        #expect(ok)
        let y = r.withUnsafeBufferPointer { GPTQ.lowerInverseColumns($0.baseAddress!, n, threads: 2) }
        var u = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in i..<n { u[i * n + j] = Double(y[(n - 1 - j) * n + (n - 1 - i)]) } }
        var worst = 0.0
        for i in 0..<n { for j in 0..<n {
            var s = 0.0
            for k in 0..<n {
                var uu = 0.0
                for m in 0..<n { uu += u[m * n + i] * u[m * n + k] }
                s += uu * Double(h[k * n + j])
            }
            worst = max(worst, abs(s - (i == j ? 1 : 0)))
        } }
        #expect(worst < 1e-5)
        // GPTQ's own factor (no reordering, no damping) is the same U.
        var o = GPTQOptions()
        (o.activationOrder, o.dampening) = (false, 0)
        let f = h.withUnsafeBufferPointer { GPTQ.factor(hessian: $0.baseAddress!, cols: n, options: o) }
        #expect(f.factored && f.order == Array(0..<n) && f.dead.isEmpty)
        #expect(zip(f.u, u).allSatisfy { abs(Double($0) - $1) <= 1e-5 * max(1, abs($1)) })
        // Not positive definite: refused.
        var bad: [Float] = [1, 0, 2, 1]
        #expect(!bad.withUnsafeMutableBufferPointer { GPTQ.cholesky($0.baseAddress!, 2) })
    }
}
