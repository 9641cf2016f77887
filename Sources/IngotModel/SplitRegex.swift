/// A pre-tokenizer pattern run as llama.cpp runs the patterns it has no hand-written splitter for
/// (`unicode_regex_split` in unicode.cpp): an ECMAScript regular expression searched by `std::regex_iterator` over
/// each piece, every match a piece and every gap between matches another.
///
/// llama.cpp's std::regex knows nothing of Unicode categories, so a pattern that names one (`\p{L}`, `\p{N}`,
/// `\p{P}`, `\p{S}`, `\p{M}`, and `\p{Lu}`, `\p{Ll}`, `\p{Lt}`, `\p{Lm}`, `\p{Lo}`, which all mean letters) runs over
/// a *collapsed* text: ASCII stays itself, whitespace beyond ASCII becomes U+000B, and every other code point
/// becomes one byte naming its category (0xD1 number, 0xD2 letter, 0xD3 punctuation, 0xD4 mark, 0xD5 symbol, 0xD0
/// anything else); each `\p{X}` in the pattern becomes a class of that byte and the category's ASCII members. A
/// pattern without categories runs over the code points themselves, non-ASCII whitespace again as U+000B. The
/// consequences are part of the tokenizer: `[^a-z]` in a collapsed pattern takes in every non-ASCII letter, and
/// `\p{Lu}` is every letter. Ingot follows them so that the pieces, and so the ids, are llama.cpp's.
///
/// The engine is a backtracking matcher with ECMAScript's leftmost, first-alternative semantics (what libstdc++'s
/// std::regex does): alternation, groups, lookahead, greedy and lazy quantifiers, classes, `^`, `$`, `\b`.
public struct SplitRegex: Sendable, Equatable {
    /// The pattern as llama-vocab.cpp writes it.
    public let source: String
    /// Whether it runs over the collapsed text (it names a Unicode category).
    public let collapsed: Bool
    let program: Program

    public static func == (a: SplitRegex, b: SplitRegex) -> Bool { a.source == b.source }

    /// The category escapes llama.cpp rewrites, and the byte each stands for.
    static let categories: [(String, UInt32)] = [
        ("\\p{N}", 0xD1), ("\\p{L}", 0xD2), ("\\p{P}", 0xD3), ("\\p{M}", 0xD4), ("\\p{S}", 0xD5),
        ("\\p{Lu}", 0xD2), ("\\p{Ll}", 0xD2), ("\\p{Lt}", 0xD2), ("\\p{Lm}", 0xD2), ("\\p{Lo}", 0xD2),
    ]
    /// The ASCII members of each category in llama.cpp's collapsed patterns (`k_ucat_map`).
    static let asciiMembers: [UInt32: String] = [
        0xD1: "0-9",
        0xD2: "A-Za-z",
        0xD3: "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}",
        0xD4: "",
        0xD5: "\\$\\+<->^`\\|\\~",
    ]

    public init(_ source: String) throws {
        self.source = source
        collapsed = SplitRegex.categories.contains { source.contains($0.0) }
        var parser = Parser(units: Array((collapsed ? try SplitRegex.collapse(source) : source).unicodeScalars.map(\.value)),
                            source: source, wide: !collapsed)
        program = try parser.compile()
    }

