#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IngotFormats
import IngotNumerics

/// A decoder-only transformer composed from parts (`Parts.swift`) as its architecture's `BlockShape` says: token
/// embedding, blocks of pre-norm residual branches (attention variants, feed-forward variants), then
/// logits = (rmsnorm(x) · output_norm)·Woutputᵀ (the token embedding when the output is tied). It runs on the weights
/// as the file stores them: every projection is a `Linear` of its GGUF type, multiplied by `QuantizedMatMul`.
///
/// Every linear layer is named by its GGUF tensor and seen by `observer` when one is set; blocks run one at a time
/// (`runLayer`); a weight can be replaced in memory (`replaceWeight`).
public final class DecoderModel: CausalLM, @unchecked Sendable {
    public let path: String
    public let architecture: String
    public internal(set) var blocks: [Block]
    public let embedding: StoredMatrix
    public let output: Linear
    public let outputNorm: RMSNorm
    public let hidden: Int, heads: Int, kvHeads: Int, headDim: Int, ffn: Int, vocab: Int
    public let rotary: Rotary
    public let trainedContext: Int?
    /// Round K and V to half precision as llama.cpp's F16 cache does (on by default).
    public var halfPrecisionCache = true
    /// Round the activations to each weight's llama.cpp dot-product format (on by default; see `ActivationRounding`).
    public var activationRounding: ActivationRounding = .llamaCpp
    /// The file or folder whose memory map the weights point into.
    let storage: AnyObject
    /// Sees the input rows of every linear layer (calibration); nil costs nothing.
    public var observer: LinearObserver?
    /// Drop each block's weight pages from memory once the block has run (the next window maps them again from the
    /// page cache, or the disk under memory pressure): resident memory stays about one block's weights whatever the
    /// number of blocks, at no measurable cost (SmolLM2 F16, 8 windows: 12.2-14.0 s either way). GGUF models (a
    /// folder's weights are held as read).
    public var releasesBlockWeights = true
    /// Per block: drops its tensors' pages (GGUF).
    private var blockPages: [() -> Void] = []
    /// Every linear layer by its GGUF name.
    private let linearsByName: [String: Linear]
    /// The matrices of each stacked tensor (experts, per-head matrices), in order, by the tensor's GGUF name.
    private let stacksByName: [String: [Linear]]
    /// The tensors the model was built from (for `diagnoseNonFinite`).
    let weightLog: WeightLog
    /// What `ModelValidation` found suspect but runnable, and tensors the forward pass does not read.
    public private(set) var warnings: [String] = []

    public var description: String {
        let moe = blocks.lazy.flatMap(\.branches).compactMap { $0.sublayer as? MixtureOfExperts }.first
        let experts = moe.map { ", \($0.experts) experts of \($0.width) (\($0.used) used)" + ($0.shared == nil ? "" : " + shared") } ?? ""
        return "\(architecture), \(blocks.count) layers, hidden \(hidden), heads \(heads)/\(kvHeads), ffn \(ffn)\(experts), vocab \(vocab)"
    }

    /// The linear layers in the order a forward pass runs them (the output projection last).
    public var linears: [Linear] { blocks.flatMap { $0.branches.flatMap(\.sublayer.linears) } + [output] }

    /// The architectures that have a forward pass: those whose table says how a block is built.
    public static var supported: [Architecture] { Architecture.all.filter { $0.block != nil } }

    static func table(_ spec: ModelSpec, field: String, offset: Int?, path: String) throws -> (Architecture, BlockShape) {
        guard let table = spec.table, let shape = table.block, (spec.expertCount ?? 0) <= 1 || shape.experts != nil else {
            let what = (spec.expertCount ?? 0) > 1 ? "mixture-of-experts \(spec.architecture ?? "?")" : "architecture '\(spec.architecture ?? "?")'"
            throw ModelError(.unsupportedArchitecture, field: field, offset: offset,
                             "\(what) has no forward pass yet (\(supported.map(\.name).joined(separator: ", ")) do)", path: path)
        }
        return (table, shape)
    }

