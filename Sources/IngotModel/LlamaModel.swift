import IngotFormats
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IngotNumerics

/// A decoder-only transformer of the Llama family (Llama 2/3, SmolLM, Mistral, Qwen2/2.5), run on the weights as
/// the file stores them: every projection is a `StoredMatrix` of its GGUF type, multiplied by `QuantizedMatMul`.
///
/// Each block runs as `runLayer` writes out (norms, attention with optional biases, per-head q/k norms and rotary
/// variants, SwiGLU MLP), chosen by the architecture's table;
/// then logits = (rmsnorm(x) · output_norm)·Woutputᵀ (the token embedding when the output is tied).
/// Every linear layer is named by its GGUF tensor and seen by `observer` when one is set.
public final class LlamaModel: CausalLM, @unchecked Sendable {
    public struct Layer {
        var attnNorm: [Float], ffnNorm: [Float]
        var q: StoredMatrix, k: StoredMatrix, v: StoredMatrix, o: StoredMatrix
        var qBias: [Float]?, kBias: [Float]?, vBias: [Float]?
        /// Qwen3's RMS norms over each q and k head (head size values each).
        var qNorm: [Float]?, kNorm: [Float]?
        var gate: StoredMatrix, up: StoredMatrix, down: StoredMatrix
        /// The GGUF names of the linear layers (`blk.N.attn_q.weight`), by which observers see them and weights are
        /// replaced.
        let names: LinearNames
    }

    struct LinearNames {
        let q, k, v, o, gate, up, down: String
        init(block i: Int) {
            let p = "blk.\(i)."
            (q, k, v, o) = (p + "attn_q.weight", p + "attn_k.weight", p + "attn_v.weight", p + "attn_output.weight")
            (gate, up, down) = (p + "ffn_gate.weight", p + "ffn_up.weight", p + "ffn_down.weight")
        }
    }

    public let path: String
    public let architecture: String
    public private(set) var layers: [Layer]
    public let embedding: StoredMatrix
    public private(set) var output: StoredMatrix
    public let outputNorm: [Float]
    public let hidden: Int, heads: Int, kvHeads: Int, headDim: Int, ffn: Int, vocab: Int
    public let ropeDims: Int, ropeBase: Float, ropeStyle: RopeStyle
    public let ropeFactors: [Float]?
    public let eps: Float
    public let trainedContext: Int?
    /// Round K and V to half precision as llama.cpp's F16 cache does (on by default).
    public var halfPrecisionCache = true
    /// Round the activations to each weight's llama.cpp dot-product format (on by default; see `ActivationRounding`).
    public var activationRounding: ActivationRounding = .llamaCpp
    /// The file or folder whose memory map the weights point into.
    let storage: AnyObject
    /// Sees the input rows of every linear layer (calibration); nil costs nothing.
    public var observer: LinearObserver?
    /// Weights put in place of stored ones (`replaceWeight`), owned by the model.
    private var replacements: [[Float]] = []

    public var description: String {
        "\(architecture), \(layers.count) layers, hidden \(hidden), heads \(heads)/\(kvHeads), ffn \(ffn), vocab \(vocab)"
    }

    /// The architectures this forward pass runs: dense decoders of the llama family.
    public static let supported: [Architecture] = [.llama, .mistral, .qwen2, .qwen3]

    /// A tensor as the loader finds it: GGML type, dims fastest-first, data, and where its entry is in the file.
    struct TensorRef {
        var name: String, type: GGMLType, dims: [Int], data: UnsafeRawPointer, entryOffset: Int?
    }

    static func table(_ spec: ModelSpec, field: String, offset: Int?, path: String) throws -> Architecture {
        guard let table = spec.table, supported.contains(where: { $0.name == table.name }), (spec.expertCount ?? 0) <= 1 else {
            let what = (spec.expertCount ?? 0) > 1 ? "mixture-of-experts \(spec.architecture ?? "?")" : "architecture '\(spec.architecture ?? "?")'"
            throw ModelError(.unsupportedArchitecture, field: field, offset: offset,
                             "\(what) has no forward pass yet (\(supported.map(\.name).joined(separator: ", ")) do)", path: path)
        }
        return table
    }

