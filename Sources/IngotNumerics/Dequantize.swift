// Reference dequantizers: one function per GGUF block format, each turning `blocks` blocks into
// blocks * blockSize floats. The arithmetic order is the one gguf-py's `gguf.quants` uses (and ggml's
// dequantize_row_*), so the floats are bit-identical to both: scale products first, then `d * q - m`.

enum Dequant {
    static func q4_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        for i in 0..<blocks {
            let b = x + i * 18, o = y + i * 32
            let d = loadHalf(b, 0)
            for j in 0..<16 {
                let q = b.load(fromByteOffset: 2 + j, as: UInt8.self)
                o[j] = d * Float(Int(q & 0xF) - 8)
                o[j + 16] = d * Float(Int(q >> 4) - 8)
            }
        }
    }

    static func q4_1(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        for i in 0..<blocks {
            let b = x + i * 20, o = y + i * 32
            let d = loadHalf(b, 0), m = loadHalf(b, 2)
            for j in 0..<16 {
                let q = b.load(fromByteOffset: 4 + j, as: UInt8.self)
                o[j] = d * Float(q & 0xF) + m
                o[j + 16] = d * Float(q >> 4) + m
            }
        }
    }

    static func q5_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        for i in 0..<blocks {
            let b = x + i * 22, o = y + i * 32
            let d = loadHalf(b, 0)
            let qh = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
            for j in 0..<16 {
                let q = b.load(fromByteOffset: 6 + j, as: UInt8.self)
                let h0 = Int((qh >> UInt32(j)) & 1) << 4, h1 = Int((qh >> UInt32(j + 16)) & 1) << 4
                o[j] = d * Float((Int(q & 0xF) | h0) - 16)
                o[j + 16] = d * Float((Int(q >> 4) | h1) - 16)
            }
        }
    }

    static func q5_1(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        for i in 0..<blocks {
            let b = x + i * 24, o = y + i * 32
            let d = loadHalf(b, 0), m = loadHalf(b, 2)
            let qh = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            for j in 0..<16 {
                let q = b.load(fromByteOffset: 8 + j, as: UInt8.self)
                let h0 = Int((qh >> UInt32(j)) & 1) << 4, h1 = Int((qh >> UInt32(j + 16)) & 1) << 4
                o[j] = d * Float(Int(q & 0xF) | h0) + m
                o[j + 16] = d * Float(Int(q >> 4) | h1) + m
            }
        }
    }

    static func q8_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        for i in 0..<blocks {
            let b = x + i * 34, o = y + i * 32
            let d = loadHalf(b, 0)
            for j in 0..<32 { o[j] = Float(b.load(fromByteOffset: 2 + j, as: Int8.self)) * d }
        }
    }

    static func q2_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        for i in 0..<blocks {
            let b = x + i * 84, o = y + i * 256
            let d = loadHalf(b, 80), dmin = loadHalf(b, 82)
            // Group g (16 values) uses scale byte g; value l of group g lives in byte 16 + 32*(g/8) + 16*(g%2) + l,
            // at bit shift 2*((g/2)%4).
            for g in 0..<16 {
                let sc = b.load(fromByteOffset: g, as: UInt8.self)
                let dl = d * Float(sc & 0xF), ml = dmin * Float(sc >> 4)
                let base = 16 + 32 * (g / 8) + 16 * (g % 2), shift = UInt8(2 * ((g / 2) % 4))
                for l in 0..<16 {
                    let q = (b.load(fromByteOffset: base + l, as: UInt8.self) >> shift) & 3
                    o[16 * g + l] = dl * Float(q) - ml
                }
            }
        }
    }

    static func q3_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        for i in 0..<blocks {
            let b = x + i * 110, o = y + i * 256
            let d = loadHalf(b, 108)
            for g in 0..<16 {
                let low = b.load(fromByteOffset: 96 + g % 8, as: UInt8.self) >> UInt8(4 * (g / 8))
                let high = b.load(fromByteOffset: 104 + g % 4, as: UInt8.self) >> UInt8(2 * (g / 4))
                let sc = Int((low & 0xF) | ((high & 3) << 4)) - 32
                let dl = d * Float(sc)
                let base = 32 + 32 * (g / 8) + 16 * (g % 2), shift = UInt8(2 * ((g / 2) % 4))
                // hmask bit of this group: 4 per 128-value half, one per pair of groups.
                let hShift = UInt8(4 * (g / 8) + (g / 2) % 4)
                for l in 0..<16 {
                    let q = Int((b.load(fromByteOffset: base + l, as: UInt8.self) >> shift) & 3)
                    let m = b.load(fromByteOffset: 16 * (g % 2) + l, as: UInt8.self)
                    let h = (m >> hShift) & 1
                    o[16 * g + l] = dl * Float(q - (h == 0 ? 4 : 0))
                }
            }
        }
    }

    static func q4_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        for i in 0..<blocks {
            let b = x + i * 144, o = y + i * 256
            let d = loadHalf(b, 0), dmin = loadHalf(b, 2)
            for j in 0..<8 {
                let (sc, m) = KQuants.scaleMinK4(j, b + 4)
                let dl = d * Float(sc), ml = dmin * Float(m)
                let base = 16 + 32 * (j / 2), shift = UInt8(4 * (j % 2))
                for l in 0..<32 {
                    let q = (b.load(fromByteOffset: base + l, as: UInt8.self) >> shift) & 0xF
                    o[32 * j + l] = dl * Float(q) - ml
                }
            }
        }
    }

    static func q5_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        for i in 0..<blocks {
            let b = x + i * 176, o = y + i * 256
            let d = loadHalf(b, 0), dmin = loadHalf(b, 2)
            for j in 0..<8 {
                let (sc, m) = KQuants.scaleMinK4(j, b + 4)
                let dl = d * Float(sc), ml = dmin * Float(m)
                let base = 48 + 32 * (j / 2), shift = UInt8(4 * (j % 2))
                for l in 0..<32 {
                    let q = (b.load(fromByteOffset: base + l, as: UInt8.self) >> shift) & 0xF
                    let h = (b.load(fromByteOffset: 16 + l, as: UInt8.self) >> UInt8(j)) & 1
                    o[32 * j + l] = dl * Float(q | (h << 4)) - ml
                }
            }
        }
    }

    static func q6_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        for i in 0..<blocks {
            let b = x + i * 210, o = y + i * 256
            let d = loadHalf(b, 208)
            // Value v = 128*h + 32*k + l (h half, k quarter) : low nibble from ql[64h + l + 32*(k%2)] (>> 4 if k >= 2),
            // high two bits from qh[32h + l] >> 2k; scale index v / 16.
            for h in 0..<2 {
                for k in 0..<4 {
                    for l in 0..<32 {
                        let v = 128 * h + 32 * k + l
                        let lowByte = b.load(fromByteOffset: 64 * h + l + 32 * (k % 2), as: UInt8.self)
                        let low = k >= 2 ? lowByte >> 4 : lowByte & 0xF
                        let high = (b.load(fromByteOffset: 128 + 32 * h + l, as: UInt8.self) >> UInt8(2 * k)) & 3
                        let q = Int(low | (high << 4)) - 32
                        let sc = b.load(fromByteOffset: 192 + v / 16, as: Int8.self)
                        o[v] = (d * Float(sc)) * Float(q)
                    }
                }
            }
        }
    }

    static func iq4_nl(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        let kv = LegacyQuants.kvaluesIQ4NL
        for i in 0..<blocks {
            let b = x + i * 18, o = y + i * 32
            let d = loadHalf(b, 0)
            for j in 0..<16 {
                let q = b.load(fromByteOffset: 2 + j, as: UInt8.self)
                o[j] = d * Float(kv[Int(q & 0xF)])
                o[j + 16] = d * Float(kv[Int(q >> 4)])
            }
        }
    }

    static func iq4_xs(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        let kv = LegacyQuants.kvaluesIQ4NL
        for i in 0..<blocks {
            let b = x + i * 136, o = y + i * 256
            let d = loadHalf(b, 0)
            let scalesH = UInt16(littleEndian: b.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            for ib in 0..<8 {
                let low = (b.load(fromByteOffset: 4 + ib / 2, as: UInt8.self) >> UInt8(4 * (ib % 2))) & 0xF
                let high = UInt8((scalesH >> UInt16(2 * ib)) & 3)
                let dl = d * Float(Int(low | (high << 4)) - 32)
                for j in 0..<16 {
                    let q = b.load(fromByteOffset: 8 + 16 * ib + j, as: UInt8.self)
                    o[32 * ib + j] = dl * Float(kv[Int(q & 0xF)])
                    o[32 * ib + j + 16] = dl * Float(kv[Int(q >> 4)])
                }
            }
        }
    }

    static func mxfp4(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        let kv = LegacyQuants.kvaluesMXFP4
        for i in 0..<blocks {
            let b = x + i * 17, o = y + i * 32
            let d = e8m0ToFloatHalf(b.load(as: UInt8.self))
            for j in 0..<16 {
                let q = b.load(fromByteOffset: 1 + j, as: UInt8.self)
                o[j] = d * Float(kv[Int(q & 0xF)])
                o[j + 16] = d * Float(kv[Int(q >> 4)])
            }
        }
    }

    /// Unsigned E4M3 scale byte of NVFP4 to float, halved (the E2M1 values are stored doubled); 0 and 0x7F are 0.
    @inline(__always)
    static func ue4m3Half(_ x: UInt8) -> Float {
        if x == 0 || x == 0x7F { return 0 }
        let exp = Int((x >> 3) & 0xF), man = Float(x & 0x7)
        let raw: Float = exp == 0 ? man * 0x1p-9 : (1 + man / 8) * Float(sign: .plus, exponent: exp - 7, significand: 1)
        return raw * 0.5
    }

    static func nvfp4(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        // 36 bytes: 0 d:UE4M3[4] (one per 16 values), 4 qs[32]: sub-block s uses bytes 8s..8s+7, low nibbles first.
        let kv = LegacyQuants.kvaluesMXFP4
        for i in 0..<blocks {
            let b = x + i * 36, o = y + i * 64
            for s in 0..<4 {
                let d = ue4m3Half(b.load(fromByteOffset: s, as: UInt8.self))
                for j in 0..<8 {
                    let q = b.load(fromByteOffset: 4 + 8 * s + j, as: UInt8.self)
                    o[16 * s + j] = d * Float(kv[Int(q & 0xF)])
                    o[16 * s + 8 + j] = d * Float(kv[Int(q >> 4)])
                }
            }
        }
    }

    static func tq1_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        // 54 bytes: 0 qs:u8[48] (5 ternary digits per byte, as a fixed-point fraction of 243), 48 qh:u8[4], 52 d:f16.
        let pow3: [UInt16] = [1, 3, 9, 27, 81]
        for i in 0..<blocks {
            let b = x + i * 54, o = y + i * 256
            let d = loadHalf(b, 52)
            @inline(__always) func trit(_ byte: UInt8, _ n: Int) -> Float {
                let q = UInt8(truncatingIfNeeded: UInt16(byte) &* pow3[n])
                return Float(Int((UInt16(q) * 3) >> 8) - 1)
            }
            var v = 0
            for n in 0..<5 { for m in 0..<32 { o[v] = d * trit(b.load(fromByteOffset: m, as: UInt8.self), n); v += 1 } }
            for n in 0..<5 { for m in 0..<16 { o[v] = d * trit(b.load(fromByteOffset: 32 + m, as: UInt8.self), n); v += 1 } }
            for n in 0..<4 { for m in 0..<4 { o[v] = d * trit(b.load(fromByteOffset: 48 + m, as: UInt8.self), n); v += 1 } }
        }
    }

    static func tq2_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        // 66 bytes: 0 qs:u8[64] (2-bit digits, value = digit - 1), 64 d:f16.
        for i in 0..<blocks {
            let b = x + i * 66, o = y + i * 256
            let d = loadHalf(b, 64)
            for j in 0..<2 {
                for k in 0..<4 {
                    for l in 0..<32 {
                        let q = (b.load(fromByteOffset: 32 * j + l, as: UInt8.self) >> UInt8(2 * k)) & 3
                        o[128 * j + 32 * k + l] = d * Float(Int(q) - 1)
                    }
                }
            }
        }
    }
}