    /// Reads a GGUF model (llama.cpp's tensor names and keys).
    public convenience init(gguf g: GGUFFile) throws {
        let spec = ModelSpec(gguf: g)
        let (table, shape) = try DecoderModel.table(spec, field: "general.architecture",
                                                    offset: g.metadata.first { $0.key == "general.architecture" }?.fileOffset, path: g.path)
        let warnings = try ModelValidation.check(gguf: g)
        try self.init(path: g.path, spec: spec, table: table, shape: shape, ropeStyle: table.ggufRopeStyle, storage: g,
                      ropeFactors: nil) { name in
            guard let t = g.tensor(named: name), let data = g.data(for: t).baseAddress else { return nil }
            return .init(name: name, type: t.type, dims: t.dimensions, data: data, entryOffset: t.infoOffset)
        }
        var byBlock = [[GGUFTensorInfo]](repeating: [], count: blocks.count)
        for t in g.tensors {
            let parts = t.name.split(separator: ".", maxSplits: 2)
            if parts.count == 3, parts[0] == "blk", let i = Int(parts[1]), i >= 0, i < blocks.count { byBlock[i].append(t) }
        }
        blockPages = byBlock.map { ts in { for t in ts { g.release(t, bytes: 0..<t.byteCount) } } }
        let used = Set(weightLog.entries.map(\.tensor.name))
        let unused = g.tensors.map(\.name).filter { !used.contains($0) }
        self.warnings = warnings + (unused.isEmpty ? [] : [
            "\(unused.count) tensor\(unused.count == 1 ? "" : "s") the forward pass does not read (llama.cpp refuses a file with tensors it does not "
            + "expect): \(unused.prefix(3).joined(separator: ", "))\(unused.count > 3 ? ", ..." : "")"])
    }

    /// Reads a Hugging Face folder (config.json and safetensors with Transformers' tensor names, found through the
    /// architecture's table). Its q/k projections are in Hugging Face's layout, so RoPE rotates the halves of each
    /// head; Llama 3.1's `rope_scaling` becomes the same per-frequency divisors llama.cpp stores as `rope_freqs`.
    public convenience init(huggingFace d: HFModelDirectory) throws {
        guard let c = d.config else {
            throw ModelError(.missingField, field: "config.json", "the folder has no config.json", path: d.path)
        }
        let spec = ModelSpec(config: c, files: d.files)
        let (table, shape) = try DecoderModel.table(spec, field: "config.json model_type", offset: nil, path: d.path)
        let warnings = try ModelValidation.check(spec, blocks: nil, path: d.path + "/config.json")
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
        func found(_ hf: String) -> WeightReader.Found? {
            guard let t = byName[hf] else { return nil }
            switch t.storage {
            case .float(let type, let data, _):
                return .init(name: hf, type: type, dims: t.shape.reversed(), data: data, entryOffset: nil)
            case .decoded(let f):
                return .init(name: hf, type: .f32, dims: t.shape.reversed(), data: decoded.decode(f, name: hf), entryOffset: nil)
            }
        }
        let split = table.latentAttention ? try LatentSplit(spec: spec, path: d.path) : nil
        try self.init(path: d.path, spec: spec, table: table, shape: shape, ropeStyle: .halves, storage: decoded,
                      ropeFactors: factors, find: { name in
            if name == "output.weight" && tied { return nil }
            guard let m = table.hfName(forGGUF: name), m.role.scope != .expertStack else { return nil }
            return found(m.name)
        }, findExpert: { name, x in
            guard let m = table.hfName(forGGUF: name) else { return nil }
            if let split, let layer = m.layer, m.role.gguf == "attn_k_b" || m.role.gguf == "attn_v_b",
               let kvB = table.hfName(forGGUF: "blk.\(layer).attn_kv_b.weight").flatMap({ found($0.name) }) {
                return split.head(x, of: kvB, value: m.role.gguf == "attn_v_b", decoded: decoded)
            }
            guard m.role.scope == .expertStack else { return nil }
            return found(m.hfName(expert: x))
        })
        self.warnings = warnings
    }

    /// A folder's `kv_b_proj` ([heads · (nope + v), kvLora]) read as llama.cpp's converter splits it: per head, k_b =
    /// the transposed nope rows (kvLora × nope) and v_b = the v rows (v × kvLora), decoded to F32 at load.
    struct LatentSplit {
        let heads: Int, nope: Int, vDim: Int, kvLora: Int

