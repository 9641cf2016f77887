import IngotFormats
import IngotNumerics
import Testing

@Suite("Non-finite values: found wherever they are, never rounded away")
struct NonFiniteTests {
    @Test("the first NaN or infinity, at every position of buffers of awkward lengths")
    func first() {
        for count in [1, 15, 16, 17, 1023, 1024, 1025, 2100] {
            var x = (0..<count).map { Float($0 % 7) - 3 }
            #expect(x.withUnsafeBufferPointer { NonFinite.first($0.baseAddress!, count: count) } == nil)
            for k in Set([0, count / 2, count - 1]) {
                for bad in [Float.nan, .infinity, -.infinity] {
                    x[k] = bad
                    if k + 1 < count { x[count - 1] = .nan }
                    #expect(x.withUnsafeBufferPointer { NonFinite.first($0.baseAddress!, count: count) } == k)
                    x = (0..<count).map { Float($0 % 7) - 3 }
                }
            }
            // The largest finite values are not taken for infinities.
            x[count - 1] = .greatestFiniteMagnitude
            #expect(x.withUnsafeBufferPointer { NonFinite.first($0.baseAddress!, count: count) } == nil)
        }
    }

    @Test("the first bad row of a quantized tensor: a NaN block scale of Q8_0")
    func quantizedRow() {
        let columns = 64, rows = 5
        var floats = (0..<(rows * columns)).map { Float($0 % 11) / 4 - 1 }
        var q8 = [UInt8](repeating: 0, count: rows * columns / 32 * 34)
        var scratch = QuantScratch()
        floats.withUnsafeBufferPointer { f in
            q8.withUnsafeMutableBytes { BlockCodec.quantize(.q8_0, f.baseAddress!, count: rows * columns, into: $0.baseAddress!, scratch: &scratch) }
        }
        #expect(q8.withUnsafeBytes { NonFinite.firstRow(.q8_0, $0.baseAddress!, rows: rows, columns: columns) } == nil)
        // Row 3, second block: its F16 scale set to NaN (0x7E00).
        let block = 3 * 2 + 1
        q8[block * 34] = 0x00
        q8[block * 34 + 1] = 0x7E
        let bad = q8.withUnsafeBytes { NonFinite.firstRow(.q8_0, $0.baseAddress!, rows: rows, columns: columns) }
        #expect(bad?.row == 3 && bad.map { $0.column >= 32 } == true && bad?.value.isNaN == true)
        floats[0] = .infinity
        let f32 = floats.withUnsafeBytes { NonFinite.firstRow(.f32, $0.baseAddress!, rows: rows, columns: columns) }
        #expect(f32?.row == 0 && f32?.column == 0 && f32?.value == .infinity)
    }

    @Test("empty buffers and buffers shorter than their shape are read only as far as they go")
    func bounds() {
        #expect(NonFinite.first(in: [Float]()) == nil)
        #expect(NonFinite.firstRow(.f32, UnsafeRawBufferPointer(start: nil, count: 0), rows: 3, columns: 4) == nil)
        // Two whole rows of four floats, the second holding a NaN, and a shape that claims ten rows.
        let floats: [Float] = [0, 1, 2, 3, 4, .nan, 6, 7, 8]
        let bad = floats.withUnsafeBytes { NonFinite.firstRow(.f32, $0, rows: 10, columns: 4) }
        #expect(bad?.row == 1 && bad?.column == 1)
        let clean: [Float] = [0, 1, 2, 3, 4, 5, 6, 7, .nan]
        #expect(clean.withUnsafeBytes { NonFinite.firstRow(.f32, $0, rows: 10, columns: 4) } == nil)
    }

    @Test("activations holding a NaN are not rounded into finite codes before a quantized product")
    func activationRounding() {
        var x = (0..<64).map { Float($0) / 10 }
        x[5] = .nan
        ActivationRounding.round(&x, count: 64, cols: 64, for: .q4_0)
        #expect(x[5].isNaN && x[6] == Float(6) / 10)
        var y = (0..<64).map { Float($0) / 10 }
        ActivationRounding.round(&y, count: 64, cols: 64, for: .q4_0)
        #expect(y.allSatisfy(\.isFinite) && y != (0..<64).map { Float($0) / 10 })
    }
}
