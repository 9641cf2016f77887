/// A streaming safetensors writer with the reference writer's layout: tensors sorted by dtype
/// (larger alignment first) then by name, `__metadata__` first in the header, compact JSON padded
/// with spaces to a multiple of 8. With zero or one metadata entry the bytes equal those of
/// `safetensors.serialize`; with more, the reference's order of metadata keys is its hash map's,
/// and ours is the order given.
///
/// Declare the tensors up front, then hand over their bytes one at a time in `tensors` order.
public final class SafetensorsWriter {
    public let path: String
    /// Tensors in the order their data must be written, with offsets assigned.
    public let tensors: [SafetensorsTensor]
    private let out: OutputFile
    private var next = 0

    public init(path: String, tensors declared: [SafetensorsTensor], metadata: [(String, String)] = []) throws {
        self.path = path
        let (placed, header) = try Self.layout(declared, metadata: metadata, path: path)
        tensors = placed
        out = try OutputFile(path: path)
        var length = UInt64(header.count).littleEndian
        try withUnsafeBytes(of: &length) { try out.write($0) }
        try out.write(header)
    }

    /// The tensors in data order with their offsets, and the header (JSON padded to 8 bytes, without its 8-byte
    /// length) a file of them has: what `init` writes, for a size counted before writing.
    public static func layout(_ declared: [SafetensorsTensor], metadata: [(String, String)] = [],
                              path: String = "") throws -> (tensors: [SafetensorsTensor], header: [UInt8]) {
        var names = Set<String>()
        for t in declared {
            guard t.name != SafetensorsFile.metadataKey, names.insert(t.name).inserted else {
                throw FormatError(.duplicateTensor, field: "tensor '\(t.name)'", offset: nil, "repeated or reserved name", path: path)
            }
        }
        let sorted = declared.sorted { a, b in
            a.dtype.rank != b.dtype.rank ? a.dtype.rank > b.dtype.rank : a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }
        var placed: [SafetensorsTensor] = []
        var offset = 0
        for var t in sorted {
            guard let n = Checked.product(t.shape), let size = t.dtype.byteCount(elements: n), let end = Checked.add(offset, size) else {
                throw FormatError(.sizeOverflow, field: "tensor '\(t.name)'", offset: nil, "size of \(t.dtype) \(t.shape) is invalid", path: path)
            }
            t.begin = offset
            t.end = end
            offset = end
            placed.append(t)
        }
        var root = JSONObject()
        if !metadata.isEmpty {
            root.members.append((key: SafetensorsFile.metadataKey, value: .object(JSONObject(metadata.map { ($0.0, JSONValue.string($0.1)) }))))
        }
        for t in placed {
            root.members.append((key: t.name, value: .object(JSONObject([
                ("dtype", .string(t.dtype.rawValue)),
                ("shape", .array(t.shape.map { JSONValue($0) })),
                ("data_offsets", .array([JSONValue(t.begin), JSONValue(t.end)])),
            ]))))
        }
        var header = Array(JSONValue.object(root).serialized().utf8)
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8))
        guard header.count <= Limits.maxSafetensorsHeaderBytes else {
            throw FormatError(.headerTooLarge, field: "header", offset: nil, "header of \(header.count) bytes exceeds the limit", path: path)
        }
        return (placed, header)
    }

    public var nextTensor: SafetensorsTensor? { next < tensors.count ? tensors[next] : nil }

    public func write(_ data: UnsafeRawBufferPointer) throws {
        guard let t = nextTensor else {
            throw FormatError(.writerMisuse, field: "data", offset: nil, "more tensor data than tensors declared", path: path)
        }
        guard data.count == t.byteCount else {
            throw FormatError(.sizeMismatch, field: "tensor '\(t.name)'", offset: nil,
                              "got \(data.count) bytes; \(t.dtype) \(t.shape) takes \(t.byteCount)", path: path)
        }
        try out.write(data)
        next += 1
    }

    public func finish() throws {
        guard next == tensors.count else {
            out.abort()
            throw FormatError(.writerMisuse, field: "data", offset: nil, "\(tensors.count - next) declared tensors were not written", path: path)
        }
        try out.commit()
    }

    public func abort() { out.abort() }
}
