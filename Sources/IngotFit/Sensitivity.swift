import Foundation
import IngotEvaluate
import IngotFormats
import IngotModel
import IngotNumerics
import IngotQuantize

/// What `ingot fit` measures and chooses from.
public struct FitOptions: Sendable {
    /// The file to be written: GGUF (a type per tensor) or an MLX folder (an MLX quantization per tensor, or float).
    public var format: FitFormat = .gguf
    /// The forms a tensor may take (those whose blocks or groups its rows fill); staying as stored (GGUF) or in float
    /// (MLX) is always a choice too.
    public var candidates: [FitType] = FitOptions.defaultCandidates(.gguf)
    /// Each block's probe (all its tensors at once, run to the logits) takes each tensor's candidate nearest this
    /// many bits per weight.
    public var probeBits = 4.5
    /// Windows each candidate's change of its block's output is measured on (the first of the windows; the block
    /// probes run on all).
    public var responseWindows = 1
    public var threads = 2
    public var kernels: KernelChoice = Kernels.choice
    public init(format: FitFormat = .gguf) {
        self.format = format
        candidates = Self.defaultCandidates(format)
    }

    /// GGUF: every type Ingot quantizes to below 8.5 bits, but the 1.56- and 1.75-bit IQ1 types (no preset of llama.cpp
    /// gives them to more than a few tensors, and on a model they cost more than they save). MLX: affine quantization
    /// at every width and group size mlx-lm takes (the microscaling modes only when asked for: at their widths affine
    /// groups of 32 or 128 cost the same and lose less). compressed-tensors: W4A16, W4A16_ASYM and W8A16 with groups
    /// of 32, 64, 128 or one scale per output channel.
    public static func defaultCandidates(_ format: FitFormat) -> [FitType] {
        switch format {
        case .gguf:
            return ([.iq2_XXS, .iq2_XS, .iq2_S, .q2_K, .iq3_XXS, .iq3_S, .q3_K, .iq4_XS, .iq4_NL, .q4_0, .q4_K, .q4_1, .q5_0, .q5_K,
                     .q5_1, .q6_K, .q8_0] as [GGMLType]).map { .gguf($0) }
        case .mlx:
            return FitType.all(.mlx).filter { if case .mlx(let q) = $0 { return q.mode == .affine } else { return false } }
        case .compressedTensors:
            return FitType.all(.compressedTensors)
        }
    }
}

/// One type a tensor may take: its size in the file (padded to the alignment) and what it costs in accuracy.
public struct FitCandidate: Sendable, Equatable {
    public var type: FitType
    public var bytes: Int
    /// What the type changes where the tensor acts: for a layer of a block, the change of the block's output as the
    /// next block sees it (`SensitivityMeter.normalizedChange`); for the embedding and the output projection, the KL
    /// divergence itself.
    public var error: Double
    /// The KL divergence from the base this tensor alone is predicted to add in this type: `error` times its block's
    /// KL divergence per unit of change.
    public var loss: Double
    public init(type: FitType, bytes: Int, error: Double, loss: Double) {
        (self.type, self.bytes, self.error, self.loss) = (type, bytes, error, loss)
    }
}

/// One quantizable tensor, measured.
public struct FitTensor: Sendable {
    public var name: String
    public var dimensions: [Int]
    public var sourceType: GGMLType
    public var candidates: [FitCandidate]
    /// The form the tensor took in its block's probe, and its predicted KL divergence in that form.
    public var probe: FitType
    public var probeKLD: Double
    public init(name: String, dimensions: [Int], sourceType: GGMLType, candidates: [FitCandidate], probe: FitType, probeKLD: Double) {
        (self.name, self.dimensions, self.sourceType, self.candidates, self.probe, self.probeKLD) =
            (name, dimensions, sourceType, candidates, probe, probeKLD)
    }
    public var elementCount: Int { dimensions.reduce(1, *) }
}

/// Progress of a measurement: tensors measured so far.
public struct FitProgress: Sendable {
    public var tensor: Int
    public var tensors: Int
    public var name: String
    public var seconds: Double
}

