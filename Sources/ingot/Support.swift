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

/// `--threads N` for commands that work in parallel.
struct ParallelOptions: ParsableArguments {
    @Option(name: .long, help: "Worker threads (default: all cores).")
    var threads: Int?

    func validate() throws {
        guard (threads ?? 1) >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    var count: Int { threads ?? max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }
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
