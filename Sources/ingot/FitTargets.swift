import ArgumentParser
import Foundation
import IngotConvert
import IngotFit
import IngotFormats
import IngotModel
import IngotNumerics
import IngotQuantize

extension FitFormat: ExpressibleByArgument {}

/// What a fit's file must fit in: its whole size (`--budget`), the bytes of its tensor data (`--bpw`: bits per weight
/// of the data, as llama.cpp and mlx-lm count them), or, for a saved plan written as it is, its own size.
enum FitLimit {
    case file(Int)
    case data(Int, field: String)
    case saved

    var field: String {
        if case .data(_, let f) = self { return f }
        return "--budget"
    }

    /// The file bytes allowed where the headers take `headers` bytes.
    func allowed(headers: Int) -> Int {
        switch self {
        case .file(let b): b
        case .data(let d, _): headers + d
        case .saved: Int.max
        }
    }
}

/// A plan laid out as the file (or the folder's safetensors files) it writes: exact bytes.
struct FitLayout {
    var fileBytes: Int
    /// Bytes of the headers (GGUF's metadata and tensor list; each safetensors file's length and JSON header).
    var headerBytes: Int
    var dataBytes: Int { fileBytes - headerBytes }
    /// GGUF: `general.file_type`; MLX: the form the config's `quantization` names for the weights not listed.
    var fileType: String
    var warnings: [String] = []
}

/// The file a fit writes: which tensors it chooses for, how a plan lays out, and the writing.
protocol FitTarget {
    /// The tensors fit measures and chooses a form for.
    var measured: [GGUFTensorInfo] { get }
    /// What each candidate's bytes are padded to (GGUF's alignment; 1 in a folder).
    var alignment: Int { get }
    /// Tensors that must take one form (by name): the layers a runtime fuses into one.
    var ties: [[String]] { get }
    func layout(_ types: [String: FitType]) throws -> FitLayout
    /// Writes the plan to `path`: the bytes written and what the writer warned of.
    func write(_ types: [String: FitType], to path: String, progress: @escaping (Int, Int, String?) -> Void) throws -> (bytes: Int, warnings: [String])
}

extension FitTarget {
    /// `ties` as indices into `tensors`.
    func tieIndices(_ tensors: [FitTensor]) -> [[Int]] {
        let index = Dictionary(uniqueKeysWithValues: tensors.enumerated().map { ($0.element.name, $0.offset) })
        return ties.map { $0.compactMap { index[$0] } }
    }

    /// The plan of least predicted loss whose file fits `limit`, with its exact layout. The bytes outside the measured
    /// tensors' data are what a layout of the stored forms counts, and must stay so for every plan (else a candidate's
    /// size was counted wrong: `invalid-plan`). The headers' length moves with the plan (a folder's header lists a
    /// quantized weight's scales, biases, zero points): the choice takes the stored forms' headers first, and where a
    /// chosen plan's exact layout overshoots, chooses again with that much less room, until one fits; failing that,
    /// the smallest plan, if its exact layout fits.
    func choose(_ tensors: [FitTensor], limit: FitLimit) throws -> (FitPlan, FitLayout) {
        func data(_ p: FitPlan) -> Int { p.fileBytes - p.fixedBytes }
        let tied = tieIndices(tensors)
        let stored = FitPlan(tensors: tensors, chosen: tensors.map { $0.candidates.count - 1 }, fixedBytes: 0, budget: 0)
        let first = try layout(stored.types)
        let outside = first.dataBytes - data(stored)
        /// The plan laid out, checked, and returned where it fits.
        func fitting(_ plan: FitPlan) throws -> (FitPlan, FitLayout, overshoot: Int) {
            var plan = plan
            let exact = try layout(plan.types)
            guard exact.dataBytes - data(plan) == outside else {
                throw FitError(.invalidPlan, field: "plan", "the file would hold \(exact.dataBytes) bytes of tensors where the plan counted \(outside + data(plan))")
            }
            let allowed = limit.allowed(headers: exact.headerBytes)
            plan.fixedBytes = outside + exact.headerBytes
            plan.budget = allowed
            return (plan, exact, exact.fileBytes - allowed)
        }
        var slack = 0
        for round in 0..<32 {
            let plan: FitPlan
            do {
                plan = try FitPlan.choose(tensors, ties: tied, fixedBytes: outside + first.headerBytes + slack,
                                          budget: limit.allowed(headers: first.headerBytes), field: limit.field)
            } catch let e as FitError where e.code == .budgetTooSmall && round > 0 {
                break
            }
            let (fit, exact, overshoot) = try fitting(plan)
            if overshoot <= 0 { return (fit, exact) }
            slack += overshoot
        }
        let (fit, exact, overshoot) = try fitting(FitPlan.smallest(tensors, ties: tied, fixedBytes: 0))
        guard overshoot <= 0 else {
            throw FitError(.budgetTooSmall, field: limit.field,
                           "\(fit.budget) bytes is below the smallest file the candidate types allow, \(exact.fileBytes) bytes")
        }
        return (fit, exact)
    }
}

