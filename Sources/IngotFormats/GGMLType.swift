/// ggml tensor types as stored in GGUF tensor infos (`enum ggml_type` in ggml.h), with the block
/// geometry every reader needs: a row of `n` elements takes `n / blockSize * bytesPerBlock` bytes.
///
/// The table covers every type gguf-py 0.19 knows (`GGML_QUANT_SIZES`), so any GGUF can be listed
/// and copied even where Ingot cannot compute with the type. Codes 4, 5 (removed Q4_2/Q4_3),
/// 31-33 (removed Q4_0_4_4 family) and 36-38 (removed IQ4_NL_x) are refused as unknown.
public struct GGMLType: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public let name: String
    /// Elements per block (1 for plain element types).
    public let blockSize: Int
    /// Bytes per block.
    public let bytesPerBlock: Int

    public var description: String { name }
    public var isQuantized: Bool { blockSize > 1 }
    /// Bits per element: bytesPerBlock * 8 / blockSize.
    public var bitsPerWeight: Double { Double(bytesPerBlock * 8) / Double(blockSize) }

    public init?(rawValue: UInt32) {
        guard let t = GGMLType.byCode[rawValue] else { return nil }
        self = t
    }

    private init(_ raw: UInt32, _ name: String, _ blockSize: Int, _ bytes: Int) {
        self.rawValue = raw
        self.name = name
        self.blockSize = blockSize
        self.bytesPerBlock = bytes
    }

    public static func named(_ name: String) -> GGMLType? {
        all.first { $0.name.uppercased() == name.uppercased() }
    }

    /// Bytes taken by `elements` elements, or nil if the count is not a whole number of blocks or
    /// the size overflows.
    public func byteCount(elements: Int) -> Int? {
        guard elements >= 0, elements % blockSize == 0 else { return nil }
        return Checked.mul(elements / blockSize, bytesPerBlock)
    }

    static let qk = 256  // QK_K, the super-block size of the k-quants

    public static let f32 = GGMLType(0, "F32", 1, 4)
    public static let f16 = GGMLType(1, "F16", 1, 2)
    public static let q4_0 = GGMLType(2, "Q4_0", 32, 2 + 16)
    public static let q4_1 = GGMLType(3, "Q4_1", 32, 2 + 2 + 16)
    public static let q5_0 = GGMLType(6, "Q5_0", 32, 2 + 4 + 16)
    public static let q5_1 = GGMLType(7, "Q5_1", 32, 2 + 2 + 4 + 16)
    public static let q8_0 = GGMLType(8, "Q8_0", 32, 2 + 32)
    public static let q8_1 = GGMLType(9, "Q8_1", 32, 4 + 4 + 32)
    public static let q2_K = GGMLType(10, "Q2_K", qk, 2 + 2 + qk / 16 + qk / 4)
    public static let q3_K = GGMLType(11, "Q3_K", qk, 2 + qk / 4 + qk / 8 + 12)
    public static let q4_K = GGMLType(12, "Q4_K", qk, 2 + 2 + qk / 2 + 12)
    public static let q5_K = GGMLType(13, "Q5_K", qk, 2 + 2 + qk / 2 + qk / 8 + 12)
    public static let q6_K = GGMLType(14, "Q6_K", qk, 2 + qk / 2 + qk / 4 + qk / 16)
    public static let q8_K = GGMLType(15, "Q8_K", qk, 4 + qk + qk / 8)
    public static let iq2_XXS = GGMLType(16, "IQ2_XXS", qk, 2 + qk / 4)
    public static let iq2_XS = GGMLType(17, "IQ2_XS", qk, 2 + qk / 4 + qk / 32)
    public static let iq3_XXS = GGMLType(18, "IQ3_XXS", qk, 2 + qk / 4 + qk / 8)
    public static let iq1_S = GGMLType(19, "IQ1_S", qk, 2 + qk / 8 + qk / 16)
    public static let iq4_NL = GGMLType(20, "IQ4_NL", 32, 2 + 16)
    public static let iq3_S = GGMLType(21, "IQ3_S", qk, 2 + qk / 4 + qk / 8 + qk / 32 + 4)
    public static let iq2_S = GGMLType(22, "IQ2_S", qk, 2 + qk / 4 + qk / 16)
    public static let iq4_XS = GGMLType(23, "IQ4_XS", qk, 2 + 2 + qk / 2 + qk / 64)
    public static let i8 = GGMLType(24, "I8", 1, 1)
    public static let i16 = GGMLType(25, "I16", 1, 2)
    public static let i32 = GGMLType(26, "I32", 1, 4)
    public static let i64 = GGMLType(27, "I64", 1, 8)
    public static let f64 = GGMLType(28, "F64", 1, 8)
    public static let iq1_M = GGMLType(29, "IQ1_M", qk, qk / 8 + qk / 16 + qk / 32)
    public static let bf16 = GGMLType(30, "BF16", 1, 2)
    public static let tq1_0 = GGMLType(34, "TQ1_0", qk, 2 + 4 * 13)
    public static let tq2_0 = GGMLType(35, "TQ2_0", qk, 2 + 64)
    public static let mxfp4 = GGMLType(39, "MXFP4", 32, 1 + 16)
    public static let nvfp4 = GGMLType(40, "NVFP4", 64, 4 + 32)
    public static let q1_0 = GGMLType(41, "Q1_0", 128, 2 + 16)

    public static let all: [GGMLType] = [
        f32, f16, q4_0, q4_1, q5_0, q5_1, q8_0, q8_1, q2_K, q3_K, q4_K, q5_K, q6_K, q8_K,
        iq2_XXS, iq2_XS, iq3_XXS, iq1_S, iq4_NL, iq3_S, iq2_S, iq4_XS, i8, i16, i32, i64, f64,
        iq1_M, bf16, tq1_0, tq2_0, mxfp4, nvfp4, q1_0,
    ]

    static let byCode: [UInt32: GGMLType] = Dictionary(uniqueKeysWithValues: all.map { ($0.rawValue, $0) })
}
