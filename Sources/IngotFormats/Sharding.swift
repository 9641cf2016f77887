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

    /// This shard's contiguous share of `count` items (windows): [count·I/N, count·(I+1)/N).
    public func share(of count: Int) -> Range<Int> { count * index / self.count ..< count * (index + 1) / self.count }

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
/// - `ingot.shard.plan` (STRING): the plan's digest (`digest(plan:source:)`), SHA-256 of the header the merged file
///   will have (its metadata and tensor table) and of `ingot.shard.source`;
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

    /// The `general.type` of the parts that are not a model's: an importance matrix's, an evaluation's.
    public static let importanceType = "imatrix", evaluationType = "ingot-eval"

    /// The digest of a plan: what decides the output (a merged file's header, a folder's declaration, the options of a
    /// run over windows), then the input's fingerprint.
    public static func digest(plan: [UInt8], source: String) -> String {
        SHA256.hex(SHA256.digest(plan + Array(("\n" + source).utf8)))
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
        let digest = PartFile.digest(plan: layout.header, source: source)
        let owner = ShardSpec.assign(costs: costs, count: shard.count)
        selected = tensors.indices.filter { owner[$0] == shard.index }
        self.metadata = metadata + PartFile.keys(shard: shard, digest: digest, source: source, positions: selected)
        path = shard.partPath(for: outputPath)
        isComplete = GGUFPartMerger.isComplete(path: path, shard: shard, digest: digest, tensors: selected.count)
    }
}

/// One shard's part of a Hugging Face folder output (safetensors files, their index and the small files): the
/// stored tensors of its share (a weight's scales and other stored parts stay with it), each as raw bytes, and in
/// shard 0's part the small files. The part is a GGUF (`general.type` ingot-folder) whose I8 tensors hold the bytes,
/// named by position (`t<position>`; the small files `f<k>`, since a folder's names can pass GGUF's 63 bytes), with
/// `ingot.folder.tensors` (the declared tensors as JSON: name, dtype, shape, in declaration order),
/// `ingot.folder.shard_bytes` and `ingot.folder.files` (the small files' names); the merge rebuilds the folder with
/// the same writer, so the files are byte for byte one process's. Positions: each tensor's place in the folder's data
/// order, the small files after them.
public final class FolderPartWriter {
    public static let type = "ingot-folder"
    /// The names of the tensors this shard writes, in the folder's data order.
    public let selected: [String]
    public let path: String
    public let isComplete: Bool
    private let writer: GGUFWriter?

    /// `groups`: for each declared tensor, the key of what it is stored with (a weight and its scales share one).
    public init(shard: ShardSpec, source: String, outputPath: String, declared: [SafetensorsTensor], groups: [String],
                maxShardBytes: Int, files: [(String, [UInt8])]) throws {
        let order = HFModelDirectoryWriter.dataOrder(HFModelDirectoryWriter.shards(declared, maxShardBytes: maxShardBytes))
        let bytes = declared.map { $0.dtype.byteCount(elements: $0.elementCount) ?? 0 }
        // Groups in order of first appearance, each costing its tensors' bytes.
        var groupIndex: [String: Int] = [:], groupCosts: [Int] = []
        for (i, g) in groups.enumerated() {
            let k = groupIndex[g] ?? groupCosts.count
            if k == groupCosts.count { groupIndex[g] = k; groupCosts.append(0) }
            groupCosts[k] += bytes[i]
        }
        let owner = ShardSpec.assign(costs: groupCosts, count: shard.count)
        let groupOfName = Dictionary(zip(declared.map(\.name), groups), uniquingKeysWith: { a, _ in a })
        let byteCount = Dictionary(zip(declared.map(\.name), bytes), uniquingKeysWith: { a, _ in a })
        // This shard's tensors, by their place in the folder's data order.
        let mine = order.indices.filter { groupOfName[order[$0]].flatMap { groupIndex[$0] }.map { owner[$0] } == shard.index }
        selected = mine.map { order[$0] }
        let describe = FolderPartWriter.describe(declared: declared, maxShardBytes: maxShardBytes, files: files)
        let digest = PartFile.digest(plan: describe, source: source)
        path = shard.partPath(for: outputPath)
        isComplete = GGUFPartMerger.isComplete(path: path, shard: shard, digest: digest)
        guard !isComplete else { writer = nil; return }
        let ownFiles = shard.index == 0 ? files : []
        // Entries are named by position (GGUF names are short; a folder's may not be): t<position> for a tensor, f<k>
        // for the k-th small file.
        let positions = mine + ownFiles.indices.map { order.count + $0 }
        var infos = try zip(selected, positions).map { try GGUFTensorInfo(name: "t\($1)", dimensions: [byteCount[$0] ?? 0], type: .i8) }
        infos += try ownFiles.enumerated().map { try GGUFTensorInfo(name: "f\($0.offset)", dimensions: [$0.element.1.count], type: .i8) }
        let metadata = [GGUFKeyValue("general.type", .string(GGUFString(FolderPartWriter.type))),
                        GGUFKeyValue("ingot.folder.tensors", .string(GGUFString(String(decoding: FolderPartWriter.tensorsJSON(declared), as: UTF8.self)))),
                        GGUFKeyValue("ingot.folder.shard_bytes", .uint64(UInt64(maxShardBytes))),
                        GGUFKeyValue("ingot.folder.files", .array(.string(files.map { GGUFString($0.0) })))]
            + PartFile.keys(shard: shard, digest: digest, source: source, positions: positions)
        let w = try GGUFWriter(path: path, metadata: metadata, tensors: infos)
        writer = w
        pendingFiles = ownFiles
    }

