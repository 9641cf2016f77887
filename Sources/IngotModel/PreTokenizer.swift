/// Pre-tokenization: cutting text into the pieces that BPE then merges within.
///
/// Hugging Face tokenizers describe this step with regular expressions over Unicode categories; llama.cpp
/// (`unicode.cpp`, `llama-vocab.cpp`) chooses a list of them from GGUF `tokenizer.ggml.pre` and applies them in
/// turn, each one cutting the pieces left by the previous one: what a pattern matches becomes a piece, and so does
/// the text between two matches. A few patterns llama.cpp splits with hand-written code; the rest it hands to
/// std::regex. Ingot does the same with the same patterns: hand-written splitters where llama.cpp has them, its
/// pattern engine (`SplitRegex`) for the rest, so that the pieces, and so the token ids, are llama.cpp's.

/// The character classes the patterns use: `\p{L}`, `\p{N}`, `\p{P}`, `\p{S}`, `\p{M}`, `\s`.
public struct CodepointClass: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let letter = CodepointClass(rawValue: 1)
    public static let number = CodepointClass(rawValue: 2)
    public static let whitespace = CodepointClass(rawValue: 4)
    public static let punctuation = CodepointClass(rawValue: 8)
    public static let symbol = CodepointClass(rawValue: 16)
    public static let mark = CodepointClass(rawValue: 32)
    /// Set for every code point inside the text; the empty set stands for "past the end of the piece".
    public static let present = CodepointClass(rawValue: 128)

    /// The classes of one code point, as llama.cpp's tables have them (`UnicodeClasses.swift`, generated from
    /// llama.cpp's unicode-data.cpp): a code point Swift's Unicode version classifies otherwise still gets
    /// llama.cpp's class, so the pieces are llama.cpp's. `\s` is llama.cpp's list of 25 (Unicode White_Space).
    public static func of(_ cp: UInt32) -> CodepointClass {
        if cp < 128 { return ascii[Int(cp)] }
        return classify(cp)
    }

    private static let ascii: [CodepointClass] = (0..<128).map { classify(UInt32($0)) }

    static func classify(_ cp: UInt32) -> CodepointClass {
        var c: CodepointClass = .present
        switch cp {
        case 0x09...0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            c.insert(.whitespace)
        default: break
        }
        // The last run starting at or before cp.
        var lo = 0
        var hi = llamaStarts.count
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if llamaStarts[mid] <= cp { lo = mid } else { hi = mid }
        }
        c.insert(CodepointClass(rawValue: llamaClasses[lo]))
        return c
    }
}

