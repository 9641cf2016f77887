#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IngotFormats

/// A model's tokenizer, read from GGUF `tokenizer.ggml.*` (or a Hugging Face `tokenizer.json`), producing the same
/// ids as llama.cpp's `llama_tokenize` (llama-vocab.cpp):
///
/// - `gpt2` (byte-level BPE): special tokens are cut out first, the rest is pre-tokenized by the patterns
///   `tokenizer.ggml.pre` names, each piece's UTF-8 bytes are mapped to the printable byte alphabet of GPT-2, and
///   pairs are merged lowest `tokenizer.ggml.merges` rank first (leftmost on ties).
/// - `llama` (SentencePiece BPE): spaces become U+2581, a space is prefixed after a special token or at the start,
///   and pairs whose concatenation is a token merge highest `tokenizer.ggml.scores` first; characters no token
///   covers fall back to `<0xXX>` byte tokens.
public final class Tokenizer: @unchecked Sendable {
    public enum Kind: String, Sendable { case bpe = "gpt2", spm = "llama" }

    /// GGUF `tokenizer.ggml.token_type` values.
    public enum TokenType: Int32, Sendable {
        case undefined = 0, normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    public let kind: Kind
    public let preTokenizer: PreTokenizer?
    /// Token texts as stored (byte-level alphabet for BPE, U+2581 for spaces in SentencePiece).
    public let tokens: [[UInt8]]
    public let types: [TokenType]
    let scores: [Float]
    let ids: [[UInt8]: Int32]
    /// BPE merges keyed by (left id << 32 | right id): the merge rank and the merged token.
    let merges: [UInt64: (rank: Int32, id: Int32)]
    /// The token of each byte: its byte-level character (BPE) or `<0xXX>` (SentencePiece); -1 where none.
    let byteTokens: [Int32]
    /// No token holds a U+2581 after another character, so SentencePiece words merge independently.
    let wordsMergeAlone: Bool
    public let bos: Int32?
    public let eos: Int32?
    public let addsBOS: Bool
    public let addsEOS: Bool
    public let spacePrefix: SpacePrefix
    /// How a tokenizer.json's BPE model covers a character no token holds (nil: llama.cpp's way, each byte's
    /// `<0xXX>` token that exists).
    let unknownRule: UnknownRule?
    /// Special tokens strip Unicode whitespace next to them (tokenizer.json), not only C's `isspace` (llama.cpp).
    let unicodeStrip: Bool
    /// Tokens cut out of the text before tokenizing (control, user-defined and unknown), longest first; user-defined
    /// ones that are neither control nor unknown are cut out even when special tokens are not parsed (`alwaysCut`).
    let specials: [(id: Int32, text: [UInt8], alwaysCut: Bool, lstrip: Bool, rstrip: Bool)]

    public var vocabularySize: Int { tokens.count }

    /// Read from a SentencePiece-style BPE tokenizer.json (spaces as U+2581, merges over characters): the tokenizer a
    /// GGUF holds as a SentencePiece (`llama`) vocabulary.
    public var isSentencePieceBPE: Bool { unknownRule != nil }

    /// Where a text fragment (the text between two special tokens) gets a leading space, written U+2581, before
    /// SentencePiece-style tokenizing.
    public enum SpacePrefix: Sendable, Equatable {
        case never
        /// Every fragment, whatever it starts with: llama.cpp's `add_space_prefix` (at the start of the text and after
        /// every special token), and a tokenizer.json's `Prepend` normalizer.
        case everyFragment
        /// A tokenizer.json's `Metaspace` pre-tokenizer: a fragment that does not already start with a space, every
        /// one (`prepend_scheme` "always") or only one that starts the text ("first").
        case unlessSpace(firstOnly: Bool)
    }

    /// A tokenizer.json BPE model's rule for a character no token holds: its bytes' `<0xXX>` tokens where
    /// `byteFallback` holds and all exist, else the unknown token (nothing without one), runs of them as one where
    /// `fuse` holds.
    struct UnknownRule: Sendable {
        var byteFallback: Bool
        var unknown: Int32?
        var fuse: Bool
    }

