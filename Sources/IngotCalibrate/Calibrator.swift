import IngotArchitectures
import IngotFormats
import IngotModel
import IngotNumerics

/// How to calibrate: llama-imatrix's defaults.
public struct CalibrationOptions: Sendable {
    /// Tokens per window (llama-imatrix `-c`).
    public var context = 512
    /// At most this many windows (`--chunks`); nil for all the text holds.
    public var chunks: Int?
    public var threads = 2
    public var kernels: KernelChoice = Kernels.choice
    /// Also record the inputs of `output.weight` (llama-imatrix `--process-output`; off by default, as there).
    public var processOutput = false
    /// Only this shard's windows: a contiguous run of them, shard i of n taking windows [W·i/n, W·(i+1)/n).
    public var shard: ShardSpec?
    public init() {}
}

/// Where a run stands, for a progress line.
public struct CalibrationProgress: Sendable {
    public var chunk: Int
    public var chunks: Int
    public var tokensPerSecond: Double
}

/// What one run did.
public struct CalibrationReport: Sendable {
    public var model: String
    public var chunks: Int
    /// The windows the text holds (more than `chunks` with a shard).
    public var totalChunks: Int
    /// With a shard: the windows it ran.
    public var windows: Range<Int>
    public var context: Int
    public var tokens: Int
    public var entries: Int
    public var threads: Int
    public var seconds: Double
    public var tokensPerSecond: Double { Double(tokens) / max(seconds, 1e-9) }
}

/// Computes an importance matrix as llama-imatrix does (tools/imatrix/imatrix.cpp): the text is cut into the
/// windows llama-perplexity uses (`Tokenizer.windows`), each window runs through the model, and for every linear
/// layer of the blocks (`blk.*`) every input row x adds x² to its column sums (in Float, row after row, as there)
/// and one to its token count. As in llama-imatrix, products of fewer than 16 rows are not recorded, nor the
/// output projection unless asked for. The model runs block by block; the logits are never computed, so the
/// run costs the blocks alone. Memory: the model's memory map plus one window's activations and the sums.
///
/// The statistics are of the model's own activations: the inputs of the products are not rounded to the F16 or
/// Q8 formats llama.cpp's portable dot products convert them to (its AMX and flash-attention kernels, which
/// llama-imatrix runs on CPUs that have them, do not round them either); the KV cache is F16 as in llama.cpp.
public final class Calibrator {
    public let model: DecoderModel
    public let tokenizer: Tokenizer
    public let options: CalibrationOptions

    public init(model: DecoderModel, tokenizer: Tokenizer, options: CalibrationOptions) throws {
        self.model = model
        self.tokenizer = tokenizer
        self.options = options
        if tokenizer.vocabularySize != model.vocab {
            throw ModelError(.vocabularyMismatch, field: "tokenizer.ggml.tokens",
                             "the tokenizer has \(tokenizer.vocabularySize) tokens and the model's embedding \(model.vocab) rows",
                             path: model.path)
        }
    }

