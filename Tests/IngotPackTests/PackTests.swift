import Foundation
@testable import IngotFormats
@testable import IngotPack
import Testing

private let root: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0 ..< 3 { url.deleteLastPathComponent() }
    return url.path
}()

private func temporaryDirectory() throws -> String {
    let dir = NSTemporaryDirectory() + "ingot-pack-tests-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

private func python(_ script: String) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", script]
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    #expect(p.terminationStatus == 0, "python failed (tools/setup-python.sh installs its packages)")
    return String(decoding: data, as: UTF8.self)
}

/// Every file under `a` equals the file at the same relative path under `b`, and both trees hold
/// the same files (or `a` and `b` are equal files).
private func sameTree(_ a: String, _ b: String) throws -> Bool {
    var isDir: ObjCBool = false
    _ = FileManager.default.fileExists(atPath: a, isDirectory: &isDir)
    if !isDir.boolValue { return try Data(contentsOf: URL(fileURLWithPath: a)) == Data(contentsOf: URL(fileURLWithPath: b)) }
    let la = try FileManager.default.subpathsOfDirectory(atPath: a).sorted()
    let lb = try FileManager.default.subpathsOfDirectory(atPath: b).sorted()
    guard la == lb else { return false }
    for p in la {
        var d: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: a + "/" + p, isDirectory: &d)
        if !d.boolValue, try !sameTree(a + "/" + p, b + "/" + p) { return false }
    }
    return true
}

struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Transforms and checksums")
struct TransformTests {
    static let lengths = [0, 1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 63, 127, 255, 1023, 4096 + 3, 20 * 513, 34 * 700 + 5]
    static let transforms: [Transform] = [
        .none, .byteGroups(2), .byteGroups(4), .byteGroups(8), .byteGroups(20), .splitBF16, .splitF32,
        .blockScales(block: 20, start: 0, count: 4), .blockScales(block: 34, start: 0, count: 2),
        .blockScales(block: 210, start: 192, count: 18), .blockScales(block: 110, start: 96, count: 14),
        .blockScales(block: 17, start: 0, count: 1),
    ]

    @Test("inverse(forward(x)) == x over awkward lengths", arguments: transforms)
    func roundTrip(_ t: Transform) throws {
        var rng = SplitMix(state: 42)
        for n in TransformTests.lengths {
            let x = (0 ..< n).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
            var y = [UInt8](repeating: 0, count: n), z = [UInt8](repeating: 0xAA, count: n)
            x.withUnsafeBytes { src in y.withUnsafeMutableBytes { t.forward(src, into: $0) } }
            try y.withUnsafeBytes { src in try z.withUnsafeMutableBytes { try t.inverse(src, into: $0) } }
            #expect(z == x, "\(t) length \(n)")
            #expect(t.streamLengths(n).reduce(0, +) == n)
            #expect(Transform(t.description) == t)
        }
    }

    @Test("split-bf16 puts the exponent byte first")
    func bf16Layout() {
        // 1.0 = 0x3F80 (exponent 127), -2.0 = 0xC000 (sign, exponent 128).
        let x: [UInt8] = [0x80, 0x3F, 0x00, 0xC0]
        var y = [UInt8](repeating: 0, count: 4)
        x.withUnsafeBytes { src in y.withUnsafeMutableBytes { Transform.splitBF16.forward(src, into: $0) } }
        #expect(y == [127, 128, 0x00, 0x80])
    }

    @Test("unknown transform names are refused", arguments: ["bytes1", "bytes99999", "scales20:18:4", "scales", "split", "", "palette16:", "palette16:-1"])
    func badNames(_ name: String) {
        #expect(Transform(name) == nil)
    }

    @Test("XXH64 equals Python's xxhash; CRC-32 equals zlib's")
    func checksums() throws {
        #expect(XXH64.hash(UnsafeRawBufferPointer(start: nil, count: 0)) == 0xEF46_DB37_51D8_E999)
        let lengths = [0, 1, 3, 4, 7, 8, 31, 32, 33, 63, 64, 100, 1000, 4097]
        let text = try python("""
        import xxhash, zlib
        for n in \(lengths):
            b = bytes((i * 131 + 7) % 256 for i in range(n))
            print(xxhash.xxh64(b).intdigest(), xxhash.xxh64(b, seed=12345).intdigest(), zlib.crc32(b))
        """)
        let rows = text.split(separator: "\n").map { $0.split(separator: " ").compactMap { UInt64($0) } }
        #expect(rows.count == lengths.count)
        for (n, row) in zip(lengths, rows) where row.count == 3 {
            let b = (0 ..< n).map { UInt8(($0 * 131 + 7) % 256) }
            b.withUnsafeBytes {
                #expect(XXH64.hash($0) == row[0], "length \(n)")
                #expect(XXH64.hash($0, seed: 12345) == row[1], "length \(n)")
                #expect(UInt64(CRC32.checksum($0)) == row[2], "length \(n)")
            }
        }
    }
}