    /// Reads a GGUF model (llama.cpp's tensor names and keys).
    public convenience init(gguf g: GGUFFile) throws {
        let spec = ModelSpec(gguf: g)
        let table = try LlamaModel.table(spec, field: "general.architecture",
                                         offset: g.metadata.first { $0.key == "general.architecture" }?.fileOffset, path: g.path)
        try self.init(path: g.path, spec: spec, table: table, ropeStyle: table.ggufRopeStyle, storage: g, ropeFactors: nil) { name in
            guard let t = g.tensor(named: name), let data = g.data(for: t).baseAddress else { return nil }
            return TensorRef(name: name, type: t.type, dims: t.dimensions, data: data, entryOffset: t.infoOffset)
        }
    }

    /// Reads a Hugging Face folder (config.json and safetensors with Transformers' tensor names, found through the
    /// architecture's table). Its q/k projections are in Hugging Face's layout, so RoPE rotates the halves of each
    /// head; Llama 3.1's `rope_scaling` becomes the same per-frequency divisors llama.cpp stores as `rope_freqs`.
    public convenience init(huggingFace d: HFModelDirectory) throws {
        guard let c = d.config else {
            throw ModelError(.missingField, field: "config.json", "the folder has no config.json", path: d.path)
        }
        let spec = ModelSpec(config: c, files: d.files)
        let table = try LlamaModel.table(spec, field: "config.json model_type", offset: nil, path: d.path)
        if let other = spec.otherRopeScaling {
            throw ModelError(.unsupportedArchitecture, field: "config.json rope_scaling",
                             "RoPE scaling '\(other)' is not supported (llama3 is)", path: d.path)
        }
        var factors: [Float]?
        if let rs = spec.ropeScaling, let dims = spec.ropeDimensions {
            factors = rs.llama3Factors(base: spec.ropeFreqBase ?? 10000, dims: dims)
        }
        var byName: [String: FolderTensor] = [:]
        for t in try FolderTensors.read(d) { byName[t.name] = t }
        let tied = spec.tiedEmbeddings ?? false
        // FP8 weights are decoded once, at load, into F32 matrices this model keeps.
        let decoded = DecodedWeights(folder: d)
        try self.init(path: d.path, spec: spec, table: table, ropeStyle: .halves, storage: decoded, ropeFactors: factors) { name in
            if name == "output.weight" && tied { return nil }
            guard let hf = table.hfName(forGGUF: name)?.name, let t = byName[hf] else { return nil }
            switch t.storage {
            case .float(let type, let data, _):
                return TensorRef(name: hf, type: type, dims: t.shape.reversed(), data: data, entryOffset: nil)
            case .fp8(let f):
                return TensorRef(name: hf, type: .f32, dims: t.shape.reversed(), data: decoded.decode(f), entryOffset: nil)
            }
        }
    }

