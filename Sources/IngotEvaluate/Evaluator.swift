import IngotFormats
import IngotModel
import IngotNumerics
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How to evaluate: llama-perplexity's defaults.
public struct EvalOptions: Sendable {
    /// Tokens per chunk (llama-perplexity `-c`).
    public var context = 512
    /// At most this many chunks (llama-perplexity `--chunks`); nil for all.
    public var chunks: Int?
    public var threads = 2
    public var kernels: KernelChoice = Kernels.choice
    /// Only this shard's windows (a contiguous share, as `ingot calibrate --shard` takes them); the run's scored
    /// positions then come back in `EvalResult.positions` for the part file.
    public var shard: ShardSpec?
    public init() {}
}

/// Where a run stands, for a progress line.
public struct EvalProgress: Sendable {
    public var chunk: Int
    public var chunks: Int
    public var tokensPerSecond: Double
    public var perplexity: Double
}

/// Perplexity, and against a base model the KL divergence of the next-token distributions, computed as
/// llama-perplexity computes them (tools/perplexity/perplexity.cpp):
///
/// - the text is tokenized once (BOS where the model adds one, special tokens not parsed) and cut into
///   `tokens / ctx` chunks; the first token of each chunk becomes BOS where the model adds one;
/// - each chunk is one causal window; only the second half is scored: the logits at positions ctx/2 ..< ctx-1
///   predict tokens ctx/2+1 ..< ctx, so each chunk scores ctx - ctx/2 - 1 tokens;
/// - PPL = exp(mean NLL), with uncertainty PPL · sqrt(var(NLL) / (count - 1));
/// - with a base model both run over the same windows, and per scored token: KLD = Σ p_base (ln p_base - ln p),
///   top-1 agreement of the argmaxes, Δp = p(token) - p_base(token). Nothing is written to disk.
public final class Evaluator {
    public let model: any CausalLM
    public let tokenizer: Tokenizer
    public let base: (any CausalLM)?
    public let options: EvalOptions
    /// Where a base run is saved to or replayed from (llama.cpp's `--kl-divergence-base` file format).
    public var baseLogProbs: BaseLogProbs?
    /// Called with each chunk's index and its scored logits (`ctx - ctx/2 - 1` rows of `vocab` floats), for
    /// comparing them with another runtime.
    public var logitsObserver: ((Int, [Float]) throws -> Void)?

    public init(model: any CausalLM, tokenizer: Tokenizer, base: (any CausalLM)? = nil, options: EvalOptions) throws {
        self.model = model
        self.tokenizer = tokenizer
        self.base = base
        self.options = options
        if let base, base.vocab != model.vocab {
            throw ModelError(.vocabularyMismatch, field: "token_embd.weight",
                             "the base model has \(base.vocab) tokens and the model \(model.vocab): KL divergence needs one vocabulary",
                             path: base.path)
        }
        if tokenizer.vocabularySize != model.vocab {
            throw ModelError(.vocabularyMismatch, field: "tokenizer.ggml.tokens",
                             "the tokenizer has \(tokenizer.vocabularySize) tokens and the model's embedding \(model.vocab) rows",
                             path: model.path)
        }
    }

    /// The chunks of tokens llama-perplexity would evaluate (before BOS replaces each first token), or a
    /// `text-too-short` error.
    public func windows(_ text: [UInt8]) throws -> [[Int32]] {
        try tokenizer.windows(text, context: options.context, chunks: options.chunks)
    }

    public func run(_ text: [UInt8], progress: (EvalProgress) -> Void = { _ in }) throws -> EvalReport {
        try runShare(text, progress: progress).report
    }

