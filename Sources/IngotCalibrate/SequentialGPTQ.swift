import IngotArchitectures
import IngotConvert
import IngotFormats
import IngotModel
import IngotNumerics

/// GPTQ over a model, block by block, as llm-compressor's sequential pipeline runs it: the calibration windows'
/// hidden states enter block i; one pass through the block with its weights as they are records every linear layer's
/// Hessian (Σ x xᵀ over its input rows); each weight the writer will ask for is quantized by `GPTQ` against it and put
/// in the model in place of the original; a second pass through the now quantized block gives the hidden states that
/// enter block i + 1. So every block is calibrated on the activations of the quantized blocks before it.
///
/// The writer asks for weights in its own order (`CalibratedQuantizer`); a weight of a block not yet reached runs the
/// blocks up to it, and the results it did not ask for yet wait in a temporary file (`SpillFile`), so memory holds the
/// windows' hidden states, one block's Hessians and one weight at a time, whatever the model's size. Only the weights of
/// the blocks take part: the embedding and an untied output head are rounded to nearest.
public final class SequentialGPTQ: CalibratedQuantizer, @unchecked Sendable {
    public struct Progress: Sendable {
        public var block: Int, blocks: Int
        public var seconds: Double
    }

    /// One weight as quantized: its name and GPTQ's loss; `roundedToNearest` where its Hessian could not be factored.
    public struct Outcome: Sendable {
        public var name: String
        public var loss: Double
        public var roundedToNearest: Bool
    }

    let model: DecoderModel
    let options: GPTQOptions
    let kernels: KernelChoice
    let workspace: MatMulWorkspace
    let state = RunState()
    let windows: [[Int32]]
    /// The hidden states entering block `next`, one array per window.
    var hidden: [[Float]]
    var next = 0
    var planned: [String: CalibratedWeight] = [:]
    var stored: [String: SpillFile.Entry] = [:]
    var blockTargets: [String: BlockTarget] = [:]
    /// AWQ's rescaling of the model (by GGUF name) that GPTQ calibrates under (`smooth`).
    var smoothing: [String: ChannelScaling] = [:]
    var storedBlocks: [String: (offset: Int, count: Int)] = [:]
    let spill: SpillFile
    let progress: (Progress) -> Void
    let clock = monotonicSeconds()
    public private(set) var outcomes: [Outcome] = []
    public var totalLoss: Double { outcomes.reduce(0) { $0 + $1.loss } }
    /// Where the time went: the passes that record the Hessians, GPTQ itself, the passes through the quantized blocks.
    public private(set) var seconds = (calibration: 0.0, quantization: 0.0, propagation: 0.0)
    public var windowCount: Int { windows.count }
    public var tokenCount: Int { windows.reduce(0) { $0 + $1.count } }

    /// GPTQ calibrated on `windows` of token ids (`calibrationWindows` cuts a text as `ingot calibrate` does), embedded
    /// here.
    public init(model: DecoderModel, windows: [[Int32]], options: GPTQOptions, kernels: KernelChoice = Kernels.choice,
                progress: @escaping (Progress) -> Void = { _ in }) throws {
        self.windows = windows
        self.model = model
        self.options = options
        self.kernels = kernels
        self.progress = progress
        workspace = MatMulWorkspace(threads: options.threads)
        hidden = try windows.map { try model.embed($0, kernels: kernels) }
        spill = try SpillFile()
        model.activationRounding = .exact
        model.observer = nil
    }

    /// The windows of `context` tokens `ingot calibrate` cuts `text` into (`--calibration` named where it is too
    /// short), for the model's vocabulary.
    public static func calibrationWindows(model: DecoderModel, tokenizer: Tokenizer, text: [UInt8], context: Int, chunks: Int?) throws -> [[Int32]] {
        if tokenizer.vocabularySize != model.vocab {
            throw ModelError(.vocabularyMismatch, field: "tokenizer.ggml.tokens",
                             "the tokenizer has \(tokenizer.vocabularySize) tokens and the model's embedding \(model.vocab) rows", path: model.path)
        }
        guard context >= 16 else {
            throw ModelError(.invalidValue, field: "--ctx", "the context must be at least 16 tokens")
        }
        do {
            return try tokenizer.windows(text, context: context, chunks: chunks).map(tokenizer.runnable)
        } catch var e as ModelError where e.code == .textTooShort {
            e.field = "--calibration"
            throw e
        }
    }