/// One GGUF file, written by `ingot quantize`'s planner and quantizers with the chosen type per tensor.
struct GGUFTarget: FitTarget {
    let input: String
    let gguf: any GGUFTensorSource
    let base: QuantOptions
    let measured: [GGUFTensorInfo]
    let alignment: Int
    let threads: Int
    var ties: [[String]] { [] }

    init(input: String, gguf: any GGUFTensorSource, importance: ImportanceMatrix, importancePath: String, threads: Int) throws {
        (self.input, self.gguf, self.threads) = (input, gguf, threads)
        measured = gguf.tensors.filter(QuantPlanner.allowsQuantization)
        var base = QuantOptions(preset: QuantPreset.named("Q8_0")!)
        base.importance = importance
        base.importanceFile = importancePath
        self.base = base
        alignment = try GGUFWriter.layout(path: input, metadata: gguf.metadata, tensors: []).alignment
    }

    /// The quantizer's plan: the chosen types, `general.file_type` from the type holding the most weights.
    func plan(_ types: [String: FitType]) throws -> QuantPlan {
        var assigned: [String: GGMLType] = [:]
        for (name, type) in types {
            guard case .gguf(let t) = type else {
                throw FitError(.invalidPlan, field: name, "\(type.name) is not a GGUF type: a GGUF file cannot hold it")
            }
            assigned[name] = t
        }
        var weightsByType: [GGMLType: Int] = [:]
        for t in measured { weightsByType[assigned[t.name] ?? t.type, default: 0] += t.elementCount }
        let dominant = weightsByType.max { ($0.value, $1.key.name) < ($1.value, $0.key.name) }?.key ?? .q8_0
        var options = base
        options.preset = QuantPreset.all.first { $0.defaultType == dominant } ?? QuantPreset.named("Q8_0")!
        options.assigned = assigned
        return try QuantPlanner.plan(metadata: gguf.metadata, tensors: gguf.tensors, options: options)
    }

    func layout(_ types: [String: FitType]) throws -> FitLayout {
        let qplan = try plan(types)
        let planned = try GGUFWriter.layout(path: input, metadata: qplan.metadata, tensors: qplan.tensors.map {
            try GGUFTensorInfo(name: $0.name, dimensions: $0.dimensions, type: $0.targetType)
        })
        let data = qplan.tensors.reduce(0) { $0 + (Checked.alignUp($1.targetBytes, to: planned.alignment) ?? $1.targetBytes) }
        return FitLayout(fileBytes: planned.header.count + data, headerBytes: planned.header.count,
                         fileType: qplan.metadata.last { $0.key == "general.file_type" }.map { "\($0.value)" } ?? "",
                         warnings: qplan.warnings)
    }

    func write(_ types: [String: FitType], to path: String, progress: @escaping (Int, Int, String?) -> Void) throws -> (bytes: Int, warnings: [String]) {
        let result = try GGUFQuantizer.run(input: gguf, plan: try plan(types), outputPath: path, threads: threads, progress: { p in
            progress(p.tensorIndex + 1, p.tensorCount, p.tensorName)
        })
        return (result.outputBytes, [])
    }
}

/// A Hugging Face folder of quantized weights, MLX's (as mlx-lm loads it) or compressed-tensors' (as vLLM loads it),
/// written by `ingot quantize --scheme`'s converter with each weight's form assigned by name; its size is that of its
/// safetensors files.
struct FolderTarget: FitTarget {
    let file: ModelFile
    let format: FitFormat
    /// The folder's weights for each measured tensor (one per expert of a stacked tensor).
    let weights: [String: [String]]
    let measured: [GGUFTensorInfo]
    let threads: Int
    var alignment: Int { 1 }

    /// vLLM fuses each layer's q, k and v projections into one, and gate and up into another, and needs one scheme
    /// for each fused layer; MLX runs every layer on its own.
    var ties: [[String]] {
        guard format == .compressedTensors else { return [] }
        let names = Set(measured.map(\.name))
        var out: [[String]] = []
        for b in ModelValidation.blockIndices(measured.map(\.name)).sorted() {
            for members in [["attn_q", "attn_k", "attn_v"], ["ffn_gate", "ffn_up"], ["ffn_gate_shexp", "ffn_up_shexp"]] {
                let tie = members.map { "blk.\(b).\($0).weight" }.filter(names.contains)
                if tie.count > 1 { out.append(tie) }
            }
        }
        return out
    }

