/// Byte transforms applied to a frame before entropy coding, chosen by the tensor's dtype, and
/// their exact inverses. Each rearranges bytes into streams that zstd codes well: the exponent
/// bytes of floating-point weights (few distinct values) apart from the mantissa bytes (close to
/// random); the scale bytes of quantized blocks apart from their packed quants.
///
/// For a frame of n bytes and records of k bytes, `n / k` whole records are transformed and the
/// `n % k` trailing bytes are copied as they are.
public enum Transform: Equatable, Sendable, CustomStringConvertible {
    /// Bytes as they are.
    case none
    /// Stream j holds byte j of every k-byte record (F16, integers, quantized blocks).
    case byteGroups(Int)
    /// BF16 (1 sign, 8 exponent, 7 mantissa bits): stream 0 the exponent byte, stream 1 the sign
    /// and mantissa.
    case splitBF16
    /// F32 (1 sign, 8 exponent, 23 mantissa bits): stream 0 the exponent byte, stream 1 the sign
    /// and top 7 mantissa bits, streams 2 and 3 the lower mantissa bytes.
    case splitF32
    /// Quantized blocks of `block` bytes whose scales sit at bytes [start, start + count): the
    /// scale bytes go to `count` streams (byte j of every block's scales), the rest of each block
    /// (the packed quants) follows, block after block, unchanged.
    case blockScales(block: Int, start: Int, count: Int)
    /// 16-bit values in blocks of 32 (64 bytes), `blocks` of which hold at most 16 distinct
    /// values (weights dequantized from 4-bit formats do): such a block is stored as its sorted
    /// palette of 16 values and 32 four-bit indices, any other block as its 32 values. Streams:
    /// one flag byte per block (0 palette, 1 values) then the high bytes of every block's palette
    /// or values; the low bytes of the same, then the tail; the packed indices.
    case palette16(blocks: Int)

    public var description: String {
        switch self {
        case .none: "none"
        case .byteGroups(let k): "bytes\(k)"
        case .splitBF16: "split-bf16"
        case .splitF32: "split-f32"
        case .blockScales(let b, let a, let n): "scales\(b):\(a):\(n)"
        case .palette16(let p): "palette16:\(p)"
        }
    }

    /// Parses `description`; nil for anything else (including group sizes outside 2...4096).
    public init?(_ text: String) {
        switch text {
        case "none": self = .none
        case "split-bf16": self = .splitBF16
        case "split-f32": self = .splitF32
        default:
            if text.hasPrefix("palette16:") {
                guard let p = Int(text.dropFirst(10)), p >= 0, p <= 1 << 40 else { return nil }
                self = .palette16(blocks: p)
                return
            }
            if text.hasPrefix("scales") {
                let parts = text.dropFirst(6).split(separator: ":", omittingEmptySubsequences: false).map { Int($0) }
                guard parts.count == 3, let b = parts[0], let a = parts[1], let n = parts[2],
                      (2 ... 4096).contains(b), a >= 0, n >= 1, a + n <= b else { return nil }
                self = .blockScales(block: b, start: a, count: n)
                return
            }
            guard text.hasPrefix("bytes"), let k = Int(text.dropFirst(5)), (2 ... 4096).contains(k) else { return nil }
            self = .byteGroups(k)
        }
    }

    /// How a frame of `n` bytes, once transformed, divides into streams that are compressed (or
    /// stored) independently. The first stream of a split is the one with few distinct values
    /// (exponents, scales, high bytes); the rest is close to random and usually stored as is.
    public func streamLengths(_ n: Int) -> [Int] {
        switch self {
        case .none: return [n]
        case .byteGroups(let k):
            guard k == 2 else { return [n] }
            let r = n / 2
            return [r, n - r]                                  // low bytes, then high bytes and the tail
        case .splitBF16:
            let m = n / 2
            return [m, n - m]
        case .splitF32:
            let m = n / 4
            return [m, n - m]
        case .blockScales(let b, _, let h):
            let scales = n / b * h
            return [scales, n - scales]
        case .palette16(let p):
            let blocks = n / 64, values = blocks - min(p, blocks)
            let planes = 16 * min(p, blocks) + 32 * values
            return [blocks + planes, planes + n % 64, 16 * min(p, blocks)]
        }
    }

