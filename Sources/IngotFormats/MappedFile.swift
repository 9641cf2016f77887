#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory map of a whole file. Parsing reads headers through it and hands out tensor
/// data as views into it: nothing is copied, and pages are loaded only when touched.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let bytes: UnsafeRawBufferPointer
    private let mapping: UnsafeMutableRawPointer?
    private let owned: UnsafeMutableRawBufferPointer?

    public var count: Int { bytes.count }

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw FormatError(.cannotOpen, field: "file", offset: nil, "cannot open: \(errnoText())", path: path)
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw FormatError(.cannotOpen, field: "file", offset: nil, "cannot stat: \(errnoText())", path: path)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw FormatError(.cannotOpen, field: "file", offset: nil, "not a regular file", path: path)
        }
        let size = Int(st.st_size)
        owned = nil
        if size == 0 {
            mapping = nil
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw FormatError(.cannotOpen, field: "file", offset: nil, "cannot map \(size) bytes: \(errnoText())", path: path)
        }
        mapping = p
        bytes = UnsafeRawBufferPointer(start: p, count: size)
    }

    /// A copy of `contents` in memory, read through the same interface (for tests and for data
    /// that never was a file); `path` only names it in errors.
    public init(copying contents: [UInt8], path: String) {
        self.path = path
        mapping = nil
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: contents.count, alignment: 64)
        contents.withUnsafeBytes { if !$0.isEmpty { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
        owned = buffer
        bytes = UnsafeRawBufferPointer(buffer)
    }

    deinit {
        if let mapping { munmap(mapping, bytes.count) }
        owned?.deallocate()
    }

    /// The bytes `[offset, offset + count)`; the caller has validated the range.
    public func slice(offset: Int, count: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[offset ..< offset + count])
    }

    /// Drops the pages wholly inside `[offset, offset + count)` from this process's memory once
    /// they have been used (they stay in the page cache), so that streaming through a file larger
    /// than RAM keeps the resident set bounded. No effect on in-memory copies.
    public func release(offset: Int, count: Int) {
        #if canImport(Glibc)
        guard let base = mapping, count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (offset + page - 1) / page * page
        let end = min(offset + count, bytes.count) / page * page
        if end > start { madvise(base + start, end - start, MADV_DONTNEED) }
        #endif
    }
}

func errnoText() -> String { String(cString: strerror(errno)) }
