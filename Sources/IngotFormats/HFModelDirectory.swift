#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Hugging Face model folder: one `model.safetensors`, or shards listed in
/// `model.safetensors.index.json` (`{"metadata": {"total_size": N}, "weight_map": {tensor: shard}}`),
/// with `config.json`, tokenizer files and the rest alongside.
public final class HFModelDirectory: @unchecked Sendable {
    public static let indexName = "model.safetensors.index.json"
    public static let singleName = "model.safetensors"

    /// PyTorch's pickle checkpoints (`pytorch_model.bin`, `*.pt`, `*.pth`, `*.ckpt`), which Ingot never opens.
    public static func isPickleCheckpoint(_ name: String) -> Bool {
        [".bin", ".pt", ".pth", ".ckpt"].contains { name.hasSuffix($0) } && !name.hasPrefix("tokenizer")
    }

    public let path: String
    /// Shards sorted by file name: those the index names, or every `.safetensors` file in the
    /// folder when there is no index.
    public let shards: [SafetensorsFile]
    /// Parsed `config.json`, when present.
    public let config: JSONValue?
    /// The index, when present.
    public let index: JSONValue?
    /// Every file in the folder (names relative to it), sorted.
    public let files: [String]

    public init(path: String) throws {
        self.path = path
        files = try listFiles(path)
        let indexPath = path + "/" + HFModelDirectory.indexName
        var shardNames: [String]
        var weightMap: [(key: String, value: JSONValue)] = []
        var weightMapOffsets: [Int] = []
        if files.contains(HFModelDirectory.indexName) {
            let json = try readJSON(indexPath)
            index = json
            guard let map = json["weight_map"]?.objectValue else {
                throw FormatError(.missingField, field: "weight_map", offset: nil, "the index has no weight_map object", path: indexPath)
            }
            weightMap = map.members
            weightMapOffsets = map.keyOffsets
            var seen = Set<String>()
            shardNames = []
            for (i, m) in map.members.enumerated() {
                guard let shard = m.value.stringValue, !shard.contains("/"), !shard.contains("\\"), !shard.isEmpty,
                      shard != ".", shard != ".." else {
                    throw FormatError(.invalidValue, field: "weight_map['\(m.key)']", offset: map.offset(ofMember: i),
                                      "must name a shard file in the folder (no '/', '\\' or '..'), not \(m.value.serialized())",
                                      path: indexPath)
                }
                if seen.insert(shard).inserted { shardNames.append(shard) }
            }
            shardNames.sort()
        } else {
            index = nil
            shardNames = files.filter { $0.hasSuffix(".safetensors") }
            if shardNames.isEmpty, let pickle = files.first(where: HFModelDirectory.isPickleCheckpoint) {
                throw FormatError(.pickleCheckpoint, field: "file '\(pickle)'", offset: nil,
                                  "PyTorch pickle checkpoints are refused: unpickling runs code from the file. Ask for the "
                                  + "safetensors files (most Hugging Face repositories have them), or convert once in a "
                                  + "sandbox with transformers' save_pretrained(..., safe_serialization=True)",
                                  path: path + "/" + pickle)
            }
        }
        var opened: [SafetensorsFile] = []
        var owner: [String: String] = [:]
        for name in shardNames {
            guard files.contains(name) else {
                throw FormatError(.missingShard, field: "weight_map", offset: nil, "shard '\(name)' is listed but not in the folder", path: indexPath)
            }
            let f = try SafetensorsFile(path: path + "/" + name)
            for t in f.tensors {
                if let other = owner[t.name] {
                    throw FormatError(.duplicateTensor, field: "tensor '\(t.name)'", offset: nil,
                                      "appears in both '\(other)' and '\(name)'", path: path + "/" + name)
                }
                owner[t.name] = name
            }
            opened.append(f)
        }
        if index != nil {
            var listed = Set<String>()
            for (i, m) in weightMap.enumerated() {
                listed.insert(m.key)
                guard owner[m.key] == m.value.stringValue else {
                    throw FormatError(.tensorNotFound, field: "weight_map['\(m.key)']", offset: i < weightMapOffsets.count ? weightMapOffsets[i] : nil,
                                      "the index puts it in '\(m.value.stringValue ?? "")' but that shard does not hold it", path: indexPath)
                }
            }
            if let stray = owner.keys.sorted().first(where: { !listed.contains($0) }) {
                throw FormatError(.incompleteCoverage, field: "tensor '\(stray)'", offset: nil,
                                  "is in shard '\(owner[stray] ?? "")' but not in the index's weight_map", path: indexPath)
            }
        }
        shards = opened
        config = files.contains("config.json") ? try readJSON(path + "/config.json") : nil
    }
}

