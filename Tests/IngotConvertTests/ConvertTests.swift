@testable import IngotConvert
import IngotArchitectures
import IngotFormats
import IngotModel
import IngotNumerics
import Testing

@Suite("Conversion pieces")
struct ConvertTests {
    @Test("The q/k row permutation to GGUF and back is llama.cpp's permute and its inverse")
    func permutation() {
        // llama.cpp: w.reshape(heads, 2, d/2, cols).swapaxes(1, 2): GGUF row (h, 2i + j) is HF row (h, j·d/2 + i).
        for d in [2, 4, 8, 64] {
            for heads in [1, 3] {
                let rows = heads * d
                let toGGUF = (0..<rows).map { ConversionScratch.sourceRow($0, rowsPerHead: d, toGGUF: true) }
                let fromGGUF = (0..<rows).map { ConversionScratch.sourceRow($0, rowsPerHead: d, toGGUF: false) }
                var expected: [Int] = []
                for h in 0..<heads { for i in 0..<(d / 2) { for j in 0..<2 { expected.append(h * d + j * (d / 2) + i) } } }
                #expect(toGGUF == expected)
                #expect((0..<rows).map { fromGGUF[toGGUF[$0]] } == Array(0..<rows))
            }
        }
    }

    @Test("Latent attention's kv_b splits into k_b (each head transposed) and v_b as llama.cpp stores them, and joins back")
    func latentKVSplit() throws {
        let (heads, nope, v, lora) = (3, 4, 2, 8)
        let rows = heads * (nope + v)
        var values = (0..<(rows * lora)).map { Float($0) }
        var spec = ModelSpec()
        spec[.keyLengthMLA] = .int(nope + 5)
        spec[.valueLengthMLA] = .int(v)
        spec[.ropeDimensionCount] = .int(5)
        spec[.headCount] = .int(heads)
        func collect(_ t: PlannedTensor) throws -> [Float] {
            var scratch = ConversionScratch(), bytes: [UInt8] = []
            for p in t.parts { try scratch.produce(p, as: .f32) { bytes.append(contentsOf: $0) } }
            return bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        try values.withUnsafeBytes { raw in
            let kvb = SourceTensor(name: "model.layers.0.self_attn.kv_b_proj.weight", type: .f32, dims: [lora, rows],
                                   data: raw.baseAddress!, byteCount: raw.count, entryOffset: nil, file: "x")
            let split = try Converter.splitLatentKV(kvb, layer: 0, type: .f32, spec: spec, path: "x")
            #expect(split.map(\.name) == ["blk.0.attn_k_b.weight", "blk.0.attn_v_b.weight"])
            #expect(split[0].dims == [nope, lora, heads] && split[1].dims == [lora, v, heads])
            let k = try collect(split[0]), vb = try collect(split[1])
            // k_b[h][c][r] = kv_b[h·(nope+v) + r][c]; v_b[h][r][c] = kv_b[h·(nope+v) + nope + r][c].
            for h in 0..<heads { for c in 0..<lora { for r in 0..<nope {
                #expect(k[(h * lora + c) * nope + r] == values[(h * (nope + v) + r) * lora + c])
            } } }
            for h in 0..<heads { for r in 0..<v { for c in 0..<lora {
                #expect(vb[(h * v + r) * lora + c] == values[(h * (nope + v) + nope + r) * lora + c])
            } } }
            try k.withUnsafeBytes { kr in try vb.withUnsafeBytes { vr in
                let ks = SourceTensor(name: "blk.0.attn_k_b.weight", type: .f32, dims: [nope, lora, heads], data: kr.baseAddress!,
                                      byteCount: kr.count, entryOffset: nil, file: "x")
                let vs = SourceTensor(name: "blk.0.attn_v_b.weight", type: .f32, dims: [lora, v, heads], data: vr.baseAddress!,
                                      byteCount: vr.count, entryOffset: nil, file: "x")
                let joined = try Converter.joinLatentKV(k: ks, v: vs, name: "kv", type: .f32, path: "x")
                #expect(joined.dims == [lora, rows])
                #expect(try collect(joined) == values)
            } }
            // A row count that is not heads x (nope + v) is a typed error.
            spec[.headCount] = .int(heads + 1)
            #expect(throws: ModelError.self) { try Converter.splitLatentKV(kvb, layer: 0, type: .f32, spec: spec, path: "x") }
        }
        values.removeAll()
    }

    @Test("FP8 codes decode to the values ml_dtypes gives")
    func fp8Codes() {
        let t = FP8.e4m3fnTable
        #expect(t[0x00] == 0 && t[0x80] == 0 && t[0x80].sign == .minus)
        #expect(t[0x38] == 1)               // exponent 7 = bias
        #expect(t[0x7E] == 448)             // S.1111.110: the largest finite value
        #expect(t[0x7F].isNaN && t[0xFF].isNaN)
        #expect(t[0x01] == 0x1p-9)          // smallest subnormal
        #expect(t[0x08] == 0x1p-6)          // smallest normal
        #expect(t[0xC4] == -3)
        let e5 = FP8.e5m2Table
        #expect(e5[0x3C] == 1 && e5[0x7B] == 57344 && e5[0x7C] == .infinity && e5[0x7D].isNaN)
    }

    @Test("FP8, E2M1 and E8M0 encoding: every finite FP8 code round-trips; a million floats give ml_dtypes' codes (FP8 overflow saturates)")
    func fp8Encoding() throws {
        for f in [FP8.Format.e4m3fn, .e5m2] {
            let table = FP8.table(f)
            for code in 0..<256 where table[code].isFinite {
                // -0 and +0 keep their sign bit.
                #expect(FP8.encode(table[code], f) == UInt8(code), "\(f) code \(code)")
            }
            #expect(FP8.encode(.infinity, f) == (f == .e4m3fn ? 0x7E : 0x7B))
            #expect(FP8.encode(-1e30, f) == (f == .e4m3fn ? 0xFE : 0xFB))
            #expect(table[Int(FP8.encode(.nan, f))].isNaN)
        }
        #expect(FP8.encode(0x1p-10, .e4m3fn) == 0x00)      // half the smallest subnormal: a tie, to even (zero)
        #expect(FP8.encode(0x1.8p-9, .e4m3fn) == 0x02)     // 1.5 units: a tie, to even (2)
        #expect(FP8.encode(1.0625, .e4m3fn) == 0x38)       // halfway between 1 and 1.125: to even (1)
        #expect(FP8.encode(1.1875, .e4m3fn) == 0x3A)       // halfway between 1.125 and 1.25: to even (1.25)
        // fixtures/reference/fp8-codes.json: tools/reference/fp8_codes.py (ml_dtypes, the same generator).
        let root = String(#filePath).split(separator: "/").dropLast(3).joined(separator: "/")
        let file = try MappedFile(path: "/" + root + "/fixtures/reference/fp8-codes.json")
        let ref = try withExtendedLifetime(file) { try JSONParser.parse(file.bytes, field: "fixture") }
        let count = try #require(ref["count"]?.intValue), seed = UInt64(try #require(ref["seed"]?.intValue))
        let formats: [(String, (Float) -> UInt8, Int, Int, UInt32)] = [
            ("e4m3fn", { FP8.encode($0, .e4m3fn) }, -12, 9, 20), ("e5m2", { FP8.encode($0, .e5m2) }, -19, 16, 21),
            ("e2m1fn", E2M1.encode, -4, 3, 22), ("e8m0fnu", E8M0.encode, -127, 127, 23),
        ]
        for (name, encode, lo, hi, shift) in formats {
            var codes: [UInt8] = []
            codes.reserveCapacity(count)
            for i in 1...UInt64(count) {
                var z = seed &+ i &* 0x9E37_79B9_7F4A_7C15
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                z ^= z >> 31
                let low = UInt32(truncatingIfNeeded: z)
                let sign = UInt32((z >> 61) & 1) << 31
                let exponent = UInt32(Int((z >> 32) % UInt64(hi - lo + 1)) + lo + 127)
                let mantissa = low & 0x7F_FFFF
                let bits: UInt32
                switch z >> 62 {
                case 0: bits = low
                case 3: bits = sign | exponent << 23 | (mantissa & ~((1 << shift) - 1)) | (1 << (shift - 1))
                default: bits = sign | exponent << 23 | mantissa
                }
                let x = Float(bitPattern: bits)
                if !x.isNaN { codes.append(encode(x)) }
            }
            let want = ref["formats"]?[name]
            #expect(codes.count == want?["non_nan"]?.intValue)
            #expect(codes.prefix(16).map { JSONValue(Int($0)) } == want?["first_codes"]?.arrayValue)
            #expect(SHA256.hex(codes) == want?["sha256"]?.stringValue, "\(name): codes differ from ml_dtypes'")
        }
    }

    @Test("MLX affine: values within half a step of the representable range, exact on a grid, every bit width read back")
    func mlxAffine() {
        for bits in MLXAffine.supportedBits {
            for group in [32, 64] {
                let rows = 3, cols = 2 * group
                // Deterministic values of varied sign and size.
                var w = (0..<(rows * cols)).map { (i: Int) -> Float in Float((i * 7919) % 201 - 100) / 37 * Float(1 + i % 5) }
                // One group on the integer grid 0, 1, ... (mod levels + 1).
                let levels = (1 << bits) - 1
                for j in 0..<group { w[j] = Float(j % (levels + 1)) }
                let r = w.withUnsafeBufferPointer {
                    MLXAffine.quantize($0.baseAddress!, rows: rows, cols: cols, bits: bits, groupSize: group, storedAs: .f32)
                }
                #expect(r.packed.count == rows * cols * bits / 8)
                var back = [Float](repeating: 0, count: rows * cols)
                r.packed.withUnsafeBytes { raw in
                    let m = MLXAffineMatrix(data: raw.baseAddress!, rows: rows, cols: cols, bits: bits, groupSize: group,
                                            scales: r.scales, biases: r.biases)
                    back.withUnsafeMutableBufferPointer { b in for row in 0..<rows { m.decodeRow(row, into: b.baseAddress! + row * cols) } }
                }
                if levels < group {   // the group spans every level 0...levels: scale 1 and bias 0, exact
                    #expect(Array(back[0..<group]) == Array(w[0..<group]), "\(bits)-bit grid group")
                }
                for g in 0..<(rows * cols / group) {
                    // MLX makes one edge of the group exact and lets the far one clamp: compare with the value clamped
                    // to the range the codes span.
                    let step = abs(r.scales[g]), a = r.biases[g], z = r.biases[g] + Float(levels) * r.scales[g]
                    for j in 0..<group {
                        let i = g * group + j
                        let clamped = min(max(w[i], min(a, z)), max(a, z))
                        #expect(abs(back[i] - clamped) <= step * 0.5001 + 1e-5, "\(bits)-bit group \(group): value \(i)")
                    }
                }
            }
        }
    }

    @Test("E2M1 and E8M0: codes decode as ml_dtypes decodes them; MLX's FP4 rounding sends ties to the smaller magnitude")
    func microscalingFormats() {
        // ml_dtypes.float4_e2m1fn and float8_e8m0fnu, every code.
        #expect(E2M1.table.map { $0 } == [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6])
        #expect(E2M1.table[8].sign == .minus)
        for code in 0..<16 { #expect(E2M1.encode(E2M1.table[code]) == UInt8(code)) }
        #expect(E8M0.decode(0) == 0x1p-127 && E8M0.decode(127) == 1 && E8M0.decode(254) == 0x1p127 && E8M0.decode(255).isNaN)
        for code in 0..<255 { #expect(E8M0.encode(E8M0.decode(UInt8(code))) == UInt8(code)) }
        // Ties: ml_dtypes to even; MLX's CPU quantizer to the first table entry, the smaller magnitude.
        for (x, even, mlx) in [(Float(0.25), UInt8(0), UInt8(0)), (0.75, 2, 1), (1.25, 2, 2), (1.75, 4, 3), (2.5, 4, 4), (3.5, 6, 5),
                               (5, 6, 6), (-0.25, 8, 0), (-0.1, 8, 0), (-0.75, 10, 9), (-5, 14, 14), (7, 7, 7)] {
            #expect(E2M1.encode(x) == even, "\(x)")
            #expect(E2M1.encodeMLX(x) == mlx, "\(x)")
        }
        #expect(E8M0.ceilExponent(1) == 0 && E8M0.ceilExponent(1.0000001) == 1 && E8M0.ceilExponent(0.75) == 0 && E8M0.ceilExponent(0x1p-140) == -140)
    }

    @Test("MLX microscaling: scales bound each group, codes decode within half a step, zero groups stay zero")
    func mlxMicroscaling() {
        for mode in [MLXQuantization.Mode.mxfp4, .mxfp8, .nvfp4] {
            let q = MLXQuantization(mode: mode)!
            #expect(MLXQuantization(mode: mode, bits: 3) == nil && MLXQuantization(mode: mode, groupSize: 64) == nil)
            let rows = 4, cols = 64
            var w = (0..<(rows * cols)).map { (i: Int) -> Float in Float((i * 7919) % 201 - 100) / 137 * Float(1 + i % 3) }
            for j in 0..<q.groupSize { w[cols + j] = 0 }           // a zero group
            for type in [GGMLType.f32, .f16, .bf16] {
                let v = w.map { type.roundTrip($0) }
                let r = v.withUnsafeBufferPointer { MLXMicroscaling.quantize($0.baseAddress!, rows: rows, cols: cols, mode: mode, arithmetic: type) }
                #expect(r.packed.count == rows * cols * q.bits / 8 && r.scales.count == rows * cols / q.groupSize)
                var back = [Float](repeating: 0, count: rows * cols)
                r.packed.withUnsafeBytes { raw in r.scales.withUnsafeBufferPointer { s in
                    let m = MLXMicroscaling.matrix(data: raw.baseAddress!, rows: rows, cols: cols, mode: mode, scaleCodes: s.baseAddress!)
                    back.withUnsafeMutableBufferPointer { b in for row in 0..<rows { m.decodeRow(row, into: b.baseAddress! + row * cols) } }
                } }
                for g in 0..<(rows * cols / q.groupSize) {
                    let range = (g * q.groupSize)..<((g + 1) * q.groupSize)
                    let amax = v[range].map(abs).max()!
                    let scale = MLXMicroscaling.scaleValue(r.scales[g], mode: mode)
                    if amax == 0 { #expect(back[range].allSatisfy { $0 == 0 }); continue }
                    // The largest element value times the scale covers the group (nvfp4's E4M3 scale rounds to nearest,
                    // so up to 1/16 short).
                    let top: Float = mode == .mxfp8 ? 448 : 6
                    #expect(top * scale >= amax * (mode == .nvfp4 ? 15.0 / 16 : 1), "\(mode) \(type) group \(g)")
                    for i in range {
                        // Half the widest gap between neighbouring element values near w, relative: FP4's widest gap
                        // is 2 (between 4 and 6); FP8 E4M3 keeps 3 mantissa bits.
                        let tolerance = mode == .mxfp8 ? Swift.max(abs(v[i]) / 16, scale * 0x1p-9) * 1.01 : scale * 1.01 + amax / 16
                        #expect(abs(back[i] - v[i]) <= tolerance, "\(mode) \(type) value \(i): \(v[i]) -> \(back[i])")
                    }
                }
            }
        }
    }

    @Test("compressed-tensors integers: dense packing round-trips for 2 to 8 bits; values within half a step; zero points pack down columns")
    func compressedTensorsInt() {
        for bits in 2...8 {
            let rows = 3, cols = 37   // not a multiple of 32: the last word is partial
            let lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1
            let codes = (0..<(rows * cols)).map { Int8(lo + ($0 * 7 + $0 / 5) % (hi - lo + 1)) }
            let packed = CompressedTensorsInt.pack(codes, rows: rows, cols: cols, bits: bits)
            #expect(packed.count == rows * CompressedTensorsInt.wordsPerRow(cols, bits: bits) * 4)
            packed.withUnsafeBufferPointer { p in
                for r in 0..<rows {
                    let row = p.baseAddress! + r * CompressedTensorsInt.wordsPerRow(cols, bits: bits) * 4
                    for c in 0..<cols { #expect(CompressedTensorsInt.unpack(row, c, bits: bits) == Int(codes[r * cols + c]), "\(bits) bits [\(r), \(c)]") }
                }
            }
        }
        // 4 bits: element i of a row in bits 4i..<4i+4 of the little-endian words, offset by 8.
        #expect(CompressedTensorsInt.pack([-8, 7, 0, 1], rows: 1, cols: 4, bits: 4) == [0xF0, 0x98, 0, 0])
        // Zero points [rows, groups] pack down each column: [ceil(rows · bits / 32), groups] words.
        let zp: [Int8] = [1, -2, 3, -4, 5, -6]   // 3 rows, 2 groups
        let z = CompressedTensorsInt.packColumns(zp, rows: 3, groups: 2, bits: 4)
        #expect(z == [0x9 | 0xB << 4, 0xD, 0, 0, 0x6 | 0x4 << 4, 0x2, 0, 0])
        for symmetric in [true, false] {
            let rows = 2, cols = 64
            let w = (0..<(rows * cols)).map { (i: Int) -> Float in halfToFloat(floatToHalf(Float((i * 37) % 101 - 40) / 97)) }
            let r = w.withUnsafeBufferPointer {
                CompressedTensorsInt.quantize($0.baseAddress!, rows: rows, cols: cols, bits: 4, groupSize: 32, symmetric: symmetric, arithmetic: .f16)
            }
            let packed = CompressedTensorsInt.pack(r.codes, rows: rows, cols: cols, bits: 4)
            packed.withUnsafeBytes { raw in
                let m = PackedIntMatrix(data: raw.baseAddress!, rows: rows, cols: cols, bits: 4, groupSize: 32, scales: r.scales,
                                        zeroPoints: symmetric ? [] : r.zeroPoints, arithmetic: .f16)
                var back = [Float](repeating: 0, count: cols)
                for row in 0..<rows {
                    back.withUnsafeMutableBufferPointer { m.decodeRow(row, into: $0.baseAddress!) }
                    for c in 0..<cols {
                        let s = r.scales[row * 2 + c / 32]
                        #expect(abs(back[c] - w[row * cols + c]) <= s * 0.5 + 1e-3, "\(symmetric) [\(row), \(c)]")
                    }
                }
            }
        }
    }

    @Test("compressed-tensors NVFP4: group scales under the global scale, values within half the widest FP4 step, zeros stay +0")
    func compressedTensorsNVFP4() {
        let rows = 3, cols = 64
        var w = (0..<(rows * cols)).map { (i: Int) -> Float in halfToFloat(floatToHalf(Float((i * 53) % 97 - 48) / 211 * Float(1 + i % 4))) }
        for j in 0..<16 { w[cols + j] = 0 }     // a zero group: scale code of 0.125, every value +0
        w[cols + 16] = -0.0
        let r = w.withUnsafeBufferPointer { CompressedTensorsNVFP4.quantize($0.baseAddress!, rows: rows, cols: cols, arithmetic: .f16) }
        #expect(r.packed.count == rows * cols / 2 && r.scales.count == rows * cols / 16 && r.global > 0)
        #expect(r.scales[4] == FP8.encode(0.125, .e4m3fn) && r.packed[cols / 2..<(cols / 2 + 8)].allSatisfy { $0 == 0 })
        #expect(r.packed[cols / 2 + 8] & 15 == 0)   // -0.0 gives +0, as compressed-tensors' cast does
        var back = [Float](repeating: 0, count: rows * cols)
        r.packed.withUnsafeBytes { raw in r.scales.withUnsafeBufferPointer { s in
            let m = CompressedTensorsNVFP4.matrix(data: raw.baseAddress!, rows: rows, cols: cols, scaleCodes: s.baseAddress!, global: r.global)
            back.withUnsafeMutableBufferPointer { b in for row in 0..<rows { m.decodeRow(row, into: b.baseAddress! + row * cols) } }
            for g in 0..<(rows * cols / 16) {
                let step = m.scales[g]     // the value of one FP4 unit in this group; the widest gap is 2 units
                for i in (g * 16)..<((g + 1) * 16) { #expect(abs(back[i] - w[i]) <= step * 1.01 + abs(w[i]) / 128, "value \(i)") }
            }
        } }
    }

    @Test("FP8 scale layouts: per tensor, per channel, 128x128 blocks with padded edges")
    func scaleLayouts() {
        #expect(ScaledFP8.layout(scaleShape: [], rows: 576, cols: 1536) == .tensor)
        #expect(ScaledFP8.layout(scaleShape: [1], rows: 576, cols: 1536) == .tensor)
        #expect(ScaledFP8.layout(scaleShape: [576, 1], rows: 576, cols: 1536) == .channel)
        #expect(ScaledFP8.layout(scaleShape: [5, 12], rows: 576, cols: 1536) == .blocks(rows: 128, cols: 128))
        #expect(ScaledFP8.layout(scaleShape: [4, 12], rows: 576, cols: 1536) == nil)
        let codes: [UInt8] = [0x38, 0x40, 0xB8, 0x7E, 0x38, 0x38]   // 1, 2, -1, 448, 1, 1 as a 2 x 3 weight
        let out = codes.withUnsafeBytes { raw -> [Float] in
            let w = ScaledFP8(format: .e4m3fn, data: raw.baseAddress!, rows: 2, cols: 3, scales: [0.5, 2, 4, 8],
                              layout: .blocks(rows: 1, cols: 2))
            var row = [Float](repeating: 0, count: 6)
            row.withUnsafeMutableBufferPointer { p in for r in 0..<2 { w.decodeRow(r, into: p.baseAddress! + r * 3) } }
            return row
        }
        #expect(out == [0.5, 1, -2, 448 * 4, 4, 8])
    }

    @Test("Model card front matter: scalars, quoted strings and lists; names and size labels as gguf-py makes them")
    func modelCard() {
        let card = "---\nname: \"Smol \\\"LM\\\"\"\nlicense: apache-2.0\nlanguage:\n- en\n- 'fr'\ntags: [a, b]\n---\n# body\nname: no\n"
        let f = ModelCard.frontMatter(card)
        #expect(f["name"] == ["Smol \"LM\""])
        #expect(f["license"] == ["apache-2.0"])
        #expect(f["language"] == ["en", "fr"])
        #expect(f["tags"] == ["a", "b"])
        #expect(ModelCard.frontMatter("no front matter").isEmpty)
        #expect(ModelCard.idToTitle("smollm2-llama") == "Smollm2 Llama")
        #expect(ModelCard.idToTitle("DeepSeek-R1-Distill-qwen-v1.5") == "DeepSeek R1 Distill Qwen v1.5")
        #expect(ModelCard.roundedCount(134_515_008) == "135M")
        #expect(ModelCard.roundedCount(6_738_415_616) == "6.7B")
        #expect(ModelCard.roundedCount(1_543_714_304) == "1.5B")
    }

    @Test("Model ids split into name, organization, basename, finetune, version and size label as gguf-py splits them")
    func modelIDComponents() throws {
        // fixtures/reference/model-id-components.json: gguf-py 0.19.0, tools/reference/model_id_components.py.
        let root = String(#filePath).split(separator: "/").dropLast(3).joined(separator: "/")
        let file = try MappedFile(path: "/" + root + "/fixtures/reference/model-id-components.json")
        let cases = try withExtendedLifetime(file) { try JSONParser.parse(file.bytes, field: "fixture") }["cases"]?.arrayValue ?? []
        #expect(cases.count >= 30)
        for c in cases {
            let id = c["id"]?.stringValue ?? ""
            let got = ModelCard.modelIDComponents(id, totalParameters: c["total_params"]?.intValue ?? 0)
            let want = ["name", "organization", "basename", "finetune", "version", "size_label"].map { c[$0]?.stringValue }
            #expect([got.name, got.organization, got.basename, got.finetune, got.version, got.sizeLabel] == want, "\(id)")
        }
    }

    @Test("SHA-256 of known inputs")
    func sha256() {
        #expect(SHA256.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(Array(repeating: UInt8(ascii: "a"), count: 1000)).hasPrefix("41edece42d63e8d9bf515a9ba6932e1c"))
    }

    @Test("Stored types follow llama.cpp's converter: norms, vectors, routers and non-weights in F32")
    func storedTypes() {
        let q = TensorRole("attn_q", "self_attn.q_proj")
        let router = TensorRole("ffn_gate_inp", "mlp.gate", keepsF32: true)
        #expect(Converter.storedType(name: "blk.0.attn_q.weight", role: q, dims: 2, chosen: .f16) == .f16)
        #expect(Converter.storedType(name: "blk.0.attn_q.bias", role: q, dims: 1, chosen: .f16) == .f32)
        #expect(Converter.storedType(name: "blk.0.attn_norm.weight", role: nil, dims: 1, chosen: .bf16) == .f32)
        #expect(Converter.storedType(name: "blk.0.ffn_gate_inp.weight", role: router, dims: 2, chosen: .bf16) == .f32)
    }
}

@Suite("Pre-tokenizers in tokenizer.json")
struct PreTokenizerJSONTests {
    @Test("every pre-tokenizer a byte-level tokenizer.json can express is written so, and read back as the same steps")
    func everyNameRoundTrips() throws {
        var inexpressible: [String] = []
        for name in PreTokenizer.names {
            guard let json = TokenizerFacts.preTokenizerJSON(name) else { inexpressible.append(name); continue }
            let root = JSONValue.object(JSONObject([
                ("model", .object(JSONObject([("type", "BPE"), ("vocab", .object(JSONObject([("a", JSONValue(0))]))),
                                              ("merges", .array([]))]))),
                ("pre_tokenizer", json),
            ]))
            let read = try Tokenizer(huggingFace: root).preTokenizer
            let named = try #require(PreTokenizer(named: name))
            #expect(read?.steps == named.steps, "\(name)")
        }
        // Gemma 4's family is raw UTF-8 (no byte-level form); AFMoE's digits are llama.cpp's code, not a pattern.
        #expect(inexpressible.sorted() == ["afmoe", "gemma4", "granite-embed-multi-311m", "sarvam-moe"])
    }
}
