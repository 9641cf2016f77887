import IngotFormats

/// The model card's front matter (`README.md` between `---` lines), where a Hugging Face folder keeps what GGUF keeps
/// in `general.*`. llama.cpp's converter reads these keys (gguf-py `Metadata.apply_metadata_heuristic`, its "direct
/// internal convention"), so a card Ingot writes from a GGUF gives back the same `general.*` keys through either tool.
///
/// Only the YAML this needs is read: `key: scalar`, `key: [a, b]` and `key:` followed by `- item` lines; anything
/// else in the front matter is skipped.
enum ModelCard {
    /// GGUF key, card key, and whether the value is a list; in the order gguf-py writes them.
    static let keys: [(gguf: String, card: String, list: Bool)] = [
        ("general.name", "name", false), ("general.author", "author", false), ("general.version", "version", false),
        ("general.organization", "organization", false), ("general.finetune", "finetune", false),
        ("general.basename", "basename", false), ("general.description", "description", false),
        ("general.size_label", "size_label", false), ("general.license", "license", false),
        ("general.license.name", "license_name", false), ("general.license.link", "license_link", false),
        ("general.tags", "tags", true), ("general.languages", "language", true),
    ]

    /// The `general.*` keys a card states, in gguf-py's order. Where the card has no name, llama.cpp's converter
    /// names the model after its folder (`Metadata.id_to_title`), and where it has no size label it labels the
    /// parameter count (`gguf.size_label`); both fallbacks are applied here the same way.
    static func ggufKeys(readmePath: String, folderName: String, parameters: Int, expertCount: Int, expertParameters: Int) -> [GGUFKeyValue] {
        var fields: [String: [String]] = [:]
        if let file = try? MappedFile(path: readmePath) { fields = frontMatter(String(decoding: file.bytes, as: UTF8.self)) }
        if fields["name"] == nil && fields["model_name"] == nil { fields["name"] = [idToTitle(folderName)] }
        if fields["size_label"] == nil && parameters > 0 {
            fields["size_label"] = [expertCount > 0
                ? "\(expertCount)x\(roundedCount(parameters - expertParameters + expertParameters / expertCount))"
                : roundedCount(parameters)]
        }
        var out: [GGUFKeyValue] = []
        for k in keys {
            guard let v = fields[k.card] else { continue }
            if k.list {
                out.append(GGUFKeyValue(k.gguf, .array(.string(v.map { GGUFString($0) }))))
            } else if let s = v.first {
                out.append(GGUFKeyValue(k.gguf, .string(GGUFString(s))))
            }
        }
        return out
    }

    /// gguf-py's `Metadata.id_to_title`: dashes become spaces, and all-lowercase words that are not versions are
    /// title-cased as Python's `str.title` does (a letter after a non-letter is upper-cased).
    static func idToTitle(_ id: String) -> String {
        id.split(whereSeparator: { $0 == "-" || $0 == " " }).map { w -> String in
            let cased = w.filter { $0.isUppercase || $0.isLowercase }
            let isLower = !cased.isEmpty && cased.allSatisfy(\.isLowercase)
            let version = (w.first == "v" && w.dropFirst().first?.isNumber == true) || (w.first?.isNumber ?? false)
            guard isLower && !version else { return String(w) }
            var out = ""
            var previousCased = false
            for c in w {
                out += previousCased ? c.lowercased() : c.uppercased()
                previousCased = c.isUppercase || c.isLowercase
            }
            return out
        }.joined(separator: " ")
    }

    /// gguf-py's `model_weight_count_rounded_notation` with two significant digits at least: 134515008 -> "135M".
    static func roundedCount(_ n: Int) -> String {
        let x = Double(n)
        let (scaled, suffix): (Double, String) = x > 1e12 ? (x * 1e-12, "T") : x > 1e9 ? (x * 1e-9, "B") : x > 1e6 ? (x * 1e-6, "M") : (x * 1e-3, "K")
        let integerDigits = String(Int(scaled.rounded(.toNearestOrEven))).drop { $0 == "0" }.count
        let decimals = max(2 - integerDigits, 0)
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let r = (scaled * scale).rounded(.toNearestOrEven)
        let whole = Int(r / scale)
        var frac = String(Int(r - Double(whole) * scale))
        while frac.count < decimals { frac = "0" + frac }
        return String(whole) + (decimals > 0 ? "." + frac : "") + suffix
    }

    /// A README.md whose front matter holds the GGUF's `general.*` keys.
    static func readme(from g: GGUFFile) -> String {
        var lines = ["---"]
        for k in keys {
            guard let v = g[k.gguf] else { continue }
            if k.list, case .array(.string(let items)) = v {
                lines.append("\(k.card):")
                lines += items.map { "- " + quoted($0.string) }
            } else if let s = v.stringValue {
                lines.append("\(k.card): " + quoted(s))
            }
        }
        lines.append("---")
        let name = g["general.name"]?.stringValue ?? "model"
        lines.append("")
        lines.append("# \(name)")
        lines.append("")
        lines.append("Converted from GGUF by Ingot (`ingot convert --to hf`).")
        return lines.joined(separator: "\n") + "\n"
    }

    /// A YAML double-quoted scalar (JSON string syntax is valid YAML).
    static func quoted(_ s: String) -> String { JSONValue.string(s).serialized() }

    /// key -> values (one for a scalar).
    static func frontMatter(_ text: String) -> [String: [String]] {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
        guard lines.first == "---" else { return [:] }
        lines.removeFirst()
        var out: [String: [String]] = [:]
        var listKey: String?
        for line in lines {
            if line == "---" { break }
            if line.hasPrefix("- ") || line.hasPrefix("  - ") {
                if let key = listKey { out[key, default: []].append(scalar(line.drop { $0 == " " }.dropFirst(2))) }
                continue
            }
            listKey = nil
            guard let colon = line.firstIndex(of: ":"), !line.hasPrefix(" "), !line.hasPrefix("#") else { continue }
            let key = String(line[..<colon])
            let rest = line[line.index(after: colon)...].drop { $0 == " " }
            if rest.isEmpty {
                listKey = key
            } else if rest.hasPrefix("[") && rest.hasSuffix("]") {
                out[key] = rest.dropFirst().dropLast().split(separator: ",").map { scalar($0.drop { $0 == " " }) }
            } else {
                out[key] = [scalar(rest)]
            }
        }
        return out
    }

    /// A YAML scalar: double-quoted (JSON escapes), single-quoted ('' for a quote) or plain.
    static func scalar(_ s: Substring) -> String {
        let t = s.hasSuffix(" ") ? Substring(s.reversed().drop { $0 == " " }.reversed()) : s
        if t.hasPrefix("\""), t.hasSuffix("\""), t.count >= 2,
           let v = try? JSONParser.parse(String(t), field: "card"), let str = v.stringValue {
            return str
        }
        if t.hasPrefix("'"), t.hasSuffix("'"), t.count >= 2 {
            return String(t.dropFirst().dropLast()).replacingOccurrences("''", "'")
        }
        return String(t)
    }
}

extension String {
    func replacingOccurrences(_ a: String, _ b: String) -> String {
        var out = ""
        var rest = self[...]
        while let r = rest.firstRange(of: a) {
            out += rest[..<r.lowerBound]
            out += b
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}
