import IngotFormats

/// MLX's affine quantization (`mlx.core.quantize`, mode `affine`, as its CPU backend computes it): each group of
/// `groupSize` consecutive values of a row is stored as `bits`-bit integers q with w ≈ scale · q + bias.
///
///     n = 2^bits - 1
///     lo, hi = min and max of the group
///     scale = max((hi - lo) / n, 1e-7), negated unless |lo| > |hi|
///     edge = lo if |lo| > |hi| else hi;  q0 = rint(edge / scale)
///     if q0 != 0: scale = edge / q0, bias = edge  (the edge value is then exact)  else bias = 0
///     q = clamp(rint((w - bias) / scale), 0, n)
///
/// in Float, ties to even, scale and bias then stored in the weight's float type. Packing: 2, 4 and 8 bits fill
/// little-endian 32-bit words from the low bits (32 / bits values per word); 3 and 5 bits pack 8 values into 3 and
/// 5 bytes, 6 bits 4 values into 3 bytes, again from the low bits. The packed bytes are read as uint32 words.
public enum MLXAffine {
    public static let supportedBits = [2, 3, 4, 5, 6, 8]
    public static let supportedGroups = [32, 64, 128]

    /// Bytes of packed codes per group.
    public static func bytesPerGroup(bits: Int, groupSize: Int) -> Int { groupSize * bits / 8 }

    /// Quantizes `rows` rows of `cols` values (cols a multiple of `groupSize`): the packed codes, and each group's
    /// scale and bias as Floats (before rounding to the stored type; `storedAs` rounds them the way MLX stores them,
    /// so that the codes are computed from the unrounded values, as MLX computes them).
    public static func quantize(_ w: UnsafePointer<Float>, rows: Int, cols: Int, bits: Int, groupSize: Int,
                                storedAs: GGMLType, threads: Int = 1) -> (packed: [UInt8], scales: [Float], biases: [Float]) {
        let groups = rows * cols / groupSize
        let groupBytes = bytesPerGroup(bits: bits, groupSize: groupSize)
        var packed = [UInt8](repeating: 0, count: groups * groupBytes)
        var scales = [Float](repeating: 0, count: groups), biases = [Float](repeating: 0, count: groups)
        packed.withUnsafeMutableBufferPointer { p in scales.withUnsafeMutableBufferPointer { s in biases.withUnsafeMutableBufferPointer { b in
            let ws = UnsafeSendable(w), ps = UnsafeSendable(UnsafePointer(p.baseAddress!))
            let ss = UnsafeSendable(UnsafePointer(s.baseAddress!)), bs = UnsafeSendable(UnsafePointer(b.baseAddress!))
            // Groups are independent: each worker takes a contiguous share (the bytes do not depend on the split).
            let workers = max(1, min(threads, groups / 256))
            try? parallelFor(0..<workers, threads: workers) { k, _ in
                let g0 = groups * k / workers, g1 = groups * (k + 1) / workers
                for g in g0..<g1 {
                    let (scale, bias) = quantizeGroup(ws.pointer + g * groupSize, bits: bits, groupSize: groupSize,
                                                      into: UnsafeMutablePointer(mutating: ps.pointer) + g * groupBytes)
                    UnsafeMutablePointer(mutating: ss.pointer)[g] = storedAs.roundTrip(scale)
                    UnsafeMutablePointer(mutating: bs.pointer)[g] = storedAs.roundTrip(bias)
                }
            }
        } } }
        return (packed, scales, biases)
    }

    /// One group: its codes packed into `out`, and its scale and bias before rounding to the stored type.
    static func quantizeGroup(_ x: UnsafePointer<Float>, bits: Int, groupSize: Int, into out: UnsafeMutablePointer<UInt8>) -> (Float, Float) {
        let (scale, bias) = parameters(x, bits: bits, groupSize: groupSize)
        pack(groupSize, bits: bits, into: out) { j in code(x[j], scale: scale, bias: bias, bits: bits) }
        return (scale, bias)
    }

    /// A group's scale and bias, before rounding to the stored type (the codes are computed from these).
    public static func parameters(_ x: UnsafePointer<Float>, bits: Int, groupSize: Int) -> (scale: Float, bias: Float) {
        let levels = Float((1 << bits) - 1)
        var lo = Float.infinity, hi = -Float.infinity
        for j in 0..<groupSize {
            hi = Swift.max(hi, x[j])
            lo = Swift.min(lo, x[j])
        }
        let lowEdge = abs(lo) > abs(hi)
        var scale = Swift.max((hi - lo) / levels, 1e-7)
        if !lowEdge { scale = -scale }
        let edge = lowEdge ? lo : hi
        let q0 = (edge / scale).rounded(.toNearestOrEven)
        var bias: Float = 0
        if q0 != 0 {
            scale = edge / q0
            bias = edge
        }
        return (scale, bias)
    }

