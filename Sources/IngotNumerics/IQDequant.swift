// Dequantizers for the codebook formats IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS and IQ3_S, so that any GGUF
// can be read and re-quantized. Arithmetic order follows gguf-py's `gguf.quants` (block scale first, then
// `db * grid * sign`, or `dl * (grid + delta)` for IQ1), which makes the floats bit-identical to it.

struct IQGridSpec: Sendable {
    let rows: Int, columns: Int, bits: Int
    let map: [Float]
    let hex: String

    /// rows * columns floats, row-major.
    func decode() -> [Float] { levels().map { map[Int($0)] } }

    /// rows * columns level indices (0 ..< map.count), row-major: the codebook as llama.cpp's quantizers see it
    /// (`kgrid_*`, one index per coordinate).
    func levels() -> [UInt8] {
        let digits = hex.utf8.filter { $0 != 10 && $0 != 32 }
        var bytes = [UInt8]()
        bytes.reserveCapacity(digits.count / 2)
        func nibble(_ c: UInt8) -> UInt8 { c > 0x40 ? (c + 9) & 0x0F : c & 0x0F }
        var i = 0
        while i + 1 < digits.count { bytes.append(nibble(digits[i]) << 4 | nibble(digits[i + 1])); i += 2 }
        let perByte = 8 / bits
        let mask = UInt8((1 << bits) - 1)
        var out = [UInt8]()
        out.reserveCapacity(rows * columns)
        for b in bytes {
            for k in 0..<perByte { out.append((b >> UInt8(k * (8 / perByte))) & mask) }
        }
        precondition(out.count == rows * columns, "codebook size")
        return out
    }
}

enum IQTables {
    static let iq2xxs = IQGridData.iq2xxs.decode()
    static let iq2xs = IQGridData.iq2xs.decode()
    static let iq2s = IQGridData.iq2s.decode()
    static let iq3xxs = IQGridData.iq3xxs.decode()
    static let iq3s = IQGridData.iq3s.decode()
    static let iq1s = IQGridData.iq1s.decode()
    static let ksigns: [UInt8] = {
        let d = Array(IQGridData.ksignsHex.utf8)
        func nibble(_ c: UInt8) -> UInt8 { c > 0x40 ? (c + 9) & 0x0F : c & 0x0F }
        return stride(from: 0, to: d.count, by: 2).map { nibble(d[$0]) << 4 | nibble(d[$0 + 1]) }
    }()
}

enum IQDequant {
    @inline(__always) static func sign(_ bits: UInt8, _ k: Int) -> Float { (bits >> UInt8(k)) & 1 == 0 ? 1 : -1 }