    public func prepare(_ weights: [CalibratedWeight]) throws -> [String: ChannelScaling] {
        for w in weights {
            guard let l = model.linear(named: w.modelName), Self.block(of: w.modelName) != nil else { continue }
            guard l.rows == w.rows, l.columns == w.cols, w.rowOrder.map({ $0.count == w.rows }) ?? true else {
                throw ModelError(.shapeMismatch, field: "tensor '\(w.name)'",
                                 "the forward pass reads \(w.modelName) as \(l.rows) x \(l.columns), the writer \(w.rows) x \(w.cols)", path: model.path)
            }
            planned[w.name] = w
        }
        return [:]
    }

    public func quantize(_ name: String) throws -> (codes: [Int32], grid: IntegerGrid)? {
        guard let w = planned[name], let block = Self.block(of: w.modelName) else { return nil }
        while next <= block && next < model.blocks.count { try advance() }
        guard let entry = stored.removeValue(forKey: name) else { return nil }
        return try spill.read(entry)
    }

    /// Calibrates and quantizes the model as `scaling` (AWQ's, by GGUF name) rescales it: the norms' weights are divided
    /// at once; each block's linear layers are rescaled when the block is reached (F32 replacements, one block at a
    /// time), so that GPTQ's Hessians are the smoothed inputs' and its weights the smoothed weights.
    public func smooth(_ scaling: [String: ChannelScaling]) throws {
        precondition(next == 0, "smooth before the first block runs")
        for (name, c) in scaling where model.linear(named: name) == nil {
            if let d = c.columnDivisors { try model.divideNorm(name, by: d) }
        }
        smoothing = scaling
    }

    /// A weight of a GGUF output that GPTQ rounds in its block type (`BlockGrid`), by its GGUF name.
    public struct BlockTarget: Sendable {
        public var name: String
        public var type: GGMLType
        /// One weight per column, the importance matrix's as llama-quantize normalizes it: the type's scales are fitted
        /// under it as with `--imatrix`; nil: as without.
        public var importance: [Float]?
        public init(name: String, type: GGMLType, importance: [Float]? = nil) {
            (self.name, self.type, self.importance) = (name, type, importance)
        }
    }

    /// Learns the weights of a GGUF output before the first is asked for; returns the names GPTQ takes: the linear
    /// layers of the blocks in a type `BlockGrid` rounds. The rest (the embedding, the output head, the codebook types)
    /// are for the type's own quantizer.
    public func prepare(blocks targets: [BlockTarget]) throws -> Set<String> {
        var taken = Set<String>()
        for t in targets where BlockGrid.types.contains(t.type) {
            guard let l = model.linear(named: t.name), Self.block(of: t.name) != nil, l.columns % t.type.blockSize == 0 else { continue }
            if let w = t.importance, w.count != l.columns {
                throw ModelError(.shapeMismatch, field: "tensor '\(t.name)'",
                                 "the importance matrix has \(w.count) columns and the weight \(l.columns)", path: model.path)
            }
            blockTargets[t.name] = t
            taken.insert(t.name)
        }
        return taken
    }

    /// The stored blocks of a weight `prepare(blocks:)` took, computing the blocks up to its own; nil for another.
    public func quantizedBlocks(_ name: String) throws -> [UInt8]? {
        guard blockTargets[name] != nil, let block = Self.block(of: name) else { return nil }
        while next <= block && next < model.blocks.count { try advance() }
        guard let entry = storedBlocks.removeValue(forKey: name) else { return nil }
        return try spill.read(offset: entry.offset, count: entry.count)
    }

