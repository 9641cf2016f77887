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
    func layout(_ types: [String: FitType]) throws -> FitLayout
    /// Writes the plan to `path`: the bytes written and what the writer warned of.
    func write(_ types: [String: FitType], to path: String, progress: @escaping (Int, Int, String?) -> Void) throws -> (bytes: Int, warnings: [String])
}

extension FitTarget {
    /// The plan of least predicted loss whose file fits `limit`, with its exact layout. The bytes outside the measured
    /// tensors' data are what a layout of the stored forms counts, and must stay so for every plan (else a candidate's
    /// size was counted wrong: `invalid-plan`); the headers are taken as the last layout counted them, and where the
    /// chosen plan's own headers are longer (a folder's header lists a quantized weight's scales and biases) it is
    /// chosen again with them.
    func choose(_ tensors: [FitTensor], limit: FitLimit) throws -> (FitPlan, FitLayout) {
        func data(_ p: FitPlan) -> Int { p.fileBytes - p.fixedBytes }
        let stored = FitPlan(tensors: tensors, chosen: tensors.map { $0.candidates.count - 1 }, fixedBytes: 0, budget: 0)
        let first = try layout(stored.types)
        let outside = first.dataBytes - data(stored)
        var headers = first.headerBytes
        for _ in 0..<64 {
            var fit = try FitPlan.choose(tensors, fixedBytes: outside + headers, budget: limit.allowed(headers: headers), field: limit.field)
            let exact = try layout(fit.types)
            guard exact.dataBytes - data(fit) == outside else {
                throw FitError(.invalidPlan, field: "plan", "the file would hold \(exact.dataBytes) bytes of tensors where the plan counted \(outside + data(fit))")
            }
            let allowed = limit.allowed(headers: exact.headerBytes)
            if exact.fileBytes <= allowed {
                fit.fixedBytes = outside + exact.headerBytes
                fit.budget = allowed
                return (fit, exact)
            }
            headers = max(headers + 8, exact.headerBytes)
        }
        throw FitError(.budgetTooSmall, field: limit.field, "no plan's headers and tensors fit in \(limit.allowed(headers: headers)) bytes")
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

/// A Hugging Face folder of MLX quantized weights, written by `ingot quantize --scheme mlx`'s converter with each
/// weight's form assigned by name; its size is that of its safetensors files.
struct FolderTarget: FitTarget {
    let file: ModelFile
    /// The folder's weights for each measured tensor (one per expert of a stacked tensor).
    let weights: [String: [String]]
    let measured: [GGUFTensorInfo]
    let threads: Int
    var alignment: Int { 1 }

    init(file: ModelFile, gguf: any GGUFTensorSource, threads: Int) throws {
        self.file = file
        self.threads = threads
        let weights = try Converter.folderWeights(file, scheme: .mlx(MLXQuantization(mode: .affine)!))
        // mlx-lm stacks the experts' weights into one `switch_mlp` layer on loading and looks its form up under that
        // path, which the folder's config does not name yet: each expert's form would be lost. And latent attention's
        // k_b and v_b are one kv_b weight in a folder, which takes one form.
        if let stacked = weights.sorted(by: { $0.key < $1.key }).first(where: { $0.value.count > 1 }) {
            throw FitError(.cannotExpress, field: stacked.key,
                           "mlx-lm stacks these experts into one switch_mlp layer, whose form Ingot's MLX folders do not name yet; fit the model as GGUF")
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

    /// The scheme plan: each weight's form by name; the form holding the most weights is the config's default.
    func schemes(_ types: [String: FitType]) throws -> SchemePlan {
        var elements: [MLXQuantization: Int] = [:]
        var assigned: [String: WeightScheme?] = [:]
        for t in measured {
            guard let type = types[t.name] else { continue }
            let scheme: WeightScheme?
            switch type {
            case .mlx(let q):
                scheme = .mlx(q)
                elements[q, default: 0] += t.elementCount
            case .float:
                scheme = nil
            case .gguf(let g):
                throw FitError(.invalidPlan, field: t.name, "\(g.name) is a GGUF type: an MLX folder cannot hold it")
            }
            for name in weights[t.name] ?? [] { assigned.updateValue(scheme, forKey: name) }
        }
        let dominant = elements.max { ($0.value, $1.key.description) < ($1.value, $0.key.description) }?.key ?? MLXQuantization(mode: .affine)!
        var plan = SchemePlan(base: .mlx(dominant))
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
        guard case .mlx(let base) = options.scheme!.base else { preconditionFailure("an MLX plan") }
        return FitLayout(fileBytes: bytes.files, headerBytes: bytes.headers, fileType: FitType.mlx(base).name, warnings: report.warnings)
    }

    func write(_ types: [String: FitType], to path: String, progress: @escaping (Int, Int, String?) -> Void) throws -> (bytes: Int, warnings: [String]) {
        let report = try Converter.convert(file, to: path, options: try options(types, countOnly: false)) { done, total in
            progress(done, total, nil)
        }
        return (report.safetensorsBytes?.files ?? report.bytesWritten, report.warnings)
    }
}
