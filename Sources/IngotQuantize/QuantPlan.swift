import IngotFormats

/// A llama-quantize file type ("preset"): the default tensor type plus the per-tensor rules keyed on it.
/// `code` is the value of `general.file_type` (llama.h's `LLAMA_FTYPE_*`).
public struct QuantPreset: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    public let code: UInt32
    public let defaultType: GGMLType
    public var description: String { name }

    public static let all: [QuantPreset] = [
        .init(name: "F32", code: 0, defaultType: .f32),
        .init(name: "F16", code: 1, defaultType: .f16),
        .init(name: "BF16", code: 32, defaultType: .bf16),
        .init(name: "Q4_0", code: 2, defaultType: .q4_0),
        .init(name: "Q4_1", code: 3, defaultType: .q4_1),
        .init(name: "Q8_0", code: 7, defaultType: .q8_0),
        .init(name: "Q5_0", code: 8, defaultType: .q5_0),
        .init(name: "Q5_1", code: 9, defaultType: .q5_1),
        .init(name: "Q2_K", code: 10, defaultType: .q2_K),
        .init(name: "Q2_K_S", code: 21, defaultType: .q2_K),
        .init(name: "Q3_K_S", code: 11, defaultType: .q3_K),
        .init(name: "Q3_K_M", code: 12, defaultType: .q3_K),
        .init(name: "Q3_K_L", code: 13, defaultType: .q3_K),
        .init(name: "Q4_K_S", code: 14, defaultType: .q4_K),
        .init(name: "Q4_K_M", code: 15, defaultType: .q4_K),
        .init(name: "Q5_K_S", code: 16, defaultType: .q5_K),
        .init(name: "Q5_K_M", code: 17, defaultType: .q5_K),
        .init(name: "Q6_K", code: 18, defaultType: .q6_K),
        .init(name: "IQ4_NL", code: 25, defaultType: .iq4_NL),
        .init(name: "IQ4_XS", code: 30, defaultType: .iq4_XS),
        .init(name: "MXFP4_MOE", code: 38, defaultType: .mxfp4),
        // Named so that their rules apply, though their codebook types need calibration Ingot does not have yet.
        .init(name: "IQ2_XXS", code: 19, defaultType: .iq2_XXS),
        .init(name: "IQ2_XS", code: 20, defaultType: .iq2_XS),
        .init(name: "IQ2_S", code: 28, defaultType: .iq2_XS),
        .init(name: "IQ2_M", code: 29, defaultType: .iq2_S),
        .init(name: "IQ3_XXS", code: 23, defaultType: .iq3_XXS),
        .init(name: "IQ3_XS", code: 22, defaultType: .iq3_S),
        .init(name: "IQ3_S", code: 26, defaultType: .iq3_S),
        .init(name: "IQ3_M", code: 27, defaultType: .iq3_S),
        .init(name: "IQ1_S", code: 24, defaultType: .iq1_S),
        .init(name: "IQ1_M", code: 31, defaultType: .iq1_M),
        .init(name: "TQ1_0", code: 36, defaultType: .tq1_0),
        .init(name: "TQ2_0", code: 37, defaultType: .tq2_0),
    ]

    /// Case-insensitive lookup; "MXFP4" names MXFP4_MOE as in llama-quantize's list.
    public static func named(_ name: String) -> QuantPreset? {
        let n = name.uppercased() == "MXFP4" ? "MXFP4_MOE" : name.uppercased()
        return all.first { $0.name == n }
    }
}

/// What a tensor is for, as llama-quantize's rules see it (`tensor_get_category`).
public enum TensorCategory: String, Sendable {
    case output, tokenEmbedding, attentionQKV, attentionKVB, attentionV, attentionK, attentionQ, attentionOutput
    case ffnUp, ffnGate, ffnDown, other

    public init(name: String) {
        if name == "output.weight" { self = .output }
        else if name == "token_embd.weight" || name == "per_layer_token_embd.weight" { self = .tokenEmbedding }
        else if name.contains("attn_qkv.weight") { self = .attentionQKV }
        else if name.contains("attn_kv_b.weight") { self = .attentionKVB }
        else if name.contains("attn_v.weight") { self = .attentionV }
        else if name.contains("attn_k.weight") { self = .attentionK }
        else if name.contains("attn_q.weight") { self = .attentionQ }
        else if name.contains("attn_output.weight") { self = .attentionOutput }
        else if name.contains("ffn_up") { self = .ffnUp }
        else if name.contains("ffn_gate") { self = .ffnGate }
        else if name.contains("ffn_down") { self = .ffnDown }
        else { self = .other }
    }

    var isAttentionVLike: Bool { self == .attentionV || self == .attentionQKV || self == .attentionKVB }
}

/// The model facts the rules depend on, read from GGUF metadata (`{arch}.block_count` and so on).
public struct QuantModelFacts: Sendable {
    public var architecture: String
    public var layerCount: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var expertCount: Int

