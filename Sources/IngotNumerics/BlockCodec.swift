import IngotFormats
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
#if !INGOT_KERNEL_VARIANT && canImport(IngotNumericsAVX2)
import IngotNumericsAVX2
#endif

/// Quantize and dequantize whole rows of any supported GGUF tensor type.
///
/// Every entry point takes a count that is a multiple of the type's block size (callers check rows against
/// `GGMLType.blockSize` first and report a typed error). `kernels` picks the implementation: the scalar
/// references, the SIMD kernels built for the baseline CPU (SSE2 on x86-64, NEON on arm64), or the best the
/// running CPU has (on x86-64 with AVX2, the same sources compiled for Haswell as module IngotNumericsAVX2).
/// All three give identical bytes; the default comes from `Kernels.choice`.
public enum BlockCodec {
    /// Types `quantize` can produce.
    public static let quantizable: [GGMLType] = [
        .f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_NL, .iq4_XS, .mxfp4,
        .iq2_XXS, .iq2_XS, .iq2_S, .iq3_XXS, .iq3_S, .iq1_S, .iq1_M,
    ]

    public static func canQuantize(_ type: GGMLType) -> Bool { quantizable.contains(type) }

    public static func canDequantize(_ type: GGMLType) -> Bool {
        switch type {
        case .f32, .f16, .bf16, .f64, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K,
             .iq4_NL, .iq4_XS, .mxfp4, .nvfp4, .tq1_0, .tq2_0, .iq2_XXS, .iq2_XS, .iq2_S, .iq3_XXS, .iq3_S, .iq1_S, .iq1_M:
            return true
        default:
            return false
        }
    }

    /// Quantizes `count` floats into `type`'s blocks at `dst` (count / blockSize * bytesPerBlock bytes).
    public static func quantize(_ type: GGMLType, _ src: UnsafePointer<Float>, count: Int, into dst: UnsafeMutableRawPointer,
                                scratch: inout QuantScratch, kernels: KernelChoice = Kernels.choice) {
        #if !INGOT_KERNEL_VARIANT && canImport(IngotNumericsAVX2)
        if kernels == .best && CPUFeatures.hasAVX2 {
            var variant = scratch.avx2.take() ?? IngotNumericsAVX2.QuantScratch()  // moved out: no copy-on-write
            IngotNumericsAVX2.BlockCodec.quantize(type, src, count: count, into: dst, scratch: &variant, kernels: .best)
            scratch.avx2 = variant
            return
        }
        #endif
        let blocks = count / type.blockSize
        let simd = kernels != .reference
        switch type {
        case .f32: UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
        case .f16: simd ? SIMDKernels.floatsToHalves(src, dst, count: count) : ReferenceKernels.floatsToHalves(src, dst, count: count)
        case .bf16: simd ? SIMDKernels.floatsToBF16(src, dst, count: count) : ReferenceKernels.floatsToBF16(src, dst, count: count)
        case .q8_0: simd ? SIMDKernels.quantizeQ8_0(src, dst, blocks: blocks) : LegacyQuants.quantizeQ8_0(src, dst, blocks: blocks)
        case .q4_0: simd ? SIMDKernels.quantizeQ4_0(src, dst, blocks: blocks) : LegacyQuants.quantizeQ4_0(src, dst, blocks: blocks)
        case .q4_1: simd ? SIMDKernels.quantizeMinMax(src, dst, blocks: blocks, five: false) : LegacyQuants.quantizeQ4_1(src, dst, blocks: blocks)
        case .q5_0: simd ? SIMDKernels.quantizeQ5_0(src, dst, blocks: blocks) : LegacyQuants.quantizeQ5_0(src, dst, blocks: blocks)
        case .q5_1: simd ? SIMDKernels.quantizeMinMax(src, dst, blocks: blocks, five: true) : LegacyQuants.quantizeQ5_1(src, dst, blocks: blocks)
        case .mxfp4: LegacyQuants.quantizeMXFP4(src, dst, blocks: blocks)
        case .iq4_NL: LegacyQuants.quantizeIQ4_NL(src, dst, blocks: blocks)
        case .iq4_XS: KQuants.quantizeIQ4_XS(src, dst, blocks: blocks, scratch: &scratch.iq4)
        case .q2_K: simd ? KQuants.quantizeQ2_KLanes(src, dst, blocks: blocks, scratch: &scratch)
                         : KQuants.quantizeQ2_K(src, dst, blocks: blocks, scratch: &scratch.k)
        case .q3_K: KQuants.quantizeQ3_K(src, dst, blocks: blocks, scratch: &scratch.k)
        case .q4_K: simd ? KQuants.quantizeQ4_KLanes(src, dst, blocks: blocks, scratch: &scratch)
                         : KQuants.quantizeQ4_K(src, dst, blocks: blocks, scratch: &scratch.k)
        case .q5_K: simd ? KQuants.quantizeQ5_KLanes(src, dst, blocks: blocks, scratch: &scratch)
                         : KQuants.quantizeQ5_K(src, dst, blocks: blocks, scratch: &scratch.k)
        case .q6_K: simd ? KQuants.quantizeQ6_KLanes(src, dst, blocks: blocks, scratch: &scratch)
                         : KQuants.quantizeQ6_K(src, dst, blocks: blocks, scratch: &scratch.k)
        case .iq2_XXS, .iq2_XS, .iq2_S, .iq3_XXS, .iq3_S, .iq1_S, .iq1_M:
            IQQuants.quantize(type, src, count: count, importance: nil, into: dst, scratch.iq)
        default: preconditionFailure("BlockCodec.quantize called for \(type); check canQuantize first")
        }
    }

