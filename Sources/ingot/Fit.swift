import ArgumentParser
import Foundation
import IngotArchitectures
import IngotCalibrate
import IngotConvert
import IngotFit
import IngotFormats
import IngotModel
import IngotNumerics
import IngotQuantize
import IngotReport

struct Fit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The most accurate model that fits a size: a type per tensor (GGUF or MLX), chosen by measuring what each costs.",
        discussion: """
        Every quantizable tensor is measured on the calibration text (--probe-windows windows of --ctx tokens): in each \
        candidate type (--types), quantized as `ingot quantize` would (GGUF: under the importance matrix, --imatrix or \
        one calibrated on --text) and run in that form, the change it makes to its block's output; each block, with \
        its tensors at about 4.5 bits at once, run to the logits, turns that change into KL divergence from the model as \
        stored. The plan of least summed predicted divergence whose file fits --budget (bytes of the whole file, \
        metadata included: 100MB, 95.5MiB, 4G; for an MLX folder, its safetensors files) or --bpw (bits per weight of \
        the tensors' bytes, as mlx-lm counts them) is written with quantize's quantizers, and its divergence on the probe \
        windows is measured beside the prediction.

        --format mlx writes a Hugging Face folder as mlx-lm loads it: each weight mlx-lm quantizes (the linear layers, \
        the embedding and the output head) in an MLX affine form (affine-BITS-GROUP: bits 2, 3, 4, 5, 6, 8, groups \
        of 32, 64, 128; --types may add mxfp4, mxfp8, nvfp4) or left in float, listed in config.json's quantization. \
        --format compressed-tensors writes a folder as vLLM loads it: each linear layer of the blocks in an integer form \
        (W4A16, W4A16_ASYM or W8A16 with -g32, -g64, -g128 or -channel) or left in float, one config group per form; \
        the layers vLLM fuses (q, k, v; gate, up) take one form.

        --save-plan keeps the plan with every measurement; --plan reads it back, to choose again for another budget \
        without measuring (give --imatrix, the one it was measured with, or --text to calibrate one), or to write it as \
        it is. Every architecture eval runs (mixtures of experts: one type per stacked expert tensor, as GGUF holds it); \
        formats/quantization.md has the method.
        """
    )

    @Argument(help: "A .gguf model (F16, BF16 or F32 weights, as quantize takes), or a Hugging Face folder.")
    var input: String

    @Option(name: .shortAndLong, help: "The GGUF file (or, with --format mlx, the folder) to write.")
    var output: String?

    @Option(name: .long, help: "gguf: one GGUF file; mlx: a Hugging Face folder of MLX quantized weights, as mlx-lm loads it; compressed-tensors: a folder of pack-quantized integer weights, as vLLM loads it.")
    var format: FitFormat = .gguf

    @Option(name: .long, help: "The size of the file to write, at most: bytes, or with KB, MB, GB (powers of 1000) or KiB, MiB, GiB.")
    var budget: String?

    @Option(name: .long, help: "Bits per weight of the tensors' bytes, at most (instead of --budget).")
    var bpw: Double?

    @Option(name: .long, help: "The calibration text (UTF-8): an importance matrix is calibrated on it unless --imatrix is given, and the probes run on its first windows.")
    var text: String?

    @Option(name: .long, help: "An importance matrix (from `ingot calibrate` or llama-imatrix) instead of calibrating one on --text (GGUF only).")
    var imatrix: String?

    @OptionGroup var windows: WindowOptions

    @Option(name: .customLong("probe-windows"), help: "Windows of --text each tensor's probe runs over.")
    var probeWindows = 4

    @Option(name: .long, help: "The candidate types, comma-separated (default, GGUF: \(FitOptions.defaultCandidates(.gguf).map(\.name).joined(separator: ",")); MLX: affine-BITS-GROUP for bits 2, 3, 4, 5, 6, 8 and groups 32, 64, 128; compressed-tensors: W4A16, W4A16_ASYM, W8A16 with -g32, -g64, -g128, -channel).")
    var types: String?

    @Option(name: .customLong("response-windows"), help: "Of the probe windows, those each candidate type's effect on its block is measured on.")
    var responseWindows = 1

    @Option(name: .customLong("save-plan"), help: "Write the plan and its measurements here (JSON).")
    var savePlan: String?

    @Option(name: .long, help: "A plan --save-plan wrote: re-planned for --budget or --bpw where given, else written as saved.")
    var plan: String?

    @Option(name: .long, help: "Write a page here (self-contained HTML: the plan, the size-against-divergence curve of the same measurements, the bits per layer) and its data as JSON beside it.")
    var report: String?

    @Flag(name: .customLong("dry-run"), help: "Measure and plan; write no model.")
    var dryRun = false

    @OptionGroup var parallel: ParallelOptions

    @OptionGroup var common: CommonOptions

    func validate() throws {
        if output == nil && !dryRun { throw ValidationError("give --output (or --dry-run)") }
        if budget != nil && bpw != nil { throw ValidationError("give --budget or --bpw, not both") }
        if budget == nil && bpw == nil && plan == nil { throw ValidationError("give --budget SIZE or --bpw BITS") }
        if let budget, Self.size(budget) == nil {
            throw ValidationError("--budget: '\(budget)' is not a size (bytes, or a number with KB, MB, GB, KiB, MiB or GiB)")
        }
        if let bpw, !(bpw > 0 && bpw <= 32) { throw ValidationError("--bpw must be above 0 and at most 32, not \(bpw)") }
        if format != .gguf && imatrix != nil {
            throw ValidationError("--imatrix: \(format.rawValue) quantization weighs every column alike; give --text alone with --format \(format.rawValue)")
        }
        if text == nil && !(plan != nil && (imatrix != nil || format != .gguf)) {
            throw ValidationError(format == .gguf ? "give --text (the calibration text), or --plan with --imatrix" : "give --text (the calibration text), or --plan")
        }
        if !(1...1000).contains(probeWindows) { throw ValidationError("--probe-windows must be between 1 and 1000, not \(probeWindows)") }
        if !(1...probeWindows).contains(responseWindows) { throw ValidationError("--response-windows must be between 1 and --probe-windows (\(probeWindows)), not \(responseWindows)") }
        _ = try candidates()
    }

    /// The tensors fit measures and counts, as GGUF sees them. A folder's in their own float type: llama.cpp's `auto`
    /// stores an F32 folder's weights as BF16, while a folder written from it keeps F32 (and GGUF output of an F32
    /// model stays F32 as quantize's input).
    static func tensors(of file: ModelFile) throws -> (any GGUFTensorSource)? {
        guard case .huggingFaceFolder(let d) = file.storage else { return try file.ggufTensors() }
        let matrices = d.shards.flatMap(\.tensors).filter { $0.shape.count >= 2 }
        let allF32 = !matrices.isEmpty && matrices.allSatisfy { $0.dtype == .f32 }
        return try FolderAsGGUF(d, dtype: allF32 ? .f32 : .auto)
    }

    /// "100MB", "95.5MiB", "4G", "123456": bytes.
    static func size(_ text: String) -> Int? {
        let units: [(String, Double)] = [("KIB", 1024), ("MIB", 1048576), ("GIB", 1073741824), ("KB", 1e3), ("MB", 1e6), ("GB", 1e9),
                                         ("K", 1e3), ("M", 1e6), ("G", 1e9), ("B", 1)]
        let t = text.trimmingCharacters(in: .whitespaces).uppercased()
        for (suffix, factor) in units where t.hasSuffix(suffix) {
            guard let v = Double(t.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), v > 0, (v * factor) < 9e18 else { return nil }
            return Int(v * factor)
        }
        guard let v = Int(t), v > 0 else { return nil }
        return v
    }

    func candidates() throws -> [FitType] {
        guard let types else { return FitOptions.defaultCandidates(format) }
        return try types.split(separator: ",").map { name in
            guard let t = FitType.named(String(name).trimmingCharacters(in: .whitespaces), format: format), t != .float else {
                throw ValidationError("--types: '\(name)' is not a \(format.rawValue) type Ingot quantizes to; known: \(FitType.all(format).map(\.name).joined(separator: ", "))")
            }
            return t
        }
    }

    func run() throws {
        try reportingErrors(json: common.json) {
            let clock = Stopwatch()
            // A folder is not written over: say so before measuring, not after.
            if format != .gguf, !dryRun, let output { try TemporaryFolder.checkDestination(output) }
            let file = try ModelFile.open(input)
            var warnings = Warnings()
            warnings.add(try ModelValidation.check(model: file))
            guard let gguf = try Self.tensors(of: file) else {
                throw QuantError(.unsupportedType, "\(input): a lone safetensors file has no config.json; give its Hugging Face folder")
            }
            let model = try DecoderModel.open(file)
            let line = ProgressLine(verb: "fit", enabled: !common.json)
            let tokenizer = try TokenizerLoader.load(file)
            let textBytes = try text.map { path in
                let mapped = try MappedFile(path: path)
                return Array(mapped.bytes)
            }

            // The importance matrix (GGUF's weighted quantizers): given, or calibrated on the text.
            var importance: ImportanceMatrix?, importancePath: String?
            var calibrationSeconds: Double?
            if let imatrix {
                importance = try ImportanceMatrix.read(path: imatrix)
                importancePath = imatrix
            } else if format == .gguf {
                var o = CalibrationOptions()
                (o.context, o.chunks, o.threads) = (windows.ctx, windows.chunks, parallel.count)
                let calibrator = try Calibrator(model: model, tokenizer: tokenizer, options: o)
                let (m, report) = try calibrator.run(textBytes!, dataset: text!) { p in
                    line.show("calibrating: window \(p.chunk)/\(p.chunks), \(Human.fixed(p.tokensPerSecond, 0)) tokens/s")
                }
                (importance, importancePath, calibrationSeconds) = (m, text!, report.seconds)
            }

            // What the file holds apart from the tensors fit chooses for, and how a plan is counted and written.
            let target: FitTarget = format == .gguf
                ? try GGUFTarget(input: input, gguf: gguf, importance: importance!, importancePath: importancePath!, threads: parallel.count)
                : try FolderTarget(file: file, gguf: gguf, format: format, threads: parallel.count)

            // The budget: refused now if no plan can fit it, before anything is measured.
            let elements = gguf.tensors.reduce(0) { $0 + $1.elementCount }
            let limit: FitLimit
            if let budget { limit = .file(Self.size(budget)!) }
            else if let bpw { limit = .data(Int((bpw * Double(elements) / 8).rounded(.down)), field: "--bpw") }
            else { limit = .saved }
            var options = FitOptions(format: format)
            (options.candidates, options.responseWindows, options.threads) = (try candidates(), responseWindows, parallel.count)
            if plan == nil {
                _ = try target.choose(SensitivityMeter.unmeasured(target.measured, importance: importance, options: options,
                                                                  alignment: target.alignment), limit: limit)
            }

            // The probes' windows and the measurements (or a saved plan's).
            var meter: SensitivityMeter?
            if let textBytes {
                let cut = try tokenizer.windows(textBytes, context: windows.ctx, chunks: probeWindows).map(tokenizer.runnable)
                line.show("running the base model over \(cut.count) windows")
                meter = try SensitivityMeter(model: model, source: gguf, importance: importance, windows: cut, options: options)
            }
            var measured: [FitTensor], saved: [Int]?
            var measureSeconds: Double?
            if let plan {
                let byName = Dictionary(uniqueKeysWithValues: target.measured.map { ($0.name, $0) })
                let mapped = try MappedFile(path: plan)
                (measured, saved) = try FitPlan.read(Array(mapped.bytes), shapes: byName.mapValues(\.dimensions), format: format)
                // Sizes as this file lays them out (the alignment may differ from the model the plan was made on).
                for i in measured.indices {
                    let info = byName[measured[i].name]!
                    for k in measured[i].candidates.indices {
                        measured[i].candidates[k].bytes = SensitivityMeter.bytes(of: measured[i].candidates[k].type, for: info,
                                                                                alignment: target.alignment)
                    }
                }
            } else {
                let t0 = clock.seconds
                measured = try meter!.measure(target.measured, alignment: target.alignment) { p in
                    line.show("measuring tensor \(p.tensor)/\(p.tensors) \(p.name), \(Human.fixed(p.seconds, 0)) s")
                }
                measureSeconds = clock.seconds - t0
            }

            // The plan within the budget.
            var fit: FitPlan
            var layout: FitLayout
            if let saved, case .saved = limit {
                fit = FitPlan(tensors: measured, chosen: saved, fixedBytes: 0, budget: 0)
                layout = try target.layout(fit.types)
                fit.fixedBytes = layout.fileBytes - fit.fileBytes
                fit.budget = layout.fileBytes
            } else {
                (fit, layout) = try target.choose(measured, limit: limit)
            }
            if let savePlan {
                var extra: [(String, JSONValue)] = [("model", .string(input))]
                if let importancePath { extra.append(("imatrix", .string(importancePath))) }
                extra += [("probeWindows", JSONValue(meter?.windows.count ?? 0)), ("context", JSONValue(windows.ctx))]
                try Data(fit.json(format: format, extra: extra).serialized(pretty: true).utf8).write(to: URL(fileURLWithPath: savePlan), options: .atomic)
            }

            var written: (bytes: Int, warnings: [String])?
            var measuredKLD: Double?
            if !dryRun {
                written = try target.write(fit.types, to: output!) { done, total, name in
                    line.show("writing tensor \(done)/\(total)\(name.map { " " + $0 } ?? "")")
                }
                if let meter {
                    line.show("measuring the written model over \(meter.windows.count) windows")
                    measuredKLD = try meter.kld(of: try DecoderModel.open(try ModelFile.open(output!)))
                }
            }
            line.finish()
            warnings.add(layout.warnings + (written?.warnings ?? []))
            warnings.print(json: common.json)
            let json = report(fit, layout: layout, elements: elements, outputBytes: written?.bytes, measuredKLD: measuredKLD, warnings: warnings,
                              windows: meter?.windows.count, seconds: (calibrationSeconds, meter?.baseSeconds, measureSeconds, clock.seconds))
            if let path = self.report {
                try VerdictReport.fit(fit, ties: target.tieIndices(fit.tensors), modelPath: input, output: dryRun ? nil : output,
                                      text: text, windows: meter?.windows.count, context: windows.ctx, measuredKLD: measuredKLD, json: json, to: path)
            }
        }
    }

    /// Prints the result (text or JSON) and returns its JSON.
    @discardableResult
    func report(_ fit: FitPlan, layout: FitLayout, elements: Int, outputBytes: Int?, measuredKLD: Double?,
                warnings: Warnings, windows: Int?, seconds: (calibration: Double?, base: Double?, measure: Double?, total: Double)) -> JSONValue {
        let bpw = Double(layout.dataBytes * 8) / Double(max(1, elements))
        var byType: [String: (count: Int, bytes: Int)] = [:]
        for (t, c) in zip(fit.tensors, fit.chosen) {
            let k = t.candidates[c]
            byType[k.type.name, default: (0, 0)].count += 1
            byType[k.type.name, default: (0, 0)].bytes += k.bytes
        }
        var o = JSONObject([
            ("input", .string(input)), ("output", output.map { .string($0) } ?? .null), ("format", .string(format.rawValue)),
            ("dryRun", .bool(dryRun)), ("budget", JSONValue(fit.budget)), ("fileBytes", JSONValue(fit.fileBytes)),
            ("bitsPerWeight", .double(bpw)), ("fileType", .string(layout.fileType)),
            ("predictedKLD", .double(fit.predictedKLD)), ("measuredKLD", measuredKLD.map { .double($0) } ?? .null),
            ("probeWindows", windows.map { JSONValue($0) } ?? .null), ("context", JSONValue(self.windows.ctx)),
            ("types", .object(JSONObject(byType.sorted { $0.value.bytes > $1.value.bytes }.map {
                ($0.key, .object(JSONObject([("tensors", JSONValue($0.value.count)), ("bytes", JSONValue($0.value.bytes))])))
            }))),
            ("plan", .array(zip(fit.tensors, fit.chosen).map { t, c in
                .object(JSONObject([("name", .string(t.name)), ("type", .string(t.candidates[c].type.name)),
                                    ("bytes", JSONValue(t.candidates[c].bytes)), ("loss", .double(t.candidates[c].loss)),
                                    ("probeKLD", .double(t.probeKLD))]))
            })),
            ("seconds", .object(JSONObject([("calibration", seconds.calibration.map { .double($0) } ?? .null),
                                            ("base", seconds.base.map { .double($0) } ?? .null),
                                            ("measurement", seconds.measure.map { .double($0) } ?? .null),
                                            ("total", .double(seconds.total))]))),
        ])
        if let outputBytes { o["outputBytes"] = JSONValue(outputBytes) }
        let json = warnings.adding(to: .object(o))
        if common.json {
            print(json.serialized(pretty: true))
            return json
        }
        if dryRun {
            var t = Table(header: ["tensor", "shape", "from", "to", "size", "predicted KLD"], rightAligned: [4, 5])
            for (p, c) in zip(fit.tensors, fit.chosen) {
                let k = p.candidates[c]
                t.rows.append([p.name, p.dimensions.reversed().map(String.init).joined(separator: "x"), p.sourceType.name, k.type.name,
                               Human.bytes(k.bytes), String(format: "%.6f", k.loss)])
            }
            print(t.render())
        }
        var s = Table(header: ["type", "tensors", "size"], rightAligned: [1, 2])
        for (name, e) in byType.sorted(by: { $0.value.bytes > $1.value.bytes }) { s.rows.append([name, String(e.count), Human.bytes(e.bytes)]) }
        print(s.render())
        print("\(dryRun ? "would write" : "wrote") \(output ?? "(dry run)"): \(fit.fileBytes) bytes (\(Human.bytes(fit.fileBytes)), "
              + "\(Human.fixed(bpw, 3)) bits/weight) within \(fit.budget) bytes")
        print("  predicted KL divergence from \(input): \(String(format: "%.5f", fit.predictedKLD))"
              + (measuredKLD.map { ", measured \(String(format: "%.5f", $0)) on \(windows ?? 0) windows of \(self.windows.ctx) tokens" } ?? ""))
        var times: [String] = []
        if let c = seconds.calibration { times.append("\(Human.fixed(c, 1)) s calibrating") }
        if let m = seconds.measure { times.append("\(Human.fixed(m, 1)) s measuring") }
        times.append("\(Human.fixed(seconds.total, 1)) s in all")
        print("  " + times.joined(separator: ", "))
        if let path = self.report { print("report: \(path) (data: \(ReportPage.jsonPath(for: path)))") }
        return json
    }
}