    init(kind: Kind, preTokenizer: PreTokenizer?, tokens: [[UInt8]], types: [TokenType], scores: [Float],
         merges mergeList: [[UInt8]], bos: Int32?, eos: Int32?, addsBOS: Bool, addsEOS: Bool, spacePrefix: SpacePrefix,
         unknownRule: UnknownRule? = nil, unicodeStrip: Bool = false, roles: [SpecialRole: Int32] = [:],
         stripRule: (Int32, [UInt8]) -> (lstrip: Bool, rstrip: Bool) = { _, _ in (false, false) }) {
        self.kind = kind
        self.preTokenizer = preTokenizer
        self.tokens = tokens
        self.types = types
        self.scores = scores
        var ids: [[UInt8]: Int32] = [:]
        ids.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() { ids[t] = Int32(i) }
        self.ids = ids
        var merges: [UInt64: (rank: Int32, id: Int32)] = [:]
        merges.reserveCapacity(mergeList.count)
        for (rank, m) in mergeList.enumerated() {
            // "left right": split at the first space after the first byte (a merge may start with a space char).
            guard m.count > 2, let sp = m[1...].firstIndex(of: 0x20) else { continue }
            let l = Array(m[..<sp]), r = Array(m[(sp + 1)...])
            guard let li = ids[l], let ri = ids[r], let mi = ids[l + r] else { continue }
            let key = UInt64(UInt32(li)) << 32 | UInt64(UInt32(ri))
            if merges[key] == nil { merges[key] = (Int32(rank), mi) }
        }
        self.merges = merges
        var byteTokens = [Int32](repeating: -1, count: 256)
        for b in 0..<256 {
            switch kind {
            case .bpe where preTokenizer?.rawUTF8 != true: byteTokens[b] = ids[Tokenizer.byteLevelChar[b]] ?? -1
            case .bpe:
                byteTokens[b] = ids[Tokenizer.byteTokenText(b)] ?? -1
            case .spm:
                byteTokens[b] = ids[Tokenizer.byteTokenText(b)] ?? ids[[UInt8(b)]] ?? -1
            }
        }
        self.byteTokens = byteTokens
        wordsMergeAlone = !tokens.contains(where: Tokenizer.joinsWords)
        self.bos = bos
        self.eos = eos
        self.addsBOS = addsBOS
        self.addsEOS = addsEOS
        self.spacePrefix = spacePrefix
        self.unknownRule = unknownRule
        self.unicodeStrip = unicodeStrip
        let attributes = TokenAttributes.resolve(tokens: tokens, types: types, ids: ids, roles: roles, eos: eos)
        var specials: [(id: Int32, text: [UInt8], alwaysCut: Bool, lstrip: Bool, rstrip: Bool)] = []
        for (i, a) in attributes.enumerated() where !a.isDisjoint(with: [.control, .userDefined, .unknown]) {
            let strip = stripRule(Int32(i), tokens[i])
            specials.append((Int32(i), tokens[i], a.isDisjoint(with: [.control, .unknown]), strip.lstrip, strip.rstrip))
        }
        // Longest first; equal lengths keep id order.
        self.specials = specials.enumerated().sorted {
            $0.element.text.count != $1.element.text.count ? $0.element.text.count > $1.element.text.count : $0.offset < $1.offset
        }.map(\.element)
    }

    // MARK: reading

    /// Reads `tokenizer.ggml.*` from a GGUF file.
    public convenience init(gguf g: GGUFFile) throws {
        try self.init(metadata: g.metadata, path: g.path)
    }

