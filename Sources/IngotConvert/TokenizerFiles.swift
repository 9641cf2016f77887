import IngotFormats
import IngotModel

/// A byte-level BPE tokenizer in both homes: GGUF `tokenizer.ggml.*` keys and Hugging Face's `tokenizer.json` +
/// `tokenizer_config.json`. Both directions keep the vocabulary, merges, token types, special token ids, the add-BOS
/// flags and the chat template (an inert string), so that the same text gives the same ids on either side.
struct TokenizerFacts {
    var tokens: [String]
    /// GGUF `tokenizer.ggml.token_type` (1 normal, 3 control, 4 user-defined).
    var types: [Int32]
    var merges: [String]
    /// llama.cpp's name of the pre-tokenizer (`smollm`, `llama-bpe`, `qwen2`).
    var pre: String
    var bos: Int?, eos: Int?, unk: Int?, pad: Int?
    var addBOS: Bool?, addEOS: Bool?, addSpacePrefix: Bool?
    var chatTemplate: String?

    // MARK: GGUF

    init(gguf g: GGUFFile) throws {
        guard let model = g["tokenizer.ggml.model"]?.stringValue else {
            throw ModelError(.missingField, field: "tokenizer.ggml.model", "the file has no tokenizer to convert", path: g.path)
        }
        guard model == "gpt2" else {
            throw ModelError(.unsupportedTokenizer, field: "tokenizer.ggml.model",
                             offset: g.metadata.first { $0.key == "tokenizer.ggml.model" }?.fileOffset,
                             "only byte-level BPE (gpt2) tokenizers convert to tokenizer.json so far, not '\(model)'", path: g.path)
        }
        guard case .array(.string(let list))? = g["tokenizer.ggml.tokens"] else {
            throw ModelError(.missingField, field: "tokenizer.ggml.tokens", "an array of strings is required", path: g.path)
        }
        tokens = list.map(\.string)
        if case .array(.int32(let t))? = g["tokenizer.ggml.token_type"], t.count == tokens.count {
            types = t
        } else {
            types = [Int32](repeating: 1, count: tokens.count)
        }
        if case .array(.string(let m))? = g["tokenizer.ggml.merges"] { merges = m.map(\.string) } else { merges = [] }
        pre = g["tokenizer.ggml.pre"]?.stringValue ?? "default"
        guard TokenizerFacts.preTokenizerJSON(pre) != nil else {
            throw ModelError(.unsupportedTokenizer, field: "tokenizer.ggml.pre",
                             offset: g.metadata.first { $0.key == "tokenizer.ggml.pre" }?.fileOffset,
                             "pre-tokenizer '\(pre)' has no tokenizer.json form in Ingot yet", path: g.path)
        }
        func id(_ k: String) -> Int? { g["tokenizer.ggml.\(k)"]?.intValue.flatMap { $0 >= 0 && $0 < list.count ? $0 : nil } }
        bos = id("bos_token_id"); eos = id("eos_token_id"); unk = id("unknown_token_id"); pad = id("padding_token_id")
        addBOS = g["tokenizer.ggml.add_bos_token"]?.boolValue
        addEOS = g["tokenizer.ggml.add_eos_token"]?.boolValue
        addSpacePrefix = g["tokenizer.ggml.add_space_prefix"]?.boolValue
        chatTemplate = g["tokenizer.chat_template"]?.stringValue
    }