    /// Types whose quantizer fits its scales under an importance matrix when given one (llama.cpp's
    /// `quant_weights`); the others ignore it.
    public static let weightedTypes: Set<GGMLType> = [.q4_0, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_NL, .iq4_XS,
                                                      .iq2_XXS, .iq2_XS, .iq2_S, .iq3_XXS, .iq3_S, .iq1_S, .iq1_M]

    /// Types llama.cpp quantizes only under an importance matrix (its quantizer asserts one): a plan must give
    /// each such tensor an entry. Called without, Ingot weighs every column alike.
    public static let importanceOnlyTypes: Set<GGMLType> = [.iq2_XXS, .iq2_XS, .iq1_S]

    /// Quantizes `rows` rows of `columns` floats (a multiple of the block size) into `type`. With `importance`
    /// (one weight per column) a type in `weightedTypes` runs its importance-weighted quantizer row by row, as
    /// `ggml_quantize_chunk` does with an importance matrix; otherwise this is `quantize(_:_:count:...)`.
    public static func quantize(_ type: GGMLType, _ src: UnsafePointer<Float>, rows: Int, columns: Int,
                                importance: UnsafePointer<Float>?, into dst: UnsafeMutableRawPointer,
                                scratch: inout QuantScratch, kernels: KernelChoice = Kernels.choice) {
        guard let importance, weightedTypes.contains(type) else {
            quantize(type, src, count: rows * columns, into: dst, scratch: &scratch, kernels: kernels)
            return
        }
        #if !INGOT_KERNEL_VARIANT && canImport(IngotNumericsAVX2)
        if kernels == .best && CPUFeatures.hasAVX2 {
            var variant = scratch.avx2.take() ?? IngotNumericsAVX2.QuantScratch()
            IngotNumericsAVX2.BlockCodec.quantize(type, src, rows: rows, columns: columns, importance: importance, into: dst,
                                                  scratch: &variant, kernels: .best)
            scratch.avx2 = variant
            return
        }
        #endif
        let rowBytes = columns / type.blockSize * type.bytesPerBlock
        if IQQuants.types.contains(type) {
            for r in 0..<rows {
                IQQuants.quantize(type, src + r * columns, count: columns, importance: importance, into: dst + r * rowBytes, scratch.iq)
            }
            return
        }
        for r in 0..<rows {
            WeightedQuants.quantizeRow(type, src + r * columns, columns: columns, importance: importance,
                                       into: dst + r * rowBytes, scratch: &scratch)
        }
    }

