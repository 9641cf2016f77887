import ArgumentParser
import IngotFormats
import IngotPack
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct Pack: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pack a GGUF file, a safetensors file or a Hugging Face folder into one lossless .ingot artifact.",
        discussion: """
        Each tensor (or chunk of a large one) becomes an independently compressed, checksummed \
        frame; floating-point weights have their exponent bytes separated from their mantissa \
        bytes before zstd, quantized blocks their scale bytes from their quants. The original \
        metadata is kept verbatim. `ingot unpack` restores every file bit for bit.
        """
    )

    @Argument(help: "A .gguf file, a .safetensors file, a Hugging Face folder, or any file.")
    var input: String

    @Option(name: .shortAndLong, help: "The artifact to write (conventionally NAME.ingot).")
    var output: String

    @Option(name: .long, help: "zstd level, 1 to 22.")
    var level = 3

    @OptionGroup var parallel: ParallelOptions

    @Option(name: .customLong("chunk-mib"), help: "Largest frame, in MiB of original bytes.")
    var chunkMiB = 1

    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard (1 ... 22).contains(level) else { throw ValidationError("--level must be between 1 and 22") }
        guard (1 ... 1024).contains(chunkMiB) else { throw ValidationError("--chunk-mib must be between 1 and 1024") }
    }

    func run() throws {
        try reportingErrors(json: common.json) {
            var options = PackOptions()
            options.level = level
            options.threads = parallel.count
            options.chunkBytes = chunkMiB << 20
            let line = ProgressLine(verb: "packing", enabled: !common.json)
            let clock = Stopwatch()
            let s = try Packer.pack(input: input, output: output, options: options, progress: line.update)
            line.finish()
            let seconds = clock.seconds
            let ratio = s.originalBytes > 0 ? Double(s.packedBytes) / Double(s.originalBytes) : 0
            if common.json {
                print(JSONValue.object(JSONObject([
                    ("input", .string(input)), ("output", .string(output)), ("files", JSONValue(s.files)),
                    ("frames", JSONValue(s.frames)), ("tensors", JSONValue(s.tensors)),
                    ("originalBytes", JSONValue(s.originalBytes)), ("packedBytes", JSONValue(s.packedBytes)),
                    ("linkedFiles", .array(s.linkedFiles.map { .string($0) })),
                    ("ratio", .double(ratio)), ("seconds", .double(seconds)), ("level", JSONValue(level)),
                    ("byTransform", .array(s.byTransform.map { t in
                        .object(JSONObject([("transform", .string(t.transform)), ("originalBytes", JSONValue(t.original)),
                                            ("storedBytes", JSONValue(t.stored))]))
                    })),
                ])).serialized(pretty: true))
            } else {
                print("packed \(input) -> \(output)")
                print("  \(s.files) file(s), \(s.tensors) tensors, \(s.frames) frames, zstd level \(level)")
                if !s.linkedFiles.isEmpty {
                    print("  \(s.linkedFiles.count) symbolic link(s) stored as the files they point to (unpack restores regular files)")
                }
                print("  \(Human.bytes(s.originalBytes)) -> \(Human.bytes(s.packedBytes)) (\(Human.fixed(ratio * 100, 2))% of the original) in \(Human.fixed(seconds, 2)) s, \(Human.fixed(Double(s.originalBytes) / 1048576 / max(seconds, 1e-9), 1)) MiB/s")
                var t = Table(header: ["transform", "original", "stored", "ratio"], rightAligned: [1, 2, 3])
                for r in s.byTransform {
                    t.rows.append([r.transform, Human.bytes(r.original), Human.bytes(r.stored),
                                   Human.fixed(r.original > 0 ? Double(r.stored) * 100 / Double(r.original) : 0, 1) + "%"])
                }
                print(t.render())
            }
        }
    }
}

struct Unpack: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore the original file or folder from an .ingot artifact, bit for bit.",
        discussion: "With --tensor, writes only that tensor's bytes, restoring only the frames that hold it."
    )

    @Argument(help: "An .ingot artifact.")
    var artifact: String

    @Option(name: .shortAndLong, help: "Where to restore the file or folder (or the tensor's bytes).")
    var output: String

    @Option(name: .long, help: "Extract one tensor's raw bytes instead of the whole model.")
    var tensor: String?

    @OptionGroup var parallel: ParallelOptions

    @OptionGroup var common: CommonOptions

    func run() throws {
        try reportingErrors(json: common.json) {
            let a = try PackedArtifact(path: artifact)
            let clock = Stopwatch()
            let n = parallel.count
            if let tensor {
                try a.extract(tensor: tensor, to: output, threads: n)
            } else {
                let line = ProgressLine(verb: "unpacking", enabled: !common.json)
                try a.unpack(to: output, threads: n, progress: line.update)
                line.finish()
            }
            let bytes = tensor.flatMap { name in a.index.tensors.first { $0.name == name }?.length } ?? a.index.files.reduce(0) { $0 + $1.size }
            if common.json {
                print(JSONValue.object(JSONObject([("artifact", .string(artifact)), ("output", .string(output)),
                                                   ("tensor", tensor.map { .string($0) } ?? .null),
                                                   ("bytes", JSONValue(bytes)), ("seconds", .double(clock.seconds))])).serialized(pretty: true))
            } else {
                print("restored \(tensor.map { "tensor '\($0)'" } ?? "\(a.index.files.count) file(s)") -> \(output): \(Human.bytes(bytes)) in \(Human.fixed(clock.seconds, 2)) s")
            }
        }
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check every checksum of an .ingot artifact without writing anything."
    )

    @Argument(help: "An .ingot artifact.")
    var artifact: String

    @OptionGroup var parallel: ParallelOptions

    @OptionGroup var common: CommonOptions

    func run() throws {
        try reportingErrors(json: common.json) {
            let a = try PackedArtifact(path: artifact)
            let line = ProgressLine(verb: "verifying", enabled: !common.json)
            try a.verify(threads: parallel.count, progress: line.update)
            line.finish()
            let frames = a.index.files.reduce(0) { $0 + $1.frames.count }
            if common.json {
                print(JSONValue.object(JSONObject([("artifact", .string(artifact)), ("ok", true), ("files", JSONValue(a.index.files.count)),
                                                   ("frames", JSONValue(frames))])).serialized(pretty: true))
            } else {
                print("ok: \(artifact): \(a.index.files.count) file(s), \(frames) frames, every checksum matches")
            }
        }
    }
}

extension ProgressLine {
    /// Packing progress: frames and bytes done, rate, time left.
    func update(_ p: Progress) {
        guard enabled else { return }
        let t = clock.seconds
        let rate = Double(p.bytesDone) / max(t, 1e-9)
        let eta = rate > 0 ? Double(p.byteCount - p.bytesDone) / rate : 0
        FileHandleStderr.write("\r\(verb) frame \(p.framesDone)/\(p.frameCount), \(Human.bytes(p.bytesDone)) of \(Human.bytes(p.byteCount)), "
                               + "\(Human.fixed(rate / 1048576, 1)) MiB/s, ETA \(Human.fixed(eta, 0)) s\u{1B}[K")
        drawn = true
    }
}
