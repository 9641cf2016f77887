import ArgumentParser
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IngotArchitectures
import IngotCalibrate
import IngotFormats
import IngotModel
import IngotNumerics

struct Calibrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compute an importance matrix from a text, as llama-imatrix does, for `ingot quantize --imatrix`.",
        discussion: """
        The text is cut into windows of --ctx tokens (BOS first where the model adds one), as llama-imatrix and \
        llama-perplexity cut it; each window runs through the model, and every linear layer of the blocks records \
        the sum of the squares of each input column and the number of tokens (the output projection too with \
        --process-output). The file is llama.cpp's GGUF importance matrix (general.type imatrix, <tensor>.in_sum2 \
        and <tensor>.counts), which llama-quantize --imatrix reads as well. The model's logits are never \
        computed; memory is the model's memory map and one window's activations.
        """
    )

    @Argument(help: "The model to calibrate: a GGUF file or a Hugging Face folder, in the precision it will be quantized from.")
    var model: String

    @Option(name: .long, help: "The calibration text (UTF-8); at least two windows of tokens.")
    var text: String

    @Option(name: .shortAndLong, help: "The importance matrix to write (GGUF).")
    var output: String

    @OptionGroup var windows: WindowOptions

    @Flag(name: .customLong("process-output"), help: "Also record the inputs of output.weight (llama-imatrix --process-output).")
    var processOutput = false

    @Option(name: .customLong("usage-png"), help: "Also draw how the experts are used: a PNG, one row per block, one column per expert.")
    var usagePNG: String?

    @Option(name: .long, help: ArgumentHelp("Run only shard I of N (from 0) of the windows, into OUTPUT.partI-of-N; `ingot merge` sums the parts into the file of all windows. auto/N and auto as for quantize.", valueName: "I/N|auto"))
    var shard: String?

    @OptionGroup var parallel: ParallelOptions

    @OptionGroup var common: CommonOptions

    func validate() throws {
        if let shard, case .failure(let e) = ShardSpec.parse(shard) { throw ValidationError("--shard: \(e)") }
        if shard != nil && usagePNG != nil { throw ValidationError("--usage-png draws the merged statistics: give it to no shard") }
    }

    func run() throws {
        try reportingErrors(json: common.json) {
            let file = try ModelFile.open(model)
            let m = try DecoderModel.open(file)
            let tokenizer = try TokenizerLoader.load(file)
            var warnings = Warnings()
            warnings.add(m.warnings)
            warnings.add(windows.beyondTrainedContext(m.trainedContext))
            warnings.print(json: common.json)
            var options = CalibrationOptions()
            options.context = windows.ctx
            options.chunks = windows.chunks
            options.threads = parallel.count
            options.processOutput = processOutput
            if let shard, case .success(let spec) = ShardSpec.parse(shard) { options.shard = spec }
            let calibrator = try Calibrator(model: m, tokenizer: tokenizer, options: options)
            let textFile = try MappedFile(path: text)
            // A shard's part: its plan is the model, the text and the options that decide the windows and what is
            // recorded; a complete part is not computed again.
            let part = try options.shard.map {
                try WindowShard($0, output: output, inputs: [model, text],
                                plan: "imatrix ctx=\(windows.ctx) chunks=\(windows.chunks.map(String.init) ?? "all") process-output=\(processOutput) dataset=\(text)")
            }
            if part?.reportIfComplete(json: common.json) == true { return }
            let destination = part?.path ?? output
            let line = ProgressLine(verb: "calibrate", enabled: !common.json)
            let (matrix, report) = try calibrator.run(Array(textFile.bytes), dataset: text) { p in
                line.show("window \(p.chunk)/\(p.chunks), \(Human.fixed(p.tokensPerSecond, 1)) tokens/s")
            }
            line.finish()
            try matrix.write(to: destination, extraMetadata: part?.keys(windows: Array(report.windows)) ?? [])
            let stats = matrix.expertStatistics.sorted { $0.key < $1.key }
            if let usagePNG {
                guard let picture = ExpertUsageMap.rgb(matrix.expertStatistics) else {
                    throw ModelError(.invalidValue, field: "--usage-png", "\(model) has no experts to draw", path: model)
                }
                try PNG.write(rgb: picture.rgb, width: picture.width, height: picture.height, to: usagePNG)
            }
            if common.json {
                let experts: [JSONValue] = stats.map { b, st in
                    func list(_ v: [Double]) -> JSONValue { .array(v.map { .double($0) }) }
                    return .object(JSONObject([
                        ("block", JSONValue(b)), ("tokens", .array(st.tokens.map { JSONValue(Int($0)) })),
                        ("frequency", list(st.frequency)), ("reap", list(st.reap)), ("ean", list(st.ean)),
                        ("gateWeight", list(st.gateWeight)), ("entropy", .double(st.entropy)),
                        ("maxEntropy", .double(log(Double(st.experts)))),
                    ]))
                }
                print(warnings.adding(to: JSONValue.object(JSONObject([
                    ("model", .string(model)), ("text", .string(text)), ("output", .string(destination)),
                    ("chunks", JSONValue(report.chunks)), ("context", JSONValue(report.context)), ("tokens", JSONValue(report.tokens)),
                    ("entries", JSONValue(report.entries)), ("threads", JSONValue(report.threads)),
                    ("seconds", .double(report.seconds)), ("tokensPerSecond", .double(report.tokensPerSecond)),
                    ("experts", .array(experts)),
                    ("part", part.map { partJSON(path: $0.path, shard: $0.spec.description, skipped: false,
                                                 [("windows", .array(report.windows.map { JSONValue($0) })), ("totalWindows", JSONValue(report.totalChunks))]) } ?? .null),
                ]))).serialized(pretty: true))
            } else {
                print("calibrated \(model) on \(text): \(report.chunks) windows of \(report.context) tokens, "
                      + "\(Human.fixed(report.tokensPerSecond, 1)) tokens/s over \(report.threads) threads")
                print("  \(report.entries) importance entries -> \(destination)"
                      + (part.map { " (shard \($0.spec): windows \(report.windows.lowerBound + 1)-\(report.windows.upperBound) of \(report.totalChunks); "
                                    + "ingot merge \(output).part*-of-\($0.spec.count) -o \(output))" } ?? ""))
                if !stats.isEmpty {
                    print("  expert usage (routing entropy, nats, of ln experts):")
                    for (b, st) in stats {
                        let shares = st.frequency.map { Human.fixed(100 * $0, 1) + "%" }.joined(separator: " ")
                        print("    blk.\(b): \(Human.fixed(st.entropy, 3)) of \(Human.fixed(log(Double(st.experts)), 3))  \(shares)")
                    }
                }
            }
        }
    }
}
