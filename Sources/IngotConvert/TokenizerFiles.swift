import IngotFormats
import IngotModel

/// A tokenizer in both homes: GGUF `tokenizer.ggml.*` keys and a Hugging Face folder's files. Byte-level BPE
/// (`gpt2`) lives in `tokenizer.json` + `tokenizer_config.json`; SentencePiece (`llama`) in `tokenizer.model` +
/// `tokenizer_config.json`. Both directions keep the vocabulary, merges or scores, token types, special token ids,
/// the add-BOS flags and the chat template (an inert string), so that the same text gives the same ids on either side.
struct TokenizerFacts {
    /// GGUF `tokenizer.ggml.model`: `gpt2` or `llama`.
    var model: String
    var tokens: [String]
    /// GGUF `tokenizer.ggml.token_type` (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte).
    var types: [Int32]
    var merges: [String]
    /// SentencePiece scores (`llama` only).
    var scores: [Float] = []
    /// llama.cpp's name of the pre-tokenizer (`smollm`, `llama-bpe`, `qwen2`; `default` for SentencePiece).
    var pre: String
    var bos: Int?, eos: Int?, unk: Int?, pad: Int?
    var addBOS: Bool?, addEOS: Bool?, addSpacePrefix: Bool?
    /// llama.cpp's converter sets add_bos false for 49152-token llama vocabularies after reading the tokenizer files:
    /// the key then comes last unless the files stated it.
    var addBOSByRule = false
    var chatTemplate: String?

    var isSentencePiece: Bool { model == "llama" }

    // MARK: GGUF