/// One pattern of a pre-tokenizer. Each cuts every current piece into smaller ones.
public enum PreTokenizerStep: Sendable, Equatable {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` (GPT-2).
    case gpt2
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    /// with N = `digits` (Llama 3: 3; Qwen2: 1). `marks` adds `\p{M}` to the letter runs (Qwen3.5).
    case llama3(digits: Int, marks: Bool)
    /// Kimi K2's pattern, as llama.cpp's hand-written splitter reads it: runs of Han characters, then the GPT-4o
    /// word pattern over letters that are not Han, with contractions kept on the word; numbers in threes.
    case kimiK2
    /// Runs of numbers cut into threes counted from the end (AFMoE, Tiny Aya: 1234567 is 1, 234, 567), as
    /// llama.cpp's splitter does it: the text before a run joins the run's first group.
    case digitsFromRight
    /// `[^\n]+|[\n]+`: runs of newlines, and runs of the rest.
    case newlineRuns
    /// Pieces that start at a U+2581 (the text's spaces, in SentencePiece-style BPE): at every one (a tokenizer.json
    /// `Metaspace` with `split`), or, with `keepRuns`, at one that follows another character, so that a run of them
    /// stays with the word after it.
    case spaceWords(keepRuns: Bool)
    /// A pattern llama.cpp runs through std::regex (see `SplitRegex`).
    case regex(SplitRegex)

    /// The step for one of llama.cpp's patterns: the hand-written splitter llama.cpp chooses for that exact text
    /// (`unicode_regex_split_custom`), else the pattern engine.
    public static func forPattern(_ pattern: String) throws -> PreTokenizerStep {
        switch pattern {
        case gpt2Pattern, gpt2Pattern + #"|\s+"#: return .gpt2
        case llama3Pattern(digits: "{1,3}"), llama3Pattern(digits: "{1,3}", caseless: true): return .llama3(digits: 3, marks: false)
        case llama3Pattern(digits: ""), llama3Pattern(digits: "", caseless: true): return .llama3(digits: 1, marks: false)
        case #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#:
            return .llama3(digits: 1, marks: true)
        case #"\p{Han}+"#: return .kimiK2
        case #"\p{AFMoE_digits}"#, #"\d{1,3}(?=(?:\d{3})*\b)"#: return .digitsFromRight
        case #"[^\n]+|[\n]+"#: return .newlineRuns
        default: return .regex(try SplitRegex(pattern))
        }
    }

    public static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#

    /// Llama 3's pattern as llama.cpp adapts it (contractions spelled in both cases), or as tokenizer.json writes it.
    public static func llama3Pattern(digits: String, caseless: Bool = false) -> String {
        let contractions = caseless ? #"(?i:'s|'t|'re|'ve|'m|'ll|'d)"# : #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"#
        return contractions + #"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"# + digits + #"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    }
}

/// The pre-tokenizer named by GGUF `tokenizer.ggml.pre`, as llama.cpp (llama-vocab.cpp) defines it.
public struct PreTokenizer: Sendable, Equatable {
    public var name: String
    public var steps: [PreTokenizerStep]
    /// llama.cpp's `ignore_merges`: a piece that is itself a token is not merged (Llama 3).
    public var ignoreMerges = false
    /// llama.cpp's default BOS setting for this pre-tokenizer, before `tokenizer.ggml.add_bos_token`.
    public var addsBOSByDefault = false
    /// Whether llama.cpp adds BOS whatever `tokenizer.ggml.add_bos_token` says (Gemma 4).
    public var forcesBOS = false
    /// SentencePiece-style BPE (Gemma 4, Sarvam): spaces become U+2581 before splitting, tokens are raw UTF-8 rather
    /// than GPT-2's byte alphabet, merging starts from characters, and bytes no token covers are `<0xXX>` tokens.
    /// llama.cpp's `byte_encode = false` with `escape_whitespaces`.
    public var rawUTF8 = false
    /// A piece of nothing but newlines that is itself a token is that token (llama.cpp's fix for Gemma 4).
    public var newlineRunsWhole = false

    public init(name: String, steps: [PreTokenizerStep]) {
        self.name = name
        self.steps = steps
    }

    /// nil for a name Ingot does not know.
    public init?(named name: String) {
        guard let entry = PreTokenizer.table.first(where: { $0.names.contains(name) }) else { return nil }
        self.init(entry, name: name)
    }

    init(_ entry: Entry, name: String) {
        self.name = name
        // The table's patterns are constants that a unit test compiles, every one.
        steps = entry.patterns.map { try! PreTokenizerStep.forPattern($0) }
        ignoreMerges = entry.flags.contains(.ignoreMerges)
        addsBOSByDefault = entry.flags.contains(.addsBOS)
        forcesBOS = entry.flags.contains(.forcesBOS)
        rawUTF8 = entry.flags.contains(.rawUTF8)
        newlineRunsWhole = entry.flags.contains(.newlineRunsWhole)
    }

    /// Every name the table holds, in its order.
    public static var names: [String] { table.flatMap(\.names) }

    /// The named pre-tokenizer whose patterns, as a Hugging Face tokenizer.json writes them, are `patterns`
    /// (literal CR, LF and tab written as escapes); nil where none is.
    public static func matching(huggingFace patterns: [String]) -> PreTokenizer? {
        guard let entry = table.first(where: { ($0.huggingFace ?? $0.patterns) == patterns || $0.patterns == patterns }) else {
            return nil
        }
        return PreTokenizer(entry, name: entry.names[0])
    }

    /// The patterns of a named pre-tokenizer as a tokenizer.json writes them (its Split regexes, in order); nil for
    /// names a byte-level tokenizer.json cannot express: the raw UTF-8 ones (Gemma 4's), and AFMoE's, whose digit
    /// splitter is llama.cpp's own code rather than a pattern.
    public static func huggingFacePatterns(named name: String) -> [String]? {
        guard let entry = table.first(where: { $0.names.contains(name) }), !entry.flags.contains(.rawUTF8) else { return nil }
        let patterns = entry.huggingFace ?? entry.patterns
        return patterns.contains(#"\p{AFMoE_digits}"#) ? nil : patterns
    }

    /// The step for one pattern of a tokenizer.json that no named pre-tokenizer matches as a whole: llama.cpp's text
    /// of it, where one of llama.cpp's lists holds it as written or as its tokenizer.json original.
    static func step(huggingFace pattern: String) -> PreTokenizerStep? {
        for entry in table {
            if let i = entry.patterns.firstIndex(of: pattern) ?? entry.huggingFace?.firstIndex(of: pattern) {
                return try? PreTokenizerStep.forPattern(entry.patterns[i])
            }
        }
        return nil
    }

    /// Cuts `cps` into pieces; returns the length of each piece in code points.
    public func split(_ cps: [UInt32]) -> [Int] {
        let classes = cps.map(CodepointClass.of)
        var pieces = cps.isEmpty ? [] : [cps.count]
        var units: (collapsed: [UInt32]?, wide: [UInt32]?) = (nil, nil)
        for step in steps {
            var out: [Int] = []
            out.reserveCapacity(pieces.count * 2)
            var start = 0
            if case .regex(let r) = step {
                // The text as llama.cpp's std::regex sees it, made once for all the pieces.
                let u: [UInt32]
                if r.collapsed {
                    u = units.collapsed ?? SplitRegex.units(cps, classes, collapsed: true)
                    units.collapsed = u
                } else {
                    u = units.wide ?? SplitRegex.units(cps, classes, collapsed: false)
                    units.wide = u
                }
                for length in pieces {
                    var prev = start
                    r.split(u, start, start + length) { end in
                        if end > prev { out.append(end - prev) }
                        prev = end
                    }
                    start += length
                }
            } else {
                for length in pieces {
                    PreTokenizer.apply(step, cps, classes, start, start + length, &out)
                    start += length
                }
            }
            pieces = out
        }
        return pieces
    }

    // The hand-written splitters. Each walks [lo, hi) and appends piece lengths.
    static func apply(_ step: PreTokenizerStep, _ cps: [UInt32], _ cls: [CodepointClass], _ lo: Int, _ hi: Int,
                      _ out: inout [Int]) {
        @inline(__always) func c(_ i: Int) -> CodepointClass { i >= lo && i < hi ? cls[i] : [] }
        var prev = lo
        func emit(_ end: Int) {
            if end > prev { out.append(end - prev) }
            prev = end
        }
        switch step {
        case .regex:
            preconditionFailure("split runs patterns itself")
        case .kimiK2:
            kimiK2(cps, cls, lo, hi, emit)
        case .spaceWords(let keepRuns):
            for pos in (lo + 1)..<max(hi, lo + 1) where cps[pos] == 0x2581 && !(keepRuns && cps[pos - 1] == 0x2581) {
                emit(pos)
            }
            emit(hi)
        case .newlineRuns:
            var pos = lo
            while pos < hi {
                let newline = cps[pos] == 0x0A
                while pos < hi && (cps[pos] == 0x0A) == newline { pos += 1 }
                emit(pos)
            }
        case .digitsFromRight:
            var pos = lo
            while pos < hi {
                guard cls[pos].contains(.number) else { pos += 1; continue }
                let first = pos
                while pos < hi && cls[pos].contains(.number) { pos += 1 }
                var at = first + (pos - first) % 3
                if at > first { emit(at) }
                while at < pos { at += 3; emit(at) }
            }
            emit(hi)
        case .gpt2:
            var pos = lo
            while pos < hi {
                let ch = cps[pos]
                // 's|'t|'re|'ve|'m|'ll|'d
                if let n = contraction(cps, pos, hi, caseless: false) { pos += n; emit(pos); continue }
                let space = ch == 0x20
                var f = space ? c(pos + 1) : cls[pos]
                // ' ?\p{L}+', ' ?\p{N}+'
                if f.contains(.letter) || f.contains(.number) {
                    let kind: CodepointClass = f.contains(.letter) ? .letter : .number
                    if space { pos += 1 }
                    while f.contains(kind) { pos += 1; f = c(pos) }
                    emit(pos)
                    continue
                }
                // ' ?[^\s\p{L}\p{N}]+'
                if f.isDisjoint(with: [.whitespace, .letter, .number]) && f.contains(.present) {
                    if space { pos += 1 }
                    while f.isDisjoint(with: [.whitespace, .letter, .number]) && f.contains(.present) { pos += 1; f = c(pos) }
                    emit(pos)
                    continue
                }
                var spaces = 0
                while c(pos + spaces).contains(.whitespace) { spaces += 1 }
                // '\s+(?!\S)': leave the last whitespace to start the next piece
                if spaces > 1 && pos + spaces < hi { pos += spaces - 1; emit(pos); continue }
                if spaces > 0 { pos += spaces; emit(pos); continue }
                pos += 1
                emit(pos)
            }
            emit(hi)
        case .llama3(let digits, let marks):
            let letterish: CodepointClass = marks ? [.letter, .mark] : .letter
            var pos = lo
            while pos < hi {
                let ch = cps[pos]
                let f = cls[pos]
                // (?i:'s|'t|'re|'ve|'m|'ll|'d)
                if let n = contraction(cps, pos, hi, caseless: true) { pos += n; emit(pos); continue }
                // [^\r\n\p{L}\p{N}]?\p{L}+
                if !(ch == 0x0D || ch == 0x0A || f.contains(.number)) {
                    if !f.isDisjoint(with: letterish) || !c(pos + 1).isDisjoint(with: letterish) {
                        pos += 1
                        while !c(pos).isDisjoint(with: letterish) { pos += 1 }
                        emit(pos)
                        continue
                    }
                }
                // \p{N}{1,digits}
                if f.contains(.number) { pos = numberGroups(cls, pos, hi, digits, emit); continue }
                pos = llama3Rest(cps, cls, pos, hi, other: marks ? [.whitespace, .letter, .number, .mark] : [.whitespace, .letter, .number])
                emit(pos)
            }
            emit(hi)
        }
    }

    /// The length of `'s|'t|'re|'ve|'m|'ll|'d` at `pos` (any case when `caseless`), or nil.
    static func contraction(_ cps: [UInt32], _ pos: Int, _ hi: Int, caseless: Bool) -> Int? {
        guard cps[pos] == 0x27 && pos + 1 < hi else { return nil }
        let n1 = caseless ? lower(cps[pos + 1]) : cps[pos + 1]
        if n1 == 0x73 || n1 == 0x74 || n1 == 0x6D || n1 == 0x64 { return 2 }
        guard pos + 2 < hi else { return nil }
        let n2 = caseless ? lower(cps[pos + 2]) : cps[pos + 2]
        return (n1 == 0x72 && n2 == 0x65) || (n1 == 0x76 && n2 == 0x65) || (n1 == 0x6C && n2 == 0x6C) ? 3 : nil
    }