        init(spec: ModelSpec, path: String) throws {
            heads = try spec.require(.headCount, path: path)
            let rope = try spec.require(.ropeDimensionCount, path: path)
            nope = try spec.require(.keyLengthMLA, path: path) - rope
            vDim = try spec.require(.valueLengthMLA, path: path)
            kvLora = try spec.require(.kvLoraRank, path: path)
            guard nope > 0 else {
                throw ModelError(.invalidValue, field: "config.json qk_nope_head_dim",
                                 "latent attention needs a positive non-rotary head width, not \(nope)", path: path)
            }
        }

        func head(_ h: Int, of kvB: WeightReader.Found, value: Bool, decoded: DecodedWeights) -> WeightReader.Found? {
            let rowsPerHead = nope + vDim
            guard h >= 0, h < heads, kvB.dims == [kvLora, heads * rowsPerHead], BlockCodec.canDequantize(kvB.type),
                  let rowBytes = kvB.type.byteCount(elements: kvLora) else { return nil }
            var rows = [Float](repeating: 0, count: rowsPerHead * kvLora)
            rows.withUnsafeMutableBufferPointer {
                BlockCodec.dequantize(kvB.type, kvB.data + h * rowsPerHead * rowBytes, count: rowsPerHead * kvLora, into: $0.baseAddress!)
            }
            let out: [Float]
            if value {
                out = Array(rows[(nope * kvLora)...])
            } else {
                out = (0..<(kvLora * nope)).map { i in rows[(i % nope) * kvLora + i / nope] }
            }
            let data = out.withUnsafeBufferPointer { decoded.keep($0) }
            return .init(name: kvB.name, type: .f32, dims: value ? [kvLora, vDim] : [nope, kvLora], data: data, entryOffset: nil)
        }
    }