    /// The run over this shard's windows (all of them without a shard): the report of those windows, and with a
    /// shard the part that `ingot merge` puts together with the others' into the report of all windows.
    public func runShare(_ text: [UInt8], progress: (EvalProgress) -> Void = { _ in }) throws -> (report: EvalReport, part: EvalPart?) {
        let ctx = options.context
        guard ctx >= 8 else { throw ModelError(.invalidValue, field: "--ctx", "the context must be at least 8 tokens") }
        let all = try windows(text)
        let share = options.shard?.share(of: all.count) ?? all.indices
        let windows = Array(all[share])
        let first = ctx / 2
        let scored = ctx - first - 1
        let vocab = model.vocab
        let workspace = MatMulWorkspace(threads: options.threads)
        var stats = Accumulator()
        stats.keepsPositions = options.shard != nil
        let modelState = RunState(), baseState = RunState()
        var computeSeconds = 0.0, baseSeconds = 0.0
        if let file = baseLogProbs, file.mode == .write {
            try file.begin(context: ctx, vocab: vocab, tokens: windows)
        }
        if let file = baseLogProbs, file.mode == .read {
            try file.check(context: ctx, vocab: vocab, tokens: windows)
        }
        for (c, original) in windows.enumerated() {
            let window = tokenizer.runnable(original)
            let t0 = now()
            let logits = try model.logits(window, outputs: first..<(ctx - 1), workspace: workspace, kernels: options.kernels,
                                          state: modelState)
            computeSeconds += now() - t0
            try checkFinite(logits, model, window, chunk: c, firstPosition: first, vocab: vocab, workspace: workspace)
            try logitsObserver?(c, logits)
            var baseLogits: [Float]?
            if let base {
                let t1 = now()
                let b = try base.logits(window, outputs: first..<(ctx - 1), workspace: workspace, kernels: options.kernels,
                                        state: baseState)
                baseSeconds += now() - t1
                try checkFinite(b, base, window, chunk: c, firstPosition: first, vocab: vocab, workspace: workspace)
                baseLogits = b
            }
            let targets = Array(window[(first + 1)..<ctx])
            let rows = Slots<Position>(count: scored)
            let replay = try baseLogProbs.flatMap { $0.mode == .read ? try $0.readChunk(c, rows: scored) : nil }
            let baseRows = baseLogits ?? []
            let threads = options.threads
            logits.withUnsafeBufferPointer { lp in baseRows.withUnsafeBufferPointer { bp in
                let lps = UnsafeSendable(lp.baseAddress!)
                let bls = bp.isEmpty ? nil : UnsafeSendable(bp.baseAddress!)
                try? parallelFor(0..<scored, threads: threads) { i, _ in
                    let row = lps.pointer + i * vocab
                    if let bls {
                        rows[i] = Position.compare(row, bls.pointer + i * vocab, vocab: vocab, token: Int(targets[i]))
                    } else if let replay {
                        rows[i] = replay.compare(row, row: i, vocab: vocab, token: Int(targets[i]))
                    } else {
                        rows[i] = Position.single(row, vocab: vocab, token: Int(targets[i]))
                    }
                }
            } }
            if let file = baseLogProbs, file.mode == .write {
                try (baseLogits ?? logits).withUnsafeBufferPointer { try file.writeChunk($0.baseAddress!, rows: scored, vocab: vocab) }
            }
            for i in 0..<scored { if let p = rows[i] { stats.add(p) } }
            let seconds = computeSeconds + baseSeconds
            progress(EvalProgress(chunk: c + 1, chunks: windows.count,
                                  tokensPerSecond: Double((c + 1) * ctx * (base == nil ? 1 : 2)) / max(seconds, 1e-9),
                                  perplexity: exp(stats.sumNLL / Double(stats.count))))
        }
        try baseLogProbs?.finish()
        let hasBase = base != nil || baseLogProbs?.mode == .read
        let report = stats.report(modelPath: model.path, basePath: base?.path, options: options, chunks: windows.count,
                                  hasBase: hasBase, seconds: computeSeconds, baseSeconds: base == nil ? nil : baseSeconds)
        let part = options.shard.map { _ in
            EvalPart(model: model.path, base: base?.path, context: ctx, threads: options.threads, kernels: report.kernels,
                     totalWindows: all.count, windows: Array(share), hasBase: hasBase, seconds: computeSeconds,
                     baseSeconds: base == nil ? nil : baseSeconds, positions: stats.positions)
        }
        return (report, part)
    }

    func now() -> Double { monotonicSeconds() }

    /// Stops at the first NaN or infinity among a window's logits, with the model's account of where the forward pass
    /// first went non-finite: a perplexity over NaN would say nothing.
    func checkFinite(_ logits: [Float], _ m: any CausalLM, _ window: [Int32], chunk: Int, firstPosition: Int, vocab: Int,
                     workspace: MatMulWorkspace) throws {
        guard let k = NonFinite.first(in: logits) else { return }
        let what = "chunk \(chunk + 1) has non-finite logits at position \(firstPosition + k / vocab)"
        if let trace = try m.diagnoseNonFinite(window, workspace: workspace, kernels: options.kernels) {
            throw trace.error(path: m.path, what: what)
        }
        throw ModelError(.nonFinite, field: "logits", what, path: m.path)
    }
}

