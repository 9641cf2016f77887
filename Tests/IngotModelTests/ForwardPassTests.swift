import Foundation
import IngotFormats
import IngotModel
import IngotNumerics
import Testing

/// A two-layer llama with every projection in a different GGUF type, and a plain implementation of the same model
/// written from the equations (Double, one loop per sum, no tiling, no SIMD) to check the forward pass against.
@Suite("Forward pass against a plain implementation")
struct ForwardPassTests {
    static let hidden = 256, heads = 4, kvHeads = 2, ffn = 512, vocab = 96, layers = 2
    static var headDim: Int { hidden / heads }
    /// Logit differences allowed, relative to the largest logit magnitude (Float sums in another order, the half-
    /// precision cache turned off on both sides).
    static let tolerance = 2e-4

    static let types: [String: GGMLType] = [
        "token_embd.weight": .q8_0, "attn_q.weight": .q8_0, "attn_k.weight": .q4_K, "attn_v.weight": .q6_K,
        "attn_output.weight": .q5_0, "ffn_gate.weight": .q4_1, "ffn_up.weight": .f16, "ffn_down.weight": .q5_K,
        "output.weight": .bf16,
    ]

    static func values(_ n: Int, seed: UInt64, scale: Float) -> [Float] {
        var s = seed
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return (Float(Int64(bitPattern: s >> 11) % 2000) / 1000 - 1) * scale
        }
    }

    /// Experts of the mixture-of-experts models: 4 of width 256, 2 used per token.
    static let experts = 4, expertsUsed = 2, expertWidth = 256

    /// Writes the model; returns its path and the dequantized weights by name. `mixtral` is llama with experts,
    /// `qwen2moe` adds biases and a gated shared expert, `qwen3moe` q/k norms.
    static func makeModel(in dir: String, arch: String, statedExperts: (count: Int, used: Int)? = nil) throws -> (String, [String: [Float]]) {
        let path = dir + "/tiny-\(arch).gguf"
        let moe = arch.hasSuffix("moe") || arch == "mixtral"
        let ggufArch = arch == "mixtral" ? "llama" : arch
        var specs: [(String, [Int], GGMLType, Float)] = [("token_embd.weight", [hidden, vocab], .q8_0, 1),
                                                       ("output_norm.weight", [hidden], .f32, 1), ("output.weight", [hidden, vocab], .bf16, 0.2)]
        for l in 0..<layers {
            let p = "blk.\(l)."
            specs += [(p + "attn_norm.weight", [hidden], .f32, 1), (p + "ffn_norm.weight", [hidden], .f32, 1),
                      (p + "attn_q.weight", [hidden, hidden], types["attn_q.weight"]!, 0.15),
                      (p + "attn_k.weight", [hidden, kvHeads * headDim], types["attn_k.weight"]!, 0.15),
                      (p + "attn_v.weight", [hidden, kvHeads * headDim], types["attn_v.weight"]!, 0.2),
                      (p + "attn_output.weight", [hidden, hidden], types["attn_output.weight"]!, 0.1)]
            if moe {
                let (e, w) = (experts, expertWidth)
                specs += [(p + "ffn_gate_inp.weight", [hidden, e], .f32, 0.3),
                          (p + "ffn_gate_exps.weight", [hidden, w, e], .q4_K, 0.1),
                          (p + "ffn_up_exps.weight", [hidden, w, e], .f16, 0.1),
                          (p + "ffn_down_exps.weight", [w, hidden, e], .q8_0, 0.08)]
            } else {
                specs += [(p + "ffn_gate.weight", [hidden, ffn], types["ffn_gate.weight"]!, 0.1),
                          (p + "ffn_up.weight", [hidden, ffn], types["ffn_up.weight"]!, 0.1),
                          (p + "ffn_down.weight", [ffn, hidden], types["ffn_down.weight"]!, 0.08)]
            }
            if arch == "qwen2moe" {
                specs += [(p + "ffn_gate_inp_shexp.weight", [hidden], .f32, 0.2),
                          (p + "ffn_gate_shexp.weight", [hidden, ffn], .q5_K, 0.1),
                          (p + "ffn_up_shexp.weight", [hidden, ffn], .q6_K, 0.1),
                          (p + "ffn_down_shexp.weight", [ffn, hidden], .q4_0, 0.08)]
            }
            if arch.hasPrefix("qwen2") {
                specs += [(p + "attn_q.bias", [hidden], .f32, 0.1), (p + "attn_k.bias", [kvHeads * headDim], .f32, 0.1),
                          (p + "attn_v.bias", [kvHeads * headDim], .f32, 0.1)]
            }
            if arch.hasPrefix("qwen3") {
                specs += [(p + "attn_q_norm.weight", [headDim], .f32, 1), (p + "attn_k_norm.weight", [headDim], .f32, 1)]
            }
        }
        let arch = ggufArch
        var meta = [
            GGUFKeyValue("general.architecture", .string(GGUFString(arch))),
            GGUFKeyValue("\(arch).block_count", .uint32(UInt32(layers))),
            GGUFKeyValue("\(arch).embedding_length", .uint32(UInt32(hidden))),
            GGUFKeyValue("\(arch).feed_forward_length", .uint32(UInt32(ffn))),
            GGUFKeyValue("\(arch).attention.head_count", .uint32(UInt32(heads))),
            GGUFKeyValue("\(arch).attention.head_count_kv", .uint32(UInt32(kvHeads))),
            GGUFKeyValue("\(arch).rope.freq_base", .float32(10000)),
            GGUFKeyValue("\(arch).attention.layer_norm_rms_epsilon", .float32(1e-5)),
        ]
        if moe {
            let stated = statedExperts ?? (experts, expertsUsed)
            meta += [GGUFKeyValue("\(arch).expert_count", .uint32(UInt32(stated.count))),
                     GGUFKeyValue("\(arch).expert_used_count", .uint32(UInt32(stated.used)))]
        }
        let infos = try specs.map { try GGUFTensorInfo(name: $0.0, dimensions: $0.1, type: $0.2) }
        let writer = try GGUFWriter(path: path, metadata: meta, tensors: infos)
        var weights: [String: [Float]] = [:]
        var scratch = QuantScratch()
        for (i, s) in specs.enumerated() {
            let n = s.1.reduce(1, *)
            var v = values(n, seed: UInt64(i + 1), scale: s.3)
            if s.0.hasSuffix("norm.weight") { v = v.map { 1 + 0.3 * $0 } }
            var bytes = [UInt8](repeating: 0, count: infos[i].byteCount)
            var back = [Float](repeating: 0, count: n)
            v.withUnsafeBufferPointer { vp in bytes.withUnsafeMutableBytes { bp in
                BlockCodec.quantize(s.2, vp.baseAddress!, count: n, into: bp.baseAddress!, scratch: &scratch, kernels: .reference)
                back.withUnsafeMutableBufferPointer { BlockCodec.dequantize(s.2, bp.baseAddress!, count: n, into: $0.baseAddress!, kernels: .reference) }
            } }
            weights[s.0] = back
            try bytes.withUnsafeBytes { try writer.write($0) }
        }
        try writer.finish()
        return (path, weights)
    }

    /// The plain forward pass: y = W x as Σ over columns, RoPE on angle pos · 10000^(-2i/d), exact softmax; experts
    /// chosen by the largest softmax probabilities of the router, renormalized unless `renormalize` is false.
    static func plainLogits(_ w: [String: [Float]], _ tokens: [Int32], neox: Bool, renormalize: Bool = true) -> [[Double]] {
        let d = headDim, n = tokens.count, group = heads / kvHeads
        /// W x for matrix `index` of a stack of `rows` × `cols` matrices (0 for a plain matrix).
        func mat(_ name: String, _ x: [Double], rows: Int, cols: Int, index: Int = 0) -> [Double] {
            let m = w[name]!, base = index * rows * cols
            return (0..<rows).map { r in (0..<cols).reduce(0.0) { $0 + Double(m[base + r * cols + $1]) * x[$1] } }
        }
        func swiglu(_ x: [Double], _ stem: String, width: Int, suffix: String = "", index: Int = 0) -> [Double] {
            let g = mat(stem + "ffn_gate" + suffix + ".weight", x, rows: width, cols: hidden, index: index)
            let u = mat(stem + "ffn_up" + suffix + ".weight", x, rows: width, cols: hidden, index: index)
            let a = g.indices.map { g[$0] / (1 + exp(-g[$0])) * u[$0] }
            return mat(stem + "ffn_down" + suffix + ".weight", a, rows: hidden, cols: width, index: index)
        }
        func feedForward(_ x: [Double], _ p: String) -> [Double] {
            guard w[p + "ffn_gate_inp.weight"] != nil else { return swiglu(x, p, width: ffn) }
            let logits = mat(p + "ffn_gate_inp.weight", x, rows: experts, cols: hidden)
            let m = logits.max()!, z = logits.map { exp($0 - m) }.reduce(0, +)
            let probs = logits.map { exp($0 - m) / z }
            let chosen = probs.indices.sorted { probs[$0] > probs[$1] }.prefix(expertsUsed)
            let total = renormalize ? chosen.map { probs[$0] }.reduce(0, +) : 1
            var out = [Double](repeating: 0, count: hidden)
            for e in chosen {
                let y = swiglu(x, p, width: expertWidth, suffix: "_exps", index: e)
                for i in 0..<hidden { out[i] += probs[e] / total * y[i] }
            }
            if let g = w[p + "ffn_gate_inp_shexp.weight"] {
                let s = 1 / (1 + exp(-(0..<hidden).reduce(0.0) { $0 + Double(g[$1]) * x[$1] }))
                let y = swiglu(x, p, width: ffn, suffix: "_shexp")
                for i in 0..<hidden { out[i] += s * y[i] }
            }
            return out
        }
        func norm(_ x: [Double], _ name: String) -> [Double] {
            let g = w[name]!
            let s = 1 / (x.map { $0 * $0 }.reduce(0, +) / Double(x.count) + 1e-5).squareRoot()
            return x.indices.map { x[$0] * s * Double(g[$0]) }
        }
        /// Each head of d values normalized on its own (Qwen3's q/k norms), where the model has them.
        func headNorms(_ v: [Double], _ name: String) -> [Double] {
            guard w[name] != nil else { return v }
            return stride(from: 0, to: v.count, by: d).flatMap { norm(Array(v[$0..<($0 + d)]), name) }
        }
        func rope(_ v: inout [Double], pos: Int) {
            for h in 0..<(v.count / d) {
                for i in 0..<(d / 2) {
                    let theta = Double(pos) * pow(10000, -2 * Double(i) / Double(d))
                    let (a, b) = neox ? (h * d + i, h * d + i + d / 2) : (h * d + 2 * i, h * d + 2 * i + 1)
                    let x0 = v[a], x1 = v[b]
                    v[a] = x0 * cos(theta) - x1 * sin(theta)
                    v[b] = x0 * sin(theta) + x1 * cos(theta)
                }
            }
        }
        var x = tokens.map { t in (0..<hidden).map { Double(w["token_embd.weight"]![Int(t) * hidden + $0]) } }
        for l in 0..<layers {
            let p = "blk.\(l)."
            var q: [[Double]] = [], k: [[Double]] = [], v: [[Double]] = []
            for t in 0..<n {
                let h = norm(x[t], p + "attn_norm.weight")
                var qt = mat(p + "attn_q.weight", h, rows: hidden, cols: hidden)
                var kt = mat(p + "attn_k.weight", h, rows: kvHeads * d, cols: hidden)
                var vt = mat(p + "attn_v.weight", h, rows: kvHeads * d, cols: hidden)
                if let b = w[p + "attn_q.bias"] { qt = qt.indices.map { qt[$0] + Double(b[$0]) } }
                if let b = w[p + "attn_k.bias"] { kt = kt.indices.map { kt[$0] + Double(b[$0]) } }
                if let b = w[p + "attn_v.bias"] { vt = vt.indices.map { vt[$0] + Double(b[$0]) } }
                qt = headNorms(qt, p + "attn_q_norm.weight"); kt = headNorms(kt, p + "attn_k_norm.weight")
                rope(&qt, pos: t); rope(&kt, pos: t)
                q.append(qt); k.append(kt); v.append(vt)
            }
            for t in 0..<n {
                var att = [Double](repeating: 0, count: hidden)
                for h in 0..<heads {
                    let g = h / group
                    let s = (0...t).map { j in (0..<d).reduce(0.0) { $0 + q[t][h * d + $1] * k[j][g * d + $1] } / Double(d).squareRoot() }
                    let m = s.max()!
                    let e = s.map { exp($0 - m) }, z = e.reduce(0, +)
                    for j in 0...t { for c in 0..<d { att[h * d + c] += e[j] / z * v[j][g * d + c] } }
                }
                let o = mat(p + "attn_output.weight", att, rows: hidden, cols: hidden)
                x[t] = x[t].indices.map { x[t][$0] + o[$0] }
                let dn = feedForward(norm(x[t], p + "ffn_norm.weight"), p)
                x[t] = x[t].indices.map { x[t][$0] + dn[$0] }
            }
        }
        return x.map { mat("output.weight", norm($0, "output_norm.weight"), rows: vocab, cols: hidden) }
    }

    @Test("logits equal the plain implementation", arguments: ["llama", "qwen2", "qwen3", "mixtral", "qwen2moe", "qwen3moe"])
    func logits(arch: String) throws {
        let dir = NSTemporaryDirectory() + "ingot-forward-\(getpid())-\(arch)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (path, weights) = try ForwardPassTests.makeModel(in: dir, arch: arch)
        let model = try DecoderModel(gguf: try GGUFFile(path: path))
        model.halfPrecisionCache = false
        model.activationRounding = .exact
        let tokens: [Int32] = [1, 5, 17, 95, 3, 3, 40, 0, 66, 12, 7, 88, 21, 9, 50, 2, 31, 77, 4, 60, 8, 19, 44, 71, 26, 13, 90, 35, 58, 6, 23, 80, 14, 47, 39, 29]
        let want = ForwardPassTests.plainLogits(weights, tokens, neox: arch.hasPrefix("qwen"), renormalize: arch != "qwen2moe")
        let range = want.joined().map(abs).max()!
        for kernels in KernelChoice.allCases {
            let got = try model.logits(tokens, outputs: 0..<tokens.count, workspace: MatMulWorkspace(threads: 2), kernels: kernels)
            var worst = 0.0
            for t in 0..<tokens.count { for v in 0..<ForwardPassTests.vocab { worst = max(worst, abs(Double(got[t * ForwardPassTests.vocab + v]) - want[t][v])) } }
            #expect(worst <= ForwardPassTests.tolerance * range, "\(arch), \(kernels): max difference \(worst) of logits up to \(range)")
        }
        // Only the requested positions come back, equal to the same rows of a full run.
        let tail = try model.logits(tokens, outputs: 30..<36, workspace: MatMulWorkspace(threads: 1))
        let full = try model.logits(tokens, outputs: 0..<36, workspace: MatMulWorkspace(threads: 1))
        #expect(tail == Array(full[(30 * ForwardPassTests.vocab)...]))
    }

    @Test("a stacked expert tensor is replaced whole, each expert by its share of the bytes, and restored")
    func stackedReplacement() throws {
        let dir = NSTemporaryDirectory() + "ingot-forward-stack-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (path, weights) = try ForwardPassTests.makeModel(in: dir, arch: "mixtral")
        let model = try DecoderModel(gguf: try GGUFFile(path: path))
        (model.halfPrecisionCache, model.activationRounding) = (false, .exact)
        let tokens: [Int32] = [1, 5, 17, 95, 3, 3, 40, 0, 66, 12, 7, 88]
        let name = "blk.0.ffn_up_exps.weight"
        #expect(model.computes(name) && model.linear(named: name) == nil)
        func worst(_ want: [[Double]]) throws -> Double {
            let got = try model.logits(tokens, outputs: 0..<tokens.count, workspace: MatMulWorkspace(threads: 2))
            var w = 0.0
            for t in 0..<tokens.count { for v in 0..<ForwardPassTests.vocab { w = max(w, abs(Double(got[t * ForwardPassTests.vocab + v]) - want[t][v])) } }
            return w
        }
        var zeroed = weights
        zeroed[name] = [Float](repeating: 0, count: weights[name]!.count)
        let want = ForwardPassTests.plainLogits(zeroed, tokens, neox: false), original = ForwardPassTests.plainLogits(weights, tokens, neox: false)
        let range = want.joined().map(abs).max()!
        try model.replaceWeight(name, type: .f16, bytes: [UInt8](repeating: 0, count: weights[name]!.count * 2))
        #expect(try worst(want) <= ForwardPassTests.tolerance * range)
        #expect(try worst(original) > 100 * ForwardPassTests.tolerance * range)
        model.restoreWeight(name)
        #expect(try worst(original) <= ForwardPassTests.tolerance * range)
        #expect(throws: ModelError.self) { try model.replaceWeight(name, type: .f16, bytes: [0, 0, 0]) }
    }

    @Test("linear layers are observed by name; layers run one at a time; a weight can be replaced in memory")
    func observableParts() throws {
        let dir = NSTemporaryDirectory() + "ingot-forward-parts-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (path, _) = try ForwardPassTests.makeModel(in: dir, arch: "qwen2")
        let model = try DecoderModel(gguf: try GGUFFile(path: path))
        let tokens: [Int32] = [1, 5, 17, 95, 3, 3, 40, 0, 66, 12]
        let ws = MatMulWorkspace(threads: 2)
        final class Recorder: LinearObserver {
            var seen: [(String, Int, Int, Float)] = []
            func observe(_ tensor: String, matrix: MatrixIndex?, input: UnsafeBufferPointer<Float>, rows: Int, columns: Int) {
                seen.append((tensor, rows, columns, input.reduce(0) { $0 + $1 * $1 }))
            }
        }
        let recorder = Recorder()
        model.observer = recorder
        let full = try model.logits(tokens, outputs: 0..<tokens.count, workspace: ws)
        model.observer = nil
        let names = recorder.seen.map(\.0)
        #expect(names.count == model.blocks.count * 7 + 1)
        #expect(Array(names.prefix(7)) == ["blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight", "blk.0.attn_output.weight",
                                          "blk.0.ffn_gate.weight", "blk.0.ffn_up.weight", "blk.0.ffn_down.weight"])
        #expect(names.last == "output.weight")
        #expect(names == model.linears.map(\.name), "the model lists its linear layers in the order it runs them")
        #expect(recorder.seen.allSatisfy { $0.1 == tokens.count || $0.0 == "output.weight" })
        #expect(recorder.seen.allSatisfy { $0.3 > 0 && $0.3.isFinite })
        // embed, each layer, head: the same logits as one call, with one run state reused.
        let state = RunState()
        var x = try model.embed(tokens)
        for i in model.blocks.indices { model.runLayer(i, &x, tokens: tokens.count, workspace: ws, state: state) }
        #expect(model.head(x, outputs: 0..<tokens.count, workspace: ws) == full)
        #expect(try model.logits(tokens, outputs: 0..<tokens.count, workspace: ws, state: state) == full)
        // A replaced weight changes the output; a wrong size is refused.
        let n = model.hidden * model.ffn
        try model.replaceWeight("blk.0.ffn_down.weight", values: [Float](repeating: 0, count: n))
        #expect(try model.logits(tokens, outputs: 0..<tokens.count, workspace: ws) != full)
        #expect(throws: ModelError.self) { try model.replaceWeight("blk.0.ffn_down.weight", values: [1, 2]) }
        #expect(throws: ModelError.self) { try model.replaceWeight("blk.9.ffn_down.weight", values: []) }
    }

    @Test("experts are observed one by one, each on the tokens routed to it")
    func observedExperts() throws {
        let dir = NSTemporaryDirectory() + "ingot-forward-experts-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (path, _) = try ForwardPassTests.makeModel(in: dir, arch: "qwen2moe")
        let model = try DecoderModel(gguf: try GGUFFile(path: path))
        final class Recorder: LinearObserver {
            var rows: [String: [Int]] = [:]
            func observe(_ tensor: String, matrix: MatrixIndex?, input: UnsafeBufferPointer<Float>, rows n: Int, columns: Int) {
                let e = matrix ?? MatrixIndex(index: 0, count: 1, routed: true)
                rows[tensor, default: [Int](repeating: 0, count: e.count)][e.index] += n
            }
        }
        let recorder = Recorder()
        model.observer = recorder
        let tokens: [Int32] = [1, 5, 17, 95, 3, 3, 40, 0, 66, 12, 7, 88, 21, 9, 50, 2, 31, 77, 4, 60]
        _ = try model.logits(tokens, outputs: 0..<tokens.count, workspace: MatMulWorkspace(threads: 2))
        for l in 0..<ForwardPassTests.layers {
            let p = "blk.\(l)."
            for stem in ["ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"] {
                let r = recorder.rows[p + stem + ".weight"] ?? []
                #expect(r.count == ForwardPassTests.experts && r.reduce(0, +) == tokens.count * ForwardPassTests.expertsUsed,
                        "\(p + stem): \(r) rows per expert")
            }
            #expect(recorder.rows[p + "ffn_gate_exps.weight"] == recorder.rows[p + "ffn_down_exps.weight"])
            for stem in ["ffn_gate_inp", "ffn_gate_inp_shexp", "ffn_gate_shexp", "ffn_down_shexp"] {
                #expect(recorder.rows[p + stem + ".weight"] == [tokens.count], "\(p + stem)")
            }
        }
        // Routing is uneven on this text: some expert of some layer gets more than its even share.
        let share = tokens.count * ForwardPassTests.expertsUsed / ForwardPassTests.experts
        #expect(recorder.rows.filter { $0.key.hasSuffix("_exps.weight") }.contains { $0.value.contains { $0 != share } })
    }

    @Test("bad models and tokens are typed errors")
    func errors() throws {
        let dir = NSTemporaryDirectory() + "ingot-forward-err-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (path, _) = try ForwardPassTests.makeModel(in: dir, arch: "llama")
        let model = try DecoderModel(gguf: try GGUFFile(path: path))
        #expect(throws: ModelError.self) { try model.logits([1, 96], outputs: 0..<2, workspace: MatMulWorkspace(threads: 1)) }
        // Experts: a router with another number of rows than the stated experts; more experts used than there are.
        let (wrongCount, _) = try ForwardPassTests.makeModel(in: dir, arch: "mixtral", statedExperts: (3, 2))
        do {
            _ = try DecoderModel(gguf: try GGUFFile(path: wrongCount))
            Issue.record("a router of 4 rows was accepted for 3 experts")
        } catch let e as ModelError {
            #expect(e.code == .shapeMismatch && e.field == "blk.0.ffn_gate_inp.weight" && e.offset != nil, "\(e)")
        }
        let (tooMany, _) = try ForwardPassTests.makeModel(in: dir, arch: "qwen3moe", statedExperts: (4, 5))
        do {
            _ = try DecoderModel(gguf: try GGUFFile(path: tooMany))
            Issue.record("5 experts used of 4 was accepted")
        } catch let e as ModelError {
            #expect(e.code == .invalidValue && e.field == "qwen3moe.expert_used_count", "\(e)")
        }
        let other = dir + "/gpt.gguf"
        let w = try GGUFWriter(path: other, metadata: [GGUFKeyValue("general.architecture", .string("gptj"))], tensors: [])
        try w.finish()
        do {
            _ = try DecoderModel(gguf: try GGUFFile(path: other))
            Issue.record("an unsupported architecture was accepted")
        } catch let e as ModelError {
            #expect(e.code == .unsupportedArchitecture && e.field == "general.architecture" && e.offset != nil)
        }
    }
}