    /// The GGUF keys, in the order llama.cpp's converter (llama-cpp-python 0.3.36) writes them.
    var ggufKeys: [GGUFKeyValue] {
        var out: [GGUFKeyValue] = []
        if let b = addSpacePrefix { out.append(GGUFKeyValue("tokenizer.ggml.add_space_prefix", .bool(b))) }
        out.append(GGUFKeyValue("tokenizer.ggml.model", .string("gpt2")))
        out.append(GGUFKeyValue("tokenizer.ggml.pre", .string(GGUFString(pre))))
        out.append(GGUFKeyValue("tokenizer.ggml.tokens", .array(.string(tokens.map { GGUFString($0) }))))
        out.append(GGUFKeyValue("tokenizer.ggml.token_type", .array(.int32(types))))
        out.append(GGUFKeyValue("tokenizer.ggml.merges", .array(.string(merges.map { GGUFString($0) }))))
        for (key, v) in [("bos_token_id", bos), ("eos_token_id", eos), ("unknown_token_id", unk), ("padding_token_id", pad)] {
            if let v { out.append(GGUFKeyValue("tokenizer.ggml.\(key)", .uint32(UInt32(v)))) }
        }
        if let t = chatTemplate { out.append(GGUFKeyValue("tokenizer.chat_template", .string(GGUFString(t)))) }
        if let b = addBOS { out.append(GGUFKeyValue("tokenizer.ggml.add_bos_token", .bool(b))) }
        if let b = addEOS { out.append(GGUFKeyValue("tokenizer.ggml.add_eos_token", .bool(b))) }
        return out
    }

    // MARK: Hugging Face

    /// The `pre_tokenizer` of tokenizer.json for each llama.cpp pre-tokenizer Ingot can write.
    static func preTokenizerJSON(_ pre: String) -> JSONValue? {
        let byteLevel = JSONValue.object(JSONObject([("type", "ByteLevel"), ("add_prefix_space", false), ("trim_offsets", true),
                                                     ("use_regex", true)]))
        func split(_ pattern: String) -> JSONValue {
            .object(JSONObject([("type", "Sequence"), ("pretokenizers", .array([
                .object(JSONObject([("type", "Split"), ("pattern", .object(JSONObject([("Regex", .string(pattern))]))),
                                    ("behavior", "Isolated"), ("invert", false)])),
                .object(JSONObject([("type", "ByteLevel"), ("add_prefix_space", false), ("trim_offsets", true), ("use_regex", false)])),
            ]))]))
        }
        switch pre {
        case "smollm", "starcoder", "refact", "command-r":
            return .object(JSONObject([("type", "Sequence"), ("pretokenizers", .array([
                .object(JSONObject([("type", "Digits"), ("individual_digits", true)])), byteLevel]))]))
        case "gpt-2", "mpt", "olmo": return byteLevel
        case "llama-bpe", "llama3": return split(Tokenizer.llama3SplitPattern)
        case "qwen2", "deepseek-r1-qwen": return split(Tokenizer.qwen2SplitPattern)
        default: return nil
        }
    }

    /// tokenizer.json: vocabulary and merges, control and user-defined tokens as added tokens, the pre-tokenizer of
    /// `pre`, and a post-processor that adds BOS (and EOS) where the GGUF says so.
    var tokenizerJSON: JSONValue {
        var added: [JSONValue] = []
        for (i, t) in types.enumerated() where t == 3 || t == 4 {
            added.append(.object(JSONObject([
                ("id", JSONValue(i)), ("content", .string(tokens[i])), ("single_word", false), ("lstrip", false),
                ("rstrip", false), ("normalized", .bool(t == 4)), ("special", .bool(t == 3)),
            ])))
        }
        var post: JSONValue = .null
        if addBOS == true || addEOS == true {
            var single: [JSONValue] = []
            var specials: [(String, JSONValue)] = []
            func special(_ id: Int?) {
                guard let id else { return }
                single.append(.object(JSONObject([("SpecialToken", .object(JSONObject([("id", .string(tokens[id])), ("type_id", 0)])))])))
                specials.append((tokens[id], .object(JSONObject([("id", .string(tokens[id])), ("ids", [JSONValue(id)]),
                                                                  ("tokens", [.string(tokens[id])])]))))
            }
            if addBOS == true { special(bos) }
            single.append(.object(JSONObject([("Sequence", .object(JSONObject([("id", "A"), ("type_id", 0)])))])))
            if addEOS == true { special(eos) }
            post = .object(JSONObject([("type", "TemplateProcessing"), ("single", .array(single)), ("pair", .array(single)),
                                       ("special_tokens", .object(JSONObject(specials)))]))
        }
        let vocab = JSONObject(tokens.enumerated().map { ($0.element, JSONValue($0.offset)) })
        let ignoreMerges = pre == "llama-bpe" || pre == "llama3"
        return .object(JSONObject([
            ("version", "1.0"), ("truncation", .null), ("padding", .null), ("added_tokens", .array(added)),
            ("normalizer", .null), ("pre_tokenizer", TokenizerFacts.preTokenizerJSON(pre) ?? .null), ("post_processor", post),
            ("decoder", .object(JSONObject([("type", "ByteLevel"), ("add_prefix_space", true), ("trim_offsets", true),
                                            ("use_regex", true)]))),
            ("model", .object(JSONObject([
                ("type", "BPE"), ("dropout", .null), ("unk_token", .null), ("continuing_subword_prefix", .null),
                ("end_of_word_suffix", .null), ("fuse_unk", false), ("byte_fallback", false), ("ignore_merges", .bool(ignoreMerges)),
                ("vocab", .object(vocab)), ("merges", .array(merges.map { .string($0) })),
            ]))),
        ]))
    }

