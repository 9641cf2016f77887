#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IngotFormats
import IngotNumerics

/// Quantized weights waiting to be written, in a temporary file: unlinked as soon as it is made, so nothing is left
/// behind however the run ends. A weight's codes take a byte each (every integer scheme has at most 8 bits), its grid
/// four floats per group.
final class SpillFile {
    struct Entry {
        var offset: Int
        var rule: IntegerGrid.Rule
        var rows: Int, cols: Int, groupSize: Int
    }

    private let fd: Int32
    private var end = 0

    init() throws {
        let folder = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array((folder + "/ingot-gptq-XXXXXX").utf8CString)
        fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw FormatError(.cannotOpen, field: "temporary file", offset: nil, "cannot make a temporary file in \(folder): errno \(errno)", path: folder)
        }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
    }

    deinit { close(fd) }

    func write(codes: [Int32], grid: IntegerGrid) throws -> Entry {
        let entry = Entry(offset: end, rule: grid.rule, rows: grid.rows, cols: grid.cols, groupSize: grid.groupSize)
        try append(codes.map { UInt8(truncatingIfNeeded: $0) })
        for p in grid.parameters { try p.withUnsafeBytes { try append(Array($0)) } }
        return entry
    }

    func read(_ e: Entry) throws -> (codes: [Int32], grid: IntegerGrid) {
        let n = e.rows * e.cols, groups = n / e.groupSize
        let bytes = try read(offset: e.offset, count: n + 16 * groups)
        let codes = bytes[0..<n].map { e.rule.signedCodes ? Int32(Int8(bitPattern: $0)) : Int32($0) }
        let parameters: [[Float]] = (0..<4).map { k in
            bytes.withUnsafeBytes { b in (0..<groups).map { b.loadUnaligned(fromByteOffset: n + (k * groups + $0) * 4, as: Float.self) } }
        }
        return (codes, IntegerGrid(e.rule, rows: e.rows, cols: e.cols, groupSize: e.groupSize, parameters: parameters))
    }

    /// Bytes as they are (a weight already in its stored layout): where they start.
    func write(bytes: [UInt8]) throws -> Int {
        let offset = end
        try append(bytes)
        return offset
    }

    func read(offset: Int, count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { b in
            var done = 0
            while done < b.count {
                let r = pread(fd, b.baseAddress! + done, b.count - done, off_t(offset + done))
                guard r > 0 else {
                    throw FormatError(.truncated, field: "temporary file", offset: offset + done, "read failed: errno \(errno)", path: "")
                }
                done += r
            }
        }
        return bytes
    }

    private func append(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { b in
            var done = 0
            while done < b.count {
                let w = pwrite(fd, b.baseAddress! + done, b.count - done, off_t(end + done))
                guard w > 0 else {
                    throw FormatError(.writeFailed, field: "temporary file", offset: end + done, "write failed (disk full?): errno \(errno)", path: "")
                }
                done += w
            }
        }
        end += bytes.count
    }
}
