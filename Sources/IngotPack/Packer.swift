import IngotFormats
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct PackOptions: Sendable {
    /// zstd level (1...22). Level 3, zstd's default, already codes the exponent streams near
    /// their entropy; higher levels buy little on weights.
    public var level = 3
    public var threads = 2
    /// Restored bytes per frame: tensors larger than this are cut into chunks.
    public var chunkBytes = 1 << 20
    public init() {}
}

/// Progress of a long operation, in restored bytes.
public struct Progress: Sendable {
    public var framesDone: Int
    public var frameCount: Int
    public var bytesDone: Int
    public var byteCount: Int
}

public struct PackSummary: Sendable {
    public var files: Int
    public var frames: Int
    public var tensors: Int
    public var originalBytes: Int
    public var packedBytes: Int
    /// Files that were symbolic links: their targets' contents were packed, and unpack restores regular files.
    public var linkedFiles: [String]
    /// Restored bytes per transform, and what they were stored in.
    public var byTransform: [(transform: String, original: Int, stored: Int)]
}

/// Packs a GGUF file, a safetensors file, a Hugging Face folder (every file in it, subfolders
/// too) or any other file into one artifact.
public enum Packer {
    struct PlannedFrame {
        var file: Int
        var offset: Int      // in the source file
        var length: Int
        var transform: Transform
    }

    struct Source {
        var path: String     // relative path stored in the index
        var mapped: MappedFile
        var format: String
    }

    public static func pack(input: String, output: String, options: PackOptions = PackOptions(),
                            progress: ((Progress) -> Void)? = nil) throws -> PackSummary {
        guard (Zstd.minLevel ... Zstd.maxLevel).contains(options.level), options.level != 0 else {
            throw FormatError(.invalidValue, field: "level", offset: nil, "zstd levels run from 1 to \(Zstd.maxLevel)")
        }
        var st = stat()
        guard stat(input, &st) == 0 else {
            throw FormatError(.cannotOpen, field: "input", offset: nil, "cannot open: \(String(cString: strerror(errno)))", path: input)
        }
        let isFolder = (st.st_mode & S_IFMT) == S_IFDIR
        let tree = isFolder ? try listTree(input) : (files: [String(input.split(separator: "/").last ?? "")], links: [])
        let names = tree.files
        var sources: [Source] = []
        var frames: [PlannedFrame] = []
        var tensors: [PackIndex.Tensor] = []
        for (i, name) in names.enumerated() {
            let path = isFolder ? input + "/" + name : input
            let mapped = try MappedFile(path: path)
            let plan = try planFile(mapped, index: i, name: name, chunkBytes: options.chunkBytes)
            sources.append(Source(path: name, mapped: mapped, format: plan.format))
            frames += plan.frames
            tensors += plan.tensors
        }

        let out = try OutputFile(path: output)
        try out.write(PackFormat.header())
        var files = sources.map { PackIndex.File(path: $0.path, size: $0.mapped.count, digest: 0, format: $0.format, frames: []) }
        var byTransform: [String: (Int, Int)] = [:]
        let window = max(2, options.threads * 2)
        let total = frames.reduce(0) { $0 + $1.length }
        var done = 0
        let src = sources.map(\.mapped)
        let workers = WorkerState.pool(options.threads)
        let outputs = (0 ..< window).map { _ in ReusableBuffer() }
        var start = 0
        while start < frames.count {
            let batch = Array(frames[start ..< min(start + window, frames.count)])
            let results = Slots<EncodedFrame>(count: batch.count)
            try parallelFor(0 ..< batch.count, threads: options.threads) { k, w in
                let f = batch[k]
                results[k] = try encode(src[f.file].slice(offset: f.offset, count: f.length), transform: f.transform,
                                        level: options.level, worker: workers[w], output: outputs[k])
            }
            for (k, f) in batch.enumerated() {
                guard let r = results[k] else { continue }
                let offset = out.bytesWritten
                if r.fromSource {
                    try out.write(src[f.file].slice(offset: f.offset, count: f.length))
                } else {
                    try out.write(UnsafeRawBufferPointer(outputs[k].get(r.storedLength)))
                }
                files[f.file].frames.append(PackIndex.Frame(offset: offset, storedLength: r.storedLength, length: f.length,
                                                            transform: r.transform, streams: r.streams, hash: r.hash, storedHash: r.storedHash))
                src[f.file].release(offset: f.offset, count: f.length)
                byTransform[r.transform.description, default: (0, 0)].0 += f.length
                byTransform[r.transform.description, default: (0, 0)].1 += r.storedLength
                done += f.length
            }
            start += batch.count
            progress?(Progress(framesDone: start, frameCount: frames.count, bytesDone: done, byteCount: total))
        }
        for i in files.indices { files[i].digest = PackIndex.File.digest(of: files[i].frames) }
        let index = PackIndex(kind: isFolder ? "folder" : "file", level: options.level, files: files, tensors: tensors)
        let indexOffset = out.bytesWritten
        let indexJSON = Array(index.json.serialized().utf8)
        let indexBuffer = ReusableBuffer()
        let n = try indexJSON.withUnsafeBytes {
            try Zstd.compress($0, level: 9, into: indexBuffer.get(Zstd.compressBound(indexJSON.count)), context: workers[0].zstd.compression)
        }
        let storedIndex = Array(UnsafeRawBufferPointer(indexBuffer.get(n)))
        try out.write(storedIndex)
        var footer: [UInt8] = []
        func u64(_ v: Int) { withUnsafeBytes(of: UInt64(v).littleEndian) { footer.append(contentsOf: $0) } }
        u64(indexOffset)
        u64(storedIndex.count)
        u64(indexJSON.count)
        let headerHash = PackFormat.header().withUnsafeBytes { XXH64.hash($0) }
        withUnsafeBytes(of: storedIndex.withUnsafeBytes { XXH64.hash($0, seed: headerHash) }.littleEndian) { footer.append(contentsOf: $0) }
        footer.append(contentsOf: PackFormat.footerMagic)
        try out.write(footer)
        try out.commit()
        return PackSummary(files: files.count, frames: frames.count, tensors: tensors.count, originalBytes: total,
                           packedBytes: out.bytesWritten, linkedFiles: tree.links,
                           byTransform: byTransform.map { ($0.key, $0.value.0, $0.value.1) }.sorted { $0.original > $1.original })
    }

