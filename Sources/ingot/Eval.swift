import ArgumentParser
import IngotEvaluate
import IngotFormats
import IngotModel
import IngotNumerics
import IngotReport
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure perplexity on a text, and KL divergence against a base model.",
        discussion: """
        Computes perplexity as llama-perplexity does: the text is cut into chunks of --ctx tokens, each chunk is \
        one window (BOS first where the model adds one) and only its second half is scored. With --base, both \
        models run over the same windows and the report adds mean KL divergence with its error, KLD percentiles, \
        top-1 agreement, mean and RMS Δp and PPL(model)/PPL(base); nothing is written to disk unless --save-base \
        asks for the base log-probabilities (in llama.cpp's --kl-divergence-base format), which --base-logprobs \
        replays later.
        """
    )

    @Argument(help: "The model to evaluate: a GGUF file or a Hugging Face folder (config.json, safetensors, tokenizer.json).")
    var model: String

    @Option(name: .long, help: "The text to score (UTF-8).")
    var text: String

    @OptionGroup var windows: WindowOptions

    @OptionGroup var parallel: ParallelOptions

    @Option(name: .long, help: "A base model (GGUF or folder) to compare against: KL divergence, top-1 agreement, Δp.")
    var base: String?

    @Option(name: .customLong("save-base"), help: "Save the base log-probabilities to this file (llama.cpp's format).")
    var saveBase: String?

    @Option(name: .customLong("base-logprobs"), help: "Compare against base log-probabilities saved earlier.")
    var baseLogprobs: String?

    @Option(name: .customLong("logits-out"), help: "Write the first chunk's scored logits to this .npy file (float32, positions x vocabulary).")
    var logitsOut: String?

    @Option(name: .long, help: "Write a verdict page here (self-contained HTML with pictures: what was measured, on which text, with what uncertainty; with --base, where the weights differ) and its data as JSON beside it (.json).")
    var report: String?

    @Option(name: .long, help: ArgumentHelp("Run only shard I of N (from 0) of the windows into the part OUTPUT.partI-of-N (give -o); `ingot merge` of all parts prints the report of all windows. auto/N and auto as for quantize.", valueName: "I/N|auto"))
    var shard: String?

    @Option(name: .shortAndLong, help: "With --shard: where the part goes (OUTPUT.partI-of-N).")
    var output: String?

    @OptionGroup var common: CommonOptions

    func validate() throws {
        if let shard, case .failure(let e) = ShardSpec.parse(shard) { throw ValidationError("--shard: \(e)") }
        if (shard == nil) != (output == nil) { throw ValidationError("--shard and -o go together: a shard writes its part to -o") }
        if shard != nil && (saveBase != nil || baseLogprobs != nil || logitsOut != nil) {
            throw ValidationError("--shard does not go with --save-base, --base-logprobs or --logits-out")
        }
        if base != nil && baseLogprobs != nil { throw ValidationError("give --base or --base-logprobs, not both") }
        if saveBase != nil && baseLogprobs != nil { throw ValidationError("--save-base cannot be used with --base-logprobs") }
        if report != nil && shard != nil { throw ValidationError("--report describes a whole run: give it to the run of all windows, not to a --shard") }
    }

    func run() throws {
        try reportingErrors(json: common.json) {
            let file = try ModelFile.open(model)
            let m = try DecoderModel.open(file)
            let tokenizer = try TokenizerLoader.load(file)
            var baseModel: DecoderModel?
            if let base {
                let bf = try ModelFile.open(base)
                baseModel = try DecoderModel.open(bf)
                let bt = try TokenizerLoader.load(bf)
                if bt.tokens != tokenizer.tokens {
                    throw ModelError(.vocabularyMismatch, field: "tokenizer.ggml.tokens",
                                     "the base model's vocabulary differs from the model's; KL divergence compares the same tokens",
                                     path: base)
                }
            }
            var warnings = Warnings()
            warnings.add(m.warnings)
            warnings.add(baseModel?.warnings ?? [], prefix: "base: ")
            warnings.add(windows.beyondTrainedContext(m.trainedContext))
            warnings.print(json: common.json)
            var options = EvalOptions()
            options.context = windows.ctx
            options.chunks = windows.chunks
            options.threads = parallel.count
            if let shard, case .success(let spec) = ShardSpec.parse(shard) { options.shard = spec }
            let evaluator = try Evaluator(model: m, tokenizer: tokenizer, base: baseModel, options: options)
            if let saveBase { evaluator.baseLogProbs = BaseLogProbs(writing: saveBase) }
            if let baseLogprobs { evaluator.baseLogProbs = try BaseLogProbs(reading: baseLogprobs) }
            if let logitsOut {
                let vocab = m.vocab
                evaluator.logitsObserver = { chunk, logits in
                    guard chunk == 0 else { return }
                    try NumpyFile.writeFloat32(logits, shape: [logits.count / vocab, vocab], to: logitsOut)
                }
            }
            let textFile = try MappedFile(path: text)
            // A shard's plan: the options that decide the windows, the models and the text.
            var part: WindowShard?
            if let spec = options.shard, let output {
                part = try WindowShard(spec, output: output, inputs: [model, text] + (base.map { [$0] } ?? []),
                                       plan: "eval ctx=\(windows.ctx) chunks=\(windows.chunks.map(String.init) ?? "all") base=\(base ?? "")")
            }
            if part?.reportIfComplete(json: common.json) == true { return }
            let line = ProgressLine(verb: "eval", enabled: !common.json)
            let (report, shardPart) = try evaluator.runShare(Array(textFile.bytes)) { p in
                line.show("chunk \(p.chunk)/\(p.chunks), \(Human.fixed(p.tokensPerSecond, 1)) tokens/s, PPL \(Human.fixed(p.perplexity, 4))")
            }
            line.finish()
            if let part, let shardPart {
                try shardPart.write(to: part.path, keys: part.keys(windows: shardPart.windows))
                let summary = "shard \(part.spec): windows \(shardPart.windows.first.map { $0 + 1 } ?? 0)-\(shardPart.windows.last.map { $0 + 1 } ?? 0) of \(shardPart.totalWindows) -> \(part.path)"
                if common.json {
                    var o = report.json.objectValue ?? JSONObject()
                    o["part"] = partJSON(path: part.path, shard: part.spec.description, skipped: false,
                                         [("windows", .array(shardPart.windows.map { JSONValue($0) }))])
                    print(warnings.adding(to: .object(o)).serialized(pretty: true))
                } else {
                    print(summary + "\nwhen every shard is done: ingot merge \(output ?? "").part*-of-\(part.spec.count)\n\nthis shard's windows alone:\n" + report.text)
                }
                return
            }
            let json = warnings.adding(to: report.json)
            if let reportPath = self.report {
                let elements = try file.ggufTensors()?.tensors.reduce(0) { $0 + $1.elementCount } ?? 0
                var differences: [WeightDifference.Entry] = []
                if let base, let mine = try file.ggufTensors(), let theirs = try ModelFile.open(base).ggufTensors() {
                    differences = try WeightDifference.compare(mine, base: theirs)
                }
                var o = json.objectValue ?? JSONObject()
                o["text"] = .string(text)
                o["model_bytes"] = JSONValue(VerdictReport.bytes(model))
                o["weights"] = JSONValue(elements)
                if let base { o["base_bytes"] = JSONValue(VerdictReport.bytes(base)) }
                o["tensors"] = .array(differences.map { d in
                    .object(JSONObject([("name", .string(d.name)), ("type", .string(d.type.name)), ("base_type", .string(d.baseType.name)),
                                        ("weights", JSONValue(d.elements)), ("relative_rms_difference", .double(d.relativeRMS))]))
                })
                try VerdictReport.eval(report, text: text, modelPath: model, basePath: base, elements: elements, differences: differences,
                                       json: .object(o), to: reportPath)
            }
            print(common.json ? json.serialized(pretty: true) : report.text + (self.report.map { "\nreport: \($0) (data: \(ReportPage.jsonPath(for: $0)))" } ?? ""))
        }
    }
}

