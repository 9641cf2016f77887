/// safetensors (spec and reference: huggingface/safetensors, `safetensors/src/tensor.rs`).
///
/// Layout:
///  1. header length N, u64 little-endian, at most 100,000,000
///  2. N bytes of UTF-8 JSON: an object mapping tensor names to
///     `{"dtype": "F16", "shape": [2, 3], "data_offsets": [begin, end]}`, plus an optional
///     `"__metadata__"` object of string to string. The writer pads it with spaces to a multiple of 8.
///  3. the data section: tensor bytes, C order, little-endian. Offsets are relative to its start.
/// Rules enforced (the reference's, plus duplicate-key and sub-byte checks with better errors):
/// sorted by begin offset, the tensors tile the data section exactly (no gap, no overlap, the last
/// ends at the end of the file), and `end - begin == product(shape) * bits(dtype) / 8` with every
/// product overflow-checked.
public enum SafetensorsDType: String, CaseIterable, Sendable, CustomStringConvertible {
    // Declared in the reference's order, which is also its sort order when writing
    // (larger alignment first).
    case bool = "BOOL"
    case f4 = "F4"
    case f6_e2m3 = "F6_E2M3"
    case f6_e3m2 = "F6_E3M2"
    case u8 = "U8"
    case i8 = "I8"
    case f8_e5m2 = "F8_E5M2"
    case f8_e4m3 = "F8_E4M3"
    case f8_e8m0 = "F8_E8M0"
    case f8_e4m3fnuz = "F8_E4M3FNUZ"
    case f8_e5m2fnuz = "F8_E5M2FNUZ"
    case i16 = "I16"
    case u16 = "U16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case u32 = "U32"
    case f32 = "F32"
    case c64 = "C64"
    case f64 = "F64"
    case i64 = "I64"
    case u64 = "U64"

    public var description: String { rawValue }

    public var bits: Int {
        switch self {
        case .f4: 4
        case .f6_e2m3, .f6_e3m2: 6
        case .bool, .u8, .i8, .f8_e5m2, .f8_e4m3, .f8_e8m0, .f8_e4m3fnuz, .f8_e5m2fnuz: 8
        case .i16, .u16, .f16, .bf16: 16
        case .i32, .u32, .f32: 32
        case .c64, .f64, .i64, .u64: 64
        }
    }

    /// Rank in the reference writer's ordering (descending rank is written first).
    var rank: Int { SafetensorsDType.allCases.firstIndex(of: self) ?? 0 }

    /// Bytes taken by `elements` elements, or nil on overflow or a size that is not whole bytes.
    public func byteCount(elements: Int) -> Int? {
        guard let b = Checked.mul(elements, bits), b % 8 == 0 else { return nil }
        return b / 8
    }
}

/// One tensor in a safetensors file.
public struct SafetensorsTensor: Equatable, Sendable {
    public var name: String
    public var dtype: SafetensorsDType
    /// Outermost-first, as in the header.
    public var shape: [Int]
    /// `[begin, end)` relative to the data section.
    public var begin: Int
    public var end: Int
    public var byteCount: Int { end - begin }
    public var elementCount: Int { Checked.product(shape) ?? 0 }

    public init(name: String, dtype: SafetensorsDType, shape: [Int], begin: Int = 0, end: Int = 0) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.begin = begin
        self.end = end
    }
}

public final class SafetensorsFile: @unchecked Sendable {
    public static let metadataKey = "__metadata__"