/// Measures how much each tensor's quantization costs the whole model, per type, through the forward pass as it runs
/// on the file that would be written (the tensor in the type's bytes, the activations rounded for its products as
/// llama.cpp rounds them):
///
/// 1. For a layer of block b, every candidate type in turn: the tensor quantized as `ingot quantize` would (under
///    the importance matrix), block b run from the base's hidden states, and the change of its output as the next
///    block sees it (`normalizedChange`), summed over the response windows.
/// 2. Block b with each of its tensors in the candidate nearest `probeBits` at once, run from its input to the
///    logits over the probe windows: the mean KL divergence from the base, over the change of the block's output.
///    That ratio turns each candidate's change into a predicted KL divergence.
/// 3. The embedding and the output projection: the KL divergence of each candidate directly.
///
/// The losses of different tensors are added, as small independent perturbations add to first order; `ingot fit`
/// measures the KL divergence of the model it writes on the same windows to check the sum.
///
/// The activations' rounding matters as much as the weights' on models with a few channels of very large
/// activation (SmolLM2 has them): the 8-bit blocks the activations are rounded to before a quantized product share
/// one scale, set by the large channel, and the weights' error alone would miss that.
///
/// Every tensor the forward pass multiplies by is measured: linear layers, stacked experts and per-head matrices (one
/// type for the whole stack, as GGUF stores it; each expert's rows quantized under its own importance weights), and
/// the token embedding. The hidden states of every block for every window are held in memory (windows × blocks ×
/// context × width floats).
public final class SensitivityMeter {
    public let model: DecoderModel
    public let source: any GGUFTensorSource
    public let importance: ImportanceMatrix?
    public let windows: [[Int32]]
    public let options: FitOptions
    let workspace: MatMulWorkspace
    let first: Int, context: Int
    /// inputs[w][b]: the base's hidden states entering block b in window w; inputs[w][blocks] enter the head.
    var inputs: [[[Float]]] = []
    var baseLogits: [[Float]] = []
    public private(set) var baseSeconds = 0.0

    /// `windows` as the model runs them (BOS first where it adds one), all of one length.
    public init(model: DecoderModel, source: any GGUFTensorSource, importance: ImportanceMatrix?, windows: [[Int32]],
                options: FitOptions) throws {
        precondition(!windows.isEmpty && windows.allSatisfy { $0.count == windows[0].count }, "windows of one length")
        (self.model, self.source, self.importance, self.windows, self.options) = (model, source, importance, windows, options)
        workspace = MatMulWorkspace(threads: options.threads)
        context = windows[0].count
        first = context / 2
        let clock = Date()
        for w in windows {
            var x = try model.embed(w, kernels: options.kernels)
            var states: [[Float]] = []
            let state = RunState()
            for b in model.blocks.indices {
                states.append(x)
                model.runLayer(b, &x, tokens: context, workspace: workspace, kernels: options.kernels, state: state)
            }
            states.append(x)
            let logits = model.head(x, outputs: first..<(context - 1), workspace: workspace, kernels: options.kernels, state: state)
            if let bad = NonFinite.first(in: logits) {
                throw ModelError(.nonFinite, field: "logits", "the base model's logit \(bad % model.vocab) at a scored position is \(logits[bad])",
                                 path: model.path)
            }
            inputs.append(states)
            baseLogits.append(logits)
        }
        baseSeconds = Date().timeIntervalSince(clock)
    }

    /// The tensors a GGUF fit covers: every one llama-quantize's rules allow to be quantized.
    public var quantizable: [GGUFTensorInfo] { source.tensors.filter(QuantPlanner.allowsQuantization) }

