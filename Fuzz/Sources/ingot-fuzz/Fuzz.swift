#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IngotArchitectures
import IngotConvert
import IngotFormats
import IngotModel
import IngotNumerics
import IngotPack

// One libFuzzer binary for every target; INGOT_FUZZ_TARGET picks the one a run exercises. Each target feeds the input
// to a parser or loader and uses what it returns the way the commands do; a thrown error is the expected answer to a
// bad input, and anything else (a trap, an address-sanitizer report, a leak of the whole memory limit, a hang) is a
// finding. Targets:
//
//   gguf            GGUFFile: keys, tensor infos and data; ModelSpec and ModelValidation on what parsed
//   safetensors     SafetensorsFile: header, tensors and their bytes
//   json            JSONParser: parse, serialize, parse again to the same value (a round trip)
//   folder          a Hugging Face folder whose config.json, model.safetensors.index.json, tokenizer.json or
//                   tokenizer_config.json is the input (first byte picks which): HFModelDirectory, ModelSpec,
//                   ModelValidation, FolderTensors, the tokenizer
//   tokenizer       a GGUF's tokenizer (Tokenizer(gguf:)): encode hard strings with and without special tokens, decode
//   tokenizer-json  tokenizer.json (Tokenizer(huggingFace:)): the same
//   sentencepiece   tokenizer.model (SentencePieceModel(bytes:))
//   model           a GGUF model: DecoderModel(gguf:) (hyperparameters against tensors), then the logits of a
//                   window of up to 4 tokens
//   pack            a packed artifact: PackedArtifact(file:) and verify (every frame decoded and checked)
//   imatrix         an importance matrix, GGUF or legacy .dat (ImportanceMatrix.read)
//   gguf-roundtrip  keys and small tensors built from the input, written by GGUFWriter, read back equal

nonisolated(unsafe) let target: String = {
    guard let p = getenv("INGOT_FUZZ_TARGET") else {
        complain("INGOT_FUZZ_TARGET is not set (gguf, safetensors, json, folder, tokenizer, tokenizer-json, sentencepiece, model, pack, imatrix, gguf-roundtrip)\n")
        exit(2)
    }
    return String(cString: p)
}()

func complain(_ s: String) {
    let b = Array(s.utf8)
    b.withUnsafeBytes { _ = systemWrite(2, $0.baseAddress!, $0.count) }
}

func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, p, n)
    #else
    return Darwin.write(fd, p, n)
    #endif
}

/// A scratch folder of this process on a memory file system where there is one.
nonisolated(unsafe) let scratch: String = {
    let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
    let dir = "\(base)/ingot-fuzz-\(getpid())"
    mkdir(dir, 0o755)
    return dir
}()

let hardStrings: [[UInt8]] = [
    "Hello world", " To be, or not to be", "<|im_start|>user\nhi<|im_end|>", "\u{0}\u{1}\t\n  \r\n",
    "naïve café 東京 🧑🏽‍🚀 ١٢٣ 12345678", "<s></s><unk>", "'s 've 're ll", String(repeating: "a", count: 300),
].map { Array($0.utf8) }

// SwiftPM links an executable target with `main` aliased to `<module>_main` (so that tests can import executables);
// under -parse-as-library nothing defines that, and libFuzzer's own main is never linked. So this module defines
// it, and hands over to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(_ argc: UnsafeMutablePointer<Int32>,
                     _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                     _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

@_cdecl("ingot_fuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments, fuzz)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: count))
    switch target {
    case "gguf": fuzzGGUF(bytes)
    case "safetensors": fuzzSafetensors(bytes)
    case "json": fuzzJSON(bytes)
    case "folder": fuzzFolder(bytes)
    case "tokenizer": fuzzTokenizerGGUF(bytes)
    case "tokenizer-json": fuzzTokenizerJSON(bytes)
    case "sentencepiece": _ = try? SentencePieceModel(bytes: bytes, path: "fuzz.model")
    case "model": fuzzModel(bytes)
    case "pack": fuzzPack(bytes)
    case "imatrix": _ = try? ImportanceMatrix.read(file: MappedFile(copying: bytes, path: "fuzz.imatrix"))
    case "gguf-roundtrip": fuzzGGUFRoundTrip(bytes)
    default:
        complain("unknown INGOT_FUZZ_TARGET '\(target)'\n")
        exit(2)
    }
    return 0
}

/// Reads every byte of a buffer (so that a bad slice is caught by the address sanitizer).
@inline(never)
func touch(_ b: UnsafeRawBufferPointer) -> UInt8 {
    var x: UInt8 = 0
    for v in b { x ^= v }
    return x
}

func fuzzGGUF(_ bytes: [UInt8]) {
    guard let g = try? GGUFFile(file: MappedFile(copying: bytes, path: "fuzz.gguf")) else { return }
    var x: UInt8 = 0
    for kv in g.metadata { x ^= UInt8(truncatingIfNeeded: "\(kv.value)".utf8.count) }
    for t in g.tensors { x ^= touch(g.data(for: t)) }
    let spec = ModelSpec(gguf: g)
    _ = try? ModelValidation.check(gguf: g)
    _ = spec.headDimension
    _ = x
}

