/// Any model file Ingot reads, behind one view: its format, its tensors (name, type, shape,
/// bytes, place in a file) and the format-specific object for everything else.
public final class ModelFile: @unchecked Sendable {
    public enum Format: String, Sendable {
        case gguf
        case safetensors
        case huggingFaceFolder = "hf-folder"
    }

    public enum Storage: @unchecked Sendable {
        case gguf(GGUFFile)
        case safetensors(SafetensorsFile)
        case huggingFaceFolder(HFModelDirectory)
    }

    public let path: String
    public let storage: Storage
    /// Every tensor, in file order (shard by shard for folders).
    public let tensors: [TensorEntry]

    public var format: Format {
        switch storage {
        case .gguf: .gguf
        case .safetensors: .safetensors
        case .huggingFaceFolder: .huggingFaceFolder
        }
    }

    public var gguf: GGUFFile? { if case .gguf(let g) = storage { return g }; return nil }

    /// Opens `path`: a folder is read as a Hugging Face folder; a file by its extension
    /// (`.gguf`, `.safetensors`), else by its first bytes.
    public static func open(_ path: String) throws -> ModelFile {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw FormatError(.cannotOpen, field: "path", offset: nil, "cannot open: \(errnoText())", path: path)
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            return ModelFile(path: path, storage: .huggingFaceFolder(try HFModelDirectory(path: path)))
        }
        let file = try MappedFile(path: path)
        let lower = path.lowercased()
        if lower.hasSuffix(".gguf") || file.bytes.starts(with: GGUFFile.magic) {
            return ModelFile(path: path, storage: .gguf(try GGUFFile(file: file)))
        }
        if lower.hasSuffix(".safetensors") || (file.count > 8 && file.bytes[8] == UInt8(ascii: "{")) {
            return ModelFile(path: path, storage: .safetensors(try SafetensorsFile(file: file)))
        }
        throw FormatError(.unknownFormat, field: "file", offset: 0,
                          "neither GGUF (magic 'GGUF') nor safetensors (u64 length, then '{')", path: path)
    }

    init(path: String, storage: Storage) {
        self.path = path
        self.storage = storage
        switch storage {
        case .gguf(let g):
            tensors = g.tensors.map { t in
                TensorEntry(name: t.name, typeName: t.type.name, shape: t.shape, elementCount: t.elementCount,
                            byteCount: t.byteCount, file: g.path, fileOffset: g.dataOffset + t.offset)
            }
        case .safetensors(let s):
            tensors = ModelFile.entries(s, relativeTo: nil)
        case .huggingFaceFolder(let d):
            tensors = d.shards.flatMap { ModelFile.entries($0, relativeTo: d.path) }
        }
    }

    static func entries(_ s: SafetensorsFile, relativeTo dir: String?) -> [TensorEntry] {
        let name = dir.map { s.path.hasPrefix($0 + "/") ? String(s.path.dropFirst($0.count + 1)) : s.path } ?? s.path
        return s.tensors.map { t in
            TensorEntry(name: t.name, typeName: t.dtype.rawValue, shape: t.shape, elementCount: t.elementCount,
                        byteCount: t.byteCount, file: name, fileOffset: s.dataOffset + t.begin)
        }
    }
}

/// One tensor as every format describes it.
public struct TensorEntry: Equatable, Sendable {
    public var name: String
    /// The type's name in its format's vocabulary: `Q4_K`, `F16`, `BF16`, `F8_E4M3`.
    public var typeName: String
    /// Outermost-first (numpy / PyTorch order) for every format; GGUF stores the reverse.
    public var shape: [Int]
    public var elementCount: Int
    public var byteCount: Int
    /// The file holding the data (relative to the folder for Hugging Face folders).
    public var file: String
    /// Absolute offset of the first data byte in `file`.
    public var fileOffset: Int
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