    /// Measures `tensors` (tensors of the source the forward pass multiplies by); `alignment` pads each candidate's
    /// bytes as the file will. Tensors come back in the order given.
    public func measure(_ tensors: [GGUFTensorInfo], alignment: Int, progress: (FitProgress) -> Void = { _ in }) throws -> [FitTensor] {
        let clock = Date()
        var sites: [Int: [GGUFTensorInfo]] = [:]
        var outside: [GGUFTensorInfo] = []
        for t in tensors {
            if let b = try site(t.name), b < model.blocks.count { sites[b, default: []].append(t) } else { outside.append(t) }
        }
        var measured: [String: FitTensor] = [:]
        func done(_ t: FitTensor) {
            measured[t.name] = t
            progress(FitProgress(tensor: measured.count, tensors: tensors.count, name: t.name, seconds: Date().timeIntervalSince(clock)))
        }
        for t in outside {
            let at = try site(t.name)
            let m = try candidates(t, alignment: alignment) { type, bytes in try kld(t.name, at: at, type: type, bytes: bytes) }
            done(m.finished(scale: 1))
        }
        for b in sites.keys.sorted() {
            var measuredHere: [Candidates] = []
            for t in sites[b]! {
                measuredHere.append(try candidates(t, alignment: alignment) { type, bytes in
                    try model.replaceWeight(t.name, type: type, bytes: bytes)
                    defer { model.restoreWeight(t.name) }
                    return try change(of: b, windows: 0..<min(options.responseWindows, windows.count))
                })
            }
            for m in measuredHere where m.probe != nil { try model.replaceWeight(m.name, type: m.probeForm.type, bytes: m.probeForm.bytes) }
            let probe = try kldAndChange(from: b)
            for m in measuredHere { model.restoreWeight(m.name) }
            // KL divergence per unit of change of the block's output (both on the response windows' share of it).
            let scale = probe.change > 0 ? probe.kld / probe.change : 0
            for m in measuredHere { done(m.finished(scale: scale)) }
        }
        return tensors.map { measured[$0.name]! }
    }

    /// A tensor's candidate types, their sizes and measured changes, and the bytes of the block probe's type.
    struct Candidates {
        var name: String
        var dimensions: [Int]
        var sourceType: GGMLType
        /// The measured forms, then the stored one.
        var types: [FitType]
        var bytes: [Int]
        var errors: [Double]
        var probe: Int?
        /// The probe's form as the forward pass takes it.
        var probeForm: (type: GGMLType, bytes: [UInt8])

        func finished(scale: Double) -> FitTensor {
            let candidates = types.indices.map { FitCandidate(type: types[$0], bytes: bytes[$0], error: errors[$0], loss: errors[$0] * scale) }
            return FitTensor(name: name, dimensions: dimensions, sourceType: sourceType, candidates: candidates,
                             probe: probe.map { types[$0] } ?? types[types.count - 1], probeKLD: probe.map { errors[$0] * scale } ?? 0)
        }
    }

    /// Where a tensor acts: the block whose forward pass it enters, `blocks.count` for the head, nil for the embedding.
    func site(_ name: String) throws -> Int? {
        if name == "token_embd.weight" { return nil }
        if name == "output.weight" { return model.blocks.count }
        guard model.computes(name), name.hasPrefix("blk."),
              let dot = name.dropFirst(4).firstIndex(of: "."), let b = Int(name[name.index(name.startIndex, offsetBy: 4)..<dot]),
              model.blocks.indices.contains(b) else {
            throw QuantError(.unsupportedType, tensor: name,
                             "fit measures the tensors the forward pass multiplies by (linear layers, stacked experts and heads); this one is not one of them")
        }
        return b
    }

