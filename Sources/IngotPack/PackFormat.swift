import IngotFormats

/// The Ingot packed artifact (`.ingot`), version 1. Layout (little-endian):
///
///  | offset | size | field |
///  |---|---|---|
///  | 0 | 8 | magic `INGOTPAK` |
///  | 8 | 4 | version u32 = 1 |
///  | 12 | 4 | flags u32 = 0 |
///  | 16 | … | frames, back to back, in index order |
///  | I | S | the index: zstd-compressed JSON (`PackIndex`) |
///  | end-40 | 40 | footer: index offset I u64, stored index length S u64, index length u64, index hash u64 = XXH64(stored index, seed: XXH64(header)), magic `INGOTEND` |
///
/// Checksums are XXH64. Every byte is covered by a check: the header by its fixed values and the
/// footer hash, each frame by the hash of its stored bytes and of the bytes it restores, the index
/// by the footer hash, the footer by its magic and its offsets, which must tile the file exactly.
/// A file's digest is XXH64 of its frames' restored-byte hashes (8 bytes each, little-endian).
public enum PackFormat {
    public static let magic: [UInt8] = Array("INGOTPAK".utf8)
    public static let footerMagic: [UInt8] = Array("INGOTEND".utf8)
    public static let version: UInt32 = 1
    public static let headerBytes = 16
    public static let footerBytes = 40
    /// The largest frame (restored bytes) and index we decode; larger is refused before allocating.
    public static let maxFrameBytes = 1 << 30
    public static let maxIndexBytes = 1 << 30
    public static let fileExtension = "ingot"

    static func header() -> [UInt8] {
        var h = magic
        withUnsafeBytes(of: version.littleEndian) { h.append(contentsOf: $0) }
        h.append(contentsOf: [0, 0, 0, 0])
        return h
    }
}

public enum Codec: String, Sendable {
    case zstd
    /// Stored as is (compression did not pay).
    case none
}

/// The frame index of an artifact.
public struct PackIndex: Equatable, Sendable {
    public struct Frame: Equatable, Sendable {
        /// Where the stored bytes are in the artifact.
        public var offset: Int
        public var storedLength: Int
        /// Bytes this frame restores.
        public var length: Int
        public var transform: Transform
        /// The transformed bytes' streams (`Transform.streamLengths`), each zstd or stored,
        /// back to back in the stored bytes.
        public var streams: [Stream]
        /// XXH64 of the restored bytes and of the stored bytes.
        public var hash: UInt64
        public var storedHash: UInt64
    }

    public struct Stream: Equatable, Sendable {
        public var codec: Codec
        public var storedLength: Int
    }

    public struct File: Equatable, Sendable {
        /// Relative path (`model.gguf`, `1_Pooling/config.json`).
        public var path: String
        public var size: Int
        /// XXH64 over the frames' `hash` values (see `PackFormat`).
        public var digest: UInt64
        /// `gguf`, `safetensors` or `other`: how the file was cut into frames.
        public var format: String
        /// Frames restoring the file in order, covering it exactly.
        public var frames: [Frame]
    }

    public struct Tensor: Equatable, Sendable {
        public var file: Int
        public var name: String
        public var dtype: String
        /// Byte range in the restored file.
        public var offset: Int
        public var length: Int
    }

    /// `file` (one file packed) or `folder`.
    public var kind: String
    public var level: Int
    public var files: [File]
    public var tensors: [Tensor]

    var json: JSONValue {
        func frame(_ f: Frame) -> JSONValue {
            .array([JSONValue(f.offset), JSONValue(f.storedLength), JSONValue(f.length), .string(f.transform.description),
                    .array(f.streams.map { .array([.string($0.codec.rawValue), JSONValue($0.storedLength)]) }),
                    .string(hex(f.hash)), .string(hex(f.storedHash))])
        }
        return .object(JSONObject([
            ("format", "ingot-pack"), ("version", JSONValue(Int(PackFormat.version))),
            ("kind", .string(kind)), ("level", JSONValue(level)),
            ("frameFields", ["offset", "storedLength", "length", "transform", "streams", "xxh64", "storedXXH64"]),
            ("files", .array(files.map { f in
                .object(JSONObject([("path", .string(f.path)), ("size", JSONValue(f.size)), ("digest", .string(hex(f.digest))),
                                    ("format", .string(f.format)), ("frames", .array(f.frames.map(frame)))]))
            })),
            ("tensors", .array(tensors.map { t in
                .array([JSONValue(t.file), .string(t.name), .string(t.dtype), JSONValue(t.offset), JSONValue(t.length)])
            })),
        ]))
    }

