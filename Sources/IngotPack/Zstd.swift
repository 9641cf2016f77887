import CZstd
import IngotFormats

/// Thin throwing wrappers over libzstd's one-shot API.
enum Zstd {
    static var maxLevel: Int { Int(ZSTD_maxCLevel()) }
    static var minLevel: Int { Int(ZSTD_minCLevel()) }

    static func compressBound(_ n: Int) -> Int { ZSTD_compressBound(n) }

    /// Compresses `src` into `dst` (at least `compressBound(src.count)` bytes), returning the
    /// compressed length.
    static func compress(_ src: UnsafeRawBufferPointer, level: Int, into dst: UnsafeMutableRawBufferPointer, context: OpaquePointer) throws -> Int {
        guard !src.isEmpty else { return 0 }
        let n = ZSTD_compressCCtx(context, dst.baseAddress, dst.count, src.baseAddress, src.count, Int32(level))
        if ZSTD_isError(n) != 0 {
            throw FormatError(.writeFailed, field: "zstd", offset: nil, "compression failed: \(String(cString: ZSTD_getErrorName(n)))")
        }
        return n
    }

    /// Decompresses one zstd frame into exactly `dst.count` bytes; anything else is an error
    /// naming `field`.
    static func decompress(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer,
                           context: OpaquePointer, field: String, offset: Int) throws {
        let declared = ZSTD_getFrameContentSize(src.baseAddress, src.count)
        if declared != UInt64(dst.count) {
            throw FormatError(.sizeMismatch, field: field, offset: offset,
                              "the zstd frame declares \(declared > UInt64(Int64.max) ? "an unknown or invalid" : String(declared)) bytes; the index says \(dst.count)")
        }
        let n = ZSTD_decompressDCtx(context, dst.baseAddress, dst.count, src.baseAddress, src.count)
        if ZSTD_isError(n) != 0 {
            throw FormatError(.invalidValue, field: field, offset: offset, "zstd: \(String(cString: ZSTD_getErrorName(n)))")
        }
        guard n == dst.count else {
            throw FormatError(.sizeMismatch, field: field, offset: offset, "decompressed to \(n) bytes; the index says \(dst.count)")
        }
    }
}

/// A zstd compression and a decompression context owned by one worker.
final class ZstdContexts {
    let compression: OpaquePointer
    let decompression: OpaquePointer
    init() {
        compression = ZSTD_createCCtx()!  // nil only when out of memory
        decompression = ZSTD_createDCtx()!
    }
    deinit {
        ZSTD_freeCCtx(compression)
        ZSTD_freeDCtx(decompression)
    }
}
