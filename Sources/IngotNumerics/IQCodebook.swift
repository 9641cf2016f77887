// The quantizing side of the IQ1/IQ2/IQ3 codebooks: what llama.cpp's `iq2xs_init_impl` and `iq3xs_init_impl` build
// before the first row of such a type is quantized.
//
// A codebook row is a lattice point of 8 (IQ1, IQ2) or 4 (IQ3) coordinates, each a level l, stored as 2l+1. A
// vector of levels packs into an index (2 or 3 bits per coordinate); `map` sends an index to its row when the
// point is in the codebook, and otherwise to its list of nearest rows: every row at the smallest `nearest`
// distinct squared distances from the point, ordered by distance and then by row (llama.cpp sorts (distance,
// row) pairs, so the order is the same). The quantizers round a scaled group to levels and, when the result is
// off the codebook, choose among that list the row of least weighted error.

final class IQCodebook: Sendable {
    /// Coordinates per row (8 or 4).
    let width: Int
    /// Bits per coordinate in an index (2 or 3).
    let shift: Int
    /// rows * width values 2l+1, row-major.
    let points: [Int8]
    /// Index -> row (>= 0), or -(offset + 1): `neighbours[offset]` is a count, the rows follow.
    let map: [Int32]
    let neighbours: [UInt16]
    /// IQ2's and IQ3's level values 2l+1 (the points as floats), a vector per row.
    let oddRows: [SIMD8<Float>]

    var rows: Int { points.count / width }

    /// `nearest`: how many distinct distances the neighbour lists span (llama.cpp's `nwant`).
    init(_ spec: IQGridSpec, nearest: Int) {
        width = spec.columns
        shift = width == 8 ? 2 : 3
        let points = spec.levels().map { Int8(2 * Int($0) + 1) }
        self.points = points
        let rows = points.count / width
        // The largest index of levels 0...2 in 8 coordinates is 0xAAAA; llama.cpp allocates 43692 entries.
        let size = width == 8 ? 43692 : 4096
        var map = [Int32](repeating: -1, count: size)
        let (width, shift) = (self.width, self.shift)
        let packed = (0..<rows).map { r in
            (0..<width).reduce(0) { u, k in u | ((Int(points[r * width + k]) - 1) / 2) << (shift * k) }
        }
        for r in 0..<rows { map[packed[r]] = Int32(r) }
        // Squared distances add over coordinates, so a row's distance to a point is the sum of its two halves'
        // distances, read from a table indexed by the halves' packed levels (a few lookups per row, not a loop).
        let halfBits = shift * width / 2, halves = 1 << halfBits
        let levelMask = (1 << shift) - 1
        var table = [Int16](repeating: 0, count: halves * halves)
        for a in 0..<halves {
            for b in 0..<halves {
                var d = 0
                for k in 0..<(width / 2) {
                    let diff = 2 * (((a >> (shift * k)) & levelMask) - ((b >> (shift * k)) & levelMask))
                    d += diff * diff
                }
                table[a * halves + b] = Int16(d)
            }
        }
        let low = packed.map { ($0 & (halves - 1)) * halves }, high = packed.map { ($0 >> halfBits) * halves }
        var neighbours: [UInt16] = []
        var d2 = [Int16](repeating: 0, count: rows)
        var buckets: [[UInt16]] = Array(repeating: [], count: nearest)
        table.withUnsafeBufferPointer { t in
            for u in 0..<size where map[u] < 0 {
                let qa = u & (halves - 1), qb = u >> halfBits
                // The `nearest` smallest distinct distances, ascending (unused slots Int16.max).
                var levels = [Int16](repeating: .max, count: nearest)
                for r in 0..<rows {
                    let v = t[low[r] + qa] &+ t[high[r] + qb]
                    d2[r] = v
                    if v < levels[nearest - 1] && !levels.contains(v) {
                        var i = nearest - 1
                        while i > 0 && levels[i - 1] > v { levels[i] = levels[i - 1]; i -= 1 }
                        levels[i] = v
                    }
                }
                for i in 0..<nearest { buckets[i].removeAll(keepingCapacity: true) }
                let farthest = levels.last { $0 != .max } ?? levels[0]
                for r in 0..<rows where d2[r] <= farthest {
                    if let i = levels.firstIndex(of: d2[r]) { buckets[i].append(UInt16(r)) }
                }
                map[u] = -Int32(neighbours.count + 1)
                neighbours.append(UInt16(buckets.reduce(0) { $0 + $1.count }))
                for b in buckets { neighbours += b }
            }
        }
        self.map = map
        self.neighbours = neighbours
        oddRows = Self.valueRows(points, width, (0..<8).map { Float(2 * $0 + 1) })
    }

