import ArgumentParser
import IngotEvaluate
import IngotFormats

struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Put the parts of a sharded run (quantize --shard I/N) together into the file one process would have written.",
        discussion: """
        Each part names its shard, the plan it belongs to (a digest of the output's header and a fingerprint of the \
        input) and where its tensors go. Every shard must be given once, all of one plan; the output is then the \
        single-process output byte for byte. Parts may be given in any order (a shell glob: OUT.part*-of-N).
        """
    )

    @Argument(help: "The parts (OUTPUT.partI-of-N), every shard once.")
    var parts: [String]

    @Option(name: .shortAndLong, help: "The file to write (for the parts of an evaluation: the report as JSON, optional).")
    var output: String?

    @OptionGroup var common: CommonOptions

    func validate() throws {
        if parts.isEmpty { throw ValidationError("give the parts to merge") }
    }

    func run() throws {
        try reportingErrors(json: common.json) {
            // The parts of an evaluation make a report, not a file.
            if let first = try? GGUFFile(path: parts[0]), first["general.type"]?.stringValue == EvalPart.type {
                let report = try EvalPart.merge(parts: parts)
                var json = report.json.objectValue ?? JSONObject()
                json["parts"] = JSONValue(parts.count)
                json["warnings"] = .array([])
                let text = JSONValue.object(json).serialized(pretty: true)
                if let output {
                    let file = try OutputFile(path: output)
                    try file.write(Array((text + "\n").utf8))
                    try file.commit()
                }
                print(common.json ? text : "merged \(parts.count) parts: the report of all windows\n" + report.text)
                return
            }
            guard let output else { throw FormatError(.missingField, field: "-o", offset: nil, "give the file to write (-o)", path: parts[0]) }
            let line = ProgressLine(verb: "merging", enabled: !common.json)
            let clock = Stopwatch()
            let report = try GGUFPartMerger.merge(parts: parts, output: output) { done, total in
                line.show("merging tensor \(done)/\(total), \(Human.fixed(clock.seconds, 1)) s")
            }
            line.finish()
            if common.json {
                print(JSONValue.object(JSONObject([
                    ("output", .string(output)), ("parts", JSONValue(report.parts)), ("tensors", JSONValue(report.tensors)),
                    ("bytes", JSONValue(report.bytes)), ("plan", .string(report.digest)), ("seconds", .double(clock.seconds)),
                ])).serialized(pretty: true))
            } else {
                print("merged \(report.parts) parts -> \(output): \(report.tensors) tensors, \(Human.bytes(report.bytes)) in \(Human.fixed(clock.seconds, 2)) s (plan \(report.digest.prefix(12)))")
            }
        }
    }
}