/// The regular files directly in `dir` (symbolic links followed), sorted.
func listFiles(_ dir: String) throws -> [String] {
    try directoryEntries(dir).filter { name in
        var st = stat()
        return stat(dir + "/" + name, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }
}

/// The names in a folder, without `.` and `..`, sorted bytewise.
public func directoryEntries(_ dir: String) throws -> [String] {
    guard let d = opendir(dir) else {
        throw FormatError(.cannotOpen, field: "folder", offset: nil, "cannot open folder: \(errnoText())", path: dir)
    }
    defer { closedir(d) }
    var names: [String] = []
    while let e = readdir(d) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
}

/// Reads and parses a whole JSON file, with errors naming the file and byte offset.
public func readJSON(_ path: String) throws -> JSONValue {
    let f = try MappedFile(path: path)
    do {
        return try JSONParser.parse(f.bytes, base: 0, field: "json")
    } catch let e as FormatError {
        throw e.inFile(path)
    }
}

/// Writes a Hugging Face folder: safetensors shards of at most `maxShardBytes` each (a tensor
/// larger than that gets a shard of its own), `model.safetensors.index.json` when there is more
/// than one shard (keys sorted, two-space indent, as `transformers` writes it), and extra files
/// copied alongside. Everything is written into a temporary sibling folder that is renamed to
/// `path` by `finish()`, so a failed run leaves nothing at `path`.
public final class HFModelDirectoryWriter {
    public let path: String
    /// Shard file names and the tensors of each, in the order their data must be written.
    public let shards: [(name: String, tensors: [SafetensorsTensor])]
    private let temp: TemporaryFolder
    private var tempDir: String { temp.path }
    private let metadata: [(String, String)]
    private var shardIndex = 0
    private var current: SafetensorsWriter?
    private var finished = false

    public init(path: String, tensors: [SafetensorsTensor], maxShardBytes: Int = 5_000_000_000,
                metadata: [(String, String)] = [("format", "pt")]) throws {
        self.path = path
        self.metadata = metadata
        shards = HFModelDirectoryWriter.shards(tensors, maxShardBytes: maxShardBytes)
        temp = try TemporaryFolder(beside: path)
    }

    /// The safetensors files a folder of these tensors is cut into: in declaration order, a new file whenever the
    /// next tensor would take the current one past `maxShardBytes`.
    public static func shards(_ tensors: [SafetensorsTensor], maxShardBytes: Int) -> [(name: String, tensors: [SafetensorsTensor])] {
        var groups: [[SafetensorsTensor]] = []
        var size = 0
        for t in tensors {
            let bytes = t.dtype.byteCount(elements: Checked.product(t.shape) ?? 0) ?? 0
            if groups.isEmpty || (size + bytes > maxShardBytes && size > 0) {
                groups.append([])
                size = 0
            }
            groups[groups.count - 1].append(t)
            size += bytes
        }
        let n = groups.count
        func pad5(_ i: Int) -> String { let s = String(i); return String(repeating: "0", count: max(0, 5 - s.count)) + s }
        return groups.enumerated().map { i, g in
            (name: n == 1 ? HFModelDirectory.singleName : "model-\(pad5(i + 1))-of-\(pad5(n)).safetensors", tensors: g)
        }
    }

    /// The bytes of the safetensors files a folder of these tensors is written as (headers included), and of their
    /// headers alone (each with its 8-byte length).
    public static func safetensorsBytes(_ tensors: [SafetensorsTensor], maxShardBytes: Int = 5_000_000_000,
                                        metadata: [(String, String)] = [("format", "pt")]) throws -> (files: Int, headers: Int) {
        var files = 0, headers = 0
        for shard in shards(tensors, maxShardBytes: maxShardBytes) {
            let (placed, header) = try SafetensorsWriter.layout(shard.tensors, metadata: metadata)
            headers += 8 + header.count
            files += 8 + header.count + (placed.last?.end ?? 0)
        }
        return (files, headers)
    }

    deinit { if !finished { abort() } }

    /// The names of the tensors in the order `write` expects their data.
    public var dataOrder: [String] { HFModelDirectoryWriter.dataOrder(shards) }

    public static func dataOrder(_ shards: [(name: String, tensors: [SafetensorsTensor])]) -> [String] {
        // Each shard's writer sorts its own tensors; mirror that order.
        shards.flatMap { shard in
            shard.tensors.sorted { a, b in
                a.dtype.rank != b.dtype.rank ? a.dtype.rank > b.dtype.rank : a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
            }.map(\.name)
        }
    }

    public func write(_ data: UnsafeRawBufferPointer) throws {
        while true {
            let writer: SafetensorsWriter
            if let w = current {
                writer = w
            } else {
                guard shardIndex < shards.count else {
                    throw FormatError(.writerMisuse, field: "data", offset: nil, "more tensor data than tensors declared", path: path)
                }
                writer = try SafetensorsWriter(path: tempDir + "/" + shards[shardIndex].name,
                                               tensors: shards[shardIndex].tensors, metadata: metadata)
                current = writer
            }
            if writer.nextTensor == nil {
                try writer.finish()
                current = nil
                shardIndex += 1
                continue
            }
            try writer.write(data)
            return
        }
    }

    /// Copies a file (config.json, tokenizer files) into the folder.
    public func addFile(named name: String, contents: UnsafeRawBufferPointer) throws {
        let out = try OutputFile(path: tempDir + "/" + name)
        try out.write(contents)
        try out.commit()
    }

    public func finish() throws {
        if let w = current, w.nextTensor == nil {
            try w.finish()
            current = nil
            shardIndex += 1
        }
        // Shards with no tensors left to write still need their files (a shard of empty tensors).
        while shardIndex < shards.count, current == nil {
            let w = try SafetensorsWriter(path: tempDir + "/" + shards[shardIndex].name, tensors: shards[shardIndex].tensors, metadata: metadata)
            guard w.nextTensor == nil else {
                w.abort()
                throw FormatError(.writerMisuse, field: "data", offset: nil, "not every declared tensor was written", path: path)
            }
            try w.finish()
            shardIndex += 1
        }
        guard current == nil else {
            throw FormatError(.writerMisuse, field: "data", offset: nil, "not every declared tensor was written", path: path)
        }
        if shards.count > 1 {
            var total = 0
            var map: [(String, JSONValue)] = []
            for s in shards {
                for t in s.tensors {
                    total += t.dtype.byteCount(elements: Checked.product(t.shape) ?? 0) ?? 0
                    map.append((t.name, .string(s.name)))
                }
            }
            map.sort { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
            let index = JSONValue.object(JSONObject([
                ("metadata", .object(JSONObject([("total_size", JSONValue(total))]))),
                ("weight_map", .object(JSONObject(map))),
            ]))
            let text = Array((index.serialized(pretty: true) + "\n").utf8)
            try text.withUnsafeBytes { try addFile(named: HFModelDirectory.indexName, contents: $0) }
        }
        try temp.rename(to: path)
        finished = true
    }

    public func abort() {
        guard !finished else { return }
        current?.abort()
        current = nil
        temp.discard()
        finished = true
    }
}