    /// llama.cpp's rewriting of a pattern for the collapsed text: each category becomes its byte and its ASCII
    /// members, bracketed unless already inside a class.
    static func collapse(_ pattern: String) throws -> String {
        let s = Array(pattern.unicodeScalars)
        if let wide = s.first(where: { $0.value >= 128 }) {
            throw SplitRegexError(pattern: pattern, detail: "categories and the non-ASCII character U+\(String(wide.value, radix: 16, uppercase: true)) together")
        }
        var out = String.UnicodeScalarView()
        var inside = false
        var i = 0
        while i < s.count {
            let c = s[i]
            if c == "[" && (i == 0 || s[i - 1] != "\\") {
                out.append(c); inside = true; i += 1; continue
            }
            if inside && c == "]" && s[i - 1] != "\\" {
                out.append(c); inside = false; i += 1; continue
            }
            if c == "\\" && i + 3 < s.count && s[i + 1] == "p" && s[i + 2] == "{",
               let close = s[(i + 3)...].firstIndex(of: "}"), close <= i + 10 {
                let name = String(String.UnicodeScalarView(s[i...close]))
                if let (_, byte) = categories.first(where: { $0.0 == name }) {
                    if !inside { out.append("[") }
                    out.append(Unicode.Scalar(byte)!)
                    out.append(contentsOf: asciiMembers[byte]!.unicodeScalars)
                    if !inside { out.append("]") }
                    i = close + 1
                    continue
                }
            }
            out.append(c)
            i += 1
        }
        return String(out)
    }

    /// The unit llama.cpp's regex sees for each code point.
    static func units(_ cps: [UInt32], _ cls: [CodepointClass], collapsed: Bool) -> [UInt32] {
        var u = [UInt32](repeating: 0, count: cps.count)
        for i in 0..<cps.count {
            let cp = cps[i]
            if cp < 128 { u[i] = cp; continue }
            let c = cls[i]
            if c.contains(.whitespace) { u[i] = 0x0B; continue }
            if !collapsed { u[i] = cp; continue }
            u[i] = c.contains(.number) ? 0xD1 : c.contains(.letter) ? 0xD2 : c.contains(.punctuation) ? 0xD3
                : c.contains(.mark) ? 0xD4 : c.contains(.symbol) ? 0xD5 : 0xD0
        }
        return u
    }

    /// Cuts [lo, hi) of `units` as std::regex_iterator does, appending piece lengths (an empty match adds nothing,
    /// as an empty piece yields no tokens).
    func split(_ units: [UInt32], _ lo: Int, _ hi: Int, _ emit: (Int) -> Void) {
        var from = lo
        var notNullAt: Int? = nil
        var stack: [(Int, Int)] = []
        while from <= hi {
            var found: (Int, Int)? = nil
            if let p = notNullAt {
                // After an empty match, std::regex_iterator first looks for a non-empty match at the same place.
                if let end = program.match(units, p, lo, hi, notNull: true, &stack) { found = (p, end) }
                notNullAt = nil
                if found == nil { from = p + 1; if from > hi { break } }
            }
            if found == nil {
                var p = from
                while p <= hi {
                    // A position whose unit cannot begin a match is passed over without running the program.
                    if program.canStart(p < hi ? units[p] : nil), let end = program.match(units, p, lo, hi, notNull: false, &stack) {
                        found = (p, end)
                        break
                    }
                    p += 1
                }
            }
            guard let (s, e) = found else { break }
            emit(s)
            emit(e)
            if e == s { notNullAt = e } else { from = e }
        }
        emit(hi)
    }
}

public struct SplitRegexError: Error, CustomStringConvertible, Sendable {
    public var pattern: String
    public var detail: String
    public var description: String { "pre-tokenizer pattern \(pattern): \(detail)" }
}

/// A set of units: a bitmap for the first 256, ranges above.
struct UnitSet: Sendable {
    var low: [UInt64] = [0, 0, 0, 0]
    var high: [ClosedRange<UInt32>] = []
    var negated = false
    /// `\w` beyond ASCII in a pattern over code points (glibc's classes: letters and numbers).
    var wideWord = false

    mutating func insert(_ r: ClosedRange<UInt32>) {
        if r.lowerBound < 256 {
            for u in r.lowerBound...min(r.upperBound, 255) { low[Int(u >> 6)] |= 1 << UInt64(u & 63) }
        }
        if r.upperBound >= 256 { high.append(max(r.lowerBound, 256)...r.upperBound) }
    }

