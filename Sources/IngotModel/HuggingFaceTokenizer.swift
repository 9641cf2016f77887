import IngotFormats

extension Tokenizer {
    /// Reads a Hugging Face `tokenizer.json` whose model is byte-level BPE (GPT-2, Llama 3, Qwen2, SmolLM).
    ///
    /// The pre-tokenizer is recognised from its parts: `Digits` with `individual_digits`, `Split` with one of the
    /// regular expressions Ingot implements, and `ByteLevel` (whose `use_regex` means the GPT-2 pattern).
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
        for (i, t) in (root["added_tokens"]?.arrayValue ?? []).enumerated() {
            guard let id = t["id"]?.intValue, id >= 0, id < 10_000_000, let content = t["content"]?.stringValue else {
                throw fail(.invalidValue, "added_tokens[\(i)]", "an added token needs an id and a content")
            }
            if !vocabIDs.contains(id) { entries.append((id, Array(content.utf8))) }
            specialIDs[id] = t["special"]?.boolValue ?? false
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
        for (id, special) in specialIDs { types[id] = special ? .control : .userDefined }

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
        func add(_ p: JSONValue, _ field: String) throws {
            switch p["type"]?.stringValue {
            case "Sequence"?:
                for (i, q) in (p["pretokenizers"]?.arrayValue ?? []).enumerated() { try add(q, "\(field).pretokenizers[\(i)]") }
            case "ByteLevel"?:
                byteLevel = true
                if p["use_regex"]?.boolValue ?? true { patterns.append((PreTokenizerStep.gpt2Pattern, field)) }
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
        guard byteLevel else {
            throw fail(.unsupportedTokenizer, "pre_tokenizer", "only byte-level BPE tokenizer.json files are supported")
        }
        var pre: PreTokenizer
        if let named = PreTokenizer.matching(huggingFace: patterns.map(\.0)) {
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
                  merges: merges, bos: bos, eos: eos, addsBOS: bos != nil, addsEOS: eos != nil, addSpacePrefix: false)
    }
}
