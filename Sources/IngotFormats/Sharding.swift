#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One share of a long run, for schedulers that run N copies of a command with an index each (a Slurm job array, a
/// Kubernetes indexed Job, `xargs -P`): shard `index` of `count`, counted from 0. Every shard plans the whole run the
/// same way and does only its share; `ingot merge` puts the parts together into what one process would have written.
public struct ShardSpec: Equatable, Sendable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    /// At most this many shards: a part per tensor of the largest models is already past it.
    public static let maxCount = 65536

    public init?(index: Int, count: Int) {
        guard count >= 1, count <= ShardSpec.maxCount, index >= 0, index < count else { return nil }
        self.index = index
        self.count = count
    }

    public var description: String { "\(index)/\(count)" }

    /// Parses `--shard`: `I/N` (0 ≤ I < N), or `auto/N` and `auto`, the scheduler's own index: Slurm's
    /// `SLURM_ARRAY_TASK_ID`, else a Kubernetes indexed Job's `JOB_COMPLETION_INDEX`. Without N, Slurm's
    /// `SLURM_ARRAY_TASK_COUNT` is the count, right only for the whole array `--array=0-(N-1)`: a task submitted again
    /// on its own (`--array=3`) must be given N. The message of a failure says what was wrong.
    public static func parse(_ text: String, environment: (String) -> String? = ShardSpec.environment) -> Result<ShardSpec, ShardSpecError> {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count <= 2, let first = parts.first else { return .failure(ShardSpecError("'\(text)' is not I/N, auto or auto/N")) }
        var count = parts.count == 2 ? Int(parts[1]) : nil
        if parts.count == 2 && count == nil { return .failure(ShardSpecError("'\(parts[1])' in '\(text)' is not a shard count")) }
        let index: Int
        if first == "auto" {
            if let id = environment("SLURM_ARRAY_TASK_ID").flatMap({ Int($0) }) {
                index = id
                if count == nil { count = environment("SLURM_ARRAY_TASK_COUNT").flatMap { Int($0) } }
            } else if let id = environment("JOB_COMPLETION_INDEX").flatMap({ Int($0) }) {
                index = id
            } else {
                return .failure(ShardSpecError("auto: neither SLURM_ARRAY_TASK_ID (a Slurm job array) nor JOB_COMPLETION_INDEX (a Kubernetes indexed Job) is set; give I/N"))
            }
            guard count != nil else {
                return .failure(ShardSpecError("auto: the number of shards is not known (SLURM_ARRAY_TASK_COUNT is not set); give auto/N"))
            }
        } else {
            guard let i = Int(first), parts.count == 2 else { return .failure(ShardSpecError("'\(text)' is not I/N, auto or auto/N")) }
            index = i
        }
        guard let n = count, let spec = ShardSpec(index: index, count: n) else {
            return .failure(ShardSpecError("shard \(index) of \(count ?? 0) is out of range: the count must be 1 to \(maxCount) and the index 0 to count - 1"))
        }
        return .success(spec)
    }

    public static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// The part this shard writes for the output `path`: `path.partI-of-N`.
    public func partPath(for path: String) -> String { "\(path).part\(index)-of-\(count)" }

    /// The shard of each item, balanced by cost: items go in order of decreasing cost (the earlier on ties) to the
    /// shard with the least cost so far (the lower on ties). The same costs always give the same shares.
    public static func assign(costs: [Int], count: Int) -> [Int] {
        var load = [Int](repeating: 0, count: max(1, count))
        var owner = [Int](repeating: 0, count: costs.count)
        for i in costs.indices.sorted(by: { costs[$0] != costs[$1] ? costs[$0] > costs[$1] : $0 < $1 }) {
            var best = 0
            for s in load.indices where load[s] < load[best] { best = s }
            owner[i] = best
            load[best] += max(1, costs[i])
        }
        return owner
    }
}

public struct ShardSpecError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}