    init(path: String, spec: ModelSpec, table: Architecture, shape: BlockShape, ropeStyle style: RopeStyle,
         storage: AnyObject, ropeFactors factors: [Float]?, find: @escaping (String) -> WeightReader.Found?,
         findExpert: @escaping (String, Int) -> WeightReader.Found? = { _, _ in nil }) throws {
        self.storage = storage
        self.path = path
        architecture = table.name
        hidden = try spec.require(.hiddenSize, path: path)
        heads = try spec.require(.headCount, path: path)
        kvHeads = spec.int(.kvHeadCount) == nil ? heads : try spec.require(.kvHeadCount, path: path)
        ffn = try spec.require(.feedForwardSize, path: path)
        headDim = spec.int(.keyLength) == nil ? hidden / heads : try spec.require(.keyLength, path: path)
        let ropeDimensions = spec.int(.ropeDimensionCount) == nil ? headDim : try spec.require(.ropeDimensionCount, path: path)
        let blockCount = try spec.require(.layerCount, path: path)
        trainedContext = spec.contextLength
        if let k = spec.keyedRopeScaling, !(k.type == "yarn" && shape.attention == .latent) {
            throw ModelError(.unsupportedArchitecture, field: storage is GGUFFile ? "\(table.name).rope.scaling.type" : "config.json rope_scaling",
                             "RoPE scaling '\(k.type)' has no forward pass yet (Llama 3.1's llama3 scaling and DeepSeek's YaRN do)", path: path)
        }
        guard heads % kvHeads == 0, headDim > 0, headDim % 2 == 0 else {
            throw ModelError(.invalidValue, field: "\(table.name) head counts",
                             "\(heads) heads cannot share \(kvHeads) KV heads of size \(headDim)", path: path)
        }
        var w = WeightReader(path: path, eps: Float(spec.rmsNormEpsilon ?? 1e-5), find: find)
        w.findExpert = findExpert
        weightLog = w.log
        // Experts: how many, how many per token, and from which block on (DeepSeek's leading blocks are dense).
        let expertCount = spec.expertCount ?? 0, expertsUsed = spec.expertUsedCount ?? 0
        let firstExpertBlock = spec.int(.leadingDenseBlockCount) ?? 0
        if expertCount >= 1 {
            guard expertsUsed >= 1, expertsUsed <= expertCount else {
                throw ModelError(.invalidValue, field: storage is GGUFFile ? "\(table.name).expert_used_count" : "config.json num_experts_per_tok",
                                 "\(expertsUsed) experts per token out of \(expertCount)", path: path)
            }
        }
        embedding = try w.matrix("token_embd.weight", rows: nil, cols: hidden)
        vocab = embedding.rows
        output = w.has("output.weight") ? try w.linear("output", rows: vocab, cols: hidden)
                                        : Linear(name: "output.weight", weight: embedding)
        outputNorm = try w.norm("output_norm.weight", hidden)
        let ropeDims = min(ropeDimensions, headDim) & ~1
        rotary = Rotary(style: style, dims: ropeDims, headDim: headDim, base: Float(spec.ropeFreqBase ?? 10000),
                        factors: try factors ?? w.vector("rope_freqs.weight", ropeDims / 2, required: false))
        // The routing rules the table leaves to the model, from its keys.
        func routing(_ e: BlockShape.Experts) -> MixtureOfExperts.Routing {
            let gating = e.gating ?? (spec.int(.expertGatingFunction) == 2 ? .sigmoid : .softmax)
            return .init(gating: gating, normalizeWeights: e.normalizeWeights ?? (spec[.expertWeightsNorm] == .bool(true)),
                         weightScale: Float(spec.double(.expertWeightsScale) ?? 1),
                         groups: max(1, spec.int(.expertGroupCount) ?? 1), groupsUsed: max(1, spec.int(.expertGroupUsedCount) ?? 1))
        }
        let latent = shape.attention == .latent ? try DecoderModel.latentAttention(spec, path: path, weights: w, hidden: hidden,
                                                                                     heads: heads, ropeDimensions: ropeDimensions) : nil
        var blocks: [Block] = []
        for i in 0..<blockCount {
            let attention: any Sublayer, feedForward: any Sublayer
            switch shape.attention {
            case .grouped(let headNorms):
                attention = try GroupedQueryAttention(block: i, weights: w, hidden: hidden, heads: heads, kvHeads: kvHeads,
                                                      headDim: headDim, headNorms: headNorms, rotary: rotary)
            case .latent:
                attention = try latent.map { try $0(i) }!
            }
            if expertCount >= 1, i >= firstExpertBlock, let experts = shape.experts {
                feedForward = try MixtureOfExperts(block: i, weights: w, hidden: hidden, experts: expertCount, used: expertsUsed,
                                                   shared: experts.shared, routing: routing(experts))
            } else {
                switch shape.feedForward {
                case .gatedSiLU: feedForward = try GatedMLP(block: i, weights: w, hidden: hidden, ffn: ffn)
                }
            }
            blocks.append(Block(branches: [(try w.norm("blk.\(i).attn_norm.weight", hidden), attention),
                                           (try w.norm("blk.\(i).ffn_norm.weight", hidden), feedForward)]))
        }
        self.blocks = blocks
        var byName: [String: Linear] = [:]
        var stacks: [String: [Linear]] = [:]
        for l in blocks.flatMap({ $0.branches.flatMap(\.sublayer.linears) }) + [output] {
            if l.matrix == nil { byName[l.name] = l } else { stacks[l.name, default: []].append(l) }
        }
        linearsByName = byName
        stacksByName = stacks.mapValues { $0.sorted { $0.matrix!.index < $1.matrix!.index } }
    }

