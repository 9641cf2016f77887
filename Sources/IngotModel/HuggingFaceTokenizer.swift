import IngotFormats

extension Tokenizer {
    /// Reads a Hugging Face `tokenizer.json` whose model is BPE: byte-level (GPT-2, Llama 3, Qwen2, SmolLM) or
    /// SentencePiece-style (Llama 2, Mistral, Gemma: spaces written U+2581, merges over characters, byte fallback).
    ///
    /// A byte-level pre-tokenizer is recognised from its parts: `Digits` with `individual_digits`, `Split` with one of
    /// the regular expressions Ingot implements, and `ByteLevel` (whose `use_regex` means the GPT-2 pattern).
    /// SentencePiece style is a `Metaspace` pre-tokenizer, or a normalizer that replaces spaces with U+2581 (with a
    /// `Prepend` of U+2581 for the dummy prefix), as Transformers' converters write them; Ingot then tokenizes as the
    /// `tokenizers` library does: merges by rank over the characters, the prefix and word splitting as the file says.
    /// `added_tokens` are special (`special: true` counts as a control token, otherwise user-defined), and a
    /// `TemplateProcessing` post-processor that starts with a special token means BOS is added.
    public convenience init(huggingFace root: JSONValue, path: String? = nil) throws {
        func fail(_ code: ModelError.Code, _ field: String, _ detail: String) -> ModelError {
            ModelError(code, field: field, detail, path: path)
        }
        guard let model = root["model"] else { throw fail(.missingField, "model", "tokenizer.json has no model") }
        let type = model["type"]?.stringValue ?? "BPE"
        guard type == "BPE" else {
            throw fail(.unsupportedTokenizer, "model.type", "tokenizer model '\(type)' is not supported (BPE is)")
        }
        guard let vocab = model["vocab"]?.objectValue else {
            throw fail(.missingField, "model.vocab", "a BPE model needs its vocabulary")
        }
        var entries: [(Int, [UInt8])] = []
        for (key, value) in vocab.members {
            guard let id = value.intValue, id >= 0, id < 10_000_000 else {
                throw fail(.invalidValue, "model.vocab['\(key)']", "token ids must be non-negative integers")
            }
            entries.append((id, Array(key.utf8)))
        }
        let vocabIDs = Set(entries.map(\.0))
        var specialIDs: [Int: Bool] = [:]
        var strips: [Int32: (Bool, Bool)] = [:]   // an added token's lstrip and rstrip
        for (i, t) in (root["added_tokens"]?.arrayValue ?? []).enumerated() {
            guard let id = t["id"]?.intValue, id >= 0, id < 10_000_000, let content = t["content"]?.stringValue else {
                throw fail(.invalidValue, "added_tokens[\(i)]", "an added token needs an id and a content")
            }
            if !vocabIDs.contains(id) { entries.append((id, Array(content.utf8))) }
            specialIDs[id] = t["special"]?.boolValue ?? false
            let strip = (t["lstrip"]?.boolValue ?? false, t["rstrip"]?.boolValue ?? false)
            if strip.0 || strip.1 { strips[Int32(id)] = strip }
        }
        // Ids the file leaves out become placeholders, as the converters fill them; their number is bounded by
        // the entries present, so that one huge id cannot make a vocabulary of millions from a few bytes.
        let count = (entries.map(\.0).max() ?? -1) + 1
        let present = vocabIDs.union(specialIDs.keys).count
        if count - present > max(1024, present), let (id, text) = entries.max(by: { $0.0 < $1.0 }) {
            let spelled = String(decoding: text, as: UTF8.self)
            throw fail(.invalidValue, vocabIDs.contains(id) ? "model.vocab['\(spelled)']" : "added_tokens['\(spelled)']",
                       "id \(id) leaves \(count - present) ids unused among \(present) tokens")
        }
        var tokens = [[UInt8]](repeating: [], count: count)
        for (id, text) in entries { tokens[id] = text }
        for i in 0..<count where tokens[i].isEmpty { tokens[i] = Array("[PAD\(i)]".utf8) }
        var types = [TokenType](repeating: .normal, count: count)

        var merges: [[UInt8]] = []
        for (i, m) in (model["merges"]?.arrayValue ?? []).enumerated() {
            if let s = m.stringValue {
                merges.append(Array(s.utf8))
            } else if let pair = m.arrayValue, pair.count == 2, let a = pair[0].stringValue, let b = pair[1].stringValue {
                merges.append(Array(a.utf8) + [0x20] + Array(b.utf8))
            } else {
                throw fail(.invalidValue, "model.merges[\(i)]", "a merge is \"a b\" or [\"a\", \"b\"]")
            }
        }

        // The pre-tokenizer: its parts as llama.cpp's patterns, then the named pre-tokenizer they make up.
        var patterns: [(String, String)] = []   // (pattern, field)
        var byteLevel = false
        var metaspace: (prefix: SpacePrefix, split: Bool, field: String)?
        func add(_ p: JSONValue, _ field: String) throws {
            switch p["type"]?.stringValue {
            case "Sequence"?:
                for (i, q) in (p["pretokenizers"]?.arrayValue ?? []).enumerated() { try add(q, "\(field).pretokenizers[\(i)]") }
            case "ByteLevel"?:
                byteLevel = true
                if p["use_regex"]?.boolValue ?? true { patterns.append((PreTokenizerStep.gpt2Pattern, field)) }
            case "Metaspace"?:
                guard (p["replacement"]?.stringValue ?? "\u{2581}") == "\u{2581}" else {
                    throw fail(.unsupportedTokenizer, "\(field).replacement", "a Metaspace replacement other than U+2581 is not supported")
                }
                // prepend_scheme since tokenizers 0.19; add_prefix_space before it.
                let prefix: SpacePrefix
                switch p["prepend_scheme"]?.stringValue ?? ((p["add_prefix_space"]?.boolValue ?? true) ? "always" : "never") {
                case "always": prefix = .unlessSpace(firstOnly: false)
                case "first": prefix = .unlessSpace(firstOnly: true)
                case "never": prefix = .never
                case let other:
                    throw fail(.invalidValue, "\(field).prepend_scheme", "prepend_scheme '\(other)' is none of always, first and never")
                }
                guard metaspace == nil else { throw fail(.unsupportedTokenizer, field, "a second Metaspace pre-tokenizer is not supported") }
                metaspace = (prefix, p["split"]?.boolValue ?? true, field)
            case "Digits"?:
                patterns.append((p["individual_digits"]?.boolValue == true ? #"\p{N}"# : #"\p{N}+"#, field))
            case "Split"?:
                guard let pattern = p["pattern"]?["Regex"]?.stringValue else {
                    throw fail(.unsupportedTokenizer, "\(field).pattern", "only a Regex split pattern is supported")
                }
                let behavior = p["behavior"]?.stringValue ?? "Isolated"
                guard behavior == "Isolated", p["invert"]?.boolValue != true else {
                    throw fail(.unsupportedTokenizer, field, "a split with behavior \(behavior)\(p["invert"]?.boolValue == true ? ", inverted," : "") is not supported (Isolated is)")
                }
                // tokenizer.json holds CR, LF and tab as characters where llama.cpp's copies write escapes.
                var escaped = ""
                for c in pattern.unicodeScalars {
                    switch c { case "\r": escaped += #"\r"#; case "\n": escaped += #"\n"#; case "\t": escaped += #"\t"#; default: escaped.unicodeScalars.append(c) }
                }
                patterns.append((escaped, field))
            case let other:
                throw fail(.unsupportedTokenizer, field, "pre-tokenizer '\(other ?? "none")' is not supported")
            }
        }
        if let p = root["pre_tokenizer"], p != .null { try add(p, "pre_tokenizer") }

        // SentencePiece style: spaces replaced with U+2581 by the normalizer (the legacy form) or by Metaspace.
        var replacesSpaces = false, prepends = false
        func normalizer(_ p: JSONValue) {
            switch p["type"]?.stringValue {
            case "Sequence"?:
                for q in p["normalizers"]?.arrayValue ?? [] { normalizer(q) }
            case "Replace"? where p["pattern"]?["String"]?.stringValue == " " && p["content"]?.stringValue == "\u{2581}":
                replacesSpaces = true
            case "Prepend"? where p["prepend"]?.stringValue == "\u{2581}":
                prepends = true
            default:
                break   // Unicode normalization and the like: llama.cpp applies none either.
            }
        }
        if let p = root["normalizer"], p != .null { normalizer(p) }
        if let m = metaspace, replacesSpaces {
            throw fail(.unsupportedTokenizer, m.field, "a Metaspace pre-tokenizer after a normalizer that already replaces spaces is not supported")
        }
        let sentencePiece = metaspace != nil || replacesSpaces
        if sentencePiece {
            if byteLevel || !patterns.isEmpty {
                throw fail(.unsupportedTokenizer, metaspace?.field ?? patterns.first?.1 ?? "pre_tokenizer",
                           "SentencePiece-style spaces (U+2581) cannot be combined with a byte-level or split pre-tokenizer")
            }
        } else if !byteLevel {
            throw fail(.unsupportedTokenizer, "pre_tokenizer",
                       "only byte-level BPE and SentencePiece-style BPE (Metaspace) tokenizer.json files are supported")
        }
        for (id, special) in specialIDs { types[id] = special ? .control : .userDefined }
        var unknownRule: UnknownRule?
        var spacePrefix = SpacePrefix.never
        var pre: PreTokenizer
        if sentencePiece {
            let byteFallback = model["byte_fallback"]?.boolValue ?? false
            var unknown: Int32?
            if let name = model["unk_token"]?.stringValue {
                guard let u = tokens.firstIndex(of: Array(name.utf8)) else {
                    throw fail(.invalidValue, "model.unk_token", "the unknown token '\(name)' is not in the vocabulary")
                }
                unknown = Int32(u)
                types[u] = .unknown
            }
            if byteFallback {
                // The tokens byte fallback gives.
                let byteTexts = Set((0..<256).map(Tokenizer.byteTokenText))
                for i in 0..<count where types[i] == .normal && byteTexts.contains(tokens[i]) { types[i] = .byte }
            }
            unknownRule = UnknownRule(byteFallback: byteFallback, unknown: unknown, fuse: model["fuse_unk"]?.boolValue ?? false)
            let splits = metaspace?.split ?? false
            // Without Metaspace's split the whole fragment merges as one; where no token joins a word to the next
            // U+2581, words merge alone with the same result, and repeated words come from the cache.
            let steps: [PreTokenizerStep] = splits ? [.spaceWords(keepRuns: false)]
                : tokens.contains(where: Tokenizer.joinsWords) ? [] : [.spaceWords(keepRuns: true)]
            pre = PreTokenizer(name: "metaspace", steps: steps)
            pre.rawUTF8 = true
            spacePrefix = metaspace?.prefix ?? (prepends ? .everyFragment : .never)
        } else if let named = PreTokenizer.matching(huggingFace: patterns.map(\.0)) {
            pre = named
        } else {
            // No named pre-tokenizer has these parts in this order: each must still be a pattern llama.cpp knows.
            var steps: [PreTokenizerStep] = []
            for (pattern, field) in patterns {
                guard let step = PreTokenizer.step(huggingFace: pattern) else {
                    throw fail(.unsupportedTokenizer, field, "split pattern \(pattern.debugDescription) is not one of llama.cpp's pre-tokenizers")
                }
                steps.append(step)
            }
            pre = PreTokenizer(name: "tokenizer.json", steps: steps)
        }
        pre.ignoreMerges = model["ignore_merges"]?.boolValue ?? false

        // BOS/EOS from the post-processor template.
        var bos: Int32?
        var eos: Int32?
        func specialID(_ item: JSONValue?) -> Int32? {
            guard let name = item?["SpecialToken"]?["id"]?.stringValue else { return nil }
            return tokens.firstIndex(of: Array(name.utf8)).map(Int32.init)
        }
        func scan(_ p: JSONValue) {
            if p["type"]?.stringValue == "Sequence" { for q in p["processors"]?.arrayValue ?? [] { scan(q) }; return }
            guard p["type"]?.stringValue == "TemplateProcessing", let single = p["single"]?.arrayValue else { return }
            if let first = specialID(single.first) { bos = first }
            if single.count > 1, let last = specialID(single.last) { eos = last }
        }
        if let p = root["post_processor"], p != .null { scan(p) }
        self.init(kind: .bpe, preTokenizer: pre, tokens: tokens, types: types, scores: [Float](repeating: 0, count: count),
                  merges: merges, bos: bos, eos: eos, addsBOS: bos != nil, addsEOS: eos != nil, spacePrefix: spacePrefix,
                  unknownRule: unknownRule, unicodeStrip: true, stripRule: { id, _ in strips[id] ?? (false, false) })
    }
}