    /// `\p{N}{1,n}` from `pos`: the run of numbers emitted in groups of `n`; returns its end.
    static func numberGroups(_ cls: [CodepointClass], _ start: Int, _ hi: Int, _ n: Int, _ emit: (Int) -> Void) -> Int {
        var pos = start
        var group = start
        while pos < hi && cls[pos].contains(.number) {
            pos += 1
            if pos - group >= n { emit(pos); group = pos }
        }
        emit(pos)
        return pos
    }

    /// The end of the piece at `pos` by the alternatives Llama 3's pattern ends with: ` ?[^\s\p{L}\p{N}]+[\r\n]*`
    /// (`other` being the classes that run excludes), `\s*[\r\n]+`, `\s+(?!\S)`, `\s+`, else the one code point.
    static func llama3Rest(_ cps: [UInt32], _ cls: [CodepointClass], _ start: Int, _ hi: Int, other: CodepointClass) -> Int {
        func c(_ i: Int) -> CodepointClass { i < hi ? cls[i] : [] }
        var pos = start
        var f2 = cps[pos] == 0x20 ? c(pos + 1) : cls[pos]
        if f2.isDisjoint(with: other) && f2.contains(.present) {
            if cps[pos] == 0x20 { pos += 1 }
            while f2.isDisjoint(with: other) && f2.contains(.present) { pos += 1; f2 = c(pos) }
            while pos < hi && (cps[pos] == 0x0D || cps[pos] == 0x0A) { pos += 1 }
            return pos
        }
        var spaces = 0
        var lastNewlineEnd = 0
        while c(pos + spaces).contains(.whitespace) {
            let w = cps[pos + spaces]
            if w == 0x0D || w == 0x0A { lastNewlineEnd = pos + spaces + 1 }
            spaces += 1
        }
        if lastNewlineEnd > 0 { return lastNewlineEnd }                     // \s*[\r\n]+
        if spaces > 1 && pos + spaces < hi { return pos + spaces - 1 }      // \s+(?!\S)
        return pos + max(spaces, 1)
    }