    struct EncodedFrame {
        var storedLength: Int
        var transform: Transform
        var streams: [PackIndex.Stream]
        /// Stored as is: the bytes are the source's, written straight from it.
        var fromSource: Bool
        var hash: UInt64
        var storedHash: UInt64
    }

    /// The level for a stream: the few-valued stream of a split (exponents, scales) is coded
    /// with zstd's fast strategy below level 10, where the slower match finders only add
    /// matches that cost more than the literals they replace (measured: exponent bytes of real
    /// BF16 weights take 36.4% at level 1, 41.2% at level 3, 33.0% at level 19).
    static func streamLevel(_ level: Int, skewed: Bool) -> Int {
        skewed && level < 10 ? 1 : level
    }

    /// Transforms one frame, then compresses each stream into `output`, storing a stream as is
    /// when compression does not make it smaller; a frame none of whose streams shrinks is
    /// stored as is (written straight from the source).
    static func encode(_ raw: UnsafeRawBufferPointer, transform: Transform, level: Int,
                       worker: WorkerState, output: ReusableBuffer) throws -> EncodedFrame {
        let hash = XXH64.hash(raw)
        var transform = transform
        var input = raw
        var transformed = false
        // 16-bit weights dequantized from 4-bit formats have 16 distinct values per 32: a
        // palette codes them far better than byte planes (see Palette16).
        if transform == .splitBF16 || transform == .byteGroups(2), Palette16.worthTrying(raw, worker.paletteTables) {
            let n = raw.count
            let scratch = worker.scratch.get(n + n / 64)
            if let p = Palette16.forward(raw, into: scratch, lows: worker.lows.get(n), indices: worker.indices.get(n / 4 + 16),
                                         tables: worker.paletteTables) {
                transform = .palette16(blocks: p)
                input = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(scratch)[0 ..< transform.transformedLength(n)])
                transformed = true
            }
        }
        if transform != .none && !transformed {
            let scratch = worker.scratch.get(transform.transformedLength(raw.count))
            transform.forward(raw, into: scratch)
            input = UnsafeRawBufferPointer(scratch)
        }
        let lengths = transform.streamLengths(raw.count)
        let dst = output.get(lengths.reduce(0) { $0 + Zstd.compressBound($1) })
        var streams: [PackIndex.Stream] = []
        var inPos = 0, outPos = 0
        for (i, len) in lengths.enumerated() {
            let piece = UnsafeRawBufferPointer(rebasing: input[inPos ..< inPos + len])
            let room = UnsafeMutableRawBufferPointer(rebasing: dst[outPos...])
            let n = try Zstd.compress(piece, level: streamLevel(level, skewed: transform.skewedStream == i), into: room,
                                      context: worker.zstd.compression)
            if n > 0 && n < len {
                streams.append(PackIndex.Stream(codec: .zstd, storedLength: n))
                outPos += n
            } else {
                if len > 0 { room.baseAddress!.copyMemory(from: piece.baseAddress!, byteCount: len) }
                streams.append(PackIndex.Stream(codec: .none, storedLength: len))
                outPos += len
            }
            inPos += len
        }
        if streams.allSatisfy({ $0.codec == .none }) {
            return EncodedFrame(storedLength: raw.count, transform: .none, streams: [PackIndex.Stream(codec: .none, storedLength: raw.count)],
                                fromSource: true, hash: hash, storedHash: hash)
        }
        let storedHash = XXH64.hash(UnsafeRawBufferPointer(rebasing: dst[0 ..< outPos]))
        return EncodedFrame(storedLength: outPos, transform: transform, streams: streams, fromSource: false, hash: hash, storedHash: storedHash)
    }

    struct FilePlan {
        var format: String
        var frames: [PlannedFrame]
        var tensors: [PackIndex.Tensor]
    }

    /// Cuts one file into frames: the header (metadata kept verbatim) as one stretch, then each
    /// tensor (with any padding after it) in chunks, each with the transform its dtype calls for.
    static func planFile(_ f: MappedFile, index: Int, name: String, chunkBytes: Int) throws -> FilePlan {
        var segments: [(start: Int, end: Int, transform: Transform)] = []
        var tensors: [PackIndex.Tensor] = []
        var format = "other"
        let lower = name.lowercased()
        if lower.hasSuffix(".gguf") || f.bytes.starts(with: GGUFFile.magic) {
            let g = try GGUFFile(file: f)
            format = "gguf"
            let sorted = g.tensors.sorted { $0.offset < $1.offset }
            let starts = sorted.map { g.dataOffset + $0.offset }
            segments.append((0, starts.first ?? f.count, .none))
            for (i, t) in sorted.enumerated() {
                let end = i + 1 < starts.count ? starts[i + 1] : f.count
                segments.append((starts[i], end, transform(for: t.type)))
                tensors.append(PackIndex.Tensor(file: index, name: t.name, dtype: t.type.name, offset: starts[i], length: t.byteCount))
            }
        } else if lower.hasSuffix(".safetensors") {
            let s = try SafetensorsFile(file: f)
            format = "safetensors"
            segments.append((0, s.dataOffset, .none))
            for t in s.tensors {
                segments.append((s.dataOffset + t.begin, s.dataOffset + t.end, transform(for: t.dtype)))
                tensors.append(PackIndex.Tensor(file: index, name: t.name, dtype: t.dtype.rawValue, offset: s.dataOffset + t.begin, length: t.byteCount))
            }
        } else {
            segments.append((0, f.count, .none))
        }
        var frames: [PlannedFrame] = []
        for seg in segments where seg.end > seg.start || (segments.count == 1) {
            let step = max(seg.transform.recordBytes, chunkBytes - chunkBytes % seg.transform.recordBytes)
            var a = seg.start
            repeat {
                let b = seg.end - a > step + step / 4 ? a + step : seg.end   // no sliver at the end
                frames.append(PlannedFrame(file: index, offset: a, length: b - a, transform: seg.transform))
                a = b
            } while a < seg.end
        }
        return FilePlan(format: format, frames: frames, tensors: tensors)
    }

    /// The transform for a GGUF tensor type. Quantized blocks: where the block's scales sit
    /// (ggml-common.h's block structs); the rest of the block is packed quants.
    static func transform(for t: GGMLType) -> Transform {
        let b = t.bytesPerBlock
        switch t {
        case .f32: return .splitF32
        case .bf16: return .splitBF16
        case .f16, .i16: return .byteGroups(2)
        case .i32: return .byteGroups(4)
        case .i64, .f64: return .byteGroups(8)
        case .q4_0, .q5_0, .q8_0, .iq4_NL: return .blockScales(block: b, start: 0, count: 2)       // d
        case .q4_1, .q5_1: return .blockScales(block: b, start: 0, count: 4)                        // d, m
        case .q8_1: return .blockScales(block: b, start: 0, count: 4)                               // d, s
        case .q4_K, .q5_K: return .blockScales(block: b, start: 0, count: 16)                       // d, dmin, scales[12]
        case .q2_K: return .blockScales(block: b, start: 0, count: 16)                              // scales[16] (d, dmin at the end)
        case .q3_K: return .blockScales(block: b, start: b - 14, count: 14)                         // scales[12], d
        case .q6_K: return .blockScales(block: b, start: b - 18, count: 18)                         // scales[16], d
        case .iq4_XS: return .blockScales(block: b, start: 0, count: 8)                             // d, scales_h, scales_l
        case .mxfp4: return .blockScales(block: b, start: 0, count: 1)                              // e (E8M0)
        default: return .none
        }
    }

    static func transform(for d: SafetensorsDType) -> Transform {
        switch d {
        case .f32, .c64: .splitF32
        case .bf16: .splitBF16
        case .f16, .i16, .u16: .byteGroups(2)
        case .i32, .u32: .byteGroups(4)
        case .f64, .i64, .u64: .byteGroups(8)
        default: .none
        }
    }
}

