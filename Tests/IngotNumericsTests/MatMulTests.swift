import IngotFormats
import IngotNumerics
import Testing

@Suite("Matrix products: SIMD kernels against the plain loops")
struct MatMulTests {
    static let lengths = [1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 63, 127, 255]
    /// Float sums in another order differ by rounding only: relative to Σ|x·w|.
    static let tolerance: Float = 1e-5

    static func values(_ n: Int, seed: UInt64) -> [Float] {
        var s = seed
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: s >> 11) % 2000) / 1000 - 1
        }
    }

    @Test("gemm equals the reference for awkward shapes", arguments: [KernelChoice.baseline, .best])
    func gemm(kernels: KernelChoice) {
        for k in MatMulTests.lengths {
            for (tokens, rows) in [(1, 1), (3, 2), (4, 3), (5, 7), (9, 13)] {
                let x = MatMulTests.values(tokens * k, seed: UInt64(k)), w = MatMulTests.values(rows * k, seed: UInt64(k + 99))
                var want = [Float](repeating: 0, count: tokens * rows), got = want
                MatMul.gemm(x, ldx: k, w, ldw: k, k: k, tokens: tokens, rows: rows, &want, ldy: rows, kernels: .reference)
                MatMul.gemm(x, ldx: k, w, ldw: k, k: k, tokens: tokens, rows: rows, &got, ldy: rows, kernels: kernels)
                for t in 0..<tokens {
                    for r in 0..<rows {
                        var scale: Float = 0
                        for i in 0..<k { scale += abs(x[t * k + i] * w[r * k + i]) }
                        #expect(abs(got[t * rows + r] - want[t * rows + r]) <= MatMulTests.tolerance * max(scale, 1e-30),
                                "k \(k) tokens \(tokens) rows \(rows) at [\(t), \(r)]")
                    }
                }
            }
        }
    }

    @Test("the product on every stored format equals dequantize-by-reference then the plain loops",
          arguments: BlockCodec.quantizable)
    func quantized(type: GGMLType) throws {
        // One partial tile of six tokens; then tiles of the panel kernel (32 rows) full and partial, with a
        // token count that leaves a remainder after its six-token blocks.
        for (cols, rows, tokens) in [(512, 29, 6), (256, 70, 13)] {
            try quantized(type: type, cols: cols, rows: rows, tokens: tokens)
        }
    }

    func quantized(type: GGMLType, cols: Int, rows: Int, tokens: Int) throws {
        let weights = MatMulTests.values(rows * cols, seed: 7)
        let bytes = type.byteCount(elements: rows * cols)!
        var stored = [UInt8](repeating: 0, count: bytes)
        var scratch = QuantScratch()
        weights.withUnsafeBufferPointer { wp in stored.withUnsafeMutableBytes { sp in
            BlockCodec.quantize(type, wp.baseAddress!, count: rows * cols, into: sp.baseAddress!, scratch: &scratch)
        } }
        let x = MatMulTests.values(tokens * cols, seed: 11)
        try stored.withUnsafeBytes { sp in
            let m = try #require(StoredMatrix(type: type, rows: rows, cols: cols, data: sp.baseAddress!))
            var want = [Float](repeating: 0, count: tokens * rows)
            QuantizedMatMul.reference(m, x, tokens: tokens, &want, ldy: rows)
            for kernels in KernelChoice.allCases {
                var got = [Float](repeating: 0, count: tokens * rows)
                QuantizedMatMul.multiply(m, x, tokens: tokens, &got, ldy: rows, workspace: MatMulWorkspace(threads: 3), kernels: kernels)
                var worst: Float = 0
                for i in 0..<got.count { worst = max(worst, abs(got[i] - want[i])) }
                // Σ|x·w| ≤ cols here (|x|, |w| ≤ 1).
                #expect(worst <= MatMulTests.tolerance * Float(cols),
                        "\(type) \(rows)x\(cols), \(tokens) tokens, \(kernels) kernels: max difference \(worst)")
            }
        }
    }

    @Test("exp, softmax and SiLU against libm")
    func activations() {
        for x in stride(from: Float(-87), through: 88, by: 0.37) {
            let got = Activations.exp(SIMD8(repeating: x))[3]
            let want = Float(Foundation_exp(Double(x)))
            #expect(abs(got - want) <= 3e-7 * want, "exp(\(x)) = \(got), want \(want)")
        }
        var row: [Float] = (0..<37).map { Float($0 % 7) - 2 }
        let raw = row
        Activations.softmax(&row, 37, scale: 0.5)
        let m = raw.max()! * 0.5
        let z = raw.map { Foundation_exp(Double($0 * 0.5 - m)) }.reduce(0, +)
        for i in 0..<37 { #expect(abs(Double(row[i]) - Foundation_exp(Double(raw[i] * 0.5 - m)) / z) < 1e-6) }
    }
}

#if canImport(Glibc)
import Glibc
func Foundation_exp(_ x: Double) -> Double { Glibc.exp(x) }
#else
import Darwin
func Foundation_exp(_ x: Double) -> Double { Darwin.exp(x) }
#endif
