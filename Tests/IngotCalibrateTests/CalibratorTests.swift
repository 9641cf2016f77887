@testable import IngotCalibrate
import IngotFormats
import IngotModel
import Testing

@Suite("Calibration statistics")
struct CalibratorTests {
    @Test("sums of squares per column and token counts, as llama-imatrix accumulates them; small products and the output skipped")
    func squareSums() {
        let columns = 5, rows = 16
        let x: [Float] = (0..<(rows * columns)).map { Float($0 % 7) - 3 }
        let s = SquareSums(processOutput: false)
        x.withUnsafeBufferPointer { xp in
            s.observe("blk.0.attn_q.weight", matrix: nil, input: xp, rows: rows, columns: columns)
            s.observe("blk.0.attn_q.weight", matrix: nil, input: xp, rows: rows, columns: columns)
            // Fewer than 16 rows: llama-imatrix's scheduler is not asked for them.
            s.observe("blk.0.attn_k.weight", matrix: nil, input: UnsafeBufferPointer(rebasing: xp[0..<(15 * columns)]), rows: 15, columns: columns)
            s.observe("output.weight", matrix: nil, input: xp, rows: rows, columns: columns)
        }
        let e = s.entries()
        #expect(Set(e.keys) == ["blk.0.attn_q.weight"])
        let q = e["blk.0.attn_q.weight"]!
        #expect(q.counts == [32])
        for j in 0..<columns {
            let expected = 2 * (0..<rows).reduce(Float(0)) { acc, r in acc + x[r * columns + j] * x[r * columns + j] }
            #expect(q.sums[j] == expected)
        }
        let withOutput = SquareSums(processOutput: true)
        x.withUnsafeBufferPointer { withOutput.observe("output.weight", matrix: nil, input: $0, rows: rows, columns: columns) }
        #expect(withOutput.entries()["output.weight"]?.counts == [16])
    }

    @Test("experts: one row of sums and one count per expert, however few the rows (llama-imatrix's MUL_MAT_ID)")
    func expertSums() {
        let columns = 3
        let x: [Float] = [1, 2, 3, -1, 0, 2]
        let s = SquareSums(processOutput: false)
        x.withUnsafeBufferPointer { xp in
            s.observe("blk.1.ffn_up_exps.weight", matrix: MatrixIndex(index: 2, count: 4, routed: true), input: xp, rows: 2, columns: columns)
            s.observe("blk.1.ffn_up_exps.weight", matrix: MatrixIndex(index: 0, count: 4, routed: true),
                      input: UnsafeBufferPointer(rebasing: xp[0..<3]), rows: 1, columns: columns)
        }
        let e = s.entries()["blk.1.ffn_up_exps.weight"]
        #expect(e?.counts == [1, 0, 2, 0])
        #expect(e?.sums == [1, 4, 9, 0, 0, 0, 2, 4, 13, 0, 0, 0])
    }

    @Test("expert outputs: every expert runs on every (experts / used)-th token; their means are what merging compares")
    func sampledOutputs() {
        let s = SquareSums(processOutput: false)
        #expect(s.outputSampleStride(experts: 8, used: 2) == 4 && s.outputSampleStride(experts: 256, used: 8) == 32)
        #expect(s.outputSampleStride(experts: 3, used: 2) == 2 && s.outputSampleStride(experts: 4, used: 4) == 1)
        // Two windows of one block of 2 experts, 2 wide: 2 sampled tokens, then 1.
        let w1: [[Float]] = [[1, 2, 3, 4], [0, 0, 1, 1]], w2: [[Float]] = [[4, 5], [2, 2]]
        for (window, rows) in [(w1, 2), (w2, 1)] {
            s.routed(block: 3, expert: 0, of: 2, weights: UnsafeBufferPointer(start: nil, count: 0), outputNorms: UnsafeBufferPointer(start: nil, count: 0))
            for (e, out) in window.enumerated() {
                out.withUnsafeBufferPointer { s.sampled(block: 3, expert: e, of: 2, outputs: $0, rows: rows) }
            }
        }
        // Expert 0: (1 + 3 + 4) / 3 and (2 + 4 + 5) / 3; expert 1: (0 + 1 + 2) / 3 twice.
        let st = s.expertStatistics[3]
        #expect(st?.outputWidth == 2)
        #expect(st?.outputMeans == [Float(8.0 / 3), Float(11.0 / 3), 1, 1])
    }

    @Test("a non-finite input is caught and named")
    func nonFinite() {
        var x = [Float](repeating: 1, count: 16 * 4)
        x[9] = .infinity
        let s = SquareSums(processOutput: false)
        x.withUnsafeBufferPointer { s.observe("blk.2.ffn_down.weight", matrix: nil, input: $0, rows: 16, columns: 4) }
        #expect(s.firstNonFinite() == "blk.2.ffn_down.weight")
    }
}
