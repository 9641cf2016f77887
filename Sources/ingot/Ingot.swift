import ArgumentParser
import IngotFormats
import IngotModel
import IngotQuantize
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@main
struct Ingot: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingot",
        abstract: "Shrink, convert and verify the weights of large language models.",
        version: "0.1.0",
        subcommands: [Inspect.self, Convert.self, Quantize.self, Calibrate.self, Experts.self, Tokenize.self, Eval.self, Pack.self, Unpack.self, Verify.self]
    )
}

/// Runs a command body, turning any `IngotError` into a message (or a JSON error object) and exit
/// code 1, so that bad input never ends in a trap or a stack trace.
func reportingErrors(json: Bool, _ body: () throws -> Void) throws {
    // A write past a file-size limit fails with EFBIG (reported like a full disk) instead of killing the process.
    signal(SIGXFSZ, SIG_IGN)
    func fail(_ fields: [(String, String?)], offset: Int?, _ description: String) throws -> Never {
        if json {
            var o = JSONObject(fields.compactMap { k, v in v.map { (k, JSONValue.string($0)) } })
            if let offset { o["offset"] = JSONValue(offset) }
            print(JSONValue.object(JSONObject([("error", .object(o))])).serialized(pretty: true))
        }
        FileHandleStderr.write("error: \(description)\n")
        throw ExitCode(1)
    }
    do {
        try body()
    } catch let e as IngotError {
        try fail([("code", e.codeName)] + e.reportFields, offset: e.offset, e.description)
    }
}