    func contains(_ u: UInt32) -> Bool {
        var hit: Bool
        if u < 256 {
            hit = low[Int(u >> 6)] & (1 << UInt64(u & 63)) != 0
        } else {
            hit = high.contains { $0.contains(u) }
        }
        if !hit && wideWord && u >= 128 { hit = !CodepointClass.of(u).isDisjoint(with: [.letter, .number]) }
        return hit != negated
    }
}

/// The compiled pattern: instructions for a backtracking matcher, and the programs of its lookaheads.
struct Program: Sendable {
    enum Inst: Sendable {
        case unit(Int)                   // one unit of sets[i]
        case split(Int, Int)             // try the first, on failure the second
        case jump(Int)
        case look(Int, negative: Bool)   // subprograms[i] matches here (or not), consuming nothing
        case begin, end                  // ^ $
        case boundary(Bool)              // \b (true) \B (false)
        case match
    }
    var code: [Inst]
    var sets: [UnitSet]
    var subprograms: [Program]
    /// The sets a match can begin with, or nil where the pattern can match without consuming (then every position
    /// is tried).
    var firstSets: [Int]?
    /// The union of `firstSets` below 256.
    var firstLow: [UInt64] = [0, 0, 0, 0]

    init(code: [Inst], sets: [UnitSet], subprograms: [Program]) {
        self.code = code
        self.sets = sets
        self.subprograms = subprograms
        // Follow the instructions that consume nothing from the start; every unit instruction reached is a way in.
        var seen = Set<Int>()
        var todo = [0]
        var first: [Int]? = []
        while let pc = todo.popLast(), first != nil {
            guard seen.insert(pc).inserted else { continue }
            switch code[pc] {
            case .unit(let s): first!.append(s)
            case .split(let a, let b): todo += [a, b]
            case .jump(let a): todo.append(a)
            case .look, .begin, .end, .boundary: todo.append(pc + 1)
            case .match: first = nil
            }
        }
        firstSets = first
        for s in first ?? [] {
            for u: UInt32 in 0..<256 where sets[s].contains(u) { firstLow[Int(u >> 6)] |= 1 << UInt64(u & 63) }
        }
    }

    /// Whether a match can begin at a position holding `unit` (nil: the end of the piece).
    func canStart(_ unit: UInt32?) -> Bool {
        guard let firstSets else { return true }
        guard let u = unit else { return false }
        if u < 256 { return firstLow[Int(u >> 6)] & (1 << UInt64(u & 63)) != 0 }
        return firstSets.contains { sets[$0].contains(u) }
    }

    func isWord(_ u: UInt32) -> Bool {
        (0x30...0x39).contains(u) || (0x41...0x5A).contains(u) || (0x61...0x7A).contains(u) || u == 0x5F
    }

    /// The end of the first match that starts at `at` (ECMAScript priority), or nil.
    /// `stack` is scratch space shared with the lookaheads this match runs: each uses the part above what it found.
    func match(_ units: [UInt32], _ at: Int, _ lo: Int, _ hi: Int, notNull: Bool, _ stack: inout [(Int, Int)]) -> Int? {
        let base = stack.count
        defer { stack.removeSubrange(base...) }
        stack.append((0, at))
        while stack.count > base {
            let (pc0, pos0) = stack.removeLast()
            var pc = pc0
            var pos = pos0
            run: while true {
                switch code[pc] {
                case .unit(let s):
                    guard pos < hi, sets[s].contains(units[pos]) else { break run }
                    pc += 1; pos += 1
                case .split(let a, let b):
                    stack.append((b, pos)); pc = a
                case .jump(let a):
                    pc = a
                case .look(let i, let negative):
                    guard (subprograms[i].match(units, pos, lo, hi, notNull: false, &stack) != nil) != negative else { break run }
                    pc += 1
                case .begin:
                    guard pos == lo else { break run }
                    pc += 1
                case .end:
                    guard pos == hi else { break run }
                    pc += 1
                case .boundary(let want):
                    let before = pos > lo && isWord(units[pos - 1])
                    let after = pos < hi && isWord(units[pos])
                    guard (before != after) == want else { break run }
                    pc += 1
                case .match:
                    if notNull && pos == at { break run }
                    return pos
                }
            }
        }
        return nil
    }
}

