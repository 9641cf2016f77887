import ArgumentParser
import IngotFormats
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// What every command shares: options, progress on a terminal, standard error.

/// Options every command shares.
struct CommonOptions: ParsableArguments {
    @Flag(name: .long, help: "Print machine-readable JSON on standard output.")
    var json = false
}

/// `--threads N` for commands that work in parallel: one limit for all of them.
struct ParallelOptions: ParsableArguments {
    static let limit = 1 ... 1024

    @Option(name: .long, help: "Worker threads, 1 to 1024 (default: all cores).")
    var threads: Int?

    func validate() throws {
        if let threads, !Self.limit.contains(threads) { throw ValidationError("--threads must be between 1 and 1024, not \(threads)") }
    }

    var count: Int { threads ?? max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }
}

/// `--ctx` and `--chunks` for the commands that run the model over windows of a text (eval, calibrate).
struct WindowOptions: ParsableArguments {
    static let contextLimit = 16 ... 65536
    static let defaultContext = 512

    @Option(name: .long, help: "Tokens per window, 16 to 65536.")
    var ctx = WindowOptions.defaultContext

    @Option(name: .long, help: "Use at most this many windows, at least 1 (default: all the text holds).")
    var chunks: Int?

    /// llama.cpp's warning when the window is longer than the model was trained on.
    func beyondTrainedContext(_ trained: Int?) -> [String] {
        guard let trained, ctx > trained else { return [] }
        return ["--ctx \(ctx) exceeds the trained context of \(trained) tokens (llama.cpp warns of the same)"]
    }

    func validate() throws {
        if !Self.contextLimit.contains(ctx) { throw ValidationError("--ctx must be between 16 and 65536, not \(ctx)") }
        if let chunks, chunks < 1 { throw ValidationError("--chunks must be at least 1, not \(chunks)") }
    }
}

/// Warnings of a run: on standard error as text, and under `warnings` in the JSON report (always present there, so
/// that scripts need not test for it).
struct Warnings {
    var items: [String] = []

    mutating func add(_ w: [String], prefix: String = "") { items += w.map { prefix + $0 } }

    func print(json: Bool) {
        if !json { for w in items { FileHandleStderr.write("warning: \(w)\n") } }
    }

    func adding(to report: JSONValue) -> JSONValue {
        var o = report.objectValue ?? JSONObject()
        o["warnings"] = .array(items.map { .string($0) })
        return .object(o)
    }
}

/// Wall-clock time since creation.
struct Stopwatch {
    let start = Stopwatch.now()
    static func now() -> Double { monotonicSeconds() }
    var seconds: Double { Stopwatch.now() - start }
}

/// A one-line progress display on standard error, redrawn in place; silent unless standard
/// error is a terminal.
final class ProgressLine {
    let verb: String
    let enabled: Bool
    let clock = Stopwatch()
    var drawn = false

    init(verb: String, enabled: Bool) {
        self.verb = verb
        self.enabled = enabled && isatty(2) == 1
    }

    /// Redraws the line with free text (terminal only).
    func show(_ text: String) {
        guard enabled else { return }
        FileHandleStderr.write("\r\(text)\u{1B}[K")
        drawn = true
    }

    func finish() {
        if drawn { FileHandleStderr.write("\r\u{1B}[K") }
    }
}

enum FileHandleStderr {
    static func write(_ s: String) {
        let bytes = Array(s.utf8)
        bytes.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                #if canImport(Glibc)
                let n = Glibc.write(2, raw.baseAddress! + off, raw.count - off)
                #else
                let n = Darwin.write(2, raw.baseAddress! + off, raw.count - off)
                #endif
                if n <= 0 { return }
                off += n
            }
        }
    }
}

/// The `part` object of a sharded run's `--json` report: where the part is, which shard, whether it was already
/// complete, and what the command adds (its tensors, or its windows).
func partJSON(path: String, shard: String, skipped: Bool, _ extra: [(String, JSONValue)] = []) -> JSONValue {
    .object(JSONObject([("path", .string(path)), ("shard", .string(shard))] + extra + [("skipped", .bool(skipped))]))
}

/// The part of a shard of a run over windows (calibrate, eval): its path, plan digest (the options that decide the
/// windows and what is recorded) and the inputs' fingerprint.
struct WindowShard {
    let spec: ShardSpec
    let path: String
    let digest: String
    let source: String

    init(_ spec: ShardSpec, output: String, inputs: [String], plan: String) throws {
        self.spec = spec
        path = spec.partPath(for: output)
        source = try SourceFingerprint.of(paths: inputs)
        digest = PartFile.digest(plan: Array(plan.utf8), source: source)
    }

    /// Whether the part is already complete; if so, says so (a re-run computes nothing).
    func reportIfComplete(json: Bool) -> Bool {
        guard GGUFPartMerger.isComplete(path: path, shard: spec, digest: digest) else { return false }
        print(json ? JSONValue.object(JSONObject([("part", partJSON(path: path, shard: spec.description, skipped: true))])).serialized(pretty: true)
                   : "shard \(spec): \(path) is already complete; nothing computed")
        return true
    }

    /// The shard keys of the part, its windows as positions.
    func keys(windows: [Int]) -> [GGUFKeyValue] {
        PartFile.keys(shard: spec, digest: digest, source: source, positions: windows)
    }
}