    /// Reads `t`, quantizes it to each candidate type in turn and asks `response` what that type changes.
    func candidates(_ t: GGUFTensorInfo, alignment: Int, response: (GGMLType, [UInt8]) throws -> Double) throws -> Candidates {
        let columns = t.dimensions[0], rows = t.elementCount / max(1, columns)
        // The values as the pass holds them (a folder keeps q and k in its own row order, not the file's): a candidate
        // quantizes each row alike in either order, and goes back into the pass in the pass's.
        guard t.elementCount > 0 else {
            throw QuantError(.unsupportedType, tensor: t.name, offset: source.fileOffset(of: t), "holds no values; fit has nothing to weigh")
        }
        guard let values = model.weightValues(t.name, kernels: options.kernels), values.count == t.elementCount else {
            throw QuantError(.unsupportedType, tensor: t.name, "the forward pass holds no weight of this name and size")
        }
        if let bad = NonFinite.first(in: values) {
            throw QuantError(.nonFinite, tensor: t.name, offset: source.fileOffset(of: t).map { $0 + bad / columns * (t.byteCount / max(1, rows)) },
                             "row \(bad / columns) holds \(values[bad]) at column \(bad % columns); fit cannot weigh a tensor that is not finite")
        }
        // Importance weights: one row of columns per matrix of a stacked tensor (experts), as the quantizer takes them.
        let matrices = t.dimensions.count > 2 ? t.dimensions[2] : 1
        let weights = Self.importance(importance, for: t)
        // Every form but the last (the stored one, which changes nothing) is put in the pass.
        let types = Self.forms(for: t, options: options, weighted: weights != nil)
        let measured = types.dropLast()
        let probe = measured.indices.min { abs(types[$0].bitsPerWeight - options.probeBits) < abs(types[$1].bitsPerWeight - options.probeBits) }
        var errors: [Double] = [], probeForm: (type: GGMLType, bytes: [UInt8]) = (t.type, [])
        for (k, type) in measured.enumerated() {
            let form = try type.passForm(values, rows: rows, columns: columns, importance: weights, rowsPerMatrix: rows / matrices,
                                         floatType: Self.floatType(of: t), threads: options.threads)
            errors.append(try response(form.type, form.bytes))
            if k == probe { probeForm = form }
        }
        errors.append(0)
        let sizes = types.map { Self.bytes(of: $0, for: t, alignment: alignment) }
        return Candidates(name: t.name, dimensions: t.dimensions, sourceType: t.type, types: types, bytes: sizes,
                          errors: errors, probe: probe, probeForm: probeForm)
    }

    /// A tensor's importance weights: a row of columns per matrix (each expert's of a stacked tensor), as the quantizer
    /// takes them; nil where the matrix has none of that size.
    static func importance(_ m: ImportanceMatrix?, for t: GGUFTensorInfo) -> [Float]? {
        let columns = t.dimensions[0], matrices = t.dimensions.count > 2 ? t.dimensions[2] : 1
        return m?.importance(for: t.name).flatMap { $0.count == columns * matrices ? $0 : nil }
    }

    /// The forms a tensor is measured in: the candidates of the format whose blocks or groups its rows fill (the
    /// importance-only GGUF types only when it has importance weights), then the stored form (nothing changes).
    public static func forms(for t: GGUFTensorInfo, options: FitOptions, weighted: Bool) -> [FitType] {
        let columns = t.dimensions[0]
        let stored = storedForm(t, format: options.format)
        var types = options.candidates.filter { type in
            guard type != stored, columns % type.rowUnit == 0 else { return false }
            switch type {
            case .gguf(let g): return options.format == .gguf && BlockCodec.canQuantize(g)
            case .mlx: return options.format == .mlx
            case .integer: return options.format == .compressedTensors
            case .float: return false
            }
        }
        if !weighted { types.removeAll(where: \.needsImportance) }
        if options.format == .gguf && t.type == .f32 && !types.contains(.gguf(.f16)) { types.append(.gguf(.f16)) }
        return types + [stored]
    }

    /// The tensors with every form's bytes and no measurement (each loss 0): what a budget can hold is known before
    /// anything is measured.
    public static func unmeasured(_ tensors: [GGUFTensorInfo], importance: ImportanceMatrix?, options: FitOptions, alignment: Int) -> [FitTensor] {
        tensors.map { t in
            let forms = forms(for: t, options: options, weighted: Self.importance(importance, for: t) != nil)
            return FitTensor(name: t.name, dimensions: t.dimensions, sourceType: t.type,
                             candidates: forms.map { FitCandidate(type: $0, bytes: bytes(of: $0, for: t, alignment: alignment), error: 0, loss: 0) },
                             probe: forms.last!, probeKLD: 0)
        }
    }

    /// What leaves a tensor as it is: its own GGUF type; in a folder, the float type it is written in.
    public static func storedForm(_ t: GGUFTensorInfo, format: FitFormat) -> FitType {
        format == .gguf ? .gguf(t.type) : .float
    }

