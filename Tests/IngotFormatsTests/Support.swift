import Foundation
import IngotFormats
import Testing

/// Paths and helpers shared by the format tests.
enum Repo {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0 ..< 3 { url.deleteLastPathComponent() }
        return url.path
    }()
    static func path(_ rel: String) -> String { root + "/" + rel }

    /// The real SmolLM2 GGUF, fetched into the ignored cache on first use.
    static let smolLM2: String = {
        let p = path(".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
        if !FileManager.default.fileExists(atPath: p) {
            _ = try? run(["bash", path("tools/fetch-fixtures.sh")])
        }
        return p
    }()

    static func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "ingot-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }
}

struct CommandFailed: Error, CustomStringConvertible {
    var description: String
}

/// Runs a command, returning its standard output; throws with its standard error when it fails.
@discardableResult
func run(_ args: [String]) throws -> Data {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    let stderrData = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
        throw CommandFailed(description: "\(args.joined(separator: " ")) exited \(p.terminationStatus): "
                            + String(decoding: stderrData, as: UTF8.self))
    }
    return data
}

/// The JSON a reference script prints about `path` (see tools/reference/). These scripts use
/// gguf-py and the safetensors package; `tools/setup-python.sh` installs them.
func referenceDump(_ script: String, _ path: String) throws -> JSONValue {
    let data = try run(["python3", Repo.path("tools/reference/\(script)"), path])
    return try JSONParser.parse([UInt8](data), field: script)
}

// MARK: - Ingot's side of the canonical dumps

/// The document tools/reference/gguf_dump.py prints, built from Ingot's reader.
func canonicalDump(_ g: GGUFFile) -> JSONValue {
    func str(_ s: GGUFString) -> JSONValue {
        if let text = String(validating: s.bytes, as: UTF8.self) { return .string(text) }
        return .object(JSONObject([("hex", .string(s.bytes.map { String(format: "%02x", $0) }.joined()))]))
    }
    func value(_ v: GGUFValue) -> JSONValue {
        switch v {
        case .float32(let x): return .object(JSONObject([("f32", JSONValue(Int(x.bitPattern)))]))
        case .float64(let x): return .object(JSONObject([("f64", JSONValue.uint(x.bitPattern).normalized)]))
        case .string(let s): return str(s)
        case .array(let a): return array(a)
        default: return v.json()  // integers and bools as JSON numbers and booleans
        }
    }
    func array(_ a: GGUFArray) -> JSONValue {
        .object(JSONObject([("array", .string(a.elementType.description)),
                            ("items", .array((0 ..< a.count).map { value(a.element($0)) }))]))
    }
    let metadata: [JSONValue] = g.metadata.map { kv in
        .object(JSONObject([("key", .string(kv.key)), ("type", .string(kv.value.type.description)), ("value", value(kv.value))]))
    }
    let tensors: [JSONValue] = g.tensors.map { t in
        .object(JSONObject([
            ("name", .string(t.name)), ("type", .string(t.type.name)),
            ("dims", .array(t.dimensions.map { JSONValue($0) })),
            ("offset", JSONValue(g.dataOffset + t.offset)), ("bytes", JSONValue(t.byteCount)),
            ("crc32", JSONValue(Int(CRC32.checksum(g.data(for: t))))),
        ]))
    }
    return .object(JSONObject([
        ("version", JSONValue(Int(g.version))), ("alignment", JSONValue(g.alignment)),
        ("dataOffset", JSONValue(g.dataOffset)), ("metadata", .array(metadata)), ("tensors", .array(tensors)),
    ]))
}

extension JSONValue {
    /// `.uint` for values that fit Int64 becomes `.int`, as the parser produces.
    var normalized: JSONValue {
        if case .uint(let v) = self, v <= UInt64(Int64.max) { return .int(Int64(v)) }
        return self
    }
}

/// Reports the first difference between two JSON documents, for readable failures.
func firstDifference(_ a: JSONValue, _ b: JSONValue, path: String = "$") -> String? {
    switch (a, b) {
    case (.object(let x), .object(let y)):
        if x.members.map(\.key) != y.members.map(\.key) { return "\(path): keys \(x.members.map(\.key)) vs \(y.members.map(\.key))" }
        for (m, n) in zip(x.members, y.members) {
            if let d = firstDifference(m.value, n.value, path: path + "." + m.key) { return d }
        }
        return nil
    case (.array(let x), .array(let y)):
        if x.count != y.count { return "\(path): \(x.count) vs \(y.count) items" }
        for (i, (m, n)) in zip(x, y).enumerated() {
            if let d = firstDifference(m, n, path: path + "[\(i)]") { return d }
        }
        return nil
    default:
        return a == b ? nil : "\(path): \(a.serialized()) vs \(b.serialized())"
    }
}

func filesEqual(_ a: String, _ b: String) throws -> Bool {
    let x = try MappedFile(path: a), y = try MappedFile(path: b)
    return x.count == y.count && (x.count == 0 || memcmp(x.bytes.baseAddress!, y.bytes.baseAddress!, x.count) == 0)
}
