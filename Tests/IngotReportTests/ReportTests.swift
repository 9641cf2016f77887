import Foundation
import IngotFormats
@testable import IngotReport
import Testing

@Suite struct ReportTests {
    @Test("axis ticks are round numbers inside the range; text is escaped for HTML")
    func ticksAndEscaping() {
        #expect(Chart.ticks(0, 1) == [0, 0.2, 0.4, 0.6000000000000001, 0.8, 1])
        #expect(Chart.ticks(83, 262).first == 100 && Chart.ticks(83, 262).last == 250)
        #expect(Chart.escape("a<b & \"c\">") == "a&lt;b &amp; &quot;c&quot;&gt;")
        #expect(Chart.number(0.000123) == "0.000123" && Chart.number(41.6361) == "41.64" && Chart.number(105454432) == "1.05e+08")
    }

    @Test("charts draw every finite point and bar, and say so when there is nothing to draw")
    func charts() {
        let line = Chart.lines([Chart.Series(label: "a", points: [(1, 0.1), (2, 0.01), (3, .nan)], color: "#000")],
                               xLabel: "x", yLabel: "y", logY: true, title: "t")
        #expect(line.components(separatedBy: "<circle").count - 1 == 2 && line.contains("<polyline"))
        let bars = Chart.bars([("a", 3), ("b", 0), ("c", 1)], yLabel: "n", title: "t")
        #expect(bars.components(separatedBy: "<rect x=").count - 1 == 3)  // one per bar (the zero one of no height)
        #expect(Chart.bars([], yLabel: "n", title: "t") == "<p>(no data to draw)</p>")
    }

    @Test("the page is self-contained and written with its JSON beside it")
    func page() throws {
        var p = ReportPage(title: "a <title>")
        p.verdict("same top token 88 %")
        p.table(["measure", "value"], [["perplexity", "41.6 ± 3.9"]])
        let dir = NSTemporaryDirectory() + "ingot-report-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try p.write(to: dir + "/r.html", json: .object(JSONObject([("perplexity", .double(41.6))])))
        let html = try String(contentsOfFile: dir + "/r.html", encoding: .utf8)
        #expect(html.contains("<title>a &lt;title&gt;</title>") && html.contains("<td class=\"n\">41.6 ± 3.9</td>"))
        #expect(!html.contains("<script") && !html.contains("<link"))
        let json = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: ReportPage.jsonPath(for: dir + "/r.html")))), field: "r.json")
        #expect(json["perplexity"]?.doubleValue == 41.6)
    }
}