    /// The float type a folder holds a tensor in, and an MLX form's scales and biases: the tensor's own (F16, BF16,
    /// F32), F16 for any other (as `ingot quantize --scheme mlx` writes a folder).
    public static func floatType(of t: GGUFTensorInfo) -> GGMLType {
        [.f16, .bf16, .f32].contains(t.type) ? t.type : .f16
    }

    /// The bytes tensor `t` takes in the file in form `type` (as stored when it is its own GGUF type), its GGUF data
    /// padded to `alignment`; in a folder, its data (the stored tensors' header entries are counted with the file's).
    public static func bytes(of type: FitType, for t: GGUFTensorInfo, alignment: Int) -> Int {
        let columns = max(1, t.dimensions[0]), rows = t.elementCount / columns
        if case .gguf(let g) = type {
            let raw = g == t.type ? t.byteCount : type.dataBytes(rows: rows, columns: columns, floatType: g)
            return Checked.alignUp(raw, to: alignment) ?? raw
        }
        return type.dataBytes(rows: rows, columns: columns, floatType: floatType(of: t))
    }

    /// The change of block `b`'s output over `range` of the windows, with whatever replacement stands in.
    func change(of b: Int, windows range: Range<Int>) throws -> Double {
        var total = 0.0
        let state = RunState()
        for w in range {
            var x = inputs[w][b]
            model.runLayer(b, &x, tokens: context, workspace: workspace, kernels: options.kernels, state: state)
            total += Self.normalizedChange(x, inputs[w][b + 1], hidden: model.hidden)
        }
        guard total.isFinite else { throw QuantError(.nonFinite, tensor: "blk.\(b)", "the block's output with a quantized tensor is not finite") }
        return total
    }

    /// Block `b` with whatever replacements stand in, run from its input to the logits over every window: the mean
    /// KL divergence from the base, and the change of the block's output over the response windows.
    func kldAndChange(from b: Int) throws -> (kld: Double, change: Double) {
        var kld = 0.0, change = 0.0
        for w in windows.indices {
            var x = inputs[w][b]
            let state = RunState()
            model.runLayer(b, &x, tokens: context, workspace: workspace, kernels: options.kernels, state: state)
            if w < options.responseWindows { change += Self.normalizedChange(x, inputs[w][b + 1], hidden: model.hidden) }
            for i in (b + 1)..<model.blocks.count {
                model.runLayer(i, &x, tokens: context, workspace: workspace, kernels: options.kernels, state: state)
            }
            let logits = model.head(x, outputs: first..<(context - 1), workspace: workspace, kernels: options.kernels, state: state)
            kld += Divergence.meanKLD(logits, base: baseLogits[w], rows: context - 1 - first, vocab: model.vocab, threads: options.threads)
        }
        kld /= Double(windows.count)
        guard kld.isFinite else { throw QuantError(.nonFinite, tensor: "blk.\(b)", "the model's logits with the block's tensors quantized are not finite") }
        return (kld, change)
    }

    /// How much `y` departs from `base` (hidden states, `hidden` per token) as the next block sees it: each token's
    /// change with its component along the token's own state removed (the RMS norm that every block starts with
    /// divides it away), over the state's mean square. The plain squared distance would be ruled by the few channels
    /// of large activation that some models carry, whose changes the norm cancels.
    static func normalizedChange(_ y: [Float], _ base: [Float], hidden: Int) -> Double {
        var total = 0.0
        let tokens = min(y.count, base.count) / max(1, hidden)
        for t in 0..<tokens {
            var dd = 0.0, xd = 0.0, xx = 0.0
            for j in (t * hidden)..<((t + 1) * hidden) {
                let x = Double(base[j]), d = Double(y[j] - base[j])
                dd += d * d; xd += x * d; xx += x * x
            }
            guard xx > 0 else { continue }
            total += max(0, dd - xd * xd / xx) / (xx / Double(hidden))
        }
        return total
    }

