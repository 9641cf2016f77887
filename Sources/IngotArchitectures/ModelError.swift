import IngotFormats

/// What stops a model from being tokenized or run: something the file states that Ingot cannot run, or states
/// inconsistently. Like `FormatError`, it names the file, the field or tensor, and the byte offset where known.
public struct ModelError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable {
        case unsupportedTokenizer = "unsupported-tokenizer"
        case unsupportedArchitecture = "unsupported-architecture"
        case unsupportedTensorType = "unsupported-tensor-type"
        case missingField = "missing-field"
        case invalidValue = "invalid-value"
        case missingTensor = "missing-tensor"
        case shapeMismatch = "shape-mismatch"
        case vocabularyMismatch = "vocabulary-mismatch"
        case textTooShort = "text-too-short"
        case invalidToken = "invalid-token"
        case nonFinite = "non-finite"
    }

    public var code: Code
    public var path: String?
    /// The metadata key or tensor name concerned.
    public var field: String
    public var offset: Int?
    public var detail: String

    public init(_ code: Code, field: String, offset: Int? = nil, _ detail: String, path: String? = nil) {
        self.code = code
        self.field = field
        self.offset = offset
        self.detail = detail
        self.path = path
    }

    public var description: String {
        var s = "\(code.rawValue): \(field)"
        if let offset { s += " at byte \(offset)" }
        if let path { s += " in \(path)" }
        return s + ": " + detail
    }
}

extension ModelError: IngotError {
    public var codeName: String { code.rawValue }
    public var reportFields: [(String, String?)] { [("field", field), ("detail", detail), ("path", path)] }
}
