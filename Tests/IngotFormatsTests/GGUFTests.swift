import Foundation
@testable import IngotFormats
import Testing

@Suite("GGUF against gguf-py")
struct GGUFReferenceTests {
    static let goldenFiles = ["gguf-py-all-types.gguf", "gguf-py-align64.gguf", "gguf-py-v2.gguf"]

    @Test("gguf-py's files read identically", arguments: goldenFiles)
    func readsGoldenFile(_ name: String) throws {
        let path = Repo.path("fixtures/gguf/\(name)")
        let ours = canonicalDump(try GGUFFile(path: path))
        let theirs = try referenceDump("gguf_dump.py", path)
        #expect(firstDifference(ours, theirs) == nil, "\(firstDifference(ours, theirs) ?? "")")
    }

    @Test("every value type and a nested array are present in the golden file")
    func goldenFileCoverage() throws {
        let g = try GGUFFile(path: Repo.path("fixtures/gguf/gguf-py-all-types.gguf"))
        var types = Set(g.metadata.map { $0.value.type })
        for kv in g.metadata { if case .array(let a) = kv.value { types.insert(a.elementType) } }
        #expect(types == Set(GGUFValueType.allCases))
        #expect(g["test.array.nested"] == .array(.array([.int64([1, 2, 3]), .int64([4, 5])]))
            || g["test.array.nested"] == .array(.array([.int32([1, 2, 3]), .int32([4, 5])])))
        #expect(Set(g.tensors.map(\.type)).count >= 12)
        #expect(g["test.float64"] == .float64(-2.718281828459045))
        #expect(g["test.string"]?.stringValue == "héllo, wörld ✓ \n\t\"quoted\"")
    }

    @Test("copying a gguf-py file through GGUFWriter gives the same bytes", arguments: goldenFiles)
    func copyIsByteIdentical(_ name: String) throws {
        let dir = try Repo.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/copy.gguf"
        try GGUFFile(path: Repo.path("fixtures/gguf/\(name)")).copy(to: out)
        #expect(try filesEqual(out, Repo.path("fixtures/gguf/\(name)")))
    }

    @Test("a file Ingot writes from scratch reads identically in gguf-py")
    func ingotWrittenFileReadsInGGUFPy() throws {
        let dir = try Repo.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/ingot.gguf"
        let metadata: [GGUFKeyValue] = [
            GGUFKeyValue("general.architecture", .string("llama")),
            GGUFKeyValue("general.alignment", .uint32(64)),
            GGUFKeyValue("a.u8", .uint8(7)), GGUFKeyValue("a.i8", .int8(-7)),
            GGUFKeyValue("a.u16", .uint16(65535)), GGUFKeyValue("a.i16", .int16(-32768)),
            GGUFKeyValue("a.u32", .uint32(123456)), GGUFKeyValue("a.i32", .int32(-123456)),
            GGUFKeyValue("a.f32", .float32(0.1)), GGUFKeyValue("a.bool", .bool(true)),
            GGUFKeyValue("a.u64", .uint64(UInt64.max)), GGUFKeyValue("a.i64", .int64(Int64.min)),
            GGUFKeyValue("a.f64", .float64(1e-300)),
            GGUFKeyValue("a.strings", .array(.string(["Ġa", "", "✓"]))),
            GGUFKeyValue("a.floats", .array(.float32([1.5, -0.0, .infinity]))),
            GGUFKeyValue("a.nested", .array(.array([.uint8([1, 2]), .string(["x"])]))),
        ]
        let tensors = [
            try GGUFTensorInfo(name: "w.f32", dimensions: [5, 3], type: .f32),
            try GGUFTensorInfo(name: "w.q4_k", dimensions: [256, 2], type: .q4_K),
            try GGUFTensorInfo(name: "w.q8_0", dimensions: [64], type: .q8_0),
        ]
        let writer = try GGUFWriter(path: path, metadata: metadata, tensors: tensors)
        for t in writer.tensors {
            let bytes = (0 ..< t.byteCount).map { UInt8(truncatingIfNeeded: $0 * 31 + t.name.count) }
            try bytes.withUnsafeBytes { try writer.write($0) }
        }
        try writer.finish()
        let ours = canonicalDump(try GGUFFile(path: path))
        let theirs = try referenceDump("gguf_dump.py", path)
        #expect(firstDifference(ours, theirs) == nil, "\(firstDifference(ours, theirs) ?? "")")
        #expect(try GGUFFile(path: path).alignment == 64)
    }
}