    /// IQ2_XXS, 66 bytes: 0 d:f16, 2 qs:u32[16] as 8 pairs (grid bytes, then 4x7 sign bits + 4-bit scale).
    static func iq2_xxs(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        let grid = IQTables.iq2xxs, ks = IQTables.ksigns
        for i in 0..<blocks {
            let b = x + i * 66, o = y + i * 256
            let d = loadHalf(b, 0)
            for ib in 0..<8 {
                let a0 = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 2 + 8 * ib, as: UInt32.self))
                let a1 = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 6 + 8 * ib, as: UInt32.self))
                let db = d * (0.5 + Float(a1 >> 28)) * 0.25
                for l in 0..<4 {
                    let g = Int((a0 >> UInt32(8 * l)) & 0xFF)
                    let s = ks[Int((a1 >> UInt32(7 * l)) & 127)]
                    for k in 0..<8 { o[32 * ib + 8 * l + k] = db * grid[8 * g + k] * sign(s, k) }
                }
            }
        }
    }

    /// IQ2_XS, 74 bytes: 0 d:f16, 2 qs:u16[32] (9-bit grid index, 7-bit sign index), 66 scales:u8[8] (4-bit pairs).
    static func iq2_xs(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        let grid = IQTables.iq2xs, ks = IQTables.ksigns
        for i in 0..<blocks {
            let b = x + i * 74, o = y + i * 256
            let d = loadHalf(b, 0)
            for g in 0..<32 {
                let q = UInt16(littleEndian: b.loadUnaligned(fromByteOffset: 2 + 2 * g, as: UInt16.self))
                let sc = (b.load(fromByteOffset: 66 + g / 4, as: UInt8.self) >> UInt8(4 * ((g / 2) % 2))) & 0xF
                let db = d * (0.5 + Float(sc)) * 0.25
                let row = Int(q & 511), s = ks[Int(q >> 9)]
                for k in 0..<8 { o[8 * g + k] = db * grid[8 * row + k] * sign(s, k) }
            }
        }
    }

    /// IQ2_S, 82 bytes: 0 d:f16, 2 qs:u8[32] (grid low bits), 34 signs:u8[32], 66 qh:u8[8], 74 scales:u8[8].
    static func iq2_s(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        let grid = IQTables.iq2s
        for i in 0..<blocks {
            let b = x + i * 82, o = y + i * 256
            let d = loadHalf(b, 0)
            for g in 0..<32 {
                let high = (Int(b.load(fromByteOffset: 66 + g / 4, as: UInt8.self)) >> (2 * (g % 4))) & 3
                let row = Int(b.load(fromByteOffset: 2 + g, as: UInt8.self)) | high << 8
                let s = b.load(fromByteOffset: 34 + g, as: UInt8.self)
                let sc = (b.load(fromByteOffset: 74 + g / 4, as: UInt8.self) >> UInt8(4 * ((g / 2) % 2))) & 0xF
                let db = d * (0.5 + Float(sc)) * 0.25
                for k in 0..<8 { o[8 * g + k] = db * grid[8 * row + k] * sign(s, k) }
            }
        }
    }

    /// IQ3_XXS, 98 bytes: 0 d:f16, 2 qs:u8[64] (grid rows of 4), 66 u32[8] (4x7 sign bits + 4-bit scale).
    static func iq3_xxs(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        let grid = IQTables.iq3xxs, ks = IQTables.ksigns
        for i in 0..<blocks {
            let b = x + i * 98, o = y + i * 256
            let d = loadHalf(b, 0)
            for ib in 0..<8 {
                let a = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 66 + 4 * ib, as: UInt32.self))
                let db = d * (0.5 + Float(a >> 28)) * 0.5
                for l in 0..<4 {
                    let s = ks[Int((a >> UInt32(7 * l)) & 127)]
                    for h in 0..<2 {
                        let row = Int(b.load(fromByteOffset: 2 + 8 * ib + 2 * l + h, as: UInt8.self))
                        for k in 0..<4 { o[32 * ib + 8 * l + 4 * h + k] = db * grid[4 * row + k] * sign(s, 4 * h + k) }
                    }
                }
            }
        }
    }

    /// IQ3_S, 110 bytes: 0 d:f16, 2 qs:u8[64], 66 qh:u8[8] (ninth index bit), 74 signs:u8[32], 106 scales:u8[4].
    static func iq3_s(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        let grid = IQTables.iq3s
        for i in 0..<blocks {
            let b = x + i * 110, o = y + i * 256
            let d = loadHalf(b, 0)
            for ib in 0..<8 {
                let sc = (b.load(fromByteOffset: 106 + ib / 2, as: UInt8.self) >> UInt8(4 * (ib % 2))) & 0xF
                let db = d * Float(1 + 2 * sc)
                for r in 0..<8 {
                    let k = 8 * ib + r
                    let high = (Int(b.load(fromByteOffset: 66 + k / 8, as: UInt8.self)) >> (k % 8)) & 1
                    let row = Int(b.load(fromByteOffset: 2 + k, as: UInt8.self)) | high << 8
                    let s = b.load(fromByteOffset: 74 + k / 2, as: UInt8.self)
                    for c in 0..<4 { o[4 * k + c] = db * grid[4 * row + c] * sign(s, 4 * (k % 2) + c) }
                }
            }
        }
    }

    /// IQ1_S, 50 bytes: 0 d:f16, 2 qs:u8[32], 34 qh:u16[8] (3 index bits x4, 3-bit scale, delta sign).
    static func iq1_s(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        let grid = IQTables.iq1s
        for i in 0..<blocks {
            let b = x + i * 50, o = y + i * 256
            let d = loadHalf(b, 0)
            for ib in 0..<8 {
                let qh = UInt16(littleEndian: b.loadUnaligned(fromByteOffset: 34 + 2 * ib, as: UInt16.self))
                let dl = d * Float(2 * ((qh >> 12) & 7) + 1)
                let delta: Float = qh & 0x8000 == 0 ? 0.125 : -0.125
                for l in 0..<4 {
                    let row = Int(b.load(fromByteOffset: 2 + 4 * ib + l, as: UInt8.self)) | Int((qh >> UInt16(3 * l)) & 7) << 8
                    for k in 0..<8 { o[32 * ib + 8 * l + k] = dl * (grid[8 * row + k] + delta) }
                }
            }
        }
    }

    /// IQ1_M, 56 bytes: 0 qs:u8[32], 32 qh:u8[16] (per nibble: 3 index bits + delta sign), 48 scales:u16[4]
    /// (twelve 3-bit scales each, the f16 super-scale spread over the four top nibbles).
    static func iq1_m(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        let grid = IQTables.iq1s
        for i in 0..<blocks {
            let b = x + i * 56, o = y + i * 256
            var sc = [UInt16](repeating: 0, count: 4)
            for k in 0..<4 { sc[k] = UInt16(littleEndian: b.loadUnaligned(fromByteOffset: 48 + 2 * k, as: UInt16.self)) }
            let dBits = (sc[0] & 0xF000) >> 12 | (sc[1] & 0xF000) >> 8 | (sc[2] & 0xF000) >> 4 | (sc[3] & 0xF000)
            let d = halfToFloat(dBits)
            for ib in 0..<8 {
                for h in 0..<2 {
                    let s = 2 * ib + h
                    let dl = d * Float(2 * ((sc[s / 4] >> UInt16(3 * (s % 4))) & 7) + 1)
                    for gIdx in 0..<2 {
                        let k = 4 * ib + 2 * h + gIdx
                        let nib = (b.load(fromByteOffset: 32 + k / 2, as: UInt8.self) >> UInt8(4 * (k % 2))) & 0xF
                        let row = Int(b.load(fromByteOffset: k, as: UInt8.self)) | Int(nib & 7) << 8
                        let delta: Float = nib & 8 == 0 ? 0.125 : -0.125
                        for c in 0..<8 { o[8 * k + c] = dl * (grid[8 * row + c] + delta) }
                    }
                }
            }
        }
    }
}
