@testable import IngotModel
import IngotFormats
import Testing

/// SentencePiece-style BPE tokenizer.json (Llama 2, Mistral, Gemma): spaces as U+2581 by a Metaspace pre-tokenizer or
/// by the legacy Replace + Prepend normalizer, merges by rank over characters, byte fallback, unknown tokens fused.
/// A 15-token vocabulary with merges that compete (▁a+b before b+c), and the ids the tokenizers library (0.23.3) gives
/// for each form of the same file; the large vocabularies are compared with it by tools/tokenizer-diff.py --hf and
/// tools/check-tokenizer.py.
@Suite("SentencePiece-style tokenizer.json")
struct MetaspaceTests {
    static let vocab = #""<unk>": 0, "<s>": 1, "</s>": 2, "▁": 3, "a": 4, "b": 5, "▁a": 6, "ab": 7, "▁ab": 8, "▁▁": 9, "<0xC3>": 10, "<0xA9>": 11, "c": 12, "bc": 13, "abc": 14"#
    static let merges = #"[["▁", "a"], ["a", "b"], ["▁a", "b"], ["▁", "▁"], ["b", "c"], ["a", "bc"]]"#
    static let texts = ["ab ab", " ab", "  a", "a<s>ab", "<s> ab", "é", "xy ab", "abc", "a  b"]

    static func load(_ spaces: String, byteFallback: Bool = true) throws -> Tokenizer {
        let added = ["<unk>", "<s>", "</s>"].enumerated().map { #"{"id": \#($0.offset), "content": "\#($0.element)", "special": true}"# }
        let json = #"{"added_tokens": [\#(added.joined(separator: ", "))], \#(spaces), "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": \#(byteFallback), "vocab": {\#(vocab)}, "merges": \#(merges)}}"#
        return try Tokenizer(huggingFace: JSONParser.parse(json))
    }

    static func metaspace(_ scheme: String, split: Bool = false) -> String {
        #""normalizer": null, "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "\#(scheme)", "split": \#(split)}"#
    }

    static func ids(_ t: Tokenizer) -> [[Int32]] { texts.map { t.encode(Array($0.utf8), addSpecial: false, parseSpecial: true) } }

    @Test("each form gives the tokenizers library's ids")
    func forms() throws {
        let legacy = #""normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}, "pre_tokenizer": null"#
        let expected: [(String, String, [[Int32]])] = [
            ("legacy", legacy, [[8, 8], [3, 8], [9, 6], [6, 1, 8], [1, 3, 8], [3, 10, 11], [3, 0, 8], [8, 12], [6, 9, 5]]),
            ("first", Self.metaspace("first"), [[8, 8], [8], [3, 6], [6, 1, 7], [1, 8], [3, 10, 11], [3, 0, 8], [8, 12], [6, 9, 5]]),
            ("always", Self.metaspace("always"), [[8, 8], [8], [3, 6], [6, 1, 8], [1, 8], [3, 10, 11], [3, 0, 8], [8, 12], [6, 9, 5]]),
            ("never", Self.metaspace("never"), [[7, 8], [8], [3, 6], [4, 1, 7], [1, 8], [10, 11], [0, 8], [7, 12], [4, 9, 5]]),
            ("first, split", Self.metaspace("first", split: true), [[8, 8], [8], [3, 6], [6, 1, 7], [1, 8], [3, 10, 11], [3, 0, 8], [8, 12], [6, 3, 3, 5]]),
            ("always, split", Self.metaspace("always", split: true), [[8, 8], [8], [3, 6], [6, 1, 8], [1, 8], [3, 10, 11], [3, 0, 8], [8, 12], [6, 3, 3, 5]]),
        ]
        for (name, spaces, want) in expected {
            let t = try Self.load(spaces)
            #expect(t.isSentencePieceBPE, "\(name)")
            #expect(Self.ids(t) == want, "\(name)")
        }
        // Without byte fallback a character no token holds is the unknown token; x and y together are one.
        #expect(Self.ids(try Self.load(Self.metaspace("first"), byteFallback: false))
                == [[8, 8], [8], [3, 6], [6, 1, 7], [1, 8], [3, 0], [3, 0, 8], [8, 12], [6, 9, 5]])
    }

    @Test("byte tokens decode to their bytes, U+2581 to spaces")
    func decoding() throws {
        let t = try Self.load(Self.metaspace("first"))
        #expect(t.types[10] == .byte && t.types[0] == .unknown && t.types[1] == .control)
        #expect(t.encode(Array("é ab".utf8), addSpecial: false).flatMap { t.bytes(of: $0) } == Array(" é ab".utf8))
    }

    @Test("what Ingot does not implement is refused by field")
    func refusals() throws {
        func field(_ spaces: String) -> String? {
            do { _ = try Self.load(spaces); return nil } catch let e as ModelError { return e.field } catch { return "?" }
        }
        #expect(field(#""pre_tokenizer": {"type": "Metaspace", "replacement": "_"}"#) == "pre_tokenizer.replacement")
        #expect(field(#""pre_tokenizer": {"type": "Metaspace", "prepend_scheme": "sometimes"}"#) == "pre_tokenizer.prepend_scheme")
        #expect(field(#""pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Metaspace"}, {"type": "ByteLevel"}]}"#)
                == "pre_tokenizer.pretokenizers[0]")
    }
}
