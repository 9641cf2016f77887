import IngotFormats

/// A GGUF block type with its scales fixed: what GPTQ needs of a GGUF type, as `IntegerGrid` is for the integer
/// schemes. `init` quantizes the weight once with the type's own quantizer (llama-quantize's bytes, under the
/// importance matrix where one is given); every value then belongs to a group of the block (the 16 or 32 values one
/// stored scale covers), and its possible values are that group's levels: `a · level + b`, where the level is the code
/// plus a fixed shift (the affine types) or the code's entry of the non-linear table (IQ4_NL, IQ4_XS). `code` rounds
/// any float to the nearest level of a group, `value` gives what the dequantizer computes from a code, bit for bit, and
/// `encode` writes codes into the blocks with the fitted scales kept.
///
/// Only the types whose values are scalar levels of a scale take part: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, Q2_K,
/// Q3_K, Q4_K, Q5_K, Q6_K and IQ4_XS. The codebook types (IQ1, IQ2, IQ3) choose eight values at a time from a
/// lattice and are not column-wise quantizers.
public struct BlockGrid: Sendable {
    public static let types: Set<GGMLType> = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .iq4_NL, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_XS]

    public let type: GGMLType
    public let rows: Int, cols: Int
    /// Values per (a, b) pair: 16 for Q2_K, Q3_K and Q6_K, 32 for the rest.
    public let groupSize: Int
    /// The fitted blocks, rows × the row's bytes: their scales are kept by `encode`.
    public let fitted: [UInt8]
    /// Per group (row · groups + group): the step and the offset of its levels.
    let a: [Float], b: [Float]
    /// Codes lo...hi; level = code + shift for the affine types.
    let lo: Int32, hi: Int32, shift: Int32
    /// Whether the levels are `IQ4NL` table entries rather than code + shift.
    let tabled: Bool

    /// Fits `rows` × `cols` weights (`cols` a multiple of the block size) as the type's quantizer does, with
    /// `importance` (one weight per column) for the types that weigh their scales by it; nil for another type.
    public init?(_ type: GGMLType, rows: Int, cols: Int, fitting w: UnsafePointer<Float>, importance: UnsafePointer<Float>? = nil,
                 threads: Int = 1) {
        guard Self.types.contains(type), cols % type.blockSize == 0, let rowBytes = type.byteCount(elements: cols) else { return nil }
        (self.type, self.rows, self.cols) = (type, rows, cols)
        groupSize = [.q2_K, .q3_K, .q6_K].contains(type) ? 16 : 32
        tabled = type == .iq4_NL || type == .iq4_XS
        switch type {
        case .q4_0: (lo, hi, shift) = (0, 15, -8)
        case .q4_1, .iq4_NL, .iq4_XS, .q4_K: (lo, hi, shift) = (0, 15, 0)
        case .q5_0: (lo, hi, shift) = (0, 31, -16)
        case .q5_1, .q5_K: (lo, hi, shift) = (0, 31, 0)
        case .q8_0: (lo, hi, shift) = (-128, 127, 0)
        case .q2_K: (lo, hi, shift) = (0, 3, 0)
        case .q3_K: (lo, hi, shift) = (0, 7, -4)
        default: (lo, hi, shift) = (0, 63, -32)   // Q6_K
        }
        var bytes = [UInt8](repeating: 0, count: rows * rowBytes)
        let chunks = max(1, min(threads * 4, rows))
        bytes.withUnsafeMutableBytes { out in
            let O = UnsafeSendable(UnsafePointer(out.baseAddress!.assumingMemoryBound(to: UInt8.self))), W = UnsafeSendable(w)
            let I = importance.map { UnsafeSendable($0) }
            try? parallelFor(0..<chunks, threads: max(1, threads)) { part, _ in
                let r0 = rows * part / chunks, r1 = rows * (part + 1) / chunks
                guard r1 > r0 else { return }
                var scratch = QuantScratch()
                let dst = UnsafeMutableRawPointer(mutating: O.pointer) + r0 * rowBytes
                BlockCodec.quantize(type, W.pointer + r0 * cols, rows: r1 - r0, columns: cols, importance: I?.pointer, into: dst, scratch: &scratch)
            }
        }
        fitted = bytes
        let perRow = cols / groupSize, perBlock = type.blockSize / groupSize
        var a = [Float](repeating: 0, count: rows * perRow), b = [Float](repeating: 0, count: rows * perRow)
        bytes.withUnsafeBytes { raw in
            for r in 0..<rows {
                for blk in 0..<(cols / type.blockSize) {
                    let y = raw.baseAddress! + r * rowBytes + blk * type.bytesPerBlock
                    for j in 0..<perBlock {
                        (a[r * perRow + blk * perBlock + j], b[r * perRow + blk * perBlock + j]) = Self.step(type, y, group: j)
                    }
                }
            }
        }
        (self.a, self.b) = (a, b)
    }

    /// The step and offset of group `j` of the block at `y`, computed as the dequantizer computes them.
    static func step(_ type: GGMLType, _ y: UnsafeRawPointer, group j: Int) -> (Float, Float) {
        switch type {
        case .q4_0, .q5_0, .q8_0, .iq4_NL: return (loadHalf(y, 0), 0)
        case .q4_1, .q5_1: return (loadHalf(y, 0), loadHalf(y, 2))
        case .q2_K:
            let sc = y.load(fromByteOffset: j, as: UInt8.self)
            return (loadHalf(y, 80) * Float(sc & 0xF), -(loadHalf(y, 82) * Float(sc >> 4)))
        case .q3_K:
            let low = y.load(fromByteOffset: 96 + j % 8, as: UInt8.self) >> UInt8(4 * (j / 8))
            let high = y.load(fromByteOffset: 104 + j % 4, as: UInt8.self) >> UInt8(2 * (j / 4))
            return (loadHalf(y, 108) * Float(Int((low & 0xF) | ((high & 3) << 4)) - 32), 0)
        case .q4_K, .q5_K:
            let (sc, m) = KQuants.scaleMinK4(j, y + 4)
            return (loadHalf(y, 0) * Float(sc), -(loadHalf(y, 2) * Float(m)))
        case .q6_K: return (loadHalf(y, 208) * Float(y.load(fromByteOffset: 192 + j, as: Int8.self)), 0)
        default:   // IQ4_XS
            let scalesH = UInt16(littleEndian: y.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            let low = (y.load(fromByteOffset: 4 + j / 2, as: UInt8.self) >> UInt8(4 * (j % 2))) & 0xF
            let high = UInt8((scalesH >> UInt16(2 * j)) & 3)
            return (loadHalf(y, 0) * Float(Int(low | (high << 4)) - 32), 0)
        }
    }

    /// The code whose level is nearest `x` in group `g` (row · groups + group of the row).
    @inline(__always)
    public func code(_ x: Float, group g: Int) -> Int32 {
        let s = a[g]
        guard s != 0, s.isFinite else { return tabled ? 0 : Swift.max(lo, Swift.min(hi, -shift)) }
        if tabled { return Int32(IQ4.bestIndex(x / s)) }
        let level = ((x - b[g]) / s).rounded(.toNearestOrEven)
        guard level.isFinite else { return Swift.max(lo, Swift.min(hi, -shift)) }
        return Swift.max(lo, Swift.min(hi, Int32(Swift.max(-1e6, Swift.min(1e6, level))) - shift))
    }

    /// What the dequantizer computes from code `q` of group `g`.
    @inline(__always)
    public func value(_ q: Int32, group g: Int) -> Float {
        if tabled { return a[g] * Float(LegacyQuants.kvaluesIQ4NL[Int(q)]) }
        let v = a[g] * Float(q + shift)
        return b[g] == 0 ? v : v + b[g]
    }

    /// The blocks with the fitted scales and `codes` (rows × cols, each in lo...hi) as their values.
    public func encode(_ codes: UnsafePointer<Int32>) -> [UInt8] {
        var out = fitted
        let bs = type.blockSize, bpb = type.bytesPerBlock
        var levels = [Int8](repeating: 0, count: 256)
        out.withUnsafeMutableBytes { raw in
            levels.withUnsafeMutableBufferPointer { lb in
                let L = lb.baseAddress!
                for blk in 0..<(rows * cols / bs) {
                    let y = raw.baseAddress! + blk * bpb
                    let c = codes + blk * bs
                    for i in 0..<bs { L[i] = Int8(truncatingIfNeeded: c[i]) }
                    Self.pack(type, L, into: y)
                }
            }
        }
        return out
    }

    /// Writes one block's codes (0...15 or 0...31 unsigned, Q8_0 signed, Q3_K 0...7, Q6_K 0...63) where the type keeps
    /// them, leaving its scales as they are. `L` is used up.
    static func pack(_ type: GGMLType, _ L: UnsafeMutablePointer<Int8>, into y: UnsafeMutableRawPointer) {
        func nibbles(at offset: Int, _ n: Int) {
            for j in 0..<(n / 2) {
                let v = UInt8(bitPattern: L[j]) & 0xF | (UInt8(bitPattern: L[j + n / 2]) & 0xF) << 4
                y.storeBytes(of: v, toByteOffset: offset + j, as: UInt8.self)
            }
        }
        switch type {
        case .q4_0, .iq4_NL: nibbles(at: 2, 32)
        case .q4_1: nibbles(at: 4, 32)
        case .q5_0: WeightedQuants.packQ5(L, y + 2)
        case .q5_1: WeightedQuants.packQ5(L, y + 4)
        case .q8_0: for j in 0..<32 { y.storeBytes(of: L[j], toByteOffset: 2 + j, as: Int8.self) }
        case .q2_K: L.withMemoryRebound(to: UInt8.self, capacity: 256) { KQuants.packQ2K($0, y) }
        case .q3_K: KQuants.packQ3K(L, y)
        case .q4_K: L.withMemoryRebound(to: UInt8.self, capacity: 256) { KQuants.packQ4K($0, y) }
        case .q5_K: L.withMemoryRebound(to: UInt8.self, capacity: 256) { KQuants.packQ5K($0, y) }
        case .q6_K: KQuants.packQ6K(L, y)
        default:   // IQ4_XS: eight groups of 32 at 8, each as IQ4_NL's nibbles
            for ib in 0..<8 {
                for j in 0..<16 {
                    let v = UInt8(bitPattern: L[32 * ib + j]) & 0xF | (UInt8(bitPattern: L[32 * ib + j + 16]) & 0xF) << 4
                    y.storeBytes(of: v, toByteOffset: 8 + 16 * ib + j, as: UInt8.self)
                }
            }
        }
    }
}

/// A quantization of a rows × cols weight whose parameters are fixed before any value is rounded, by groups of
/// `groupSize` columns of a row: what GPTQ rounds each column with.
public protocol ColumnGrid: Sendable {
    var rows: Int { get }
    var cols: Int { get }
    var groupSize: Int { get }
    /// The code of `x` in group `g` (row · groups + group of the row).
    func code(_ x: Float, group g: Int) -> Int32
    /// The value the runtime computes from code `q` of group `g`.
    func value(_ q: Int32, group g: Int) -> Float
}

extension ColumnGrid {
    public var groups: Int { cols / groupSize }
}

extension BlockGrid: ColumnGrid {}
extension IntegerGrid: ColumnGrid {}
