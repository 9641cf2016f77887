/// A streaming GGUF writer. The caller declares the metadata and every tensor's name, type and
/// dimensions up front (GGUF puts the whole table before the data); the writer lays the data out
/// in declaration order, each tensor padded to the alignment, then takes the tensors' bytes one
/// at a time, so it never holds more than the buffer it is given. The file appears at `path`
/// only when `finish()` succeeds.
public final class GGUFWriter {
    public let path: String
    public let version: UInt32
    public let alignment: Int
    /// The tensor infos with the offsets this writer assigned.
    public let tensors: [GGUFTensorInfo]
    private let out: OutputFile
    private var next = 0
    private var partial = 0

    /// - Parameters:
    ///   - metadata: written in this order; `general.alignment`, if present, must be a UINT32 power of two.
    ///   - tensors: name, type and dimensions of each tensor, in data order (offsets are recomputed).
    public init(path: String, version: UInt32 = 3, metadata: [GGUFKeyValue], tensors: [GGUFTensorInfo]) throws {
        let layout = try GGUFWriter.layout(path: path, version: version, metadata: metadata, tensors: tensors)
        self.path = path
        self.version = version
        self.alignment = layout.alignment
        self.tensors = layout.tensors
        out = try OutputFile(path: path)
        try out.write(layout.header)
    }

    /// The header (padded to the alignment) a file of this metadata and these tensors starts with, and the tensors
    /// with the offsets they take: what `init` writes, for callers that must know it without writing (a plan's digest).
    public static func layout(path: String, version: UInt32 = 3, metadata: [GGUFKeyValue], tensors: [GGUFTensorInfo]) throws
        -> (header: [UInt8], tensors: [GGUFTensorInfo], alignment: Int) {
        guard version == 2 || version == 3 else {
            throw FormatError(.writerMisuse, field: "header.version", offset: nil, "Ingot writes GGUF versions 2 and 3, not \(version)", path: path)
        }
        var alignment = GGUFFile.defaultAlignment
        var keys = Set<String>()
        for kv in metadata {
            guard !kv.key.isEmpty, keys.insert(kv.key).inserted else {
                throw FormatError(.duplicateKey, field: "kv '\(kv.key)'", offset: nil, "empty or repeated key", path: path)
            }
            if kv.key == GGUFFile.alignmentKey {
                guard case .uint32(let a) = kv.value, a != 0, a & (a - 1) == 0 else {
                    throw FormatError(.badAlignment, field: "kv '\(kv.key)'", offset: nil, "must be a UINT32 power of two", path: path)
                }
                alignment = Int(a)
            }
        }
        var names = Set<String>()
        var placed: [GGUFTensorInfo] = []
        var offset = 0
        for var t in tensors {
            guard names.insert(t.name).inserted else {
                throw FormatError(.duplicateTensor, field: "tensor '\(t.name)'", offset: nil, "the name appears twice", path: path)
            }
            guard t.name.utf8.count < Limits.maxGGUFTensorNameBytes else {
                throw FormatError(.limitExceeded, field: "tensor '\(t.name)'", offset: nil,
                                  "names must be shorter than \(Limits.maxGGUFTensorNameBytes) bytes", path: path)
            }
            t.offset = offset
            t.infoOffset = nil
            placed.append(t)
            guard let end = Checked.add(offset, t.byteCount), let padded = Checked.alignUp(end, to: alignment) else {
                throw FormatError(.sizeOverflow, field: "tensor '\(t.name)'", offset: nil, "data section size overflows", path: path)
            }
            offset = padded
        }
        var header = GGUFEncoder()
        header.bytes.append(contentsOf: GGUFFile.magic)
        header.u32(version)
        header.u64(UInt64(placed.count))
        header.u64(UInt64(metadata.count))
        for kv in metadata {
            header.string(GGUFString(kv.key))
            header.value(kv.value)
        }
        for t in placed {
            header.string(GGUFString(t.name))
            header.u32(UInt32(t.dimensions.count))
            for d in t.dimensions { header.u64(UInt64(d)) }
            header.u32(t.type.rawValue)
            header.u64(UInt64(t.offset))
        }
        if !placed.isEmpty {
            let pad = (alignment - header.bytes.count % alignment) % alignment
            header.bytes.append(contentsOf: repeatElement(0, count: pad))
        }
        return (header.bytes, placed, alignment)
    }

    /// The info of the tensor whose data `write` expects next, or nil when all are written.
    /// Bytes written to the output so far (header included).
    public var bytesWritten: Int { out.bytesWritten }

    public var nextTensor: GGUFTensorInfo? { next < tensors.count ? tensors[next] : nil }