/// A recursive-descent parser of the ECMAScript subset the pre-tokenizer patterns use, emitting `Program` code.
private struct Parser {
    let units: [UInt32]
    let source: String
    /// Over code points rather than the collapsed text (`\w` then takes in non-ASCII letters and numbers).
    let wide: Bool
    var i = 0
    var sets: [UnitSet] = []
    var subprograms: [Program] = []

    init(units: [UInt32], source: String, wide: Bool) {
        self.units = units
        self.source = source
        self.wide = wide
    }

    func fail(_ detail: String) -> SplitRegexError { SplitRegexError(pattern: source, detail: detail + " at \(i)") }

    var peek: UInt32? { i < units.count ? units[i] : nil }

    mutating func compile() throws -> Program {
        let node = try alternation()
        guard i == units.count else { throw fail("unexpected ')'") }
        var code: [Program.Inst] = []
        emit(node, into: &code)
        code.append(.match)
        return Program(code: code, sets: sets, subprograms: subprograms)
    }

    // The parse tree, small enough to copy into code once per repetition.
    indirect enum Node {
        case set(Int)
        case seq([Node])
        case alt([Node])
        case rep(Node, min: Int, max: Int?, greedy: Bool)
        case look(Int, negative: Bool)
        case begin, end
        case boundary(Bool)

        var nullable: Bool {
            switch self {
            case .set: return false
            case .seq(let xs): return xs.allSatisfy(\.nullable)
            case .alt(let xs): return xs.contains(where: \.nullable)
            case .rep(let x, let min, _, _): return min == 0 || x.nullable
            case .look, .begin, .end, .boundary: return true
            }
        }
    }

    mutating func alternation() throws -> Node {
        var branches = [try sequence()]
        while peek == 0x7C { i += 1; branches.append(try sequence()) }
        return branches.count == 1 ? branches[0] : .alt(branches)
    }

    mutating func sequence() throws -> Node {
        var items: [Node] = []
        while let c = peek, c != 0x7C, c != 0x29 {
            var atom = try self.atom()
            atom = try quantified(atom)
            items.append(atom)
        }
        return .seq(items)
    }

    mutating func quantified(_ atom: Node) throws -> Node {
        guard let c = peek else { return atom }
        var min = 0
        var max: Int? = nil
        switch c {
        case 0x2A: i += 1                       // *
        case 0x2B: i += 1; min = 1              // +
        case 0x3F: i += 1; max = 1              // ?
        case 0x7B:                              // {n}, {n,}, {n,m}
            let save = i
            i += 1
            guard let n = number() else { i = save; return atom }
            min = n
            max = n
            if peek == 0x2C {
                i += 1
                max = number()
            }
            guard peek == 0x7D else { throw fail("unterminated repetition") }
            i += 1
            if let m = max, m < min { throw fail("repetition {\(min),\(m)}") }
            guard min <= 1000, (max ?? 0) <= 1000 else { throw fail("repetition over 1000") }
        default:
            return atom
        }
        var greedy = true
        if peek == 0x3F { i += 1; greedy = false }
        switch atom {
        case .look, .begin, .end, .boundary: throw fail("a quantified assertion")
        default: break
        }
        if (max == nil || max! > 1) && atom.nullable { throw fail("a repeated expression that can match nothing") }
        return .rep(atom, min: min, max: max, greedy: greedy)
    }

    mutating func number() -> Int? {
        var n: Int? = nil
        while let c = peek, (0x30...0x39).contains(c) {
            n = (n ?? 0) * 10 + Int(c - 0x30)
            if n! > 100_000 { return n }
            i += 1
        }
        return n
    }