    /// The block of a GGUF name `blk.N.…`.
    static func block(of name: String) -> Int? {
        let parts = name.split(separator: ".", maxSplits: 2)
        guard parts.count == 3, parts[0] == "blk" else { return nil }
        return Int(parts[1])
    }

    /// A weight of block `next` to quantize: for a folder's integer scheme or a GGUF block type.
    enum Target {
        case scheme(CalibratedWeight)
        case block(BlockTarget)

        var name: String {
            switch self { case .scheme(let c): c.name; case .block(let b): b.name }
        }
        var modelName: String {
            switch self { case .scheme(let c): c.modelName; case .block(let b): b.name }
        }
    }

    /// Calibrates, quantizes and runs block `next`.
    func advance() throws {
        let i = next
        let targets = planned.values.filter { Self.block(of: $0.modelName) == i }.map(Target.scheme)
            + blockTargets.values.filter { Self.block(of: $0.name) == i }.map(Target.block)
        var t0 = monotonicSeconds()
        // The block's linear layers as AWQ rescaled them.
        var smoothed: [String] = []
        for (name, c) in smoothing where Self.block(of: name) == i {
            guard let l = model.linear(named: name) else { continue }
            var w = [Float](repeating: 0, count: l.rows * l.columns)
            w.withUnsafeMutableBufferPointer {
                l.weight.dequantize(rows: 0, count: l.rows, into: $0.baseAddress!, kernels: kernels)
                c.apply($0.baseAddress!, firstRow: 0, count: l.rows, cols: l.columns)
            }
            try model.replaceWeight(name, values: w)
            smoothed.append(name)
        }
        if !targets.isEmpty {
            let sums = HessianSums(names: Set(targets.map(\.modelName)), workspace: workspace, kernels: kernels)
            model.observer = sums
            var scratch = [Float]()
            for (w, tokens) in windows.enumerated() {
                scratch = hidden[w]
                sums.newWindow()
                model.runLayer(i, &scratch, tokens: tokens.count, workspace: workspace, kernels: kernels, state: state)
            }
            model.observer = nil
            seconds.calibration += monotonicSeconds() - t0
            t0 = monotonicSeconds()
            var factors: [String: GPTQ.Factor] = [:]
            for t in targets.sorted(by: { $0.modelName < $1.modelName }) {
                guard let l = model.linear(named: t.modelName), let key = sums.key(of: t.modelName) else { continue }
                let (rows, cols) = (l.rows, l.columns)
                if factors[key] == nil, let h = sums.hessian(of: t.modelName) {
                    factors[key] = h.withUnsafeBufferPointer { GPTQ.factor(hessian: $0.baseAddress!, cols: cols, options: options) }
                }
                guard let factor = factors[key], factor.cols == cols else { continue }
                var w = [Float](repeating: 0, count: rows * cols)
                w.withUnsafeMutableBufferPointer { l.weight.dequantize(rows: 0, count: rows, into: $0.baseAddress!, kernels: kernels) }
                // Quantized in the float type the scheme computes in, as its round to nearest does.
                if case .scheme(let c) = t, c.rule.floatType != .f32 { for k in w.indices { w[k] = c.rule.floatType.roundTrip(w[k]) } }
                if let bad = w.firstIndex(where: { !$0.isFinite }) {
                    throw ModelError(.invalidValue, field: "tensor '\(t.name)'",
                                     "value \(bad) is \(w[bad]): NaN or infinite weights cannot be quantized", path: model.path)
                }
                let r: GPTQResult
                switch t {
                case .scheme(let c):
                    let grid = w.withUnsafeBufferPointer { IntegerGrid(c.rule, rows: rows, cols: cols, groupSize: c.groupSize, fitting: $0.baseAddress!) }
                    r = w.withUnsafeBufferPointer { GPTQ.quantize($0.baseAddress!, rows: rows, factor: factor, grid: grid, options: options) }
                    if let order = c.rowOrder {
                        var codes = [Int32](repeating: 0, count: r.codes.count)
                        for (row, src) in order.enumerated() {
                            for k in 0..<cols { codes[row * cols + k] = r.codes[src * cols + k] }
                        }
                        stored[c.name] = try spill.write(codes: codes, grid: grid.reordered(rows: order))
                    } else {
                        stored[c.name] = try spill.write(codes: r.codes, grid: grid)
                    }
                case .block(let b):
                    let fitted = w.withUnsafeBufferPointer { x in
                        (b.importance ?? []).withUnsafeBufferPointer { imp in
                            BlockGrid(b.type, rows: rows, cols: cols, fitting: x.baseAddress!, importance: b.importance == nil ? nil : imp.baseAddress,
                                      threads: options.threads)
                        }
                    }
                    guard let grid = fitted else { continue }
                    r = w.withUnsafeBufferPointer { GPTQ.quantize($0.baseAddress!, rows: rows, factor: factor, grid: grid, options: options) }
                    let bytes = r.codes.withUnsafeBufferPointer { grid.encode($0.baseAddress!) }
                    storedBlocks[b.name] = (try spill.write(bytes: bytes), bytes.count)
                }
                try model.replaceWeight(t.modelName, values: r.values)
                outcomes.append(Outcome(name: t.name, loss: r.loss, roundedToNearest: r.roundedToNearest))
            }
        }
        seconds.quantization += monotonicSeconds() - t0
        t0 = monotonicSeconds()
        for (w, tokens) in windows.enumerated() {
            model.runLayer(i, &hidden[w], tokens: tokens.count, workspace: workspace, kernels: kernels, state: state)
        }
        seconds.propagation += monotonicSeconds() - t0
        // The block never runs again: its quantized weights (F32) go.
        for t in targets { model.restoreWeight(t.modelName) }
        for name in smoothed { model.restoreWeight(name) }
        if let bad = hidden.firstIndex(where: { NonFinite.first(in: $0) != nil }) {
            throw ModelError(.nonFinite, field: "blk.\(i)", "window \(bad + 1) has non-finite activations after block \(i) was quantized", path: model.path)
        }
        next += 1
        progress(Progress(block: next, blocks: model.blocks.count, seconds: monotonicSeconds() - clock))
    }
}