    /// Whether a frame of `length` bytes can carry this transform (checked on reading, before
    /// any stream is decoded).
    public func accepts(length: Int) -> Bool {
        if case .palette16(let p) = self { return p <= length / 64 }
        return true
    }

    /// Which stream holds the few-valued bytes (coded for their skewed histogram), if any.
    public var skewedStream: Int? {
        switch self {
        case .none: nil
        case .byteGroups(let k): k == 2 ? 1 : nil
        case .splitBF16, .splitF32, .blockScales, .palette16: 0
        }
    }

    /// Records per tile in the byte-group loops.
    static let tile = 512

    /// Record size in bytes (chunks of a tensor are cut at multiples of it).
    public var recordBytes: Int {
        switch self {
        case .none: 1
        case .byteGroups(let k): k
        case .splitBF16: 2
        case .splitF32: 4
        case .blockScales(let b, _, _): b
        case .palette16: 64
        }
    }

    /// `dst[0..<transformedLength(src.count)]` = transform(src). Not for the palette, whose
    /// layout depends on the data: `Packer.encode` applies it through `Palette16.forward`.
    func forward(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) {
        let n = src.count
        guard n > 0 else { return }
        let s = src.bindMemory(to: UInt8.self), d = dst.bindMemory(to: UInt8.self)
        switch self {
        case .none:
            if n > 0 { dst.baseAddress!.copyMemory(from: src.baseAddress!, byteCount: n) }
        case .byteGroups(2):
            let r = n / 2
            let a = src.baseAddress!, out = dst.baseAddress!
            for i in 0 ..< r {
                let v = UInt16(littleEndian: a.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                out.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: i, as: UInt8.self)
                out.storeBytes(of: UInt8(truncatingIfNeeded: v >> 8), toByteOffset: r + i, as: UInt8.self)
            }
            copyTail(s, d, from: r * 2, count: n)
        case .byteGroups(let k):
            // [records][k] -> [k][records]
            Transform.transpose(s.baseAddress!, d.baseAddress!, rows: n / k, columns: k)
            copyTail(s, d, from: n / k * k, count: n)
        case .splitBF16:
            let m = n / 2
            for i in 0 ..< m {
                let lo = s[2 * i], hi = s[2 * i + 1]
                d[i] = (hi << 1) | (lo >> 7)              // exponent
                d[m + i] = (hi & 0x80) | (lo & 0x7F)      // sign | mantissa
            }
            copyTail(s, d, from: m * 2, count: n)
        case .splitF32:
            let m = n / 4
            for i in 0 ..< m {
                let b0 = s[4 * i], b1 = s[4 * i + 1], b2 = s[4 * i + 2], b3 = s[4 * i + 3]
                d[i] = (b3 << 1) | (b2 >> 7)              // exponent
                d[m + i] = (b3 & 0x80) | (b2 & 0x7F)      // sign | mantissa bits 22..16
                d[2 * m + i] = b1                         // mantissa bits 15..8
                d[3 * m + i] = b0                         // mantissa bits 7..0
            }
            copyTail(s, d, from: m * 4, count: n)
        case .blockScales(let b, let a, let h):
            let blocks = n / b
            let quantStart = blocks * h
            for blk in 0 ..< blocks {
                let base = blk * b
                for j in 0 ..< h { d[j * blocks + blk] = s[base + a + j] }
                let q = quantStart + blk * (b - h)
                copyBytes(from: src.baseAddress! + base, to: dst.baseAddress! + q, count: a)
                copyBytes(from: src.baseAddress! + base + a + h, to: dst.baseAddress! + q + a, count: b - a - h)
            }
            copyTail(s, d, from: blocks * b, count: n)
        case .palette16:
            preconditionFailure("the palette is chosen and applied by Packer.encode through Palette16.forward")
        }
    }