func fuzzSafetensors(_ bytes: [UInt8]) {
    guard let s = try? SafetensorsFile(file: MappedFile(copying: bytes, path: "fuzz.safetensors")) else { return }
    var x: UInt8 = 0
    for t in s.tensors { x ^= touch(s.data(for: t)) }
    _ = x
}

func fuzzJSON(_ bytes: [UInt8]) {
    guard let v = try? JSONParser.parse(bytes) else { return }
    let text = v.serialized(pretty: false)
    guard let again = try? JSONParser.parse(Array(text.utf8)) else {
        fatalError("JSON round trip: Ingot cannot read what it wrote: \(text.prefix(200))")
    }
    if again.serialized(pretty: false) != text {
        fatalError("JSON round trip: a second serialization differs")
    }
}

/// The folder of the `folder` target: a sharded checkpoint (two shards and their index), a config.json and a
/// tokenizer.json, written once; each input replaces one of its files.
nonisolated(unsafe) let folder: String = {
    let dir = scratch + "/folder"
    mkdir(dir, 0o755)
    let seeds = getenv("INGOT_FUZZ_FOLDER").map { String(cString: $0) } ?? ".cache/fuzz/folder"
    for name in (try? directoryEntries(seeds)) ?? [] {
        if let f = try? MappedFile(path: seeds + "/" + name) { write(dir + "/" + name, Array(f.bytes)) }
    }
    return dir
}()

func write(_ path: String, _ bytes: [UInt8]) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { return }
    bytes.withUnsafeBytes { b in
        var off = 0
        while off < b.count {
            let n = systemWrite(fd, b.baseAddress! + off, b.count - off)
            if n <= 0 { break }
            off += n
        }
    }
    close(fd)
}

func fuzzFolder(_ bytes: [UInt8]) {
    guard let first = bytes.first else { return }
    let names = ["config.json", "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json"]
    let name = names[Int(first) % names.count]
    let path = folder + "/" + name
    let original = (try? MappedFile(path: path)).map { Array($0.bytes) } ?? []
    write(path, Array(bytes.dropFirst()))
    defer { write(path, original) }
    guard let model = try? ModelFile.open(folder), case .huggingFaceFolder(let d) = model.storage else { return }
    _ = ModelSpec(model: model)
    _ = try? ModelValidation.check(model: model)
    if let tensors = try? FolderTensors.read(d) { _ = tensors.count }
    if let json = try? readJSON(folder + "/tokenizer.json"), let t = try? Tokenizer(huggingFace: json, path: "tokenizer.json") {
        exercise(t)
    }
}

func exercise(_ t: Tokenizer) {
    for s in hardStrings {
        for special in [false, true] {
            let ids = t.encode(s, addSpecial: special, parseSpecial: special)
            for id in ids.prefix(64) { _ = t.bytes(of: id) }
        }
    }
}

func fuzzTokenizerGGUF(_ bytes: [UInt8]) {
    guard let g = try? GGUFFile(file: MappedFile(copying: bytes, path: "fuzz.gguf")), let t = try? Tokenizer(gguf: g) else { return }
    exercise(t)
}

func fuzzTokenizerJSON(_ bytes: [UInt8]) {
    guard let json = try? JSONParser.parse(bytes), let t = try? Tokenizer(huggingFace: json, path: "tokenizer.json") else { return }
    exercise(t)
}

let workspace = MatMulWorkspace(threads: 1)

func fuzzModel(_ bytes: [UInt8]) {
    guard let g = try? GGUFFile(file: MappedFile(copying: bytes, path: "fuzz.gguf")), let m = try? DecoderModel(gguf: g) else { return }
    let n = min(4, m.vocab)
    guard n > 0 else { return }
    let tokens = (0..<n).map { Int32($0) }
    _ = try? m.logits(tokens, outputs: 0..<n, workspace: workspace, kernels: .best)
}

func fuzzPack(_ bytes: [UInt8]) {
    guard let a = try? PackedArtifact(file: MappedFile(copying: bytes, path: "fuzz.ingot")) else { return }
    _ = try? a.verify(threads: 1)
}