    init(gguf g: GGUFFile) throws {
        guard let model = g["tokenizer.ggml.model"]?.stringValue else {
            throw ModelError(.missingField, field: "tokenizer.ggml.model", "the file has no tokenizer to convert", path: g.path)
        }
        guard model == "gpt2" || model == "llama" else {
            throw ModelError(.unsupportedTokenizer, field: "tokenizer.ggml.model",
                             offset: g.metadata.first { $0.key == "tokenizer.ggml.model" }?.fileOffset,
                             "only byte-level BPE (gpt2) and SentencePiece (llama) tokenizers convert, not '\(model)'", path: g.path)
        }
        self.model = model
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
        if model == "llama" {
            switch g["tokenizer.ggml.scores"] {
            case .array(.float32(let s))? where s.count == tokens.count: scores = s
            default:
                throw ModelError(.missingField, field: "tokenizer.ggml.scores", offset: g.metadata.first { $0.key == "tokenizer.ggml.scores" }?.fileOffset,
                                 "a SentencePiece tokenizer needs one float32 score per token", path: g.path)
            }
        }
        guard model == "llama" || TokenizerFacts.preTokenizerJSON(pre) != nil else {
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

    /// The GGUF keys, in the order llama.cpp's converter (llama-cpp-python 0.3.36) writes them: the vocabulary
    /// (`_set_vocab_gpt2` / `_set_vocab_sentencepiece`), then `SpecialVocab`'s ids, add flags and chat template, then
    /// the 49152-token rule's add_bos.
    var ggufKeys: [GGUFKeyValue] {
        var out: [GGUFKeyValue] = []
        if let b = addSpacePrefix { out.append(GGUFKeyValue("tokenizer.ggml.add_space_prefix", .bool(b))) }
        out.append(GGUFKeyValue("tokenizer.ggml.model", .string(GGUFString(model))))
        out.append(GGUFKeyValue("tokenizer.ggml.pre", .string(GGUFString(pre))))
        out.append(GGUFKeyValue("tokenizer.ggml.tokens", .array(.string(tokens.map { GGUFString($0) }))))
        if isSentencePiece { out.append(GGUFKeyValue("tokenizer.ggml.scores", .array(.float32(scores)))) }
        out.append(GGUFKeyValue("tokenizer.ggml.token_type", .array(.int32(types))))
        if !isSentencePiece { out.append(GGUFKeyValue("tokenizer.ggml.merges", .array(.string(merges.map { GGUFString($0) })))) }
        for (key, v) in [("bos_token_id", bos), ("eos_token_id", eos), ("unknown_token_id", unk), ("padding_token_id", pad)] {
            if let v { out.append(GGUFKeyValue("tokenizer.ggml.\(key)", .uint32(UInt32(v)))) }
        }
        // SpecialVocab writes the add flags the files state before the chat template.
        if let b = addBOS, !addBOSByRule { out.append(GGUFKeyValue("tokenizer.ggml.add_bos_token", .bool(b))) }
        if let b = addEOS { out.append(GGUFKeyValue("tokenizer.ggml.add_eos_token", .bool(b))) }
        if let t = chatTemplate { out.append(GGUFKeyValue("tokenizer.chat_template", .string(GGUFString(t)))) }
        if let b = addBOS, addBOSByRule { out.append(GGUFKeyValue("tokenizer.ggml.add_bos_token", .bool(b))) }
        return out
    }

    /// The files a folder holds this tokenizer in.
    var folderFiles: [(String, [UInt8])] {
        var files = [("tokenizer.json", Array(((isSentencePiece ? sentencePieceJSON : tokenizerJSON).serialized() + "\n").utf8)),
                     ("tokenizer_config.json", Array((tokenizerConfigJSON.serialized(pretty: true) + "\n").utf8))]
        if isSentencePiece { files.append(("tokenizer.model", sentencePieceModel.serialized)) }
        return files
    }

    /// config.json's special token ids: llama.cpp's converter reads a SentencePiece folder's ids from there (it has
    /// no tokenizer.json to resolve tokenizer_config.json's token texts against).
    var configTokenIDs: [(String, JSONValue)] {
        var out: [(String, JSONValue)] = []
        let keys: [(String, Int?)] = isSentencePiece ? [("bos_token_id", bos), ("eos_token_id", eos), ("unk_token_id", unk), ("pad_token_id", pad)]
                                                    : [("bos_token_id", bos), ("eos_token_id", eos)]
        for (k, v) in keys { if let v { out.append((k, JSONValue(v))) } }
        return out
    }

    // MARK: SentencePiece

    /// `tokenizer.model` holding this vocabulary: every token as a piece of its type and score (a BPE model with byte
    /// fallback where `<0xXX>` tokens exist), identity normalization, a dummy prefix as `add_space_prefix` says
    /// (llama.cpp's default for SentencePiece: yes).
    var sentencePieceModel: SentencePieceModel {
        var m = SentencePieceModel(pieces: tokens.indices.map {
            SentencePieceModel.Piece(piece: tokens[$0], score: scores[$0], type: (1...6).contains(types[$0]) ? types[$0] : 1)
        })
        m.modelType = 2
        m.byteFallback = types.contains(6)
        m.unkID = Int32(unk ?? types.firstIndex(of: 2) ?? 0)
        m.bosID = bos.map(Int32.init) ?? -1
        m.eosID = eos.map(Int32.init) ?? -1
        m.padID = pad.map(Int32.init) ?? -1
        m.addDummyPrefix = addSpacePrefix ?? true
        m.removeExtraWhitespaces = false
        m.normalizerName = "identity"
        return m
    }

    /// tokenizer.json for a SentencePiece vocabulary, the form Llama 2's own repository ships: a BPE model with byte
    /// fallback over the same pieces, `▁` for spaces (prepended as a dummy prefix where the model adds one), unknown,
    /// control and user-defined tokens as added tokens, and merges derived from the pieces the way Transformers
    /// derives them from a SentencePiece BPE model (`generate_merges`): every split of a normal piece into two pieces
    /// of the vocabulary, highest score first (SentencePiece merges by score), then by piece id and left length.
    var sentencePieceJSON: JSONValue {
        // Keyed by bytes: canonically equivalent pieces are distinct tokens.
        var index: [[UInt8]: Int] = [:]
        for (i, t) in tokens.enumerated() where index[Array(t.utf8)] == nil { index[Array(t.utf8)] = i }
        var merges: [(score: Float, id: Int, leftLength: Int, left: String, right: String)] = []
        for (id, t) in tokens.enumerated() where types[id] == 1 {
            let scalars = Array(t.unicodeScalars)
            guard scalars.count > 1 else { continue }
            for cut in 1..<scalars.count {
                var l = String.UnicodeScalarView(), r = String.UnicodeScalarView()
                l.append(contentsOf: scalars[..<cut])
                r.append(contentsOf: scalars[cut...])
                let left = String(l), right = String(r)
                guard index[Array(left.utf8)] != nil, index[Array(right.utf8)] != nil else { continue }
                merges.append((scores[id], id, cut, left, right))
            }
        }
        merges.sort { ($0.score, -$0.id, -$0.leftLength) > ($1.score, -$1.id, -$1.leftLength) }
        var added: [JSONValue] = []
        for (i, t) in types.enumerated() where t == 2 || t == 3 || t == 4 {
            added.append(.object(JSONObject([
                ("id", JSONValue(i)), ("content", .string(tokens[i])), ("single_word", false), ("lstrip", false),
                ("rstrip", false), ("normalized", false), ("special", .bool(t != 4)),
            ])))
        }
        let prefix = addSpacePrefix ?? true
        let replace = JSONValue.object(JSONObject([("type", "Replace"), ("pattern", .object(JSONObject([("String", " ")]))),
                                                   ("content", "\u{2581}")]))
        let normalizer: JSONValue = prefix
            ? .object(JSONObject([("type", "Sequence"), ("normalizers", .array([
                .object(JSONObject([("type", "Prepend"), ("prepend", "\u{2581}")])), replace]))]))
            : replace
        var decoders: [JSONValue] = [
            .object(JSONObject([("type", "Replace"), ("pattern", .object(JSONObject([("String", "\u{2581}")]))), ("content", " ")])),
            .object(JSONObject([("type", "ByteFallback")])), .object(JSONObject([("type", "Fuse")])),
        ]
        if prefix {
            decoders.append(.object(JSONObject([("type", "Strip"), ("content", " "), ("start", 1), ("stop", 0)])))
        }
        let vocab = JSONObject(tokens.enumerated().map { ($0.element, JSONValue($0.offset)) })
        return .object(JSONObject([
            ("version", "1.0"), ("truncation", .null), ("padding", .null), ("added_tokens", .array(added)),
            ("normalizer", normalizer), ("pre_tokenizer", .null), ("post_processor", postProcessor),
            ("decoder", .object(JSONObject([("type", "Sequence"), ("decoders", .array(decoders))]))),
            ("model", .object(JSONObject([
                ("type", "BPE"), ("dropout", .null), ("unk_token", unk.map { .string(tokens[$0]) } ?? .null),
                ("continuing_subword_prefix", .null), ("end_of_word_suffix", .null), ("fuse_unk", true),
                ("byte_fallback", .bool(types.contains(6))), ("ignore_merges", false),
                ("vocab", .object(vocab)), ("merges", .array(merges.map { .array([.string($0.left), .string($0.right)]) })),
            ]))),
        ]))
    }

    /// Reads a folder's SentencePiece `tokenizer.model` as llama.cpp's converter does
    /// (`_create_vocab_sentencepiece` and `SpecialVocab`): `vocabSize` entries (config.json `vocab_size`; missing ones
    /// are `[PADn]`, unused, score -10000); unknown, control, unused and byte pieces keep their type, other pieces
    /// are normal; `added_tokens.json` and tokenizer_config.json's `added_tokens_decoder` add user-defined or control
    /// tokens (score -1000); special ids from tokenizer_config.json's texts where a tokenizer.json lists them as added
    /// tokens, else from config.json's `*_token_id`.
    init(sentencePieceFolder folder: String, files: [String], vocabSize: Int?, config: JSONValue?, llamaVocabRules: Bool) throws {
        let path = folder + "/tokenizer.model"
        let file = try MappedFile(path: path)
        let sp = try withExtendedLifetime(file) { try SentencePieceModel(bytes: Array(file.bytes), path: path) }
        let count = vocabSize ?? sp.pieces.count
        guard count > 0, count < 10_000_000 else {
            throw ModelError(.invalidValue, field: "vocab_size", "\(count) tokens is outside 1 ..< 10 million", path: folder)
        }
        model = "llama"
        pre = "default"
        merges = []
        tokens = (0..<count).map { "[PAD\($0)]" }
        scores = [Float](repeating: -10000, count: count)
        types = [Int32](repeating: 5, count: count)
        for (i, p) in sp.pieces.enumerated() where i < count {
            tokens[i] = p.piece
            scores[i] = p.score
            types[i] = [2, 3, 5, 6].contains(p.type) ? p.type : 1
        }
        if files.contains("added_tokens.json") {
            for m in try readJSON(folder + "/added_tokens.json").objectValue?.members ?? [] {
                guard let id = m.value.intValue, id >= 0, id < count else { continue }
                tokens[id] = m.key
                scores[id] = -1000
                types[id] = 4
            }
        }
        let tc = files.contains("tokenizer_config.json") ? try readJSON(folder + "/tokenizer_config.json") : JSONValue.null
        for m in tc["added_tokens_decoder"]?.objectValue?.members ?? [] {
            guard let id = Int(m.key), id >= 0, id < count, let content = m.value["content"]?.stringValue else { continue }
            if m.value["special"]?.boolValue == true || TokenizerFacts.looksSpecial(content) {
                tokens[id] = content
                types[id] = 3
            } else {
                tokens[id] = String(content.map { $0 == "\u{2581}" ? " " : $0 })
                types[id] = 4
            }
            scores[id] = -1000
        }
        // SpecialVocab: texts resolve only against tokenizer.json's added tokens; config.json fills the rest.
        var added: [[UInt8]: Int] = [:]
        if files.contains("tokenizer.json") {
            for t in try readJSON(folder + "/tokenizer.json")["added_tokens"]?.arrayValue ?? [] {
                if let c = t["content"]?.stringValue, let i = t["id"]?.intValue, added[Array(c.utf8)] == nil { added[Array(c.utf8)] = i }
            }
        }
        func special(_ kind: String) -> Int? {
            let v = tc["\(kind)_token"]
            if let content = v?.stringValue ?? v?["content"]?.stringValue, let id = added[Array(content.utf8)], id < count { return id }
            if let id = config?["\(kind)_token_id"]?.intValue, id >= 0, id < count { return id }
            return nil
        }
        bos = special("bos"); eos = special("eos"); unk = special("unk"); pad = special("pad")
        readFlags(tc, count: count, llamaVocabRules: llamaVocabRules)
    }

    /// tokenizer_config.json's add flags and chat template, and the llama family's two rules in llama.cpp's
    /// converter: `add_prefix_space` becomes `add_space_prefix`, and a 49152-token vocabulary (Granite, SmolLM)
    /// never adds BOS.
    mutating func readFlags(_ tc: JSONValue, count: Int, llamaVocabRules: Bool) {
        addBOS = tc["add_bos_token"]?.boolValue
        addEOS = tc["add_eos_token"]?.boolValue
        chatTemplate = tc["chat_template"]?.stringValue
        if llamaVocabRules {
            addSpacePrefix = tc["add_prefix_space"]?.boolValue
            if count == 49152 {
                addBOSByRule = addBOS == nil
                addBOS = false
            }
        }
    }

    /// Added tokens llama.cpp's converter treats as control tokens even when not marked special
    /// (`does_token_look_special`).
    static func looksSpecial(_ t: String) -> Bool {
        ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains(t) || (t.hasPrefix("<|") && t.hasSuffix("|>"))
            || (t.hasPrefix("<｜") && t.hasSuffix("｜>")) || (t.hasPrefix("<unused") && t.hasSuffix(">"))
    }

    // MARK: Hugging Face

    /// The `pre_tokenizer` of tokenizer.json for each llama.cpp pre-tokenizer Ingot can write.
    static func preTokenizerJSON(_ pre: String) -> JSONValue? {
        let byteLevel = JSONValue.object(JSONObject([("type", "ByteLevel"), ("add_prefix_space", false), ("trim_offsets", true),
                                                     ("use_regex", true)]))
        switch pre {
        case "smollm", "starcoder", "refact", "command-r":
            return .object(JSONObject([("type", "Sequence"), ("pretokenizers", .array([
                .object(JSONObject([("type", "Digits"), ("individual_digits", true)])), byteLevel]))]))
        case "gpt-2", "mpt", "olmo": return byteLevel
        default:
            // Any other name: its Split patterns as its models' tokenizer.json files write them, then ByteLevel (which
            // takes GPT-2's pattern itself where the list ends with it).
            guard let patterns = PreTokenizer.huggingFacePatterns(named: pre) else { return nil }
            let gpt2Last = patterns.last == PreTokenizerStep.gpt2Pattern
            var parts: [JSONValue] = (gpt2Last ? patterns.dropLast() : patterns[...]).map { pattern in
                .object(JSONObject([("type", "Split"), ("pattern", .object(JSONObject([("Regex", .string(pattern))]))),
                                    ("behavior", "Isolated"), ("invert", false)]))
            }
            parts.append(.object(JSONObject([("type", "ByteLevel"), ("add_prefix_space", false), ("trim_offsets", true),
                                             ("use_regex", .bool(gpt2Last))])))
            return .object(JSONObject([("type", "Sequence"), ("pretokenizers", .array(parts))]))
        }
    }

    /// tokenizer.json's post-processor: BOS (and EOS) added around the text where the GGUF says so; null otherwise.
    var postProcessor: JSONValue {
        guard addBOS == true || addEOS == true else { return .null }
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
        return .object(JSONObject([("type", "TemplateProcessing"), ("single", .array(single)), ("pair", .array(single)),
                                   ("special_tokens", .object(JSONObject(specials)))]))
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
        let vocab = JSONObject(tokens.enumerated().map { ($0.element, JSONValue($0.offset)) })
        let ignoreMerges = PreTokenizer(named: pre)?.ignoreMerges ?? false
        return .object(JSONObject([
            ("version", "1.0"), ("truncation", .null), ("padding", .null), ("added_tokens", .array(added)),
            ("normalizer", .null), ("pre_tokenizer", TokenizerFacts.preTokenizerJSON(pre) ?? .null), ("post_processor", postProcessor),
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
        // A SentencePiece model holds its control tokens (with their scores); only user-defined ones are added tokens.
        for (i, t) in types.enumerated() where (t == 3 && !isSentencePiece) || t == 4 {
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
        // SentencePiece: Transformers' own LlamaTokenizer rebuilds its pipeline and splits leading spaces otherwise than
        // SentencePiece and llama.cpp (" " gives ▁ instead of ▁▁); the generic class runs tokenizer.json as written.
        o.append(("tokenizer_class", isSentencePiece ? "PreTrainedTokenizerFast" : "GPT2Tokenizer"))
        return .object(JSONObject(o))
    }

    /// Reads tokenizer.json (byte-level BPE) and tokenizer_config.json as llama.cpp's converter does
    /// (`_set_vocab_gpt2` and `SpecialVocab`): `vocabSize` entries (config.json `vocab_size`; holes become
    /// `[PADn]` user-defined tokens), added tokens that are special (or look special, `<|...|>`) as control tokens,
    /// special token ids from tokenizer_config.json's token contents, and the pre-tokenizer named the way llama.cpp
    /// names it: by the hash of the ids of its check text, else by the pre-tokenizer's structure.
    /// A folder's tokenizer as llama.cpp's converter reads it: for the llama family, `tokenizer.model` first
    /// (SentencePiece), else `tokenizer.json` (byte-level BPE).
    init(folder: String, files: [String], vocabSize: Int?, config: JSONValue?, llamaVocabRules: Bool) throws {
        if files.contains("tokenizer.model") && llamaVocabRules {
            try self.init(sentencePieceFolder: folder, files: files, vocabSize: vocabSize, config: config, llamaVocabRules: llamaVocabRules)
        } else {
            try self.init(byteLevelFolder: folder, files: files, vocabSize: vocabSize, configBOS: config?["bos_token_id"]?.intValue,
                          configEOS: config?["eos_token_id"]?.intValue, llamaVocabRules: llamaVocabRules)
        }
    }

    init(byteLevelFolder folder: String, files: [String], vocabSize: Int?, configBOS: Int?, configEOS: Int?, llamaVocabRules: Bool) throws {
        guard files.contains("tokenizer.json") else {
            let what = files.contains("tokenizer.model")
                ? "only a SentencePiece tokenizer.model, which llama.cpp reads for the llama family only" : "no tokenizer.json"
            throw ModelError(.unsupportedTokenizer, field: "tokenizer.json", "the folder has \(what)", path: folder)
        }
        let path = folder + "/tokenizer.json"
        let root = try readJSON(path)
        let tokenizer = try Tokenizer(huggingFace: root, path: path)
        let sentencePiece = tokenizer.isSentencePieceBPE
        model = sentencePiece ? "llama" : "gpt2"
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
            if sentencePiece, [.byte, .unknown].contains(tokenizer.types[i]) {
                types.append(tokenizer.types[i].rawValue)
            } else if let special = addedSpecial[i] {
                types.append(special || TokenizerFacts.looksSpecial(t) ? 3 : 4)
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
        if sentencePiece {
            pre = "default"
            scores = TokenizerFacts.mergeScores(tokens: tokens, merges: merges)
            merges = []
        } else if let name = TokenizerFacts.knownHashes[digest] {
            pre = name
        } else if let name = TokenizerFacts.structuralName(tokenizer.preTokenizer) {
            pre = name
        } else {
            throw ModelError(.unsupportedTokenizer, field: "pre_tokenizer",
                             "the pre-tokenizer matches none llama.cpp names (check-text hash \(digest))", path: path)
        }
        let index = Dictionary(tokens.enumerated().map { (Array($0.element.utf8), $0.offset) }, uniquingKeysWith: { a, _ in a })
        func special(_ key: String) -> Int? {
            let v = config[key]
            guard let content = v?.stringValue ?? v?["content"]?.stringValue else { return nil }
            return index[Array(content.utf8)]
        }
        bos = special("bos_token") ?? configBOS
        eos = special("eos_token") ?? configEOS
        unk = special("unk_token")
        pad = special("pad_token")
        readFlags(config, count: count, llamaVocabRules: llamaVocabRules)
        if sentencePiece {
            unk = unk ?? types.firstIndex(of: 2)
            if addSpacePrefix == nil && tokenizer.spacePrefix == .never { addSpacePrefix = false }
        }
    }

    /// Scores that make SentencePiece's merging by score take a BPE tokenizer.json's merges in the file's order:
    /// each token's is minus the rank of the first merge that makes it, -1e9 for tokens no merge makes.
    ///
    /// This is how a SentencePiece-style BPE tokenizer.json (a Metaspace pre-tokenizer, or the legacy Replace +
    /// Prepend normalizer) becomes a GGUF SentencePiece vocabulary: model `llama`, pre-tokenizer `default`, byte and
    /// unknown tokens typed so, these scores. llama.cpp's converter (`LlamaHfVocab`) scores every token -1000, which
    /// makes llama.cpp merge left to right instead. `add_space_prefix` is false where the file prepends nothing; a
    /// Metaspace that prepends only to text not starting with a space, or only at the start of the text, has no GGUF
    /// form and becomes llama.cpp's prefix before every fragment.
    static func mergeScores(tokens: [String], merges: [String]) -> [Float] {
        var index: [String: Int] = [:]
        for (i, t) in tokens.enumerated() where index[t] == nil { index[t] = i }
        var scores = [Float](repeating: -1e9, count: tokens.count)
        for (rank, m) in merges.enumerated() {
            // Pieces hold no spaces (they are U+2581), so the first space separates the two halves.
            guard let space = m.firstIndex(of: " "), let id = index[String(m[..<space]) + String(m[m.index(after: space)...])],
                  scores[id] == -1e9 else { continue }
            scores[id] = -Float(rank)
        }
        return scores
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
    /// recorded hash: the commonest names first, then the named pre-tokenizer its parts make up, else the first name
    /// with the same steps.
    static func structuralName(_ p: PreTokenizer?) -> String? {
        guard let p else { return nil }
        let same = { (name: String) in PreTokenizer(named: name)?.steps == p.steps }
        if let name = ["smollm", "gpt-2", "llama-bpe", "qwen2"].first(where: same) { return name }
        if PreTokenizer(named: p.name) != nil { return p.name }
        return PreTokenizer.names.first(where: same)
    }
}

/// A folder's tokenizer as `ingot convert` reads it, for the commands that tokenize a folder directly.
public enum FolderTokenizer {
    /// The `tokenizer.ggml.*` keys of a folder whose tokenizer is SentencePiece (a llama-family folder with
    /// `tokenizer.model`, read first as llama.cpp's converter reads it); nil where tokenizer.json is the tokenizer.
    public static func sentencePieceMetadata(_ d: HFModelDirectory) throws -> [GGUFKeyValue]? {
        guard d.files.contains("tokenizer.model"), let c = d.config else { return nil }
        let spec = ModelSpec(config: c, files: d.files)
        guard let table = spec.table, table.llamaVocabRules else { return nil }
        return try TokenizerFacts(sentencePieceFolder: d.path, files: d.files, vocabSize: spec.vocabSize, config: c,
                                  llamaVocabRules: true).ggufKeys
    }
}