    /// Reads `tokenizer.ggml.*` from GGUF key-value pairs: a file's, or those a converter would write for a folder's
    /// tokenizer files.
    public convenience init(metadata: [GGUFKeyValue], path: String) throws {
        var index: [String: Int] = [:]
        for (i, kv) in metadata.enumerated() where index[kv.key] == nil { index[kv.key] = i }
        let g = MetadataLookup(pairs: metadata, index: index, path: path)
        func kv(_ key: String) -> GGUFKeyValue? { index[key].map { metadata[$0] } }
        func fail(_ code: ModelError.Code, _ key: String, _ detail: String) -> ModelError {
            ModelError(code, field: key, offset: kv(key)?.fileOffset, detail, path: g.path)
        }
        guard let modelName = g["tokenizer.ggml.model"]?.stringValue else {
            throw ModelError(.missingField, field: "tokenizer.ggml.model", "the file has no tokenizer", path: g.path)
        }
        let kind: Kind
        switch modelName {
        // Gemma 4's BPE over raw UTF-8 is a model of its own in GGUF, whose pre-tokenizer is always "gemma4".
        case "gpt2", "gemma4": kind = .bpe
        case "llama": kind = .spm
        default:
            throw fail(.unsupportedTokenizer, "tokenizer.ggml.model",
                       "tokenizer model '\(modelName)' is not supported (gpt2, gemma4 and llama are)")
        }
        guard case .array(.string(let list))? = g["tokenizer.ggml.tokens"] else {
            throw fail(.missingField, "tokenizer.ggml.tokens", "an array of strings is required")
        }
        let n = list.count
        var tokens = list.map(\.bytes)
        for i in 0..<n where tokens[i].isEmpty { tokens[i] = Array("[EMPTY_\(i)]".utf8) }
        var types = [TokenType](repeating: .normal, count: n)
        if let v = g["tokenizer.ggml.token_type"] {
            guard case .array(.int32(let t)) = v, t.count >= n else {
                throw fail(.invalidValue, "tokenizer.ggml.token_type", "an int32 array with one entry per token is required")
            }
            for i in 0..<n { types[i] = TokenType(rawValue: t[i]) ?? .undefined }
        }
        var scores = [Float](repeating: 0, count: n)
        if let v = g["tokenizer.ggml.scores"] {
            switch v {
            case .array(.float32(let s)) where s.count >= n: scores = Array(s[..<n])
            case .array(.int32(let s)) where s.count >= n: scores = s[..<n].map(Float.init)
            default: throw fail(.invalidValue, "tokenizer.ggml.scores", "a float32 array with one entry per token is required")
            }
        }
        var merges: [[UInt8]] = []
        var pre: PreTokenizer?
        var addsBOS = kind == .spm
        var bos: Int32? = kind == .spm ? 1 : modelName == "gemma4" ? nil : 11
        var eos: Int32? = kind == .spm ? 2 : modelName == "gemma4" ? nil : 11
        if kind == .bpe {
            switch g["tokenizer.ggml.merges"] {
            case .array(.string(let m))?: merges = m.map(\.bytes)
            case .array(let a)? where a.count == 0: merges = []
            default: throw fail(.missingField, "tokenizer.ggml.merges", "a gpt2 tokenizer needs its merges (an array of strings)")
            }
            let preName = modelName == "gemma4" ? "gemma4" : g["tokenizer.ggml.pre"]?.stringValue ?? "default"
            guard let p = PreTokenizer(named: preName) else {
                throw fail(.unsupportedTokenizer, "tokenizer.ggml.pre", "pre-tokenizer '\(preName)' is not supported")
            }
            pre = p
            addsBOS = p.addsBOSByDefault
        }
        func id(_ key: String, _ fallback: Int32?) -> Int32? {
            guard let v = g[key]?.intValue else { return fallback.flatMap { $0 < n ? $0 : nil } }
            return v >= 0 && v < n ? Int32(v) : fallback.flatMap { $0 < n ? $0 : nil }
        }
        bos = id("tokenizer.ggml.bos_token_id", bos)
        eos = id("tokenizer.ggml.eos_token_id", eos)
        if let b = g["tokenizer.ggml.add_bos_token"]?.boolValue { addsBOS = b }
        if pre?.forcesBOS == true { addsBOS = true }
        let addsEOS = g["tokenizer.ggml.add_eos_token"]?.boolValue ?? false
        if addsBOS && bos == nil {
            throw fail(.invalidValue, "tokenizer.ggml.bos_token_id", "the tokenizer adds BOS but names no BOS token")
        }
        let spacePrefix: SpacePrefix = g["tokenizer.ggml.add_space_prefix"]?.boolValue ?? (kind == .spm) ? .everyFragment : .never
        var roles: [SpecialRole: Int32] = [:]
        for role in SpecialRole.allCases {
            roles[role] = role.keys.lazy.compactMap { g[$0]?.intValue }.first { $0 >= 0 && $0 < n }.map(Int32.init)
        }
        // llama.cpp strips spaces right of Phi-3's special tokens (llama-vocab.cpp, by model name).
        let name = (g["general.name"]?.stringValue ?? "").lowercased()
        let phi3 = name.contains("phi-3") || name.contains("phi3")
        let keep: Set<[UInt8]> = [Array("<unk>".utf8), Array("<s>".utf8), Array("<|endoftext|>".utf8)]
        self.init(kind: kind, preTokenizer: pre, tokens: tokens, types: types, scores: scores, merges: merges,
                  bos: bos, eos: eos, addsBOS: addsBOS, addsEOS: addsEOS, spacePrefix: spacePrefix, roles: roles,
                  stripRule: { _, text in (false, phi3 && !keep.contains(text)) })
    }