    /// Runs over `text`; `dataset` is the name recorded in the file (`imatrix.datasets`, llama-imatrix records the
    /// text file's path as given).
    public func run(_ text: [UInt8], dataset: String,
                    progress: (CalibrationProgress) -> Void = { _ in }) throws -> (ImportanceMatrix, CalibrationReport) {
        let ctx = options.context
        guard ctx >= 16 else {
            throw ModelError(.invalidValue, field: "--ctx", "the context must be at least 16 tokens (llama-imatrix records no product of fewer rows)")
        }
        let all = try tokenizer.windows(text, context: ctx, chunks: options.chunks)
        let share = options.shard?.share(of: all.count) ?? all.indices
        let windows = all[share]
        let sums = SquareSums(processOutput: options.processOutput)
        let workspace = MatMulWorkspace(threads: options.threads)
        let state = RunState()
        let saved = (model.observer, model.activationRounding)
        model.observer = sums
        model.activationRounding = .exact
        defer { (model.observer, model.activationRounding) = saved }
        var seconds = 0.0
        for (c, w) in windows.enumerated() {
            let c = c + share.lowerBound
            let t0 = monotonicSeconds()
            let tokens = tokenizer.runnable(w)
            var x = try model.embed(tokens, kernels: options.kernels)
            for i in model.blocks.indices {
                model.runLayer(i, &x, tokens: tokens.count, workspace: workspace, kernels: options.kernels, state: state)
            }
            if options.processOutput {
                _ = model.head(x, outputs: 0..<tokens.count, workspace: workspace, kernels: options.kernels, state: state)
            }
            seconds += monotonicSeconds() - t0
            if let bad = sums.firstNonFinite() {
                let what = "window \(c + 1) has non-finite activations"
                if let trace = try model.diagnoseNonFinite(tokens, workspace: workspace, kernels: options.kernels) {
                    throw trace.error(path: model.path, what: what)
                }
                throw ModelError(.nonFinite, field: bad, "\(what): the inputs of \(bad)", path: model.path)
            }
            progress(CalibrationProgress(chunk: c - share.lowerBound + 1, chunks: windows.count,
                                         tokensPerSecond: Double((c - share.lowerBound + 1) * ctx) / max(seconds, 1e-9)))
        }
        var matrix = ImportanceMatrix(entries: sums.entries(), datasets: [dataset], chunkCount: windows.count, chunkSize: ctx)
        matrix.expertStatistics = sums.expertStatistics
        let report = CalibrationReport(model: model.path, chunks: windows.count, totalChunks: all.count, windows: share,
                                       context: ctx, tokens: windows.count * ctx,
                                       entries: matrix.entries.count, threads: options.threads, seconds: seconds)
        return (matrix, report)
    }
}

/// The observer that accumulates Σx² per input column and the row count of each linear layer it sees, and how each
/// mixture-of-experts block routes the text (tokens, gate weights and output norms per expert).
final class SquareSums: LinearObserver, RoutingObserver {
    private(set) var experts: [Int: ImportanceMatrix.ExpertStatistics] = [:]

    func routed(block: Int, expert: Int, of count: Int, weights: UnsafeBufferPointer<Float>, outputNorms: UnsafeBufferPointer<Float>) {
        var st = experts[block] ?? ImportanceMatrix.ExpertStatistics(experts: count)
        guard st.experts == count, expert >= 0, expert < count else { return }
        st.tokens[expert] += Double(weights.count)
        for (w, n) in zip(weights, outputNorms) {
            st.gateWeight[expert] += Double(w)
            st.outputNorm[expert] += Double(n)
            st.weightedNorm[expert] += Double(w) * Double(n)
        }
        experts[block] = st
    }

    /// Every expert also runs on a sample of tokens spaced so that the extra work is at most the routed work
    /// (experts / used apart): its mean output there is what merging compares.
    func outputSampleStride(experts: Int, used: Int) -> Int { max(1, (experts + max(used, 1) - 1) / max(used, 1)) }

    private var outputSums: [Int: (sums: [Double], rows: Int)] = [:]

    func sampled(block: Int, expert: Int, of count: Int, outputs: UnsafeBufferPointer<Float>, rows: Int) {
        guard rows > 0, count > 0, outputs.count % rows == 0 else { return }
        let h = outputs.count / rows
        var acc = outputSums[block] ?? (Array(repeating: 0, count: count * h), 0)
        guard acc.sums.count == count * h, expert >= 0, expert < count else { return }
        outputSums[block] = nil  // moved out: no copy-on-write
        acc.sums.withUnsafeMutableBufferPointer { s in
            for r in 0..<rows { for j in 0..<h { s[expert * h + j] += Double(outputs[r * h + j]) } }
        }
        if expert == 0 { acc.rows += rows }
        outputSums[block] = acc
    }

    /// The statistics with each block's mean expert outputs filled in.
    var expertStatistics: [Int: ImportanceMatrix.ExpertStatistics] {
        var all = experts
        for (b, acc) in outputSums where acc.rows > 0 {
            all[b]?.outputMeans = acc.sums.map { Float($0 / Double(acc.rows)) }
        }
        return all
    }

    let processOutput: Bool
    private var sums: [String: UnsafeMutableBufferPointer<Float>] = [:]
    /// Rows seen: one count per expert, one for any other layer.
    private var counts: [String: [Int64]] = [:]

