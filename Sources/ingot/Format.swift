import IngotFormats

/// Human-readable numbers and simple aligned tables for terminal output.
enum Human {
    static func bytes(_ n: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(n)
        var u = 0
        while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
        return u == 0 ? "\(n) B" : fixed(v, 2) + " " + units[u]
    }

    static func count(_ n: Int) -> String {
        let d = Double(n)
        if n >= 1_000_000_000 { return fixed(d / 1e9, 2) + "B" }
        if n >= 1_000_000 { return fixed(d / 1e6, 2) + "M" }
        if n >= 1_000 { return fixed(d / 1e3, 2) + "K" }
        return String(n)
    }

    /// `v` with exactly `digits` decimals (no Foundation formatting needed).
    static func fixed(_ v: Double, _ digits: Int) -> String {
        guard v.isFinite else { return String(v) }
        var scale = 1.0
        for _ in 0 ..< digits { scale *= 10 }
        let r = (abs(v) * scale).rounded()
        let whole = Int(r / scale)
        var frac = String(Int(r - Double(whole) * scale))
        while frac.count < digits { frac = "0" + frac }
        return (v < 0 && r != 0 ? "-" : "") + String(whole) + (digits > 0 ? "." + frac : "")
    }
}

/// Columns padded to their widest cell; numbers right-aligned when `rightAligned` says so.
struct Table {
    var header: [String]
    var rightAligned: Set<Int> = []
    var rows: [[String]] = []

    func render(indent: String = "  ") -> String {
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            var parts: [String] = []
            for (i, c) in cells.enumerated() {
                let pad = String(repeating: " ", count: max(0, widths[i] - c.count))
                parts.append(rightAligned.contains(i) ? pad + c : (i == cells.count - 1 ? c : c + pad))
            }
            return indent + parts.joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}

/// `.npy` files (NumPy's format 1.0: magic, header length, a Python dict literal padded to 64 bytes, raw data).
enum NumpyFile {
    static func writeFloat32(_ values: [Float], shape: [Int], to path: String) throws {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(shape.map(String.init).joined(separator: ", "))\(shape.count == 1 ? "," : "")), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        let n = header.utf8.count
        bytes += [UInt8(n & 0xFF), UInt8(n >> 8)] + Array(header.utf8)
        let out = try OutputFile(path: path)
        try out.write(bytes)
        try values.withUnsafeBytes { try out.write($0) }
        try out.commit()
    }
}
