import IngotFormats
@testable import IngotNumerics
import Testing

/// The GGUF block types with their scales fixed, as GPTQ rounds them.
@Suite struct BlockGridTests {
    static let types = Array(BlockGrid.types).sorted { $0.name < $1.name }

    static func grid(_ type: GGMLType, rows: Int, cols: Int, importance: Bool) -> (grid: BlockGrid, values: [Float]) {
        let (values, weights) = WeightedQuantizeTests.inputs(columns: cols, rows: rows, seed: 5)
        let g = values.withUnsafeBufferPointer { v in weights.withUnsafeBufferPointer { w in
            BlockGrid(type, rows: rows, cols: cols, fitting: v.baseAddress!, importance: importance ? w.baseAddress! : nil, threads: 2)
        } }
        return (g!, values)
    }

    static func dequantized(_ type: GGMLType, _ bytes: [UInt8], count: Int) -> [Float] {
        var out = [Float](repeating: .nan, count: count)
        bytes.withUnsafeBytes { b in out.withUnsafeMutableBufferPointer { BlockCodec.dequantize(type, b.baseAddress!, count: count, into: $0.baseAddress!) } }
        return out
    }

    @Test("the fitted blocks are the type's quantizer's bytes, with and without an importance matrix", arguments: types)
    func fittedBytes(_ type: GGMLType) {
        for importance in [false, true] {
            let (g, values) = Self.grid(type, rows: 6, cols: 512, importance: importance)
            let (_, weights) = WeightedQuantizeTests.inputs(columns: 512, rows: 6, seed: 5)
            let reference = WeightedQuantizeTests.quantizedRows(type, values, columns: 512, importance: importance ? weights : nil, kernels: .reference)
            #expect(g.fitted == reference, "\(type.name), importance \(importance)")
        }
    }

    @Test("any codes written into the fitted blocks dequantize to the grid's values, bit for bit", arguments: types)
    func encodeMatchesValues(_ type: GGMLType) {
        let rows = 6, cols = 512
        let (g, _) = Self.grid(type, rows: rows, cols: cols, importance: false)
        var rng = SplitMix(seed: 9)
        let span = UInt64(g.hi - g.lo + 1)
        let codes = (0..<(rows * cols)).map { _ in g.lo + Int32(rng.next() % span) }
        let bytes = codes.withUnsafeBufferPointer { g.encode($0.baseAddress!) }
        let back = Self.dequantized(type, bytes, count: rows * cols)
        var wrong = 0
        for i in 0..<(rows * cols) where back[i] != g.value(codes[i], group: i / g.groupSize) { wrong += 1 }
        #expect(wrong == 0, "\(type.name): \(wrong) values differ")
        // The scales are the fitted ones: only code bytes changed.
        #expect(bytes.count == g.fitted.count)
    }

    @Test("every value rounded to its nearest level errs no more than the type's own quantizer, block by block", arguments: types)
    func nearestIsNoWorse(_ type: GGMLType) {
        let rows = 6, cols = 512
        let (g, values) = Self.grid(type, rows: rows, cols: cols, importance: false)
        let codes = (0..<(rows * cols)).map { g.code(values[$0], group: $0 / g.groupSize) }
        let ours = Self.dequantized(type, codes.withUnsafeBufferPointer { g.encode($0.baseAddress!) }, count: rows * cols)
        let theirs = Self.dequantized(type, g.fitted, count: rows * cols)
        let bs = type.blockSize
        var same = 0
        for blk in 0..<(rows * cols / bs) {
            var e0 = 0.0, e1 = 0.0
            for i in (blk * bs)..<((blk + 1) * bs) {
                let x = Double(values[i])
                e0 += (x - Double(ours[i])) * (x - Double(ours[i]))
                e1 += (x - Double(theirs[i])) * (x - Double(theirs[i]))
                if ours[i] == theirs[i] { same += 1 }
            }
            #expect(e0 <= e1 * (1 + 1e-6) + 1e-30, "\(type.name) block \(blk): \(e0) against \(e1)")
        }
        // The quantizers round to nearest against their stored scales too (the legacy ones against unrounded ones).
        #expect(Double(same) / Double(rows * cols) > 0.97, "\(type.name): \(same) of \(rows * cols) the same")
    }

    @Test("the codebook types are not column grids")
    func codebookTypes() {
        let w = [Float](repeating: 0.5, count: 256)
        for t in [GGMLType.iq2_XS, .iq2_XXS, .iq3_S, .iq1_S, .f16] {
            #expect(w.withUnsafeBufferPointer { BlockGrid(t, rows: 1, cols: 256, fitting: $0.baseAddress!) } == nil)
        }
    }
}
