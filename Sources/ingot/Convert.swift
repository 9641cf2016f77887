import ArgumentParser
import IngotConvert
import IngotFormats
import IngotModel

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert between Hugging Face folders and GGUF.",
        discussion: """
        --to gguf reads a Hugging Face folder (config.json, safetensors shards, tokenizer.json) and writes the GGUF \
        llama.cpp's convert_hf_to_gguf.py would: llama.cpp's tensor names, q/k rows permuted for llama-style rotary, \
        norms and 1-D tensors in F32, hyperparameters, tokenizer and chat template. --to hf writes a folder that \
        Transformers, mlx-lm and vLLM load: config.json, generation_config.json, safetensors shards of at most \
        --shard-size with model.safetensors.index.json, tokenizer.json and tokenizer_config.json, and a README.md \
        model card holding the GGUF's general.* metadata; quantized GGUF weights are dequantized. A folder given \
        with --to hf is rewritten in another dtype. Tensors stream one at a time; the output appears only when complete.
        """
    )

    @Argument(help: "A Hugging Face folder or a GGUF file.")
    var input: String

    @Option(name: .shortAndLong, help: "The GGUF file or folder to write.")
    var output: String

    @Option(name: .long, help: "gguf or hf.")
    var to: Converter.Target

    @Option(name: .long, help: "f32, f16, bf16 or auto (to GGUF: the folder's first tensor's type, F16 or BF16, as llama.cpp's --outtype auto; to a folder: each float tensor keeps its type, quantized ones become F16).")
    var dtype: Converter.DType = .auto

    @Option(name: .customLong("shard-size"), help: "Largest safetensors shard, e.g. 5GB, 500MB, 2GiB (folders only).")
    var shardSize = "5GB"

    @Option(name: .long, help: ArgumentHelp("Write only shard I of N (from 0) of the tensors, into OUTPUT.partI-of-N; `ingot merge` makes the output of all parts. auto/N and auto as for quantize.", valueName: "I/N|auto"))
    var shard: String?

    @OptionGroup var parallel: ParallelOptions

    @OptionGroup var common: CommonOptions

    func validate() throws {
        if ByteSize.parse(shardSize) == nil { throw ValidationError("--shard-size must be a size such as 5GB, 500MB or 2GiB") }
        if let shard, case .failure(let e) = ShardSpec.parse(shard) { throw ValidationError("--shard: \(e)") }
    }

    func run() throws {
        try reportingErrors(json: common.json) {
            let file = try ModelFile.open(input)
            var options = Converter.Options(target: to)
            options.dtype = dtype
            options.shardBytes = ByteSize.parse(shardSize) ?? options.shardBytes
            options.threads = parallel.count
            if let shard, case .success(let spec) = ShardSpec.parse(shard) { options.shard = (spec, try SourceFingerprint.of(path: input)) }
            let line = ProgressLine(verb: "converting", enabled: !common.json)
            let clock = Stopwatch()
            let report = try Converter.convert(file, to: output, options: options) { done, total in
                line.show("converting tensor \(done)/\(total), \(Human.fixed(clock.seconds, 1)) s")
            }
            line.finish()
            Warnings(items: report.warnings).print(json: common.json)
            if common.json {
                var o = report.json.objectValue ?? JSONObject()
                o["seconds"] = .double(clock.seconds)
                if let part = report.part {
                    o["part"] = partJSON(path: part.path, shard: shard ?? "", skipped: part.skipped, [("tensors", JSONValue(part.tensors))])
                }
                print(JSONValue.object(o).serialized(pretty: true))
            } else if let part = report.part {
                print(part.skipped ? "shard \(shard ?? ""): \(part.path) is already complete (\(part.tensors) tensors); nothing written"
                                   : "shard \(shard ?? ""): \(part.tensors) tensors -> \(part.path) (\(Human.bytes(report.bytesWritten)))")
            } else {
                let types = report.typeCounts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
                print("\(report.output): \(report.architecture), \(report.tensorCount) tensors (\(types)), \(Human.bytes(report.bytesWritten))"
                      + (report.preTokenizer.map { ", pre-tokenizer \($0)" } ?? "") + ", \(Human.fixed(clock.seconds, 1)) s")
            }
        }
    }
}

extension Converter.Target: ExpressibleByArgument {}
extension Converter.DType: ExpressibleByArgument {}

/// Sizes as people write them: 5GB, 500MB, 2GiB, 1000000 (bytes).
enum ByteSize {
    static func parse(_ s: String) -> Int? {
        let units: [(String, Int)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("GB", 1_000_000_000),
                                      ("MB", 1_000_000), ("KB", 1000), ("G", 1_000_000_000), ("M", 1_000_000), ("K", 1000), ("B", 1)]
        for (suffix, scale) in units where s.hasSuffix(suffix) {
            guard let n = Int(s.dropLast(suffix.count)), n > 0, n <= Int.max / scale else { return nil }
            return n * scale
        }
        guard let n = Int(s), n > 0 else { return nil }
        return n
    }
}
