/// GGUF, the file format of llama.cpp (spec: ggml/docs/gguf.md; reader: ggml/src/gguf.cpp).
///
/// Layout, all little-endian:
///  1. magic `GGUF` (4 bytes), version u32 (2 or 3 accepted), tensor count u64, KV count u64
///  2. KV pairs: key (u64 length + bytes), value type u32, value
///     (string: u64 length + bytes; array: element type u32, count u64, elements)
///  3. tensor infos: name (string), n_dims u32 (<= 4), n_dims x u64 dims (fastest-varying first),
///     ggml type u32, offset u64 (relative to the data section, a multiple of the alignment)
///  4. zero padding to `general.alignment` (u32, default 32, a power of two)
///  5. the data section: tensor data, each padded to the alignment.
/// Version 2 differs from 3 only in endianness being unspecified; version 1 used u32 counts and
/// is refused. Files written on big-endian hosts are detected by the version field and refused.
public final class GGUFFile: @unchecked Sendable {
    public static let magic: [UInt8] = Array("GGUF".utf8)
    public static let defaultAlignment = 32
    public static let alignmentKey = "general.alignment"

    public let file: MappedFile
    public var path: String { file.path }
    public let version: UInt32
    public let metadata: [GGUFKeyValue]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// File offset of the data section (tensor offsets are relative to it).
    public let dataOffset: Int
    private let keyIndex: [String: Int]
    private let tensorIndex: [String: Int]

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        do {
            let parsed = try GGUFParser.parse(file.bytes)
            try GGUFParser.validatePlacement(parsed.tensors, dataOffset: parsed.dataOffset,
                                             alignment: parsed.alignment, fileSize: file.count)
            self.version = parsed.version
            self.metadata = parsed.metadata
            self.alignment = parsed.alignment
            self.dataOffset = parsed.dataOffset
            self.keyIndex = parsed.keyIndex
            self.tensors = parsed.tensors
            self.tensorIndex = Dictionary(uniqueKeysWithValues: parsed.tensors.enumerated().map { ($1.name, $0) })
        } catch let e as FormatError {
            throw e.inFile(file.path)
        }
    }

    public subscript(key: String) -> GGUFValue? {
        keyIndex[key].map { metadata[$0].value }
    }

    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The tensor's bytes, a view into the memory map (validated at open).
    public func data(for tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        file.slice(offset: dataOffset + tensor.offset, count: tensor.byteCount)
    }
}

/// One tensor info record.
public struct GGUFTensorInfo: Equatable, Sendable {
    public var name: String
    /// Dimensions as stored: fastest-varying first (`ne[0]` is the row length).
    public var dimensions: [Int]
    public var type: GGMLType
    /// Offset relative to the data section.
    public var offset: Int
    public var elementCount: Int
    public var byteCount: Int
    /// File offset of this record in the tensor-info table (nil for infos built in code).
    public var infoOffset: Int?

    /// Shape outermost-first (numpy / PyTorch order): the reverse of `dimensions`.
    public var shape: [Int] { dimensions.reversed() }

    public init(name: String, dimensions: [Int], type: GGMLType, offset: Int = 0) throws {
        guard dimensions.count <= Limits.maxTensorDimensions else {
            throw FormatError(.tooManyDimensions, field: "tensor '\(name)'", offset: nil,
                              "has \(dimensions.count) dimensions; GGUF allows at most \(Limits.maxTensorDimensions)")
        }
        guard let n = Checked.product(dimensions) else {
            throw FormatError(.sizeOverflow, field: "tensor '\(name)'.dims", offset: nil,
                              "the element count of \(dimensions) overflows")
        }
        guard (dimensions.first ?? 1) % type.blockSize == 0, let bytes = type.byteCount(elements: n) else {
            throw FormatError(.rowNotBlockMultiple, field: "tensor '\(name)'.dims", offset: nil,
                              "row length \(dimensions.first ?? 1) is not a multiple of \(type.name)'s block size \(type.blockSize)")
        }
        self.name = name
        self.dimensions = dimensions
        self.type = type
        self.offset = offset
        self.elementCount = n
        self.byteCount = bytes
        self.infoOffset = nil
    }
}

enum GGUFParser {
    struct Parsed {
        var version: UInt32 = 0
        var metadata: [GGUFKeyValue] = []
        var keyIndex: [String: Int] = [:]
        var tensors: [GGUFTensorInfo] = []
        var alignment = GGUFFile.defaultAlignment
        var dataOffset = 0
    }

    /// Minimum bytes of one KV pair (8-byte key length, 1-byte key, 4-byte type, 1-byte value)
    /// and of one tensor info (8-byte name length, 4-byte n_dims, 4-byte type, 8-byte offset).
    static let minKVBytes = 14
    static let minTensorInfoBytes = 24