/// What one scored position contributes.
struct Position: Sendable {
    var nll: Double
    var nllBase: Double = 0
    var kld: Double = 0
    var sameTop = false
    var pDiff: Double = 0

    /// ln-sum-exp of a row (max + ln Σ e^(x - max)) and its argmax, as llama-perplexity computes it.
    static func logSumExp(_ row: UnsafePointer<Float>, _ n: Int) -> (lse: Double, max: Float, argmax: Int) {
        var m = row[0], arg = 0
        for i in 1..<n where row[i] > m { m = row[i]; arg = i }
        var acc = SIMD8<Float>()
        var sum: Double = 0
        var i = 0
        let mv = SIMD8<Float>(repeating: m)
        while i + 8 <= n {
            acc += Activations.exp(UnsafeRawPointer(row + i).loadUnaligned(as: SIMD8<Float>.self) - mv)
            i += 8
            if i % 4096 == 0 { sum += Double(acc.sum()); acc = SIMD8() }
        }
        sum += Double(acc.sum())
        while i < n { sum += Double(expf(row[i] - m)); i += 1 }
        return (Double(m) + log(sum), m, arg)
    }

    static func single(_ row: UnsafePointer<Float>, vocab: Int, token: Int) -> Position {
        let s = logSumExp(row, vocab)
        return Position(nll: s.lse - Double(row[token]))
    }

    static func compare(_ row: UnsafePointer<Float>, _ baseRow: UnsafePointer<Float>, vocab: Int, token: Int) -> Position {
        let q = logSumExp(row, vocab), b = logSumExp(baseRow, vocab)
        // KLD = Σ p_b (lp_b - lp_q), lp = logit - lse.
        let shift = Float(q.lse - b.lse)
        let bl = SIMD8<Float>(repeating: Float(b.lse))
        var acc = SIMD8<Float>()
        var kld: Double = 0
        var i = 0
        while i + 8 <= vocab {
            let lb = UnsafeRawPointer(baseRow + i).loadUnaligned(as: SIMD8<Float>.self)
            let lq = UnsafeRawPointer(row + i).loadUnaligned(as: SIMD8<Float>.self)
            let pb = Activations.exp(lb - bl)
            acc += pb * (lb - lq + shift)
            i += 8
            if i % 4096 == 0 { kld += Double(acc.sum()); acc = SIMD8() }
        }
        kld += Double(acc.sum())
        while i < vocab {
            let lb = Double(baseRow[i]) - b.lse
            kld += exp(lb) * (lb - (Double(row[i]) - q.lse))
            i += 1
        }
        let nll = q.lse - Double(row[token]), nllBase = b.lse - Double(baseRow[token])
        return Position(nll: nll, nllBase: nllBase, kld: max(kld, 0), sameTop: q.argmax == b.argmax,
                        pDiff: exp(-nll) - exp(-nllBase))
    }
}

/// Sums over all scored positions, and the per-position KLD and Δp for percentiles.
struct Accumulator {
    var count = 0
    var sumNLL = 0.0, sumNLL2 = 0.0
    var sumBase = 0.0, sumBase2 = 0.0, sumCross = 0.0
    var sumKLD = 0.0, sumKLD2 = 0.0
    var sumP = 0.0, sumP2 = 0.0, sumP4 = 0.0
    var sameTop = 0
    var klds: [Float] = []
    var pDiffs: [Float] = []
    /// Every position added, in order, where a part must hold them.
    var keepsPositions = false
    var positions: [Position] = []

    mutating func add(_ p: Position) {
        if keepsPositions { positions.append(p) }
        count += 1
        sumNLL += p.nll; sumNLL2 += p.nll * p.nll
        sumBase += p.nllBase; sumBase2 += p.nllBase * p.nllBase; sumCross += p.nll * p.nllBase
        sumKLD += p.kld; sumKLD2 += p.kld * p.kld
        sumP += p.pDiff; sumP2 += p.pDiff * p.pDiff; sumP4 += p.pDiff * p.pDiff * p.pDiff * p.pDiff
        if p.sameTop { sameTop += 1 }
        klds.append(Float(p.kld))
        pDiffs.append(Float(p.pDiff))
    }

    /// Mean and its standard error, as llama-perplexity's `mean_and_uncertainty`.
    func meanAndError(_ sum: Double, _ sum2: Double) -> (Double, Double) {
        let n = Double(count)
        let f = sum / n
        let v = sum2 / n - f * f
        return (f, v > 0 && count > 10 ? (v / (n - 1)).squareRoot() : 0)
    }

