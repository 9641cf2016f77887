import IngotFormats

/// A SentencePiece model file (`tokenizer.model`, the protocol buffer `sentencepiece.ModelProto` of
/// sentencepiece_model.proto): its pieces with scores and types, and the few trainer and normalizer settings that
/// decide how text is encoded. Read without the protobuf library, every length and offset checked; written back in the
/// same wire format (fields in number order) so that sentencepiece and Transformers load it.
public struct SentencePieceModel: Equatable, Sendable {
    /// One vocabulary entry. `type` uses SentencePiece's numbering, which is also GGUF's `tokenizer.ggml.token_type`:
    /// 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    public struct Piece: Equatable, Sendable {
        public var piece: String
        public var score: Float
        public var type: Int32

        public init(piece: String, score: Float, type: Int32) {
            self.piece = piece
            self.score = score
            self.type = type
        }
    }

    public var pieces: [Piece]
    /// TrainerSpec.model_type: 1 unigram, 2 BPE, 3 word, 4 char.
    public var modelType: Int32 = 1
    /// TrainerSpec.byte_fallback: characters no piece covers become `<0xXX>` pieces.
    public var byteFallback = false
    public var unkID: Int32 = 0, bosID: Int32 = 1, eosID: Int32 = 2, padID: Int32 = -1
    /// NormalizerSpec.add_dummy_prefix: a space (U+2581) is put before the text.
    public var addDummyPrefix = true
    /// NormalizerSpec.remove_extra_whitespaces.
    public var removeExtraWhitespaces = true
    /// NormalizerSpec.name (`identity`, `nmt_nfkc`, ...).
    public var normalizerName = "nmt_nfkc"

    public init(pieces: [Piece]) { self.pieces = pieces }

    // MARK: reading

    /// Parses `bytes` (the whole file). Errors name the field and its byte offset.
    public init(bytes: [UInt8], path: String) throws {
        var pieces: [Piece] = []
        self.init(pieces: [])
        var r = ProtoReader(bytes: bytes, start: 0, end: bytes.count, path: path)
        while let (field, wire, at) = try r.nextField() {
            switch (field, wire) {
            case (1, 2):
                var sub = try r.message(at: at, name: "pieces[\(pieces.count)]")
                var p = Piece(piece: "", score: 0, type: 1)
                while let (f, w, a) = try sub.nextField() {
                    switch (f, w) {
                    case (1, 2): p.piece = try sub.string(at: a, name: "pieces[\(pieces.count)].piece")
                    case (2, 5): p.score = Float(bitPattern: try sub.fixed32(at: a))
                    case (3, 0): p.type = Int32(truncatingIfNeeded: try sub.varint(at: a))
                    default: try sub.skip(wire: w, at: a)
                    }
                }
                pieces.append(p)
            case (2, 2):
                var sub = try r.message(at: at, name: "trainer_spec")
                while let (f, w, a) = try sub.nextField() {
                    switch (f, w) {
                    case (3, 0): modelType = Int32(truncatingIfNeeded: try sub.varint(at: a))
                    case (35, 0): byteFallback = try sub.varint(at: a) != 0
                    case (40, 0): unkID = Int32(truncatingIfNeeded: try sub.varint(at: a))
                    case (41, 0): bosID = Int32(truncatingIfNeeded: try sub.varint(at: a))
                    case (42, 0): eosID = Int32(truncatingIfNeeded: try sub.varint(at: a))
                    case (43, 0): padID = Int32(truncatingIfNeeded: try sub.varint(at: a))
                    default: try sub.skip(wire: w, at: a)
                    }
                }
            case (3, 2):
                var sub = try r.message(at: at, name: "normalizer_spec")
                while let (f, w, a) = try sub.nextField() {
                    switch (f, w) {
                    case (1, 2): normalizerName = try sub.string(at: a, name: "normalizer_spec.name")
                    case (3, 0): addDummyPrefix = try sub.varint(at: a) != 0
                    case (4, 0): removeExtraWhitespaces = try sub.varint(at: a) != 0
                    default: try sub.skip(wire: w, at: a)
                    }
                }
            default:
                try r.skip(wire: wire, at: at)
            }
        }
        guard !pieces.isEmpty else {
            throw ModelError(.invalidValue, field: "pieces", offset: 0, "the SentencePiece model has no pieces", path: path)
        }
        self.pieces = pieces
    }

    // MARK: writing

    /// The model as protocol buffer bytes: pieces, then the trainer spec (model type, vocabulary size, byte fallback,
    /// special ids), then the normalizer spec (identity normalization, spaces escaped as U+2581).
    public var serialized: [UInt8] {
        var w = ProtoWriter()
        for p in pieces {
            var sub = ProtoWriter()
            sub.bytes(1, Array(p.piece.utf8))
            sub.fixed32(2, p.score.bitPattern)
            sub.varint(3, UInt64(UInt32(bitPattern: p.type)))
            w.bytes(1, sub.out)
        }
        var trainer = ProtoWriter()
        trainer.varint(3, UInt64(UInt32(bitPattern: modelType)))
        trainer.varint(4, UInt64(pieces.count))
        trainer.varint(35, byteFallback ? 1 : 0)
        for (f, v) in [(40, unkID), (41, bosID), (42, eosID), (43, padID)] {
            trainer.varint(f, UInt64(bitPattern: Int64(v)))   // negative ids: ten-byte varints, as protobuf writes int32
        }
        w.bytes(2, trainer.out)
        var normalizer = ProtoWriter()
        normalizer.bytes(1, Array(normalizerName.utf8))
        normalizer.varint(3, addDummyPrefix ? 1 : 0)
        normalizer.varint(4, removeExtraWhitespaces ? 1 : 0)
        normalizer.varint(5, 1)   // escape_whitespaces
        w.bytes(3, normalizer.out)
        return w.out
    }
}

