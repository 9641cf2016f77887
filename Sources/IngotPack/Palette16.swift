import IngotFormats

/// The palette transform for 16-bit values (`Transform.palette16`): blocks of 32 values holding
/// at most 16 distinct ones are stored as a sorted palette of 16 values (the last repeated to fill)
/// and 32 four-bit indices. Weights dequantized from Q4_0/Q4_1-style formats have exactly this
/// shape, which byte planes hide from zstd and a palette lays bare.
///
/// Layout of the transformed bytes for n input bytes, `blocks = n / 64`, P palette blocks:
///   stream 0: flags[blocks] (0 palette, 1 values), then for each block the high bytes of its
///             16 palette entries or of its 32 values
///   stream 1: the low bytes, in the same order, then the n % 64 tail bytes
///   stream 2: for each palette block, 16 bytes of packed indices (element 2i in the low nibble)
enum Palette16 {
    static let blockBytes = 64

    /// Lookup tables over all 65,536 values, reused from block to block: `stamp[v]` marks v as
    /// seen in the current block (a new stamp per block, so nothing is cleared), `rank[v]` is v's
    /// index in the block's sorted palette. 320 KiB per worker, inside the L2 cache.
    final class Tables: @unchecked Sendable {
        let stamp = UnsafeMutablePointer<UInt32>.allocate(capacity: 1 << 16)
        let rank = UnsafeMutablePointer<UInt8>.allocate(capacity: 1 << 16)
        var current: UInt32 = 0
        let palette = UnsafeMutablePointer<UInt16>.allocate(capacity: 17)

        init() { stamp.initialize(repeating: 0, count: 1 << 16) }

        deinit {
            stamp.deallocate()
            rank.deallocate()
            palette.deallocate()
        }

        /// A stamp no value carries yet.
        func nextStamp() -> UInt32 {
            if current == .max {
                stamp.update(repeating: 0, count: 1 << 16)
                current = 0
            }
            current &+= 1
            return current
        }
    }

    /// The distinct values of block `blk`, sorted, at the start of `t.palette`, with their ranks
    /// in `t.rank`; returns their count, or 17 as soon as a 17th appears (not a palette block).
    @inline(__always)
    static func distinct(_ src: UnsafeRawPointer, block blk: Int, _ t: Tables) -> Int {
        let base = blk &* blockBytes
        let mark = t.nextStamp()
        let palette = t.palette
        var k = 0
        for i in 0 ..< 32 {
            let v = UInt16(littleEndian: src.loadUnaligned(fromByteOffset: base &+ 2 &* i, as: UInt16.self))
            if t.stamp[Int(v)] != mark {
                t.stamp[Int(v)] = mark
                if k == 16 { return 17 }
                palette[k] = v
                k &+= 1
            }
        }
        for i in 1 ..< max(k, 1) {               // insertion sort of at most 16 values
            let v = palette[i]
            var j = i
            while j > 0 && palette[j &- 1] > v { palette[j] = palette[j &- 1]; j &-= 1 }
            palette[j] = v
        }
        for i in 0 ..< k { t.rank[Int(palette[i])] = UInt8(truncatingIfNeeded: i) }
        return k
    }

    /// Whether a palette is worth trying on `src`: a sample of one block in 16, at least half of
    /// which must have at most 16 distinct values.
    static func worthTrying(_ src: UnsafeRawBufferPointer, _ t: Tables) -> Bool {
        let blocks = src.count / blockBytes
        guard blocks >= 16, let base = src.baseAddress else { return false }
        var sampled = 0, hits = 0
        for blk in stride(from: 0, to: blocks, by: 16) {
            sampled += 1
            if distinct(base, block: blk, t) <= 16 { hits += 1 }
        }
        return hits * 2 >= sampled
    }