    static func parse(_ bytes: UnsafeRawBufferPointer) throws -> Parsed {
        var c = ByteCursor(bytes)
        var p = Parsed()

        let magic = try c.slice(4, "header.magic")
        guard magic.elementsEqual(GGUFFile.magic) else {
            let shown = magic.map { (0x20 ..< 0x7F).contains($0) ? String(UnicodeScalar($0)) : "?" }.joined()
            throw FormatError(.badMagic, field: "header.magic", offset: 0, "found '\(shown)', expected 'GGUF'")
        }
        let versionOffset = c.offset
        let version = try c.readU32("header.version")
        if version != 0 && version & 0xFFFF == 0 {
            throw FormatError(.bigEndian, field: "header.version", offset: versionOffset,
                              "version reads as \(version) (0x\(String(version, radix: 16))): the file is big-endian, which Ingot does not read")
        }
        guard version == 2 || version == 3 else {
            let why = version == 1 ? "GGUF v1 (u32 counts) is no longer supported; convert it with a current llama.cpp"
                                   : "version \(version) is not supported (Ingot reads versions 2 and 3)"
            throw FormatError(.unsupportedVersion, field: "header.version", offset: versionOffset, why)
        }
        p.version = version

        let tensorCountOffset = c.offset
        let rawTensorCount = try c.readU64("header.tensor_count")
        let kvCountOffset = c.offset
        let rawKVCount = try c.readU64("header.kv_count")
        // Each entry takes at least a few bytes, so a count the rest of the file cannot hold is
        // refused here, before anything is allocated for it.
        guard let kvCount = Checked.int(rawKVCount), kvCount <= c.remaining / minKVBytes else {
            throw FormatError(.countTooLarge, field: "header.kv_count", offset: kvCountOffset,
                              "\(rawKVCount) key-value pairs cannot fit in the \(c.remaining) bytes left")
        }

        p.metadata.reserveCapacity(kvCount)
        for i in 0 ..< kvCount {
            let kvOffset = c.offset
            let key = try readName(&c, field: "kv[\(i)].key")
            guard !key.isEmpty else {
                throw FormatError(.invalidValue, field: "kv[\(i)].key", offset: kvOffset, "the key is empty")
            }
            let field = "kv[\(i)] '\(key)'"
            if p.keyIndex[key] != nil {
                throw FormatError(.duplicateKey, field: field, offset: kvOffset, "the key appears twice")
            }
            let value = try readValue(&c, field: field)
            p.keyIndex[key] = p.metadata.count
            p.metadata.append(GGUFKeyValue(key, value, fileOffset: kvOffset))
        }

        if let i = p.keyIndex[GGUFFile.alignmentKey] {
            let kv = p.metadata[i]
            guard case .uint32(let a) = kv.value else {
                throw FormatError(.wrongValueType, field: "kv[\(i)] '\(GGUFFile.alignmentKey)'", offset: kv.fileOffset,
                                  "must be UINT32 but is \(kv.value.type)")
            }
            guard a != 0, a & (a - 1) == 0 else {
                throw FormatError(.badAlignment, field: "kv[\(i)] '\(GGUFFile.alignmentKey)'", offset: kv.fileOffset,
                                  "alignment \(a) is not a non-zero power of two")
            }
            p.alignment = Int(a)
        }

        // The tensor count is checked against what is left once the metadata has been read.
        guard let tensorCount = Checked.int(rawTensorCount), tensorCount <= c.remaining / minTensorInfoBytes else {
            throw FormatError(.countTooLarge, field: "header.tensor_count", offset: tensorCountOffset,
                              "\(rawTensorCount) tensor infos cannot fit in the \(c.remaining) bytes left after the metadata")
        }
        var names = Set<String>()
        p.tensors.reserveCapacity(tensorCount)
        for i in 0 ..< tensorCount {
            let infoOffset = c.offset
            let name = try readName(&c, field: "tensor[\(i)].name")
            let field = "tensor '\(name)'"
            guard name.utf8.count < Limits.maxGGUFTensorNameBytes else {
                throw FormatError(.limitExceeded, field: "tensor[\(i)].name", offset: infoOffset,
                                  "name is \(name.utf8.count) bytes; ggml allows at most \(Limits.maxGGUFTensorNameBytes - 1)")
            }
            guard names.insert(name).inserted else {
                throw FormatError(.duplicateTensor, field: field, offset: infoOffset, "the tensor name appears twice")
            }
            let nDimsOffset = c.offset
            let nDims = try c.readU32("\(field).n_dims")
            guard nDims <= UInt32(Limits.maxTensorDimensions) else {
                throw FormatError(.tooManyDimensions, field: "\(field).n_dims", offset: nDimsOffset,
                                  "\(nDims) dimensions; ggml allows at most \(Limits.maxTensorDimensions)")
            }
            var dims: [Int] = []
            for d in 0 ..< Int(nDims) {
                let dimOffset = c.offset
                let raw = try c.read(Int64.self, "\(field).dims[\(d)]")
                guard raw >= 0 else {
                    throw FormatError(.negativeDimension, field: "\(field).dims[\(d)]", offset: dimOffset,
                                      "dimension is \(raw)")
                }
                dims.append(Int(raw))
            }
            guard let elements = Checked.product(dims) else {
                throw FormatError(.sizeOverflow, field: "\(field).dims", offset: nDimsOffset,
                                  "the element count of \(dims) overflows 64 bits")
            }
            let typeOffset = c.offset
            let rawType = try c.readU32("\(field).type")
            guard let type = GGMLType(rawValue: rawType) else {
                throw FormatError(.unknownTensorType, field: "\(field).type", offset: typeOffset,
                                  "ggml type \(rawType) is not one Ingot knows")
            }
            guard (dims.first ?? 1) % type.blockSize == 0 else {
                throw FormatError(.rowNotBlockMultiple, field: "\(field).dims[0]", offset: nDimsOffset + 4,
                                  "row length \(dims.first ?? 1) is not a multiple of \(type.name)'s block size \(type.blockSize)")
            }
            guard type.byteCount(elements: elements) != nil else {
                throw FormatError(.sizeOverflow, field: "\(field).dims", offset: nDimsOffset,
                                  "the byte size of \(elements) \(type.name) elements overflows")
            }
            let offOffset = c.offset
            let rawOffset = try c.readU64("\(field).offset")
            guard let offset = Checked.int(rawOffset) else {
                throw FormatError(.tensorOutOfFile, field: "\(field).offset", offset: offOffset,
                                  "offset \(rawOffset) is beyond any file")
            }
            var info = try GGUFTensorInfo(name: name, dimensions: dims, type: type, offset: offset)
            info.infoOffset = infoOffset
            p.tensors.append(info)
        }

        // The data section starts at the next multiple of the alignment.
        guard let start = Checked.alignUp(c.offset, to: p.alignment) else {
            throw FormatError(.sizeOverflow, field: "data section", offset: c.offset, "alignment overflows")
        }
        p.dataOffset = start
        if tensorCount > 0 && start > bytes.count {
            throw FormatError(.truncated, field: "data section", offset: c.offset,
                              "the data section would start at \(start), beyond the end of the file (\(bytes.count) bytes)")
        }
        return p
    }