    public let file: MappedFile
    public var path: String { file.path }
    /// Tensors in data order.
    public let tensors: [SafetensorsTensor]
    /// `__metadata__`, in header order.
    public let metadata: [(key: String, value: String)]
    /// File offset of the data section: 8 + header length.
    public let dataOffset: Int
    public let headerLength: Int
    private let index: [String: Int]

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        do {
            (tensors, metadata, headerLength) = try SafetensorsFile.parse(file.bytes)
        } catch let e as FormatError {
            throw e.inFile(file.path)
        }
        dataOffset = 8 + headerLength
        index = Dictionary(uniqueKeysWithValues: tensors.enumerated().map { ($1.name, $0) })
    }

    public func tensor(named name: String) -> SafetensorsTensor? {
        index[name].map { tensors[$0] }
    }

    public func data(for t: SafetensorsTensor) -> UnsafeRawBufferPointer {
        file.slice(offset: dataOffset + t.begin, count: t.byteCount)
    }

    static func parse(_ bytes: UnsafeRawBufferPointer) throws -> ([SafetensorsTensor], [(key: String, value: String)], Int) {
        var c = ByteCursor(bytes)
        let raw = try c.readU64("header.length")
        guard raw <= UInt64(Limits.maxSafetensorsHeaderBytes) else {
            throw FormatError(.headerTooLarge, field: "header.length", offset: 0,
                              "header length \(raw) exceeds the limit of \(Limits.maxSafetensorsHeaderBytes) bytes")
        }
        let n = Int(raw)
        guard n <= c.remaining else {
            throw FormatError(.lengthBeyondFile, field: "header.length", offset: 0,
                              "header length \(n) is beyond the \(c.remaining) bytes after it")
        }
        let headerBytes = try c.slice(n, "header")
        guard headerBytes.first == UInt8(ascii: "{") else {
            throw FormatError(.invalidJSON, field: "header", offset: 8, "the header must be a JSON object starting with '{'")
        }
        let json = try JSONParser.parse(headerBytes, base: 8, field: "header")
        guard case .object(let root) = json else {
            throw FormatError(.invalidJSON, field: "header", offset: 8, "the header is not a JSON object")
        }
        var tensors: [SafetensorsTensor] = []
        var metadata: [(key: String, value: String)] = []
        var entryOffsets: [String: Int] = [:]
        for (i, member) in root.members.enumerated() {
            let at = root.offset(ofMember: i)
            if member.key == metadataKey {
                guard case .object(let m) = member.value else {
                    throw FormatError(.invalidValue, field: "header.__metadata__", offset: at, "must be an object of strings")
                }
                for (j, kv) in m.members.enumerated() {
                    guard case .string(let v) = kv.value else {
                        throw FormatError(.invalidValue, field: "header.__metadata__['\(kv.key)']", offset: m.offset(ofMember: j),
                                          "metadata values must be strings")
                    }
                    metadata.append((key: kv.key, value: v))
                }
                continue
            }
            let t = try parseEntry(name: member.key, member.value, at: at)
            entryOffsets[t.name] = at
            tensors.append(t)
        }
        // Sort by data position, as the reference does, then check that the tensors tile the data.
        tensors.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var expected = 0
        for t in tensors {
            let field = "tensor '\(t.name)'.data_offsets"
            let at = entryOffsets[t.name]
            if t.begin > expected {
                throw FormatError(.offsetGap, field: field, offset: at,
                                  "begins at \(t.begin) but the previous tensor ends at \(expected): \(t.begin - expected) bytes are not covered")
            }
            if t.begin < expected {
                throw FormatError(.overlappingTensors, field: field, offset: at,
                                  "begins at \(t.begin), inside the previous tensor, which ends at \(expected)")
            }
            guard let elements = Checked.product(t.shape) else {
                throw FormatError(.sizeOverflow, field: "tensor '\(t.name)'.shape", offset: at,
                                  "the element count of \(t.shape) overflows")
            }
            guard let size = t.dtype.byteCount(elements: elements) else {
                let overflow = Checked.mul(elements, t.dtype.bits) == nil
                throw FormatError(overflow ? .sizeOverflow : .sizeMismatch, field: "tensor '\(t.name)'.shape", offset: at,
                                  overflow ? "the byte size of \(elements) \(t.dtype) elements overflows"
                                           : "\(elements) \(t.dtype) elements are not a whole number of bytes")
            }
            guard t.end - t.begin == size else {
                throw FormatError(.sizeMismatch, field: field, offset: at,
                                  "covers \(t.end - t.begin) bytes but \(t.dtype) \(t.shape) takes \(size)")
            }
            expected = t.end
        }
        let dataBytes = bytes.count - 8 - n
        guard expected == dataBytes else {
            let beyond = expected > dataBytes
            throw FormatError(beyond ? .tensorOutOfFile : .incompleteCoverage, field: "data section", offset: 8 + n,
                              beyond ? "tensors end at \(expected) but the data section has only \(dataBytes) bytes"
                                     : "tensors cover \(expected) of the data section's \(dataBytes) bytes")
        }
        return (tensors, metadata, n)
    }

    static func parseEntry(name: String, _ value: JSONValue, at: Int?) throws -> SafetensorsTensor {
        let field = "tensor '\(name)'"
        guard case .object(let o) = value else {
            throw FormatError(.invalidValue, field: field, offset: at, "the entry must be an object")
        }
        guard let dtypeValue = o["dtype"] else { throw FormatError(.missingField, field: "\(field).dtype", offset: at, "missing") }
        guard let dtypeName = dtypeValue.stringValue, let dtype = SafetensorsDType(rawValue: dtypeName) else {
            throw FormatError(.unknownTensorType, field: "\(field).dtype", offset: at,
                              "\(dtypeValue.serialized()) is not a safetensors dtype")
        }
        guard let shapeValue = o["shape"] else { throw FormatError(.missingField, field: "\(field).shape", offset: at, "missing") }
        guard let dims = shapeValue.arrayValue, dims.count <= Limits.maxSafetensorsDimensions else {
            throw FormatError(.invalidValue, field: "\(field).shape", offset: at,
                              "must be an array of at most \(Limits.maxSafetensorsDimensions) non-negative integers")
        }
        var shape: [Int] = []
        for d in dims {
            guard let v = d.intValue, v >= 0 else {
                throw FormatError(d.intValue.map { $0 < 0 } == true ? .negativeDimension : .invalidValue,
                                  field: "\(field).shape", offset: at, "\(d.serialized()) is not a non-negative integer")
            }
            shape.append(v)
        }
        guard let offsetsValue = o["data_offsets"] else {
            throw FormatError(.missingField, field: "\(field).data_offsets", offset: at, "missing")
        }
        guard let offs = offsetsValue.arrayValue, offs.count == 2,
              let begin = offs[0].intValue, let end = offs[1].intValue, begin >= 0, end >= begin else {
            throw FormatError(.invalidValue, field: "\(field).data_offsets", offset: at,
                              "\(offsetsValue.serialized()) is not [begin, end] with 0 <= begin <= end")
        }
        return SafetensorsTensor(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
    }
}
