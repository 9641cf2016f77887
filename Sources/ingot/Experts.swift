import ArgumentParser
import IngotArchitectures
import IngotExperts
import IngotFormats

struct Experts: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cut a mixture-of-experts model down by what calibration measured.",
        subcommands: [Prune.self]
    )

    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove the experts each block uses least (REAP, frequency or EAN), writing a smaller GGUF.",
            discussion: """
            STATS is the file `ingot calibrate MODEL --text FILE -o STATS` wrote: its expert statistics rank each \
            block's experts. Every block keeps the same number (llama.cpp states one expert count for the model), \
            the same number within each routing group; the stacked expert tensors, the router rows and the \
            selection bias are cut, expert_count is updated, and everything else is copied. llama.cpp and Ingot \
            load the result; quantize it afterwards (a new importance matrix for the pruned model).
            """
        )

        @Argument(help: "The model: a GGUF file with experts.")
        var model: String

        @Option(name: .long, help: "Experts to keep per block: a fraction (0.5) or a count (4).")
        var keep: String

        @Option(name: .long, help: "How experts are ranked: reap (gate weight × output norm, averaged), frequency, or ean (summed output norm).")
        var score: String = "reap"

        @Option(name: .long, help: "The statistics `ingot calibrate` wrote for this model.")
        var stats: String

        @Option(name: .shortAndLong, help: "The pruned model to write (GGUF).")
        var output: String

        @OptionGroup var common: CommonOptions

        var keepValue: ExpertKeep? {
            if let n = Int(keep), n >= 1 { return .count(n) }
            if let f = Double(keep), f > 0, f < 1 { return .fraction(f) }
            return nil
        }

        func validate() throws {
            if keepValue == nil { throw ValidationError("--keep takes a fraction between 0 and 1 or a count of at least 1, not '\(keep)'") }
            if ExpertScore(rawValue: score) == nil {
                throw ValidationError("--score is one of \(ExpertScore.allCases.map(\.rawValue).joined(separator: ", ")), not '\(score)'")
            }
        }

        func run() throws {
            try reportingErrors(json: common.json) {
                let file = try ModelFile.open(model)
                guard case .gguf(let g) = file.storage else {
                    throw ModelError(.unsupportedArchitecture, field: "format",
                                     "expert pruning reads GGUF models; convert this one first (ingot convert --to gguf)", path: model)
                }
                let statistics = try ImportanceMatrix.read(path: stats)
                let r = try ExpertPruner.prune(g, statistics: statistics, keep: keepValue!, score: ExpertScore(rawValue: score)!, to: output)
                if common.json {
                    let kept: [JSONValue] = r.kept.sorted { $0.key < $1.key }.map { b, k in
                        .object(JSONObject([("block", JSONValue(b)), ("experts", .array(k.map { JSONValue($0) }))]))
                    }
                    print(JSONValue.object(JSONObject([
                        ("model", .string(model)), ("output", .string(output)), ("score", .string(score)),
                        ("expertsBefore", JSONValue(r.expertsBefore)), ("expertsAfter", JSONValue(r.expertsAfter)),
                        ("bytesBefore", JSONValue(r.bytesBefore)), ("bytesAfter", JSONValue(r.bytesAfter)), ("kept", .array(kept)),
                    ])).serialized(pretty: true))
                } else {
                    print("pruned \(model) by \(score): \(r.expertsBefore) -> \(r.expertsAfter) experts in \(r.kept.count) blocks, "
                          + "tensor data \(Human.bytes(r.bytesBefore)) -> \(Human.bytes(r.bytesAfter)) -> \(output)")
                }
            }
        }
    }
}
