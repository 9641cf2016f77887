import IngotFormats

/// Finding NaN and infinity in weights and activations: a file can parse and still hold values no model computes
/// with, and a quantizer fed one writes a NaN scale for its whole block.
public enum NonFinite {
    /// The index of the first NaN or infinity among `count` floats, or nil. A finite x gives x - x = 0 exactly, a NaN
    /// or an infinity gives NaN, so blocks of 16 are summed that way and only a block whose sum is not 0 is searched.
    public static func first(_ p: UnsafePointer<Float>, count: Int) -> Int? {
        var i = 0
        while i + 16 <= count {
            var acc = SIMD16<Float>()
            let end = min(count, i + 1024) & ~15
            var j = i
            while j < end {
                let v = UnsafeRawPointer(p + j).loadUnaligned(as: SIMD16<Float>.self)
                acc += v - v
                j += 16
            }
            if acc != SIMD16<Float>() {
                for k in i ..< end where !p[k].isFinite { return k }
            }
            i = end
        }
        for k in i ..< count where !p[k].isFinite { return k }
        return nil
    }

    /// The index of the first NaN or infinity in `values`, or nil (also when `values` is empty).
    public static func first(in values: UnsafeBufferPointer<Float>) -> Int? {
        guard let p = values.baseAddress, !values.isEmpty else { return nil }
        return first(p, count: values.count)
    }

    public static func first(in values: [Float]) -> Int? { values.withUnsafeBufferPointer { first(in: $0) } }

    /// `firstRow` over the rows of `columns` values that `data` holds whole (at most `rows`): an empty buffer, or
    /// one shorter than its shape says, is never read past its end.
    public static func firstRow(_ type: GGMLType, _ data: UnsafeRawBufferPointer, rows: Int, columns: Int)
        -> (row: Int, column: Int, value: Float)?
    {
        guard let p = data.baseAddress, columns > 0, columns % type.blockSize == 0,
              let rowBytes = type.byteCount(elements: columns), rowBytes > 0 else { return nil }
        return firstRow(type, p, rows: min(rows, data.count / rowBytes), columns: columns)
    }

    /// The first (row, column) of `rows` rows of `columns` floats holding a NaN or infinity, or nil.
    public static func first(_ p: UnsafePointer<Float>, rows: Int, columns: Int) -> (row: Int, column: Int)? {
        guard columns > 0, let k = first(p, count: rows * columns) else { return nil }
        return (k / columns, k % columns)
    }

    /// The first row of a tensor of `type` holding a NaN or infinity once decoded: `data` holds `rows` rows of
    /// `columns` values. Float tensors are read in place; others are decoded a batch of rows at a time.
    public static func firstRow(_ type: GGMLType, _ data: UnsafeRawPointer, rows: Int, columns: Int)
        -> (row: Int, column: Int, value: Float)?
    {
        guard rows > 0, columns > 0 else { return nil }
        if type == .f32 {
            let f = data.assumingMemoryBound(to: Float.self)
            return first(f, rows: rows, columns: columns).map { ($0.row, $0.column, f[$0.row * columns + $0.column]) }
        }
        guard BlockCodec.canDequantize(type), columns % type.blockSize == 0 else { return nil }
        let rowBytes = columns / type.blockSize * type.bytesPerBlock
        let batch = max(1, min(rows, (1 << 16) / columns))
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: batch * columns)
        defer { buffer.deallocate() }
        var r = 0
        while r < rows {
            let n = min(batch, rows - r)
            BlockCodec.dequantize(type, data + r * rowBytes, count: n * columns, into: buffer)
            if let bad = first(buffer, rows: n, columns: columns) {
                return (r + bad.row, bad.column, buffer[bad.row * columns + bad.column])
            }
            r += n
        }
        return nil
    }
}