    /// heads per key/value head (llama.cpp's `n_gqa`), 0 when unknown.
    public var gqa: Int { kvHeadCount > 0 ? headCount / kvHeadCount : 0 }
    /// llama.cpp's LLM_TYPE_70B for the architectures whose rules check it (80-layer Llama).
    public var is70B: Bool { architecture == "llama" && layerCount == 80 }

    public init(metadata: [GGUFKeyValue]) {
        func value(_ k: String) -> GGUFValue? { metadata.first { $0.key == k }?.value }
        architecture = value("general.architecture")?.stringValue ?? ""
        let a = architecture
        layerCount = value("\(a).block_count")?.intValue ?? 0
        // head_count may be an array (per layer); the rules use the first layer's value.
        func firstInt(_ k: String) -> Int? {
            guard let v = value(k) else { return nil }
            if let i = v.intValue { return i }
            if let arr = v.arrayValue, arr.count > 0 { return arr.element(0).intValue }
            return nil
        }
        headCount = firstInt("\(a).attention.head_count") ?? 0
        kvHeadCount = firstInt("\(a).attention.head_count_kv") ?? headCount
        expertCount = value("\(a).expert_count")?.intValue ?? 0
    }
}

/// Options of `ingot quantize`, mirroring llama-quantize's.
public struct QuantOptions: Sendable {
    public var preset: QuantPreset
    /// `--tensor-type REGEX=TYPE`, first match wins (applied when the preset's default type is quantized).
    public var tensorTypes: [(pattern: String, type: GGMLType)] = []
    public var outputTensorType: GGMLType?
    public var tokenEmbeddingType: GGMLType?
    /// `--keep REGEX`: tensors copied unchanged.
    public var keep: [String] = []
    /// `--pure`: no per-tensor rules, every quantizable tensor gets the default type.
    public var pure = false
    /// Types chosen tensor by tensor (`ingot fit`'s plan), by exact name: they replace the preset's rules and every
    /// override for the tensors named (which must be quantizable); the others follow the rules.
    public var assigned: [String: GGMLType] = [:]
    /// An importance matrix (`--imatrix`): importance-weighted quantizers, llama-quantize's rules for a run with
    /// one, and its provenance in the output's metadata.
    public var importance: ImportanceMatrix?
    /// The importance matrix's path as given, recorded as `quantize.imatrix.file` (llama-quantize records its argument).
    public var importanceFile: String?
    public var hasImportanceMatrix: Bool { importance != nil }

    public init(preset: QuantPreset) { self.preset = preset }
}

/// One tensor of the plan.
public struct PlannedTensor: Sendable {
    public var name: String
    /// GGUF dims (ne[0] first).
    public var dimensions: [Int]
    public var sourceType: GGMLType
    public var targetType: GGMLType
    public var sourceBytes: Int
    public var targetBytes: Int
    /// Why the type differs from the preset's default (rule, override, fallback, keep), if it does.
    public var note: String?
    /// The importance-matrix entry the quantizer weights this tensor with (its own name), if any.
    public var importanceEntry: String?
    public var elementCount: Int { dimensions.reduce(1, *) }
    public var isCopy: Bool { sourceType == targetType }
}

/// Errors of a quantization request; each names the tensor or option at fault.
public struct QuantError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case unknownType = "unknown-type"
        case unsupportedType = "unsupported-type"
        case needsCalibration = "needs-calibration"
        case rowNotBlockMultiple = "row-not-block-multiple"
        case badPattern = "bad-pattern"
        case badLayer = "bad-layer"
        case importanceMismatch = "importance-mismatch"
        case nonFinite = "non-finite"
    }
    public var code: Code
    public var tensor: String?
    public var detail: String
    /// The byte offset in the input where the problem lies, where there is one (a row holding a NaN).
    public var offset: Int?
    public init(_ code: Code, tensor: String? = nil, offset: Int? = nil, _ detail: String) {
        self.code = code
        self.tensor = tensor
        self.offset = offset
        self.detail = detail
    }
    public var description: String {
        let at = offset.map { " at byte \($0)" } ?? ""
        return tensor.map { "\($0)\(at): \(detail)" } ?? detail
    }
}

extension QuantError: IngotError {
    public var codeName: String { code.rawValue }
    public var reportFields: [(String, String?)] { [("detail", detail), ("tensor", tensor)] }
}

/// The full decision for a file: output metadata, tensors in output order with their types, warnings.
public struct QuantPlan: Sendable {
    public var metadata: [GGUFKeyValue]
    public var tensors: [PlannedTensor]
    public var warnings: [String]
    public var fallbackCount: Int
    /// The importance matrix the tensors' `importanceEntry` names refer to.
    public var importance: ImportanceMatrix?

    public var sourceBytes: Int { tensors.reduce(0) { $0 + $1.sourceBytes } }
    public var targetBytes: Int { tensors.reduce(0) { $0 + $1.targetBytes } }
    public var elementCount: Int { tensors.reduce(0) { $0 + $1.elementCount } }
    public var bitsPerWeight: Double { elementCount == 0 ? 0 : Double(targetBytes * 8) / Double(elementCount) }
}