    private var pendingFiles: [(String, [UInt8])] = []

    /// The next selected tensor's bytes, in `selected`'s order.
    public func write(_ data: UnsafeRawBufferPointer) throws { try writer?.write(data) }

    public func finish() throws {
        guard let writer else { return }
        for (_, contents) in pendingFiles { try contents.withUnsafeBytes { try writer.write($0) } }
        try writer.finish()
    }

    public func abort() { writer?.abort() }

    static func tensorsJSON(_ declared: [SafetensorsTensor]) -> [UInt8] {
        Array(JSONValue.array(declared.map { t in
            .array([.string(t.name), .string(t.dtype.rawValue), .array(t.shape.map { JSONValue($0) })])
        }).serialized().utf8)
    }

    /// What the digest covers: the declared tensors, the file size limit, and the small files' names and contents.
    static func describe(declared: [SafetensorsTensor], maxShardBytes: Int, files: [(String, [UInt8])]) -> [UInt8] {
        var out = tensorsJSON(declared) + Array("\n\(maxShardBytes)".utf8)
        for (name, contents) in files { out += Array("\n\(name) \(contents.count) ".utf8) + SHA256.digest(contents) }
        return out
    }
}

/// A fingerprint of a model's input files, cheap enough for every shard to take: SHA-256 over each file's name and
/// size and 17 samples of 4 KiB spread evenly over it (the first and last included). Two copies of a model agree;
/// two fine-tunes of one architecture, whose headers may be equal, do not.
public enum SourceFingerprint {
    /// The fingerprints of several inputs (a model, its importance matrix, a text), joined with `+`.
    public static func of(paths: [String]) throws -> String {
        try paths.map { try of(path: $0) }.joined(separator: "+")
    }

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
                  p.count == file.tensors.count
                  || [PartFile.importanceType, PartFile.evaluationType].contains(file["general.type"]?.stringValue ?? "") else {
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
        if first.file["general.type"]?.stringValue == PartFile.importanceType { return try mergeImportance(parts, output: output) }
        if first.file["general.type"]?.stringValue == FolderPartWriter.type { return try mergeFolder(parts, output: output, progress: progress) }
        // The output's tensor table, each tensor from its part.
        let total = parts.reduce(0) { $0 + $1.positions.count }
        let order = try place(parts, total: total)
        let metadata = first.outputMetadata
        let tensors = order.map { parts[$0.part].file.tensors[$0.tensor] }
        let layout = try GGUFWriter.layout(path: output, version: first.file.version, metadata: metadata, tensors: tensors)
        let digest = PartFile.digest(plan: layout.header, source: first.source)
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

    /// Where each of the output's `total` entries comes from (part, tensor), every position held by exactly one tensor
    /// of one part; `name`, where given, is the name the tensor at a position must have. Thrown otherwise, naming the
    /// part.
    static func place(_ parts: [Part], total: Int, name: ((Int) -> String)? = nil) throws -> [(part: Int, tensor: Int)] {
        func fail(_ detail: String, _ p: Part) -> FormatError {
            FormatError(.invalidValue, field: "kv '\(PartFile.prefix)positions'", offset: nil, detail, path: p.file.path)
        }
        var slots = [(part: Int, tensor: Int)?](repeating: nil, count: total)
        for (k, p) in parts.enumerated() {
            guard p.positions.count == p.file.tensors.count else {
                throw fail("\(p.positions.count) positions for \(p.file.tensors.count) tensors: not a part of a model or folder", p)
            }
            for (t, position) in p.positions.enumerated() {
                guard position < total, slots[position] == nil else {
                    throw fail("tensor '\(p.file.tensors[t].name)' claims position \(position), "
                               + (position < total ? "which another tensor holds" : "past the output's \(total) entries"), p)
                }
                if let expected = name?(position), p.file.tensors[t].name != expected {
                    throw fail("tensor '\(p.file.tensors[t].name)' does not belong at position \(position)", p)
                }
                slots[position] = (k, t)
            }
        }
        let placed = slots.compactMap { $0 }
        guard placed.count == total else { throw fail("the parts do not hold every entry of the output", parts[0]) }
        return placed
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

    /// Parts of a Hugging Face folder: the folder rebuilt by the writer one process uses, each tensor's bytes from its
    /// part, the small files from shard 0's.
    static func mergeFolder(_ parts: [Part], output: String, progress: ((Int, Int) -> Void)?) throws -> Report {
        let first = parts[0].file
        func fail(_ key: String, _ detail: String, _ file: GGUFFile) -> FormatError {
            FormatError(.invalidValue, field: "kv '\(key)'", offset: nil, detail, path: file.path)
        }
        guard let text = first["ingot.folder.tensors"]?.stringValue,
              let list = try? JSONParser.parse(Array(text.utf8), field: "ingot.folder.tensors").arrayValue,
              let shardBytes = first["ingot.folder.shard_bytes"]?.intValue, shardBytes > 0,
              case .array(.string(let fileNames))? = first["ingot.folder.files"] else {
            throw fail("ingot.folder.tensors", "a folder part needs its declared tensors, shard size and file names", first)
        }
        var declared: [SafetensorsTensor] = []
        for item in list {
            guard let a = item.arrayValue, a.count == 3, let name = a[0].stringValue, let dtype = a[1].stringValue.flatMap(SafetensorsDType.init(rawValue:)),
                  let shape = a[2].arrayValue?.compactMap(\.intValue), shape.count == a[2].arrayValue?.count, shape.allSatisfy({ $0 >= 0 }) else {
                throw fail("ingot.folder.tensors", "an entry is not [name, dtype, shape]", first)
            }
            declared.append(SafetensorsTensor(name: name, dtype: dtype, shape: shape))
        }
        let order = HFModelDirectoryWriter.dataOrder(HFModelDirectoryWriter.shards(declared, maxShardBytes: shardBytes))
        let total = order.count + fileNames.count
        let slots = try place(parts, total: total) { $0 < order.count ? "t\($0)" : "f\($0 - order.count)" }
        func bytes(_ position: Int) -> (UnsafeRawBufferPointer, GGUFFile, GGUFTensorInfo) {
            let s = slots[position]
            let f = parts[s.part].file
            return (f.data(for: f.tensors[s.tensor]), f, f.tensors[s.tensor])
        }
        let files = (order.count..<total).map { (fileNames[$0 - order.count].string, Array(bytes($0).0)) }
        for (name, _) in files where name.isEmpty || name == "." || name == ".." || name.contains("/") || name.contains("\0") {
            throw fail(PartFile.prefix + "positions", "the file name '\(name)' is not a plain name in the folder", first)
        }
        let digest = PartFile.digest(plan: FolderPartWriter.describe(declared: declared, maxShardBytes: shardBytes, files: files),
                                     source: parts[0].source)
        guard digest == parts[0].digest else {
            throw fail(PartFile.prefix + "plan", "the parts put together do not give the folder their plan names", first)
        }
        let writer = try HFModelDirectoryWriter(path: output, tensors: declared, maxShardBytes: shardBytes)
        var written = 0
        do {
            for position in order.indices {
                let (data, file, info) = bytes(position)
                try writer.write(data)
                file.release(info, bytes: 0..<info.byteCount)
                written += data.count
                progress?(position + 1, order.count)
            }
            for (name, contents) in files { try contents.withUnsafeBytes { try writer.addFile(named: name, contents: $0) } }
            try writer.finish()
        } catch {
            writer.abort()
            throw error
        }
        return Report(parts: parts.count, tensors: order.count, bytes: written, digest: digest)
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