    /// The maker of each block's latent attention (DeepSeek-V2/V3, llama.cpp's `deepseek2`): per-head widths from
    /// `key_length_mla` (nope + rope) and `value_length_mla`, the latent `kv_lora_rank`, the query's `q_lora_rank`
    /// (absent: a full-rank `attn_q`), and RoPE over `rope.dimension_count` adjacent pairs. With YaRN, llama.cpp's
    /// numbers for this architecture: factor f, the angles blended between the correction dims of β 32 and 1 over
    /// `original_context_length`; m = `yarn_log_multiplier` / 0.1 (DeepSeek's mscale_all_dim); cos and sin scaled
    /// by 1 where m ≠ 0 (else 1 + 0.1 ln f); the softmax scale (1 + 0.1 m ln f)² / √(nope + rope) (without YaRN,
    /// 1 / √(nope + rope)).
    static func latentAttention(_ spec: ModelSpec, path: String, weights w: WeightReader, hidden: Int, heads: Int,
                                ropeDimensions: Int) throws -> (Int) throws -> LatentAttention {
        let kvLora = try spec.require(.kvLoraRank, path: path)
        let keyMLA = try spec.require(.keyLengthMLA, path: path), vDim = try spec.require(.valueLengthMLA, path: path)
        let rope = ropeDimensions, nope = keyMLA - rope
        let qLora = spec.int(.qLoraRank) == nil ? nil : try spec.require(.qLoraRank, path: path)
        guard rope > 0, rope % 2 == 0, nope > 0, kvLora > 0, vDim > 0, qLora.map({ $0 > 0 }) ?? true else {
            throw ModelError(.invalidValue, field: "deepseek2.attention.key_length_mla",
                             "latent attention of \(nope) + \(rope) key dims, \(vDim) value dims and rank \(kvLora) cannot run", path: path)
        }
        let base = Float(spec.ropeFreqBase ?? 10000)
        var yarn: Rotary.YaRN?
        var mscale: Float = 1
        if let k = spec.keyedRopeScaling, k.type == "yarn", k.factor > 1 {
            let f = Float(k.factor), m = Float((spec.double(.yarnLogMultiplier) ?? 0) / 0.1)
            let attnFactor: Float = m != 0 ? 1 / (1 + 0.1 * logf(f)) : 1
            guard let original = k.originalContext ?? spec.contextLength, original > 0 else {
                throw ModelError(.missingField, field: "rope.scaling.original_context_length", "YaRN needs the original context", path: path)
            }
            yarn = Rotary.YaRN(factor: f, originalContext: original, dims: rope, base: base, mscale: attnFactor * (1 + 0.1 * logf(f)))
            mscale = attnFactor * (1 + 0.1 * logf(f)) * (1 + 0.1 * m * logf(f))
        }
        let rotary = Rotary(style: .adjacentPairs, dims: rope, headDim: rope, base: base, factors: nil, yarn: yarn)
        let scale = mscale * mscale / Float(keyMLA).squareRoot()
        return { i in
            try LatentAttention(block: i, weights: w, hidden: hidden, heads: heads, nope: nope, rope: rope, kvLora: kvLora,
                                vDim: vDim, qLora: qLora, rotary: rotary, scale: scale)
        }
    }

    /// A folder's memory map and the weights decoded from it at load (FP8 with scales), owned for the model's lifetime.
    final class DecodedWeights {
        let folder: HFModelDirectory
        var buffers: [UnsafeMutableBufferPointer<Float>] = []
        init(folder: HFModelDirectory) { self.folder = folder }
        deinit { buffers.forEach { $0.deallocate() } }

        /// Tensors decoded so far, by name: one decode however often a tensor is asked for (a DeepSeek folder's
        /// `kv_b_proj` is read once per head).
        private var decodedByName: [String: UnsafeRawPointer] = [:]

