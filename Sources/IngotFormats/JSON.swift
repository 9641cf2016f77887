/// A small JSON value with ordered objects, a strict parser that reports byte offsets, and a
/// deterministic serializer. Used for safetensors headers, `config.json`, index files and every
/// `--json` output. Objects keep their order and record where each key began in the input.
public indirect enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)      // only for integers above Int64.max
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
    public var objectValue: JSONObject? { if case .object(let o) = self { return o }; return nil }

    /// The value as an Int when it is an integer that fits (JSON `2.0` counts; `2.5` does not).
    public var intValue: Int? {
        switch self {
        case .int(let v): return Int(exactly: v)
        case .uint(let v): return Int(exactly: v)
        case .double(let d): return d.rounded() == d ? Int(exactly: d) : nil
        default: return nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .int(let v): return Double(v)
        case .uint(let v): return Double(v)
        case .double(let d): return d
        default: return nil
        }
    }

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.int(let x), .int(let y)): return x == y
        case (.uint(let x), .uint(let y)): return x == y
        case (.int, .uint), (.uint, .int): return false
        case (.double(let x), .double(let y)): return x == y || (x.isNaN && y.isNaN)
        case (.int(let x), .double(let y)), (.double(let y), .int(let x)): return Double(exactly: x) == y
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)): return x == y
        default: return false
        }
    }
}

/// An ordered JSON object. `keyOffsets` (parallel to `members`, empty for objects built in code)
/// holds the absolute byte offset of each key in the parsed input.
public struct JSONObject: Equatable, Sendable {
    public var members: [(key: String, value: JSONValue)]
    public var keyOffsets: [Int]

    public init(_ members: [(String, JSONValue)] = []) {
        self.members = members.map { (key: $0.0, value: $0.1) }
        self.keyOffsets = []
    }

    public subscript(key: String) -> JSONValue? {
        get { members.first(where: { $0.key == key })?.value }
        set {
            if let i = members.firstIndex(where: { $0.key == key }) {
                if let newValue { members[i].value = newValue } else {
                    members.remove(at: i)
                    if i < keyOffsets.count { keyOffsets.remove(at: i) }
                }
            } else if let newValue {
                members.append((key: key, value: newValue))
            }
        }
    }

    public func offset(ofMember index: Int) -> Int? {
        index < keyOffsets.count ? keyOffsets[index] : nil
    }

    public static func == (a: JSONObject, b: JSONObject) -> Bool {
        a.members.count == b.members.count
            && zip(a.members, b.members).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}

// MARK: - Parsing

public enum JSONParser {
    /// Parses one JSON document from `bytes`, which start at file offset `base`. Trailing
    /// whitespace is allowed (safetensors pads its header with spaces); anything else is an error.
    /// Duplicate keys in one object are an error (`.duplicateKey`) that names the key.
    public static func parse(_ bytes: UnsafeRawBufferPointer, base: Int = 0, field: String = "json") throws -> JSONValue {
        var p = Parser(bytes: bytes, base: base, field: field)
        p.skipWhitespace()
        let v = try p.value(depth: 0)
        p.skipWhitespace()
        guard p.pos == bytes.count else { throw p.error("unexpected content after the JSON value") }
        return v
    }

    public static func parse(_ bytes: [UInt8], base: Int = 0, field: String = "json") throws -> JSONValue {
        try bytes.withUnsafeBytes { try parse($0, base: base, field: field) }
    }

    public static func parse(_ text: String, field: String = "json") throws -> JSONValue {
        try parse(Array(text.utf8), field: field)
    }

    struct Parser {
        let bytes: UnsafeRawBufferPointer
        let base: Int
        let field: String
        var pos = 0

        func error(_ what: String, code: FormatError.Code = .invalidJSON, at: Int? = nil) -> FormatError {
            FormatError(code, field: field, offset: base + (at ?? pos), what)
        }

        @inline(__always) func peek() -> UInt8? { pos < bytes.count ? bytes[pos] : nil }

        mutating func skipWhitespace() {
            while pos < bytes.count {
                switch bytes[pos] {
                case 0x20, 0x09, 0x0A, 0x0D: pos += 1
                default: return
                }
            }
        }

