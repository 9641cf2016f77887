import Foundation
import IngotFormats

/// A self-contained HTML page (styles and pictures inline: it opens offline) and the same data as JSON beside it.
public struct ReportPage {
    public var title: String
    var body = ""

    public init(title: String) { self.title = title }

    /// A paragraph of plain text.
    public mutating func paragraph(_ text: String) { body += "<p>\(Chart.escape(text))</p>\n" }

    public mutating func heading(_ text: String) { body += "<h2>\(Chart.escape(text))</h2>\n" }

    /// The verdict, set apart.
    public mutating func verdict(_ text: String) { body += "<p class=\"verdict\">\(Chart.escape(text))</p>\n" }

    /// A table; numbers right-aligned (where `alignNumbers`). `collapsed` puts it behind a summary line.
    public mutating func table(_ header: [String], _ rows: [[String]], collapsed: String? = nil, alignNumbers: Bool = true) {
        var t = "<table>" + (header.allSatisfy(\.isEmpty) ? "" : "<tr>" + header.map { "<th>\(Chart.escape($0))</th>" }.joined() + "</tr>") + "\n"
        for r in rows {
            t += "<tr>" + r.map { c in
                let numeric = alignNumbers && Double(c.replacingOccurrences(of: "%", with: "").replacingOccurrences(of: "±", with: "")
                    .split(separator: " ").first.map(String.init) ?? "") != nil
                return "<td\(numeric ? " class=\"n\"" : "")>\(Chart.escape(c))</td>"
            }.joined() + "</tr>\n"
        }
        t += "</table>\n"
        body += collapsed.map { "<details><summary>\(Chart.escape($0))</summary>\n\(t)</details>\n" } ?? t
    }

    /// A picture (inline SVG from `Chart`) with its caption.
    public mutating func figure(_ svg: String, caption: String) {
        body += "<figure>\(svg)<figcaption>\(Chart.escape(caption))</figcaption></figure>\n"
    }

    public var html: String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(Chart.escape(title))</title>
        <style>
        body { font-family: sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
        h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
        table { border-collapse: collapse; margin: 0.5em 0; } td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; }
        th { background: #f2f2f2; text-align: left; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
        .verdict { font-size: 1.1em; background: #f5f8ff; border-left: 4px solid #4477aa; padding: 0.6em 1em; }
        figure { margin: 1em 0; } figcaption { font-size: 0.9em; color: #555; } svg { max-width: 100%; height: auto; }
        footer { margin-top: 2em; font-size: 0.85em; color: #666; }
        </style></head><body>
        <h1>\(Chart.escape(title))</h1>
        \(body)<footer>Written by Ingot. The same numbers are in the JSON file beside this page.</footer>
        </body></html>

        """
    }

    /// Writes the page to `path` and `json` to the same path with `.json` for its extension, each whole or not at all.
    public func write(to path: String, json: JSONValue) throws {
        let url = URL(fileURLWithPath: path)
        let jsonURL = url.deletingPathExtension().appendingPathExtension("json")
        do {
            try Data(json.serialized(pretty: true).utf8).write(to: jsonURL, options: .atomic)
            try Data(html.utf8).write(to: url, options: .atomic)
        } catch {
            throw FormatError(.writeFailed, field: "--report", offset: nil, "cannot write \(path): \(error.localizedDescription)", path: path)
        }
    }

    /// Where `write(to:json:)` puts the JSON.
    public static func jsonPath(for path: String) -> String {
        URL(fileURLWithPath: path).deletingPathExtension().appendingPathExtension("json").path
    }
}
