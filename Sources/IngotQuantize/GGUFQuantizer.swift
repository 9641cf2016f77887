import Dispatch
import IngotFormats
import IngotNumerics

/// Progress of a running quantization, reported after every slab.
public struct QuantProgress: Sendable {
    public var tensorIndex: Int
    public var tensorCount: Int
    public var tensorName: String
    /// Source bytes consumed so far, of `totalBytes`.
    public var doneBytes: Int
    public var totalBytes: Int
}

/// What one run did.
public struct QuantResult: Sendable {
    public var plan: QuantPlan
    public var seconds: Double
    public var outputBytes: Int
    /// With `allowNonFinite`: each tensor that held a NaN or infinity, and the first such row.
    public var nonFinite: [(tensor: String, row: Int)] = []
    /// With a shard: the part written (or found complete), its tensors, and whether it was already there.
    public var part: (path: String, tensors: Int, skipped: Bool)?

    /// What the run wrote that the user should know of (NaN or infinity kept with `allowNonFinite`).
    public var warnings: [String] {
        nonFinite.map { "\($0.tensor): row \($0.row) holds NaN or infinity, written as it is (--allow-non-finite)" }
    }
}

/// Streams a GGUF file (or any `GGUFTensorSource`, such as a Hugging Face folder converted on the fly) through a
/// `QuantPlan` into a new GGUF file.
///
/// Tensors are processed one at a time in the plan's order. A tensor whose type changes is cut into slabs of
/// whole rows (about 16 MiB of floats); each slab is split into row ranges over `threads` workers, each of
/// which dequantizes its rows into its own float buffer and quantizes them into the slab's output buffer,
/// which is then appended to the output. Memory is therefore bounded by the slab size times the thread count,
/// whatever the model's size; source pages are released once consumed. The output is written to a temporary
/// file beside `outputPath` and renamed only when complete.
public enum GGUFQuantizer {
    public static let slabFloats = 4 << 20