/// The human table of an evaluation.
extension EvalReport {
    public var text: String {
        func f(_ v: Double, _ d: Int) -> String { Human.fixed(v, d) }
        var s = "model       \(model)\n"
        if let base { s += "base        \(base)\n" }
        s += "chunks      \(chunks) of \(context) tokens, \(scoredTokens) scored, \(threads) threads, kernels \(kernels)\n"
        s += "speed       \(f(tokensPerSecond, 1)) tokens/s"
        if let b = baseTokensPerSecond { s += " (base \(f(b, 1)) tokens/s)" }
        s += "\n\nPPL         \(f(perplexity, 4)) ± \(f(perplexityError, 5))\n"
        guard let k = kld else { return s }
        s += "PPL(base)   \(f(k.basePerplexity, 4)) ± \(f(k.basePerplexityError, 5))\n"
        s += "PPL ratio   \(f(k.perplexityRatio, 6)) ± \(f(k.perplexityRatioError, 6))   ln ratio \(f(k.lnPerplexityRatio, 6)) ± \(f(k.lnPerplexityRatioError, 6))\n"
        s += "mean KLD    \(f(k.meanKLD, 6)) ± \(f(k.meanKLDError, 6))\n"
        s += "KLD         " + k.kldPercentiles.map { "\($0.0) \(f($0.1, 6))" }.joined(separator: "  ") + "\n"
        s += "same top    \(f(100 * k.sameTop, 3)) ± \(f(100 * k.sameTopError, 3)) %\n"
        s += "mean Δp     \(f(100 * k.meanDeltaP, 3)) ± \(f(100 * k.meanDeltaPError, 3)) %\n"
        s += "RMS Δp      \(f(100 * k.rmsDeltaP, 3)) ± \(f(100 * k.rmsDeltaPError, 3)) %\n"
        s += "Δp          " + k.deltaPPercentiles.map { "\($0.0) \(f(100 * $0.1, 3))%" }.joined(separator: "  ") + "\n"
        return s
    }
}
