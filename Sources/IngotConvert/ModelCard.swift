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

    /// The `general.*` keys a card states, in gguf-py's order. What the card leaves out, llama.cpp's converter takes
    /// from config.json's `_name_or_path` (when it is a model id, at most one `/`) and then from the folder's name,
    /// each split into name, organization, basename, finetune, version and size label
    /// (`Metadata.get_model_id_components`); a size label still missing labels the parameter count
    /// (`gguf.size_label`). All of it is applied here the same way.
    static func ggufKeys(readmePath: String, folderName: String, nameOrPath: String?, parameters: Int, expertCount: Int,
                         expertParameters: Int) -> [GGUFKeyValue] {
        var fields: [String: [String]] = [:]
        if let file = try? MappedFile(path: readmePath) {
            fields = withExtendedLifetime(file) { frontMatter(String(decoding: file.bytes, as: UTF8.self)) }
        }
        if fields["name"] == nil, let n = fields["model_name"] { fields["name"] = n }
        var ids = [folderName]
        if let n = nameOrPath, n.filter({ $0 == "/" }).count <= 1 { ids.insert(n, at: 0) }
        for id in ids {
            let c = modelIDComponents(id, totalParameters: parameters)
            for (key, value) in [("name", c.name.map(idToTitle)), ("organization", c.organization.map(idToTitle)),
                                 ("basename", c.basename), ("finetune", c.finetune), ("version", c.version),
                                 ("size_label", c.sizeLabel)] {
                if fields[key] == nil, let value { fields[key] = [value] }
            }
        }
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

    /// gguf-py's `Metadata.get_model_id_components`: a model id (`org/Name-7B-Instruct-v0.2`) split at `/` and at
    /// dashes, each part annotated as version, quantization type, size (unless it is far from `totalParameters`, then
    /// a finetune such as a context length), known finetune word, or basename (leading words), and joined back.
    static func modelIDComponents(_ id: String, totalParameters: Int)
        -> (name: String?, organization: String?, basename: String?, finetune: String?, version: String?, sizeLabel: String?) {
        if id.contains(" ") { return (id, nil, nil, nil, nil, nil) }
        var org: String?
        var full = id
        if let slash = id.firstIndex(of: "/") {
            org = String(id[..<slash])
            full = String(id[id.index(after: slash)...])
        }
        if org?.first == "." { org = nil }
        var parts = full.split(separator: "-").map(String.init)
        var types = [Set<String>](repeating: [], count: parts.count)
        func whole(_ pattern: String, _ s: String) -> Bool {
            guard let r = try? Regex(pattern).ignoresCase() else { return false }
            return (try? r.wholeMatch(in: s)) != nil
        }
        for i in parts.indices {
            var part = parts[i]
            if whole(#"(v|iter)?\d+([.]\d+)*"#, part) {
                types[i].insert("version")
            } else if whole(#"i?q\d(_\w)*|b?fp?(16|32)"#, part) {
                types[i].insert("type")
                parts[i] = part.uppercased()
            } else if i > 0 && whole(#"(([A]|\d+[x])?\d+([._]\d+)?[KMBT][\d]?|small|mini|medium|large|x?xl)"#, part) {
                part = part.replacingOccurrences("_", ".")
                var chars = Array(part)
                if let last = chars.last, last.isASCII, last.isNumber, chars.count >= 2 {
                    // bloom-7b1 -> 7.1b
                    chars = Array(chars[..<(chars.count - 2)]) + ["."] + [last, chars[chars.count - 2]]
                }
                if chars.count > 1, chars[chars.count - 2].isASCII, chars[chars.count - 2].isNumber, "kmbt".contains(chars[chars.count - 1]) {
                    chars[chars.count - 1] = Character(chars[chars.count - 1].uppercased())
                }
                part = String(chars)
                if totalParameters != 0, let last = chars.last, let value = Double(String(chars.dropLast())) {
                    // Python's " KMBT".find: -1 (a thousandth) for any other suffix.
                    let power = " KMBT".firstIndex(of: last).map { " KMBT".distance(from: " KMBT".startIndex, to: $0) } ?? -1
                    var label = power < 0 ? value / 1000 : value
                    for _ in 0..<max(power, 0) { label *= 1000 }
                    let total = Double(totalParameters)
                    if (totalParameters < 0 && label < Double(abs(totalParameters) / 8))
                        || (totalParameters > 0 && abs(label - total) > Double(7 * totalParameters / 8)) {
                        types[i].insert("finetune")
                        part = String(chars.dropLast()) + last.lowercased()
                    }
                }
                if types[i].isEmpty { types[i].insert("size_label") }
                parts[i] = part
            } else if i > 0 && whole("chat|instruct|vision|lora", part) {
                types[i].insert(totalParameters < 0 && part.lowercased() == "lora" ? "type" : "finetune")
            }
        }
        if zip(parts, types).contains(where: { $0.1.contains("size_label") && $0.0.contains(where: \.isNumber) }) {
            for i in parts.indices where types[i].contains("size_label") && parts[i].allSatisfy(\.isLetter) {
                types[i].remove("size_label")
            }
        }
        var atStart = true
        for i in parts.indices {
            if atStart && ((types[i].isEmpty && parts[i].first?.isLetter == true) || types[i].contains("version")) {
                types[i].insert("basename")
            } else {
                atStart = false
                if types[i].isEmpty { types[i].insert("finetune") }
            }
        }
        for i in parts.indices.reversed() {
            guard types[i].contains("basename") && types[i].count > 1 else { break }
            types[i].remove("basename")
        }
        func joined(_ kind: String, unique: Bool = false, excluding: String? = nil) -> String? {
            var seen = Set<String>()
            let picked = parts.indices.filter { i in types[i].contains(kind) && !(excluding.map { types[i].contains($0) } ?? false) }
                .map { parts[$0] }.filter { !unique || seen.insert($0).inserted }
            return picked.isEmpty ? nil : picked.joined(separator: "-")
        }
        var basename = joined("basename")
        let size = joined("size_label", unique: true), finetune = joined("finetune"), version = joined("version", excluding: "basename")
        if size == nil && finetune == nil && version == nil { basename = nil }
        return (full, org, basename, finetune, version, size)
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
