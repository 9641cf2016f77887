import Foundation
@testable import IngotFormats
import Testing

/// Ingot's view of a safetensors file or folder in the shape tools/reference/safetensors_dump.py prints.
func canonicalDump(_ model: ModelFile) -> JSONValue {
    var files: [SafetensorsFile] = []
    switch model.storage {
    case .safetensors(let s): files = [s]
    case .huggingFaceFolder(let d): files = d.shards
    case .gguf: break
    }
    var tensors: [(String, JSONValue)] = []
    var metadata = JSONObject()
    for f in files {
        let label = String(f.path.split(separator: "/").last ?? "")
        metadata[label] = .object(JSONObject(f.metadata.map { ($0.key, JSONValue.string($0.value)) }))
        for t in f.tensors {
            tensors.append((t.name, .object(JSONObject([
                ("name", .string(t.name)), ("dtype", .string(t.dtype.rawValue)),
                ("shape", .array(t.shape.map { JSONValue($0) })), ("file", .string(label)),
                ("bytes", JSONValue(t.byteCount)), ("crc32", JSONValue(Int(CRC32.checksum(f.data(for: t))))),
            ]))))
        }
    }
    tensors.sort { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
    // The reference lists shards in name order.
    metadata.members.sort { $0.key < $1.key }
    return .object(JSONObject([("tensors", .array(tensors.map(\.1))), ("metadata", .object(metadata))]))
}

@Suite("safetensors against the safetensors package")
struct SafetensorsTests {
    static let single = Repo.path("fixtures/safetensors/all-dtypes.safetensors")
    static let sharded = Repo.path("fixtures/safetensors/sharded")

    @Test("a file in every dtype the package writes reads identically")
    func readsAllDtypes() throws {
        let model = try ModelFile.open(SafetensorsTests.single)
        let ours = canonicalDump(model)
        let theirs = try referenceDump("safetensors_dump.py", SafetensorsTests.single)
        #expect(firstDifference(ours, theirs) == nil, "\(firstDifference(ours, theirs) ?? "")")
        #expect(model.tensors.count == 21)
        let f = try SafetensorsFile(path: SafetensorsTests.single)
        #expect(f.tensor(named: "w.float4_e2m1fn_x2")?.shape == [3, 8])
        #expect(f.tensor(named: "w.float4_e2m1fn_x2")?.dtype == .f4)
        #expect(f.metadata.map(\.key) == ["format"])
    }

    @Test("a sharded Hugging Face folder reads identically")
    func readsShardedFolder() throws {
        let model = try ModelFile.open(SafetensorsTests.sharded)
        #expect(model.format == .huggingFaceFolder)
        let ours = canonicalDump(model)
        let theirs = try referenceDump("safetensors_dump.py", SafetensorsTests.sharded)
        #expect(firstDifference(ours, theirs) == nil, "\(firstDifference(ours, theirs) ?? "")")
        guard case .huggingFaceFolder(let d) = model.storage else { return }
        #expect(d.shards.count == 2)
        #expect(d.config?["model_type"] == "llama")
        #expect(d.files.contains("tokenizer_config.json"))
    }

    /// Copies every tensor of `source` through Ingot's writer, data streamed from the memory map.
    func rewrite(_ source: SafetensorsFile, to path: String) throws {
        let w = try SafetensorsWriter(path: path, tensors: source.tensors, metadata: source.metadata.map { ($0.key, $0.value) })
        while let next = w.nextTensor {
            try w.write(source.data(for: try #require(source.tensor(named: next.name))))
        }
        try w.finish()
    }

    @Test("Ingot's writer gives the same bytes as the package's for the same tensors")
    func writerMatchesReferenceBytes() throws {
        let dir = try Repo.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try rewrite(try SafetensorsFile(path: SafetensorsTests.single), to: dir + "/copy.safetensors")
        #expect(try filesEqual(dir + "/copy.safetensors", SafetensorsTests.single))
        let theirs = try referenceDump("safetensors_dump.py", dir + "/copy.safetensors")
        let ours = canonicalDump(try ModelFile.open(SafetensorsTests.single))
        // Same tensors; only the file label differs.
        #expect(theirs["tensors"]?.arrayValue?.count == ours["tensors"]?.arrayValue?.count)
    }

    @Test("a sharded folder written by Ingot reads identically in the package")
    func shardedWriterReadsInReference() throws {
        let dir = try Repo.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = try ModelFile.open(SafetensorsTests.sharded)
        guard case .huggingFaceFolder(let d) = source.storage else { Issue.record("not a folder"); return }
        let all = d.shards.flatMap { s in s.tensors.map { (s, $0) } }
        // Shards of at most 600 bytes: three shards from this model's 1,248 bytes.
        let out = dir + "/model"
        let w = try HFModelDirectoryWriter(path: out, tensors: all.map(\.1), maxShardBytes: 600)
        for name in w.dataOrder {
            let (file, t) = try #require(all.first { $0.1.name == name })
            try w.write(file.data(for: t))
        }
        let config = try MappedFile(path: SafetensorsTests.sharded + "/config.json")
        try w.addFile(named: "config.json", contents: config.bytes)
        try w.finish()
        #expect(w.shards.count >= 2)
        let theirs = try referenceDump("safetensors_dump.py", out)
        let ours = canonicalDump(try ModelFile.open(out))
        #expect(firstDifference(ours, theirs) == nil, "\(firstDifference(ours, theirs) ?? "")")
        // Tensor bytes equal the source's, whichever shard they moved to.
        let before = Dictionary(uniqueKeysWithValues: (canonicalDump(source)["tensors"]?.arrayValue ?? []).map { ($0["name"]?.stringValue ?? "", $0["crc32"]) })
        for t in ours["tensors"]?.arrayValue ?? [] {
            #expect(before[t["name"]?.stringValue ?? ""] == t["crc32"])
        }
        let index = try readJSON(out + "/" + HFModelDirectory.indexName)
        #expect(index["metadata"]?["total_size"]?.intValue == all.reduce(0) { $0 + $1.1.byteCount })
        // The bytes counted before writing are the files' sizes, and their headers each file's 8 + header length.
        let counted = try HFModelDirectoryWriter.safetensorsBytes(all.map(\.1), maxShardBytes: 600)
        var files = 0, headers = 0
        for shard in w.shards {
            let path = out + "/" + shard.name
            files += try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
            headers += try SafetensorsFile(path: path).dataOffset
        }
        #expect(counted.files == files && counted.headers == headers, "\(counted) against \(files), \(headers)")
    }

    @Test("a folder writer that is not finished leaves nothing at the output path")
    func folderAbortLeavesNothing() throws {
        let dir = try Repo.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let w = try HFModelDirectoryWriter(path: dir + "/model", tensors: [SafetensorsTensor(name: "a", dtype: .f32, shape: [2])])
            #expect(throws: FormatError.self) { try w.finish() }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    @Test("an index naming a missing shard or a tensor the shard lacks is refused")
    func badIndex() throws {
        let dir = try Repo.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for f in try FileManager.default.contentsOfDirectory(atPath: SafetensorsTests.sharded) {
            try FileManager.default.copyItem(atPath: SafetensorsTests.sharded + "/" + f, toPath: dir + "/" + f)
        }
        let indexPath = dir + "/" + HFModelDirectory.indexName
        let original = try String(contentsOfFile: indexPath, encoding: .utf8)
        try original.replacingOccurrences(of: "\"model.norm.weight\": \"model-00002", with: "\"model.norm.weight\": \"model-00001")
            .write(toFile: indexPath, atomically: true, encoding: .utf8)
        #expect { try HFModelDirectory(path: dir) } throws: { ($0 as? FormatError)?.code == .tensorNotFound }
        try original.replacingOccurrences(of: "model-00002-of-00002", with: "model-00003-of-00003")
            .write(toFile: indexPath, atomically: true, encoding: .utf8)
        #expect { try HFModelDirectory(path: dir) } throws: { ($0 as? FormatError)?.code == .missingShard }
    }
}

@Suite("JSON")
struct JSONTests {
    @Test("parses and serializes the shapes safetensors headers use")
    func roundTrip() throws {
        let text = #"{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]},"s":"a\"b\\c\n\u00e9\ud83d\ude00","n":-1.5e3,"big":18446744073709551615,"t":[true,false,null]}"#
        let v = try JSONParser.parse(text)
        #expect(v["s"] == "a\"b\\c\né😀")
        #expect(v["n"]?.doubleValue == -1500)
        #expect(v["big"] == .uint(UInt64.max))
        #expect(v["w"]?["shape"] == [1, 2, 3])
        #expect(try JSONParser.parse(v.serialized()) == v)
        #expect(try JSONParser.parse(v.serialized(pretty: true)) == v)
        #expect(JSONValue.array([.double(-0.0), .double(2), .double(0.1), .double(1e300)]).serialized() == "[-0.0,2.0,0.1,1e+300]")
    }

    @Test("reports the byte offset of what is wrong", arguments: [
        ("{\"a\":1,}", 7), ("[1 2]", 3), ("{\"a\":1}x", 7), ("\"\\ud800\"", 7), ("01", 0), ("{\"a\":1,\"a\":2}", 7),
    ])
    func errors(_ input: String, _ offset: Int) {
        #expect { try JSONParser.parse(input) } throws: { ($0 as? FormatError)?.offset == offset }
    }

    @Test("deep nesting is refused, not a stack overflow")
    func depth() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect { try JSONParser.parse(deep) } throws: { ($0 as? FormatError)?.code == .limitExceeded }
    }
}