/// A part: a GGUF holding one shard's tensors (in the output's order, the types the output will have) and the whole
/// output's metadata, followed by keys that say where it belongs:
///
/// - `ingot.shard.index`, `ingot.shard.count` (UINT32): which share;
/// - `ingot.shard.plan` (STRING): the plan's digest, SHA-256 of the header the merged file will have (its metadata
///   and tensor table) and of `ingot.shard.source`;
/// - `ingot.shard.source` (STRING): a fingerprint of the input (`SourceFingerprint`), so that parts made from two
///   models with the same layout do not merge;
/// - `ingot.shard.positions` (UINT32 array): each tensor's position in the merged file; in a part of an importance
///   matrix (`general.type` imatrix, a shard of the calibration windows), the windows it holds.
public enum PartFile {
    public static let prefix = "ingot.shard."

    public static func keys(shard: ShardSpec, digest: String, source: String, positions: [Int]) -> [GGUFKeyValue] {
        [GGUFKeyValue(prefix + "index", .uint32(UInt32(shard.index))),
         GGUFKeyValue(prefix + "count", .uint32(UInt32(shard.count))),
         GGUFKeyValue(prefix + "plan", .string(GGUFString(digest))),
         GGUFKeyValue(prefix + "source", .string(GGUFString(source))),
         GGUFKeyValue(prefix + "positions", .array(.uint32(positions.map { UInt32($0) })))]
    }

    /// The digest of a plan: the merged file's header, and the input's fingerprint.
    public static func digest(header: [UInt8], source: String) -> String {
        SHA256.hex(SHA256.digest(header + Array(source.utf8)))
    }
}

/// One shard's part of a GGUF output: which of the output's tensors it writes, the metadata and path of its part,
/// and whether a complete part is already there. Shared by every writer that shards a GGUF (quantize, convert).
public struct ShardedOutput {
    /// Indices into the output's tensors, in the output's order.
    public let selected: [Int]
    public let metadata: [GGUFKeyValue]
    public let path: String
    public let isComplete: Bool

    /// `costs`: one per tensor, what its share of the work weighs (bytes read and written).
    public init(shard: ShardSpec, source: String, outputPath: String, metadata: [GGUFKeyValue], tensors: [GGUFTensorInfo],
                costs: [Int]) throws {
        let layout = try GGUFWriter.layout(path: outputPath, metadata: metadata, tensors: tensors)
        let digest = PartFile.digest(header: layout.header, source: source)
        let owner = ShardSpec.assign(costs: costs, count: shard.count)
        selected = tensors.indices.filter { owner[$0] == shard.index }
        self.metadata = metadata + PartFile.keys(shard: shard, digest: digest, source: source, positions: selected)
        path = shard.partPath(for: outputPath)
        isComplete = GGUFPartMerger.isComplete(path: path, shard: shard, digest: digest, tensors: selected.count)
    }
}

/// A fingerprint of a model's input files, cheap enough for every shard to take: SHA-256 over each file's name and
/// size and 17 samples of 4 KiB spread evenly over it (the first and last included). Two copies of a model agree;
/// two fine-tunes of one architecture, whose headers may be equal, do not.
public enum SourceFingerprint {
    public static func of(path: String) throws -> String {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw FormatError(.cannotOpen, field: "input", offset: nil, "cannot read: \(errnoText())", path: path)
        }
        let files: [(String, String)] = (st.st_mode & S_IFMT) == S_IFDIR
            ? try listFiles(path).map { ($0, path + "/" + $0) } : [("", path)]
        var bytes: [UInt8] = []
        for (name, file) in files {
            let mapped = try MappedFile(path: file)
            bytes += Array(name.utf8) + [0] + withUnsafeBytes(of: UInt64(mapped.count).littleEndian, Array.init)
            let sample = 4096
            for k in 0...16 {
                let start = mapped.count <= sample ? 0 : (mapped.count - sample) * k / 16
                bytes += mapped.slice(offset: start, count: min(sample, mapped.count - start))
            }
        }
        return SHA256.hex(SHA256.digest(bytes))
    }
}

/// Puts the parts of a sharded run together: the file one process would have written, byte for byte.
public enum GGUFPartMerger {
    public struct Report: Sendable {
        public var parts: Int
        public var tensors: Int
        public var bytes: Int
        public var digest: String
    }