    /// Bytes the transform turns `n` input bytes into (the sum of `streamLengths(n)`; equal to
    /// n for every transform but the palette).
    public func transformedLength(_ n: Int) -> Int { streamLengths(n).reduce(0, +) }

    /// `dst` = inverse(src), for the transformed bytes (`transformedLength(dst.count)` of them)
    /// in one buffer. Throws only when the bytes contradict the transform (palette flags).
    public func inverse(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) throws {
        if case .palette16(let p) = self {
            try Palette16.inverse(src, into: dst, paletteBlocks: p)
            return
        }
        let lengths = streamLengths(dst.count)
        let first = UnsafeRawBufferPointer(rebasing: src[0 ..< lengths[0]])
        let second = UnsafeRawBufferPointer(rebasing: src[lengths[0]...])
        inverse(first, second, into: dst)
    }

    /// The streams a frame's inverse can read where they lie (no copy into one buffer).
    var readsStreamsInPlace: Bool { streamLengths(0).count <= 2 }

    /// `dst` = inverse of the streams `first` and `second` (as `streamLengths(dst.count)` cuts
    /// them; `second` is empty for one-stream transforms), for transforms of at most two streams
    /// (`readsStreamsInPlace`). The streams need not be adjacent, so a stored stream is read
    /// straight from the artifact, with no copy.
    func inverse(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) {
        let n = dst.count
        guard n > 0, let out = dst.baseAddress, let a = first.baseAddress else { return }
        let b = second.baseAddress ?? a
        switch self {
        case .none:
            out.copyMemory(from: a, byteCount: n)
        case .byteGroups(2):
            let r = n / 2                                   // first: low bytes; second: high bytes, tail
            for i in 0 ..< r {
                let v = UInt16(a.load(fromByteOffset: i, as: UInt8.self)) | UInt16(b.load(fromByteOffset: i, as: UInt8.self)) << 8
                out.storeBytes(of: v.littleEndian, toByteOffset: 2 * i, as: UInt16.self)
            }
            if n % 2 == 1 { out.storeBytes(of: b.load(fromByteOffset: r, as: UInt8.self), toByteOffset: n - 1, as: UInt8.self) }
        case .byteGroups(let k):
            // [k][records] -> [records][k]
            let s = a.assumingMemoryBound(to: UInt8.self), d = out.assumingMemoryBound(to: UInt8.self)
            let records = n / k
            Transform.transpose(s, d, rows: k, columns: records)
            for i in records * k ..< n { d[i] = s[i] }
        case .splitBF16:
            let m = n / 2                                   // first: exponents; second: sign|mantissa, tail
            for i in 0 ..< m {
                let e = UInt16(a.load(fromByteOffset: i, as: UInt8.self)), sm = UInt16(b.load(fromByteOffset: i, as: UInt8.self))
                let v = (sm & 0x80) << 8 | e << 7 | (sm & 0x7F)
                out.storeBytes(of: v.littleEndian, toByteOffset: 2 * i, as: UInt16.self)
            }
            if n % 2 == 1 { out.storeBytes(of: b.load(fromByteOffset: m, as: UInt8.self), toByteOffset: n - 1, as: UInt8.self) }
        case .splitF32:
            let m = n / 4                                   // first: exponents; second: sign|mantissa-high, mid, low, tail
            for i in 0 ..< m {
                let e = UInt32(a.load(fromByteOffset: i, as: UInt8.self)), sm = UInt32(b.load(fromByteOffset: i, as: UInt8.self))
                let mid = UInt32(b.load(fromByteOffset: m + i, as: UInt8.self)), lo = UInt32(b.load(fromByteOffset: 2 * m + i, as: UInt8.self))
                let v = (sm & 0x80) << 24 | e << 23 | (sm & 0x7F) << 16 | mid << 8 | lo
                out.storeBytes(of: v.littleEndian, toByteOffset: 4 * i, as: UInt32.self)
            }
            for t in 0 ..< n % 4 {
                out.storeBytes(of: b.load(fromByteOffset: 3 * m + t, as: UInt8.self), toByteOffset: 4 * m + t, as: UInt8.self)
            }
        case .blockScales(let blockBytes, 0, let h) where h == 2 || h == 4:
            // The common layouts (Q4_0, Q5_0, Q8_0, IQ4_NL: a 2-byte scale; Q4_1, Q5_1: 4 bytes)
            // with the scales first: gather them into one word, then copy the quants.
            let blocks = n / blockBytes
            let quants = blockBytes - h
            for blk in 0 ..< blocks {
                let base = blk * blockBytes
                let s0 = UInt32(a.load(fromByteOffset: blk, as: UInt8.self)), s1 = UInt32(a.load(fromByteOffset: blocks + blk, as: UInt8.self))
                if h == 2 {
                    out.storeBytes(of: UInt16(s0 | s1 << 8).littleEndian, toByteOffset: base, as: UInt16.self)
                } else {
                    let s2 = UInt32(a.load(fromByteOffset: 2 * blocks + blk, as: UInt8.self))
                    let s3 = UInt32(a.load(fromByteOffset: 3 * blocks + blk, as: UInt8.self))
                    out.storeBytes(of: (s0 | s1 << 8 | s2 << 16 | s3 << 24).littleEndian, toByteOffset: base, as: UInt32.self)
                }
                copyBytes(from: b + blk * quants, to: out + base + h, count: quants)
            }
            copyBytes(from: b + blocks * quants, to: out + blocks * blockBytes, count: n - blocks * blockBytes)
        case .blockScales(let blockBytes, let at, let h):
            let blocks = n / blockBytes                     // first: scales, transposed; second: quants, tail
            let quants = blockBytes - h
            for blk in 0 ..< blocks {
                let base = blk * blockBytes
                for j in 0 ..< h {
                    out.storeBytes(of: a.load(fromByteOffset: j * blocks + blk, as: UInt8.self), toByteOffset: base + at + j, as: UInt8.self)
                }
                let q = blk * quants
                copyBytes(from: b + q, to: out + base, count: at)
                copyBytes(from: b + q + at, to: out + base + at + h, count: quants - at)
            }
            copyBytes(from: b + blocks * quants, to: out + blocks * blockBytes, count: n - blocks * blockBytes)
        case .palette16:
            break  // three streams: restored through `inverse(_:into:)`
        }
    }