        func decode(_ f: any RowDecoder, name: String) -> UnsafeRawPointer {
            if let done = decodedByName[name] { return done }
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, f.rows * f.cols))
            for r in 0..<f.rows { f.decodeRow(r, into: b.baseAddress! + r * f.cols) }
            buffers.append(b)
            decodedByName[name] = UnsafeRawPointer(b.baseAddress!)
            return UnsafeRawPointer(b.baseAddress!)
        }

        /// A copy of `values` owned here.
        func keep(_ values: UnsafeBufferPointer<Float>) -> UnsafeRawPointer {
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, values.count))
            _ = b.initialize(from: values)
            buffers.append(b)
            return UnsafeRawPointer(b.baseAddress!)
        }
    }

    /// Opens a GGUF file or a Hugging Face folder.
    public static func open(_ model: ModelFile) throws -> DecoderModel {
        switch model.storage {
        case .gguf(let g): return try DecoderModel(gguf: g)
        case .huggingFaceFolder(let d): return try DecoderModel(huggingFace: d)
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
        precondition(outputs.lowerBound >= 0 && outputs.upperBound <= tokens.count, "outputs outside the window")
        let run = state ?? RunState()
        var x = try embed(tokens, kernels: kernels)
        for i in blocks.indices {
            runLayer(i, &x, tokens: tokens.count, workspace: workspace, kernels: kernels, state: run)
        }
        return head(x, outputs: outputs, workspace: workspace, kernels: kernels, state: run)
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

    func context(tokens n: Int, workspace: MatMulWorkspace, kernels: KernelChoice, state: RunState) -> ForwardContext {
        ForwardContext(tokens: n, workspace: workspace, kernels: kernels, state: state, observer: observer,
                       activations: activationRounding, halfPrecisionCache: halfPrecisionCache)
    }

    /// Runs block `i` over the hidden states `x` of a window of `n` tokens (positions 0..<n), in place: one layer at
    /// a time, as GPTQ-style calibration runs a batch of windows through each layer before the next.
    public func runLayer(_ i: Int, _ x: inout [Float], tokens n: Int, workspace: MatMulWorkspace,
                         kernels: KernelChoice = Kernels.choice, state: RunState) {
        precondition(x.count >= n * hidden, "hidden states smaller than the window")
        let c = context(tokens: n, workspace: workspace, kernels: kernels, state: state)
        x.withUnsafeMutableBufferPointer { blocks[i].run($0.baseAddress!, hidden: hidden, c) }
        if releasesBlockWeights && i < blockPages.count { blockPages[i]() }
    }

    /// The output norm and projection for positions `outputs` of hidden states `x`: `outputs.count × vocab` logits.
    public func head(_ x: [Float], outputs: Range<Int>, workspace: MatMulWorkspace, kernels: KernelChoice = Kernels.choice,
                     state: RunState? = nil) -> [Float] {
        let m = outputs.count
        var last = [Float](repeating: 0, count: m * hidden)
        x.withUnsafeBufferPointer { xp in last.withUnsafeMutableBufferPointer { lp in
            outputNorm.apply(xp.baseAddress! + outputs.lowerBound * hidden, rows: m, into: lp.baseAddress!)
        } }
        var logits = [Float](repeating: 0, count: m * vocab)
        let c = context(tokens: m, workspace: workspace, kernels: kernels, state: state ?? RunState())
        last.withUnsafeBufferPointer { lp in logits.withUnsafeMutableBufferPointer { yp in
            output.apply(lp.baseAddress!, rows: m, into: yp.baseAddress!, c)
        } }
        return logits
    }

    /// Where a window's forward pass first goes non-finite: block by block (the token embedding first, the output
    /// norm and projection last), the first stage whose output holds a NaN or an infinity, then the weights of that
    /// stage: the first of them holding one is named, else the first linear layer whose input was non-finite (a value
    /// that overflowed on the way). Nil when the whole pass stays finite.
    public func diagnoseNonFinite(_ tokens: [Int32], workspace: MatMulWorkspace, kernels: KernelChoice) throws -> NonFiniteTrace? {
        var x = try embed(tokens, kernels: kernels)
        if let k = NonFinite.first(in: x) {
            let token = Int(tokens[k / hidden])
            let weight = weightLog.firstNonFinite { $0 == "token_embd.weight" }
            return NonFiniteTrace(stage: "token_embd.weight", detail: "the embedding of token \(token) at position \(k / hidden)", weight: weight)
        }
        let saved = observer
        defer { observer = saved }
        let state = RunState()
        for i in blocks.indices {
            let watch = FirstNonFiniteInput()
            observer = watch
            runLayer(i, &x, tokens: tokens.count, workspace: workspace, kernels: kernels, state: state)
            guard NonFinite.first(in: x) != nil || watch.first != nil else { continue }
            let weight = weightLog.firstNonFinite { $0.hasPrefix("blk.\(i).") }
            let detail = watch.first.map { "in block \(i), the input of \($0) (after \(watch.lastFinite.map { "that of \($0)" } ?? "the block's first norm"))" }
                ?? "the output of block \(i)"
            return NonFiniteTrace(stage: watch.first ?? "blk.\(i)", detail: detail, weight: weight)
        }
        let logits = head(x, outputs: 0..<tokens.count, workspace: workspace, kernels: kernels, state: state)
        guard NonFinite.first(in: logits) != nil else { return nil }
        let weight = weightLog.firstNonFinite { $0 == "output_norm.weight" || $0 == "output.weight" || $0 == "token_embd.weight" }
        return NonFiniteTrace(stage: output.name, detail: "the output of the final norm and projection", weight: weight)
    }

    /// Puts `values` (rows × columns floats, F32) in place of the linear layer named `name` (its GGUF name,
    /// `blk.3.ffn_down.weight`): what a calibration search tries before choosing. A tied output projection shares
    /// nothing with the embedding once replaced.
    public func replaceWeight(_ name: String, values: [Float]) throws {
        guard let l = linearsByName[name] else {
            throw ModelError(.missingTensor, field: name, "the model has no linear layer of that name", path: path)
        }
        try l.replace(with: values, path: path)
    }

    /// Puts `bytes` of `type` in place of the linear layer named `name`, as a file storing it in that type would hold
    /// it: what the forward pass then computes is what it computes on such a file.
    /// A stacked tensor (`blk.3.ffn_up_exps.weight`) takes the bytes of all its matrices, in order, each matrix its
    /// share.
    public func replaceWeight(_ name: String, type: GGMLType, bytes: [UInt8]) throws {
        if let l = linearsByName[name] {
            try l.replace(type: type, bytes: bytes, path: path)
            return
        }
        guard let stack = stacksByName[name], !stack.isEmpty, bytes.count % stack.count == 0 else {
            throw ModelError(.missingTensor, field: name, "the model has no linear layer or stacked tensor of that name and size", path: path)
        }
        let share = bytes.count / stack.count
        for (k, l) in stack.enumerated() { try l.replace(type: type, bytes: Array(bytes[(k * share)..<((k + 1) * share)]), path: path) }
    }

    /// The linear layer named `name` (its GGUF name), if the model has one.
    public func linear(named name: String) -> Linear? { linearsByName[name] }

    /// Whether `name` is a weight of the forward pass that `replaceWeight(_:type:bytes:)` takes: a linear layer or a
    /// stacked tensor of them.
    public func computes(_ name: String) -> Bool { linearsByName[name] != nil || stacksByName[name] != nil }

    /// The values of a weight as the forward pass holds it (the stored weight, not a replacement), in the pass's own
    /// row order, which is what `replaceWeight` takes: a linear layer, a stacked tensor (its matrices in order) or the
    /// token embedding; nil for any other name. (A Hugging Face folder's q and k rows are in its own order, not GGUF's.)
    public func weightValues(_ name: String, kernels: KernelChoice = Kernels.choice) -> [Float]? {
        let matrices: [StoredMatrix]
        if name == "token_embd.weight" { matrices = [embedding] }
        else if let l = linearsByName[name] { matrices = [l.storedWeight] }
        else if let stack = stacksByName[name], !stack.isEmpty { matrices = stack.map(\.storedWeight) }
        else { return nil }
        var values = [Float](repeating: 0, count: matrices.reduce(0) { $0 + $1.rows * $1.cols })
        values.withUnsafeMutableBufferPointer { v in
            var at = 0
            for m in matrices {
                m.dequantize(rows: 0, count: m.rows, into: v.baseAddress! + at, kernels: kernels)
                at += m.rows * m.cols
            }
        }
        return values
    }

    /// Puts the weight the file stores back in place of a replacement, freeing it (nothing when none stands in).
    public func restoreWeight(_ name: String) {
        linearsByName[name]?.restore()
        for l in stacksByName[name] ?? [] { l.restore() }
    }
}

/// Where a forward pass first produced a NaN or an infinity (`DecoderModel.diagnoseNonFinite`).
public struct NonFiniteTrace: Sendable, Equatable {
    /// The tensor at that point: the first linear layer whose input was non-finite, the embedding, or the output.
    public var stage: String
    public var detail: String
    /// The first weight of that stage holding a NaN or an infinity, where one does.
    public var weight: NonFiniteWeight?

    /// The error to report: the weight where one is to blame, else the stage.
    public func error(path: String, what: String) -> ModelError {
        if let w = weight {
            return ModelError(.nonFinite, field: w.tensor, offset: w.entryOffset,
                              "\(what); the first non-finite value: \(detail); \(w.tensor) holds \(w.value) at row \(w.row), column \(w.column)",
                              path: path)
        }
        return ModelError(.nonFinite, field: stage,
                          "\(what); the first non-finite value: \(detail), with every weight there finite (a value overflowed)",
                          path: path)
    }
}

/// Remembers the first linear layer whose input holds a NaN or an infinity, and the last one before it.
final class FirstNonFiniteInput: LinearObserver {
    var first: String?
    var lastFinite: String?

    func observe(_ tensor: String, matrix: MatrixIndex?, input: UnsafeBufferPointer<Float>, rows: Int, columns: Int) {
        guard first == nil, !input.isEmpty else { return }
        if NonFinite.first(in: input) != nil { first = tensor } else { lastFinite = tensor }
    }
}