    init(file: ModelFile, gguf: any GGUFTensorSource, format: FitFormat, threads: Int) throws {
        self.file = file
        self.format = format
        self.threads = threads
        let any: WeightScheme = format == .mlx ? .mlx(MLXQuantization(mode: .affine)!) : .compressedTensors(CompressedTensorsPreset(.W4A16)!)
        let weights = try Converter.folderWeights(file, scheme: any)
        // mlx-lm stacks the experts' weights into one `switch_mlp` layer on loading and looks its form up under that
        // path, which the folder's config does not name yet: each expert's form would be lost. And latent attention's
        // k_b and v_b are one kv_b weight in a folder, which takes one form.
        if let stacked = weights.sorted(by: { $0.key < $1.key }).first(where: { $0.value.count > 1 }) {
            throw FitError(.cannotExpress, field: stacked.key, format == .mlx
                ? "mlx-lm stacks these experts into one switch_mlp layer, whose form Ingot's MLX folders do not name yet; fit the model as GGUF"
                : "vLLM runs these experts as one fused layer with one scheme, which Ingot's compressed-tensors folders do not name yet; fit the model as GGUF")
        }
        var holder: [String: String] = [:]
        for (name, folder) in weights.sorted(by: { $0.key < $1.key }) {
            if let other = holder[folder[0]] {
                throw FitError(.cannotExpress, field: name,
                               "the folder holds \(other) and \(name) as one weight, \(folder[0]), which takes one form; fit the model as GGUF")
            }
            holder[folder[0]] = name
        }
        self.weights = weights
        measured = gguf.tensors.filter { weights[$0.name] != nil }
    }

    /// The converter's scheme for a form of this format (nil: float).
    func scheme(_ type: FitType, tensor: String) throws -> WeightScheme? {
        switch (format, type) {
        case (_, .float): return nil
        case (.mlx, .mlx(let q)): return .mlx(q)
        case (.compressedTensors, .integer(let bits, let group, let symmetric)):
            let name: CompressedTensorsPreset.Name = bits == 8 ? .W8A16 : symmetric ? .W4A16 : .W4A16_ASYM
            if let p = CompressedTensorsPreset(name, groupSize: group), p.bits == bits { return .compressedTensors(p) }
        default: break
        }
        throw FitError(.cannotExpress, field: tensor, "\(type.name) is not a form a \(format.rawValue) folder holds")
    }

    /// The scheme plan: each weight's form by name; the form holding the most weights is the config's default.
    func schemes(_ types: [String: FitType]) throws -> SchemePlan {
        var elements: [String: (scheme: WeightScheme, count: Int)] = [:]
        var assigned: [String: WeightScheme?] = [:]
        for t in measured {
            guard let type = types[t.name] else { continue }
            let scheme = try self.scheme(type, tensor: t.name)
            if let scheme { elements[type.name, default: (scheme, 0)].count += t.elementCount }
            for name in weights[t.name] ?? [] { assigned.updateValue(scheme, forKey: name) }
        }
        let fallback: WeightScheme = format == .mlx ? .mlx(MLXQuantization(mode: .affine)!) : .compressedTensors(CompressedTensorsPreset(.W4A16)!)
        let dominant = elements.max { ($0.value.count, $1.key) < ($1.value.count, $0.key) }?.value.scheme ?? fallback
        var plan = SchemePlan(base: dominant)
        plan.assigned = assigned
        return plan
    }

    func options(_ types: [String: FitType], countOnly: Bool) throws -> Converter.Options {
        var o = Converter.Options(target: .hf)
        o.scheme = try schemes(types)
        o.threads = threads
        o.countOnly = countOnly
        return o
    }

    func layout(_ types: [String: FitType]) throws -> FitLayout {
        let options = try options(types, countOnly: true)
        let report = try Converter.convert(file, to: file.path + ".fit", options: options)
        guard let bytes = report.safetensorsBytes else {
            throw FitError(.invalidPlan, field: "plan", "the converter counted no safetensors files")
        }
        let base: String
        switch options.scheme!.base {
        case .mlx(let q): base = FitType.mlx(q).name
        case .compressedTensors(let p): base = p.groupSize.map { "\(p.name.rawValue)-g\($0)" } ?? "\(p.name.rawValue)-channel"
        case .fp8: base = "fp8"
        }
        return FitLayout(fileBytes: bytes.files, headerBytes: bytes.headers, fileType: base, warnings: report.warnings)
    }

    func write(_ types: [String: FitType], to path: String, progress: @escaping (Int, Int, String?) -> Void) throws -> (bytes: Int, warnings: [String]) {
        let report = try Converter.convert(file, to: path, options: try options(types, countOnly: false)) { done, total in
            progress(done, total, nil)
        }
        return (report.safetensorsBytes?.files ?? report.bytesWritten, report.warnings)
    }
}