/// Keys and tensors built from the input: every value type GGUF has, tensor types with their byte sizes; written
/// by GGUFWriter, then read back: the same keys, values, names, types, shapes and bytes.
func fuzzGGUFRoundTrip(_ bytes: [UInt8]) {
    var r = Recipe(bytes)
    var metadata: [GGUFKeyValue] = []
    var keys = Set<String>()
    for i in 0..<Int(r.byte() % 12) {
        let key = "fuzz.k\(i).\(r.word(6))"
        guard keys.insert(key).inserted else { continue }
        metadata.append(GGUFKeyValue(key, r.value(depth: 0)))
    }
    var infos: [GGUFTensorInfo] = []
    var datas: [[UInt8]] = []
    let types: [GGMLType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_K, .q6_K, .i8, .i32]
    for i in 0..<Int(r.byte() % 5) {
        let type = types[Int(r.byte()) % types.count]
        let dims = [type.blockSize * (1 + Int(r.byte() % 4)), 1 + Int(r.byte() % 3)]
        guard let info = try? GGUFTensorInfo(name: "t\(i)", dimensions: dims, type: type) else { continue }
        infos.append(info)
        datas.append((0..<info.byteCount).map { _ in r.byte() })
    }
    let path = scratch + "/roundtrip.gguf"
    do {
        let w = try GGUFWriter(path: path, metadata: metadata, tensors: infos)
        for d in datas { try d.withUnsafeBytes { try w.write($0) } }
        try w.finish()
    } catch {
        fatalError("GGUF round trip: writing failed: \(error)")
    }
    guard let g = try? GGUFFile(path: path) else { fatalError("GGUF round trip: Ingot cannot read what it wrote") }
    let written = g.metadata.filter { $0.key.hasPrefix("fuzz.") }
    guard written.map(\.key) == metadata.map(\.key), zip(written, metadata).allSatisfy({ $0.value == $1.value }) else {
        fatalError("GGUF round trip: keys differ")
    }
    guard g.tensors.count == infos.count else { fatalError("GGUF round trip: tensor count differs") }
    for (t, (info, d)) in zip(g.tensors, zip(infos, datas)) {
        guard t.name == info.name, t.type == info.type, t.dimensions == info.dimensions, Array(g.data(for: t)) == d else {
            fatalError("GGUF round trip: tensor \(info.name) differs")
        }
    }
}

/// Draws values from the input, zeros once it runs out.
struct Recipe {
    let bytes: [UInt8]
    var i = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func byte() -> UInt8 {
        defer { i += 1 }
        return i < bytes.count ? bytes[i] : 0
    }

    mutating func word(_ n: Int) -> String {
        String(decoding: (0..<Int(byte()) % n).map { _ in UInt8(ascii: "a") + byte() % 26 }, as: UTF8.self)
    }

    mutating func u64() -> UInt64 { (0..<8).reduce(0) { v, _ in v << 8 | UInt64(byte()) } }

    /// A float from the input's bits; NaN becomes 0 (a NaN is never equal to itself, so the round trip could not
    /// compare it).
    mutating func f32() -> Float { let v = Float(bitPattern: UInt32(truncatingIfNeeded: u64())); return v.isNaN ? 0 : v }
    mutating func f64() -> Double { let v = Double(bitPattern: u64()); return v.isNaN ? 0 : v }

    mutating func value(depth: Int) -> GGUFValue {
        switch Int(byte()) % 13 {
        case 0: return .uint8(byte())
        case 1: return .int8(Int8(bitPattern: byte()))
        case 2: return .uint16(UInt16(truncatingIfNeeded: u64()))
        case 3: return .int16(Int16(truncatingIfNeeded: Int64(bitPattern: u64())))
        case 4: return .uint32(UInt32(truncatingIfNeeded: u64()))
        case 5: return .int32(Int32(truncatingIfNeeded: Int64(bitPattern: u64())))
        case 6: return .float32(f32())
        case 7: return .bool(byte() & 1 == 1)
        case 8: return .string(GGUFString(word(12)))
        case 9: return .uint64(u64())
        case 10: return .int64(Int64(bitPattern: u64()))
        case 11: return .float64(f64())
        default: return .array(array(depth: depth + 1))
        }
    }

    mutating func array(depth: Int) -> GGUFArray {
        let n = Int(byte() % 5)
        switch Int(byte()) % (depth < 3 ? 13 : 12) {
        case 0: return .uint8((0..<n).map { _ in byte() })
        case 1: return .int8((0..<n).map { _ in Int8(bitPattern: byte()) })
        case 2: return .uint16((0..<n).map { _ in UInt16(truncatingIfNeeded: u64()) })
        case 3: return .int16((0..<n).map { _ in Int16(truncatingIfNeeded: Int64(bitPattern: u64())) })
        case 4: return .uint32((0..<n).map { _ in UInt32(truncatingIfNeeded: u64()) })
        case 5: return .int32((0..<n).map { _ in Int32(truncatingIfNeeded: Int64(bitPattern: u64())) })
        case 6: return .float32((0..<n).map { _ in f32() })
        case 7: return .bool((0..<n).map { _ in byte() & 1 == 1 })
        case 8: return .string((0..<n).map { _ in GGUFString(word(12)) })
        case 9: return .uint64((0..<n).map { _ in u64() })
        case 10: return .int64((0..<n).map { _ in Int64(bitPattern: u64()) })
        case 11: return .float64((0..<n).map { _ in f64() })
        default: return .array((0..<n).map { _ in array(depth: depth + 1) })
        }
    }
}
