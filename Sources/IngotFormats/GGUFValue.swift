/// GGUF metadata value types (`enum gguf_type` in gguf.h; gguf-py `GGUFValueType`).
public enum GGUFValueType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7
    case string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// The name gguf-py uses (`UINT32`, `FLOAT32`, ...).
    public var description: String {
        switch self {
        case .uint8: "UINT8"; case .int8: "INT8"; case .uint16: "UINT16"; case .int16: "INT16"
        case .uint32: "UINT32"; case .int32: "INT32"; case .float32: "FLOAT32"; case .bool: "BOOL"
        case .string: "STRING"; case .array: "ARRAY"; case .uint64: "UINT64"; case .int64: "INT64"
        case .float64: "FLOAT64"
        }
    }

    /// Fixed encoded size, or nil for strings and arrays.
    public var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64: 8
        case .string, .array: nil
        }
    }

    /// The fewest bytes one element of this type can take (a string is at least its u64 length,
    /// an array at least its u32 type and u64 count). Used to refuse counts the file cannot hold.
    var minimumSize: Int { fixedSize ?? (self == .string ? 8 : 12) }
}

/// A GGUF string: a u64 length and that many bytes, kept as bytes so that a copy is byte-exact
/// even where a writer stored something that is not UTF-8.
public struct GGUFString: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public var bytes: [UInt8]
    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init(_ s: String) { self.bytes = Array(s.utf8) }
    public init(stringLiteral s: String) { self.init(s) }
    /// The text, with invalid UTF-8 replaced by U+FFFD.
    public var string: String { String(decoding: bytes, as: UTF8.self) }
    public var description: String { string }
}

/// One metadata value.
public enum GGUFValue: Equatable, Sendable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case float32(Float), bool(Bool), string(GGUFString), uint64(UInt64), int64(Int64), float64(Double)
    case array(GGUFArray)

    public var type: GGUFValueType {
        switch self {
        case .uint8: .uint8; case .int8: .int8; case .uint16: .uint16; case .int16: .int16
        case .uint32: .uint32; case .int32: .int32; case .float32: .float32; case .bool: .bool
        case .string: .string; case .uint64: .uint64; case .int64: .int64; case .float64: .float64
        case .array: .array
        }
    }

    /// Any integer type as Int, when it fits.
    public var intValue: Int? {
        switch self {
        case .uint8(let v): Int(v); case .int8(let v): Int(v); case .uint16(let v): Int(v)
        case .int16(let v): Int(v); case .uint32(let v): Int(v); case .int32(let v): Int(v)
        case .uint64(let v): Int(exactly: v); case .int64(let v): Int(exactly: v)
        default: nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .float32(let v): Double(v)
        case .float64(let v): v
        default: intValue.map(Double.init)
        }
    }

    public var stringValue: String? { if case .string(let s) = self { return s.string }; return nil }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var arrayValue: GGUFArray? { if case .array(let a) = self { return a }; return nil }
}

/// A GGUF array, stored typed (one Swift array per element type). Arrays of arrays carry their
/// own element type per inner array, as in the file.
public enum GGUFArray: Equatable, Sendable {
    case uint8([UInt8]), int8([Int8]), uint16([UInt16]), int16([Int16]), uint32([UInt32]), int32([Int32])
    case float32([Float]), bool([Bool]), string([GGUFString]), uint64([UInt64]), int64([Int64]), float64([Double])
    case array([GGUFArray])

    public var elementType: GGUFValueType {
        switch self {
        case .uint8: .uint8; case .int8: .int8; case .uint16: .uint16; case .int16: .int16
        case .uint32: .uint32; case .int32: .int32; case .float32: .float32; case .bool: .bool
        case .string: .string; case .uint64: .uint64; case .int64: .int64; case .float64: .float64
        case .array: .array
        }
    }

    public var count: Int {
        switch self {
        case .uint8(let a): a.count; case .int8(let a): a.count; case .uint16(let a): a.count
        case .int16(let a): a.count; case .uint32(let a): a.count; case .int32(let a): a.count
        case .float32(let a): a.count; case .bool(let a): a.count; case .string(let a): a.count
        case .uint64(let a): a.count; case .int64(let a): a.count; case .float64(let a): a.count
        case .array(let a): a.count
        }
    }

    /// Element `i` as a scalar value (nested arrays become `.array`).
    public func element(_ i: Int) -> GGUFValue {
        switch self {
        case .uint8(let a): .uint8(a[i]); case .int8(let a): .int8(a[i]); case .uint16(let a): .uint16(a[i])
        case .int16(let a): .int16(a[i]); case .uint32(let a): .uint32(a[i]); case .int32(let a): .int32(a[i])
        case .float32(let a): .float32(a[i]); case .bool(let a): .bool(a[i]); case .string(let a): .string(a[i])
        case .uint64(let a): .uint64(a[i]); case .int64(let a): .int64(a[i]); case .float64(let a): .float64(a[i])
        case .array(let a): .array(a[i])
        }
    }
}

/// One key-value pair as it stands in the file.
public struct GGUFKeyValue: Equatable, Sendable {
    public var key: String
    public var value: GGUFValue
    /// File offset of the pair's key length (nil for pairs built in code).
    public var fileOffset: Int?

    public init(_ key: String, _ value: GGUFValue, fileOffset: Int? = nil) {
        self.key = key
        self.value = value
        self.fileOffset = fileOffset
    }

    public static func == (a: GGUFKeyValue, b: GGUFKeyValue) -> Bool { a.key == b.key && a.value == b.value }
}

extension GGUFValue {
    /// The value as JSON: numbers as numbers, strings as text (invalid UTF-8 replaced), arrays as
    /// arrays. With `arrayLimit`, an array longer than the limit becomes
    /// `{"count": N, "first": [the first arrayLimit elements]}`.
    public func json(arrayLimit: Int? = nil) -> JSONValue {
        switch self {
        case .uint8(let x): return JSONValue(Int(x))
        case .int8(let x): return JSONValue(Int(x))
        case .uint16(let x): return JSONValue(Int(x))
        case .int16(let x): return JSONValue(Int(x))
        case .uint32(let x): return JSONValue(Int(x))
        case .int32(let x): return JSONValue(Int(x))
        case .uint64(let x): return x <= UInt64(Int64.max) ? .int(Int64(x)) : .uint(x)
        case .int64(let x): return .int(x)
        case .float32(let x): return .double(Double(x))
        case .float64(let x): return .double(x)
        case .bool(let x): return .bool(x)
        case .string(let s): return .string(s.string)
        case .array(let a):
            let n = arrayLimit.map { min($0, a.count) } ?? a.count
            let items = (0 ..< n).map { a.element($0).json(arrayLimit: arrayLimit) }
            if n == a.count { return .array(items) }
            return .object(JSONObject([("count", JSONValue(a.count)), ("first", .array(items))]))
        }
    }
}
