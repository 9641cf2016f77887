#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IngotArchitectures
import IngotConvert
import IngotFormats
import IngotModel
import IngotNumerics

/// AWQ's settings, llm-compressor's defaults (`AWQModifier`).
public struct AWQOptions: Sendable {
    /// Candidate scales per smoothing (`n_grid`).
    public var gridPoints = 20
    /// How candidates are made (`duo_scaling`): from activations and weights (`duo`: the identity, then x̄^r / w̄^(1-r)
    /// for r over [0, 1]), from activations alone (`activations`: x̄^r), or half the grid each (`both`).
    public enum Scaling: String, Sendable, CaseIterable { case duo, activations, both }
    public var scaling = Scaling.duo
    public var threads = 2
    public init() {}

    /// The grid: (r, whether the weights' magnitudes take part), as `AWQModifier._get_grid_search_params` lists it.
    public var candidates: [(ratio: Float, duo: Bool)] {
        let n = max(2, gridPoints)
        switch scaling {
        case .duo: return [(0, false)] + (0..<(n - 1)).map { (Float($0) / Float(n - 2), true) }
        case .activations: return (0..<n).map { (Float($0) / Float(n - 1), false) }
        case .both:
            let h = max(2, n / 2)
            return (0..<h).flatMap { i in [false, true].map { (Float(i) / Float(h - 1), $0) } }
        }
    }
}

/// How AWQ's search rounds a balance layer, as the output will store it.
public protocol WeightRounding: Sendable {
    /// Columns per group of the weight the model names `name` (GGUF name): what AWQ normalizes weight magnitudes over;
    /// nil when the output does not quantize it (AWQ then leaves it out of the search, as llm-compressor does).
    func groupSize(of name: String) -> Int?
    /// Rounds `rows` × `cols` floats in place to the values the stored format gives back; the weight's columns were
    /// multiplied by `columnScales` (an importance-weighted quantizer divides its weights by their squares).
    func roundTrip(_ name: String, _ w: UnsafeMutablePointer<Float>, rows: Int, cols: Int, columnScales: UnsafePointer<Float>)
}

/// The integer schemes' rounding (MLX affine, compressed-tensors' W4A16/W8A16): the weight rounded to the scheme's
/// float type, each group fitted, every value rounded to its code and back, as round to nearest stores it.
public struct IntegerGridRounding: WeightRounding {
    let byModelName: [String: CalibratedWeight]
    public init(_ weights: [CalibratedWeight]) {
        byModelName = Dictionary(weights.map { ($0.modelName, $0) }, uniquingKeysWith: { a, _ in a })
    }

    public func groupSize(of name: String) -> Int? { byModelName[name]?.groupSize }

    public func roundTrip(_ name: String, _ w: UnsafeMutablePointer<Float>, rows: Int, cols: Int, columnScales: UnsafePointer<Float>) {
        guard let t = byModelName[name], t.rows == rows, t.cols == cols else { return }
        let type = t.rule.floatType
        if type != .f32 { for k in 0..<(rows * cols) { w[k] = type.roundTrip(w[k]) } }
        let address = Int(bitPattern: w)
        // Groups lie within rows: chunks of rows are fitted and rounded independently.
        let chunks = max(1, min(16, rows / 32))
        try? parallelFor(0..<chunks, threads: 2) { part, _ in
            let r0 = rows * part / chunks, r1 = rows * (part + 1) / chunks
            guard r1 > r0, let p = UnsafeMutablePointer<Float>(bitPattern: address) else { return }
            let x = p + r0 * cols
            IntegerGrid(t.rule, rows: r1 - r0, cols: cols, groupSize: t.groupSize, fitting: x).roundTrip(x)
        }
    }
}

/// A GGUF block type's rounding: each row quantized to the type the plan gives the weight and dequantized, with the
/// importance matrix's weights (rescaled with the columns) where the type uses them.
public struct BlockRounding: WeightRounding {
    let types: [String: GGMLType]
    let importance: [String: [Float]]

