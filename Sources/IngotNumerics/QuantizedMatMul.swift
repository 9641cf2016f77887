import IngotFormats

/// A weight matrix as a file stores it: `rows` rows of `cols` values of `type`, row-major (GGUF dims
/// `[cols, rows]`), read in place from the memory map.
public struct StoredMatrix: @unchecked Sendable {
    public let type: GGMLType
    public let rows: Int
    public let cols: Int
    public let data: UnsafeRawPointer
    public let rowBytes: Int

    /// nil when a row of `cols` values is not a whole number of the type's blocks or the type cannot be read.
    public init?(type: GGMLType, rows: Int, cols: Int, data: UnsafeRawPointer) {
        guard BlockCodec.canDequantize(type), cols > 0, rows > 0, cols % type.blockSize == 0,
              let rb = type.byteCount(elements: cols) else { return nil }
        self.type = type
        self.rows = rows
        self.cols = cols
        self.data = data
        self.rowBytes = rb
    }

    /// Rows `first ..< first + count` as floats, `cols` apart.
    public func dequantize(rows first: Int, count: Int, into dst: UnsafeMutablePointer<Float>,
                           kernels: KernelChoice = Kernels.choice) {
        BlockCodec.dequantize(type, data + first * rowBytes, count: count * cols, into: dst, kernels: kernels)
    }
}

/// Per-worker scratch for the matrix products (the dequantized tiles), kept from call to call.
public final class MatMulWorkspace: @unchecked Sendable {
    public let threads: Int
    let tiles: [ReusableBuffer]
    public init(threads: Int) {
        self.threads = max(1, threads)
        tiles = (0..<max(1, threads)).map { _ in ReusableBuffer() }
    }
}

/// `Y = X · Wᵀ` for a stored weight matrix of any GGUF type: rows are split into tiles of `tileRows`, each worker
/// dequantizes one tile to floats (the bit-exact dequantizers) and multiplies it against every token with
/// `MatMul.gemm`. The dequantization is paid once per weight per call, however many tokens there are.
public enum QuantizedMatMul {
    public static let tileRows = 24

    /// y[t * ldy + r] = Σ_i x[t * cols + i] · W[r, i] for t < tokens.
    public static func multiply(_ w: StoredMatrix, _ x: UnsafePointer<Float>, tokens: Int,
                                _ y: UnsafeMutablePointer<Float>, ldy: Int, workspace: MatMulWorkspace,
                                kernels: KernelChoice = Kernels.choice) {
        let tiles = (w.rows + tileRows - 1) / tileRows
        let xs = UnsafeSendable(x), ys = UnsafeSendable(UnsafePointer(y))
        try? parallelFor(0..<tiles, threads: workspace.threads) { tile, worker in
            let r0 = tile * tileRows
            let n = min(tileRows, w.rows - r0)
            let wf: UnsafePointer<Float>
            if w.type == .f32 {
                wf = (w.data + r0 * w.rowBytes).assumingMemoryBound(to: Float.self)
            } else {
                let buf = workspace.tiles[worker].get(n * w.cols * 4).baseAddress!.assumingMemoryBound(to: Float.self)
                w.dequantize(rows: r0, count: n, into: buf, kernels: kernels)
                wf = UnsafePointer(buf)
            }
            MatMul.gemm(xs.pointer, ldx: w.cols, wf, ldw: w.cols, k: w.cols, tokens: tokens, rows: n,
                        UnsafeMutablePointer(mutating: ys.pointer) + r0, ldy: ldy, kernels: kernels)
        }
    }

    /// The same product computed the plain way: each row dequantized by the scalar reference and summed in order.
    public static func reference(_ w: StoredMatrix, _ x: UnsafePointer<Float>, tokens: Int,
                                 _ y: UnsafeMutablePointer<Float>, ldy: Int) {
        let row = UnsafeMutablePointer<Float>.allocate(capacity: w.cols)
        defer { row.deallocate() }
        for r in 0..<w.rows {
            w.dequantize(rows: r, count: 1, into: row, kernels: .reference)
            ReferenceKernels.gemm(x, ldx: w.cols, row, ldw: w.cols, k: w.cols, tokens: tokens, rows: 1, y + r, ldy: ldy)
        }
    }
}

/// A pointer handed to parallel workers that touch disjoint parts of it.
public struct UnsafeSendable<T>: @unchecked Sendable {
    public let pointer: UnsafePointer<T>
    public init(_ p: UnsafePointer<T>) { pointer = p }
}