    /// Key lookup over metadata pairs, first occurrence of each key.
    struct MetadataLookup {
        let pairs: [GGUFKeyValue]
        let index: [String: Int]
        let path: String
        subscript(key: String) -> GGUFValue? { index[key].map { pairs[$0].value } }
    }

    // MARK: encoding

    /// Token ids of `text` (UTF-8 bytes). `addSpecial` adds BOS/EOS as the model asks (llama.cpp's `add_special`);
    /// `parseSpecial` also recognises control tokens written in the text (user-defined ones always are).
    public func encode(_ text: [UInt8], addSpecial: Bool = true, parseSpecial: Bool = false) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(text.count / 3)
        if addSpecial && addsBOS, let bos { out.append(bos) }
        var cache: [[UInt8]: [Int32]] = [:]
        var previousSpecial = true
        for fragment in partition(text, parseSpecial: parseSpecial) {
            switch fragment {
            case .token(let id):
                out.append(id)
                previousSpecial = true
            case .text(let range):
                let prefix: Bool
                switch spacePrefix {
                case .never: prefix = false
                case .everyFragment: prefix = previousSpecial
                case .unlessSpace(let firstOnly):
                    prefix = (!firstOnly || range.lowerBound == 0) && text[range.lowerBound] != 0x20
                        && !Tokenizer.isEscapedSpace(text[...], range.lowerBound)
                }
                switch kind {
                case .bpe:
                    // Only raw UTF-8 BPE (where spaces become U+2581) is given a prefix.
                    if prefix { encodeBPE(ArraySlice([0x20] + text[range]), into: &out, cache: &cache) } else { encodeBPE(text[range], into: &out, cache: &cache) }
                case .spm:
                    var s: [UInt8] = prefix ? [0xE2, 0x96, 0x81] : []
                    for b in text[range] { if b == 0x20 { s += [0xE2, 0x96, 0x81] } else { s.append(b) } }
                    encodeSPM(s, into: &out)
                }
                previousSpecial = false
            }
        }
        if addSpecial && addsEOS, let eos { out.append(eos) }
        return out
    }

    enum Fragment { case text(Range<Int>), token(Int32) }

    /// Cuts special tokens out of the text, longest token first (llama.cpp's `tokenizer_st_partition`). Each token
    /// is looked for in every text fragment with memchr and memcmp, as llama.cpp's std::string::find does: a
    /// vocabulary may hold thousands of user-defined tokens (DeepSeek LLM's 2,398), each a pass over the text.
    func partition(_ text: [UInt8], parseSpecial: Bool) -> [Fragment] {
        text.withUnsafeBufferPointer { partition(text, $0, parseSpecial: parseSpecial) }
    }

    private func partition(_ text: [UInt8], _ bytes: UnsafeBufferPointer<UInt8>, parseSpecial: Bool) -> [Fragment] {
        var fragments: [Fragment] = text.isEmpty ? [] : [.text(0..<text.count)]
        guard let base = bytes.baseAddress else { return fragments }
        for special in specials {
            if !parseSpecial && !special.alwaysCut { continue }
            let needle = special.text
            guard let first = needle.first else { continue }
            var next: [Fragment] = []
            for fragment in fragments {
                guard case .text(var range) = fragment else { next.append(fragment); continue }
                var i = range.lowerBound
                while i + needle.count <= range.upperBound {
                    // The next place the token's first byte is, where the whole token could still fit.
                    guard let hit = memchr(base + i, Int32(first), range.upperBound - needle.count + 1 - i) else { break }
                    i = UnsafeRawPointer(base).distance(to: UnsafeRawPointer(hit))
                    if needle.withUnsafeBufferPointer({ memcmp(base + i, $0.baseAddress!, needle.count) == 0 }) {
                        var left = range.lowerBound..<i
                        if special.lstrip { left = left.lowerBound..<spaceRunStart(text, left) }
                        if !left.isEmpty { next.append(.text(left)) }
                        next.append(.token(special.id))
                        var rest = (i + needle.count)..<range.upperBound
                        if special.rstrip { rest = spaceRunEnd(text, rest)..<rest.upperBound }
                        range = rest
                        i = rest.lowerBound
                    } else {
                        i += 1
                    }
                }
                if !range.isEmpty { next.append(.text(range)) }
            }
            fragments = next
        }
        return fragments
    }

