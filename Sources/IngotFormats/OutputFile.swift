#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An output file written atomically: bytes go to a temporary file in the destination directory
/// through a buffer; `commit()` flushes, fsyncs and renames it over the destination. If the writer
/// is dropped or `abort()`ed before `commit()`, or the process is interrupted, the temporary file is
/// removed and nothing appears at the destination (an existing file there stays untouched); see
/// `Temporaries` for the names and for what a killed process leaves.
public final class OutputFile {
    public let path: String
    public let temporaryPath: String
    private var fd: Int32
    private var buffer: [UInt8]
    private var used = 0
    public private(set) var bytesWritten = 0
    private var finished = false
    /// Bytes handed to the kernel, and how far writeback has been started.
    private var handedOver = 0
    private var writebackStarted = 0
    /// Start writeback every this many bytes, so the final fsync has little left to wait for.
    static let writebackStep = 32 << 20

    public init(path: String, bufferSize: Int = 4 << 20) throws {
        self.path = path
        let (dir, base) = splitPath(path)
        var isDir = stat()
        guard stat(dir, &isDir) == 0, (isDir.st_mode & S_IFMT) == S_IFDIR else {
            throw FormatError(.writeFailed, field: "output", offset: nil,
                              "the folder '\(dir)' does not exist", path: path)
        }
        Temporaries.removeAbandoned(in: dir)
        var template = Array(Temporaries.template(folder: dir, name: base).utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw FormatError(.writeFailed, field: "output", offset: nil,
                              "cannot create a temporary file in '\(dir)': \(errnoText())", path: path)
        }
        self.fd = fd
        self.temporaryPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        Temporaries.register(temporaryPath, folder: false)
        // Left uninitialized (only the `used` bytes are ever read): a small file then touches a page or two of it,
        // not all 4 MiB.
        self.buffer = [UInt8](unsafeUninitializedCapacity: max(bufferSize, 4096)) { _, n in n = max(bufferSize, 4096) }
    }

    deinit { if !finished { abort() } }

    /// The process umask, read once at first use (reading it means setting it, so it is set back at once).
    static let umaskValue: mode_t = {
        let m = umask(0o022)
        umask(m)
        return m
    }()

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var src = bytes
        while !src.isEmpty {
            if used == 0 && src.count >= buffer.count {
                try writeAll(src)
                bytesWritten += src.count
                return
            }
            let n = min(buffer.count - used, src.count)
            buffer.withUnsafeMutableBytes { dst in
                dst.baseAddress!.advanced(by: used).copyMemory(from: src.baseAddress!, byteCount: n)
            }
            used += n
            bytesWritten += n
            src = UnsafeRawBufferPointer(rebasing: src[n...])
            if used == buffer.count { try flush() }
        }
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Writes `count` zero bytes (alignment padding).
    public func writeZeros(_ count: Int) throws {
        guard count > 0 else { return }
        try write([UInt8](repeating: 0, count: count))
    }

    private func flush() throws {
        guard used > 0 else { return }
        try buffer.withUnsafeBytes { try writeAll(UnsafeRawBufferPointer(rebasing: $0[0 ..< used])) }
        used = 0
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var off = 0
        while off < bytes.count {
            let n = systemWrite(fd, bytes.baseAddress! + off, bytes.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                throw FormatError(.writeFailed, field: "output", offset: handedOver + off,
                                  "write failed: \(errnoText())", path: path)
            }
            off += n
        }
        handedOver += bytes.count
        #if os(Linux)
        if handedOver - writebackStarted >= OutputFile.writebackStep {
            _ = startWriteback(fd, Int64(writebackStarted), Int64(handedOver - writebackStarted), 2 /* SYNC_FILE_RANGE_WRITE */)
            writebackStarted = handedOver
        }
        #endif
    }

    /// Flushes, syncs and renames the temporary file to `path`.
    public func commit() throws {
        do {
            try flush()
            // mkstemp creates the file 0600; give it the mode an ordinary create would (0666 less the umask).
            fchmod(fd, 0o666 & ~OutputFile.umaskValue)
            guard fsync(fd) == 0 else {
                throw FormatError(.writeFailed, field: "output", offset: nil, "fsync failed: \(errnoText())", path: path)
            }
            close(fd)
            fd = -1
            try Temporaries.committing(temporaryPath) {
                guard rename(temporaryPath, path) == 0 else {
                    throw FormatError(.writeFailed, field: "output", offset: nil, "rename failed: \(errnoText())", path: path)
                }
            }
            finished = true
        } catch {
            abort()
            throw error
        }
    }

    /// Removes the temporary file; the destination is untouched.
    public func abort() {
        guard !finished else { return }
        if fd >= 0 { close(fd); fd = -1 }
        unlink(temporaryPath)
        Temporaries.unregister(temporaryPath)
        finished = true
    }
}

@inline(__always)
func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, p, n)
    #else
    return Darwin.write(fd, p, n)
    #endif
}

/// (folder, last component) of a path: `a/b/c.gguf` -> (`a/b`, `c.gguf`), `c.gguf` -> (`.`, `c.gguf`).
func splitPath(_ path: String) -> (folder: String, name: String) {
    guard let slash = path.lastIndex(of: "/") else { return (".", path) }
    let folder = slash == path.startIndex ? "/" : String(path[..<slash])
    return (folder, String(path[path.index(after: slash)...]))
}

#if os(Linux)
/// glibc's `sync_file_range` (declared only under _GNU_SOURCE, so not in the Glibc module):
/// with SYNC_FILE_RANGE_WRITE it starts writeback of the range and returns without waiting.
@_silgen_name("sync_file_range")
func startWriteback(_ fd: Int32, _ offset: Int64, _ count: Int64, _ flags: UInt32) -> Int32
#endif