    /// tokenizer_config.json: the special tokens by content, the add flags, the chat template and each added token.
    var tokenizerConfigJSON: JSONValue {
        var o: [(String, JSONValue)] = []
        if let b = addBOS { o.append(("add_bos_token", .bool(b))) }
        if let b = addEOS { o.append(("add_eos_token", .bool(b))) }
        if let b = addSpacePrefix { o.append(("add_prefix_space", .bool(b))) }
        var decoder: [(String, JSONValue)] = []
        for (i, t) in types.enumerated() where t == 3 || t == 4 {
            decoder.append((String(i), .object(JSONObject([("content", .string(tokens[i])), ("lstrip", false), ("normalized", .bool(t == 4)),
                                                           ("rstrip", false), ("single_word", false), ("special", .bool(t == 3))]))))
        }
        o.append(("added_tokens_decoder", .object(JSONObject(decoder))))
        for (key, id) in [("bos_token", bos), ("eos_token", eos), ("unk_token", unk), ("pad_token", pad)] {
            o.append((key, id.map { .string(tokens[$0]) } ?? .null))
        }
        if let t = chatTemplate { o.append(("chat_template", .string(t))) }
        o.append(("clean_up_tokenization_spaces", false))
        o.append(("model_max_length", JSONValue(1_000_000_000_000_000_000)))
        o.append(("tokenizer_class", "GPT2Tokenizer"))
        return .object(JSONObject(o))
    }

