import ArgumentParser
import IngotArchitectures
import IngotConvert
import IngotExperts
import IngotFormats

struct Experts: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cut a mixture-of-experts model down by what calibration measured.",
        subcommands: [Prune.self, Merge.self]
    )

    /// The model, statistics and output shared by pruning and merging.
    struct Paths: ParsableArguments {
        @Argument(help: "The model: a GGUF file or a Hugging Face folder with experts.")
        var model: String

        @Option(name: .long, help: "The statistics `ingot calibrate MODEL --text FILE -o STATS` wrote for this model.")
        var stats: String

        @Option(name: .shortAndLong, help: "The model to write: a GGUF file or a Hugging Face folder (see --format).")
        var output: String

        @Option(name: .long, help: "Output layout: gguf or hf (default: gguf when the output name ends in .gguf, else hf).")
        var format: String?

        func validate() throws {
            if let format, ExpertOutput(rawValue: format) == nil { throw ValidationError("--format is gguf or hf, not '\(format)'") }
        }

        var layout: ExpertOutput { format.flatMap(ExpertOutput.init) ?? (output.hasSuffix(".gguf") ? .gguf : .hf) }

        /// The model as GGUF tensors: the file itself, or a folder seen as the GGUF `ingot convert` would write.
        func source(json: Bool) throws -> GGUFTensorSource {
            let file = try ModelFile.open(model)
            let warnings = try ModelValidation.check(model: file)
            Warnings(items: warnings).print(json: json)
            guard let source = try file.ggufTensors() else {
                throw ModelError(.unsupportedArchitecture, field: "format", "a lone safetensors file has no config.json; give its Hugging Face folder", path: model)
            }
            return source
        }
    }

    static func count(_ text: String) -> ExpertKeep? {
        if let n = Int(text), n >= 1 { return .count(n) }
        if let f = Double(text), f > 0, f < 1 { return .fraction(f) }
        return nil
    }

    static func report(_ r: ExpertReport, verb: String, how: String, paths: Paths, json: Bool) {
        if json {
            let blocks: [JSONValue] = r.experts.sorted { $0.key < $1.key }.map { b, news in
                .object(JSONObject([
                    ("block", JSONValue(b)), ("experts", .array(news.flatMap(\.members).map { JSONValue($0) })),
                    ("groups", .array(news.map { n in
                        .object(JSONObject([("members", .array(n.members.map { JSONValue($0) })),
                                            ("weights", .array(n.weights.map { JSONValue.double($0) })), ("router", JSONValue(n.router))]))
                    })),
                ]))
            }
            print(JSONValue.object(JSONObject([
                ("model", .string(paths.model)), ("output", .string(paths.output)), ("to", .string(paths.layout.rawValue)),
                ("method", .string(how)), ("expertsBefore", JSONValue(r.expertsBefore)), ("expertsAfter", JSONValue(r.expertsAfter)),
                ("bytesBefore", JSONValue(r.bytesBefore)), ("bytesAfter", JSONValue(r.bytesAfter)),
                ("widened", .array(r.widened.map { .string($0) })), ("kept", .array(blocks)),
            ])).serialized(pretty: true))
        } else {
            print("\(verb) \(paths.model) by \(how): \(r.expertsBefore) -> \(r.expertsAfter) experts in \(r.experts.count) blocks, "
                  + "tensor data \(Human.bytes(r.bytesBefore)) -> \(Human.bytes(r.bytesAfter)) -> \(paths.output)")
            if !r.widened.isEmpty { print("  stored as F16 after merging (Ingot does not write their type): \(r.widened.joined(separator: ", "))") }
        }
    }

    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove the experts each block uses least (REAP, frequency or EAN).",
            discussion: """
            STATS is the file `ingot calibrate MODEL --text FILE -o STATS` wrote: its expert statistics rank each \
            block's experts. Every block keeps the same number (llama.cpp and transformers state one expert count \
            for the model), the same number within each routing group; the kept experts' weights, router rows and \
            selection bias are copied byte for byte, the expert count is updated, and everything else is copied. \
            llama.cpp, transformers and Ingot load the result; quantize it afterwards (with a new importance matrix \
            for the pruned model).
            """
        )

        @OptionGroup var paths: Paths

        @Option(name: .long, help: "Experts to keep per block: a fraction (0.5) or a count (4).")
        var keep: String

        @Option(name: .long, help: "How experts are ranked: reap (gate weight × output norm, averaged), frequency, or ean (summed output norm).")
        var score: String = "reap"

        @OptionGroup var common: CommonOptions

        func validate() throws {
            if Experts.count(keep) == nil { throw ValidationError("--keep takes a fraction between 0 and 1 or a count of at least 1, not '\(keep)'") }
            if ExpertScore(rawValue: score) == nil {
                throw ValidationError("--score is one of \(ExpertScore.allCases.map(\.rawValue).joined(separator: ", ")), not '\(score)'")
            }
        }

        func run() throws {
            try reportingErrors(json: common.json) {
                let source = try paths.source(json: common.json)
                let statistics = try ImportanceMatrix.read(path: paths.stats)
                let line = ProgressLine(verb: "pruning", enabled: !common.json)
                let r = try ExpertPruner.prune(source, statistics: statistics, keep: Experts.count(keep)!,
                                               score: ExpertScore(rawValue: score)!, to: paths.output, as: paths.layout,
                                               progress: { line.show("pruning: tensor \($0)/\($1)") })
                line.finish()
                Experts.report(r, verb: "pruned", how: score, paths: paths, json: common.json)
            }
        }
    }

    struct Merge: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Merge each block's experts into fewer, grouping those whose outputs are alike (HC-SMoE).",
            discussion: """
            STATS is the file `ingot calibrate MODEL --text FILE -o STATS` wrote: besides routing counts it holds \
            each expert's mean output over a sample of tokens that every expert was run on. Experts are grouped by \
            the distance between those outputs (average linkage, within routing groups) and each group becomes the \
            token-weighted average of its members' weights, routed by its most-used member's router row. Every \
            block ends with the same number; llama.cpp, transformers and Ingot load the result.
            """
        )

        @OptionGroup var paths: Paths

        @Option(name: .customLong("to"), help: "Experts per block after merging: a count (4) or a fraction (0.5).")
        var target: String

        @OptionGroup var common: CommonOptions

        func validate() throws {
            if Experts.count(target) == nil { throw ValidationError("--to takes a fraction between 0 and 1 or a count of at least 1, not '\(target)'") }
        }

        func run() throws {
            try reportingErrors(json: common.json) {
                let source = try paths.source(json: common.json)
                let statistics = try ImportanceMatrix.read(path: paths.stats)
                let line = ProgressLine(verb: "merging", enabled: !common.json)
                let r = try ExpertMerger.merge(source, statistics: statistics, to: Experts.count(target)!, to: paths.output,
                                               as: paths.layout, progress: { line.show("merging: tensor \($0)/\($1)") })
                line.finish()
                Experts.report(r, verb: "merged", how: "output similarity", paths: paths, json: common.json)
            }
        }
    }
}