    init(path: String, spec: ModelSpec, table: Architecture, ropeStyle style: RopeStyle, storage: AnyObject,
         ropeFactors factors: [Float]?, find: (String) -> TensorRef?) throws {
        self.storage = storage
        self.path = path
        architecture = table.name
        ropeStyle = style
        hidden = try spec.require(.hiddenSize, path: path)
        heads = try spec.require(.headCount, path: path)
        kvHeads = spec.int(.kvHeadCount) == nil ? heads : try spec.require(.kvHeadCount, path: path)
        ffn = try spec.require(.feedForwardSize, path: path)
        headDim = spec.int(.keyLength) == nil ? hidden / heads : try spec.require(.keyLength, path: path)
        let ropeDimensions = spec.int(.ropeDimensionCount) == nil ? headDim : try spec.require(.ropeDimensionCount, path: path)
        let blocks = try spec.require(.layerCount, path: path)
        ropeBase = Float(spec.ropeFreqBase ?? 10000)
        eps = Float(spec.rmsNormEpsilon ?? 1e-5)
        trainedContext = spec.contextLength
        ropeDims = min(ropeDimensions, headDim) & ~1
        guard heads % kvHeads == 0, headDim > 0, headDim % 2 == 0 else {
            throw ModelError(.invalidValue, field: "\(table.name) head counts",
                             "\(heads) heads cannot share \(kvHeads) KV heads of size \(headDim)", path: path)
        }
        func matrix(_ name: String, rows: Int?, cols: Int) throws -> StoredMatrix {
            guard let t = find(name) else {
                throw ModelError(.missingTensor, field: name, "the model has no tensor for '\(name)'", path: path)
            }
            let d = t.dims
            guard d.count == 2, d[0] == cols, rows == nil || d[1] == rows else {
                throw ModelError(.shapeMismatch, field: t.name, offset: t.entryOffset,
                                 "expected [\(rows.map(String.init) ?? "*"), \(cols)] (rows, columns), found \(Array(d.reversed()))",
                                 path: path)
            }
            guard t.type != .f64, let m = StoredMatrix(type: t.type, rows: d[1], cols: d[0], data: t.data) else {
                throw ModelError(.unsupportedTensorType, field: t.name, offset: t.entryOffset,
                                 "tensor type \(t.type) cannot be computed on", path: path)
            }
            return m
        }
        func vector(_ name: String, _ n: Int, required: Bool = true) throws -> [Float]? {
            guard let t = find(name) else {
                if !required { return nil }
                throw ModelError(.missingTensor, field: name, "the model has no tensor for '\(name)'", path: path)
            }
            guard n > 0, t.dims.reduce(1, *) == n, t.type != .f64, BlockCodec.canDequantize(t.type), n % t.type.blockSize == 0 else {
                throw ModelError(.shapeMismatch, field: t.name, offset: t.entryOffset,
                                 "expected \(n) values, found \(t.dims) of \(t.type)", path: path)
            }
            var out = [Float](repeating: 0, count: n)
            out.withUnsafeMutableBufferPointer { BlockCodec.dequantize(t.type, t.data, count: n, into: $0.baseAddress!) }
            return out
        }
        embedding = try matrix("token_embd.weight", rows: nil, cols: hidden)
        vocab = embedding.rows
        output = find("output.weight") != nil ? try matrix("output.weight", rows: vocab, cols: hidden) : embedding
        outputNorm = try vector("output_norm.weight", hidden)!
        ropeFactors = try factors ?? vector("rope_freqs.weight", ropeDims / 2, required: false)
        let qd = heads * headDim, kvd = kvHeads * headDim
        var layers: [Layer] = []
        for i in 0..<blocks {
            let p = "blk.\(i)."
            layers.append(Layer(
                attnNorm: try vector(p + "attn_norm.weight", hidden)!, ffnNorm: try vector(p + "ffn_norm.weight", hidden)!,
                q: try matrix(p + "attn_q.weight", rows: qd, cols: hidden),
                k: try matrix(p + "attn_k.weight", rows: kvd, cols: hidden),
                v: try matrix(p + "attn_v.weight", rows: kvd, cols: hidden),
                o: try matrix(p + "attn_output.weight", rows: hidden, cols: qd),
                qBias: try vector(p + "attn_q.bias", qd, required: false),
                kBias: try vector(p + "attn_k.bias", kvd, required: false),
                vBias: try vector(p + "attn_v.bias", kvd, required: false),
                qNorm: try vector(p + "attn_q_norm.weight", headDim, required: table.role("attn_q_norm") != nil),
                kNorm: try vector(p + "attn_k_norm.weight", headDim, required: table.role("attn_k_norm") != nil),
                gate: try matrix(p + "ffn_gate.weight", rows: ffn, cols: hidden),
                up: try matrix(p + "ffn_up.weight", rows: ffn, cols: hidden),
                down: try matrix(p + "ffn_down.weight", rows: hidden, cols: ffn),
                names: LinearNames(block: i)))
        }
        self.layers = layers
    }

