/// Pre-tokenization: cutting text into the pieces that byte-level BPE then merges within.
///
/// Hugging Face tokenizers describe this step with regular expressions over Unicode categories; llama.cpp
/// (`unicode.cpp`, `llama-vocab.cpp`) chooses a list of them from GGUF `tokenizer.ggml.pre` and applies them in
/// turn, each one cutting the pieces left by the previous one: what a pattern matches becomes a piece, and so does
/// the text between two matches. Ingot implements each pattern as a small hand-written matcher over code points with
/// the same leftmost-first semantics, so that the pieces, and so the token ids, are the same as llama.cpp's.

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

    /// The classes of one code point. `\s` is Unicode White_Space (the set llama.cpp lists); the categories come
    /// from the Unicode general category.
    public static func of(_ cp: UInt32) -> CodepointClass {
        if cp < 128 { return ascii[Int(cp)] }
        return classify(cp)
    }

    private static let ascii: [CodepointClass] = (0..<128).map { classify(UInt32($0)) }

    private static func classify(_ cp: UInt32) -> CodepointClass {
        var c: CodepointClass = .present
        switch cp {
        case 0x09...0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            c.insert(.whitespace)
        default: break
        }
        guard let scalar = Unicode.Scalar(cp) else { return c }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: c.insert(.letter)
        case .decimalNumber, .letterNumber, .otherNumber: c.insert(.number)
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
             .finalPunctuation, .otherPunctuation: c.insert(.punctuation)
        case .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol: c.insert(.symbol)
        case .nonspacingMark, .spacingMark, .enclosingMark: c.insert(.mark)
        default: break
        }
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
    /// `[C]`: every code point of the class is a piece of its own.
    case each(Matcher)
    /// `[C]+`: every run of the class is a piece.
    case runs(Matcher)
    /// `[C]{n}`: consecutive groups of exactly `n`, left to right.
    case groups(Matcher, Int)
    /// `[C]{1,n}`: runs of the class cut into groups of `n` from their start, the last one shorter.
    case upTo(Matcher, Int)
    /// ` ?[^(\s|.,!?…。，、।۔،)]+` (BLOOM, Poro, GPT-3 Finnish, Viking): runs of anything but whitespace and those
    /// marks (the class also excludes `(`, `|` and `)`, as written), with one space before.
    case bloom
    /// `[!-/:-@\[-`{-~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    /// (DeepSeek-V3), matched as llama.cpp matches it: by std::regex over its collapsed text, where ASCII keeps its
    /// own classes and every other code point stands for its category (whitespace first).
    case deepseek3
    /// `\s?[C]+`: a run of the class, with one whitespace before it when there is one.
    case spacedRuns(Matcher)
    /// `\s+$`: trailing whitespace of the piece.
    case trailingWhitespace

    /// A set of code points: classes, plus explicit code point ranges.
    public struct Matcher: Sendable, Equatable {
        public var classes: CodepointClass
        public var ranges: [ClosedRange<UInt32>]
        public init(_ classes: CodepointClass = [], _ ranges: [ClosedRange<UInt32>] = []) {
            self.classes = classes
            self.ranges = ranges
        }
        func matches(_ cp: UInt32, _ c: CodepointClass) -> Bool {
            if !c.isDisjoint(with: classes) { return true }
            // llama.cpp matches explicit ranges on a copy of the text where non-ASCII whitespace became U+000B.
            if cp > 0x7F && c.contains(.whitespace) { return false }
            for r in ranges where r.contains(cp) { return true }
            return false
        }
        static func chars(_ s: String) -> [ClosedRange<UInt32>] { s.unicodeScalars.map { $0.value...$0.value } }
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

    public init(name: String, steps: [PreTokenizerStep]) {
        self.name = name
        self.steps = steps
    }

    /// nil for a name Ingot does not know.
    public init?(named name: String) {
        typealias M = PreTokenizerStep.Matcher
        let asciiDigits = M([], [0x30...0x39])
        let cjk: [ClosedRange<UInt32>] = [0x4E00...0x9FA5, 0x0800...0x4E00, 0xAC00...0xD7FF]
        self.name = name
        switch name {
        case "default":
            steps = [.runs(M(.punctuation, M.chars("$+<=>^~|"))), .gpt2, .runs(M(.number)), .groups(asciiDigits, 3)]
        case "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano":
            steps = [.llama3(digits: 3, marks: false)]
            ignoreMerges = true
            addsBOSByDefault = true
        case "glm4", "glm5":
            steps = [.llama3(digits: 3, marks: false)]
            ignoreMerges = true
        case "dbrx", "smaug-bpe", "chatglm-bpe":
            steps = [.llama3(digits: 3, marks: false)]
        case "qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "stablelm2", "hunyuan", "solar-open", "megrez", "grok-2":
            steps = [.llama3(digits: 1, marks: false)]
        case "qwen35":
            steps = [.llama3(digits: 1, marks: true)]
        case "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
             "modern-bert", "mpt", "olmo", "jais", "trillion", "granite-docling", "roberta-bpe", "jina-v1-en",
             "jina-v2-code", "exaone4":
            steps = [.gpt2]
        case "starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b", "mellum2":
            steps = [.each(M(.number)), .gpt2]
        case "falcon":
            steps = [.runs(M(.punctuation, M.chars("$+<=>^~|`"))), .gpt2, .groups(asciiDigits, 3)]
        case "deepseek-coder":
            steps = [.each(M([], M.chars("\r\n"))), .spacedRuns(M(.letter)), .spacedRuns(M(.punctuation)),
                     .runs(M([], cjk)), .each(M(.number))]
        case "laguna":
            steps = [.runs(M([], [0x0A...0x0A])), .llama3(digits: 1, marks: false)]
        case "bloom", "poro-chat", "gpt3-finnish":
            steps = [.bloom]
        case "viking":
            steps = [.bloom, .each(M(.number))]
        case "deepseek-v3", "hunyuan-dense", "hy_v4", "joyai-llm":
            steps = [.upTo(M(.number), 3), .runs(M([], [0x4E00...0x9FA5, 0x3040...0x309F, 0x30A0...0x30FF])), .deepseek3]
        case "deepseek-llm":
            steps = [.each(M([], M.chars("\r\n"))), .spacedRuns(M([], PreTokenizer.deepseekLetters)),
                     .spacedRuns(M([], PreTokenizer.deepseekPunctuation)), .trailingWhitespace,
                     .runs(M([], cjk)), .runs(M(.number))]
        default:
            return nil
        }
    }

    /// Cuts `cps` into pieces; returns the length of each piece in code points.
    public func split(_ cps: [UInt32]) -> [Int] {
        let classes = cps.map(CodepointClass.of)
        var pieces = cps.isEmpty ? [] : [cps.count]
        for step in steps {
            var out: [Int] = []
            out.reserveCapacity(pieces.count * 2)
            var start = 0
            for length in pieces {
                PreTokenizer.apply(step, cps, classes, start, start + length, &out)
                start += length
            }
            pieces = out
        }
        return pieces
    }

    // The matchers. Each walks [lo, hi) and appends piece lengths; text a pattern does not match becomes a piece
    // of its own, as the text between two regex matches does.
    static func apply(_ step: PreTokenizerStep, _ cps: [UInt32], _ cls: [CodepointClass], _ lo: Int, _ hi: Int,
                      _ out: inout [Int]) {
        @inline(__always) func cp(_ i: Int) -> UInt32 { i >= lo && i < hi ? cps[i] : UInt32.max }
        @inline(__always) func c(_ i: Int) -> CodepointClass { i >= lo && i < hi ? cls[i] : [] }
        var prev = lo
        func emit(_ end: Int) {
            if end > prev { out.append(end - prev) }
            prev = end
        }
        // Regex-style steps: a match becomes a piece, the gap before it another.
        func matchLoop(_ match: (Int) -> Int?) {
            var i = lo
            while i < hi {
                if let end = match(i), end > i {
                    emit(i)
                    emit(end)
                    i = end
                } else {
                    i += 1
                }
            }
            emit(hi)
        }
        switch step {
        case .each(let m):
            matchLoop { i in m.matches(cps[i], cls[i]) ? i + 1 : nil }
        case .runs(let m):
            matchLoop { i in
                var j = i
                while j < hi && m.matches(cps[j], cls[j]) { j += 1 }
                return j
            }
        case .groups(let m, let n):
            matchLoop { i in
                var j = i
                while j < hi && j - i < n && m.matches(cps[j], cls[j]) { j += 1 }
                return j - i == n ? j : nil
            }
        case .upTo(let m, let n):
            matchLoop { i in
                var j = i
                while j < hi && j - i < n && m.matches(cps[j], cls[j]) { j += 1 }
                return j
            }
        case .deepseek3:
            deepseek3(cps, cls, lo, hi, emit)
        case .bloom:
            let marks: Set<UInt32> = [0x28, 0x7C, 0x29, 0x2E, 0x2C, 0x21, 0x3F, 0x2026, 0x3002, 0xFF0C, 0x3001, 0x0964, 0x06D4, 0x060C]
            func allowed(_ i: Int) -> Bool { i < hi && !cls[i].contains(.whitespace) && !marks.contains(cps[i]) }
            matchLoop { i in
                var j = cps[i] == 0x20 && allowed(i + 1) ? i + 1 : i
                let start = j
                while allowed(j) { j += 1 }
                return j > start ? j : nil
            }
        case .spacedRuns(let m):
            matchLoop { i in
                var j = i
                if cls[j].contains(.whitespace) && j + 1 < hi && m.matches(cps[j + 1], cls[j + 1]) { j += 1 }
                let s = j
                while j < hi && m.matches(cps[j], cls[j]) { j += 1 }
                return j > s ? j : nil
            }
        case .trailingWhitespace:
            var j = hi
            while j > lo && cls[j - 1].contains(.whitespace) { j -= 1 }
            emit(j)
            emit(hi)
        case .gpt2:
            var pos = lo
            while pos < hi {
                let ch = cps[pos]
                // 's|'t|'re|'ve|'m|'ll|'d
                if ch == 0x27 && pos + 1 < hi {
                    let n1 = cps[pos + 1]
                    if n1 == 0x73 || n1 == 0x74 || n1 == 0x6D || n1 == 0x64 { pos += 2; emit(pos); continue }
                    if pos + 2 < hi {
                        let n2 = cps[pos + 2]
                        if (n1 == 0x72 && n2 == 0x65) || (n1 == 0x76 && n2 == 0x65) || (n1 == 0x6C && n2 == 0x6C) {
                            pos += 3; emit(pos); continue
                        }
                    }
                }
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
                if ch == 0x27 && pos + 1 < hi {
                    let n1 = lower(cps[pos + 1])
                    if n1 == 0x73 || n1 == 0x74 || n1 == 0x6D || n1 == 0x64 { pos += 2; emit(pos); continue }
                    if pos + 2 < hi {
                        let n2 = lower(cps[pos + 2])
                        if (n1 == 0x72 && n2 == 0x65) || (n1 == 0x76 && n2 == 0x65) || (n1 == 0x6C && n2 == 0x6C) {
                            pos += 3; emit(pos); continue
                        }
                    }
                }
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
                if f.contains(.number) {
                    var start = pos
                    while c(pos).contains(.number) {
                        pos += 1
                        if pos - start >= digits { emit(pos); start = pos }
                    }
                    emit(pos)
                    continue
                }
                // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
                let other: CodepointClass = marks ? [.whitespace, .letter, .number, .mark] : [.whitespace, .letter, .number]
                var f2 = ch == 0x20 ? c(pos + 1) : f
                if f2.isDisjoint(with: other) {
                    if ch == 0x20 { pos += 1 }
                    while f2.isDisjoint(with: other) && f2.contains(.present) { pos += 1; f2 = c(pos) }
                    while cp(pos) == 0x0D || cp(pos) == 0x0A { pos += 1 }
                    emit(pos)
                    continue
                }
                var spaces = 0
                var lastNewlineEnd = 0
                while c(pos + spaces).contains(.whitespace) {
                    let w = cps[pos + spaces]
                    if w == 0x0D || w == 0x0A { lastNewlineEnd = pos + spaces + 1 }
                    spaces += 1
                }
                // \s*[\r\n]+
                if lastNewlineEnd > 0 { pos = lastNewlineEnd; emit(pos); continue }
                // \s+(?!\S)
                if spaces > 1 && pos + spaces < hi { pos += spaces - 1; emit(pos); continue }
                if spaces > 0 { pos += spaces; emit(pos); continue }
                pos += 1
                emit(pos)
            }
            emit(hi)
        }
    }

    /// DeepSeek-V3's third pattern (see `PreTokenizerStep.deepseek3`), one alternative after another at each position
    /// as ECMAScript tries them; a position where none matches joins the gap before the next match.
    static func deepseek3(_ cps: [UInt32], _ cls: [CodepointClass], _ lo: Int, _ hi: Int, _ emit: (Int) -> Void) {
        // Classes of the collapsed text: ASCII by llama.cpp's ASCII tables, other code points by category.
        func ascii(_ i: Int) -> UInt32? { i < hi && cps[i] < 0x80 ? cps[i] : nil }
        func inside(_ i: Int) -> Bool { i >= lo && i < hi }
        func space(_ i: Int) -> Bool {
            guard inside(i) else { return false }
            if let a = ascii(i) { return a == 0x20 || (a >= 0x09 && a <= 0x0D) }
            return cls[i].contains(.whitespace)
        }
        func category(_ i: Int, _ c: CodepointClass, ascii test: (UInt32) -> Bool) -> Bool {
            guard inside(i) else { return false }
            if let a = ascii(i) { return test(a) }
            return !cls[i].contains(.whitespace) && cls[i].contains(c)
        }
        // llama.cpp's ASCII members of \p{L}, \p{S} and \p{P} (unicode.cpp, k_ucat_map).
        func isLetter(_ a: UInt32) -> Bool { (0x41...0x5A).contains(a) || (0x61...0x7A).contains(a) }
        func isSymbol(_ a: UInt32) -> Bool { [0x24, 0x2B, 0x3C, 0x3D, 0x3E, 0x5E, 0x60, 0x7C, 0x7E].contains(a) }
        func isPunctuation(_ a: UInt32) -> Bool {
            (0x21...0x7E).contains(a) && !isLetter(a) && !(0x30...0x39).contains(a) && !isSymbol(a)
        }
        func letter(_ i: Int) -> Bool { category(i, .letter, ascii: isLetter) }
        func asciiLetter(_ i: Int) -> Bool { ascii(i).map(isLetter) ?? false }
        func mark(_ i: Int) -> Bool { category(i, .mark) { _ in false } }
        func symbol(_ i: Int) -> Bool { category(i, .symbol, ascii: isSymbol) }
        func punctuation(_ i: Int) -> Bool { category(i, .punctuation, ascii: isPunctuation) }
        func newline(_ i: Int) -> Bool { inside(i) && (cps[i] == 0x0A || cps[i] == 0x0D) }
        func letterOrMark(_ i: Int) -> Bool { letter(i) || mark(i) }
        func punctOrSymbol(_ i: Int) -> Bool { punctuation(i) || symbol(i) }

        var pos = lo
        while pos < hi {
            var end: Int?
            let a = cps[pos]
            if a < 0x80 && punctOrSymbol(pos) && asciiLetter(pos + 1) {
                // [!-/:-@[-`{-~][A-Za-z]+
                var j = pos + 1
                while asciiLetter(j) { j += 1 }
                end = j
            } else if !newline(pos) && !letter(pos) && !punctOrSymbol(pos) && letterOrMark(pos + 1) {
                // [^\r\n\p{L}\p{P}\p{S}][\p{L}\p{M}]+
                var j = pos + 1
                while letterOrMark(j) { j += 1 }
                end = j
            } else if letterOrMark(pos) {
                var j = pos
                while letterOrMark(j) { j += 1 }
                end = j
            } else if (a == 0x20 && punctOrSymbol(pos + 1)) || punctOrSymbol(pos) {
                // ' ?[\p{P}\p{S}]+[\r\n]*'
                var j = a == 0x20 ? pos + 1 : pos
                while punctOrSymbol(j) { j += 1 }
                while newline(j) { j += 1 }
                end = j
            } else if space(pos) {
                var e = pos
                var lastNewline = -1
                while space(e) { if newline(e) { lastNewline = e }; e += 1 }
                if lastNewline >= 0 {
                    end = lastNewline + 1  // \s*[\r\n]+
                } else if e == hi {
                    end = e  // \s+(?!\S) at the end
                } else {
                    end = e - pos > 1 ? e - 1 : e  // \s+(?!\S), else \s+
                }
            }
            if let end {
                emit(pos)
                emit(end)
                pos = end
            } else {
                pos += 1
            }
        }
        emit(hi)
    }

    /// Simple lowercase mapping for the contraction check (only ASCII letters matter there).
    static func lower(_ cp: UInt32) -> UInt32 {
        if cp >= 0x41 && cp <= 0x5A { return cp + 32 }
        if cp < 128 { return cp }
        guard let s = Unicode.Scalar(cp), let l = s.properties.lowercaseMapping.unicodeScalars.first,
              s.properties.lowercaseMapping.unicodeScalars.count == 1 else { return cp }
        return l.value
    }

    /// The letter and punctuation classes of DeepSeek LLM's pre-tokenizer, copied from llama.cpp's regexes code point
    /// by code point as escapes. Written as characters they do not survive Unicode normalization: the Ohm and Kelvin
    /// signs and the Greek letters with oxia become other code points, so that `K-ℭ` took in `_` and `|`, and a
    /// range whose end fell below its start became literal characters, `-` among them.
    static let deepseekLetters: [ClosedRange<UInt32>] = ranges(
        "A-Za-z\u{B5}\u{C0}-\u{D6}\u{D8}-\u{F6}\u{F8}-\u{1BA}\u{1BC}-\u{1BF}\u{1C4}-\u{293}\u{295}-\u{2AF}"
        + "\u{370}-\u{373}\u{376}\u{377}\u{37B}-\u{37D}\u{37F}\u{386}\u{388}-\u{38A}\u{38C}\u{38E}-\u{3A1}"
        + "\u{3A3}-\u{3F5}\u{3F7}-\u{481}\u{48A}-\u{52F}\u{531}-\u{556}\u{10A0}-\u{10C5}\u{13A0}-\u{13F5}"
        + "\u{13F8}-\u{13FD}\u{1C90}-\u{1CBA}\u{1CBD}-\u{1CBF}\u{1D00}-\u{1D2B}\u{1D6B}-\u{1D77}"
        + "\u{1D79}-\u{1D9A}\u{1E00}-\u{1F15}\u{1F18}-\u{1F1D}\u{1F20}-\u{1F45}\u{1F48}-\u{1F4D}"
        + "\u{1F50}-\u{1F57}\u{1F59}\u{1F5B}\u{1F5D}\u{1F5F}-\u{1F7D}\u{1F80}-\u{1FB4}\u{1FB6}-\u{1FBC}\u{1FBE}"
        + "\u{1FC2}-\u{1FC4}\u{1FC6}-\u{1FCC}\u{1FD0}-\u{1FD3}\u{1FD6}-\u{1FDB}\u{1FE0}-\u{1FEC}"
        + "\u{1FF2}-\u{1FF4}\u{1FF6}-\u{1FFC}\u{2102}\u{2107}\u{210A}-\u{2113}\u{2115}\u{2119}-\u{211D}\u{2124}"
        + "\u{2126}\u{2128}\u{212A}-\u{212D}\u{212F}-\u{2134}\u{2139}\u{213C}-\u{213F}\u{2145}-\u{2149}\u{214E}"
        + "\u{2183}\u{2184}\u{2C00}-\u{2C7B}\u{2C7E}-\u{2CE4}\u{2CEB}-\u{2CEE}\u{2CF2}\u{2CF3}\u{A640}-\u{A66D}"
        + "\u{A680}-\u{A69B}\u{A722}-\u{A76F}\u{A771}-\u{A787}\u{A78B}-\u{A78E}\u{AB70}-\u{ABBF}"
        + "\u{FB00}-\u{FB06}\u{FB13}-\u{FB17}\u{FF21}-\u{FF3A}\u{FF41}-\u{FF5A}\u{10400}-\u{1044F}"
        + "\u{104B0}-\u{104D3}\u{104D8}-\u{104FB}\u{10C80}-\u{10CB2}\u{10CC0}-\u{10CF2}\u{118A0}-\u{118DF}"
        + "\u{1E900}-\u{1E943}")
    static let deepseekPunctuation: [ClosedRange<UInt32>] = ranges("!-/:-~\u{FF01}-\u{FF0F}\u{FF1A}-\u{FF5E}\u{2018}-\u{201F}\u{3000}-\u{3002}")

    /// Parses a regex character-class body (`a-zA-Z_`) into code point ranges.
    static func ranges(_ body: String) -> [ClosedRange<UInt32>] {
        let s = Array(body.unicodeScalars).map(\.value)
        var out: [ClosedRange<UInt32>] = []
        var i = 0
        while i < s.count {
            if i + 2 < s.count && s[i + 1] == 0x2D && s[i] <= s[i + 2] {
                out.append(s[i]...s[i + 2]); i += 3
            } else {
                out.append(s[i]...s[i]); i += 1
            }
        }
        return out
    }
}
