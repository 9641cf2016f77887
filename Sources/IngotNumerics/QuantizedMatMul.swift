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
    /// The tiles packed k-major, where the product runs on panels.
    let panels: [ReusableBuffer]
    let activations = ReusableBuffer()
    public init(threads: Int) {
        self.threads = max(1, threads)
        tiles = (0..<max(1, threads)).map { _ in ReusableBuffer() }
        panels = (0..<max(1, threads)).map { _ in ReusableBuffer() }
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
                                activations: ActivationRounding = .exact, kernels: KernelChoice = Kernels.choice) {
        let panels = MatMul.usesPanels(kernels)
        let tileRows = panels ? MatMul.panelRows : Self.tileRows
        let tiles = (w.rows + tileRows - 1) / tileRows
        var input = x
        if activations == .llamaCpp && ActivationRounding.vecDotType(for: w.type) != nil {
            let copy = workspace.activations.get(tokens * w.cols * 4).baseAddress!.assumingMemoryBound(to: Float.self)
            copy.update(from: x, count: tokens * w.cols)
            // Rows are rounded independently: split them among the workers.
            let parts = min(workspace.threads, tokens), cs = UnsafeSendable(UnsafePointer(copy)), cols = w.cols, type = w.type
            try? parallelFor(0..<parts, threads: parts) { p, _ in
                let r0 = tokens * p / parts, r1 = tokens * (p + 1) / parts
                ActivationRounding.round(UnsafeMutablePointer(mutating: cs.pointer) + r0 * cols, count: (r1 - r0) * cols,
                                         cols: cols, for: type)
            }
            input = UnsafePointer(copy)
        }
        let xs = UnsafeSendable(input), ys = UnsafeSendable(UnsafePointer(y))
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
            let out = UnsafeMutablePointer(mutating: ys.pointer) + r0
            if panels {
                let panel = workspace.panels[worker].get(MatMul.panelRows * w.cols * 4).baseAddress!.assumingMemoryBound(to: Float.self)
                MatMul.multiplyPanel(xs.pointer, ldx: w.cols, wf, k: w.cols, tokens: tokens, rows: n, panel: panel, out, ldy: ldy)
            } else {
                MatMul.gemm(xs.pointer, ldx: w.cols, wf, ldw: w.cols, k: w.cols, tokens: tokens, rows: n, out, ldy: ldy,
                            kernels: kernels)
            }
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

/// How the activations meet the weights. llama.cpp's CPU backend does not multiply floats by quantized weights: it
/// first converts each activation row to the weight type's `vec_dot_type` (ggml-cpu.c `type_traits_cpu`): Q8_0 for
/// Q4_0/Q5_0/Q8_0/IQ4_NL/MXFP4, Q8_1 (the same 8-bit values) for Q4_1/Q5_1, Q8_K for the K-quants and IQ types,
/// F16 for F16 and BF16 for BF16, then takes integer dot products. `.llamaCpp` reproduces that rounding (the
/// activations are quantized that way and expanded back to floats), so the products equal llama.cpp's up to the
/// order of float sums; `.exact` multiplies the float activations as they are.
public enum ActivationRounding: String, Sendable, CaseIterable {
    case llamaCpp = "llama.cpp", exact

    /// The format llama.cpp converts activations to for weights of `type`; nil for none (F32 weights).
    public static func vecDotType(for type: GGMLType) -> GGMLType? {
        switch type {
        case .f32: nil
        case .f16: .f16
        case .bf16: .bf16
        case .q4_0, .q5_0, .q8_0, .iq4_NL, .mxfp4, .q4_1, .q5_1: .q8_0
        default: .q8_K
        }
    }

    /// Rounds `count` activations (a whole number of rows of `cols`) in place as llama.cpp would for `weights`.
    /// Activations holding a NaN or an infinity are left as they are: rounded, they would come out as finite numbers
    /// (a block scale of NaN, codes from its bits) and the product would hide that the pass went wrong.
    public static func round(_ x: UnsafeMutablePointer<Float>, count: Int, cols: Int, for weights: GGMLType) {
        guard let t = vecDotType(for: weights), NonFinite.first(x, count: count) == nil else { return }
        roundTrip(x, count: count, cols: cols, through: t)
    }

    /// Stores `count` values (rows of `cols`) in format `t` and reads them back, in place: Q8_K by its own rule,
    /// every other type through its quantizer and dequantizer. Rows that are not whole blocks are left as they are.
    public static func roundTrip(_ x: UnsafeMutablePointer<Float>, count: Int, cols: Int, through t: GGMLType) {
        guard cols % t.blockSize == 0 else { return }
        if t == .q8_K {
            var i = 0
            while i + 256 <= count {
                roundQ8K(x + i)
                i += 256
            }
            return
        }
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: t.byteCount(elements: cols) ?? 0, alignment: 16)
        defer { bytes.deallocate() }
        var scratch = QuantScratch()
        var r = 0
        while r + cols <= count {
            BlockCodec.quantize(t, x + r, count: cols, into: bytes, scratch: &scratch)
            BlockCodec.dequantize(t, bytes, count: cols, into: x + r)
            r += cols
        }
    }

    /// ggml's `quantize_row_q8_K_ref` and back: 256 values share d = max / -127, where max is the value of largest
    /// magnitude; q = min(127, nearest(x / d)).
    static func roundQ8K(_ x: UnsafeMutablePointer<Float>) {
        var amax: Float = 0, mx: Float = 0
        for j in 0..<256 where abs(x[j]) > amax { amax = abs(x[j]); mx = x[j] }
        guard amax != 0 else { for j in 0..<256 { x[j] = 0 }; return }
        let iscale = -127 / mx
        let d = 1 / iscale
        for j in 0..<256 {
            let v = iscale * x[j] + 12582912
            let q = min(127, (Int32(bitPattern: v.bitPattern) & 0x007f_ffff) - 0x0040_0000)
            x[j] = d * Float(q)
        }
    }
}