    /// Checks that every tensor's data is aligned, inside the file, and overlaps no other tensor.
    /// Tensors may appear in any order in the table (gguf.cpp requires table order; gguf-py does not).
    static func validatePlacement(_ infos: [GGUFTensorInfo], dataOffset: Int, alignment: Int, fileSize: Int) throws {
        for t in infos {
            let field = "tensor '\(t.name)'.offset"
            let at = t.infoOffset.map { $0 + 8 + t.name.utf8.count + 4 + 8 * t.dimensions.count + 4 }
            guard t.offset % alignment == 0 else {
                throw FormatError(.misalignedOffset, field: field, offset: at,
                                  "data offset \(t.offset) is not a multiple of the alignment \(alignment)")
            }
            guard let start = Checked.add(dataOffset, t.offset), let end = Checked.add(start, t.byteCount), end <= fileSize else {
                throw FormatError(.tensorOutOfFile, field: field, offset: at,
                                  "data [\(t.offset), +\(t.byteCount)) after the data section at \(dataOffset) ends beyond the file (\(fileSize) bytes)")
            }
        }
        let order = infos.indices.sorted { (infos[$0].offset, $0) < (infos[$1].offset, $1) }
        for (a, b) in zip(order, order.dropFirst()) {
            let first = infos[a], second = infos[b]
            if first.byteCount > 0 && second.byteCount > 0 && first.offset + first.byteCount > second.offset {
                throw FormatError(.overlappingTensors, field: "tensor '\(second.name)'.offset", offset: second.infoOffset,
                                  "data at \(second.offset) overlaps tensor '\(first.name)' [\(first.offset), \(first.offset + first.byteCount))")
            }
        }
    }

    static func readString(_ c: inout ByteCursor, field: @autoclosure () -> String) throws -> GGUFString {
        let at = c.offset
        let raw = try c.readU64(field() + ".length")
        guard let n = Checked.int(raw), n <= c.remaining else {
            throw FormatError(.lengthBeyondFile, field: field(), offset: at,
                              "string length \(raw) is beyond the \(c.remaining) bytes left")
        }
        guard n <= Limits.maxGGUFStringLength else {
            throw FormatError(.limitExceeded, field: field(), offset: at, "string length \(n) exceeds \(Limits.maxGGUFStringLength)")
        }
        return GGUFString(bytes: Array(try c.slice(n, field())))
    }