    /// Reads tokenizer.json (byte-level BPE) and tokenizer_config.json as llama.cpp's converter does
    /// (`_set_vocab_gpt2` and `SpecialVocab`): `vocabSize` entries (config.json `vocab_size`; holes become
    /// `[PADn]` user-defined tokens), added tokens that are special (or look special, `<|...|>`) as control tokens,
    /// special token ids from tokenizer_config.json's token contents, and the pre-tokenizer named the way llama.cpp
    /// names it: by the hash of the ids of its check text, else by the pre-tokenizer's structure.
    init(folder: String, files: [String], vocabSize: Int?, configBOS: Int?, configEOS: Int?, llamaVocabRules: Bool) throws {
        guard files.contains("tokenizer.json") else {
            let what = files.contains("tokenizer.model") ? "a SentencePiece tokenizer.model (not converted yet)" : "no tokenizer.json"
            throw ModelError(.unsupportedTokenizer, field: "tokenizer.json", "the folder has \(what)", path: folder)
        }
        let path = folder + "/tokenizer.json"
        let root = try readJSON(path)
        let tokenizer = try Tokenizer(huggingFace: root, path: path)
        let config = files.contains("tokenizer_config.json") ? try readJSON(folder + "/tokenizer_config.json") : JSONValue.null
        var byID: [Int: String] = [:]
        for m in root["model"]?["vocab"]?.objectValue?.members ?? [] { if let i = m.value.intValue { byID[i] = m.key } }
        var addedSpecial: [Int: Bool] = [:]
        for t in root["added_tokens"]?.arrayValue ?? [] {
            guard let i = t["id"]?.intValue, let c = t["content"]?.stringValue else { continue }
            byID[i] = c
            addedSpecial[i] = t["special"]?.boolValue ?? false
        }
        let count = max(vocabSize ?? 0, (byID.keys.max() ?? -1) + 1)
        guard count < 10_000_000 else {
            throw ModelError(.invalidValue, field: "vocab_size", "\(count) tokens is beyond Ingot's limit of 10 million", path: folder)
        }
        tokens = []
        types = []
        for i in 0..<count {
            guard let t = byID[i] else {
                tokens.append("[PAD\(i)]"); types.append(4); continue
            }
            tokens.append(t)
            if let special = addedSpecial[i] {
                types.append(special || (t.hasPrefix("<|") && t.hasSuffix("|>")) ? 3 : 4)
            } else {
                types.append(1)
            }
        }
        merges = (root["model"]?["merges"]?.arrayValue ?? []).compactMap { m in
            if let s = m.stringValue { return s }
            if let p = m.arrayValue, p.count == 2, let a = p[0].stringValue, let b = p[1].stringValue { return a + " " + b }
            return nil
        }
        let ids = tokenizer.encode(Array(TokenizerFacts.checkText.utf8), addSpecial: true, parseSpecial: false)
        let digest = SHA256.hex(Array(("[" + ids.map(String.init).joined(separator: ", ") + "]").utf8))
        if let name = TokenizerFacts.knownHashes[digest] {
            pre = name
        } else if let name = TokenizerFacts.structuralName(tokenizer.preTokenizer) {
            pre = name
        } else {
            throw ModelError(.unsupportedTokenizer, field: "pre_tokenizer",
                             "the pre-tokenizer matches none llama.cpp names (check-text hash \(digest))", path: path)
        }
        let index = Dictionary(tokens.enumerated().map { ($0.element, $0.offset) }, uniquingKeysWith: { a, _ in a })
        func special(_ key: String) -> Int? {
            let v = config[key]
            guard let content = v?.stringValue ?? v?["content"]?.stringValue else { return nil }
            return index[content]
        }
        bos = special("bos_token") ?? configBOS
        eos = special("eos_token") ?? configEOS
        unk = special("unk_token")
        pad = special("pad_token")
        addBOS = config["add_bos_token"]?.boolValue
        addEOS = config["add_eos_token"]?.boolValue
        if llamaVocabRules {
            addSpacePrefix = config["add_prefix_space"]?.boolValue
            // llama.cpp's converter: Granite-sized vocabularies (49152, SmolLM's too) never add BOS.
            if count == 49152 && addBOS == nil { addBOS = false }
        }
        chatTemplate = config["chat_template"]?.stringValue
    }

    /// llama.cpp's check text (`get_vocab_base_pre`): its ids identify a pre-tokenizer.
    static let checkText = "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u{200d}🌫️ (multiple emojis concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL"

    /// SHA-256 of the check text's ids -> llama.cpp's name, for the pre-tokenizers Ingot writes (from
    /// `conversion/base.py` of llama.cpp as shipped in llama-cpp-python 0.3.36).
    static let knownHashes: [String: String] = [
        "855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249": "smollm",
        "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5": "llama-bpe",
        "d4540891389ea895b53b399da6ac824becc30f2fba0e9ddbb98f92e55ca0e97c": "qwen2",
        "e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea": "qwen2",
        "0fe1cf6eda062318a1af7270f3331a85c539a01778ff948e24388e949c5282f4": "gpt-2",
        "3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454": "gpt-2",
        "35d91631860c815f952d711435f48d356ebac988362536bed955d43bfa436e34": "starcoder",
        "6221ad2852e85ce96f791f476e0b390cf9b474c9e3d1362f53a24a06dc8220ff": "refact",
        "877081d19cf6996e2c4ff0e1236341e9b7bde288f5311a56a937f0afbbb3aeb5": "deepseek-v3",
        "b3f499bb4255f8ca19fccd664443283318f2fd2414d5e0b040fbdd0cc195d6c5": "deepseek-r1-qwen",
    ]

    /// A name whose llama.cpp pre-tokenizer splits text the same way, for a tokenizer.json whose vocabulary has no
    /// recorded hash.
    static func structuralName(_ p: PreTokenizer?) -> String? {
        guard let p else { return nil }
        for name in ["smollm", "gpt-2", "llama-bpe", "qwen2"] where PreTokenizer(named: name)?.steps == p.steps { return name }
        return nil
    }
}