    /// Built on first use (a fraction of a second each), shared by every thread.
    static let iq2xxs = IQCodebook(IQGridData.iq2xxs, nearest: 2)
    static let iq2xs = IQCodebook(IQGridData.iq2xs, nearest: 2)
    static let iq2s = IQCodebook(IQGridData.iq2s, nearest: 1)
    static let iq3xxs = IQCodebook(IQGridData.iq3xxs, nearest: 2)
    static let iq3s = IQCodebook(IQGridData.iq3s, nearest: 3)
    static let iq1s = IQCodebook(IQGridData.iq1s, nearest: 3)

    /// The index of `width` levels (each kept to its `shift` bits).
    @inline(__always)
    func index(_ L: UnsafePointer<Int8>) -> Int {
        var u = 0
        for k in 0..<width { u |= (Int(L[k]) & ((1 << shift) - 1)) << (shift * k) }
        return u
    }

    /// The row of levels `L` if it is one; otherwise its first neighbour. The quantizers only ask for points on the
    /// codebook; llama.cpp aborts where one is not (or, after non-finite input, reads past its map), Ingot keeps
    /// going with a row of the codebook.
    @inline(__always)
    func row(of L: UnsafePointer<Int8>) -> Int {
        let u = index(L)
        guard u < map.count else { return 0 }
        let m = Int(map[u])
        return m >= 0 ? m : Int(neighbours[-m])
    }

    /// Each row's level values `values[l]` as one vector (zeros past `width`).
    func valueRows(_ values: [Float]) -> [SIMD8<Float>] { Self.valueRows(points, width, values) }

    static func valueRows(_ points: [Int8], _ width: Int, _ values: [Float]) -> [SIMD8<Float>] {
        (0..<(points.count / width)).map { r in
            var v = SIMD8<Float>()
            for k in 0..<width { v[k] = values[Int((points[r * width + k] - 1) / 2)] }
            return v
        }
    }

    /// `iq2_find_best_neighbour`, `iq3_find_best_neighbour`, `iq1_find_best_neighbour2`: among the neighbours of
    /// index `u` (off the codebook), the row whose level values (`rows`: 2l+1 for IQ2 and IQ3, IQ1's shifted
    /// levels) times `scale` are nearest `x` under `weight`; its levels go to `L`. Each distance is summed
    /// coordinate by coordinate in order, as llama.cpp does; the products are computed a row at a time.
    @inline(__always)
    func bestNeighbour(_ u: Int, _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, scale: Float,
                       rows: [SIMD8<Float>], _ L: UnsafeMutablePointer<Int8>) -> Int {
        let start = -Int(map[u]) - 1
        let count = Int(neighbours[start])
        var xv = SIMD8<Float>(), wv = SIMD8<Float>()
        for i in 0..<width { xv[i] = x[i]; wv[i] = weight[i] }
        var best = Float.greatestFiniteMagnitude
        var chosen = Int(neighbours[start + 1])  // llama.cpp aborts when no distance is below FLT_MAX (non-finite)
        rows.withUnsafeBufferPointer { values in
            neighbours.withUnsafeBufferPointer { nb in
                for j in 1...count {
                    let r = Int(nb[start + j])
                    let diff = scale * values[r] - xv
                    let t = wv * diff * diff
                    var d2 = t[0]
                    for i in 1..<width { d2 += t[i] }
                    if d2 < best { best = d2; chosen = r }
                }
            }
        }
        for i in 0..<width { L[i] = (points[chosen * width + i] - 1) / 2 }
        return chosen
    }
}