        mutating func expect(_ literal: StaticString) throws {
            let n = literal.utf8CodeUnitCount
            guard bytes.count - pos >= n else { throw error("unexpected end of JSON") }
            let lit = UnsafeRawBufferPointer(start: literal.utf8Start, count: n)
            for i in 0 ..< n where bytes[pos + i] != lit[i] { throw error("invalid literal") }
            pos += n
        }

        mutating func value(depth: Int) throws -> JSONValue {
            guard depth < Limits.maxJSONDepth else {
                throw error("nesting deeper than \(Limits.maxJSONDepth)", code: .limitExceeded)
            }
            guard let c = peek() else { throw error("unexpected end of JSON") }
            switch c {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try expect("true"); return .bool(true)
            case UInt8(ascii: "f"): try expect("false"); return .bool(false)
            case UInt8(ascii: "n"): try expect("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0") ... UInt8(ascii: "9"): return try number()
            default: throw error("unexpected character '\(printable(c))'")
            }
        }

        mutating func object(depth: Int) throws -> JSONValue {
            pos += 1
            var obj = JSONObject()
            // Keys compare by their code points: Swift's String equality would join canonically equivalent keys
            // (U+1F77 and U+03AF), which are distinct JSON keys (both are tokens of Llama 2's vocabulary).
            var seen = Set<[UInt8]>()
            skipWhitespace()
            if peek() == UInt8(ascii: "}") { pos += 1; return .object(obj) }
            while true {
                skipWhitespace()
                guard peek() == UInt8(ascii: "\"") else { throw error("expected a string key") }
                let keyStart = pos
                let key = try string()
                guard seen.insert(Array(key.utf8)).inserted else {
                    throw FormatError(.duplicateKey, field: "\(field) key '\(key)'", offset: base + keyStart,
                                      "the key appears twice in one object")
                }
                skipWhitespace()
                guard peek() == UInt8(ascii: ":") else { throw error("expected ':'") }
                pos += 1
                skipWhitespace()
                let v = try value(depth: depth + 1)
                obj.members.append((key: key, value: v))
                obj.keyOffsets.append(base + keyStart)
                skipWhitespace()
                switch peek() {
                case UInt8(ascii: ","): pos += 1
                case UInt8(ascii: "}"): pos += 1; return .object(obj)
                default: throw error("expected ',' or '}'")
                }
            }
        }

        mutating func array(depth: Int) throws -> JSONValue {
            pos += 1
            var items: [JSONValue] = []
            skipWhitespace()
            if peek() == UInt8(ascii: "]") { pos += 1; return .array(items) }
            while true {
                skipWhitespace()
                items.append(try value(depth: depth + 1))
                skipWhitespace()
                switch peek() {
                case UInt8(ascii: ","): pos += 1
                case UInt8(ascii: "]"): pos += 1; return .array(items)
                default: throw error("expected ',' or ']'")
                }
            }
        }

        mutating func hex4() throws -> UInt32 {
            guard bytes.count - pos >= 4 else { throw error("truncated \\u escape") }
            var v: UInt32 = 0
            for _ in 0 ..< 4 {
                let c = bytes[pos]
                let d: UInt32
                switch c {
                case UInt8(ascii: "0") ... UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
                case UInt8(ascii: "a") ... UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A") ... UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
                default: throw error("invalid hex digit in \\u escape")
                }
                v = v << 4 | d
                pos += 1
            }
            return v
        }

