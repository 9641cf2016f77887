import Foundation
import IngotFormats
@testable import IngotNumerics
import Testing

enum Fixtures {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0 ..< 3 { url.deleteLastPathComponent() }
        return url.path
    }()
    static func path(_ rel: String) -> String { root + "/" + rel }
}

/// Bit-level float equality; any NaN equals any NaN (payload propagation is the FPU's business, not the format's).
func sameFloats(_ a: [Float], _ b: [Float]) -> Int? {
    for i in 0..<min(a.count, b.count) where !(a[i].bitPattern == b[i].bitPattern || (a[i].isNaN && b[i].isNaN)) {
        return i
    }
    return a.count == b.count ? nil : min(a.count, b.count)
}

func dequantized(_ type: GGMLType, _ bytes: UnsafeRawBufferPointer, count: Int, kernels: KernelChoice) -> [Float] {
    var out = [Float](repeating: 0, count: count)
    out.withUnsafeMutableBufferPointer { o in
        BlockCodec.dequantize(type, bytes.baseAddress!, count: count, into: o.baseAddress!, kernels: kernels)
    }
    return out
}

func quantized(_ type: GGMLType, _ values: [Float], kernels: KernelChoice) -> [UInt8] {
    let bytes = values.count / type.blockSize * type.bytesPerBlock
    var out = [UInt8](repeating: 0xAA, count: bytes)
    var scratch = QuantScratch()
    values.withUnsafeBufferPointer { v in
        out.withUnsafeMutableBytes { o in
            BlockCodec.quantize(type, v.baseAddress!, count: values.count, into: o.baseAddress!, scratch: &scratch, kernels: kernels)
        }
    }
    return out
}

@Suite struct DequantizeAgainstGGUFPy {
    /// fixtures/dequant/blocks.gguf holds, per type, random and real blocks with gguf-py's dequantized floats
    /// (tools/reference/make_dequant_fixture.py).
    @Test func everyTypeEqualsGGUFPyBitForBit() throws {
        let file = try GGUFFile(path: Fixtures.path("fixtures/dequant/blocks.gguf"))
        var checked = Set<String>()
        for t in file.tensors where !t.name.hasSuffix(".expected") {
            let expectedInfo = try #require(file.tensor(named: t.name + ".expected"))
            let expected = Array(file.data(for: expectedInfo).bindMemory(to: Float.self))
            #expect(BlockCodec.canDequantize(t.type), "\(t.type)")
            for kernels in KernelChoice.allCases {
                let got = dequantized(t.type, file.data(for: t), count: t.elementCount, kernels: kernels)
                let bad = sameFloats(got, expected)
                #expect(bad == nil, "\(t.name) (\(kernels) kernels) differs at value \(bad ?? -1): \(bad.map { "\(got[$0]) vs \(expected[$0])" } ?? "")")
            }
            checked.insert(t.type.name)
        }
        // Every type gguf-py dequantizes that a GGUF can hold, the IQ and TQ families included.
        #expect(checked == Set(["F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
                                "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ1_S", "IQ1_M", "IQ4_NL", "IQ4_XS",
                                "TQ1_0", "TQ2_0", "MXFP4", "NVFP4"]))
    }
}

@Suite struct HalfConversions {
    @Test func everyHalfConvertsExactly() {
        for h in 0...0xFFFF {
            let bits = UInt16(h)
            let f = halfToFloat(bits)
            let native = Float(Float16(bitPattern: bits))
            #expect(f.bitPattern == native.bitPattern || (f.isNaN && native.isNaN), "half \(String(bits, radix: 16))")
            if !f.isNaN { #expect(floatToHalf(f) == bits, "round trip of \(String(bits, radix: 16))") }
            #expect(bfloat16ToFloat(bits).bitPattern == UInt32(bits) << 16)
        }
    }

    @Test func floatToHalfRoundsToNearestEven() {
        var rng = SplitMix(seed: 7)
        for _ in 0..<200_000 {
            let f = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
            if f.isNaN {
                #expect(floatToHalf(f) & 0x7FFF == 0x7E00)
                #expect(floatToBFloat16(f) & 0x7FFF > 0x7F80)
                continue
            }
            #expect(floatToHalf(f) == Float16(f).bitPattern, "\(f)")
            // bfloat16: nearest-even, ties to even, overflow to infinity.
            let b = floatToBFloat16(f)
            let down = Float(bitPattern: f.bitPattern & 0xFFFF_0000), up = bfloat16ToFloat(b)
            #expect(abs(Double(up) - Double(f)) <= abs(Double(down) - Double(f)) || up.isInfinite)
        }
    }
}

/// Index of the first differing byte, nil when equal.
func firstDifference(_ a: [UInt8], _ b: [UInt8]) -> Int? {
    if a.count != b.count { return min(a.count, b.count) }
    return a.indices.first { a[$0] != b[$0] }
}

/// Deterministic 64-bit generator for test data.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func normal() -> Float {
        let u1 = Double(next() >> 11) / Double(1 << 53) + 1e-12, u2 = Double(next() >> 11) / Double(1 << 53)
        return Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
    }
}

@Suite struct SIMDAgainstReference {
    static let lengths = [1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 63, 127, 255, 1023]

