import ArgumentParser
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

    @Option(name: .shortAndLong, help: "The file to write.")
    var output: String

    @OptionGroup var common: CommonOptions

    func validate() throws {
        if parts.isEmpty { throw ValidationError("give the parts to merge") }
    }

    func run() throws {
        try reportingErrors(json: common.json) {
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