    /// Writes the next tensor's data (exactly its byte count) and its padding.
    public func write(_ data: UnsafeRawBufferPointer) throws {
        guard let t = nextTensor, partial == 0 else {
            throw FormatError(.writerMisuse, field: "data", offset: nil, "more tensor data than tensors declared", path: path)
        }
        guard data.count == t.byteCount else {
            throw FormatError(.sizeMismatch, field: "tensor '\(t.name)'", offset: nil,
                              "got \(data.count) bytes; \(t.type.name) \(t.dimensions) takes \(t.byteCount)", path: path)
        }
        try out.write(data)
        try out.writeZeros((alignment - t.byteCount % alignment) % alignment)
        next += 1
    }

    /// Writes part of the next tensor's data; once its byte count is reached the padding follows and the writer
    /// moves to the next tensor. Lets a tensor be produced slab by slab without holding it whole.
    public func append(_ data: UnsafeRawBufferPointer) throws {
        guard let t = nextTensor else {
            throw FormatError(.writerMisuse, field: "data", offset: nil, "more tensor data than tensors declared", path: path)
        }
        guard partial + data.count <= t.byteCount else {
            throw FormatError(.sizeMismatch, field: "tensor '\(t.name)'", offset: nil,
                              "got \(partial + data.count) bytes; \(t.type.name) \(t.dimensions) takes \(t.byteCount)", path: path)
        }
        try out.write(data)
        partial += data.count
        if partial == t.byteCount {
            try out.writeZeros((alignment - t.byteCount % alignment) % alignment)
            next += 1
            partial = 0
        }
    }

    /// Checks that every declared tensor was written, then makes the file appear at `path`.
    public func finish() throws {
        guard next == tensors.count, partial == 0 else {
            out.abort()
            throw FormatError(.writerMisuse, field: "data", offset: nil,
                              "\(tensors.count - next) declared tensors were not written", path: path)
        }
        try out.commit()
    }

    /// Drops the output: nothing appears at `path`.
    public func abort() { out.abort() }
}

/// Serializes GGUF header pieces into a byte array.
struct GGUFEncoder {
    var bytes: [UInt8] = []

    mutating func int<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }
    mutating func u32(_ v: UInt32) { int(v) }
    mutating func u64(_ v: UInt64) { int(v) }
    mutating func string(_ s: GGUFString) {
        u64(UInt64(s.bytes.count))
        bytes.append(contentsOf: s.bytes)
    }

    mutating func value(_ v: GGUFValue) {
        u32(v.type.rawValue)
        payload(v)
    }

    mutating func payload(_ v: GGUFValue) {
        switch v {
        case .uint8(let x): int(x)
        case .int8(let x): int(x)
        case .uint16(let x): int(x)
        case .int16(let x): int(x)
        case .uint32(let x): int(x)
        case .int32(let x): int(x)
        case .uint64(let x): int(x)
        case .int64(let x): int(x)
        case .float32(let x): int(x.bitPattern)
        case .float64(let x): int(x.bitPattern)
        case .bool(let x): int(UInt8(x ? 1 : 0))
        case .string(let s): string(s)
        case .array(let a): array(a)
        }
    }

    mutating func array(_ a: GGUFArray) {
        u32(a.elementType.rawValue)
        u64(UInt64(a.count))
        switch a {
        case .uint8(let xs): bytes.append(contentsOf: xs)
        case .int8(let xs): xs.forEach { int($0) }
        case .uint16(let xs): xs.forEach { int($0) }
        case .int16(let xs): xs.forEach { int($0) }
        case .uint32(let xs): xs.forEach { int($0) }
        case .int32(let xs): xs.forEach { int($0) }
        case .uint64(let xs): xs.forEach { int($0) }
        case .int64(let xs): xs.forEach { int($0) }
        case .float32(let xs): xs.forEach { int($0.bitPattern) }
        case .float64(let xs): xs.forEach { int($0.bitPattern) }
        case .bool(let xs): xs.forEach { int(UInt8($0 ? 1 : 0)) }
        case .string(let xs): xs.forEach { string($0) }
        case .array(let xs): xs.forEach { array($0) }
        }
    }
}

extension GGUFFile {
    /// Copies this file through `GGUFWriter`: same version, metadata and tensor table, data
    /// streamed tensor by tensor from the memory map, laid out in table order (as gguf.cpp requires).
    public func copy(to path: String) throws {
        let writer = try GGUFWriter(path: path, version: version, metadata: metadata, tensors: tensors)
        for t in tensors {
            try writer.write(data(for: t))
        }
        try writer.finish()
    }
}
