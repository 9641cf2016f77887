import Foundation
import IngotEvaluate
import IngotFit
import IngotFormats
import IngotModel
import IngotReport

/// The verdict pages of `ingot eval --report` and `ingot fit --report`: what was measured, on which text, with what
/// uncertainty, in numbers and pictures, and the same data as JSON beside the page.
enum VerdictReport {
    /// Bytes on disk: a file's size, or the sum of a folder's files.
    static func bytes(_ path: String) -> Int {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return 0 }
        if !isDirectory.boolValue { return ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? Int) ?? 0 }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.reduce(0) { $0 + bytes(path + "/" + $1) }
    }

    static func mib(_ b: Int) -> String { String(format: "%.2f MiB", Double(b) / 1048576) }
    static func pm(_ v: Double, _ e: Double, _ digits: Int = 4) -> String { String(format: "%.\(digits)f ± %.\(digits)f", v, e) }

    /// The layer a tensor belongs to, for the per-layer picture: "blk.N", or the tensor's own name.
    static func layer(_ name: String) -> String {
        guard name.hasPrefix("blk."), let dot = name.dropFirst(4).firstIndex(of: ".") else { return name }
        return String(name[..<dot])
    }

    /// Tensors grouped by layer in file order, each layer's value the element-weighted mean of its tensors'.
    static func byLayer(_ entries: [(name: String, elements: Int, value: Double)]) -> [(label: String, value: Double)] {
        var order: [String] = [], sums: [String: (Double, Int)] = [:]
        for e in entries where e.value.isFinite && e.elements > 0 {
            let l = layer(e.name)
            if sums[l] == nil { order.append(l) }
            let s = sums[l] ?? (0, 0)
            sums[l] = (s.0 + e.value * Double(e.elements), s.1 + e.elements)
        }
        let blocks = order.filter { $0.hasPrefix("blk.") }.sorted { Int($0.dropFirst(4)) ?? 0 < Int($1.dropFirst(4)) ?? 0 }
        // Blocks by number, then the rest (embedding, output) where they differ at all.
        return (blocks + order.filter { !$0.hasPrefix("blk.") }).compactMap { l in
            let v = sums[l]!.0 / Double(max(1, sums[l]!.1))
            return l.hasPrefix("blk.") || v > 0 ? (l.hasPrefix("blk.") ? String(l.dropFirst(4)) : l.replacingOccurrences(of: ".weight", with: ""), v) : nil
        }
    }

    static func eval(_ r: EvalReport, text: String, modelPath: String, basePath: String?, elements: Int,
                     differences: [WeightDifference.Entry], json: JSONValue, to path: String) throws {
        let modelBytes = bytes(modelPath), baseBytes = basePath.map(bytes)
        let bpw = elements > 0 ? Double(modelBytes * 8) / Double(elements) : 0
        var page = ReportPage(title: basePath.map { "\(modelPath) against \($0)" } ?? "Perplexity of \(modelPath)")
        let windows = "\(r.chunks) windows of \(r.context) tokens of \(text) (\(r.scoredTokens) tokens scored: the second half of each window, as llama-perplexity scores)"
        if let k = r.kld, let basePath {
            page.verdict("Over \(windows), \(modelPath) (\(mib(modelBytes)), \(String(format: "%.3f", bpw)) bits per weight) puts the same "
                         + "token first as \(basePath) for \(String(format: "%.2f", 100 * k.sameTop)) % ± \(String(format: "%.2f", 100 * k.sameTopError)) % "
                         + "of them. The mean KL divergence of its next-token distributions from the base's is \(pm(k.meanKLD, k.meanKLDError, 5)) "
                         + "(median \(Chart.number(k.kldPercentiles.first { $0.0 == "median" }?.1 ?? 0)), 99th percentile "
                         + "\(Chart.number(k.kldPercentiles.first { $0.0 == "99" }?.1 ?? 0))); its perplexity is \(pm(r.perplexity, r.perplexityError)), "
                         + "\(pm(k.perplexityRatio, k.perplexityRatioError)) times the base's \(pm(k.basePerplexity, k.basePerplexityError)).")
        } else {
            page.verdict("Over \(windows), \(modelPath) (\(mib(modelBytes)), \(String(format: "%.3f", bpw)) bits per weight) has a perplexity of "
                         + "\(pm(r.perplexity, r.perplexityError)). Give --base to compare it with the model it was made from.")
        }
        page.heading("What was measured")
        var facts: [[String]] = [["model", modelPath], ["size", "\(modelBytes) bytes (\(mib(modelBytes))), \(String(format: "%.3f", bpw)) bits per weight over \(elements) weights"]]
        if let basePath, let baseBytes { facts += [["base", basePath], ["base size", "\(baseBytes) bytes (\(mib(baseBytes)))"]] }
        facts += [["text", text], ["windows", "\(r.chunks) of \(r.context) tokens"], ["scored tokens", "\(r.scoredTokens)"],
                  ["threads, kernels", "\(r.threads), \(r.kernels)"]]
        page.table(["", ""], facts, alignNumbers: false)
        page.paragraph("Uncertainties are one standard error over the scored positions, computed as llama-perplexity computes them; "
                       + "positions within a window are not independent, so they understate the spread between texts.")
        page.heading("Numbers")
        var rows = [["perplexity", pm(r.perplexity, r.perplexityError)]]
        if let k = r.kld {
            rows += [["base perplexity", pm(k.basePerplexity, k.basePerplexityError)], ["PPL / base PPL", pm(k.perplexityRatio, k.perplexityRatioError)],
                     ["mean KL divergence", pm(k.meanKLD, k.meanKLDError, 6)],
                     ["same top token", "\(String(format: "%.3f", 100 * k.sameTop)) % ± \(String(format: "%.3f", 100 * k.sameTopError)) %"],
                     ["mean Δp", "\(String(format: "%.4f", 100 * k.meanDeltaP)) % ± \(String(format: "%.4f", 100 * k.meanDeltaPError)) %"],
                     ["RMS Δp", "\(String(format: "%.4f", 100 * k.rmsDeltaP)) % ± \(String(format: "%.4f", 100 * k.rmsDeltaPError)) %"]]
            rows += k.kldPercentiles.map { ["KLD \($0.0 == "median" || $0.0 == "max" || $0.0 == "min" ? $0.0 : "\($0.0) %")", Chart.number($0.1)] }
        }
        page.table(["measure", "value"], rows)
        if let k = r.kld {
            let bars = k.kldHistogram.enumerated().map { i, c -> (label: String, value: Double) in
                (i == 0 ? "≤1e-6" : i == k.kldHistogram.count - 1 ? ">1e2" : Chart.number(KLDReport.histogramUpperEdge(i)), Double(c))
            }
            page.figure(Chart.bars(bars, yLabel: "positions", labelEvery: 4, title: "KL divergence per position"),
                        caption: "How many scored positions have each KL divergence from the base (bins a quarter of a decade wide, labelled by their upper edge).")
        }
        if !differences.isEmpty {
            page.heading("Where the weights differ")
            let entries = differences.map { (name: $0.name, elements: $0.elements, value: $0.relativeRMS) }
            page.figure(Chart.bars(byLayer(entries), yLabel: "relative RMS difference", logY: true, title: "weight difference per layer"),
                        caption: "Per layer (blocks by number, then the embedding and output where they changed), the relative RMS difference ‖W − W_base‖ / ‖W_base‖ of the dequantized weights, weighted by size.")
            page.table(["tensor", "type", "base type", "weights", "relative RMS difference"],
                       differences.map { [$0.name, $0.type.name, $0.baseType.name, "\($0.elements)", Chart.number($0.relativeRMS)] },
                       collapsed: "every tensor (\(differences.count))")
        }
        try page.write(to: path, json: json)
    }

    static func fit(_ plan: FitPlan, ties: [[Int]], modelPath: String, output: String?, text: String?, windows: Int?, context: Int,
                    measuredKLD: Double?, json: JSONValue, to path: String) throws {
        var page = ReportPage(title: "Fitting \(modelPath) into \(plan.budget) bytes")
        // Bits per weight of the tensor data, as --json counts them.
        let bpw = json["bitsPerWeight"]?.doubleValue ?? 0
        let measured = measuredKLD.map { ", and measured \(String(format: "%.5f", $0)) on the written file over the same windows" } ?? ""
        page.verdict("\(output ?? "The plan") takes \(plan.fileBytes) bytes (\(mib(plan.fileBytes)), \(String(format: "%.3f", bpw)) bits per weight) of the "
                     + "\(plan.budget) allowed. Its KL divergence from \(modelPath) is predicted at \(String(format: "%.5f", plan.predictedKLD))\(measured).")
        page.heading("What was measured")
        page.paragraph("Each tensor's cost in each candidate type was measured by running it in that type through the forward pass"
                       + (windows.map { " over \($0) windows of \(context) tokens of \(text ?? "the calibration text")" } ?? "")
                       + "; the costs are predictions for small changes that add, so the prediction is checked against the written model where it is written. "
                       + "Both are on the calibration text: give the result to `ingot eval --base` on a text calibration never saw for the held-out verdict.")
        // The size-against-divergence curve of the same measurements.
        let range = FitPlan.range(plan.tensors, fixedBytes: plan.fixedBytes)
        var curve: [(x: Double, y: Double)] = []
        for k in 0...24 {
            let budget = range.lowerBound + (range.upperBound - 1 - range.lowerBound) * k / 24
            if let p = try? FitPlan.choose(plan.tensors, ties: ties, fixedBytes: plan.fixedBytes, budget: budget) {
                curve.append((Double(p.fileBytes) / 1048576, p.predictedKLD))
            }
        }
        var series = [Chart.Series(label: "predicted, other budgets", points: curve, color: "#4477aa"),
                      Chart.Series(label: "this plan, predicted", points: [(Double(plan.fileBytes) / 1048576, plan.predictedKLD)], color: "#ee6677", line: false)]
        if let measuredKLD {
            series.append(Chart.Series(label: "this plan, measured", points: [(Double(plan.fileBytes) / 1048576, measuredKLD)], color: "#228833", line: false))
        }
        page.figure(Chart.lines(series, xLabel: "file size (MiB)", yLabel: "KL divergence from the model as stored", logY: true, title: "size against KL divergence"),
                    caption: "The plans the same measurements give from the smallest file the candidates allow to the model as stored.")
        page.heading("The plan")
        var types: [String: (Int, Int)] = [:]
        for (t, c) in zip(plan.tensors, plan.chosen) {
            let k = t.candidates[c]
            types[k.type.name, default: (0, 0)].0 += 1
            types[k.type.name, default: (0, 0)].1 += k.bytes
        }
        page.table(["type", "tensors", "bytes"], types.sorted { $0.value.1 > $1.value.1 }.map { [$0.key, "\($0.value.0)", "\($0.value.1)"] })
        let bits = zip(plan.tensors, plan.chosen).map { t, c in (name: t.name, elements: t.elementCount, value: Double(t.candidates[c].bytes * 8) / Double(max(1, t.elementCount))) }
        page.figure(Chart.bars(byLayer(bits), yLabel: "bits per weight", title: "bits per layer"),
                    caption: "Bits per weight the plan gives each layer (blocks by number, then the embedding and output), padding included.")
        page.table(["tensor", "type", "bytes", "predicted KLD"], zip(plan.tensors, plan.chosen).map { t, c in
            [t.name, t.candidates[c].type.name, "\(t.candidates[c].bytes)", Chart.number(t.candidates[c].loss)]
        }, collapsed: "every tensor (\(plan.tensors.count))")
        var o = json.objectValue ?? JSONObject()
        o["curve"] = .array(curve.map { .object(JSONObject([("mib", .double($0.x)), ("predictedKLD", .double($0.y))])) })
        try page.write(to: path, json: .object(o))
    }
}