    /// What a part says of itself (its shard keys), read from the file; thrown where a key is missing or mistyped.
    public struct Part {
        public let file: GGUFFile
        public let index: Int, count: Int
        public let digest: String, source: String
        public let positions: [Int]

        public init(_ file: GGUFFile) throws {
            func missing(_ key: String) -> FormatError {
                FormatError(.missingField, field: "kv '\(PartFile.prefix + key)'",
                            offset: file.metadata.first { $0.key == PartFile.prefix + key }?.fileOffset,
                            "not a part written with --shard (or the key is damaged)", path: file.path)
            }
            guard let i = file[PartFile.prefix + "index"]?.intValue else { throw missing("index") }
            guard let n = file[PartFile.prefix + "count"]?.intValue else { throw missing("count") }
            guard let d = file[PartFile.prefix + "plan"]?.stringValue else { throw missing("plan") }
            guard let s = file[PartFile.prefix + "source"]?.stringValue else { throw missing("source") }
            // A model part has a position per tensor; the parts of a calibration or an evaluation hold windows.
            guard case .array(.uint32(let p))? = file[PartFile.prefix + "positions"],
                  p.count == file.tensors.count || ["imatrix", "ingot-eval"].contains(file["general.type"]?.stringValue ?? "") else {
                throw missing("positions")
            }
            guard ShardSpec(index: i, count: n) != nil else {
                throw FormatError(.invalidValue, field: "kv '\(PartFile.prefix)index'", offset: nil,
                                  "shard \(i) of \(n) is out of range", path: file.path)
            }
            self.file = file
            index = i; count = n; digest = d; source = s
            positions = p.map { Int($0) }
        }

        /// The output's metadata: the part's without the shard keys.
        var outputMetadata: [GGUFKeyValue] {
            file.metadata.filter { !$0.key.hasPrefix(PartFile.prefix) }.map { GGUFKeyValue($0.key, $0.value) }
        }
    }

    /// Whether `path` already holds this shard's complete part of this plan (a re-run skips it). A part is written
    /// whole or not at all, so a file that parses, names this shard and plan and holds `tensors` tensors is done.
    public static func isComplete(path: String, shard: ShardSpec, digest: String, tensors: Int? = nil) -> Bool {
        guard let file = try? GGUFFile(path: path), let part = try? Part(file) else { return false }
        return part.index == shard.index && part.count == shard.count && part.digest == digest && (tensors ?? file.tensors.count) == file.tensors.count
    }

    /// Merges `paths` (every part of one plan, once each, in any order) into `output`. Refused, naming the part and
    /// key: a file that is not a part, parts of different plans or inputs, a shard missing or given twice, positions
    /// that do not cover the output once.
    public static func merge(parts paths: [String], output: String, progress: ((Int, Int) -> Void)? = nil) throws -> Report {
        guard !paths.isEmpty else {
            throw FormatError(.missingShard, field: "parts", offset: nil, "no parts given", path: output)
        }
        let parts = try paths.map { try Part(GGUFFile(path: $0)) }
        let first = parts[0]
        try checkSet(parts, output: output)
        if first.file["general.type"]?.stringValue == "imatrix" { return try mergeImportance(parts, output: output) }
        for p in parts where p.positions.count != p.file.tensors.count {
            throw FormatError(.invalidValue, field: "kv '\(PartFile.prefix)positions'", offset: nil,
                              "\(p.positions.count) positions for \(p.file.tensors.count) tensors: not a part of a model", path: p.file.path)
        }
        // The output's tensor table, each tensor from its part.
        let total = parts.reduce(0) { $0 + $1.positions.count }
        var slots = [(part: Int, tensor: Int)?](repeating: nil, count: total)
        for (k, p) in parts.enumerated() {
            for (t, position) in p.positions.enumerated() {
                guard position < total, slots[position] == nil else {
                    throw FormatError(.invalidValue, field: "kv '\(PartFile.prefix)positions'", offset: nil,
                                      "tensor '\(p.file.tensors[t].name)' claims position \(position), "
                                      + (position < total ? "which another tensor holds" : "past the \(total) tensors of all parts"), path: p.file.path)
                }
                slots[position] = (k, t)
            }
        }
        let order = slots.map { $0! }
        let metadata = first.outputMetadata
        let tensors = order.map { parts[$0.part].file.tensors[$0.tensor] }
        let layout = try GGUFWriter.layout(path: output, version: first.file.version, metadata: metadata, tensors: tensors)
        let digest = PartFile.digest(header: layout.header, source: first.source)
        guard digest == first.digest else {
            throw FormatError(.invalidValue, field: "kv '\(PartFile.prefix)plan'", offset: nil,
                              "the parts put together do not give the header their plan names (\(digest.prefix(12)), not \(first.digest.prefix(12)))",
                              path: first.file.path)
        }
        let writer = try GGUFWriter(path: output, version: first.file.version, metadata: metadata, tensors: tensors)
        do {
            for (n, slot) in order.enumerated() {
                let file = parts[slot.part].file
                let t = file.tensors[slot.tensor]
                try writer.write(file.data(for: t))
                file.release(t, bytes: 0..<t.byteCount)
                progress?(n + 1, order.count)
            }
            try writer.finish()
        } catch {
            writer.abort()
            throw error
        }
        return Report(parts: parts.count, tensors: total, bytes: writer.bytesWritten, digest: digest)
    }

