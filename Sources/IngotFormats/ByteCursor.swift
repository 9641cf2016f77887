/// A total, bounds-checked little-endian reader over a byte buffer (usually a memory map).
///
/// Every read checks the bytes left and throws `FormatError.truncated` naming the field and the
/// absolute offset; nothing here can trap on file contents. `base` is the file offset of
/// `bytes[0]`, so errors always carry file offsets.
public struct ByteCursor {
    public let bytes: UnsafeRawBufferPointer
    public let base: Int
    /// Position relative to `bytes`.
    public private(set) var position: Int = 0

    public init(_ bytes: UnsafeRawBufferPointer, base: Int = 0) {
        self.bytes = bytes
        self.base = base
    }

    /// Absolute file offset of the next byte.
    public var offset: Int { base + position }
    public var remaining: Int { bytes.count - position }
    public var isAtEnd: Bool { position >= bytes.count }

    /// Throws unless `count` more bytes are available.

    public func require(_ count: Int, _ field: @autoclosure () -> String) throws {
        guard count >= 0, count <= remaining else {
            throw FormatError(.truncated, field: field(), offset: offset,
                              "needs \(count) bytes but the file has \(remaining) left")
        }
    }

    /// Moves to an absolute file offset inside the buffer.
    public mutating func seek(toFileOffset target: Int, _ field: @autoclosure () -> String) throws {
        let rel = target - base
        guard rel >= 0, rel <= bytes.count else {
            throw FormatError(.truncated, field: field(), offset: target,
                              "offset is outside the file (\(base + bytes.count) bytes)")
        }
        position = rel
    }

    public mutating func read<T: FixedWidthInteger>(_ type: T.Type, _ field: @autoclosure () -> String) throws -> T {
        let size = MemoryLayout<T>.size
        try require(size, field())
        let v = bytes.loadUnaligned(fromByteOffset: position, as: T.self)
        position += size
        return T(littleEndian: v)
    }

    public mutating func readU8(_ field: @autoclosure () -> String) throws -> UInt8 { try read(UInt8.self, field()) }

    public mutating func readU32(_ field: @autoclosure () -> String) throws -> UInt32 { try read(UInt32.self, field()) }

    public mutating func readU64(_ field: @autoclosure () -> String) throws -> UInt64 { try read(UInt64.self, field()) }

    /// A view of the next `count` bytes, without copying.

    public mutating func slice(_ count: Int, _ field: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        try require(count, field())
        let s = UnsafeRawBufferPointer(rebasing: bytes[position ..< position + count])
        position += count
        return s
    }
}