    /// Value sets from the design notes: typical weights, zeros, ±max, subnormals, NaN and infinities, mixed.
    static func valueSets(_ n: Int, seed: UInt64) -> [(String, [Float])] {
        var rng = SplitMix(seed: seed)
        let normal = (0..<n).map { _ in rng.normal() * 0.02 }
        var mixed = normal
        let specials: [Float] = [0, -0.0, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, 65504, -65504, 65520,
                                 .leastNonzeroMagnitude, -.leastNormalMagnitude, 5.96e-8, 3e-8, .nan, .infinity, -.infinity, 1e30]
        for i in stride(from: 0, to: n, by: 3) { mixed[i] = specials[Int(rng.next() % UInt64(specials.count))] }
        var sets: [(String, [Float])] = [("normal", normal), ("zeros", [Float](repeating: 0, count: n))]
        let big = Float.greatestFiniteMagnitude, tiny = Float.leastNonzeroMagnitude
        sets.append(("max", (0..<n).map { (i: Int) -> Float in i % 2 == 0 ? big : -big }))
        sets.append(("half-max", (0..<n).map { (i: Int) -> Float in i % 2 == 0 ? 65504 : -65519 }))
        sets.append(("subnormal", (0..<n).map { (i: Int) -> Float in Float(i % 7 + 1) * tiny * (i % 2 == 0 ? 1 : -1) }))
        sets.append(("half-subnormal", (0..<n).map { (i: Int) -> Float in Float(i % 5 + 1) * 5.96e-8 * (i % 3 == 0 ? -1 : 1) }))
        sets.append(("nan", (0..<n).map { (i: Int) -> Float in i % 4 == 1 ? .nan : Float(i % 13) - 6 }))
        sets.append(("mixed", mixed))
        sets.append(("ties", (0..<n).map { (i: Int) -> Float in Float(i % 9) * 0.5 - 2 }))
        // Signed zeros (masked rows hold -0.0): a block's scale and minimum take the sign the reference's scan gives
        // them, whatever order the vector lanes are reduced in.
        sets.append(("negative-zeros", [Float](repeating: -0.0, count: n)))
        sets.append(("signed-zeros", (0..<n).map { _ in rng.next() % 2 == 0 ? 0.0 : -0.0 }))
        sets.append(("zeros-and-positives", (0..<n).map { _ -> Float in
            let r = rng.next() % 8
            return r == 0 ? Float(rng.next() % 5 + 1) * 0.25 : (r % 2 == 0 ? 0.0 : -0.0)
        }))
        sets.append(("zeros-and-negatives", (0..<n).map { _ -> Float in
            let r = rng.next() % 8
            return r == 0 ? -Float(rng.next() % 5 + 1) * 0.25 : (r % 2 == 0 ? 0.0 : -0.0)
        }))
        return sets
    }

    @Test(arguments: [GGMLType.f16, .bf16])
    func elementConversions(_ type: GGMLType) {
        for n in Self.lengths {
            for (name, values) in Self.valueSets(n, seed: UInt64(n)) {
                let ref = quantized(type, values, kernels: .reference)
                let back = ref.withUnsafeBytes { dequantized(type, $0, count: n, kernels: .reference) }
                for k in [KernelChoice.baseline, .best] {
                    let d = firstDifference(ref, quantized(type, values, kernels: k))
                    #expect(d == nil, "\(type) \(name) n=\(n) \(k): first difference at byte \(d ?? -1)")
                    let backSIMD = ref.withUnsafeBytes { dequantized(type, $0, count: n, kernels: k) }
                    #expect(sameFloats(back, backSIMD) == nil, "\(type) \(name) n=\(n) \(k) dequantize")
                }
            }
        }
    }

    /// Block formats with a SIMD path: the lengths count blocks; every other quantizable type runs too, to show
    /// that no value traps any quantizer.
    @Test(arguments: BlockCodec.quantizable.filter { $0.isQuantized })
    func blockFormats(_ type: GGMLType) {
        // The codebook quantizers are scalar only (one code path for every kernel choice) and slow in a debug
        // build: a few super-blocks of each value set show that nothing traps them.
        let codebook = IQQuants.types.contains(type)
        for blocks in Self.lengths where type.blockSize < 256 || blocks <= (codebook ? 3 : 33) {
            let n = blocks * type.blockSize
            for (name, values) in Self.valueSets(n, seed: UInt64(blocks) &* 31) {
                let ref = quantized(type, values, kernels: .reference)
                let back = ref.withUnsafeBytes { dequantized(type, $0, count: n, kernels: .reference) }
                for k in [KernelChoice.baseline, .best] {
                    let d = firstDifference(ref, quantized(type, values, kernels: k))
                    #expect(d == nil, "\(type) \(k) quantize \(name) blocks=\(blocks): first difference at byte \(d ?? -1) (block \((d ?? 0) / type.bytesPerBlock))")
                    let backSIMD = ref.withUnsafeBytes { dequantized(type, $0, count: n, kernels: k) }
                    #expect(sameFloats(back, backSIMD) == nil, "\(type) \(k) dequantize \(name) blocks=\(blocks)")
                }
                if name == "normal" {
                    // Sanity of the format itself: the round trip stays near the input.
                    let err = zip(values, back).map { Double(abs($0 - $1)) }.max() ?? 0
                    #expect(err < (type == .iq1_S || type == .iq1_M ? 0.1 : 0.05), "\(type) max error \(err)")
                }
            }
        }
    }

    @Test func randomBytesDequantizeWithoutTrapping() {
        var rng = SplitMix(seed: 99)
        for type in GGMLType.all where BlockCodec.canDequantize(type) {
            let n = 4 * type.blockSize
            let bytes = (0..<(n / type.blockSize * type.bytesPerBlock)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let a = bytes.withUnsafeBytes { dequantized(type, $0, count: n, kernels: .reference) }
            for k in [KernelChoice.baseline, .best] {
                let b = bytes.withUnsafeBytes { dequantized(type, $0, count: n, kernels: k) }
                #expect(sameFloats(a, b) == nil, "\(type) \(k)")
            }
        }
    }
}