    /// One plan, every shard once; thrown otherwise, naming the part.
    public static func checkSet(_ parts: [Part], output: String) throws {
        let first = parts[0]
        var byIndex: [Int: Part] = [:]
        for p in parts {
            guard p.digest == first.digest, p.count == first.count else {
                let what = p.source != first.source ? "another input" : "another plan (options, preset or shard count)"
                throw FormatError(.invalidValue, field: "kv '\(PartFile.prefix)plan'", offset: nil,
                                  "this part was made from \(what) than \(first.file.path) (plan \(p.digest.prefix(12)) of \(p.count) shards, "
                                  + "not \(first.digest.prefix(12)) of \(first.count))", path: p.file.path)
            }
            if let other = byIndex[p.index] {
                throw FormatError(.invalidValue, field: "kv '\(PartFile.prefix)index'", offset: nil,
                                  "shard \(p.index)/\(p.count) is given twice (also \(other.file.path))", path: p.file.path)
            }
            byIndex[p.index] = p
        }
        let missing = (0..<first.count).filter { byIndex[$0] == nil }
        guard missing.isEmpty else {
            throw FormatError(.missingShard, field: "parts", offset: nil,
                              "shard\(missing.count == 1 ? "" : "s") \(missing.prefix(8).map(String.init).joined(separator: ", "))"
                              + "\(missing.count > 8 ? ", ..." : "") of \(first.count) \(missing.count == 1 ? "is" : "are") missing",
                              path: output)
        }
    }

    /// Parts of a run over windows, in shard order, checked to hold every window once (shares are contiguous, so
    /// shard order is window order).
    public static func windowsInOrder(_ parts: [Part], output: String) throws -> [Part] {
        let sorted = parts.sorted { $0.index < $1.index }
        var next = 0
        for p in sorted {
            for w in p.positions {
                guard w == next else {
                    throw FormatError(.invalidValue, field: "kv '\(PartFile.prefix)positions'", offset: nil,
                                      "window \(w) where window \(next) was due: the parts' windows are not one run's in order", path: p.file.path)
                }
                next += 1
            }
        }
        return sorted
    }

    /// Importance matrices of shards of the calibration windows: summed, in shard order, into the file one run over
    /// all the windows writes (up to the order of floating-point sums), without the shard keys.
    static func mergeImportance(_ parts: [Part], output: String) throws -> Report {
        let sorted = try windowsInOrder(parts, output: output)
        var merged = try ImportanceMatrix.sum(sorted.map { try ImportanceMatrix.readGGUF($0.file) })
        merged.isLegacy = false
        try merged.write(to: output)
        return Report(parts: parts.count, tensors: merged.entries.count, bytes: (try? MappedFile(path: output))?.count ?? 0, digest: sorted[0].digest)
    }
}