    /// `types`: each weight's target type by GGUF name; `importance`: per weight, one weight per column.
    public init(types: [String: GGMLType], importance: [String: [Float]] = [:]) {
        (self.types, self.importance) = (types, importance)
    }

    /// The sub-block a type's scale covers (what AWQ normalizes over): 16 values for Q2_K, Q3_K, Q6_K; 32 for the rest.
    public func groupSize(of name: String) -> Int? {
        guard let t = types[name], ![.f32, .f16, .bf16].contains(t) else { return nil }
        return [.q2_K, .q3_K, .q6_K].contains(t) ? 16 : 32
    }

    public func roundTrip(_ name: String, _ w: UnsafeMutablePointer<Float>, rows: Int, cols: Int, columnScales: UnsafePointer<Float>) {
        guard let type = types[name], cols % type.blockSize == 0, let rowBytes = type.byteCount(elements: cols) else { return }
        let weights: [Float]? = importance[name].flatMap { imp in
            imp.count == cols ? (0..<cols).map { imp[$0] / (columnScales[$0] * columnScales[$0]) } : nil
        }
        let address = Int(bitPattern: w)
        let chunks = max(1, min(16, rows / 16))
        try? parallelFor(0..<chunks, threads: 2) { part, _ in
            let r0 = rows * part / chunks, r1 = rows * (part + 1) / chunks
            guard r1 > r0, let p = UnsafeMutablePointer<Float>(bitPattern: address) else { return }
            var scratch = QuantScratch()
            var bytes = [UInt8](repeating: 0, count: (r1 - r0) * rowBytes)
            bytes.withUnsafeMutableBytes { b in
                let x = p + r0 * cols
                if let weights {
                    weights.withUnsafeBufferPointer {
                        BlockCodec.quantize(type, x, rows: r1 - r0, columns: cols, importance: $0.baseAddress!, into: b.baseAddress!, scratch: &scratch)
                    }
                } else {
                    BlockCodec.quantize(type, x, count: (r1 - r0) * cols, into: b.baseAddress!, scratch: &scratch)
                }
                BlockCodec.dequantize(type, b.baseAddress!, count: (r1 - r0) * cols, into: x)
            }
        }
    }
}

/// AWQ (Lin et al., "AWQ: Activation-aware Weight Quantization for LLM Compression and Acceleration", 2023), as
/// llm-compressor 0.14's `AWQModifier` searches it: for each smoothing of each block (`DecoderModel.smoothings`),
///
///     x̄ = mean |x| per input column of the balance layers, over the calibration windows' tokens
///     w̄ = mean over the balance layers' rows of |W| / (max |W| of its group + 1e-6), per column
///     for each candidate (r, duo):  s = max(x̄^r / (w̄^(1-r) + 1e-4), 1e-4)   (duo; else max(x̄^r, 1e-4))
///                                   s /= √(max s · min s)
///                                   loss = mean (judge(Q(W·s)/s) - judge(W))² over the windows
///     keep the s of least loss (r = 0 without duo is the identity: never worse than round to nearest)
///
/// where judge is the branch the balance layers belong to (attention, feed-forward) or the balance layer alone, run on
/// the inputs it saw, and Q the output's own rounding (`WeightRounding`). The smoother's output channels are divided by
/// s and the balance layers' columns multiplied by it; the writer then quantizes the rescaled weights as it would
/// the originals (`ChannelScaling`, by the input's tensor names). As in llm-compressor, the hidden states go from block
/// to block unquantized (rescaling leaves them as they were), so the search needs one pass per block plus its grid.
public final class AWQ: CalibratedQuantizer, @unchecked Sendable {
    /// Blocks searched so far, as GPTQ reports its blocks.
    public typealias Progress = SequentialGPTQ.Progress