    /// `dst[c * rows + r] = src[r * columns + c]`: a byte matrix transposed, in tiles of `tile`
    /// along the long side so that the strided accesses stay inside the L1 cache.
    static func transpose(_ src: UnsafePointer<UInt8>, _ dst: UnsafeMutablePointer<UInt8>, rows: Int, columns: Int) {
        if rows >= columns {
            var r0 = 0
            while r0 < rows {
                let r1 = min(r0 + tile, rows)
                for c in 0 ..< columns {
                    var i = r0 * columns + c
                    let o = c * rows
                    for r in r0 ..< r1 { dst[o + r] = src[i]; i += columns }
                }
                r0 = r1
            }
        } else {
            var c0 = 0
            while c0 < columns {
                let c1 = min(c0 + tile, columns)
                for r in 0 ..< rows {
                    let i = r * columns
                    var o = c0 * rows + r
                    for c in c0 ..< c1 { dst[o] = src[i + c]; o += rows }
                }
                c0 = c1
            }
        }
    }

    /// A short copy: 8-byte words, then bytes (quant runs are 16 to 256 bytes).
    @inline(__always)
    private func copyBytes(from src: UnsafeRawPointer, to dst: UnsafeMutableRawPointer, count: Int) {
        var i = 0
        while count - i >= 8 {
            dst.storeBytes(of: src.loadUnaligned(fromByteOffset: i, as: UInt64.self), toByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < count {
            dst.storeBytes(of: src.load(fromByteOffset: i, as: UInt8.self), toByteOffset: i, as: UInt8.self)
            i += 1
        }
    }

    private func copyTail(_ s: UnsafeBufferPointer<UInt8>, _ d: UnsafeMutableBufferPointer<UInt8>, from start: Int, count: Int) {
        var i = start
        while i < count { d[i] = s[i]; i += 1 }
    }
}