    /// The mean KL divergence from the base over the response windows with the embedding or the output projection
    /// (`at`: nil or the head) in `type`: a tied embedding acts as both.
    func kld(_ name: String, at block: Int?, type: GGMLType, bytes: [UInt8]) throws -> Double {
        let tied = block == nil && model.linear(named: "output.weight") != nil && !source.tensors.contains { $0.name == "output.weight" }
        let head = block == nil ? (tied ? "output.weight" : nil) : name
        if let head { try model.replaceWeight(head, type: type, bytes: bytes) }
        defer { if let head { model.restoreWeight(head) } }
        let hidden = model.hidden
        var total = 0.0
        let count = min(options.responseWindows, windows.count)
        for w in 0..<count {
            var x: [Float]
            if block == nil {
                // The embedding's rows as the type stores them.
                x = [Float](repeating: 0, count: context * hidden)
                let rowBytes = hidden / type.blockSize * type.bytesPerBlock
                bytes.withUnsafeBytes { b in x.withUnsafeMutableBufferPointer { xp in
                    for (i, token) in windows[w].enumerated() {
                        BlockCodec.dequantize(type, b.baseAddress! + Int(token) * rowBytes, count: hidden, into: xp.baseAddress! + i * hidden)
                    }
                } }
            } else {
                x = inputs[w][block!]
            }
            let state = RunState()
            for b in (block ?? 0)..<model.blocks.count {
                model.runLayer(b, &x, tokens: context, workspace: workspace, kernels: options.kernels, state: state)
            }
            let logits = model.head(x, outputs: first..<(context - 1), workspace: workspace, kernels: options.kernels, state: state)
            total += Divergence.meanKLD(logits, base: baseLogits[w], rows: context - 1 - first, vocab: model.vocab, threads: options.threads)
        }
        let kld = total / Double(count)
        guard kld.isFinite else { throw QuantError(.nonFinite, tensor: name, "the model's logits with this tensor quantized are not finite") }
        return kld
    }

    /// The mean KL divergence from the base of another model on the same windows (the written result, to check the
    /// prediction).
    public func kld(of other: DecoderModel) throws -> Double {
        var total = 0.0
        let state = RunState()
        for (w, window) in windows.enumerated() {
            let logits = try other.logits(window, outputs: first..<(context - 1), workspace: workspace, kernels: options.kernels, state: state)
            total += Divergence.meanKLD(logits, base: baseLogits[w], rows: context - 1 - first, vocab: model.vocab, threads: options.threads)
        }
        return total / Double(windows.count)
    }

    /// `values` (rows × columns) quantized to `type` as `ingot quantize` does: row by row under `importance` for the
    /// weighted types (a row of `columns` weights per matrix of `rowsPerMatrix` rows); rows shared among the workers.
    static func quantize(_ values: [Float], rows: Int, columns: Int, type: GGMLType, importance: [Float]?, rowsPerMatrix: Int,
                         threads: Int) throws -> [UInt8] {
        let rowBytes = columns / type.blockSize * type.bytesPerBlock
        var out = [UInt8](repeating: 0, count: rows * rowBytes)
        let parts = max(1, min(threads, rows))
        let pool = ScratchPool(count: parts)
        try values.withUnsafeBufferPointer { vp in try out.withUnsafeMutableBytes { op in
            let v = UnsafeSendable(vp.baseAddress!), o = UnsafeSendable(UnsafePointer(op.baseAddress!.assumingMemoryBound(to: UInt8.self)))
            try parallelFor(0..<parts, threads: parts) { part, _ in
                let r0 = rows * part / parts, r1 = rows * (part + 1) / parts
                guard r1 > r0 else { return }
                let dst = UnsafeMutableRawPointer(mutating: o.pointer)
                guard let importance else {
                    BlockCodec.quantize(type, v.pointer + r0 * columns, count: (r1 - r0) * columns, into: dst + r0 * rowBytes, scratch: &pool.slots[part])
                    return
                }
                importance.withUnsafeBufferPointer { w in
                    // Runs of rows within one matrix share its weights.
                    var r = r0
                    while r < r1 {
                        let m = r / max(1, rowsPerMatrix), end = min(r1, (m + 1) * max(1, rowsPerMatrix))
                        BlockCodec.quantize(type, v.pointer + r * columns, rows: end - r, columns: columns, importance: w.baseAddress! + m * columns,
                                            into: dst + r * rowBytes, scratch: &pool.slots[part])
                        r = end
                    }
                }
            }
        } }
        return out
    }
}