    /// One smoothing as searched: its smoother, the chosen candidate, and the loss of round to nearest and of it.
    public struct Outcome: Sendable {
        public var smoother: String
        public var ratio: Float
        public var duo: Bool
        public var initialLoss: Double, loss: Double
    }

    let model: DecoderModel
    let options: AWQOptions
    let kernels: KernelChoice
    let workspace: MatMulWorkspace
    let state = RunState()
    let windows: [[Int32]]
    let progress: (Progress) -> Void
    /// Rounding for a search run through `prepare` (the folder writer); nil: the integer schemes of the weights asked.
    let rounding: (any WeightRounding)?
    public private(set) var outcomes: [Outcome] = []
    public private(set) var seconds = 0.0
    /// Where the time went: the passes through the blocks, rounding the candidates, running the judges on them.
    public private(set) var split = (passes: 0.0, rounding: 0.0, judging: 0.0)
    public var windowCount: Int { windows.count }
    public var tokenCount: Int { windows.reduce(0) { $0 + $1.count } }

    /// Calibrates on windows of token ids (`SequentialGPTQ.calibrationWindows` cuts a text as `ingot calibrate` does).
    public init(model: DecoderModel, windows: [[Int32]], options: AWQOptions, rounding: (any WeightRounding)? = nil,
                kernels: KernelChoice = Kernels.choice, progress: @escaping (Progress) -> Void = { _ in }) {
        (self.model, self.options, self.kernels, self.progress, self.rounding) = (model, options, kernels, progress, rounding)
        self.windows = windows
        workspace = MatMulWorkspace(threads: options.threads)
        // The search compares small differences of the judges' outputs: every product and the attention in F32, as
        // llm-compressor runs it on a model loaded in F32.
        model.activationRounding = .exact
        model.halfPrecisionCache = false
        model.observer = nil
    }

    /// The search with the integer schemes of the weights the writer asks for, keyed by the input's tensor names.
    public func prepare(_ weights: [CalibratedWeight]) throws -> [String: ChannelScaling] {
        try bySource(try search(rounding ?? IntegerGridRounding(weights)))
    }

    /// A rescaling by GGUF name (`search`'s) keyed by the input's tensor names.
    public func bySource(_ scaling: [String: ChannelScaling]) throws -> [String: ChannelScaling] {
        var bySource: [String: ChannelScaling] = [:]
        for (name, c) in scaling {
            guard let source = model.sourceName(of: name) else {
                throw ModelError(.missingTensor, field: name, "AWQ rescales a tensor the input does not hold", path: model.path)
            }
            bySource[source] = c
        }
        return bySource
    }

    /// Round to nearest on the rescaled weights.
    public func quantize(_ name: String) throws -> (codes: [Int32], grid: IntegerGrid)? { nil }

    /// Searches every block's smoothings; the rescaling of every tensor it touches, by GGUF name.
    public func search(_ rounding: any WeightRounding) throws -> [String: ChannelScaling] {
        let clock = monotonicSeconds()
        var scaling: [String: ChannelScaling] = [:]
        var hidden = try windows.map { try model.embed($0, kernels: kernels) }
        for i in model.blocks.indices {
            let maps = model.smoothings(block: i).filter { m in m.balance.contains { rounding.groupSize(of: $0.name) != nil } }
            // One pass through the block records what each smoothing's judge reads, and moves the hidden states on.
            let t0 = monotonicSeconds()
            let capture = InputCapture(names: Set(maps.map { $0.balance[0].name }))
            model.observer = capture
            for (w, tokens) in windows.enumerated() {
                capture.window = w
                model.runLayer(i, &hidden[w], tokens: tokens.count, workspace: workspace, kernels: kernels, state: state)
            }
            model.observer = nil
            split.passes += monotonicSeconds() - t0
            if let bad = hidden.firstIndex(where: { NonFinite.first(in: $0) != nil }) {
                throw ModelError(.nonFinite, field: "blk.\(i)", "window \(bad + 1) has non-finite activations after block \(i)", path: model.path)
            }
            for m in maps {
                guard let inputs = capture.inputs[m.balance[0].name], inputs.count == windows.count else { continue }
                let s = try best(m, inputs: inputs, rounding: rounding)
                for l in m.balance {
                    try compose(&scaling, l.name, rows: l.rows, cols: l.columns) { c in
                        c.columnMultipliers = zip(c.columnMultipliers ?? Array(repeating: 1, count: s.count), s).map { $0 * $1 }
                    }
                }
                switch m.smoother {
                case .norm(let n):
                    try compose(&scaling, n, rows: 1, cols: s.count) { $0.columnDivisors = s }
                case .linear(let n):
                    let cols = model.linear(named: n)?.columns ?? 0
                    try compose(&scaling, n, rows: s.count, cols: cols) { $0.rowDivisors = s }
                }
            }
            progress(Progress(block: i + 1, blocks: model.blocks.count, seconds: monotonicSeconds() - clock))
        }
        seconds = monotonicSeconds() - clock
        return scaling
    }

