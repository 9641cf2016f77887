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
        subcommands: [Inspect.self, Quantize.self, Tokenize.self, Eval.self, Pack.self, Unpack.self, Verify.self]
    )
}

/// Options every command shares.
struct CommonOptions: ParsableArguments {
    @Flag(name: .long, help: "Print machine-readable JSON on standard output.")
    var json = false
}

/// Runs a command body, turning a `FormatError` into a message (or a JSON error object) and exit
/// code 1, so that bad input never ends in a trap or a stack trace.
func reportingErrors(json: Bool, _ body: () throws -> Void) throws {
    // A write past a file-size limit fails with EFBIG (reported like a full disk) instead of killing the process.
    signal(SIGXFSZ, SIG_IGN)
    do {
        try body()
    } catch let e as FormatError {
        if json {
            var o = JSONObject([("code", .string(e.code.rawValue)), ("field", .string(e.field)), ("detail", .string(e.detail))])
            if let p = e.path { o["path"] = .string(p) }
            if let off = e.offset { o["offset"] = JSONValue(off) }
            print(JSONValue.object(JSONObject([("error", .object(o))])).serialized(pretty: true))
        }
        FileHandleStderr.write("error: \(e.description)\n")
        throw ExitCode(1)
    } catch let e as ModelError {
        if json {
            var o = JSONObject([("code", .string(e.code.rawValue)), ("field", .string(e.field)), ("detail", .string(e.detail))])
            if let p = e.path { o["path"] = .string(p) }
            if let off = e.offset { o["offset"] = JSONValue(off) }
            print(JSONValue.object(JSONObject([("error", .object(o))])).serialized(pretty: true))
        }
        FileHandleStderr.write("error: \(e.description)\n")
        throw ExitCode(1)
    } catch let e as QuantError {
        if json {
            var o = JSONObject([("code", .string(e.code.rawValue)), ("detail", .string(e.detail))])
            if let t = e.tensor { o["tensor"] = .string(t) }
            print(JSONValue.object(JSONObject([("error", .object(o))])).serialized(pretty: true))
        }
        FileHandleStderr.write("error: \(e.description)\n")
        throw ExitCode(1)
    }
}

enum FileHandleStderr {
    static func write(_ s: String) {
        let bytes = Array(s.utf8)
        bytes.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = Glibc.write(2, raw.baseAddress! + off, raw.count - off)
                if n <= 0 { return }
                off += n
            }
        }
    }
}
