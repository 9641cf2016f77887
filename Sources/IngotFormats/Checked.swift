/// Overflow-checked size arithmetic, in one place. Every size or offset derived from a file goes
/// through these, so that a hostile count or dimension becomes a `FormatError` instead of a trap.
public enum Checked {
    /// `a * b`, or nil on overflow (either operand negative counts as overflow).
    @inlinable
    public static func mul(_ a: Int, _ b: Int) -> Int? {
        guard a >= 0, b >= 0 else { return nil }
        let (r, o) = a.multipliedReportingOverflow(by: b)
        return o ? nil : r
    }

    @inlinable
    public static func add(_ a: Int, _ b: Int) -> Int? {
        guard a >= 0, b >= 0 else { return nil }
        let (r, o) = a.addingReportingOverflow(b)
        return o ? nil : r
    }

    /// Product of all values, or nil on overflow or a negative factor. The empty product is 1.
    @inlinable
    public static func product<S: Sequence>(_ values: S) -> Int? where S.Element == Int {
        var p = 1
        for v in values {
            guard let n = mul(p, v) else { return nil }
            p = n
        }
        return p
    }

    /// `value` rounded up to a multiple of `alignment` (a power of two), or nil on overflow.
    @inlinable
    public static func alignUp(_ value: Int, to alignment: Int) -> Int? {
        guard alignment > 0, value >= 0 else { return nil }
        let rem = value % alignment
        return rem == 0 ? value : add(value, alignment - rem)
    }

    /// A UInt64 from a file as an Int, or nil when it does not fit.
    @inlinable
    public static func int(_ v: UInt64) -> Int? {
        v <= UInt64(Int.max) ? Int(v) : nil
    }
}

/// Named limits. A file that goes past one of these is refused with `.limitExceeded`, before any
/// allocation that the value would drive.
public enum Limits {
    /// GGUF key and string length (gguf.cpp's GGUF_MAX_STRING_LENGTH is 1 GiB; ours too).
    public static let maxGGUFStringLength = 1 << 30
    /// Elements in one GGUF array (gguf.cpp: GGUF_MAX_ARRAY_ELEMENTS = 2^30).
    public static let maxGGUFArrayElements = 1 << 30
    /// Depth of nested GGUF arrays we follow.
    public static let maxGGUFArrayNesting = 8
    /// ggml's GGML_MAX_DIMS.
    public static let maxTensorDimensions = 4
    /// ggml's GGML_MAX_NAME: names must be shorter than this many bytes.
    public static let maxGGUFTensorNameBytes = 64
    /// safetensors' MAX_HEADER_SIZE.
    public static let maxSafetensorsHeaderBytes = 100_000_000
    /// Nesting depth of JSON we parse.
    public static let maxJSONDepth = 64
    /// Dimensions in one safetensors tensor.
    public static let maxSafetensorsDimensions = 64
}