    /// Adds to the rescaling of the tensor the model names `name`.
    func compose(_ scaling: inout [String: ChannelScaling], _ name: String, rows: Int, cols: Int, _ change: (inout ChannelScaling) -> Void) throws {
        var c = scaling[name] ?? ChannelScaling()
        change(&c)
        guard c.fits(rows: rows, cols: cols) else {
            throw ModelError(.shapeMismatch, field: name, "AWQ's scales do not fit its \(rows) x \(cols) values", path: model.path)
        }
        scaling[name] = c
    }

    /// The scales of least loss for smoothing `m`, whose first balance layer read `inputs` (one array per window).
    func best(_ m: Smoothing, inputs: [[Float]], rounding: any WeightRounding) throws -> [Float] {
        let cols = m.balance[0].columns
        guard cols > 0 else {
            throw ModelError(.shapeMismatch, field: m.smootherName, "its balance layers read no columns", path: model.path)
        }
        // x̄: mean |x| per column over every token.
        var sum = [Double](repeating: 0, count: cols)
        var tokens = 0
        for x in inputs {
            let n = x.count / cols
            for t in 0..<n { for c in 0..<cols { sum[c] += Double(abs(x[t * cols + c])) } }
            tokens += n
        }
        let xMean = sum.map { Float($0 / Double(max(1, tokens))) }
        // The balance layers as stored, in F32, and w̄ over those the output quantizes.
        let quantized = m.balance.filter { rounding.groupSize(of: $0.name) != nil }
        var originals: [[Float]] = []
        var wSum = [Double](repeating: 0, count: cols)
        var wRows = 0
        for l in quantized {
            var w = [Float](repeating: 0, count: l.rows * l.columns)
            w.withUnsafeMutableBufferPointer { l.weight.dequantize(rows: 0, count: l.rows, into: $0.baseAddress!, kernels: kernels) }
            if let bad = w.firstIndex(where: { !$0.isFinite }) {
                throw ModelError(.invalidValue, field: "tensor '\(l.name)'",
                                 "value \(bad) is \(w[bad]): NaN or infinite weights cannot be quantized", path: model.path)
            }
            let g = rounding.groupSize(of: l.name) ?? cols
            for r in 0..<l.rows {
                var c0 = 0
                while c0 < cols {
                    let c1 = min(cols, c0 + g)
                    var mx: Float = 0
                    for c in c0..<c1 { mx = max(mx, abs(w[r * cols + c])) }
                    for c in c0..<c1 { wSum[c] += Double(abs(w[r * cols + c]) / (mx + 1e-6)) }
                    c0 = c1
                }
            }
            wRows += l.rows
            originals.append(w)
        }
        let wMean = wSum.map { Float($0 / Double(max(1, wRows))) }
        // What the judge gives with the weights as they are.
        let reference = judge(m, inputs: inputs)
        defer { for l in quantized { model.restoreWeight(l.name) } }
        var best: (loss: Double, scales: [Float], ratio: Float, duo: Bool)?
        var initial: Double?
        for (ratio, duo) in options.candidates {
            var s = (0..<cols).map { c -> Float in
                duo ? max(powf(xMean[c], ratio) / (powf(wMean[c], 1 - ratio) + 1e-4), 1e-4) : max(powf(xMean[c], ratio), 1e-4)
            }
            let norm = (s.max()! * s.min()!).squareRoot()  // s has cols > 0 values
            s = s.map { v in let x = v / norm; return x.isFinite ? x : 1 }
            var t0 = monotonicSeconds()
            for (l, original) in zip(quantized, originals) {
                var w = original
                let rows = l.rows
                w.withUnsafeMutableBufferPointer { p in
                    s.withUnsafeBufferPointer { sp in
                        for r in 0..<rows { for c in 0..<cols { p[r * cols + c] *= sp[c] } }
                        rounding.roundTrip(l.name, p.baseAddress!, rows: rows, cols: cols, columnScales: sp.baseAddress!)
                        for r in 0..<rows { for c in 0..<cols { p[r * cols + c] /= sp[c] } }
                    }
                }
                try model.replaceWeight(l.name, values: w)
            }
            split.rounding += monotonicSeconds() - t0
            t0 = monotonicSeconds()
            let out = judge(m, inputs: inputs)
            split.judging += monotonicSeconds() - t0
            var se = 0.0, count = 0
            for (a, b) in zip(out, reference) {
                for k in a.indices { let d = Double(a[k] - b[k]); se += d * d }
                count += a.count
            }
            let loss = se / Double(max(1, count))
            if initial == nil { initial = loss }
            if loss.isFinite, loss < (best?.loss ?? .infinity) { best = (loss, s, ratio, duo) }
        }
        guard let best else {
            throw ModelError(.nonFinite, field: m.smootherName, "no candidate scale of AWQ's search gave a finite loss", path: model.path)
        }
        outcomes.append(Outcome(smoother: m.smootherName, ratio: best.ratio, duo: best.duo, initialLoss: initial ?? best.loss, loss: best.loss))
        return best.scales
    }