    /// Dequantizes `count` values of `type` at `src` into floats.
    public static func dequantize(_ type: GGMLType, _ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>,
                                  kernels: KernelChoice = Kernels.choice) {
        #if !INGOT_KERNEL_VARIANT && canImport(IngotNumericsAVX2)
        if kernels == .best && CPUFeatures.hasAVX2 {
            IngotNumericsAVX2.BlockCodec.dequantize(type, src, count: count, into: dst, kernels: .best)
            return
        }
        #endif
        let blocks = count / type.blockSize
        let simd = kernels != .reference
        switch type {
        case .f32: UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
        case .f64:
            for i in 0..<count { dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
        case .f16: simd ? SIMDKernels.halvesToFloats(src, dst, count: count) : ReferenceKernels.halvesToFloats(src, dst, count: count)
        case .bf16: ReferenceKernels.bf16sToFloats(src, dst, count: count)
        case .q8_0: simd ? SIMDKernels.dequantizeQ8_0(src, dst, blocks: blocks) : Dequant.q8_0(src, dst, blocks: blocks)
        case .q4_0: simd ? SIMDKernels.dequantizeQ4_0(src, dst, blocks: blocks) : Dequant.q4_0(src, dst, blocks: blocks)
        case .q4_1: simd ? SIMDKernels.dequantizeQ4_1(src, dst, blocks: blocks) : Dequant.q4_1(src, dst, blocks: blocks)
        case .q5_0: simd ? SIMDKernels.dequantizeQ5_0(src, dst, blocks: blocks) : Dequant.q5_0(src, dst, blocks: blocks)
        case .q5_1: simd ? SIMDKernels.dequantizeQ5_1(src, dst, blocks: blocks) : Dequant.q5_1(src, dst, blocks: blocks)
        case .q2_K: simd ? SIMDKernels.dequantizeQ2_K(src, dst, blocks: blocks) : Dequant.q2_K(src, dst, blocks: blocks)
        case .q3_K: simd ? SIMDKernels.dequantizeQ3_K(src, dst, blocks: blocks) : Dequant.q3_K(src, dst, blocks: blocks)
        case .q4_K: simd ? SIMDKernels.dequantizeQ4_K(src, dst, blocks: blocks) : Dequant.q4_K(src, dst, blocks: blocks)
        case .q5_K: simd ? SIMDKernels.dequantizeQ5_K(src, dst, blocks: blocks) : Dequant.q5_K(src, dst, blocks: blocks)
        case .q6_K: simd ? SIMDKernels.dequantizeQ6_K(src, dst, blocks: blocks) : Dequant.q6_K(src, dst, blocks: blocks)
        case .iq4_NL: Dequant.iq4_nl(src, dst, blocks: blocks)
        case .iq4_XS: Dequant.iq4_xs(src, dst, blocks: blocks)
        case .mxfp4: Dequant.mxfp4(src, dst, blocks: blocks)
        case .nvfp4: Dequant.nvfp4(src, dst, blocks: blocks)
        case .tq1_0: Dequant.tq1_0(src, dst, blocks: blocks)
        case .tq2_0: Dequant.tq2_0(src, dst, blocks: blocks)
        case .iq2_XXS: IQDequant.iq2_xxs(src, dst, blocks: blocks)
        case .iq2_XS: IQDequant.iq2_xs(src, dst, blocks: blocks)
        case .iq2_S: IQDequant.iq2_s(src, dst, blocks: blocks)
        case .iq3_XXS: IQDequant.iq3_xxs(src, dst, blocks: blocks)
        case .iq3_S: IQDequant.iq3_s(src, dst, blocks: blocks)
        case .iq1_S: IQDequant.iq1_s(src, dst, blocks: blocks)
        case .iq1_M: IQDequant.iq1_m(src, dst, blocks: blocks)
        default: preconditionFailure("BlockCodec.dequantize called for \(type); check canDequantize first")
        }
    }
}

/// Per-thread work arrays for the quantizers; create one per worker and reuse it.
public struct QuantScratch {
    var k = KScratch()
    var iq4 = IQ4Scratch()
    var lanes = KLaneScratch()
    let weighted = WeightedScratch()
    let iq = IQScratch()
    #if !INGOT_KERNEL_VARIANT && canImport(IngotNumericsAVX2)
    var avx2: IngotNumericsAVX2.QuantScratch?
    #endif
    public init() {}
}

/// Which implementation of the kernels to run.
public enum KernelChoice: String, Sendable, CaseIterable {
    /// The scalar references (the specification).
    case reference
    /// SIMD kernels compiled for the baseline CPU of the architecture.
    case baseline
    /// The fastest variant the running CPU supports.
    case best
}

/// The process-wide kernel choice: `INGOT_KERNELS=reference|baseline|best` (default best), and
/// `INGOT_REFERENCE_KERNELS=1`, the switch that routes every kernel to its scalar reference.
public enum Kernels {
    public static let choice: KernelChoice = {
        if let v = getenv("INGOT_REFERENCE_KERNELS"), String(cString: v) == "1" { return .reference }
        if let v = getenv("INGOT_KERNELS"), let c = KernelChoice(rawValue: String(cString: v)) { return c }
        return .best
    }()

    /// What `.best` runs on this machine, for reports.
    public static var bestName: String {
        #if !INGOT_KERNEL_VARIANT && canImport(IngotNumericsAVX2)
        if CPUFeatures.hasAVX2 { return CPUFeatures.hasAVX512 ? "avx2 (matrix product avx512)" : "avx2" }
        #endif
        #if arch(x86_64)
        return "sse2"
        #elseif arch(arm64)
        return "neon"
        #else
        return "generic"
        #endif
    }
}

/// CPU features, read once from /proc/cpuinfo (Linux); absent features read as false.
enum CPUFeatures {
    static let flags: Set<Substring> = {
        #if os(Linux)
        guard let f = fopen("/proc/cpuinfo", "r") else { return [] }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 1 << 16)
        while fgets(&line, Int32(line.count), f) != nil {
            let s = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if s.hasPrefix("flags") {
                return Set(s.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == ":" }))
            }
        }
        #endif
        return []
    }()

    /// What the Haswell build of the kernels may use.
    /// Haswell's additions that the AVX2 build may use (LZCNT is listed as "abm").
    static let hasAVX2: Bool = ["avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "movbe", "abm"].allSatisfy { flags.contains(Substring($0)) }

    /// What the skylake-avx512 build of the matrix product may use (the kernel runs 512-bit F, DQ, BW and VL
    /// instructions); `INGOT_AVX512=0` turns it off, to compare with the AVX2 product.
    static let hasAVX512: Bool = {
        if let v = getenv("INGOT_AVX512"), String(cString: v) == "0" { return false }
        return hasAVX2 && ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"].allSatisfy { flags.contains(Substring($0)) }
    }()
}