@Suite("pack and unpack")
struct PackRoundTripTests {
    static let inputs = [
        "fixtures/gguf/gguf-py-all-types.gguf", "fixtures/gguf/gguf-py-align64.gguf",
        "fixtures/safetensors/all-dtypes.safetensors", "fixtures/safetensors/sharded",
        "fixtures/malformed/expected.json",
    ]

    func roundTrip(_ input: String, options: PackOptions = PackOptions()) throws -> PackedArtifact {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try Packer.pack(input: input, output: dir + "/a.ingot", options: options)
        let a = try PackedArtifact(path: dir + "/a.ingot")
        try a.verify()
        try a.unpack(to: dir + "/out", threads: options.threads)
        #expect(try sameTree(input, dir + "/out"), "\(input)")
        return try PackedArtifact(file: MappedFile(copying: [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/a.ingot"))), path: "a.ingot"))
    }

    @Test("fixtures restore bit for bit", arguments: inputs)
    func fixtures(_ input: String) throws {
        _ = try roundTrip(root + "/" + input)
    }

    @Test("randomized files and folders restore bit for bit, with 1 to 3 threads and tiny frames")
    func randomized() throws {
        var rng = SplitMix(state: 7)
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for trial in 0 ..< 6 {
            let folder = dir + "/model\(trial)"
            try FileManager.default.createDirectory(atPath: folder + "/sub/deeper", withIntermediateDirectories: true)
            // A safetensors file of random dtypes and shapes, written by Ingot's writer.
            var tensors: [SafetensorsTensor] = []
            for i in 0 ..< Int.random(in: 1 ... 6, using: &rng) {
                let dtype = [SafetensorsDType.bf16, .f16, .f32, .i8, .u8, .i64, .f64].randomElement(using: &rng)!
                tensors.append(SafetensorsTensor(name: "t\(i)", dtype: dtype, shape: [Int.random(in: 0 ... 40, using: &rng), Int.random(in: 1 ... 33, using: &rng)]))
            }
            let w = try SafetensorsWriter(path: folder + "/model.safetensors", tensors: tensors)
            while let t = w.nextTensor {
                let bytes = (0 ..< t.byteCount).map { _ in UInt8.random(in: 0 ... 255, using: &rng) & (trial % 2 == 0 ? 0xFF : 0x0F) }
                try bytes.withUnsafeBytes { try w.write($0) }
            }
            try w.finish()
            try Data((0 ..< Int.random(in: 0 ... 5000, using: &rng)).map { _ in UInt8.random(in: 0 ... 3, using: &rng) })
                .write(to: URL(fileURLWithPath: folder + "/sub/deeper/blob.bin"))
            try Data().write(to: URL(fileURLWithPath: folder + "/sub/empty.txt"))
            var options = PackOptions()
            options.threads = 1 + trial % 3
            options.chunkBytes = [64, 1000, 1 << 20][trial % 3]
            options.level = [1, 3, 19][trial % 3]
            let a = try roundTrip(folder, options: options)
            #expect(a.index.kind == "folder")
            #expect(a.index.files.map(\.path) == ["model.safetensors", "sub/deeper/blob.bin", "sub/empty.txt"])
            // A single random file too.
            _ = try roundTrip(folder + "/sub/deeper/blob.bin", options: options)
        }
    }

    @Test("SmolLM2 restores bit for bit; every tensor extracts alone")
    func smolLM2() throws {
        let model = root + "/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
        if !FileManager.default.fileExists(atPath: model) { _ = try python("import subprocess; subprocess.run(['bash', '\(root)/tools/fetch-fixtures.sh'], check=True)") }
        var options = PackOptions()
        options.chunkBytes = 4 << 20  // token_embd.weight spans several frames
        let a = try roundTrip(model, options: options)
        #expect(a.index.tensors.count == 272)
        let g = try GGUFFile(path: model)
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (i, t) in g.tensors.enumerated() where i % 25 == 0 || t.name == "token_embd.weight" {
            try a.extract(tensor: t.name, to: dir + "/t.bin")
            let got = try Data(contentsOf: URL(fileURLWithPath: dir + "/t.bin"))
            #expect(got == Data(g.data(for: t)), "\(t.name)")
        }
        #expect(throws: FormatError.self) { try a.extract(tensor: "no.such.tensor", to: dir + "/x.bin") }
        #expect(!FileManager.default.fileExists(atPath: dir + "/x.bin"))
    }
}

@Suite("Damaged artifacts")
struct DamageTests {
    static func artifactBytes(_ input: String) throws -> [UInt8] {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var o = PackOptions()
        o.chunkBytes = 512
        _ = try Packer.pack(input: root + "/" + input, output: dir + "/a.ingot", options: o)
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/a.ingot")))
    }

    /// Opening and verifying must throw a FormatError for every changed byte and every
    /// truncation: a damaged artifact never verifies and never traps.
    @Test("every single-byte flip and every truncation is refused", arguments: ["fixtures/safetensors/sharded", "fixtures/gguf/gguf-py-all-types.gguf"])
    func sweep(_ input: String) throws {
        let good = try DamageTests.artifactBytes(input)
        try PackedArtifact(file: MappedFile(copying: good, path: "good")).verify(threads: 1)
        var namedFrames = 0
        for i in 0 ..< good.count {
            for mask: UInt8 in [0x01, 0xFF] {
                var bad = good
                bad[i] ^= mask
                do {
                    try PackedArtifact(file: MappedFile(copying: bad, path: "bad")).verify(threads: 1)
                    Issue.record("flip of byte \(i) with \(mask) verified")
                } catch let e as FormatError {
                    if e.field.contains("frame") { namedFrames += 1 }
                }
            }
        }
        #expect(namedFrames > 0)
        for n in 0 ..< good.count {
            #expect(throws: FormatError.self) { try PackedArtifact(file: MappedFile(copying: Array(good[..<n]), path: "cut")).verify(threads: 1) }
        }
    }

    @Test("a damaged artifact leaves nothing at the output path")
    func noOutputOnDamage() throws {
        var bad = try DamageTests.artifactBytes("fixtures/safetensors/sharded")
        let a = try PackedArtifact(file: MappedFile(copying: bad, path: "good"))
        let lastFrame = a.index.files.last!.frames.last!
        bad[lastFrame.offset] ^= 0x55
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let damaged = try PackedArtifact(file: MappedFile(copying: bad, path: "bad"))
        #expect { try damaged.unpack(to: dir + "/out") } throws: { ($0 as? FormatError)?.field.contains("frame") == true }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    /// Rewrites the index of `bytes` with `edit` applied and a valid footer hash, so that only
    /// the edited fact is wrong.
    static func withEditedIndex(_ bytes: [UInt8], _ edit: (inout PackIndex) -> Void) throws -> [UInt8] {
        let a = try PackedArtifact(file: MappedFile(copying: bytes, path: "a"))
        var index = a.index
        edit(&index)
        let json = Array(index.json.serialized().utf8)
        let buffer = ReusableBuffer()
        let ctx = ZstdContexts()
        let n = try json.withUnsafeBytes { try Zstd.compress($0, level: 3, into: buffer.get(Zstd.compressBound(json.count)), context: ctx.compression) }
        let stored = Array(UnsafeRawBufferPointer(buffer.get(n)))
        var out = Array(bytes[..<a.indexOffset]) + stored
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        u64(UInt64(a.indexOffset)); u64(UInt64(n)); u64(UInt64(json.count))
        let headerHash = XXH64.hash(UnsafeRawBufferPointer(rebasing: bytes.withUnsafeBytes { $0 }[0 ..< 16]))
        u64(stored.withUnsafeBytes { XXH64.hash($0, seed: headerHash) })
        out += PackFormat.footerMagic
        return out
    }

    @Test("a frame index pointing outside the file names the frame")
    func frameOutside() throws {
        let good = try DamageTests.artifactBytes("fixtures/safetensors/sharded")
        let unchanged = try DamageTests.withEditedIndex(good) { _ in }
        try PackedArtifact(file: MappedFile(copying: unchanged, path: "same")).verify()
        let bad = try DamageTests.withEditedIndex(good) { $0.files[1].frames[0].offset = 1 << 40 }
        #expect { try PackedArtifact(file: MappedFile(copying: bad, path: "bad")) } throws: { e in
            guard let e = e as? FormatError else { return false }
            return e.code == .tensorOutOfFile && e.field.contains("frame 0") && e.field.contains("model-00001")
        }
        let escape = try DamageTests.withEditedIndex(good) { $0.files[0].path = "../escape.json" }
        #expect { try PackedArtifact(file: MappedFile(copying: escape, path: "bad")) } throws: { ($0 as? FormatError)?.code == .invalidValue }
    }
}

@Suite("Palette transform")
struct PaletteTests {
    /// 16-bit values in 32-value blocks: `paletted` of every 4 blocks use at most 16 distinct
    /// values (as dequantized 4-bit weights do), the rest are random.
    static func values(count: Int, paletted: Int, seed: UInt64) -> [UInt8] {
        var rng = SplitMix(state: seed)
        var out: [UInt8] = []
        var i = 0
        while i < count {
            let usePalette = (i / 32) % 4 < paletted
            let grid = (0 ..< Int.random(in: 1 ... 16, using: &rng)).map { _ in UInt16.random(in: 0 ... .max, using: &rng) }
            for _ in 0 ..< min(32, count - i) {
                let v = usePalette ? grid.randomElement(using: &rng)! : UInt16.random(in: 0 ... .max, using: &rng)
                out.append(UInt8(v & 0xFF)); out.append(UInt8(v >> 8))
            }
            i += 32
        }
        return out
    }

    @Test("forward then inverse restores the bytes, tails and mixed blocks included", arguments: [0, 1, 31, 32, 33, 64 * 16, 64 * 37 + 11, 4096 * 3 + 7])
    func roundTrip(_ elements: Int) throws {
        for paletted in [2, 4] {
            var x = PaletteTests.values(count: elements, paletted: paletted, seed: UInt64(elements))
            if x.count % 2 == 0 && !x.isEmpty && elements % 7 == 0 { x.append(0x5A) }  // an odd tail byte
            let n = x.count
            let t = ReusableBuffer(), lows = ReusableBuffer(), idx = ReusableBuffer()
            let p = x.withUnsafeBytes { Palette16.forward($0, into: t.get(n + n / 64), lows: lows.get(n), indices: idx.get(n / 4 + 16), tables: Palette16.Tables()) }
            guard let p else {
                #expect(n / 64 < 2 || paletted < 2, "palette refused for \(n) bytes")
                continue
            }
            let transform = Transform.palette16(blocks: p)
            #expect(transform.accepts(length: n))
            var y = [UInt8](repeating: 0, count: n)
            try y.withUnsafeMutableBytes { try transform.inverse(UnsafeRawBufferPointer(t.get(transform.transformedLength(n))), into: $0) }
            #expect(y == x, "\(n) bytes, \(p) palette blocks")
        }
    }

    @Test("flags that contradict the declared palette count are an error, not a misread")
    func badFlags() throws {
        let x = PaletteTests.values(count: 32 * 64, paletted: 4, seed: 3)
        let n = x.count
        let t = ReusableBuffer(), lows = ReusableBuffer(), idx = ReusableBuffer()
        let p = try #require(x.withUnsafeBytes { Palette16.forward($0, into: t.get(n + n / 64), lows: lows.get(n), indices: idx.get(n / 4 + 16), tables: Palette16.Tables()) })
        let transform = Transform.palette16(blocks: p)
        var bytes = Array(UnsafeRawBufferPointer(t.get(transform.transformedLength(n))))
        var y = [UInt8](repeating: 0, count: n)
        for flag: UInt8 in [1, 2, 0xFF] {
            bytes[5] = flag
            #expect(throws: FormatError.self) {
                try bytes.withUnsafeBytes { src in try y.withUnsafeMutableBytes { try transform.inverse(src, into: $0) } }
            }
        }
        #expect(!Transform.palette16(blocks: n / 64 + 1).accepts(length: n))
    }

    @Test("dequantized-like F16 weights are packed with a palette and restored bit for bit")
    func packs() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = PaletteTests.values(count: 64 * 1024, paletted: 4, seed: 9)
        let w = try SafetensorsWriter(path: dir + "/m.safetensors", tensors: [SafetensorsTensor(name: "w", dtype: .f16, shape: [64, 1024])])
        try data.withUnsafeBytes { try w.write($0) }
        try w.finish()
        _ = try Packer.pack(input: dir + "/m.safetensors", output: dir + "/m.ingot")
        let a = try PackedArtifact(path: dir + "/m.ingot")
        #expect(a.index.files[0].frames.contains { if case .palette16 = $0.transform { return true }; return false })
        try a.unpack(to: dir + "/out.safetensors")
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/out.safetensors")) == Data(contentsOf: URL(fileURLWithPath: dir + "/m.safetensors")))
    }
}