/// Every regular file under `dir`, as sorted relative paths, and which of them are symbolic links. A link to a regular
/// file counts as that file (a Hugging Face hub snapshot is a folder of links into `../../blobs/`): its contents are
/// packed and unpacking restores a regular file. A link to anything else, or a dangling one, is refused.
func listTree(_ dir: String, prefix: String = "") throws -> (files: [String], links: [String]) {
    var out: [String] = [], links: [String] = []
    for name in try directoryEntries(dir) {
        var st = stat()
        let full = dir + "/" + name
        guard lstat(full, &st) == 0 else { continue }
        switch st.st_mode & S_IFMT {
        case S_IFREG: out.append(prefix + name)
        case S_IFDIR:
            let sub = try listTree(full, prefix: prefix + name + "/")
            out += sub.files
            links += sub.links
        case S_IFLNK:
            var target = stat()
            guard stat(full, &target) == 0, (target.st_mode & S_IFMT) == S_IFREG else {
                throw FormatError(.invalidValue, field: "folder", offset: nil,
                                  "'\(prefix + name)' is a symbolic link to something other than a regular file", path: dir)
            }
            out.append(prefix + name)
            links.append(prefix + name)
        default:
            throw FormatError(.invalidValue, field: "folder", offset: nil, "'\(prefix + name)' is not a regular file or folder", path: dir)
        }
    }
    let order: (String, String) -> Bool = { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    return (out.sorted(by: order), links.sorted(by: order))
}
