@testable import IngotModel
import IngotArchitectures
import IngotFormats
import Testing

/// Rules of llama.cpp's tokenizer that a differential run found Ingot lacking (tools/tokenizer-diff.py); the ids
/// themselves are checked against llama.cpp's recorded ones by tools/check-tokenizer.py.
@Suite("Tokenizer rules from llama-vocab.cpp")
struct TokenizerRulesTests {
    @Test("DeepSeek LLM's letters include the Ohm and Kelvin signs, not the ASCII between K and ℭ")
    func deepseekLetters() {
        let letters = PreTokenizer.deepseekLetters
        for cp: UInt32 in [0x2126, 0x212A, 0x41, 0x7A] { #expect(letters.contains { $0.contains(cp) }, "U+\(cp)") }
        for cp: UInt32 in [0x5F, 0x7C, 0x3E, 0x2B, 0x60, 0x2125] { #expect(!letters.contains { $0.contains(cp) }, "U+\(cp)") }
        let split = PreTokenizer(named: "deepseek-llm")!.split("x_+|>".unicodeScalars.map(\.value))
        #expect(split == [1, 4])
    }

    func attributes(_ texts: [String], _ types: [Tokenizer.TokenType], roles: [SpecialRole: Int32] = [:]) -> [TokenAttributes] {
        let tokens = texts.map { Array($0.utf8) }
        var ids: [[UInt8]: Int32] = [:]
        for (i, t) in tokens.enumerated() { ids[t] = Int32(i) }
        return TokenAttributes.resolve(tokens: tokens, types: types, ids: ids, roles: roles, eos: nil)
    }

    @Test("a token spelled like an end of generation becomes control whatever its stored type")
    func endOfGeneration() {
        let a = attributes(["a", "</s>", "<|endoftext|>", "<|im_end|>", "b"], [.normal, .normal, .userDefined, .normal, .userDefined])
        #expect(a[0] == .normal && a[4] == .userDefined)
        #expect(a[1] == [.normal, .control] && a[2] == [.userDefined, .control] && a[3] == [.normal, .control])
    }

    @Test("the first token spelled like a role the file does not name becomes control; a named role is left alone")
    func roles() {
        let texts = ["<|fim_prefix|>", "<PRE>", "<|fim_suffix|>", "x"]
        let a = attributes(texts, [.normal, .normal, .normal, .normal])
        #expect(a[0] == [.normal, .control] && a[1] == .normal && a[2] == [.normal, .control])
        let named = attributes(texts, [.normal, .normal, .normal, .normal], roles: [.fimPre: 3, .fimSuf: 3])
        #expect(named[0] == .normal && named[1] == .normal && named[2] == .normal)
    }

    @Test("gpt-oss's channel markers are user-defined; o200k_harmony's <|end|> too; Gemma 4's </s> is normal")
    func exceptions() {
        let a = attributes(["<|channel|>", "<|end|>", "<|return|>", "<|call|>"], [.control, .control, .control, .control])
        #expect(a[0] == .userDefined && a[1] == .userDefined && a[2] == .control)
        let plain = attributes(["<|end|>", "x"], [.control, .normal])
        #expect(plain[0] == .control)
        let gemma = attributes(["</s>", "<|tool_response>"], [.control, .control])
        #expect(gemma[0] == .normal && gemma[1] == .control)
    }

    @Test("tokenizer.json: ids the file skips become placeholders, but one huge id cannot make millions of them")
    func sparseIDs() throws {
        func load(_ vocab: String, added: String = "[]") throws -> Tokenizer {
            try Tokenizer(huggingFace: JSONParser.parse(#"{"model": {"type": "BPE", "vocab": {\#(vocab)}, "merges": []}, "added_tokens": \#(added), "pre_tokenizer": {"type": "ByteLevel", "use_regex": true}}"#))
        }
        let gaps = try load(#""a": 0, "b": 3"#, added: #"[{"id": 5, "content": "<x>", "special": true}]"#)
        #expect(gaps.tokens.count == 6)
        #expect(gaps.tokens[1] == Array("[PAD1]".utf8) && gaps.tokens[5] == Array("<x>".utf8))
        // The input a fuzzer found: a 712-byte file whose one id of 9,111,111 made nine million placeholders (42 s).
        #expect(throws: ModelError.self) { try load(#""a": 0, "b": 9111111"#) }
        do {
            _ = try load(#""a": 0"#, added: #"[{"id": 9111111, "content": "<big>", "special": true}]"#)
            Issue.record("a huge added-token id was accepted")
        } catch let e as ModelError {
            #expect(e.code == .invalidValue && e.field == "added_tokens['<big>']")
        }
    }
}