/// Reads protocol buffer wire format within [start, end) of `bytes`.
struct ProtoReader {
    let bytes: [UInt8]
    var pos: Int
    let end: Int
    let path: String

    init(bytes: [UInt8], start: Int, end: Int, path: String) {
        self.bytes = bytes
        pos = start
        self.end = end
        self.path = path
    }

    func fail(_ detail: String, at offset: Int, field: String = "tokenizer.model") -> ModelError {
        ModelError(.invalidValue, field: field, offset: offset, detail, path: path)
    }

    /// The next field's number, wire type and offset; nil at the end.
    mutating func nextField() throws -> (Int, Int, Int)? {
        guard pos < end else { return nil }
        let at = pos
        let key = try varint(at: at)
        guard key >> 3 > 0, key >> 3 < 1 << 29 else { throw fail("field number \(key >> 3) is invalid", at: at) }
        return (Int(key >> 3), Int(key & 7), at)
    }

    mutating func varint(at: Int) throws -> UInt64 {
        var v: UInt64 = 0
        for shift in stride(from: 0, to: 70, by: 7) {
            guard pos < end else { throw fail("a varint runs past the end", at: at) }
            let b = bytes[pos]
            pos += 1
            if shift == 63 && b > 1 { throw fail("a varint is longer than 64 bits", at: at) }
            v |= UInt64(b & 0x7f) << UInt64(shift)
            if b & 0x80 == 0 { return v }
        }
        throw fail("a varint is longer than 10 bytes", at: at)
    }

    mutating func fixed32(at: Int) throws -> UInt32 {
        guard end - pos >= 4 else { throw fail("a 32-bit value runs past the end", at: at) }
        let v = UInt32(bytes[pos]) | UInt32(bytes[pos + 1]) << 8 | UInt32(bytes[pos + 2]) << 16 | UInt32(bytes[pos + 3]) << 24
        pos += 4
        return v
    }

    /// A length-delimited field's range.
    mutating func delimited(at: Int, name: String) throws -> Range<Int> {
        let n = try varint(at: at)
        guard n <= UInt64(end - pos) else { throw fail("\(name) of \(n) bytes runs past the end", at: at, field: name) }
        let r = pos..<(pos + Int(n))
        pos += Int(n)
        return r
    }

    mutating func message(at: Int, name: String) throws -> ProtoReader {
        let r = try delimited(at: at, name: name)
        return ProtoReader(bytes: bytes, start: r.lowerBound, end: r.upperBound, path: path)
    }

    mutating func string(at: Int, name: String) throws -> String {
        let r = try delimited(at: at, name: name)
        guard let s = String(validating: bytes[r], as: UTF8.self) else { throw fail("\(name) is not UTF-8", at: at, field: name) }
        return s
    }

    mutating func skip(wire: Int, at: Int) throws {
        switch wire {
        case 0: _ = try varint(at: at)
        case 1:
            guard end - pos >= 8 else { throw fail("a 64-bit value runs past the end", at: at) }
            pos += 8
        case 2: _ = try delimited(at: at, name: "a field")
        case 5: _ = try fixed32(at: at)
        default: throw fail("wire type \(wire) is not supported", at: at)
        }
    }
}

/// Writes protocol buffer wire format.
struct ProtoWriter {
    var out: [UInt8] = []

    mutating func rawVarint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            out.append(UInt8(v & 0x7f) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    mutating func varint(_ field: Int, _ v: UInt64) {
        rawVarint(UInt64(field << 3))
        rawVarint(v)
    }

    mutating func fixed32(_ field: Int, _ v: UInt32) {
        rawVarint(UInt64(field << 3 | 5))
        for s in [0, 8, 16, 24] { out.append(UInt8((v >> UInt32(s)) & 0xff)) }
    }

    mutating func bytes(_ field: Int, _ b: [UInt8]) {
        rawVarint(UInt64(field << 3 | 2))
        rawVarint(UInt64(b.count))
        out += b
    }
}
