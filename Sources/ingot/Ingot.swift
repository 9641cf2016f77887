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
        subcommands: [Inspect.self, Convert.self, Quantize.self, Fit.self, Merge.self, Calibrate.self, Experts.self, Tokenize.self, Eval.self, Pack.self, Unpack.self, Verify.self]
    )

    /// Interrupts remove the temporary output (see `Temporaries`); a bad command line under `--json` is answered in
    /// JSON too, with the exit code ArgumentParser gives it (64).
    static func main() {
        Temporaries.handleInterrupts { signal, removed in
            FileHandleStderr.write("\ningot: interrupted (signal \(signal))" + (removed > 0 ? "; the unfinished output was removed" : "") + "\n")
        }
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code != .success, !(error is ExitCode), arguments.contains("--json") {
                let message = Self.message(for: error)
                let error = JSONObject([("code", .string("invalid-argument")), ("field", .string(usageField(message))),
                                        ("detail", .string(message))])
                print(JSONValue.object(JSONObject([("error", .object(error))])).serialized(pretty: true))
                FileHandleStderr.write("error: \(message)\n")
                Self.exit(withError: ExitCode(code.rawValue))
            }
            Self.exit(withError: error)
        }
    }
}

/// The option a command-line error names: its first `--option`, else its first quoted word, else "arguments".
func usageField(_ message: String) -> String {
    let words = message.split(whereSeparator: { $0 == " " || $0 == "'" || $0 == "," || $0 == ":" || $0 == "=" })
    if let option = words.first(where: { $0.hasPrefix("--") && $0.count > 2 }) { return String(option) }
    let quoted = message.split(separator: "'", omittingEmptySubsequences: false)
    if quoted.count >= 3, !quoted[1].isEmpty { return String(quoted[1]) }
    return "arguments"
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
