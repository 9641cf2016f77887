/// A per-channel rescaling of a stored tensor that leaves the model's function unchanged when its partner tensors get
/// the inverse (AWQ's smoothing): each column multiplied by `columnMultipliers[c]`, divided by `columnDivisors[c]`,
/// and each row divided by `rowDivisors[r]` (rows in the source tensor's own order). A norm's weight, one row, takes
/// column divisors; the linear layers that read its output take column multipliers; a linear layer whose output
/// another reads takes row divisors.
public struct ChannelScaling: Sendable, Equatable {
    public var columnMultipliers: [Float]?
    public var columnDivisors: [Float]?
    public var rowDivisors: [Float]?

    public init(columnMultipliers: [Float]? = nil, columnDivisors: [Float]? = nil, rowDivisors: [Float]? = nil) {
        (self.columnMultipliers, self.columnDivisors, self.rowDivisors) = (columnMultipliers, columnDivisors, rowDivisors)
    }

    /// Whether it fits a tensor of `rows` rows of `cols` values.
    public func fits(rows: Int, cols: Int) -> Bool {
        (columnMultipliers?.count ?? cols) == cols && (columnDivisors?.count ?? cols) == cols && (rowDivisors?.count ?? rows) == rows
    }

    /// Rescales `count` rows of `cols` values at `x`, the first of which is row `firstRow` of the tensor.
    public func apply(_ x: UnsafeMutablePointer<Float>, firstRow: Int, count: Int, cols: Int) {
        for k in 0..<count {
            let row = x + k * cols
            if let m = columnMultipliers { for c in 0..<cols { row[c] *= m[c] } }
            if let d = columnDivisors { for c in 0..<cols { row[c] /= d[c] } }
            if let d = rowDivisors {
                let v = d[firstRow + k]
                for c in 0..<cols { row[c] /= v }
            }
        }
    }

    /// An importance matrix's weights for the rescaled columns: the inputs the columns now read are divided by the
    /// multipliers, so their mean squares by the multipliers' squares.
    public func importance(_ w: [Float]) -> [Float] {
        guard let m = columnMultipliers, !m.isEmpty, w.count % m.count == 0 else { return w }
        return w.indices.map { w[$0] / (m[$0 % m.count] * m[$0 % m.count]) }
    }
}