    /// The judge's output for each window's input.
    func judge(_ m: Smoothing, inputs: [[Float]]) -> [[Float]] {
        let first = m.balance[0], cols = first.columns
        return inputs.map { x in
            let n = x.count / cols
            switch m.judge {
            case .branch(let b):
                var out = [Float](repeating: 0, count: n * model.hidden)
                x.withUnsafeBufferPointer { xp in out.withUnsafeMutableBufferPointer { op in
                    model.runBranch(m.block, b, xp.baseAddress!, rows: n, into: op.baseAddress!, workspace: workspace, kernels: kernels, state: state)
                } }
                return out
            case .balanceLayer:
                var out = [Float](repeating: 0, count: n * first.rows)
                x.withUnsafeBufferPointer { xp in out.withUnsafeMutableBufferPointer { op in
                    model.runLinear(first, xp.baseAddress!, rows: n, into: op.baseAddress!, workspace: workspace, kernels: kernels, state: state)
                } }
                return out
            }
        }
    }
}

/// Keeps, per window, a copy of the input of each named linear layer.
final class InputCapture: LinearObserver {
    let names: Set<String>
    var window = 0
    private(set) var inputs: [String: [[Float]]] = [:]

    init(names: Set<String>) { self.names = names }

    func observe(_ tensor: String, matrix: MatrixIndex?, input: UnsafeBufferPointer<Float>, rows: Int, columns: Int) {
        guard matrix == nil, names.contains(tensor) else { return }
        var list = inputs.removeValue(forKey: tensor) ?? []
        if list.count == window { list.append(Array(UnsafeBufferPointer(rebasing: input.prefix(rows * columns)))) }
        inputs[tensor] = list
    }
}
