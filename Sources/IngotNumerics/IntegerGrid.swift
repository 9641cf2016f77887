import IngotFormats

/// Integer quantization by groups of a row's columns, its parameters fixed from the weight before any code is chosen:
/// what GPTQ needs of a scheme. `init` fits every group's parameters as the scheme's round-to-nearest does; `code`
/// then maps any float to a code of a group, as that rule computes it, and `value` the code to what the runtime
/// computes from the stored parameters. Rounding every weight with `code` gives the scheme's round-to-nearest codes.
public struct IntegerGrid: Sendable {
    public enum Rule: Sendable, Equatable {
        /// MLX affine (`MLXAffine`): codes from the unrounded scale and bias, values from them stored in `storedAs`.
        case mlxAffine(bits: Int, storedAs: GGMLType)
        /// compressed-tensors' integers (`CompressedTensorsInt`), every step in the float type `arithmetic`.
        case compressedTensors(bits: Int, symmetric: Bool, arithmetic: GGMLType)

        /// The float type the weight is quantized in and its parameters are stored in.
        public var floatType: GGMLType {
            switch self {
            case .mlxAffine(_, let t), .compressedTensors(_, _, let t): t
            }
        }

        /// Codes are signed (compressed-tensors: -2^(b-1) ..< 2^(b-1)) rather than 0 ..< 2^b (MLX).
        public var signedCodes: Bool {
            if case .compressedTensors = self { return true }
            return false
        }
    }

    public let rule: Rule
    public let rows: Int, cols: Int, groupSize: Int
    /// Per group, row-major (rows × groups): MLX's unrounded scales and biases; compressed-tensors' scales (in T)
    /// and zero points.
    public private(set) var scales: [Float], offsets: [Float]
    /// The same as stored: MLX's rounded to their float type; compressed-tensors' as they are.
    public private(set) var storedScales: [Float], storedOffsets: [Float]

    /// Fits the groups of `rows` × `cols` weights (`cols` a multiple of `groupSize`).
    public init(_ rule: Rule, rows: Int, cols: Int, groupSize: Int, fitting w: UnsafePointer<Float>) {
        precondition(groupSize > 0 && cols % groupSize == 0, "groups must divide the rows")
        (self.rule, self.rows, self.cols, self.groupSize) = (rule, rows, cols, groupSize)
        let n = rows * (cols / groupSize)
        var s = [Float](repeating: 0, count: n), o = [Float](repeating: 0, count: n)
        for g in 0..<n {
            let x = w + g * groupSize
            switch rule {
            case .mlxAffine(let bits, _): (s[g], o[g]) = MLXAffine.parameters(x, bits: bits, groupSize: groupSize)
            case .compressedTensors(let bits, let sym, let t):
                (s[g], o[g]) = CompressedTensorsInt.parameters(x, count: groupSize, bits: bits, symmetric: sym, arithmetic: t)
            }
        }
        (scales, offsets) = (s, o)
        if case .mlxAffine(_, let t) = rule {
            (storedScales, storedOffsets) = (s.map(t.roundTrip), o.map(t.roundTrip))
        } else {
            (storedScales, storedOffsets) = (s, o)
        }
    }

    /// A grid as fitted before (`parameters` of one, in the same order).
    public init(_ rule: Rule, rows: Int, cols: Int, groupSize: Int, parameters p: [[Float]]) {
        precondition(groupSize > 0 && cols % groupSize == 0 && p.count == 4 && p.allSatisfy { $0.count == rows * cols / groupSize },
                     "parameters of another grid")
        (self.rule, self.rows, self.cols, self.groupSize) = (rule, rows, cols, groupSize)
        (scales, offsets, storedScales, storedOffsets) = (p[0], p[1], p[2], p[3])
    }

    /// Every group's parameters: scales, offsets, stored scales, stored offsets.
    public var parameters: [[Float]] { [scales, offsets, storedScales, storedOffsets] }

    /// The code of `x` in group `g` (row · groups + group of the row).
    @inline(__always)
    public func code(_ x: Float, group g: Int) -> Int32 {
        switch rule {
        case .mlxAffine(let bits, _): MLXAffine.code(x, scale: scales[g], bias: offsets[g], bits: bits)
        case .compressedTensors(let bits, let sym, let t):
            CompressedTensorsInt.code(x, scale: scales[g], zeroPoint: offsets[g], bits: bits, symmetric: sym, arithmetic: t)
        }
    }

    /// The value code `q` of group `g` stands for.
    @inline(__always)
    public func value(_ q: Int32, group g: Int) -> Float {
        switch rule {
        case .mlxAffine: storedScales[g] * Float(q) + storedOffsets[g]
        case .compressedTensors(_, _, let t): CompressedTensorsInt.value(q, scale: scales[g], zeroPoint: offsets[g], arithmetic: t)
        }
    }

    /// Every value of the `rows` × `cols` weights at `x` replaced in place by what its code stands for:
    /// `value(code(x, g), g)` for each, with the rule chosen once per group rather than per value.
    public func roundTrip(_ x: UnsafeMutablePointer<Float>) {
        let k = groups
        for g in 0..<(rows * k) {
            let p = x + (g / k) * cols + (g % k) * groupSize
            switch rule {
            case .mlxAffine(let bits, _):
                let (s, b, ss, sb) = (scales[g], offsets[g], storedScales[g], storedOffsets[g])
                let top = Float((1 << bits) - 1)
                for j in 0..<groupSize {
                    let q = Swift.min(Swift.max(((p[j] - b) / s).rounded(.toNearestOrEven), 0), top)
                    p[j] = ss * q + sb
                }
            case .compressedTensors(let bits, let symmetric, let t):
                let (s, zp) = (scales[g], offsets[g])
                let lo = -Float(1 << (bits - 1)), hi = Float((1 << (bits - 1)) - 1)
                for j in 0..<groupSize {
                    var v = t.roundTrip(p[j] / s)
                    if !symmetric { v = t.roundTrip(v + zp) }
                    let q = Swift.min(Swift.max(v, lo), hi).rounded(.toNearestOrEven)
                    p[j] = t.roundTrip((q - zp) * s)
                }
            }
        }
    }

    /// The grid with its rows reordered: row r of the result is row `order[r]` of this one.
    public func reordered(rows order: [Int]) -> IntegerGrid {
        var g = self
        let k = groups
        for (r, src) in order.enumerated() {
            for j in 0..<k {
                g.scales[r * k + j] = scales[src * k + j]
                g.offsets[r * k + j] = offsets[src * k + j]
                g.storedScales[r * k + j] = storedScales[src * k + j]
                g.storedOffsets[r * k + j] = storedOffsets[src * k + j]
            }
        }
        return g
    }
}