    /// The code of `x` in a group of this scale and bias: clamp(rint((x - bias) / scale), 0, 2^bits - 1).
    @inline(__always)
    public static func code(_ x: Float, scale: Float, bias: Float, bits: Int) -> Int32 {
        Int32(Swift.min(Swift.max(((x - bias) / scale).rounded(.toNearestOrEven), 0), Float((1 << bits) - 1)))
    }

    /// Packs `count` codes (`code(j)` for j < count, each below 2^bits) into `out` as MLX stores them.
    @inline(__always)
    public static func pack(_ count: Int, bits: Int, into out: UnsafeMutablePointer<UInt8>, _ code: (Int) -> Int32) {
        // Values per pack and bytes per pack.
        let (perPack, packBytes): (Int, Int) = bits == 3 ? (8, 3) : bits == 5 ? (8, 5) : bits == 6 ? (4, 3) : (32 / bits, 4)
        for p in 0..<(count / perPack) {
            var word: UInt64 = 0
            for k in 0..<perPack { word |= UInt64(UInt32(bitPattern: code(p * perPack + k))) << UInt64(k * bits) }
            for b in 0..<packBytes { out[p * packBytes + b] = UInt8(truncatingIfNeeded: word >> UInt64(8 * b)) }
        }
    }

    /// Values of `count` codes of one row starting at group `firstGroup`: scale · q + bias, in Float.
    public static func dequantize(_ packed: UnsafePointer<UInt8>, scales: UnsafePointer<Float>, biases: UnsafePointer<Float>,
                                  groups: Int, bits: Int, groupSize: Int, into out: UnsafeMutablePointer<Float>) {
        let groupBytes = bytesPerGroup(bits: bits, groupSize: groupSize)
        let (perPack, packBytes): (Int, Int) = bits == 3 ? (8, 3) : bits == 5 ? (8, 5) : bits == 6 ? (4, 3) : (32 / bits, 4)
        let mask = UInt64((1 << bits) - 1)
        for g in 0..<groups {
            let base = packed + g * groupBytes
            let s = scales[g], b = biases[g]
            for p in 0..<(groupSize / perPack) {
                var word: UInt64 = 0
                for k in 0..<packBytes { word |= UInt64(base[p * packBytes + k]) << UInt64(8 * k) }
                for k in 0..<perPack {
                    out[g * groupSize + p * perPack + k] = s * Float((word >> UInt64(k * bits)) & mask) + b
                }
            }
        }
    }
}

/// An MLX affine weight as stored (packed codes, one scale and bias per group of each row): decodes rows of floats.
public struct MLXAffineMatrix: RowDecoder, @unchecked Sendable {
    public let data: UnsafeRawPointer
    public let rows: Int, cols: Int
    public let bits: Int, groupSize: Int
    /// Per group, row-major: rows × cols / groupSize values each.
    public let scales: [Float], biases: [Float]

    public init(data: UnsafeRawPointer, rows: Int, cols: Int, bits: Int, groupSize: Int, scales: [Float], biases: [Float]) {
        (self.data, self.rows, self.cols, self.bits, self.groupSize) = (data, rows, cols, bits, groupSize)
        (self.scales, self.biases) = (scales, biases)
    }

    public var scheme: String { "mlx affine \(bits)-bit, group \(groupSize)" }

    public func decodeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        let groups = cols / groupSize, rowBytes = cols * bits / 8
        scales.withUnsafeBufferPointer { s in biases.withUnsafeBufferPointer { b in
            MLXAffine.dequantize(data.assumingMemoryBound(to: UInt8.self) + r * rowBytes, scales: s.baseAddress! + r * groups,
                                 biases: b.baseAddress! + r * groups, groups: groups, bits: bits, groupSize: groupSize, into: out)
        } }
    }
}

extension GGMLType {
    /// `x` stored in this float type and read back (F16, BF16 round to nearest even; other types keep it). Inlinable:
    /// quantizers call it per value, from other modules too.
    @inlinable @inline(__always)
    public func roundTrip(_ x: Float) -> Float {
        switch self {
        case .f16: halfToFloat(floatToHalf(x))
        case .bf16: bfloat16ToFloat(floatToBFloat16(x))
        default: x
        }
    }

    /// The distance from 1 to the next larger value of this float type (F16 2^-10, BF16 2^-7, else F32's), what
    /// PyTorch's `finfo(dtype).eps` gives.
    public var machineEpsilon: Float { self == .f16 ? 0x1p-10 : self == .bf16 ? 0x1p-7 : Float.ulpOfOne }
}