    static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || (b >= 0x09 && b <= 0x0D) }

    /// Whether the code point at `i` (its first `length` bytes) is whitespace as a special token strips it: C's
    /// `isspace` for llama.cpp, Unicode White_Space for a tokenizer.json's added tokens, as the tokenizers library
    /// strips them.
    private func stripsSpace(_ text: [UInt8], _ i: Int, _ length: Int) -> Bool {
        guard unicodeStrip else { return length == 1 && Tokenizer.isSpace(text[i]) }
        guard let cp = Tokenizer.codepoints(text[i..<(i + length)]).first else { return false }
        return CodepointClass.of(cp).contains(.whitespace)
    }

    /// Where the run of whitespace that ends `r` starts (a token's `lstrip`).
    private func spaceRunStart(_ text: [UInt8], _ r: Range<Int>) -> Int {
        var i = r.upperBound
        while i > r.lowerBound {
            var lead = i - 1
            while unicodeStrip && lead > r.lowerBound && text[lead] & 0xC0 == 0x80 { lead -= 1 }
            guard stripsSpace(text, lead, i - lead) else { break }
            i = lead
        }
        return i
    }

    /// Where the run of whitespace that starts `r` ends (a token's `rstrip`).
    private func spaceRunEnd(_ text: [UInt8], _ r: Range<Int>) -> Int {
        var i = r.lowerBound
        while i < r.upperBound {
            let length = unicodeStrip ? min(Tokenizer.utf8Length(text[i]), r.upperBound - i) : 1
            guard stripsSpace(text, i, length) else { break }
            i += length
        }
        return i
    }

    private func encodeBPE(_ text: ArraySlice<UInt8>, into out: inout [Int32], cache: inout [[UInt8]: [Int32]]) {
        var cps = Tokenizer.codepoints(text)
        if preTokenizer?.rawUTF8 == true {
            for i in cps.indices where cps[i] == 0x20 { cps[i] = 0x2581 }
        }
        let pieces = preTokenizer?.split(cps) ?? [cps.count]
        var start = 0
        var word: [UInt8] = []
        for length in pieces {
            word.removeAll(keepingCapacity: true)
            for cp in cps[start..<(start + length)] { Tokenizer.appendUTF8(cp, to: &word) }
            start += length
            if let hit = cache[word] { out += hit; continue }
            let ids = mergeWord(word)
            cache[word] = ids
            out += ids
        }
    }

    /// BPE on one pre-tokenized word: its bytes in GPT-2's alphabet, or its UTF-8 characters (`rawUTF8`).
    func mergeWord(_ word: [UInt8]) -> [Int32] {
        let raw = preTokenizer?.rawUTF8 == true
        if preTokenizer?.ignoreMerges == true {
            var encoded: [UInt8] = []
            if raw { encoded = word } else { for b in word { encoded += Tokenizer.byteLevelChar[Int(b)] } }
            if let id = ids[encoded] { return [id] }
        }
        if preTokenizer?.newlineRunsWhole == true, !word.isEmpty, word.allSatisfy({ $0 == 0x0A }), let id = ids[word] {
            return [id]
        }
        // The symbols merging starts from: bytes, or characters (a character's length from its lead byte, clipped).
        var symbols: [Range<Int>] = []
        if raw {
            var o = 0
            while o < word.count {
                let len = min(Tokenizer.utf8Length(word[o]), word.count - o)
                symbols.append(o..<(o + len))
                o += len
            }
        }
        let n = raw ? symbols.count : word.count
        guard n > 0 else { return [] }
        var id = raw ? symbols.map { ids[Array(word[$0])] ?? -1 } : word.map { byteTokens[Int($0)] }
        var next = Array(1...n).map { $0 == n ? -1 : $0 }
        var prev = (0..<n).map { $0 - 1 }
        var alive = [Bool](repeating: true, count: n)
        var queue = Heap<BPECandidate>()
        func consider(_ l: Int, _ r: Int) {
            guard l >= 0, r >= 0, id[l] >= 0, id[r] >= 0,
                  let m = merges[UInt64(UInt32(id[l])) << 32 | UInt64(UInt32(id[r]))] else { return }
            queue.push(BPECandidate(rank: m.rank, left: Int32(l), right: Int32(r), leftID: id[l], rightID: id[r], merged: m.id))
        }
        for i in 1..<max(n, 1) { consider(i - 1, i) }
        while let c = queue.pop() {
            let l = Int(c.left), r = Int(c.right)
            guard alive[l], alive[r], id[l] == c.leftID, id[r] == c.rightID else { continue }
            id[l] = c.merged
            alive[r] = false
            next[l] = next[r]
            if next[r] >= 0 { prev[next[r]] = l }
            consider(prev[l], l)
            consider(l, next[l])
        }
        var out: [Int32] = []
        var i = 0
        while i >= 0 && i < n {
            if id[i] >= 0 {
                out.append(id[i])
            } else if raw, let rule = unknownRule {
                // tokenizer.json: all of the character's byte tokens, else the unknown token.
                let bytes = word[symbols[i]]
                if rule.byteFallback && bytes.allSatisfy({ byteTokens[Int($0)] >= 0 }) {
                    for b in bytes { out.append(byteTokens[Int(b)]) }
                } else if let unk = rule.unknown, !(rule.fuse && i > 0 && id[prev[i]] < 0 && out.last == unk) {
                    out.append(unk)
                }
            } else if raw {
                // A character with no token: its bytes as <0xXX> tokens, those the vocabulary has.
                for b in word[symbols[i]] where byteTokens[Int(b)] >= 0 { out.append(byteTokens[Int(b)]) }
            } else {
                // A character with no token: llama.cpp looks each byte of its encoded text up on its own.
                var encoded: [UInt8] = []
                encoded += Tokenizer.byteLevelChar[Int(word[i])]
                for b in encoded { if let t = ids[[b]] { out.append(t) } }
            }
            i = next[i]
        }
        return out
    }

    /// SentencePiece merging over a whole fragment. Where no token has a U+2581 after another character (true of
    /// every SentencePiece vocabulary llama.cpp ships), no merge can join a word to the U+2581 that starts the next,
    /// so each word merges on its own with the same result as the whole text, and repeated words come from a cache:
    /// llama.cpp's one queue over a 9.5 MB text is what made this 1.4 times slower than llama-tokenize.
    private func encodeSPM(_ text: [UInt8], into out: inout [Int32]) {
        guard wordsMergeAlone else { return encodeSPMWord(text, into: &out) }
        var cache: [ArraySlice<UInt8>: [Int32]] = [:]
        var start = 0
        func flush(_ end: Int) {
            guard end > start else { return }
            let word = text[start..<end]
            if let hit = cache[word] { out += hit } else {
                var ids: [Int32] = []
                encodeSPMWord(Array(word), into: &ids)
                cache[word] = ids
                out += ids
            }
            start = end
        }
        var i = 3
        while i < text.count {
            // A U+2581 after anything but U+2581 starts a word.
            if Tokenizer.isEscapedSpace(text[...], i) && !Tokenizer.isEscapedSpace(text[...], i - 3) { flush(i); i += 3 } else { i += 1 }
        }
        flush(text.count)
    }

    private func encodeSPMWord(_ text: [UInt8], into out: inout [Int32]) {
        // Symbols are UTF-8 characters (length from the lead byte, clipped at the end).
        var start: [Int] = [], length: [Int] = []
        var o = 0
        while o < text.count {
            let len = min(Tokenizer.utf8Length(text[o]), text.count - o)
            start.append(o); length.append(len)
            o += len
        }
        let n = start.count
        guard n > 0 else { return }
        var next = Array(1...n).map { $0 == n ? -1 : $0 }
        var prev = (0..<n).map { $0 - 1 }
        var queue = Heap<SPMCandidate>()
        func consider(_ l: Int, _ r: Int) {
            guard l >= 0, r >= 0 else { return }
            let size = length[l] + length[r]
            guard let t = ids[Array(text[start[l]..<(start[l] + size)])] else { return }
            queue.push(SPMCandidate(score: scores[Int(t)], left: Int32(l), right: Int32(r), size: Int32(size)))
        }
        for i in 1..<n { consider(i - 1, i) }
        while let c = queue.pop() {
            let l = Int(c.left), r = Int(c.right)
            guard length[l] > 0, length[r] > 0, length[l] + length[r] == Int(c.size) else { continue }
            length[l] += length[r]
            length[r] = 0
            next[l] = next[r]
            if next[r] >= 0 { prev[next[r]] = l }
            consider(prev[l], l)
            consider(l, next[l])
        }
        var i = 0
        while i >= 0 {
            let piece = text[start[i]..<(start[i] + length[i])]
            if let t = ids[Array(piece)] {
                out.append(t)
            } else {
                for b in piece where byteTokens[Int(b)] >= 0 { out.append(byteTokens[Int(b)]) }
            }
            i = next[i]
        }
    }

    // MARK: decoding

    /// The bytes a token stands for (byte-level characters mapped back, U+2581 as a space, `<0xXX>` as its byte).
    public func bytes(of token: Int32) -> [UInt8] {
        guard token >= 0 && Int(token) < tokens.count else { return [] }
        let t = tokens[Int(token)]
        switch kind {
        case .bpe where preTokenizer?.rawUTF8 == true:
            if types[Int(token)] == .byte, let v = Tokenizer.byteValue(t) { return [v] }
            if types[Int(token)] != .normal { return t }
            return Tokenizer.unescapingSpaces(t)
        case .bpe:
            if types[Int(token)] == .control { return t }
            var out: [UInt8] = []
            for cp in Tokenizer.codepoints(t[...]) {
                if let b = Tokenizer.byteLevelInverse[cp] { out.append(b) } else { Tokenizer.appendUTF8(cp, to: &out) }
            }
            return out
        case .spm:
            if types[Int(token)] == .byte, let v = Tokenizer.byteValue(t) { return [v] }
            return Tokenizer.unescapingSpaces(t)
        }
    }

    /// U+2581 back to spaces.
    static func unescapingSpaces(_ t: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < t.count {
            if isEscapedSpace(t[...], i) { out.append(0x20); i += 3 } else { out.append(t[i]); i += 1 }
        }
        return out
    }

    /// Whether U+2581 (E2 96 81), SentencePiece's space, starts at byte `i` of `t`.
    static func isEscapedSpace(_ t: ArraySlice<UInt8>, _ i: Int) -> Bool {
        i >= t.startIndex && i + 2 < t.endIndex && t[i] == 0xE2 && t[i + 1] == 0x96 && t[i + 2] == 0x81
    }

    /// Whether a token holds a U+2581 after a character that is not one: only then can merging join a word to the
    /// U+2581 that starts the next.
    static func joinsWords(_ t: [UInt8]) -> Bool {
        t.indices.dropFirst().contains { k in isEscapedSpace(t[...], k) && !isEscapedSpace(t[...], k - 3) }
    }

    /// The text of byte `b`'s token, `<0x0A>` (upper-case hex, as SentencePiece and the tokenizers library spell it).
    static func byteTokenText(_ b: Int) -> [UInt8] {
        let hex = Array("0123456789ABCDEF".utf8)
        return Array("<0x".utf8) + [hex[b >> 4], hex[b & 15], UInt8(ascii: ">")]
    }

    /// The byte a `<0xXX>` token stands for.
    static func byteValue(_ t: [UInt8]) -> UInt8? {
        t.count == 6 ? UInt8(String(decoding: t[3..<5], as: UTF8.self), radix: 16) : nil
    }

    // MARK: byte-level alphabet and UTF-8

    /// GPT-2's printable stand-in for each byte: printable Latin-1 bytes stand for themselves, the others are
    /// numbered from U+0100 upward.
    static let byteLevelChar: [[UInt8]] = {
        var map = [UInt32](repeating: 0, count: 256)
        var taken = [Bool](repeating: false, count: 256)
        for b in 0x21...0x7E { map[b] = UInt32(b); taken[b] = true }
        for b in 0xA1...0xAC { map[b] = UInt32(b); taken[b] = true }
        for b in 0xAE...0xFF { map[b] = UInt32(b); taken[b] = true }
        var n: UInt32 = 0
        for b in 0..<256 where !taken[b] { map[b] = 256 + n; n += 1 }
        return map.map { cp in var s: [UInt8] = []; appendUTF8(cp, to: &s); return s }
    }()

    static let byteLevelInverse: [UInt32: UInt8] = {
        var inv: [UInt32: UInt8] = [:]
        for b in 0..<256 { inv[codepoints(byteLevelChar[b][...])[0]] = UInt8(b) }
        return inv
    }()

    static func utf8Length(_ lead: UInt8) -> Int {
        switch lead >> 4 { case 0xC, 0xD: 2; case 0xE: 3; case 0xF: 4; default: 1 }
    }

    /// Decodes UTF-8 as llama.cpp does: an invalid sequence yields U+FFFD and advances one byte.
    static func codepoints(_ s: ArraySlice<UInt8>) -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(s.count)
        var i = s.startIndex
        let end = s.endIndex
        @inline(__always) func cont(_ k: Int) -> Bool { k < end && s[k] & 0xC0 == 0x80 }
        while i < end {
            let b = s[i]
            if b < 0x80 { out.append(UInt32(b)); i += 1; continue }
            if b & 0x40 == 0 { out.append(0xFFFD); i += 1; continue }
            if b & 0x20 == 0 {
                if cont(i + 1) { out.append(UInt32(b & 0x1F) << 6 | UInt32(s[i + 1] & 0x3F)); i += 2 } else { out.append(0xFFFD); i += 1 }
                continue
            }
            if b & 0x10 == 0 {
                if cont(i + 1) && cont(i + 2) {
                    out.append(UInt32(b & 0x0F) << 12 | UInt32(s[i + 1] & 0x3F) << 6 | UInt32(s[i + 2] & 0x3F)); i += 3
                } else { out.append(0xFFFD); i += 1 }
                continue
            }
            if b & 0x08 == 0 && cont(i + 1) && cont(i + 2) && cont(i + 3) {
                out.append(UInt32(b & 0x07) << 18 | UInt32(s[i + 1] & 0x3F) << 12 | UInt32(s[i + 2] & 0x3F) << 6 | UInt32(s[i + 3] & 0x3F))
                i += 4
                continue
            }
            out.append(0xFFFD); i += 1
        }
        return out
    }

    static func appendUTF8(_ cp: UInt32, to out: inout [UInt8]) {
        switch cp {
        case 0..<0x80: out.append(UInt8(cp))
        case 0x80..<0x800: out += [UInt8(0xC0 | cp >> 6), UInt8(0x80 | cp & 0x3F)]
        case 0x800..<0x10000: out += [UInt8(0xE0 | cp >> 12), UInt8(0x80 | cp >> 6 & 0x3F), UInt8(0x80 | cp & 0x3F)]
        default: out += [UInt8(0xF0 | cp >> 18 & 0x07), UInt8(0x80 | cp >> 12 & 0x3F), UInt8(0x80 | cp >> 6 & 0x3F), UInt8(0x80 | cp & 0x3F)]
        }
    }
}

