import IngotFormats
@testable import IngotNumerics
import Testing

/// The codebook quantizers against llama.cpp's bytes: fixtures/reference/iq-quantize.gguf holds rows (real weights,
/// ties, zero sub-blocks, values at each type's threshold) and what ggml_quantize_chunk made of them, with and
/// without importance weights (tools/reference/make_iq_fixture.py). Whole models are checked by
/// tools/check-calibrate.py.
@Suite struct IQQuantizeTests {
    static let file = Result { try GGUFFile(path: Fixtures.path("fixtures/reference/iq-quantize.gguf")) }

    static func floats(_ name: String) throws -> (values: [Float], columns: Int) {
        let f = try file.get()
        let t = try #require(f.tensor(named: name))
        return (Array(f.data(for: t).bindMemory(to: Float.self)), t.dimensions[0])
    }

    @Test(arguments: ["weighted", "plain"])
    func equalsLlamaCppByteForByte(_ kind: String) throws {
        let f = try Self.file.get()
        let (input, columns) = try Self.floats("input")
        let importance = kind == "weighted" ? try Self.floats("importance").values : nil
        var seen: [String] = []
        for t in f.tensors where t.name.hasPrefix(kind + ".") {
            let expected = Array(f.data(for: t).bindMemory(to: UInt8.self))
            for kernels in KernelChoice.allCases {
                let got = WeightedQuantizeTests.quantizedRows(t.type, input, columns: columns, importance: importance, kernels: kernels)
                let at = firstDifference(got, expected)
                #expect(at == nil, "\(t.name) (\(kernels)): first difference at byte \(at ?? -1), row \((at ?? 0) / (columns / 256 * t.type.bytesPerBlock))")
            }
            seen.append(t.type.name)
        }
        let all = ["IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ1_S", "IQ1_M"]
        #expect(Set(seen) == Set(kind == "weighted" ? all : ["IQ2_S", "IQ3_XXS", "IQ3_S", "IQ1_M"]))
    }

    /// Each codebook's index map: every row maps to itself, and each point off the codebook lists rows at its
    /// smallest distances, nearest first, each distance's rows in order.
    @Test func codebookMapsAndNeighbourLists() {
        for (book, rows) in [(IQCodebook.iq2xxs, 256), (.iq2xs, 512), (.iq2s, 1024), (.iq3xxs, 256), (.iq3s, 512), (.iq1s, 2048)] {
            #expect(book.rows == rows)
            var levels = [Int8](repeating: 0, count: book.width)
            for r in 0..<rows {
                for k in 0..<book.width { levels[k] = (book.points[r * book.width + k] - 1) / 2 }
                #expect(levels.withUnsafeBufferPointer { book.row(of: $0.baseAddress!) } == r)
            }
            for u in stride(from: 0, to: book.map.count, by: 5) where book.map[u] < 0 {
                let start = -Int(book.map[u]) - 1, count = Int(book.neighbours[start])
                #expect(count > 0)
                var last = (distance: -1, row: -1)
                for j in 1...count {
                    let r = Int(book.neighbours[start + j])
                    var d = 0
                    for k in 0..<book.width {
                        let p = 2 * ((u >> (book.shift * k)) & ((1 << book.shift) - 1)) + 1
                        d += (Int(book.points[r * book.width + k]) - p) * (Int(book.points[r * book.width + k]) - p)
                    }
                    #expect(d > last.distance || (d == last.distance && r > last.row), "index \(u)")
                    last = (d, r)
                }
            }
        }
    }

    /// llama.cpp asserts importance weights for IQ2_XXS, IQ2_XS and IQ1_S; Ingot's planner refuses such a tensor,
    /// and the quantizer called without weights anyway weighs every column alike instead of stopping.
    @Test func importanceOnlyTypesWithoutWeightsWeighEveryColumnAlike() throws {
        let (input, columns) = try Self.floats("input")
        let ones = [Float](repeating: 1, count: columns)
        for type in BlockCodec.importanceOnlyTypes {
            #expect(quantized(type, input, kernels: .reference)
                    == WeightedQuantizeTests.quantizedRows(type, input, columns: columns, importance: ones, kernels: .reference))
        }
    }
}

/// IQ4_NL/IQ4_XS pick levels sixteen at a time; the scalar `bestIndex` (llama.cpp's `best_index_int8`) is the
/// specification, compared here on every level, every midpoint and its neighbours, the edges, random values and NaN.
@Suite struct IQ4LevelSearch {
    @Test func sixteenAtATimeEqualsTheBinarySearch() {
        let v = LegacyQuants.kvaluesIQ4NL.map(Float.init)
        var probes: [Float] = [.nan, .infinity, -.infinity, 0, -0.0, 1e30, -1e30]
        for k in 0..<16 {
            probes += [v[k], v[k].nextUp, v[k].nextDown]
            if k > 0 { let m = (v[k - 1] + v[k]) / 2; probes += [m, m.nextUp, m.nextDown] }
        }
        var rng = SplitMix(seed: 5)
        while probes.count % 16 != 0 || probes.count < 4096 { probes.append(rng.normal() * 80) }
        var L = [UInt8](repeating: 0, count: probes.count)
        probes.withUnsafeBufferPointer { p in
            L.withUnsafeMutableBufferPointer { IQ4.levelIndices(p.baseAddress!, times: 1, probes.count, into: $0.baseAddress!) }
        }
        for c in stride(from: 0, to: probes.count, by: 16) {
            var a = SIMD16<Float>()
            for i in 0..<16 { a[i] = probes[c + i] }
            let q = IQ4.levelValues(a)
            for i in 0..<16 {
                let x = probes[c + i], want = IQ4.bestIndex(x)
                #expect(Int(L[c + i]) == want, "index of \(x)")
                if !x.isNaN { #expect(q[i] == v[want], "level value of \(x)") }
            }
        }
    }
}