    mutating func addSet(_ s: UnitSet) -> Node {
        sets.append(s)
        return .set(sets.count - 1)
    }

    mutating func atom() throws -> Node {
        let c = units[i]
        i += 1
        switch c {
        case 0x28: // (
            var look: Bool? = nil
            if peek == 0x3F {
                guard i + 1 < units.count else { throw fail("unterminated group") }
                switch units[i + 1] {
                case 0x3A: look = nil
                case 0x3D: look = false
                case 0x21: look = true
                default: throw fail("unsupported group (?\(Character(Unicode.Scalar(units[i + 1]) ?? "?"))")
                }
                i += 2
            }
            let inner = try alternation()
            guard peek == 0x29 else { throw fail("unterminated group") }
            i += 1
            if let negative = look {
                var code: [Program.Inst] = []
                emit(inner, into: &code)
                code.append(.match)
                subprograms.append(Program(code: code, sets: sets, subprograms: subprograms))
                return .look(subprograms.count - 1, negative: negative)
            }
            return inner
        case 0x5B: return addSet(try bracket())
        case 0x2E: // . : anything but \n and \r
            var s = UnitSet()
            s.insert(0x0A...0x0A); s.insert(0x0D...0x0D); s.negated = true
            return addSet(s)
        case 0x5E: return .begin
        case 0x24: return .end
        case 0x5C: // \
            guard let e = peek else { throw fail("a trailing backslash") }
            i += 1
            switch e {
            case 0x62: return .boundary(true)
            case 0x42: return .boundary(false)
            default:
                if let s = classEscape(e) { return addSet(s) }
                var s = UnitSet()
                let u = try escapedUnit(e)
                s.insert(u...u)
                return addSet(s)
            }
        case 0x29, 0x7C: throw fail("unexpected character")
        case 0x2A, 0x2B, 0x3F: throw fail("nothing to repeat")
        default:
            var s = UnitSet()
            s.insert(c...c)
            return addSet(s)
        }
    }

    /// `\s \S \d \D \w \W` as sets (ASCII: std::regex in the C locale; non-ASCII whitespace is already U+000B).
    func classEscape(_ e: UInt32) -> UnitSet? {
        var s = UnitSet()
        switch e {
        case 0x73, 0x53: s.insert(0x09...0x0D); s.insert(0x20...0x20)
        case 0x64, 0x44: s.insert(0x30...0x39)
        case 0x77, 0x57: s.insert(0x30...0x39); s.insert(0x41...0x5A); s.insert(0x61...0x7A); s.insert(0x5F...0x5F)
            s.wideWord = wide
        default: return nil
        }
        s.negated = e < 0x60
        return s
    }

    /// The unit an escape outside the class shorthands stands for.
    mutating func escapedUnit(_ e: UInt32) throws -> UInt32 {
        switch e {
        case 0x6E: return 0x0A
        case 0x72: return 0x0D
        case 0x74: return 0x09
        case 0x66: return 0x0C
        case 0x76: return 0x0B
        case 0x30: return 0
        case 0x78, 0x75:
            let n = e == 0x78 ? 2 : 4
            guard i + n <= units.count else { throw fail("a short \\x or \\u escape") }
            var v: UInt32 = 0
            for _ in 0..<n {
                guard let d = hexDigit(units[i]) else { throw fail("a bad hex escape") }
                v = v * 16 + d
                i += 1
            }
            return v
        default:
            if (0x41...0x5A).contains(e) || (0x61...0x7A).contains(e) || (0x31...0x39).contains(e) {
                throw fail("unsupported escape \\\(Character(Unicode.Scalar(e)!))")
            }
            return e
        }
    }

    func hexDigit(_ u: UInt32) -> UInt32? {
        switch u {
        case 0x30...0x39: return u - 0x30
        case 0x41...0x46: return u - 0x41 + 10
        case 0x61...0x66: return u - 0x61 + 10
        default: return nil
        }
    }

