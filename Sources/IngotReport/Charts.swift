import Foundation

/// Charts as inline SVG: a report that opens offline needs no script and no library, and SVG scales in print. No
/// maintained plotting library exists among the Swift packages the project may use; these few shapes are all the
/// reports draw.
public enum Chart {
    public struct Series: Sendable {
        public var label: String
        public var points: [(x: Double, y: Double)]
        public var color: String
        /// Points joined by a line, or dots alone.
        public var line: Bool
        public init(label: String, points: [(x: Double, y: Double)], color: String, line: Bool = true) {
            (self.label, self.points, self.color, self.line) = (label, points, color, line)
        }
    }

    static let width = 720.0, height = 320.0
    static let left = 70.0, right = 20.0, top = 20.0, bottom = 50.0

    /// A line (or scatter) chart of `series`, on a logarithmic y axis where `logY`.
    public static func lines(_ series: [Series], xLabel: String, yLabel: String, logY: Bool = false, title: String) -> String {
        let all = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite && (!logY || $0.y > 0) }
        guard let x0 = all.map(\.x).min(), let x1 = all.map(\.x).max(), let y0 = all.map(\.y).min(), let y1 = all.map(\.y).max() else {
            return "<p>(no data to draw)</p>"
        }
        let fy: (Double) -> Double = logY ? { log10($0) } : { $0 }
        let (ly0, ly1) = logY ? (floor(fy(y0)), ceil(fy(y1))) : (min(0, y0), y1 * 1.05)
        let (lx0, lx1) = x0 == x1 ? (x0 - 1, x1 + 1) : (x0, x1)
        let (ry0, ry1) = ly0 == ly1 ? (ly0 - 1, ly1 + 1) : (ly0, ly1)
        func px(_ x: Double) -> Double { left + (x - lx0) / (lx1 - lx0) * (width - left - right) }
        func py(_ y: Double) -> Double { top + (1 - (fy(y) - ry0) / (ry1 - ry0)) * (height - top - bottom) }
        var svg = frame(title: title)
        svg += axes(xTicks: ticks(lx0, lx1).map { (px($0), number($0)) },
                    yTicks: logY ? stride(from: ry0, through: ry1, by: 1).map { (py(pow(10, $0)), "1e\(Int($0))") }
                                 : ticks(ry0, ry1).map { (py($0), number($0)) },
                    xLabel: xLabel, yLabel: yLabel)
        for (k, s) in series.enumerated() {
            let pts = s.points.filter { $0.x.isFinite && $0.y.isFinite && (!logY || $0.y > 0) }
            if s.line && pts.count > 1 {
                svg += "<polyline fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2\" points=\""
                    + pts.map { "\(fmt(px($0.x))),\(fmt(py($0.y)))" }.joined(separator: " ") + "\"/>"
            }
            for p in pts { svg += "<circle cx=\"\(fmt(px(p.x)))\" cy=\"\(fmt(py(p.y)))\" r=\"\(s.line ? 2.5 : 5)\" fill=\"\(s.color)\"/>" }
            svg += legend(k, s.label, s.color)
        }
        return svg + "</svg>"
    }

    /// Vertical bars, one per label, on a logarithmic scale where `logY`.
    /// `labelEvery`: label one bar in so many (nil: as many as fit).
    public static func bars(_ bars: [(label: String, value: Double)], yLabel: String, logY: Bool = false, color: String = "#4477aa",
                            labelEvery: Int? = nil, title: String) -> String {
        let values = bars.map(\.value).filter { $0.isFinite && (!logY || $0 > 0) }
        guard let vmax = values.max(), let vmin = values.min(), !bars.isEmpty else { return "<p>(no data to draw)</p>" }
        let (l0, l1) = logY ? (floor(log10(vmin)), max(ceil(log10(vmax)), floor(log10(vmin)) + 1)) : (0, vmax > 0 ? vmax * 1.05 : 1)
        func py(_ v: Double) -> Double {
            let f = logY ? (log10(max(v, pow(10, l0))) - l0) / (l1 - l0) : (v - l0) / (l1 - l0)
            return top + (1 - f) * (height - top - bottom)
        }
        let slot = (width - left - right) / Double(bars.count)
        var svg = frame(title: title)
        let every = labelEvery ?? max(1, Int((Double(bars.count) / 30).rounded(.up)))
        svg += axes(xTicks: bars.indices.filter { $0 % every == 0 }.map { (left + (Double($0) + 0.5) * slot, bars[$0].label) },
                    yTicks: logY ? stride(from: l0, through: l1, by: 1).map { (py(pow(10, $0)), "1e\(Int($0))") } : ticks(l0, l1).map { (py($0), number($0)) },
                    xLabel: "", yLabel: yLabel)
        for (i, b) in bars.enumerated() where b.value.isFinite && (!logY || b.value > 0) {
            let y = py(b.value)
            svg += "<rect x=\"\(fmt(left + Double(i) * slot + slot * 0.1))\" y=\"\(fmt(y))\" width=\"\(fmt(slot * 0.8))\" "
                + "height=\"\(fmt(height - bottom - y))\" fill=\"\(color)\"><title>\(escape(b.label)): \(number(b.value))</title></rect>"
        }
        return svg + "</svg>"
    }

    static func frame(title: String) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
            + "role=\"img\" aria-label=\"\(escape(title))\" font-family=\"sans-serif\" font-size=\"11\">"
            + "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
    }

    static func axes(xTicks: [(Double, String)], yTicks: [(Double, String)], xLabel: String, yLabel: String) -> String {
        var s = "<line x1=\"\(left)\" y1=\"\(height - bottom)\" x2=\"\(width - right)\" y2=\"\(height - bottom)\" stroke=\"#333\"/>"
        s += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(height - bottom)\" stroke=\"#333\"/>"
        for (x, t) in xTicks {
            s += "<line x1=\"\(fmt(x))\" y1=\"\(height - bottom)\" x2=\"\(fmt(x))\" y2=\"\(height - bottom + 4)\" stroke=\"#333\"/>"
            s += "<text x=\"\(fmt(x))\" y=\"\(height - bottom + 16)\" text-anchor=\"middle\">\(escape(t))</text>"
        }
        for (y, t) in yTicks {
            s += "<line x1=\"\(left)\" y1=\"\(fmt(y))\" x2=\"\(width - right)\" y2=\"\(fmt(y))\" stroke=\"#ddd\"/>"
            s += "<text x=\"\(left - 6)\" y=\"\(fmt(y + 4))\" text-anchor=\"end\">\(escape(t))</text>"
        }
        s += "<text x=\"\((left + width - right) / 2)\" y=\"\(height - 10)\" text-anchor=\"middle\">\(escape(xLabel))</text>"
        s += "<text x=\"14\" y=\"\((top + height - bottom) / 2)\" text-anchor=\"middle\" transform=\"rotate(-90 14 \((top + height - bottom) / 2))\">\(escape(yLabel))</text>"
        return s
    }

    static func legend(_ k: Int, _ label: String, _ color: String) -> String {
        let y = top + 14 * Double(k) + 6
        return "<rect x=\"\(width - right - 200)\" y=\"\(y - 8)\" width=\"10\" height=\"10\" fill=\"\(color)\"/>"
            + "<text x=\"\(width - right - 185)\" y=\"\(y + 1)\">\(escape(label))</text>"
    }

    /// About five round ticks from a to b.
    static func ticks(_ a: Double, _ b: Double) -> [Double] {
        let span = b - a
        guard span > 0, span.isFinite else { return [a] }
        let raw = span / 5, mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? raw
        return stride(from: (a / step).rounded(.up) * step, through: b + step * 1e-9, by: step).map { $0 }
    }

    static func fmt(_ v: Double) -> String { String(format: "%.1f", v) }

    /// A number as a reader wants it on an axis or in a table: a few significant digits.
    public static func number(_ v: Double) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1e6 || a < 1e-3 { return String(format: "%.3g", v) }
        if a >= 100 { return String(format: "%.0f", v) }
        return String(format: "%.4g", v)
    }

    public static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