/// Σ x xᵀ over the input rows of each named linear layer (F32, columns × columns, the lower triangle accumulated,
/// the upper filled in when asked for). Layers that read the same input
/// one after another (q, k and v; gate and up) share one sum: an input at the same address with the same shape and
/// the same first row as the previous layer's, within a window (`newWindow` starts one).
final class HessianSums: LinearObserver {
    let names: Set<String>
    let workspace: MatMulWorkspace
    let kernels: KernelChoice
    private var sums: [String: [Float]] = [:]
    private var sharedWith: [String: String] = [:]
    private var last: (pointer: UnsafePointer<Float>, rows: Int, columns: Int, name: String, firstRow: [Float])?
    private var transposed: [Float] = [], product: [Float] = []

    init(names: Set<String>, workspace: MatMulWorkspace, kernels: KernelChoice) {
        (self.names, self.workspace, self.kernels) = (names, workspace, kernels)
    }

    func newWindow() { last = nil }

    /// Per sum: the windows it saw and its width.
    private var seen: [String: (windows: Int, columns: Int)] = [:]

    /// The name whose sum `name` shares (itself when it has its own); nil when its input was never seen.
    func key(of name: String) -> String? {
        let key = sharedWith[name] ?? name
        return sums[key] == nil ? nil : key
    }

    /// llm-compressor's normalization, 2/windows · Σ x xᵀ (one sample per window): GPTQ's result does not depend on
    /// it, but its loss is then comparable.
    func hessian(of name: String) -> [Float]? {
        let key = sharedWith[name] ?? name
        guard var h = sums[key], let (n, c) = seen[key], n > 0 else { return nil }
        let f = 2 / Float(n)
        for i in 0..<c {
            for r in 0...i {
                h[i * c + r] *= f
                h[r * c + i] = h[i * c + r]
            }
        }
        return h
    }

