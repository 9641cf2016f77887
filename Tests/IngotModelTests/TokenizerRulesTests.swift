@testable import IngotModel
import IngotArchitectures
import IngotFormats
import Testing

/// Rules of llama.cpp's tokenizer that a differential run found Ingot lacking (tools/tokenizer-diff.py); the ids
/// themselves are checked against llama.cpp's recorded ones by tools/check-tokenizer.py.
@Suite("Tokenizer rules from llama-vocab.cpp")
struct TokenizerRulesTests {
    @Test("DeepSeek LLM's letters include the Ohm and Kelvin signs, not the ASCII between K and ℭ")
    func deepseekLetters() throws {
        let deepseek = try #require(PreTokenizer(named: "deepseek-llm"))
        func pieces(_ s: String) -> [Int] { deepseek.split(s.unicodeScalars.map(\.value)) }
        // The Ohm and Kelvin signs are letters and stay together (the next pattern, whose `:-~` takes in the ASCII
        // letters, cuts the ASCII ones off); normalized to Ω and K, the range K-ℭ would take in '_' and '|'.
        #expect(pieces("a\u{2126}\u{212A}z") == [1, 2, 1])
        #expect(pieces("x_+|>") == [1, 4])
        #expect(pieces("\u{2125}a") == [1, 1])
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

/// The pattern engine llama.cpp's std::regex names run on, checked against the hand-written splitters llama.cpp uses
/// for the patterns it does not hand to std::regex (which Ingot follows), on random strings of hard code points.
@Suite("Pre-tokenizer patterns")
struct SplitRegexTests {
    /// Code points that exercise every class: ASCII of each kind, non-ASCII whitespace, letters of several scripts,
    /// marks, numbers that are not digits, symbols, joiners, Han and kana.
    static let pool: [UInt32] = Array(0x20...0x7E) + [0x09, 0x0A, 0x0D, 0x0B, 0x0A, 0x20, 0x20, 0x20, 0xA0, 0x85, 0x3000,
        0x2009, 0xE9, 0xC9, 0x301, 0x308, 0x4E2D, 0x6587, 0x30A2, 0x3042, 0xAC00, 0x661, 0x2167, 0xB2, 0x2126, 0x212A,
        0x1F600, 0x200D, 0xFE0F, 0x2014, 0x201C, 0xFF01, 0x3001, 0x2026, 0x5F, 0x27, 0x27, 0x394, 0x3B1, 0x416, 0x5D0,
        0x627, 0x915, 0x93F, 0xE01, 0xE31, 0x20AC, 0xA9, 0x2F00, 0xF900, 0x1780]

    func randomTexts(_ count: Int, seed: UInt64) -> [[UInt32]] {
        var state = seed
        func next() -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(truncatingIfNeeded: state >> 33)
        }
        return (0..<count).map { _ in (0..<(next() % 24)).map { _ in SplitRegexTests.pool[next() % SplitRegexTests.pool.count] } }
    }

    func pieces(_ steps: [PreTokenizerStep], _ text: [UInt32]) -> [Int] {
        PreTokenizer(name: "test", steps: steps).split(text)
    }

    @Test("the engine cuts llama.cpp's hand-split patterns as the hand-written splitters do")
    func engineAgreesWithSplitters() throws {
        let cases: [(String, PreTokenizerStep)] = [
            (PreTokenizerStep.gpt2Pattern, .gpt2),
            (PreTokenizerStep.llama3Pattern(digits: "{1,3}"), .llama3(digits: 3, marks: false)),
            (PreTokenizerStep.llama3Pattern(digits: ""), .llama3(digits: 1, marks: false)),
            (#"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#, .llama3(digits: 1, marks: true)),
            (#"[^\n]+|[\n]+"#, .newlineRuns),
        ]
        for (pattern, splitter) in cases {
            let regex = try SplitRegex(pattern)
            for text in randomTexts(3000, seed: UInt64(pattern.utf8.count)) {
                let a = pieces([.regex(regex)], text)
                let b = pieces([splitter], text)
                #expect(a == b, "\(pattern) on \(text.map { String($0, radix: 16) })")
                if a != b { break }
            }
        }
    }

    @Test("every pre-tokenizer llama.cpp names is known but the whitespace one; patterns collapse where they name a category")
    func everyPatternCompiles() throws {
        // The names llama_vocab::impl::load compares tokenizer.ggml.pre with (llama-cpp-python 0.3.36's llama.cpp):
        // grep -o 'tokenizer_pre == "[^"]*"' src/llama-vocab.cpp | sort -u
        let llamaNames = ["a.x-4.0", "afmoe", "bailingmoe", "bailingmoe2", "bloom", "chameleon", "chatglm-bpe", "codeshell",
            "cohere2moe", "command-r", "dbrx", "deepseek-coder", "deepseek-llm", "deepseek-r1-qwen", "deepseek-v3", "default",
            "exaone", "exaone-moe", "exaone4", "f2llmv2", "falcon", "falcon-h1", "falcon3", "gemma4", "gigachat", "glm4",
            "glm5", "gpt-2", "gpt-4o", "gpt3-finnish", "granite-docling", "granite-embed-multi-311m",
            "granite-embed-multi-97m", "grok-2", "hunyuan", "hunyuan-dense", "hy_v4", "jais", "jais-2", "jina-de", "jina-es",
            "jina-v1-en", "jina-v2-code", "jina-v2-de", "jina-v2-es", "jina-v5-nano", "joyai-llm", "kanana2", "kimi-k2",
            "kormo", "laguna", "lfm2", "llada-moe", "llama-bpe", "llama-v3", "llama3", "llama4", "megrez", "mellum",
            "mellum2", "midm-2.0", "minerva-7b", "minicpm5", "minimax-m2", "modern-bert", "mpt", "olmo", "phi-2", "pixtral",
            "poro-chat", "qwen2", "qwen35", "refact", "roberta-bpe", "sarvam-moe", "seed-coder", "smaug-bpe", "smollm",
            "solar-open", "spark2_5", "stablelm2", "starcoder", "superbpe", "talkie", "tekken", "tiny_aya", "trillion",
            "ufakzeka", "viking", "whitespace", "youtu"]
        #expect(llamaNames.count == 91)
        // "whitespace" belongs to the whitespace tokenizer model (jina-embeddings-v2-base-zh), which Ingot refuses.
        #expect(llamaNames.filter { PreTokenizer(named: $0) == nil } == ["whitespace"])
        #expect(try SplitRegex(#"\p{N}+"#).collapsed)
        #expect(try !SplitRegex(#"(?=(\d{3})+(?!\d))"#).collapsed)
        #expect(try SplitRegex.collapse(#"[^\r\n\p{L}\p{N}]?"#) == "[^\\r\\n\u{D2}A-Za-z\u{D1}0-9]?")
        #expect(try SplitRegex.collapse(#"\p{S}"#) == "[\u{D5}\\$\\+<->^`\\|\\~]")
        #expect(throws: SplitRegexError.self) { try SplitRegex(#"(a*)*"#) }
        #expect(throws: SplitRegexError.self) { try SplitRegex("\\p{L}\u{4E00}") }
    }

    @Test("character classes are llama.cpp's table's, not the Swift runtime's newer Unicode")
    func llamaClasses() {
        let expected: [(UInt32, CodepointClass)] = [
            (0x41, .letter), (0x7E, .symbol), (0x5F, .punctuation), (0x24, .symbol), (0x301, .mark), (0x661, .number),
            (0x2167, .number), (0x4E2D, .letter), (0x200D, []), (0x1F600, .symbol),
            // Assigned after llama.cpp's table was made (Swift knows them: a mark, a letter): none of the classes.
            (0x897, []), (0x88F, []),
        ]
        for (cp, c) in expected {
            #expect(CodepointClass.of(cp).subtracting([.present, .whitespace]) == c, "U+\(String(cp, radix: 16))")
        }
        #expect(CodepointClass.of(0x3000).contains(.whitespace) && !CodepointClass.of(0x200B).contains(.whitespace))
    }

    @Test("the quirks of collapsed text: [^a-z] takes in every non-ASCII letter, \\p{Lu} is every letter")
    func collapsedQuirks() throws {
        // Tekken splits a capitalised word before its lower-case run; a non-ASCII lower-case letter counts as both.
        let tekken = try #require(PreTokenizer(named: "tekken"))
        #expect(tekken.split("HelloWorld".unicodeScalars.map(\.value)) == [5, 5])
        #expect(tekken.split("éa".unicodeScalars.map(\.value)) == [2])
        // SuperBPE cuts digit runs into threes from the right with empty lookahead matches.
        let superbpe = try #require(PreTokenizer(named: "superbpe"))
        #expect(superbpe.split("x1234567".unicodeScalars.map(\.value)) == [1, 1, 3, 3])
        // AFMoE's digit splitter joins the text before a run to the run's first group, as llama.cpp's does.
        #expect(pieces([.digitsFromRight], "ab1234567c".unicodeScalars.map(\.value)) == [3, 3, 3, 1])
        #expect(pieces([.digitsFromRight], "ab123".unicodeScalars.map(\.value)) == [5])
    }
}

@Suite("SentencePiece words")
struct SentencePieceWordsTests {
    func spm(_ pieces: [(String, Float)]) -> Tokenizer {
        Tokenizer(kind: .spm, preTokenizer: nil, tokens: pieces.map { Array($0.0.utf8) }, types: pieces.map { _ in .normal },
                  scores: pieces.map(\.1), merges: [], bos: nil, eos: nil, addsBOS: false, addsEOS: false, spacePrefix: .everyFragment)
    }

    @Test("words merge alone only where no token joins a word to the next one's U+2581")
    func wordsAlone() {
        let base: [(String, Float)] = [("<unk>", 0), ("\u{2581}", -1), ("a", -2), ("b", -3), ("\u{2581}a", -4), ("\u{2581}b", -5),
                                       ("\u{2581}\u{2581}", -6)]
        let alone = spm(base)
        #expect(alone.wordsMergeAlone)
        #expect(alone.encode(Array("a b".utf8), addSpecial: false) == [4, 5])
        // "a▁b" crosses the boundary: the whole text is merged as one, and that token wins.
        let joined = spm(base + [("a\u{2581}b", 10), ("\u{2581}a\u{2581}b", 11)])
        #expect(!joined.wordsMergeAlone)
        #expect(joined.encode(Array("a b".utf8), addSpecial: false) == [8])
        // A short token is no trap for the check.
        #expect(spm(base + [("\u{2581}x", -7), ("x", -8)]).wordsMergeAlone)
    }
}