    func covariance(_ a: Double, _ b: Double, _ ab: Double) -> Double {
        guard count >= 10 else { return 0 }
        let n = Double(count)
        return (ab / n - (a / n) * (b / n)) / (n - 1)
    }

    static func percentile(_ sorted: [Float], _ fraction: Double) -> Double {
        guard let first = sorted.first else { return 0 }
        if fraction <= 0 { return Double(first) }
        if fraction >= 1 { return Double(sorted[sorted.count - 1]) }
        let p = fraction * Double(sorted.count - 1)
        let ip = Int(p)
        let f = p - Double(ip)
        return (1 - f) * Double(sorted[ip]) + f * Double(sorted[min(ip + 1, sorted.count - 1)])
    }

    func report(modelPath: String, basePath: String?, options: EvalOptions, chunks: Int, hasBase: Bool,
                seconds: Double, baseSeconds: Double?) -> EvalReport {
        var r = EvalReport()
        r.model = modelPath
        r.base = basePath
        r.context = options.context
        r.chunks = chunks
        r.threads = options.threads
        r.kernels = options.kernels == .best ? Kernels.bestName : options.kernels.rawValue
        r.scoredTokens = count
        let (lnPPL, lnErr) = meanAndError(sumNLL, sumNLL2)
        r.perplexity = exp(lnPPL)
        r.perplexityError = r.perplexity * lnErr
        r.tokensPerSecond = Double(chunks * options.context) / max(seconds, 1e-9)
        if let baseSeconds { r.baseTokensPerSecond = Double(chunks * options.context) / max(baseSeconds, 1e-9) }
        guard hasBase else { return r }
        var k = KLDReport()
        let (lnBase, lnBaseErr) = meanAndError(sumBase, sumBase2)
        k.basePerplexity = exp(lnBase)
        k.basePerplexityError = k.basePerplexity * lnBaseErr
        let cov = covariance(sumNLL, sumBase, sumCross)
        let ratioErr = (lnErr * lnErr + lnBaseErr * lnBaseErr - 2 * cov).squareRoot()
        k.lnPerplexityRatio = lnPPL - lnBase
        k.lnPerplexityRatioError = ratioErr
        k.perplexityRatio = exp(lnPPL - lnBase)
        k.perplexityRatioError = k.perplexityRatio * ratioErr
        (k.meanKLD, k.meanKLDError) = meanAndError(sumKLD, sumKLD2)
        let sortedKLD = klds.sorted()
        k.kldPercentiles = [("max", 1.0), ("99.9", 0.999), ("99", 0.99), ("95", 0.95), ("90", 0.9), ("median", 0.5),
                            ("10", 0.1), ("5", 0.05), ("1", 0.01), ("min", 0.0)].map { ($0.0, Accumulator.percentile(sortedKLD, $0.1)) }
        k.kldPercentiles[5].1 = sortedKLD.count % 2 == 0
            ? 0.5 * Double(sortedKLD[sortedKLD.count / 2] + sortedKLD[sortedKLD.count / 2 - 1]) : Double(sortedKLD[sortedKLD.count / 2])
        k.kldHistogram = [Int](repeating: 0, count: KLDReport.histogramBins)
        for v in sortedKLD {
            let bin = v <= 1e-6 ? 0 : min(KLDReport.histogramBins - 1, max(1, Int(((log10(Double(v)) + 6) * 4).rounded(.up))))
            k.kldHistogram[bin] += 1
        }
        (k.meanDeltaP, k.meanDeltaPError) = meanAndError(sumP, sumP2)
        let mse = meanAndError(sumP2, sumP4)
        k.rmsDeltaP = mse.0.squareRoot()
        k.rmsDeltaPError = k.rmsDeltaP > 0 ? 0.5 / k.rmsDeltaP * mse.1 : 0
        let sortedP = pDiffs.sorted()
        k.deltaPPercentiles = [("max", 1.0), ("99", 0.99), ("95", 0.95), ("median", 0.5), ("5", 0.05), ("1", 0.01),
                               ("min", 0.0)].map { ($0.0, Accumulator.percentile(sortedP, $0.1)) }
        k.sameTop = Double(sameTop) / Double(count)
        k.sameTopError = (k.sameTop * (1 - k.sameTop) / Double(count - 1)).squareRoot()
        r.kld = k
        return r
    }
}
