import Foundation
@testable import IngotFormats
import Testing

/// One committed fixture per class of damage (fixtures/make_fixtures.py builds them byte by
/// byte), each with the error code, field and byte offset it must produce.
@Suite("Malformed files")
struct MalformedTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var file: String
        var code: String
        var field: String
        var offset: Int
        var testDescription: String { file }
    }

    static let cases: [Case] = {
        guard let json = try? readJSON(Repo.path("fixtures/malformed/expected.json")), case .object(let o) = json else { return [] }
        return o.members.map { m in
            Case(file: m.key, code: m.value["code"]?.stringValue ?? "", field: m.value["field"]?.stringValue ?? "",
                 offset: m.value["offset"]?.intValue ?? -1)
        }
    }()

    @Test("there is a fixture for every class of damage the issue lists")
    func coverage() {
        #expect(MalformedTests.cases.count >= 45)
        let codes = Set(MalformedTests.cases.map(\.code))
        for required in ["truncated", "bad-magic", "count-too-large", "length-beyond-file", "unknown-value-type",
                         "unknown-tensor-type", "duplicate-key", "duplicate-tensor", "size-overflow", "misaligned-offset",
                         "overlapping-tensors", "tensor-out-of-file", "bad-alignment", "header-too-large", "invalid-json",
                         "offset-gap", "unsupported-version", "big-endian"] {
            #expect(codes.contains(required), "no fixture for \(required)")
        }
    }

    @Test("gives its specific typed error with field and offset", arguments: MalformedTests.cases)
    func specificError(_ c: Case) throws {
        let path = Repo.path("fixtures/malformed/\(c.file)")
        do {
            _ = try ModelFile.open(path)
            Issue.record("\(c.file) opened without error")
        } catch let e as FormatError {
            #expect(e.code.rawValue == c.code, "\(e)")
            #expect(e.field.contains(c.field), "\(e)")
            #expect(e.offset == c.offset, "\(e)")
            #expect(e.path == path)
        }
    }

    /// Every truncation of a valid file and every single-byte change of its header either opens
    /// or throws a FormatError: nothing traps, whatever the bytes.
    @Test("no prefix or header byte flip of a valid file traps")
    func sweep() throws {
        let dir = try Repo.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for source in ["fixtures/gguf/gguf-py-all-types.gguf", "fixtures/safetensors/all-dtypes.safetensors"] {
            let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Repo.path(source))))
            let ext = source.hasSuffix(".gguf") ? "gguf" : "safetensors"
            let path = dir + "/x." + ext
            var opened = 0, refused = 0
            func attempt(_ bytes: [UInt8]) throws {
                try Data(bytes).write(to: URL(fileURLWithPath: path))
                do { _ = try ModelFile.open(path); opened += 1 } catch is FormatError { refused += 1 }
            }
            for cut in stride(from: 0, to: min(original.count, 4096), by: 7) { try attempt(Array(original[..<cut])) }
            let headerEnd = ext == "gguf" ? try GGUFFile(path: Repo.path(source)).dataOffset
                                          : try SafetensorsFile(path: Repo.path(source)).dataOffset
            for i in stride(from: 0, to: headerEnd, by: 3) {
                var b = original
                b[i] ^= 0xFF
                try attempt(b)
            }
            #expect(refused > 0)
            #expect(opened + refused > 100)
        }
    }
}