    /// A folder's memory map and the weights decoded from it at load (FP8 with scales), owned for the model's lifetime.
    final class DecodedWeights {
        let folder: HFModelDirectory
        var buffers: [UnsafeMutableBufferPointer<Float>] = []
        init(folder: HFModelDirectory) { self.folder = folder }
        deinit { buffers.forEach { $0.deallocate() } }

        func decode(_ f: ScaledFP8) -> UnsafeRawPointer {
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, f.rows * f.cols))
            for r in 0..<f.rows { f.decodeRow(r, into: b.baseAddress! + r * f.cols) }
            buffers.append(b)
            return UnsafeRawPointer(b.baseAddress!)
        }
    }

    /// Opens a GGUF file or a Hugging Face folder.
    public static func open(_ model: ModelFile) throws -> LlamaModel {
        switch model.storage {
        case .gguf(let g): return try LlamaModel(gguf: g)
        case .huggingFaceFolder(let d): return try LlamaModel(huggingFace: d)
        case .safetensors:
            throw ModelError(.unsupportedArchitecture, field: "format",
                             "a lone safetensors file has no config; give its Hugging Face folder", path: model.path)
        }
    }

    // MARK: forward pass

    /// Logits for positions `outputs` of one window of `tokens` (positions 0..<n): `outputs.count × vocab` floats.
    /// `state` holds the buffers of a run (allocated once and reused from window to window); nil allocates them.
    public func logits(_ tokens: [Int32], outputs: Range<Int>, workspace: MatMulWorkspace,
                       kernels: KernelChoice = Kernels.choice, state: RunState? = nil) throws -> [Float] {
        let n = tokens.count
        precondition(outputs.lowerBound >= 0 && outputs.upperBound <= n, "outputs outside the window")
        let run = state ?? RunState()
        var x = try embed(tokens, kernels: kernels)
        for i in layers.indices {
            runLayer(i, &x, tokens: n, workspace: workspace, kernels: kernels, state: run)
        }
        return head(x, outputs: outputs, workspace: workspace, kernels: kernels)
    }

    /// The token embeddings of a window: n × hidden floats.
    public func embed(_ tokens: [Int32], kernels: KernelChoice = Kernels.choice) throws -> [Float] {
        for (i, t) in tokens.enumerated() where t < 0 || Int(t) >= vocab {
            throw ModelError(.invalidToken, field: "token[\(i)]", "token id \(t) is outside the vocabulary of \(vocab)", path: path)
        }
        var x = [Float](repeating: 0, count: tokens.count * hidden)
        x.withUnsafeMutableBufferPointer { xp in
            for (i, t) in tokens.enumerated() {
                embedding.dequantize(rows: Int(t), count: 1, into: xp.baseAddress! + i * hidden, kernels: kernels)
            }
        }
        return x
    }

    /// Runs block `i` over the hidden states `x` of a window of `n` tokens (positions 0..<n), in place: one layer at
    /// a time, as GPTQ-style calibration runs a batch of windows through each layer before the next.
    ///
    /// Per block (d = head size, h = heads, g = KV heads):
    ///
    ///     x̂ = rmsnorm(x) · attn_norm
    ///     q, k, v = x̂·Wqᵀ (+bq), x̂·Wkᵀ (+bk), x̂·Wvᵀ (+bv)        n×hd, n×gd, n×gd
    ///     q, k = rmsnorm per head · q_norm, k_norm               (qwen3)
    ///     rotate q, k by position (RoPE)                          GGUF llama: pairs (2i, 2i+1); NeoX/HF: (i, i+d/2)
    ///     k, v rounded to half precision                          as llama.cpp's default F16 KV cache holds them
    ///     a_head = softmax(q_head·k_groupᵀ / √d, causal) · v_group  query head j reads KV head j / (h/g)
    ///     x += a·Woᵀ
    ///     x̂ = rmsnorm(x) · ffn_norm
    ///     x += (silu(x̂·Wgateᵀ) ⊙ x̂·Wupᵀ)·Wdownᵀ
    public func runLayer(_ i: Int, _ x: inout [Float], tokens n: Int, workspace: MatMulWorkspace,
                         kernels: KernelChoice = Kernels.choice, state: RunState) {
        let layer = layers[i]
        let qd = heads * headDim, kvd = kvHeads * headDim
        state.prepare(tokens: n, hidden: hidden, qd: qd, kvd: kvd, ffn: ffn, threads: workspace.threads, model: self)
        norm(x, layer.attnNorm, n, into: &state.xn)
        mul(layer.q, layer.names.q, state.xn, n, into: &state.q, ws: workspace, kernels: kernels)
        mul(layer.k, layer.names.k, state.xn, n, into: &state.k, ws: workspace, kernels: kernels)
        mul(layer.v, layer.names.v, state.xn, n, into: &state.v, ws: workspace, kernels: kernels)
        if let b = layer.qBias { addBias(&state.q, b, n) }
        if let b = layer.kBias { addBias(&state.k, b, n) }
        if let b = layer.vBias { addBias(&state.v, b, n) }
        if let w = layer.qNorm { headNorm(&state.q, w, n * heads) }
        if let w = layer.kNorm { headNorm(&state.k, w, n * kvHeads) }
        rope(&state.q, n, heads, state.cosTable, state.sinTable)
        rope(&state.k, n, kvHeads, state.cosTable, state.sinTable)
        if halfPrecisionCache {
            state.k.withUnsafeMutableBufferPointer { ActivationRounding.roundTrip($0.baseAddress!, count: n * kvd, cols: kvd, through: .f16) }
            state.v.withUnsafeMutableBufferPointer { ActivationRounding.roundTrip($0.baseAddress!, count: n * kvd, cols: kvd, through: .f16) }
        }
        state.v.withUnsafeBufferPointer { vp in state.vt.withUnsafeMutableBufferPointer { tp in
            for t in 0..<n { for c in 0..<kvd { tp[c * n + t] = vp[t * kvd + c] } }
        } }
        attention(state.q, state.k, state.vt, n, scores: state.scores, into: &state.att, threads: workspace.threads, kernels: kernels)
        mul(layer.o, layer.names.o, state.att, n, into: &state.xn, ws: workspace, kernels: kernels)
        LlamaModel.addResidual(&x, state.xn, n * hidden)
        norm(x, layer.ffnNorm, n, into: &state.xn)
        mul(layer.gate, layer.names.gate, state.xn, n, into: &state.g, ws: workspace, kernels: kernels)
        mul(layer.up, layer.names.up, state.xn, n, into: &state.u, ws: workspace, kernels: kernels)
        state.g.withUnsafeMutableBufferPointer { gp in state.u.withUnsafeBufferPointer { up in
            Activations.siluMul(gp.baseAddress!, up.baseAddress!, n * ffn)
        } }
        mul(layer.down, layer.names.down, state.g, n, into: &state.xn, ws: workspace, kernels: kernels)
        LlamaModel.addResidual(&x, state.xn, n * hidden)
    }

    static func addResidual(_ x: inout [Float], _ y: [Float], _ count: Int) {
        x.withUnsafeMutableBufferPointer { xp in y.withUnsafeBufferPointer { yp in
            for j in 0..<count { xp[j] += yp[j] }
        } }
    }

    /// The output norm and projection for positions `outputs` of hidden states `x`: `outputs.count × vocab` logits.
    public func head(_ x: [Float], outputs: Range<Int>, workspace: MatMulWorkspace, kernels: KernelChoice = Kernels.choice) -> [Float] {
        let m = outputs.count
        var last = [Float](repeating: 0, count: m * hidden)
        x.withUnsafeBufferPointer { xp in outputNorm.withUnsafeBufferPointer { wp in last.withUnsafeMutableBufferPointer { lp in
            for (j, t) in outputs.enumerated() {
                Activations.rmsNorm(xp.baseAddress! + t * hidden, wp.baseAddress!, hidden, eps: eps, into: lp.baseAddress! + j * hidden)
            }
        } } }
        var logits = [Float](repeating: 0, count: m * vocab)
        mul(output, "output.weight", last, m, into: &logits, ws: workspace, kernels: kernels)
        return logits
    }

    /// Puts `values` (rows × columns floats, F32) in place of the linear layer named `name` (its GGUF name,
    /// `blk.3.ffn_down.weight`): what a calibration search tries before choosing.
    public func replaceWeight(_ name: String, values: [Float]) throws {
        func swap(_ m: inout StoredMatrix) throws {
            guard values.count == m.rows * m.cols else {
                throw ModelError(.shapeMismatch, field: name, "\(values.count) values for a \(m.rows) x \(m.cols) weight", path: path)
            }
            replacements.append(values)
            let data = replacements[replacements.count - 1].withUnsafeBytes { UnsafeRawPointer($0.baseAddress!) }
            guard let replacement = StoredMatrix(type: .f32, rows: m.rows, cols: m.cols, data: data) else {
                throw ModelError(.shapeMismatch, field: name, "cannot hold a \(m.rows) x \(m.cols) F32 matrix", path: path)
            }
            m = replacement
        }
        if name == "output.weight" { return try swap(&output) }
        for i in layers.indices {
            let n = layers[i].names
            switch name {
            case n.q: return try swap(&layers[i].q)
            case n.k: return try swap(&layers[i].k)
            case n.v: return try swap(&layers[i].v)
            case n.o: return try swap(&layers[i].o)
            case n.gate: return try swap(&layers[i].gate)
            case n.up: return try swap(&layers[i].up)
            case n.down: return try swap(&layers[i].down)
            default: continue
            }
        }
        throw ModelError(.missingTensor, field: name, "the model has no linear layer of that name", path: path)
    }

    private func norm(_ x: [Float], _ w: [Float], _ n: Int, into out: inout [Float]) {
        let d = hidden
        x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in out.withUnsafeMutableBufferPointer { op in
            for t in 0..<n { Activations.rmsNorm(xp.baseAddress! + t * d, wp.baseAddress!, d, eps: eps, into: op.baseAddress! + t * d) }
        } } }
    }

    private func mul(_ w: StoredMatrix, _ name: String, _ x: [Float], _ n: Int, into y: inout [Float], ws: MatMulWorkspace,
                     kernels: KernelChoice) {
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            observer?.observe(name, input: UnsafeBufferPointer(rebasing: xp[0..<(n * w.cols)]), rows: n, columns: w.cols)
            QuantizedMatMul.multiply(w, xp.baseAddress!, tokens: n, yp.baseAddress!, ldy: w.rows, workspace: ws,
                                     activations: activationRounding, kernels: kernels)
        } }
    }

    /// RMS norm over each head of `count` rows of `headDim` values, in place (Qwen3's q/k norms).
    private func headNorm(_ y: inout [Float], _ w: [Float], _ count: Int) {
        let d = headDim
        y.withUnsafeMutableBufferPointer { yp in w.withUnsafeBufferPointer { wp in
            for r in 0..<count { Activations.rmsNorm(yp.baseAddress! + r * d, wp.baseAddress!, d, eps: eps, into: yp.baseAddress! + r * d) }
        } }
    }

    private func addBias(_ y: inout [Float], _ b: [Float], _ n: Int) {
        let d = b.count
        for t in 0..<n { for i in 0..<d { y[t * d + i] += b[i] } }
    }

    /// cos/sin of position · θ_i for i < ropeDims/2, with θ_i = base^(-2i/ropeDims) built by repeated
    /// multiplication in Float as ggml's rope cache does (divided by rope_freqs where the model has them).
    func ropeTables(_ n: Int) -> ([Float], [Float]) {
        let half = ropeDims / 2
        var c = [Float](repeating: 1, count: n * half), s = [Float](repeating: 0, count: n * half)
        let thetaScale = powf(ropeBase, -2 / Float(ropeDims))
        for p in 0..<n {
            var theta = Float(p)
            for i in 0..<half {
                let t = theta / (ropeFactors?[i] ?? 1)
                c[p * half + i] = cosf(t)
                s[p * half + i] = sinf(t)
                theta *= thetaScale
            }
        }
        return (c, s)
    }

    private func rope(_ y: inout [Float], _ n: Int, _ nHeads: Int, _ c: [Float], _ s: [Float]) {
        let half = ropeDims / 2, d = headDim
        for t in 0..<n {
            for h in 0..<nHeads {
                let base = (t * nHeads + h) * d
                for i in 0..<half {
                    let (a, b) = ropeStyle == .adjacentPairs ? (base + 2 * i, base + 2 * i + 1) : (base + i, base + i + half)
                    let x0 = y[a], x1 = y[b], cc = c[t * half + i], ss = s[t * half + i]
                    y[a] = x0 * cc - x1 * ss
                    y[b] = x0 * ss + x1 * cc
                }
            }
        }
    }

    /// Queries per attention block: each block scores only the keys it can see, in a 32 × n buffer per worker.
    static let queryBlock = 32

    /// Causal attention, one head per job, queries in blocks of `queryBlock`.
    private func attention(_ q: [Float], _ k: [Float], _ vt: [Float], _ n: Int, scores: [ReusableBuffer],
                           into out: inout [Float], threads: Int, kernels: KernelChoice) {
        let qd = heads * headDim, kvd = kvHeads * headDim, d = headDim, group = heads / kvHeads
        let scale = 1 / Float(d).squareRoot()
        q.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in vt.withUnsafeBufferPointer { vp in
            out.withUnsafeMutableBufferPointer { op in
                let qs = UnsafeSendable(qp.baseAddress!), ks = UnsafeSendable(kp.baseAddress!)
                let vs = UnsafeSendable(vp.baseAddress!), os = UnsafeSendable(UnsafePointer(op.baseAddress!))
                try? parallelFor(0..<heads, threads: threads) { h, worker in
                    let s = scores[worker].get(LlamaModel.queryBlock * n * 4).baseAddress!.assumingMemoryBound(to: Float.self)
                    let kvh = h / group
                    let o = UnsafeMutablePointer(mutating: os.pointer)
                    var t0 = 0
                    while t0 < n {
                        let tb = min(LlamaModel.queryBlock, n - t0), keys = t0 + tb
                        MatMul.gemm(qs.pointer + t0 * qd + h * d, ldx: qd, ks.pointer + kvh * d, ldw: kvd, k: d,
                                    tokens: tb, rows: keys, s, ldy: n, kernels: kernels)
                        for t in t0..<(t0 + tb) {
                            let row = s + (t - t0) * n
                            Activations.softmax(row, t + 1, scale: scale)
                            for j in (t + 1)..<max(t + 1, keys) { row[j] = 0 }
                        }
                        MatMul.gemm(s, ldx: n, vs.pointer + kvh * d * n, ldw: n, k: keys,
                                    tokens: tb, rows: d, o + t0 * qd + h * d, ldy: qd, kernels: kernels)
                        t0 += tb
                    }
                }
            }
        } } }
    }
}
