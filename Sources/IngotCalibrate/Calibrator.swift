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
        let windows = try tokenizer.windows(text, context: ctx, chunks: options.chunks)
        let sums = SquareSums(processOutput: options.processOutput)
        let workspace = MatMulWorkspace(threads: options.threads)
        let state = RunState()
        let saved = (model.observer, model.activationRounding)
        model.observer = sums
        model.activationRounding = .exact
        defer { (model.observer, model.activationRounding) = saved }
        var seconds = 0.0
        for (c, w) in windows.enumerated() {
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
                throw ModelError(.invalidValue, field: bad,
                                 "the inputs of \(bad) are not finite in window \(c + 1): the model's weights or activations overflow",
                                 path: model.path)
            }
            progress(CalibrationProgress(chunk: c + 1, chunks: windows.count,
                                         tokensPerSecond: Double((c + 1) * ctx) / max(seconds, 1e-9)))
        }
        let matrix = ImportanceMatrix(entries: sums.entries(), datasets: [dataset], chunkCount: windows.count, chunkSize: ctx)
        let report = CalibrationReport(model: model.path, chunks: windows.count, context: ctx, tokens: windows.count * ctx,
                                       entries: matrix.entries.count, threads: options.threads, seconds: seconds)
        return (matrix, report)
    }
}

/// The observer that accumulates Σx² per input column and the row count of each linear layer it sees.
final class SquareSums: LinearObserver {
    let processOutput: Bool
    private var sums: [String: UnsafeMutableBufferPointer<Float>] = [:]
    /// Rows seen, one count per expert (one for a dense layer).
    private var counts: [String: [Int64]] = [:]

    init(processOutput: Bool) { self.processOutput = processOutput }

    deinit { sums.values.forEach { $0.deallocate() } }

    /// An expert's rows (llama-imatrix's MUL_MAT_ID) are recorded however few, in that expert's row of the sums.
    func observe(_ tensor: String, expert: ExpertIndex?, input: UnsafeBufferPointer<Float>, rows: Int, columns: Int) {
        guard columns > 0, let x = input.baseAddress else { return }
        if expert == nil {
            guard rows >= 16, tensor.hasPrefix("blk.") || (processOutput && tensor == "output.weight") else { return }
        }
        let experts = expert?.count ?? 1, e = expert?.index ?? 0
        let acc: UnsafeMutableBufferPointer<Float>
        if let a = sums[tensor], a.count == columns * experts {
            acc = a
        } else {
            sums[tensor]?.deallocate()
            acc = .allocate(capacity: columns * experts)
            acc.initialize(repeating: 0)
            sums[tensor] = acc
            counts[tensor] = [Int64](repeating: 0, count: experts)
        }
        let a = acc.baseAddress! + e * columns
        for r in 0..<rows {
            let row = x + r * columns
            for j in 0..<columns { a[j] += row[j] * row[j] }
        }
        counts[tensor]?[e] += Int64(rows)
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
