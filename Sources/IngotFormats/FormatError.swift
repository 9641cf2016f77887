/// The one error type for everything read from or written to a model file.
///
/// Every error names the file, the field (a header field, a metadata key or a tensor name) and the
/// absolute byte offset in the file where the problem was found, so that a user can open a hex
/// editor at that place. `code` is stable and machine-readable (it appears in `--json` output).
public struct FormatError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable, CaseIterable {
        // Whole-file problems.
        case cannotOpen = "cannot-open"
        case truncated = "truncated"
        case badMagic = "bad-magic"
        case unsupportedVersion = "unsupported-version"
        case bigEndian = "big-endian"
        case unknownFormat = "unknown-format"
        // Counts and lengths.
        case countTooLarge = "count-too-large"
        case lengthBeyondFile = "length-beyond-file"
        case limitExceeded = "limit-exceeded"
        // Values.
        case unknownValueType = "unknown-value-type"
        case unknownTensorType = "unknown-tensor-type"
        case invalidValue = "invalid-value"
        case wrongValueType = "wrong-value-type"
        case duplicateKey = "duplicate-key"
        case duplicateTensor = "duplicate-tensor"
        case invalidUTF8 = "invalid-utf8"
        // Tensor geometry.
        case tooManyDimensions = "too-many-dimensions"
        case negativeDimension = "negative-dimension"
        case sizeOverflow = "size-overflow"
        case rowNotBlockMultiple = "row-not-block-multiple"
        case badAlignment = "bad-alignment"
        case misalignedOffset = "misaligned-offset"
        case overlappingTensors = "overlapping-tensors"
        case tensorOutOfFile = "tensor-out-of-file"
        case offsetGap = "offset-gap"
        case sizeMismatch = "size-mismatch"
        case incompleteCoverage = "incomplete-coverage"
        // JSON headers and index files.
        case headerTooLarge = "header-too-large"
        case invalidJSON = "invalid-json"
        case missingField = "missing-field"
        case missingShard = "missing-shard"
        case pickleCheckpoint = "pickle-checkpoint"
        case tensorNotFound = "tensor-not-found"
        // Writing.
        case writeFailed = "write-failed"
        case writerMisuse = "writer-misuse"
    }

    public var code: Code
    /// The file the problem is in, when known.
    public var path: String?
    /// What was being read: `header.version`, `kv[3] 'general.alignment'`, `tensor 'blk.0.attn_q.weight'.offset`.
    public var field: String
    /// Absolute byte offset in the file, when the problem has a place.
    public var offset: Int?
    /// One sentence stating the rule and the value that broke it.
    public var detail: String

    public init(_ code: Code, field: String, offset: Int?, _ detail: String, path: String? = nil) {
        self.code = code
        self.field = field
        self.offset = offset
        self.detail = detail
        // A file inside a temporary output folder is named as the user will find it once the folder is in place.
        self.path = path.map { Temporaries.userPath($0) }
    }

    public var description: String {
        var s = ""
        if let path { s += "\(path): " }
        s += field
        if let offset { s += " at byte \(offset)" }
        s += ": \(detail) [\(code.rawValue)]"
        return s
    }

    /// The same error, attributed to a file.
    public func inFile(_ path: String) -> FormatError {
        var e = self
        if e.path == nil { e.path = path }
        return e
    }
}

/// What every Ingot error reports, so that one renderer (the CLI's text line and `--json` object) serves them all:
/// a stable machine-readable code and the named fields (file, field or tensor, detail) plus a byte offset.
public protocol IngotError: Error, CustomStringConvertible {
    var codeName: String { get }
    /// Named values, in display order (`path`, `field`, `tensor`, `detail`); nil values are left out.
    var reportFields: [(String, String?)] { get }
    var offset: Int? { get }
}

extension FormatError: IngotError {
    public var codeName: String { code.rawValue }
    public var reportFields: [(String, String?)] { [("field", field), ("detail", detail), ("path", path)] }
}
