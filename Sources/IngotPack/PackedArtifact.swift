import Dispatch
import IngotFormats
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An opened `.ingot` artifact: footer and index validated, frames readable one at a time.
public final class PackedArtifact: @unchecked Sendable {
    public let file: MappedFile
    public var path: String { file.path }
    public let index: PackIndex
    public let indexOffset: Int
    public let storedIndexLength: Int

    public static func isArtifact(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.starts(with: PackFormat.magic)
    }

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    /// Opens `path` when it begins with the artifact magic; nil for other files and folders.
    public static func openIfArtifact(_ path: String) throws -> PackedArtifact? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        let f = try MappedFile(path: path)
        return isArtifact(f.bytes) ? try PackedArtifact(file: f) : nil
    }

    public init(file: MappedFile) throws {
        self.file = file
        do {
            (index, indexOffset, storedIndexLength) = try PackedArtifact.open(file.bytes)
        } catch let e as FormatError {
            throw e.inFile(file.path)
        }
    }

    static func open(_ bytes: UnsafeRawBufferPointer) throws -> (PackIndex, Int, Int) {
        let size = bytes.count
        var c = ByteCursor(bytes)
        let magic = try c.slice(8, "header.magic")
        guard magic.elementsEqual(PackFormat.magic) else {
            throw FormatError(.badMagic, field: "header.magic", offset: 0, "expected 'INGOTPAK'")
        }
        let version = try c.readU32("header.version")
        guard version == PackFormat.version else {
            throw FormatError(.unsupportedVersion, field: "header.version", offset: 8, "version \(version); Ingot reads version 1")
        }
        let flags = try c.readU32("header.flags")
        guard flags == 0 else { throw FormatError(.invalidValue, field: "header.flags", offset: 12, "flags \(flags) must be 0") }
        guard size >= PackFormat.headerBytes + PackFormat.footerBytes else {
            throw FormatError(.truncated, field: "footer", offset: size, "the file is too short to hold a footer (\(size) bytes)")
        }
        let footerAt = size - PackFormat.footerBytes
        try c.seek(toFileOffset: footerAt, "footer")
        let rawIndexOffset = try c.readU64("footer.indexOffset")
        let rawStored = try c.readU64("footer.indexStoredLength")
        let rawLength = try c.readU64("footer.indexLength")
        let indexHash = try c.readU64("footer.indexHash")
        let endMagic = try c.slice(8, "footer.magic")
        guard endMagic.elementsEqual(PackFormat.footerMagic) else {
            throw FormatError(.truncated, field: "footer.magic", offset: size - 8, "no 'INGOTEND' at the end: the artifact is truncated or damaged")
        }
        guard let indexOffset = Checked.int(rawIndexOffset), let stored = Checked.int(rawStored),
              indexOffset >= PackFormat.headerBytes, Checked.add(indexOffset, stored) == footerAt else {
            throw FormatError(.tensorOutOfFile, field: "footer.indexOffset", offset: footerAt,
                              "index at \(rawIndexOffset) + \(rawStored) bytes does not end where the footer begins (\(footerAt))")
        }
        guard let length = Checked.int(rawLength), length <= PackFormat.maxIndexBytes else {
            throw FormatError(.limitExceeded, field: "footer.indexLength", offset: footerAt + 16, "index of \(rawLength) bytes exceeds the limit")
        }
        let headerHash = XXH64.hash(UnsafeRawBufferPointer(rebasing: bytes[0 ..< PackFormat.headerBytes]))
        let storedIndex = UnsafeRawBufferPointer(rebasing: bytes[indexOffset ..< footerAt])
        guard XXH64.hash(storedIndex, seed: headerHash) == indexHash else {
            throw FormatError(.invalidValue, field: "index", offset: indexOffset, "checksum mismatch: the header or the index is damaged")
        }
        var json = [UInt8](repeating: 0, count: length)
        let ctx = ZstdContexts()
        try json.withUnsafeMutableBytes {
            try Zstd.decompress(storedIndex, into: $0, context: ctx.decompression, field: "index", offset: indexOffset)
        }
        let index = try PackIndex(json: try JSONParser.parse(json, base: indexOffset, field: "index"), at: indexOffset)
        try validate(index, framesEnd: indexOffset)
        return (index, indexOffset, stored)
    }

    /// Frames must tile [header end, index offset) in order; sizes must add up; paths must stay
    /// inside the output folder; each file's digest must follow from its frames' hashes.
    static func validate(_ index: PackIndex, framesEnd: Int) throws {
        var expected = PackFormat.headerBytes
        var paths = Set<String>()
        for (i, file) in index.files.enumerated() {
            let parts = file.path.split(separator: "/", omittingEmptySubsequences: false)
            guard !file.path.isEmpty, !file.path.hasPrefix("/"), !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }),
                  paths.insert(file.path).inserted, !(index.kind == "file" && index.files.count != 1) else {
                throw FormatError(.invalidValue, field: "index.files[\(i)].path", offset: nil, "'\(file.path)' is not a safe, unique relative path")
            }
            var restored = 0
            for (j, f) in file.frames.enumerated() {
                let field = "file '\(file.path)' frame \(j)"
                guard f.offset == expected, let end = Checked.add(f.offset, f.storedLength), end <= framesEnd else {
                    throw FormatError(.tensorOutOfFile, field: field, offset: f.offset,
                                      "stored at [\(f.offset), +\(f.storedLength)) but frames must follow each other from \(expected) up to the index at \(framesEnd)")
                }
                let lengths = f.transform.streamLengths(f.length)
                guard f.length <= PackFormat.maxFrameBytes, f.transform.accepts(length: f.length), f.streams.count == lengths.count,
                      f.streams.reduce(0, { $0 + $1.storedLength }) == f.storedLength,
                      zip(f.streams, lengths).allSatisfy({ $0.codec == .zstd || $0.storedLength == $1 }) else {
                    throw FormatError(.invalidValue, field: field, offset: f.offset,
                                      "its streams do not fit its length \(f.length), stored length \(f.storedLength) and transform \(f.transform)")
                }
                restored += f.length
                expected = end
            }
            let digest = PackIndex.File.digest(of: file.frames)
            guard restored == file.size, digest == file.digest else {
                throw FormatError(.sizeMismatch, field: "file '\(file.path)'", offset: nil,
                                  "frames restore \(restored) bytes with digest \(hex(digest)); the index says \(file.size) bytes with digest \(hex(file.digest))")
            }
        }
        guard expected == framesEnd else {
            throw FormatError(.incompleteCoverage, field: "frames", offset: expected, "frames end at \(expected) but the index starts at \(framesEnd)")
        }
    }

    /// Restores one frame: checks the stored bytes' CRC, decompresses, undoes the transform,
    /// checks the restored bytes' CRC. Errors name the file and the frame.
    func restore(file i: Int, frame j: Int, into dst: UnsafeMutableRawBufferPointer, worker: WorkerState) throws {
        let fileEntry = index.files[i]
        let f = fileEntry.frames[j]
        let field = "file '\(fileEntry.path)' frame \(j)"
        let stored = file.slice(offset: f.offset, count: f.storedLength)
        guard XXH64.hash(stored) == f.storedHash else {
            throw FormatError(.invalidValue, field: field, offset: f.offset, "checksum mismatch in the stored bytes: the frame is damaged")
        }
        // A zstd stream decodes into the scratch buffer (or straight into `dst` when the frame has
        // no transform); a stored stream is read where it lies in the artifact, unless the
        // transform needs its streams in one buffer (the palette), where it is copied there. The
        // inverse transform then reads the streams and writes `dst`.
        let lengths = f.transform.streamLengths(f.length)
        let inPlace = f.transform.readsStreamsInPlace
        let scratch = f.transform == .none ? dst : worker.scratch.get(f.transform.transformedLength(f.length))
        var parts: [UnsafeRawBufferPointer] = []
        var inPos = 0, outPos = 0
        for (k, (stream, len)) in zip(f.streams, lengths).enumerated() {
            let piece = UnsafeRawBufferPointer(rebasing: stored[inPos ..< inPos + stream.storedLength])
            let into = UnsafeMutableRawBufferPointer(rebasing: scratch[outPos ..< outPos + len])
            switch stream.codec {
            case .none:
                if inPlace { parts.append(piece) } else if len > 0 { into.baseAddress!.copyMemory(from: piece.baseAddress!, byteCount: len) }
            case .zstd:
                try Zstd.decompress(piece, into: into, context: worker.zstd.decompression, field: "\(field) stream \(k)", offset: f.offset + inPos)
                parts.append(UnsafeRawBufferPointer(into))
            }
            inPos += stream.storedLength
            outPos += len
        }
        do {
            if f.transform == .none {
                if f.streams[0].codec == .none, f.length > 0 { dst.baseAddress!.copyMemory(from: parts[0].baseAddress!, byteCount: f.length) }
            } else if inPlace {
                f.transform.inverse(parts[0], parts.count > 1 ? parts[1] : UnsafeRawBufferPointer(start: nil, count: 0), into: dst)
            } else {
                try f.transform.inverse(UnsafeRawBufferPointer(scratch), into: dst)
            }
        } catch let e as FormatError {
            throw FormatError(e.code, field: "\(field) \(e.field)", offset: f.offset, e.detail)
        }
        guard XXH64.hash(UnsafeRawBufferPointer(dst)) == f.hash else {
            throw FormatError(.invalidValue, field: field, offset: f.offset, "checksum mismatch in the restored bytes")
        }
    }

    var allFrames: [(file: Int, frame: Int)] {
        index.files.indices.flatMap { i in index.files[i].frames.indices.map { (i, $0) } }
    }

    /// Restores the frames in order, `threads` at a time, handing each restored frame to `sink`
    /// in order. Writing overlaps decoding: while one window of frames is handed to `sink` on a
    /// writer thread, the workers restore the next into a second set of buffers. Memory: two
    /// windows of 2 x threads frames, in buffers reused from window to window.
    func stream(_ frames: [(file: Int, frame: Int)], threads: Int, progress: ((Progress) -> Void)?,
                sink: @escaping (Int, Int, UnsafeRawBufferPointer) throws -> Void) throws {
        let window = max(2, threads * 2)
        let total = frames.reduce(0) { $0 + index.files[$1.file].frames[$1.frame].length }
        let workers = WorkerState.pool(threads)
        let sets = (0 ..< 2).map { _ in (0 ..< window).map { _ in ReusableBuffer() } }
        let writer = DispatchQueue(label: "ingot.unpack.writer")
        let pending = DispatchGroup()
        let state = WriterState()
        // Whatever happens below, no write is still running when this returns.
        defer { pending.wait() }
        do {
            let box = UncheckedBox(sink)
            let report = UncheckedBox(progress)
            var start = 0, set = 0
            while start < frames.count {
                let batch = Array(frames[start ..< min(start + window, frames.count)])
                let buffers = sets[set]
                try parallelFor(0 ..< batch.count, threads: threads) { k, w in
                    let (i, j) = batch[k]
                    try self.restore(file: i, frame: j, into: buffers[k].get(self.index.files[i].frames[j].length), worker: workers[w])
                }
                pending.wait()
                if let e = state.error { throw e }
                let framesDone = start + batch.count
                writer.async(group: pending) {
                    do {
                        for (k, (i, j)) in batch.enumerated() {
                            let f = self.index.files[i].frames[j]
                            try box.value(i, j, UnsafeRawBufferPointer(buffers[k].get(f.length)))
                            self.file.release(offset: f.offset, count: f.storedLength)
                            state.done += f.length
                        }
                        report.value?(Progress(framesDone: framesDone, frameCount: frames.count, bytesDone: state.done, byteCount: total))
                    } catch {
                        state.error = error
                    }
                }
                start += batch.count
                set ^= 1
            }
            pending.wait()
        }
        if let e = state.error { throw e }
    }

    /// Checks every frame (stored and restored checksums) without writing anything.
    public func verify(threads: Int = 2, progress: ((Progress) -> Void)? = nil) throws {
        try stream(allFrames, threads: threads, progress: progress) { _, _, _ in }
    }

    /// Restores the original file (kind `file`) or folder (kind `folder`) at `output`, atomically.
    public func unpack(to output: String, threads: Int = 2, progress: ((Progress) -> Void)? = nil) throws {
        if index.kind == "file" {
            let out = try OutputFile(path: output)
            try stream(allFrames, threads: threads, progress: progress) { _, _, b in try out.write(b) }
            try out.commit()
            return
        }
        let temp = try TemporaryFolder(beside: output)
        var current: (Int, OutputFile)?
        try stream(allFrames, threads: threads, progress: progress) { i, _, b in
            if current?.0 != i {
                try current?.1.commit()
                try temp.makeParents(of: self.index.files[i].path)
                current = (i, try OutputFile(path: temp.path + "/" + self.index.files[i].path))
            }
            try current?.1.write(b)
        }
        try current?.1.commit()
        // Empty files have no frames.
        for f in index.files where f.frames.isEmpty {
            try temp.makeParents(of: f.path)
            try OutputFile(path: temp.path + "/" + f.path).commit()
        }
        try temp.rename(to: output)
    }

    /// Writes one tensor's bytes (as stored in its file) to `output`, restoring only the frames
    /// that hold it.
    public func extract(tensor name: String, to output: String, threads: Int = 2) throws {
        guard let t = index.tensors.first(where: { $0.name == name }) else {
            throw FormatError(.tensorNotFound, field: "tensor '\(name)'", offset: nil, "no tensor of that name in the artifact", path: path)
        }
        let frames = index.files[t.file].frames
        var needed: [(file: Int, frame: Int)] = []
        var starts: [Int] = []
        var pos = 0
        for (j, f) in frames.enumerated() {
            if pos < t.offset + t.length && pos + f.length > t.offset { needed.append((t.file, j)); starts.append(pos) }
            pos += f.length
        }
        let out = try OutputFile(path: output)
        var k = 0
        try stream(needed, threads: threads, progress: nil) { _, _, b in
            let lo = max(t.offset - starts[k], 0), hi = min(t.offset + t.length - starts[k], b.count)
            try out.write(UnsafeRawBufferPointer(rebasing: b[lo ..< hi]))
            k += 1
        }
        try out.commit()
    }
}

/// What the writer thread reports back: bytes handed to the sink, and the first error.
final class WriterState: @unchecked Sendable {
    var done = 0
    var error: Error?
}

/// Carries a value the caller guarantees is used from one thread at a time.
final class UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