        mutating func string() throws -> String {
            let start = pos
            pos += 1
            var out: [UInt8] = []
            var runStart = pos
            while true {
                guard let c = peek() else { throw error("unterminated string", at: start) }
                if c == UInt8(ascii: "\"") {
                    out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart ..< pos]))
                    pos += 1
                    break
                }
                if c < 0x20 { throw error("control character in string") }
                if c != UInt8(ascii: "\\") { pos += 1; continue }
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart ..< pos]))
                pos += 1
                guard let e = peek() else { throw error("unterminated escape") }
                pos += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800 ..< 0xDC00).contains(scalar) {
                        guard bytes.count - pos >= 6, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u")
                        else { throw error("unpaired surrogate in \\u escape") }
                        pos += 2
                        let low = try hex4()
                        guard (0xDC00 ..< 0xE000).contains(low) else { throw error("unpaired surrogate in \\u escape") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00 ..< 0xE000).contains(scalar) {
                        throw error("unpaired surrogate in \\u escape")
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw error("invalid \\u escape") }
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default: throw error("invalid escape '\\\(printable(e))'")
                }
                runStart = pos
            }
            guard let s = String(validating: out, as: UTF8.self) else {
                throw error("string is not valid UTF-8", code: .invalidUTF8, at: start)
            }
            return s
        }

        mutating func number() throws -> JSONValue {
            let start = pos
            var isInteger = true
            if peek() == UInt8(ascii: "-") { pos += 1 }
            guard let first = peek(), first >= 0x30, first <= 0x39 else { throw error("invalid number", at: start) }
            if first == 0x30 {
                pos += 1
                if let n = peek(), n >= 0x30, n <= 0x39 { throw error("leading zero in number", at: start) }
            } else {
                while let d = peek(), d >= 0x30, d <= 0x39 { pos += 1 }
            }
            if peek() == UInt8(ascii: ".") {
                isInteger = false
                pos += 1
                guard let d = peek(), d >= 0x30, d <= 0x39 else { throw error("invalid fraction", at: start) }
                while let d = peek(), d >= 0x30, d <= 0x39 { pos += 1 }
            }
            if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
                isInteger = false
                pos += 1
                if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { pos += 1 }
                guard let d = peek(), d >= 0x30, d <= 0x39 else { throw error("invalid exponent", at: start) }
                while let d = peek(), d >= 0x30, d <= 0x39 { pos += 1 }
            }
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start ..< pos]), as: UTF8.self)
            if isInteger {
                if let v = Int64(text) { return .int(v) }
                if let v = UInt64(text) { return .uint(v) }
            }
            guard let d = Double(text) else { throw error("number out of range", at: start) }
            return .double(d)
        }

        func printable(_ c: UInt8) -> String {
            (0x20 ..< 0x7F).contains(c) ? String(UnicodeScalar(c)) : String(format2hex: c)
        }
    }
}

extension String {
    init(format2hex c: UInt8) {
        let digits = Array("0123456789abcdef")
        self = "0x" + String(digits[Int(c >> 4)]) + String(digits[Int(c & 15)])
    }
}

// MARK: - Serializing

extension JSONValue {
    /// Compact JSON (`{"a":1,"b":[2,3]}`), or indented with two spaces when `pretty`.
    public func serialized(pretty: Bool = false) -> String {
        var out = ""
        write(to: &out, pretty: pretty, indent: 0)
        return out
    }

    func write(to out: inout String, pretty: Bool, indent: Int) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let v): out += String(v)
        case .uint(let v): out += String(v)
        case .double(let d):
            if !d.isFinite { out += "null" }
            else if d == 0 { out += d.sign == .minus ? "-0.0" : "0.0" }
            else if d.rounded() == d && abs(d) < 1e15 { out += String(Int64(d)) + ".0" }
            else { out += "\(d)" }
        case .string(let s): JSONValue.writeString(s, to: &out)
        case .array(let items):
            if items.isEmpty { out += "[]"; return }
            out += "["
            for (i, v) in items.enumerated() {
                if i > 0 { out += "," }
                if pretty { out += "\n" + String(repeating: " ", count: indent + 2) }
                v.write(to: &out, pretty: pretty, indent: indent + 2)
            }
            if pretty { out += "\n" + String(repeating: " ", count: indent) }
            out += "]"
        case .object(let o):
            if o.members.isEmpty { out += "{}"; return }
            out += "{"
            for (i, m) in o.members.enumerated() {
                if i > 0 { out += "," }
                if pretty { out += "\n" + String(repeating: " ", count: indent + 2) }
                JSONValue.writeString(m.key, to: &out)
                out += pretty ? ": " : ":"
                m.value.write(to: &out, pretty: pretty, indent: indent + 2)
            }
            if pretty { out += "\n" + String(repeating: " ", count: indent) }
            out += "}"
        }
    }

    static func writeString(_ s: String, to out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByFloatLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(nilLiteral: ()) { self = .null }
    public init(_ v: Int) { self = .int(Int64(v)) }
}