    /// Reads the index JSON, checking every field's type and range; `base` is the index's
    /// artifact offset (for error offsets).
    init(json: JSONValue, at base: Int) throws {
        func fail(_ field: String, _ why: String) -> FormatError {
            FormatError(.invalidValue, field: "index.\(field)", offset: base, why)
        }
        guard json["format"] == "ingot-pack", json["version"]?.intValue == Int(PackFormat.version) else {
            throw FormatError(.unsupportedVersion, field: "index.version", offset: base, "not an ingot-pack version 1 index")
        }
        guard let kind = json["kind"]?.stringValue, kind == "file" || kind == "folder" else { throw fail("kind", "must be 'file' or 'folder'") }
        self.kind = kind
        level = json["level"]?.intValue ?? 0
        guard let files = json["files"]?.arrayValue, !files.isEmpty else { throw fail("files", "must be a non-empty array") }
        self.files = []
        for (i, f) in files.enumerated() {
            guard let path = f["path"]?.stringValue, let size = f["size"]?.intValue, size >= 0,
                  let digest = f["digest"]?.stringValue.flatMap(unhex),
                  let format = f["format"]?.stringValue, let frames = f["frames"]?.arrayValue else {
                throw fail("files[\(i)]", "needs path, size, digest, format and frames")
            }
            var parsed: [Frame] = []
            parsed.reserveCapacity(frames.count)
            for (j, fr) in frames.enumerated() {
                guard let a = fr.arrayValue, a.count == 7,
                      let offset = a[0].intValue, let stored = a[1].intValue, let length = a[2].intValue,
                      offset >= 0, stored >= 0, length >= 0,
                      let tname = a[3].stringValue, let transform = Transform(tname),
                      let streamList = a[4].arrayValue,
                      let h1 = a[5].stringValue.flatMap(unhex), let h2 = a[6].stringValue.flatMap(unhex) else {
                    throw fail("files[\(i)].frames[\(j)]", "is not [offset, storedLength, length, transform, streams, xxh64, storedXXH64]")
                }
                var streams: [Stream] = []
                for st in streamList {
                    guard let pair = st.arrayValue, pair.count == 2, let c = pair[0].stringValue.flatMap(Codec.init(rawValue:)),
                          let n = pair[1].intValue, n >= 0 else {
                        throw fail("files[\(i)].frames[\(j)].streams", "each stream is [codec, storedLength]")
                    }
                    streams.append(Stream(codec: c, storedLength: n))
                }
                parsed.append(Frame(offset: offset, storedLength: stored, length: length, transform: transform, streams: streams,
                                    hash: h1, storedHash: h2))
            }
            self.files.append(File(path: path, size: size, digest: digest, format: format, frames: parsed))
        }
        guard let tensors = json["tensors"]?.arrayValue else { throw fail("tensors", "must be an array") }
        self.tensors = []
        for (i, t) in tensors.enumerated() {
            guard let a = t.arrayValue, a.count == 5, let file = a[0].intValue, let name = a[1].stringValue,
                  let dtype = a[2].stringValue, let offset = a[3].intValue, let length = a[4].intValue,
                  file >= 0, file < self.files.count, offset >= 0, length >= 0,
                  let end = Checked.add(offset, length), end <= self.files[file].size else {
                throw fail("tensors[\(i)]", "is not [file, name, dtype, offset, length] inside its file")
            }
            self.tensors.append(Tensor(file: file, name: name, dtype: dtype, offset: offset, length: length))
        }
    }

    init(kind: String, level: Int, files: [File], tensors: [Tensor]) {
        self.kind = kind
        self.level = level
        self.files = files
        self.tensors = tensors
    }
}

/// 16 lower-case hex digits.
func hex(_ v: UInt64) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: 16 - s.count) + s
}

func unhex(_ s: String) -> UInt64? {
    s.utf8.count == 16 ? UInt64(s, radix: 16) : nil
}

extension PackIndex.File {
    /// The digest of a file from its frames' hashes.
    static func digest(of frames: [PackIndex.Frame]) -> UInt64 {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(frames.count * 8)
        for f in frames { withUnsafeBytes(of: f.hash.littleEndian) { bytes.append(contentsOf: $0) } }
        return bytes.withUnsafeBytes { XXH64.hash($0) }
    }
}