    /// Kimi K2's splitter (`PreTokenizerStep.kimiK2`), after llama.cpp's `unicode_regex_split_custom_kimi_k2`.
    static func kimiK2(_ cps: [UInt32], _ cls: [CodepointClass], _ lo: Int, _ hi: Int, _ emit: (Int) -> Void) {
        func cp(_ i: Int) -> UInt32 { i >= lo && i < hi ? cps[i] : UInt32.max }
        func c(_ i: Int) -> CodepointClass { i >= lo && i < hi ? cls[i] : [] }
        func han(_ i: Int) -> Bool { isHan(cp(i)) }
        func word(_ i: Int) -> Bool { c(i).contains(.letter) && !han(i) }
        var pos = lo
        while pos < hi {
            let ch = cps[pos]
            let f = cls[pos]
            // [\p{Han}]+
            if han(pos) {
                while han(pos) { pos += 1 }
                emit(pos)
                continue
            }
            // [^\r\n\p{L}\p{N}]?[letters but Han]+ with an optional contraction
            let leading = !(ch == 0x0D || ch == 0x0A || f.contains(.letter) || f.contains(.number))
            if word(pos) || (leading && word(pos + 1)) {
                if leading { pos += 1 }
                while word(pos) { pos += 1 }
                if pos < hi { pos += contraction(cps, pos, hi, caseless: true) ?? 0 }
                emit(pos)
                continue
            }
            // \p{N}{1,3}
            if f.contains(.number) { pos = numberGroups(cls, pos, hi, 3, emit); continue }
            pos = llama3Rest(cps, cls, pos, hi, other: [.whitespace, .letter, .number])
            emit(pos)
        }
        emit(hi)
    }

