import IngotFormats
@testable import IngotNumerics
import Testing

/// The importance-weighted quantizers (llama-quantize with `--imatrix`); their bytes against llama.cpp's are checked
/// by tools/check-calibrate.py on real models.
@Suite struct WeightedQuantizeTests {
    static func quantizedRows(_ type: GGMLType, _ values: [Float], columns: Int, importance: [Float]?,
                              kernels: KernelChoice) -> [UInt8] {
        let rows = values.count / columns
        var out = [UInt8](repeating: 0xAA, count: rows * columns / type.blockSize * type.bytesPerBlock)
        var scratch = QuantScratch()
        values.withUnsafeBufferPointer { v in out.withUnsafeMutableBytes { o in
            if let importance {
                importance.withUnsafeBufferPointer { w in
                    BlockCodec.quantize(type, v.baseAddress!, rows: rows, columns: columns, importance: w.baseAddress!,
                                        into: o.baseAddress!, scratch: &scratch, kernels: kernels)
                }
            } else {
                BlockCodec.quantize(type, v.baseAddress!, rows: rows, columns: columns, importance: nil,
                                    into: o.baseAddress!, scratch: &scratch, kernels: kernels)
            }
        } }
        return out
    }

    /// Rows of typical weights, zeros, special values; importance heavy-tailed and positive.
    static func inputs(columns: Int, rows: Int, seed: UInt64) -> (values: [Float], importance: [Float]) {
        var rng = SplitMix(seed: seed)
        var values = (0..<(rows * columns)).map { _ in rng.normal() * 0.02 }
        for j in 0..<columns { values[j] = 0 }                               // an all-zero row
        for j in stride(from: 0, to: columns, by: 7) { values[columns + j] = [1e-30, -65504, 3e-8][j % 3] }
        let importance = (0..<columns).map { _ -> Float in let u = Float(rng.next() % 1000) / 1000; return 0.01 + 4 * u * u * u }
        return (values, importance)
    }

    @Test(arguments: Array(BlockCodec.weightedTypes).sorted { $0.name < $1.name })
    func everyBuildGivesTheSameBytes(_ type: GGMLType) {
        let columns = 2 * max(256, type.blockSize)
        let (values, importance) = Self.inputs(columns: columns, rows: 6, seed: 41)
        let ref = Self.quantizedRows(type, values, columns: columns, importance: importance, kernels: .reference)
        for k in [KernelChoice.baseline, .best] {
            #expect(ref == Self.quantizedRows(type, values, columns: columns, importance: importance, kernels: k),
                    "\(type) \(k)")
        }
        // Without importance the row entry point is the plain quantizer.
        #expect(Self.quantizedRows(type, values, columns: columns, importance: nil, kernels: .reference)
                == quantized(type, values, kernels: .reference))
    }

    /// What the weights are for: the error on the columns that matter shrinks. Over many rows, the importance-
    /// weighted squared error of the weighted quantizer is below the plain quantizer's.
    @Test(arguments: Array(BlockCodec.weightedTypes).sorted { $0.name < $1.name })
    func importanceLowersTheWeightedError(_ type: GGMLType) {
        let columns = 512, rows = 48
        var rng = SplitMix(seed: 7)
        let values = (0..<(rows * columns)).map { _ in rng.normal() * 0.02 }
        // A few columns carry almost all the importance, as real activations' outlier channels do.
        let importance = (0..<columns).map { j -> Float in j % 16 == 3 ? 100 : 0.1 }
        func weightedError(_ bytes: [UInt8]) -> Double {
            let back = bytes.withUnsafeBytes { dequantized(type, $0, count: values.count, kernels: .reference) }
            var e = 0.0
            for i in 0..<values.count { let d = Double(back[i] - values[i]); e += Double(importance[i % columns]) * d * d }
            return e
        }
        let plain = weightedError(quantized(type, values, kernels: .reference))
        let weighted = weightedError(Self.quantizedRows(type, values, columns: columns, importance: importance, kernels: .reference))
        #expect(weighted < plain, "\(type): weighted error \(weighted), plain \(plain)")
    }
}