    /// A bracket expression, after its `[`.
    mutating func bracket() throws -> UnitSet {
        var s = UnitSet()
        var parts = UnitSet()
        var negatedClasses: [UnitSet] = []
        if peek == 0x5E { s.negated = true; i += 1 }
        while true {
            guard let c = peek else { throw fail("unterminated class") }
            i += 1
            if c == 0x5D { break }  // ECMAScript: `]` always closes, `[]` is empty
            var lowUnit: UInt32
            if c == 0x5C {
                guard let e = peek else { throw fail("unterminated class") }
                i += 1
                if let cls = classEscape(e) {
                    if cls.negated { negatedClasses.append(cls) } else { merge(cls, into: &parts) }
                    continue
                }
                lowUnit = e == 0x62 ? 0x08 : try escapedUnit(e)
            } else {
                lowUnit = c
            }
            // A range a-b (a '-' before ']' is literal).
            if peek == 0x2D, i + 1 < units.count, units[i + 1] != 0x5D {
                i += 1
                var high = units[i]
                i += 1
                if high == 0x5C {
                    guard let e = peek else { throw fail("unterminated class") }
                    i += 1
                    if classEscape(e) != nil { throw fail("a range ending in a class") }
                    high = e == 0x62 ? 0x08 : try escapedUnit(e)
                }
                guard lowUnit <= high else { throw fail("a range out of order") }
                parts.insert(lowUnit...high)
            } else {
                parts.insert(lowUnit...lowUnit)
            }
        }
        // Negated shorthands inside a class ([\S...]) are rare; they take in everything outside their ASCII set.
        for n in negatedClasses {
            for w in 0..<4 { parts.low[w] |= ~n.low[w] }
            parts.high.append(256...UInt32.max)
        }
        s.low = parts.low
        s.high = parts.high
        s.wideWord = parts.wideWord
        return s
    }

    func merge(_ a: UnitSet, into s: inout UnitSet) {
        for w in 0..<4 { s.low[w] |= a.low[w] }
        s.high += a.high
        s.wideWord = s.wideWord || a.wideWord
    }

    /// Emits code for `node`.
    func emit(_ node: Node, into code: inout [Program.Inst]) {
        switch node {
        case .set(let s): code.append(.unit(s))
        case .seq(let xs):
            for k in xs.indices { emit(xs[k], into: &code) }
        case .alt(let xs):
            // split L1, next; L1: x0; jump end; next: split L2, next2; ...
            var jumps: [Int] = []
            for k in xs.indices {
                if k < xs.count - 1 {
                    let split = code.count
                    code.append(.split(split + 1, -1))
                    emit(xs[k], into: &code)
                    jumps.append(code.count)
                    code.append(.jump(-1))
                    code[split] = .split(split + 1, code.count)
                } else {
                    emit(xs[k], into: &code)
                }
            }
            for j in jumps { code[j] = .jump(code.count) }
        case .rep(let x, let min, let max, let greedy):
            for _ in 0..<min { emit(x, into: &code) }
            if let max {
                // (x(x(x)?)?)? for the optional copies
                var holes: [Int] = []
                for _ in min..<max {
                    holes.append(code.count)
                    code.append(.split(-1, -1))
                    emit(x, into: &code)
                }
                for h in holes { code[h] = greedy ? .split(h + 1, code.count) : .split(code.count, h + 1) }
            } else {
                let top = code.count
                code.append(.split(-1, -1))
                emit(x, into: &code)
                code.append(.jump(top))
                code[top] = greedy ? .split(top + 1, code.count) : .split(code.count, top + 1)
            }
        case .look(let k, let negative): code.append(.look(k, negative: negative))
        case .begin: code.append(.begin)
        case .end: code.append(.end)
        case .boundary(let b): code.append(.boundary(b))
        }
    }
}