@Suite("GGUF: the real SmolLM2-135M-Instruct")
struct SmolLM2Tests {
    @Test("272 tensors and every metadata value equal gguf-py's reading")
    func matchesGGUFPy() throws {
        let g = try GGUFFile(path: Repo.smolLM2)
        #expect(g.tensors.count == 272)
        let ours = canonicalDump(g)
        let theirs = try referenceDump("gguf_dump.py", Repo.smolLM2)
        #expect(firstDifference(ours, theirs) == nil, "\(firstDifference(ours, theirs) ?? "")")
    }

    @Test("read then write through GGUFWriter gives a byte-identical file")
    func copyIsByteIdentical() throws {
        let dir = try Repo.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try GGUFFile(path: Repo.smolLM2).copy(to: dir + "/smol.gguf")
        #expect(try filesEqual(dir + "/smol.gguf", Repo.smolLM2))
    }
}

@Suite("GGUF writer rules")
struct GGUFWriterTests {
    @Test("a writer that is not finished leaves nothing at the output path")
    func abortLeavesNothing() throws {
        let dir = try Repo.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/partial.gguf"
        do {
            let w = try GGUFWriter(path: path, metadata: [], tensors: [try GGUFTensorInfo(name: "x", dimensions: [4], type: .f32)])
            #expect(throws: FormatError.self) { try [UInt8](repeating: 0, count: 3).withUnsafeBytes { try w.write($0) } }
            #expect(throws: FormatError.self) { try w.finish() }
        }
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    @Test("an output path in a missing folder is a clear error")
    func missingFolder() throws {
        #expect(throws: FormatError.self) {
            try GGUFWriter(path: "/nonexistent-ingot-dir/x.gguf", metadata: [], tensors: [])
        }
    }

    @Test("declarations a GGUF cannot hold are refused")
    func refusesBadDeclarations() throws {
        #expect(throws: FormatError.self) { try GGUFTensorInfo(name: "q", dimensions: [33], type: .q8_0) }
        #expect(throws: FormatError.self) { try GGUFTensorInfo(name: "big", dimensions: [1 << 40, 1 << 40], type: .f32) }
        #expect(throws: FormatError.self) { try GGUFTensorInfo(name: "5d", dimensions: [1, 1, 1, 1, 1], type: .f32) }
        let t = try GGUFTensorInfo(name: "x", dimensions: [4], type: .f32)
        #expect(throws: FormatError.self) { try GGUFWriter(path: "/tmp/never.gguf", metadata: [], tensors: [t, t]) }
        #expect(throws: FormatError.self) {
            try GGUFWriter(path: "/tmp/never.gguf", metadata: [GGUFKeyValue("general.alignment", .uint32(48))], tensors: [])
        }
    }

    @Test("type table matches gguf-py's GGML_QUANT_SIZES")
    func typeTable() throws {
        let script = """
        import json, gguf
        print(json.dumps({t.name: [int(t.value), b, s] for t, (b, s) in gguf.GGML_QUANT_SIZES.items()}))
        """
        let data = try run(["python3", "-c", script])
        guard case .object(let o) = try JSONParser.parse([UInt8](data)) else { Issue.record("not an object"); return }
        #expect(o.members.count == GGMLType.all.count)
        for m in o.members {
            let t = GGMLType.named(m.key)
            #expect(t != nil, "missing \(m.key)")
            #expect(m.value == .array([JSONValue(Int(t?.rawValue ?? 0)), JSONValue(t?.blockSize ?? 0), JSONValue(t?.bytesPerBlock ?? 0)]),
                    "\(m.key)")
        }
    }
}