    /// A key or tensor name: a GGUF string that must be UTF-8.
    static func readName(_ c: inout ByteCursor, field: String) throws -> String {
        let at = c.offset
        let s = try readString(&c, field: field)
        guard let text = String(validating: s.bytes, as: UTF8.self) else {
            throw FormatError(.invalidUTF8, field: field, offset: at, "the name is not valid UTF-8")
        }
        return text
    }

    static func readType(_ c: inout ByteCursor, field: String) throws -> GGUFValueType {
        let at = c.offset
        let raw = try c.readU32(field + ".type")
        guard let t = GGUFValueType(rawValue: raw) else {
            throw FormatError(.unknownValueType, field: field, offset: at, "value type \(raw) is not one of GGUF's 13 types")
        }
        return t
    }

    static func readValue(_ c: inout ByteCursor, field: String) throws -> GGUFValue {
        let type = try readType(&c, field: field)
        switch type {
        case .uint8: return .uint8(try c.read(UInt8.self, field))
        case .int8: return .int8(try c.read(Int8.self, field))
        case .uint16: return .uint16(try c.read(UInt16.self, field))
        case .int16: return .int16(try c.read(Int16.self, field))
        case .uint32: return .uint32(try c.read(UInt32.self, field))
        case .int32: return .int32(try c.read(Int32.self, field))
        case .uint64: return .uint64(try c.read(UInt64.self, field))
        case .int64: return .int64(try c.read(Int64.self, field))
        case .float32: return .float32(Float(bitPattern: try c.read(UInt32.self, field)))
        case .float64: return .float64(Double(bitPattern: try c.read(UInt64.self, field)))
        case .bool: return .bool(try readBool(&c, field: field))
        case .string: return .string(try readString(&c, field: field))
        case .array: return .array(try readArray(&c, field: field, depth: 0))
        }
    }

    static func readBool(_ c: inout ByteCursor, field: String) throws -> Bool {
        let at = c.offset
        let b = try c.readU8(field)
        guard b <= 1 else { throw FormatError(.invalidValue, field: field, offset: at, "bool byte is \(b), not 0 or 1") }
        return b == 1
    }

    static func readArray(_ c: inout ByteCursor, field: String, depth: Int) throws -> GGUFArray {
        let typeAt = c.offset
        let elementType = try readType(&c, field: field + ".element")
        let countAt = c.offset
        let rawCount = try c.readU64(field + ".count")
        guard let count = Checked.int(rawCount), count <= c.remaining / elementType.minimumSize else {
            throw FormatError(.lengthBeyondFile, field: field, offset: countAt,
                              "\(rawCount) \(elementType) elements cannot fit in the \(c.remaining) bytes left")
        }
        guard count <= Limits.maxGGUFArrayElements else {
            throw FormatError(.limitExceeded, field: field, offset: countAt, "\(count) elements exceed \(Limits.maxGGUFArrayElements)")
        }
        func fixed<T: FixedWidthInteger>(_: T.Type) throws -> [T] {
            let raw = try c.slice(count * MemoryLayout<T>.size, field)
            return (0 ..< count).map { T(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self)) }
        }
        switch elementType {
        case .uint8: return .uint8(try fixed(UInt8.self))
        case .int8: return .int8(try fixed(Int8.self))
        case .uint16: return .uint16(try fixed(UInt16.self))
        case .int16: return .int16(try fixed(Int16.self))
        case .uint32: return .uint32(try fixed(UInt32.self))
        case .int32: return .int32(try fixed(Int32.self))
        case .uint64: return .uint64(try fixed(UInt64.self))
        case .int64: return .int64(try fixed(Int64.self))
        case .float32: return .float32(try fixed(UInt32.self).map(Float.init(bitPattern:)))
        case .float64: return .float64(try fixed(UInt64.self).map(Double.init(bitPattern:)))
        case .bool:
            var out = [Bool]()
            out.reserveCapacity(count)
            for i in 0 ..< count { out.append(try readBool(&c, field: "\(field)[\(i)]")) }
            return .bool(out)
        case .string:
            var out = [GGUFString]()
            out.reserveCapacity(count)
            for i in 0 ..< count { out.append(try readString(&c, field: "\(field)[\(i)]")) }
            return .string(out)
        case .array:
            guard depth + 1 < Limits.maxGGUFArrayNesting else {
                throw FormatError(.limitExceeded, field: field, offset: typeAt,
                                  "arrays nested deeper than \(Limits.maxGGUFArrayNesting)")
            }
            var out = [GGUFArray]()
            out.reserveCapacity(count)
            for i in 0 ..< count { out.append(try readArray(&c, field: "\(field)[\(i)]", depth: depth + 1)) }
            return .array(out)
        }
    }
}