    func observe(_ tensor: String, matrix: MatrixIndex?, input: UnsafeBufferPointer<Float>, rows n: Int, columns c: Int) {
        guard matrix == nil, names.contains(tensor), n > 0, c > 0, let x = input.baseAddress, input.count >= n * c else { return }
        if let l = last, l.name != tensor, l.pointer == x, l.rows == n, l.columns == c,
           l.firstRow.elementsEqual(UnsafeBufferPointer(start: x, count: c)), sharedWith[tensor, default: l.name] == l.name {
            sharedWith[tensor] = sharedWith[l.name] ?? l.name
            return
        }
        // Xᵀ (c × n), then XᵀX = Xᵀ·(Xᵀ)ᵀ by the forward pass's matrix product, only the lower triangle: each band of
        // `band` columns against the columns from its own on; the upper triangle is its mirror.
        if transposed.count < n * c { transposed = [Float](repeating: 0, count: n * c) }
        if product.count < c * c { product = [Float](repeating: 0, count: c * c) }
        transposed.withUnsafeMutableBufferPointer { t in
            for r in 0..<n { for j in 0..<c { t[j * n + r] = x[r * c + j] } }
        }
        var acc = sums.removeValue(forKey: tensor) ?? [Float](repeating: 0, count: c * c)
        let band = 96
        transposed.withUnsafeBufferPointer { t in product.withUnsafeMutableBufferPointer { p in
            acc.withUnsafeMutableBufferPointer { a in
                var r0 = 0
                while r0 < c {
                    let r1 = min(c, r0 + band)
                    // p[(i - r0) · width + (r - r0)] = Σ_k X[k][i] X[k][r] for columns i ≥ r0 and r in the band.
                    guard let m = StoredMatrix(type: .f32, rows: r1 - r0, cols: n, data: UnsafeRawPointer(t.baseAddress! + r0 * n)) else { return }
                    QuantizedMatMul.multiply(m, t.baseAddress! + r0 * n, tokens: c - r0, p.baseAddress!, ldy: r1 - r0,
                                             workspace: workspace, activations: .exact, kernels: kernels)
                    for i in r0..<c {
                        for r in r0..<min(r1, i + 1) { a[i * c + r] += p[(i - r0) * (r1 - r0) + (r - r0)] }
                    }
                    r0 = r1
                }
            }
        } }
        sums[tensor] = acc
        seen[tensor] = ((seen[tensor]?.windows ?? 0) + 1, c)
        last = (x, n, c, tensor, Array(UnsafeBufferPointer(start: x, count: c)))
    }
}

/// AWQ's smoothing, then GPTQ on the smoothed model (llm-compressor's recipe of an AWQModifier followed by a
/// GPTQModifier): the scales are searched as `AWQ` does (each candidate judged with the layers rounded to nearest), the
/// model is rescaled by them, and GPTQ calibrates and quantizes the rescaled weights block by block. The writer
/// rescales the other tensors AWQ touches (the norms) as for AWQ alone. The two must share one model.
public final class SmoothedGPTQ: CalibratedQuantizer, @unchecked Sendable {
    public let awq: AWQ
    public let gptq: SequentialGPTQ

    public init(awq: AWQ, gptq: SequentialGPTQ) {
        precondition(awq.model === gptq.model, "AWQ and GPTQ must run on one model")
        (self.awq, self.gptq) = (awq, gptq)
    }

    public func prepare(_ weights: [CalibratedWeight]) throws -> [String: ChannelScaling] {
        let scaling = try awq.search(awq.rounding ?? IntegerGridRounding(weights))
        try gptq.smooth(scaling)
        _ = try gptq.prepare(weights)
        return try awq.bySource(scaling)
    }

    public func quantize(_ name: String) throws -> (codes: [Int32], grid: IntegerGrid)? {
        try gptq.quantize(name)
    }
}
