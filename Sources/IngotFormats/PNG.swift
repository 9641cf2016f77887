/// A PNG writer for pictures Ingot draws (expert usage maps): 8-bit RGB, no interlace, the image data in zlib
/// "stored" blocks (deflate without compression, RFC 1950/1951), which every PNG reader accepts.
///
/// Layout: the 8-byte signature; chunks of u32 length (big-endian), 4-byte type, data, CRC-32 of type and data:
/// IHDR (width, height, bit depth 8, colour type 2, compression 0, filter 0, interlace 0), IDAT (zlib: 0x78 0x01,
/// stored blocks of at most 65535 bytes, Adler-32), IEND. Each row of the image is preceded by filter byte 0.
public enum PNG {
    /// Writes `rgb` (width × height × 3 bytes, rows top to bottom) to `path`, atomically.
    public static func write(rgb: [UInt8], width: Int, height: Int, to path: String) throws {
        guard width > 0, height > 0, width <= 1 << 20, height <= 1 << 20, rgb.count == width * height * 3 else {
            throw FormatError(.invalidValue, field: "image", offset: nil, "a \(width) x \(height) picture needs \(width * height * 3) bytes, not \(rgb.count)",
                              path: path)
        }
        var raw: [UInt8] = []
        raw.reserveCapacity(height * (width * 3 + 1))
        for y in 0..<height {
            raw.append(0)
            raw += rgb[(y * width * 3)..<((y + 1) * width * 3)]
        }
        var zlib: [UInt8] = [0x78, 0x01]
        var at = 0
        repeat {
            let n = min(65535, raw.count - at)
            let last: UInt8 = at + n == raw.count ? 1 : 0
            zlib += [last, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            zlib += raw[at..<(at + n)]
            at += n
        } while at < raw.count
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in raw {
            a = (a + UInt32(byte)) % 65521
            b = (b + a) % 65521
        }
        zlib += bigEndian((b << 16) | a)
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        func chunk(_ type: String, _ data: [UInt8]) {
            let body = Array(type.utf8) + data
            out += bigEndian(UInt32(data.count)) + body
            out += bigEndian(body.withUnsafeBytes { CRC32.checksum($0) })
        }
        chunk("IHDR", bigEndian(UInt32(width)) + bigEndian(UInt32(height)) + [8, 2, 0, 0, 0])
        chunk("IDAT", zlib)
        chunk("IEND", [])
        let file = try OutputFile(path: path)
        do {
            try file.write(out)
            try file.commit()
        } catch {
            file.abort()
            throw error
        }
    }

    static func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }
}