    /// llama.cpp's `unicode_cpt_is_han`: the CJK ideograph blocks and extensions A to F, and the compatibility ones.
    static func isHan(_ cp: UInt32) -> Bool {
        switch cp {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B820...0x2CEAF, 0x2CEB0...0x2EBEF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }

    /// Simple lowercase mapping for the contraction check (only ASCII letters matter there).
    static func lower(_ cp: UInt32) -> UInt32 {
        if cp >= 0x41 && cp <= 0x5A { return cp + 32 }
        if cp < 128 { return cp }
        guard let s = Unicode.Scalar(cp), let l = s.properties.lowercaseMapping.unicodeScalars.first,
              s.properties.lowercaseMapping.unicodeScalars.count == 1 else { return cp }
        return l.value
    }

    /// llama.cpp's pre-tokenizers (`llm_tokenizer_bpe` in llama-vocab.cpp): the names `tokenizer.ggml.pre` may hold,
    /// the patterns as llama.cpp writes them, where they differ the tokenizer.json originals llama.cpp's comments
    /// give, and the settings llama.cpp ties to the names (llama_vocab::impl::load). Non-ASCII characters are
    /// written as escapes so that no normalization of this file can change them: normalized, DeepSeek LLM's Kelvin
    /// and Ohm signs become other letters and the ranges they bound take in `_`, `|` or `-`. llama.cpp's own AFMoE
    /// class has U+8C48 where U+F900 was meant, and so does this copy. Not here: `whitespace`, the pre-tokenizer of
    /// the `whitespace` tokenizer model (an embedding model's), which Ingot refuses with the model.
    struct Entry: Sendable {
        struct Flags: OptionSet, Sendable {
            let rawValue: UInt8
            static let ignoreMerges = Flags(rawValue: 1)
            static let addsBOS = Flags(rawValue: 2)
            static let forcesBOS = Flags(rawValue: 4)
            static let rawUTF8 = Flags(rawValue: 8)
            static let newlineRunsWhole = Flags(rawValue: 16)
        }
        var names: [String]
        var patterns: [String]
        var huggingFace: [String]?
        var flags: Flags

        init(_ names: [String], _ patterns: [String], _ huggingFace: [String]? = nil, _ flags: Flags = []) {
            self.names = names
            self.patterns = patterns
            self.huggingFace = huggingFace
            self.flags = flags
        }

        init(_ names: [String], _ patterns: [String], _ flags: Flags) {
            self.init(names, patterns, nil, flags)
        }
    }

    static let table: [Entry] = [
        // DEFAULT
        .init(["default"], [
            #"[\p{P}\$\+<=>\^~\|]+"#,
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
            #"\p{N}+"#,
            #"[0-9][0-9][0-9]"#,
        ]),
        // MINICPM5
        .init(["minicpm5"], [
            #"\p{N}{1,3}"#,
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], [
            #"\p{N}{1,3}"#,
            #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], [.ignoreMerges]),
        // LLAMA3
        .init(["llama-bpe", "llama3", "llama-v3", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"], [
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], [
            #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], [.ignoreMerges, .addsBOS]),
        // DEEPSEEK_LLM
        .init(["deepseek-llm"], [
            #"[\r\n]"#,
            #"\s?[A-Za-z\#u{B5}\#u{C0}-\#u{D6}\#u{D8}-\#u{F6}\#u{F8}-\#u{1BA}\#u{1BC}-\#u{1BF}\#u{1C4}-\#u{293}\#u{295}-\#u{2AF}\#u{370}-\#u{373}\#u{376}\#u{377}\#u{37B}-\#u{37D}\#u{37F}\#u{386}\#u{388}-\#u{38A}\#u{38C}\#u{38E}-\#u{3A1}\#u{3A3}-\#u{3F5}\#u{3F7}-\#u{481}\#u{48A}-\#u{52F}\#u{531}-\#u{556}\#u{10A0}-\#u{10C5}\#u{13A0}-\#u{13F5}\#u{13F8}-\#u{13FD}\#u{1C90}-\#u{1CBA}\#u{1CBD}-\#u{1CBF}\#u{1D00}-\#u{1D2B}\#u{1D6B}-\#u{1D77}\#u{1D79}-\#u{1D9A}\#u{1E00}-\#u{1F15}\#u{1F18}-\#u{1F1D}\#u{1F20}-\#u{1F45}\#u{1F48}-\#u{1F4D}\#u{1F50}-\#u{1F57}\#u{1F59}\#u{1F5B}\#u{1F5D}\#u{1F5F}-\#u{1F7D}\#u{1F80}-\#u{1FB4}\#u{1FB6}-\#u{1FBC}\#u{1FBE}\#u{1FC2}-\#u{1FC4}\#u{1FC6}-\#u{1FCC}\#u{1FD0}-\#u{1FD3}\#u{1FD6}-\#u{1FDB}\#u{1FE0}-\#u{1FEC}\#u{1FF2}-\#u{1FF4}\#u{1FF6}-\#u{1FFC}\#u{2102}\#u{2107}\#u{210A}-\#u{2113}\#u{2115}\#u{2119}-\#u{211D}\#u{2124}\#u{2126}\#u{2128}\#u{212A}-\#u{212D}\#u{212F}-\#u{2134}\#u{2139}\#u{213C}-\#u{213F}\#u{2145}-\#u{2149}\#u{214E}\#u{2183}\#u{2184}\#u{2C00}-\#u{2C7B}\#u{2C7E}-\#u{2CE4}\#u{2CEB}-\#u{2CEE}\#u{2CF2}\#u{2CF3}\#u{A640}-\#u{A66D}\#u{A680}-\#u{A69B}\#u{A722}-\#u{A76F}\#u{A771}-\#u{A787}\#u{A78B}-\#u{A78E}\#u{AB70}-\#u{ABBF}\#u{FB00}-\#u{FB06}\#u{FB13}-\#u{FB17}\#u{FF21}-\#u{FF3A}\#u{FF41}-\#u{FF5A}\#u{10400}-\#u{1044F}\#u{104B0}-\#u{104D3}\#u{104D8}-\#u{104FB}\#u{10C80}-\#u{10CB2}\#u{10CC0}-\#u{10CF2}\#u{118A0}-\#u{118DF}\#u{1E900}-\#u{1E943}]+"#,
            #"\s?[!-/:-~\#u{FF01}-\#u{FF0F}\#u{FF1A}-\#u{FF5E}\#u{2018}-\#u{201F}\#u{3000}-\#u{3002}]+"#,
            #"\s+$"#,
            #"[\#u{4E00}-\#u{9FA5}\#u{800}-\#u{4E00}\#u{AC00}-\#u{D7FF}]+"#,
            #"\p{N}+"#,
        ]),
        // DEEPSEEK_CODER
        .init(["deepseek-coder"], [
            #"[\r\n]"#,
            #"\s?\p{L}+"#,
            #"\s?\p{P}+"#,
            #"[\#u{4E00}-\#u{9FA5}\#u{800}-\#u{4E00}\#u{AC00}-\#u{D7FF}]+"#,
            #"\p{N}"#,
        ]),
        // DEEPSEEK3_LLM
        .init(["deepseek-v3"], [
            #"\p{N}{1,3}"#,
            #"[\#u{4E00}-\#u{9FA5}\#u{3040}-\#u{309F}\#u{30A0}-\#u{30FF}]+"#,
            ##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##,
        ]),
        // SPARK2_5
        .init(["spark2_5"], [
            #"\p{N}{1,3}"#,
            #"[\#u{4E00}-\#u{9FA5}\#u{3040}-\#u{309F}\#u{30A0}-\#u{30FF}]+"#,
            ##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+|[\r\n]|\s+(?!\S)|\s+"##,
            #"\p{N}"#,
        ]),
        // YOUTU
        .init(["youtu"], [
            #"[\#u{AC00}-\#u{D7A3}\#u{3131}-\#u{318E}]+|[\#u{FF01}\#u{2026}\#u{201C}\#u{201D}\#u{2018}\#u{2019}\#u{2014}\#u{FF1A}\#u{FF1B}\#u{FF0C}\#u{3001}-\#u{303F}\#u{FE30}-\#u{FE4F}]+|[\#u{3105}-\#u{312F}]+|[\#u{4E00}-\#u{9FA5}\#u{3040}-\#u{309F}\#u{30A0}-\#u{30FF}]+"#,
            #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], [.ignoreMerges]),
        // FALCON
        .init(["falcon"], [
            #"[\p{P}\$\+<=>\^~\|`]+"#,
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
            #"[0-9][0-9][0-9]"#,
        ]),
        // MPT
        .init(["mpt"], [
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ]),
        // STARCODER
        .init(["starcoder"], [
            #"\p{N}"#,
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ]),
        // GPT2
        .init(["gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum", "modern-bert"], [
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ]),
        // JAIS2
        .init(["jais-2"], [
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s{512}(?!\S)|\s{256}(?!\S)|\s{128}(?!\S)|\s{64}(?!\S)|\s{32}(?!\S)|\s{16}(?!\S)|\s{8}(?!\S)|\s{4}(?!\S)|\s{1,2}(?!\S)|\s{1}"#,
        ], [
            #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s{512}(?!\S)|\s{256}(?!\S)|\s{128}(?!\S)|\s{64}(?!\S)|\s{32}(?!\S)|\s{16}(?!\S)|\s{8}(?!\S)|\s{4}(?!\S)|\s{1,2}(?!\S)|\s{1}"#,
        ]),
        // GEMMA4
        .init(["gemma4", "granite-embed-multi-311m"], [
            #"[^\n]+|[\n]+"#,
        ], [.rawUTF8, .forcesBOS, .newlineRunsWhole]),
        // SARVAM_MOE
        .init(["sarvam-moe"], [
            #"[^\n]+|[\n]+"#,
        ], [.rawUTF8]),
        // GPT2
        .init(["jina-v1-en", "jina-v2-code", "roberta-bpe"], [
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ]),
        // REFACT
        .init(["refact"], [
            #"\p{N}"#,
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ]),
        // COMMAND_R
        .init(["command-r"], [
            #"\p{N}"#,
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ]),
        // QWEN2
        .init(["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2"], [
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], [
            #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ]),
        // QWEN35
        .init(["qwen35"], [
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], [
            #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ]),
        // STABLELM2
        .init(["stablelm2"], [
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], [
            #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ]),
        // OLMO
        .init(["olmo"], [
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ]),
        // DBRX
        .init(["dbrx"], [
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ]),
        // SMAUG
        .init(["smaug-bpe"], [
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ]),
        // PORO
        .init(["poro-chat"], [
            #" ?[^(\s|.,!?\#u{2026}\#u{3002}\#u{FF0C}\#u{3001}\#u{964}\#u{6D4}\#u{60C})]+"#,
        ]),
        // CHATGLM4
        .init(["chatglm-bpe"], [
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ]),
        // CHATGLM4
        .init(["glm4", "glm5"], [
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], [.ignoreMerges]),
        // VIKING
        .init(["viking"], [
            #" ?[^(\s|.,!?\#u{2026}\#u{3002}\#u{FF0C}\#u{3001}\#u{964}\#u{6D4}\#u{60C})]+"#,
            #"\p{N}"#,
        ]),
        // JAIS
        .init(["jais"], [
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ]),
        // TEKKEN
        .init(["tekken"], [
            #"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], [
            #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], [.ignoreMerges, .addsBOS]),
        // SMOLLM
        .init(["smollm"], [
            #"\p{N}"#,
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ]),
        // CODESHELL
        .init(["codeshell"], [
            #"\p{N}"#,
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ]),
        // BLOOM
        .init(["bloom"], [
            #" ?[^(\s|.,!?\#u{2026}\#u{3002}\#u{FF0C}\#u{3001}\#u{964}\#u{6D4}\#u{60C})]+"#,
        ]),
        // GPT3_FINNISH
        .init(["gpt3-finnish"], [
            #" ?[^(\s|.,!?\#u{2026}\#u{3002}\#u{FF0C}\#u{3001}\#u{964}\#u{6D4}\#u{60C})]+"#,
        ]),
        // EXAONE
        .init(["exaone"], [
            #"\p{N}"#,
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ]),
        // GPT2
        .init(["exaone4"], [
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ]),
        // EXAONE_MOE
        .init(["exaone-moe"], [
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?(?:\p{L}\p{M}*(?: \p{L}\p{M}*)*)+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]?|\s*[\r\n]|\s+(?!\S)|\s+"#,
        ], [
            #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?(?:\p{L}\p{M}*(?: \p{L}\p{M}*)*)+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]?|\s*[\r\n]|\s+(?!\S)|\s+"#,
        ]),
        // CHAMELEON
        .init(["chameleon"], [
            #"<sentinel:[0-9]+>"#,
            #"(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z"#,
            #"([\t\n]|    |  )"#,
            #"\p{N}"#,
            #"[\p{P}!-/:-@\[-`{-~]"#,
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ], [.addsBOS]),
        // MINERVA
        .init(["minerva-7b"], [
            #"\p{N}"#,
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ]),
        // QWEN2
        .init(["megrez"], [
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], [
            #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ]),
        // GPT4O
        .init(["gpt-4o", "llama4", "kanana2", "talkie"], [
            #"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], [
            #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ]),
        // GRANITE_EMB_MULTI
        .init(["granite-embed-multi-97m"], [
            #"[^\r\n\p{L}\p{N}]?((?=[\p{L}\p{M}])([^a-z]))*((?=[\p{L}\p{M}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}\p{M}])([^a-z]))+((?=[\p{L}\p{M}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], [.ignoreMerges]),
        // TINY_AYA
        .init(["tiny_aya", "cohere2moe"], [
            #"\d{1,3}(?=(?:\d{3})*\b)"#,
            #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], [
            #"\d{1,3}(?=(?:\d{3})*\b)"#,
            #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ]),
        // SUPERBPE
        .init(["superbpe"], [
            #"\p{N}+"#,
            #"(?=(\d{3})+(?!\d))"#,
        ]),
        // TRILLION
        .init(["trillion"], [
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ]),
        // GRANITE_DOCLING
        .init(["granite-docling"], [
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ]),
        // BAILINGMOE
        .init(["bailingmoe", "bailingmoe2", "llada-moe"], [
            #"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"#,
        ], [
            #"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"#,
        ]),
        // SEED_CODER
        .init(["seed-coder"], [
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], [
            #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ]),
        // HUNYUAN
        .init(["hunyuan"], [
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], [
            #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ]),
        // HUNYUAN_DENSE
        .init(["hunyuan-dense"], [
            #"\p{N}{1,3}"#,
            #"[\#u{4E00}-\#u{9FA5}\#u{3040}-\#u{309F}\#u{30A0}-\#u{30FF}]+"#,
            ##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##,
        ]),
        // HY_V4
        .init(["hy_v4"], [
            #"\p{N}{1,3}"#,
            #"[\#u{4E00}-\#u{9FA5}\#u{3040}-\#u{309F}\#u{30A0}-\#u{30FF}]+"#,
            ##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##,
        ]),
        // JOYAI_LLM
        .init(["joyai-llm"], [
            #"\p{N}{1,3}"#,
            #"[\#u{4E00}-\#u{9FA5}\#u{3040}-\#u{309F}\#u{30A0}-\#u{30FF}]+"#,
            ##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##,
        ]),
        // KIMI_K2
        .init(["kimi-k2"], [
            #"\p{Han}+"#,
        ]),
        // UFAKZEKA
        .init(["ufakzeka"], [
            #"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ]),
        // GROK_2
        .init(["grok-2"], [
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], [
            #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ]),
        // AFMOE
        .init(["afmoe"], [
            #"\p{AFMoE_digits}"#,
            #"[\#u{4E00}-\#u{9FFF}\#u{3400}-\#u{4DBF}\#u{8C48}-\#u{FAFF}\#u{3040}-\#u{309F}\#u{30A0}-\#u{30FF}\#u{FF65}-\#u{FF9F}\#u{2F00}-\#u{2FDF}\#u{E40}-\#u{E7F}\#u{E80}-\#u{EFF}\#u{1780}-\#u{17FF}\#u{1000}-\#u{109F}\#u{AA60}-\#u{AA7F}\#u{A9E0}-\#u{A9FF}\#u{AC00}-\#u{D7AF}\#u{1100}-\#u{11FF}]+"#,
            ##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##,
        ]),
        // LAGUNA
        .init(["laguna"], [
            #"[^\n]+|[\n]+"#,
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ]),
        // MINIMAX_M2
        .init(["minimax-m2"], [
            #"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], [
            #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ]),
        // SOLAR_OPEN
        .init(["solar-open"], [
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ], [
            #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        ]),
        // MELLUM2
        .init(["mellum2"], [
            #"\p{N}"#,
            #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#,
        ]),
    ]
}