    /// Transforms `src` in one pass: high bytes go straight to their place in `dst`; low bytes
    /// and indices go to `lows` and `indices` (at least `src.count` and `src.count / 4` bytes)
    /// and are moved into place once the number of palette blocks, which fixes their offsets,
    /// is known. Returns that number, or nil when fewer than half the blocks are palette blocks
    /// (`dst` then holds nothing useful).
    static func forward(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer,
                        lows: UnsafeMutableRawBufferPointer, indices: UnsafeMutableRawBufferPointer, tables t: Tables) -> Int? {
        let n = src.count, blocks = n / blockBytes
        guard let s = src.baseAddress, let d = dst.baseAddress, let lo = lows.baseAddress, let ix = indices.baseAddress else { return nil }
        var hi = blocks, loPos = 0, idx = 0, p = 0
        let palette = t.palette
        for blk in 0 ..< blocks {
            let base = blk &* blockBytes
            let k = distinct(s, block: blk, t)
            if k <= 16 {
                d.storeBytes(of: 0, toByteOffset: blk, as: UInt8.self)
                for i in 0 ..< 16 {
                    let v = palette[i < k ? i : k &- 1]
                    d.storeBytes(of: UInt8(truncatingIfNeeded: v >> 8), toByteOffset: hi &+ i, as: UInt8.self)
                    lo.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: loPos &+ i, as: UInt8.self)
                }
                hi &+= 16
                loPos &+= 16
                for pair in 0 ..< 16 {
                    var packed: UInt8 = 0
                    for half in 0 ..< 2 {
                        let v = UInt16(littleEndian: s.loadUnaligned(fromByteOffset: base &+ 4 &* pair &+ 2 &* half, as: UInt16.self))
                        packed |= t.rank[Int(v)] << (4 &* half)
                    }
                    ix.storeBytes(of: packed, toByteOffset: idx &+ pair, as: UInt8.self)
                }
                idx &+= 16
                p &+= 1
            } else {
                d.storeBytes(of: 1, toByteOffset: blk, as: UInt8.self)
                for i in 0 ..< 32 {
                    let v = UInt16(littleEndian: s.loadUnaligned(fromByteOffset: base &+ 2 &* i, as: UInt16.self))
                    d.storeBytes(of: UInt8(truncatingIfNeeded: v >> 8), toByteOffset: hi &+ i, as: UInt8.self)
                    lo.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: loPos &+ i, as: UInt8.self)
                }
                hi &+= 32
                loPos &+= 32
            }
        }
        guard p * 2 >= blocks else { return nil }
        for t in 0 ..< n % blockBytes {
            lo.storeBytes(of: s.load(fromByteOffset: blocks * blockBytes + t, as: UInt8.self), toByteOffset: loPos + t, as: UInt8.self)
        }
        let lengths = Transform.palette16(blocks: p).streamLengths(n)
        (d + lengths[0]).copyMemory(from: lo, byteCount: lengths[1])
        if idx > 0 { (d + lengths[0] + lengths[1]).copyMemory(from: ix, byteCount: idx) }
        return p
    }

    /// Restores `dst` from the transformed bytes; the flags must agree with the declared number
    /// of palette blocks (else the streams would be misread), which is checked first.
    static func inverse(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer, paletteBlocks p: Int) throws {
        let n = dst.count, blocks = n / blockBytes
        guard let s = src.baseAddress, let d = dst.baseAddress else { return }
        var palettes = 0
        for blk in 0 ..< blocks {
            switch s.load(fromByteOffset: blk, as: UInt8.self) {
            case 0: palettes += 1
            case 1: break
            default:
                throw FormatError(.invalidValue, field: "palette flags", offset: nil, "block \(blk) has flag \(s.load(fromByteOffset: blk, as: UInt8.self)), not 0 or 1")
            }
        }
        guard palettes == p else {
            throw FormatError(.invalidValue, field: "palette flags", offset: nil, "\(palettes) palette blocks, but the transform declares \(p)")
        }
        let lengths = Transform.palette16(blocks: p).streamLengths(n)
        var hi = blocks, lo = lengths[0], idx = lengths[0] + lengths[1]
        var palette = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))  // 16 x UInt16 scratch on the stack
        try withUnsafeMutableBytes(of: &palette) { raw in
            let pal = raw.bindMemory(to: UInt16.self)
            for blk in 0 ..< blocks {
                let base = blk * blockBytes
                if s.load(fromByteOffset: blk, as: UInt8.self) == 0 {
                    for i in 0 ..< 16 {
                        pal[i] = UInt16(s.load(fromByteOffset: hi &+ i, as: UInt8.self)) << 8 | UInt16(s.load(fromByteOffset: lo &+ i, as: UInt8.self))
                    }
                    // Eight index bytes at a time; each byte gives two values, stored as one word.
                    for half in 0 ..< 2 {
                        var packed = UInt64(littleEndian: s.loadUnaligned(fromByteOffset: idx &+ 8 &* half, as: UInt64.self))
                        for pair in 0 ..< 8 {
                            let v = UInt32(pal[Int(packed & 15)]) | UInt32(pal[Int((packed >> 4) & 15)]) << 16
                            d.storeBytes(of: v.littleEndian, toByteOffset: base &+ 32 &* half &+ 4 &* pair, as: UInt32.self)
                            packed >>= 8
                        }
                    }
                    hi &+= 16
                    lo &+= 16
                    idx &+= 16
                } else {
                    for i in 0 ..< 32 {
                        let v = UInt16(s.load(fromByteOffset: hi + i, as: UInt8.self)) << 8 | UInt16(s.load(fromByteOffset: lo + i, as: UInt8.self))
                        d.storeBytes(of: v.littleEndian, toByteOffset: base + 2 * i, as: UInt16.self)
                    }
                    hi += 32
                    lo += 32
                }
            }
        }
        for t in 0 ..< n % blockBytes {
            d.storeBytes(of: s.load(fromByteOffset: lo + t, as: UInt8.self), toByteOffset: blocks * blockBytes + t, as: UInt8.self)
        }
    }
}
