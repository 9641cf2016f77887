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

    deinit {
        if let mapping { munmap(mapping, bytes.count) }
    }

    /// The bytes `[offset, offset + count)`; the caller has validated the range.
    public func slice(offset: Int, count: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[offset ..< offset + count])
    }

    /// Tells the kernel the range will be read sequentially (and soon).
    public func adviseSequential(offset: Int, count: Int) {
        #if canImport(Glibc)
        guard let base = mapping, count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset - offset % page
        madvise(base + start, count + (offset - start), MADV_SEQUENTIAL | MADV_WILLNEED)
        #endif
    }
}

func errnoText() -> String { String(cString: strerror(errno)) }
