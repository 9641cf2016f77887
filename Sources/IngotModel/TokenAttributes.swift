/// The roles a GGUF names special tokens for (`tokenizer.ggml.ROLE_token_id`).
enum SpecialRole: String, CaseIterable, Sendable {
    case eot, eom, fimPre, fimSuf, fimMid, fimPad, fimRep, fimSep

    /// The keys that name this role's token, newest first.
    var keys: [String] {
        switch self {
        case .eot: return ["tokenizer.ggml.eot_token_id"]
        case .eom: return ["tokenizer.ggml.eom_token_id"]
        case .fimPre: return ["tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.prefix_token_id"]
        case .fimSuf: return ["tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.suffix_token_id"]
        case .fimMid: return ["tokenizer.ggml.fim_mid_token_id", "tokenizer.ggml.middle_token_id"]
        case .fimPad: return ["tokenizer.ggml.fim_pad_token_id"]
        case .fimRep: return ["tokenizer.ggml.fim_rep_token_id"]
        case .fimSep: return ["tokenizer.ggml.fim_sep_token_id"]
        }
    }

    /// Token texts llama.cpp takes for this role when the file names none: the first such token found becomes
    /// control.
    var texts: [String] {
        switch self {
        case .eot: return ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>",
                           "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>"]
        case .eom: return ["<|eom_id|>"]
        case .fimPre: return ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>",
                              "<|prefix|>"]
        case .fimSuf: return ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>",
                              "<|suffix|>"]
        case .fimMid: return ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>",
                              "<|middle|>"]
        case .fimPad: return ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"]
        case .fimRep: return ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"]
        case .fimSep: return ["<|file_sep|>"]
        }
    }
}

/// llama.cpp's token attributes (`llama_token_attr`), as far as they decide how text is split into special tokens.
struct TokenAttributes: OptionSet, Sendable {
    let rawValue: UInt8
    static let normal = TokenAttributes(rawValue: 1)
    static let unknown = TokenAttributes(rawValue: 2)
    static let control = TokenAttributes(rawValue: 4)
    static let userDefined = TokenAttributes(rawValue: 8)

    /// Texts llama.cpp treats as ending generation: a token spelled so is made control whatever its stored type.
    static let endOfGeneration: Set<String> = [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
        "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>",
        "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~[",
    ]

    /// Every token's attributes: its stored type, then llama.cpp's corrections by text at load (llama-vocab.cpp,
    /// `load`): control for the first token spelled like each role the file does not name, control for every token
    /// spelled like an end of generation, user-defined for gpt-oss's channel markers, and the exceptions for
    /// o200k_harmony's `<|end|>` and for a `</s>` that is a normal token (Gemma 4, PLaMo).
    static func resolve(tokens: [[UInt8]], types: [Tokenizer.TokenType], ids: [[UInt8]: Int32],
                        roles given: [SpecialRole: Int32], eos: Int32?) -> [TokenAttributes] {
        var attrs: [TokenAttributes] = types.map {
            switch $0 {
            case .normal: return .normal
            case .unknown: return .unknown
            case .control: return .control
            case .userDefined: return .userDefined
            case .undefined, .unused, .byte: return []
            }
        }
        func id(_ text: String) -> Int32? { ids[Array(text.utf8)] }
        var roles = given
        for role in SpecialRole.allCases where roles[role] == nil {
            // llama.cpp walks a hash map; where a vocabulary holds two spellings of one role (rare), the lowest id wins here.
            if let found = role.texts.compactMap(id).min() {
                roles[role] = found
                attrs[Int(found)].insert(.control)
            }
        }
        var endsGeneration = Set([SpecialRole.fimPad, .fimRep, .fimSep, .eot, .eom].compactMap { roles[$0] } + [eos].compactMap { $0 })
        for text in endOfGeneration {
            if let t = id(text) {
                endsGeneration.insert(t)
                attrs[Int(t)].insert(.control)
            }
        }
        for text in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let t = id(text) { attrs[Int(t)] = .userDefined }
        }
        let endTexts = Set(endsGeneration.map { String(decoding: tokens[Int($0)], as: UTF8.self) })
        if endTexts.contains("<|end|>"), let end = id("<|end|>"),
           (endTexts.contains("<|return|>") && (endTexts.contains("<|call|>") || endTexts.contains("<|calls|>")))
            || ((endTexts.contains("<|call|>") || endTexts.contains("<|calls|>")) && endTexts.contains("<|flush|>")) {
            attrs[Int(end)] = .userDefined
        }
        if endTexts.contains("</s>"), let s = id("</s>"), endTexts.contains("<|tool_response>") || endTexts.contains("<|plamo:eos|>") {
            attrs[Int(s)] = .normal
        }
        return attrs
    }
}