    init(processOutput: Bool) { self.processOutput = processOutput }

    deinit { sums.values.forEach { $0.deallocate() } }

    /// Each matrix of a stacked tensor has its own row of sums. An expert's rows (llama-imatrix's MUL_MAT_ID) are
    /// recorded however few, with a count per expert; the per-head matrices of latent attention (a batched MUL_MAT)
    /// follow the dense rules, with one count for the tensor.
    func observe(_ tensor: String, matrix: MatrixIndex?, input: UnsafeBufferPointer<Float>, rows: Int, columns: Int) {
        guard columns > 0, let x = input.baseAddress else { return }
        let routed = matrix?.routed ?? false
        if !routed {
            guard rows >= 16, tensor.hasPrefix("blk.") || (processOutput && tensor == "output.weight") else { return }
        }
        let matrices = matrix?.count ?? 1, m = matrix?.index ?? 0
        let acc: UnsafeMutableBufferPointer<Float>
        if let a = sums[tensor], a.count == columns * matrices {
            acc = a
        } else {
            sums[tensor]?.deallocate()
            acc = .allocate(capacity: columns * matrices)
            acc.initialize(repeating: 0)
            sums[tensor] = acc
            counts[tensor] = [Int64](repeating: 0, count: routed ? matrices : 1)
        }
        let a = acc.baseAddress! + m * columns
        for r in 0..<rows {
            let row = x + r * columns
            for j in 0..<columns { a[j] += row[j] * row[j] }
        }
        if routed {
            counts[tensor]?[m] += Int64(rows)
        } else if m == 0 {
            counts[tensor]?[0] += Int64(rows)
        }
    }

    /// The first layer (by name) whose sums are no longer finite, checked after each window.
    func firstNonFinite() -> String? {
        sums.filter { !$0.value.allSatisfy(\.isFinite) }.keys.min()
    }

    func entries() -> [String: ImportanceMatrix.Entry] {
        var out: [String: ImportanceMatrix.Entry] = [:]
        for (name, acc) in sums { out[name] = .init(sums: Array(acc), counts: counts[name] ?? [0]) }
        return out
    }
}

/// A picture of how a model's mixture-of-experts blocks route a text: one row of cells per block (top to bottom in
/// block order), one column per expert, each cell's colour the expert's share of the block's tokens against an even
/// share (white: unused; blue: the even share 1/experts; dark red: three times it or more).
public enum ExpertUsageMap {
    public static func rgb(_ statistics: [Int: ImportanceMatrix.ExpertStatistics]) -> (rgb: [UInt8], width: Int, height: Int)? {
        let blocks = statistics.keys.sorted()
        guard let experts = blocks.compactMap({ statistics[$0]?.experts }).max(), experts > 0 else { return nil }
        let cw = max(2, min(16, 1024 / experts)), ch = max(4, min(16, 512 / blocks.count))
        let width = cw * experts, height = ch * blocks.count
        var out = [UInt8](repeating: 255, count: width * height * 3)
        for (row, b) in blocks.enumerated() {
            let share = statistics[b]!.frequency
            for (e, f) in share.enumerated() {
                let c = colour(f * Double(share.count))
                for y in (row * ch)..<((row + 1) * ch) {
                    for x in (e * cw)..<((e + 1) * cw) {
                        let i = (y * width + x) * 3
                        (out[i], out[i + 1], out[i + 2]) = c
                    }
                }
            }
        }
        return (out, width, height)
    }

    /// white at 0, blue at 1 (even share), dark red at 3 and above; linear between.
    static func colour(_ v: Double) -> (UInt8, UInt8, UInt8) {
        func mix(_ a: (Double, Double, Double), _ b: (Double, Double, Double), _ t: Double) -> (UInt8, UInt8, UInt8) {
            let t = min(1, max(0, t))
            return (UInt8(a.0 + (b.0 - a.0) * t), UInt8(a.1 + (b.1 - a.1) * t), UInt8(a.2 + (b.2 - a.2) * t))
        }
        return v <= 1 ? mix((255, 255, 255), (40, 90, 200), v) : mix((40, 90, 200), (140, 10, 20), (v - 1) / 2)
    }
}