/// A merge waiting in the BPE queue: lowest rank first, then leftmost.
struct BPECandidate: Comparable {
    var rank: Int32, left: Int32, right: Int32, leftID: Int32, rightID: Int32, merged: Int32
    static func < (a: Self, b: Self) -> Bool { a.rank != b.rank ? a.rank < b.rank : a.left < b.left }
}

/// A merge waiting in the SentencePiece queue: highest score first, then leftmost.
struct SPMCandidate: Comparable {
    var score: Float, left: Int32, right: Int32, size: Int32
    static func < (a: Self, b: Self) -> Bool { a.score != b.score ? a.score > b.score : a.left < b.left }
}

/// A binary min-heap (the smallest element by `<` comes out first). Sifting moves a hole rather than swapping, over
/// the storage's buffer: a SentencePiece text is one fragment, and its heap holds millions of candidates.
struct Heap<T: Comparable> {
    private var items: [T] = []
    mutating func push(_ x: T) {
        items.append(x)
        items.withUnsafeMutableBufferPointer { h in
            var i = h.count - 1
            while i > 0 {
                let p = (i - 1) / 2
                guard x < h[p] else { break }
                h[i] = h[p]
                i = p
            }
            h[i] = x
        }
    }
    mutating func pop() -> T? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items.withUnsafeMutableBufferPointer { h in
                let n = h.count
                var i = 0
                while true {
                    let l = 2 * i + 1
                    guard l < n else { break }
                    let m = l + 1 < n && h[l + 1] < h[l] ? l + 1 : l
                    guard h[m] < last else { break }
                    h[i] = h[m]
                    i = m
                }
                h[i] = last
            }
        }
        return top
    }
}