    /// Every tensor is checked for NaN and infinity as it goes through (copies included): the first one stops the
    /// run with an error naming the tensor, the row and the row's byte offset in the input, unless `allowNonFinite`,
    /// which lists them in the result instead.
    ///
    /// With `shard` (and the input's `SourceFingerprint`), only that shard's share of the tensors is quantized, into
    /// the part `shard.partPath(for: outputPath)` (`PartFile`); a part already complete is left as it is.
    ///
    /// `scaling` rescales tensors by name before they are quantized (AWQ's smoothing): a tensor it names is never
    /// copied as it is, and its importance weights follow its columns (`ChannelScaling.importance`).
    ///
    /// `calibrated` is asked for each tensor to quantize, in the plan's order, before its rows are read: bytes it gives
    /// (GPTQ's, in the plan's type) are written in place of the type's quantizer's; nil leaves the tensor to it.
    public static func run(input: GGUFTensorSource, plan: QuantPlan, outputPath: String, threads: Int,
                           allowNonFinite: Bool = false, shard: (spec: ShardSpec, source: String)? = nil,
                           scaling: [String: ChannelScaling] = [:], calibrated: ((String) throws -> [UInt8]?)? = nil,
                           progress: ((QuantProgress) -> Void)? = nil) throws -> QuantResult {
        let start = DispatchTime.now().uptimeNanoseconds
        let sourceByName = Dictionary(input.tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let infos = try plan.tensors.map { try GGUFTensorInfo(name: $0.name, dimensions: $0.dimensions, type: $0.targetType) }
        var selected = Array(plan.tensors.indices)
        var metadata = plan.metadata
        var path = outputPath
        if let (spec, source) = shard {
            let part = try ShardedOutput(shard: spec, source: source, outputPath: outputPath, metadata: plan.metadata, tensors: infos,
                                         costs: plan.tensors.map { $0.sourceBytes + $0.targetBytes })
            (selected, metadata, path) = (part.selected, part.metadata, part.path)
            if part.isComplete {
                var result = QuantResult(plan: plan, seconds: 0, outputBytes: 0)
                result.part = (path, selected.count, true)
                return result
            }
        }
        let writer = try GGUFWriter(path: path, metadata: metadata, tensors: selected.map { infos[$0] })
        var nonFinite: [(tensor: String, row: Int)] = []
        func found(_ src: GGUFTensorInfo, row: Int, column: Int, value: Float, rowBytes: Int) throws {
            if allowNonFinite {
                nonFinite.append((src.name, row))
                return
            }
            throw QuantError(.nonFinite, tensor: src.name, offset: input.fileOffset(of: src).map { $0 + row * rowBytes },
                             "row \(row) holds \(value) at column \(column); a quantized block of it would carry a NaN scale "
                             + "(--allow-non-finite writes it anyway)")
        }
        do {
            let total = selected.reduce(0) { $0 + plan.tensors[$1].sourceBytes }
            var done = 0
            let workers = max(1, threads)
            let floatBuffers = (0..<workers).map { _ in ReusableBuffer() }
            let scratch = ScratchPool(count: workers)
            let outBuffer = ReusableBuffer()
            for index in selected {
                let p = plan.tensors[index]
                guard let src = sourceByName[p.name] else {
                    throw QuantError(.unsupportedType, tensor: p.name, "tensor missing from the input")
                }
                if !p.isCopy, let bytes = try calibrated?(p.name) {
                    guard bytes.count == p.targetBytes else {
                        throw QuantError(.unsupportedType, tensor: p.name, "the calibrated method gave \(bytes.count) bytes for \(p.targetBytes)")
                    }
                    try bytes.withUnsafeBytes { try writer.write($0) }
                    done += p.sourceBytes
                    input.release(src, bytes: 0..<src.byteCount)
                    progress?(QuantProgress(tensorIndex: index, tensorCount: plan.tensors.count, tensorName: p.name,
                                            doneBytes: done, totalBytes: total))
                    continue
                }
                let scale = scaling[p.name]
                if let scale, !scale.fits(rows: p.elementCount / max(1, p.dimensions[0]), cols: p.dimensions[0]) {
                    throw QuantError(.unsupportedType, tensor: p.name, "a rescaling of other widths than the tensor's")
                }
                try input.withBytes(of: src) { data in
                    if p.isCopy && scale == nil {
                        let columns = max(1, p.dimensions[0])
                        if let bad = NonFinite.firstRow(src.type, data, rows: p.elementCount / columns, columns: columns) {
                            try found(src, row: bad.row, column: bad.column, value: bad.value, rowBytes: src.byteCount / max(1, p.elementCount / columns))
                        }
                        try writer.write(data)
                        done += p.sourceBytes
                        input.release(src, bytes: 0..<src.byteCount)
                        progress?(QuantProgress(tensorIndex: index, tensorCount: plan.tensors.count, tensorName: p.name,
                                                doneBytes: done, totalBytes: total))
                        return
                    }
                    let columns = p.dimensions[0]
                    let rows = p.elementCount / max(1, columns)
                    // The importance weights of each matrix (one per expert), as llama-quantize normalizes them.
                    var importance = p.importanceEntry.flatMap { plan.importance?.importance(for: $0) }
                    if let scale, let w = importance { importance = scale.importance(w) }
                    let rowsPerMatrix = max(1, p.dimensions.count > 1 ? p.dimensions[1] : rows)
                    let srcRowBytes = columns / p.sourceType.blockSize * p.sourceType.bytesPerBlock
                    let dstRowBytes = columns / p.targetType.blockSize * p.targetType.bytesPerBlock
                    let slabRows = max(1, min(rows, slabFloats / max(1, columns)))
                    var row = 0
                    while row < rows {
                        let n = min(slabRows, rows - row)
                        let out = outBuffer.get(n * dstRowBytes)
                        let base = data.baseAddress! + row * srcRowBytes
                        let outBase = out.baseAddress!
                        // Row ranges per worker: contiguous, balanced.
                        let parts = min(workers, n)
                        let bad = Slots<(row: Int, column: Int, value: Float)>(count: parts)
                        try (importance ?? []).withUnsafeBufferPointer { weights in
                            let job = QuantJob(source: base, sourceType: p.sourceType, target: p.targetType, columns: columns,
                                               srcRowBytes: srcRowBytes, dstRowBytes: dstRowBytes, output: outBase,
                                               importance: importance == nil ? nil : weights.baseAddress, firstRow: row,
                                               rowsPerMatrix: rowsPerMatrix, scaling: scale)
                            try parallelFor(0..<parts, threads: parts) { part, worker in
                                let r0 = n * part / parts, r1 = n * (part + 1) / parts
                                bad[part] = job.run(rows: r0..<r1, floats: floatBuffers[worker], scratch: scratch, worker: worker)
                            }
                        }
                        if let first = (0..<parts).lazy.compactMap({ bad[$0] }).first {
                            try found(src, row: row + first.row, column: first.column, value: first.value, rowBytes: srcRowBytes)
                        }
                        try writer.append(UnsafeRawBufferPointer(out))
                        input.release(src, bytes: (row * srcRowBytes)..<((row + n) * srcRowBytes))
                        done += n * srcRowBytes
                        row += n
                        progress?(QuantProgress(tensorIndex: index, tensorCount: plan.tensors.count, tensorName: p.name,
                                                doneBytes: done, totalBytes: total))
                    }
                    input.release(src, bytes: 0..<src.byteCount)
                }
            }
            try writer.finish()
        } catch {
            writer.abort()
            throw error
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        var result = QuantResult(plan: plan, seconds: seconds, outputBytes: writer.bytesWritten, nonFinite: nonFinite)
        if shard != nil { result.part = (path, selected.count, false) }
        return result
    }
}

/// One slab's work description, shared read-only by the workers.
struct QuantJob: @unchecked Sendable {
    let source: UnsafeRawPointer
    let sourceType: GGMLType
    let target: GGMLType
    let columns: Int
    let srcRowBytes: Int
    let dstRowBytes: Int
    let output: UnsafeMutableRawPointer
    /// Importance weights, `columns` per matrix (expert), or nil; row r of the tensor (`firstRow` + slab row) takes
    /// matrix r / rowsPerMatrix.
    var importance: UnsafePointer<Float>? = nil
    var firstRow = 0
    var rowsPerMatrix = 1
    /// Applied to the rows as they are read (`firstRow` + slab row).
    var scaling: ChannelScaling? = nil

    /// Quantizes `rows` of the slab; returns the first of them (slab row) holding a NaN or infinity, if any.
    func run(rows: Range<Int>, floats: ReusableBuffer, scratch: ScratchPool, worker: Int) -> (row: Int, column: Int, value: Float)? {
        guard !rows.isEmpty else { return nil }
        var firstBad: (row: Int, column: Int, value: Float)?
        // Rows go through in batches that keep the float buffer within about 1 MiB.
        let batch = max(1, min(rows.count, (1 << 18) / max(1, columns)))
        var r = rows.lowerBound
        while r < rows.upperBound {
            let n = min(batch, rows.upperBound - r)
            let count = n * columns
            let f = floats.get(count * 4).baseAddress!.assumingMemoryBound(to: Float.self)
            BlockCodec.dequantize(sourceType, source + r * srcRowBytes, count: count, into: f)
            if firstBad == nil, let bad = NonFinite.first(f, rows: n, columns: columns) {
                firstBad = (r + bad.row, bad.column, f[bad.row * columns + bad.column])
            }
            scaling?.apply(f, firstRow: firstRow + r, count: n, cols: columns)
            if let importance {
                for k in 0..<n {
                    let weights = importance + ((firstRow + r + k) / rowsPerMatrix) * columns
                    BlockCodec.quantize(target, f + k * columns, rows: 1, columns: columns, importance: weights,
                                        into: output + (r + k) * dstRowBytes, scratch: &scratch.slots[worker])
                }
            } else {
                BlockCodec.quantize(target, f, count: count, into: output + r * dstRowBytes, scratch: &scratch.slots[worker])
            }
            r += n
        }
        return firstBad
    }
}

/// Per-worker quantizer scratch in a fixed allocation (each worker touches only its own slot).
public final class ScratchPool: @unchecked Sendable {
    public let slots: UnsafeMutablePointer<QuantScratch>
    public let count: Int
    public init(count: Int) {
        self.count = count
        slots = .allocate(capacity: count)
        // One QuantScratch each: its work arrays are class instances, which a repeated copy would share.
        for i in 0..<count { (slots + i).initialize(to: QuantScratch()) }
    }
    deinit { slots.deinitialize(count: count); slots.deallocate() }
}
