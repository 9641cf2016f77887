import ArgumentParser
import IngotFormats
import IngotModel
import IngotPack

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what is inside a GGUF file, a safetensors file or a Hugging Face folder.",
        discussion: """
        Prints the architecture, the metadata (long arrays abbreviated), a table of tensors \
        (name, type, shape outermost-first, bytes, file offset) and totals (parameters, bytes, \
        bits per weight, bytes per type).
        """
    )

    @Argument(help: "A .gguf file, a .safetensors file or a Hugging Face model folder.")
    var path: String

    @Option(name: .long, help: "Show only tensors whose name matches this regular expression.")
    var tensors: String?

    @Flag(name: .long, help: "Print metadata arrays in full instead of their first elements.")
    var full = false

    @OptionGroup var common: CommonOptions

    func validate() throws {
        if let tensors {
            do { _ = try Regex(tensors) } catch {
                throw ValidationError("--tensors '\(tensors)' is not a valid regular expression: \(error)")
            }
        }
    }

    func run() throws {
        try reportingErrors(json: common.json) {
            if let artifact = try PackedArtifact.openIfArtifact(path) {
                let report = try PackReport(artifact: artifact, filter: tensors)
                print(common.json ? report.json.serialized(pretty: true) : report.text)
                return
            }
            let model = try ModelFile.open(path)
            let report = try InspectReport(model: model, filter: tensors, fullArrays: full)
            print(common.json ? report.json.serialized(pretty: true) : report.text)
        }
    }
}

/// Everything `inspect` shows, built once and rendered as text or JSON.
struct InspectReport {
    static let arrayPreview = 8

    let model: ModelFile
    let spec: ModelSpec
    let shown: [TensorEntry]
    let filter: String?
    let fullArrays: Bool
    /// A folder's weights as stored: the scheme of each (quantized ones decode through their scales), or why the
    /// pairing failed.
    let weights: [StoredWeight]
    let pairingError: String?
    /// What `ModelValidation` says of the model: the error that stops it from running, and warnings. Inspect shows
    /// a model that fails it rather than refusing it.
    let validationError: ModelError?
    let warnings: [String]

    struct StoredWeight {
        var name: String
        var scheme: String
        var parameters: Int
        /// Every stored tensor of the weight (codes, scales, biases, zero points, shape).
        var bytes: Int
        var bitsPerWeight: Double { parameters > 0 ? Double(bytes) * 8 / Double(parameters) : 0 }
    }

    init(model: ModelFile, filter: String?, fullArrays: Bool) throws {
        self.model = model
        var weights: [StoredWeight] = [], pairingError: String? = nil
        if case .huggingFaceFolder(let d) = model.storage {
            do {
                var bytes: [String: Int] = [:]
                for shard in d.shards { for t in shard.tensors { bytes[t.name] = t.byteCount } }
                let companions = ["", "_packed", "_scale", "_scale_inv", "_zero_point", "_shape"]
                for t in try FolderTensors.read(d) {
                    switch t.storage {
                    case .float(let type, _, let n):
                        weights.append(StoredWeight(name: t.name, scheme: "float \(type.name)", parameters: t.shape.reduce(1, *), bytes: n))
                    case .decoded(let f):
                        let stem = t.name.hasSuffix(".weight") ? String(t.name.dropLast(".weight".count)) : t.name
                        let stored = companions.compactMap { bytes[stem + ".weight" + $0] }.reduce(0, +)
                            + [".scales", ".biases", ".input_scale"].compactMap { bytes[stem + $0] }.reduce(0, +)
                        weights.append(StoredWeight(name: t.name, scheme: f.scheme, parameters: f.rows * f.cols, bytes: stored))
                    }
                }
            } catch {
                pairingError = "\(error)"
            }
        }
        self.weights = weights
        self.pairingError = pairingError
        self.spec = ModelSpec(model: model)
        do {
            warnings = try ModelValidation.check(model: model)
            validationError = nil
        } catch let e as ModelError {
            warnings = []
            validationError = e
        }
        self.filter = filter
        self.fullArrays = fullArrays
        if let filter {
            let regex = try Regex(filter)
            shown = model.tensors.filter { (try? regex.firstMatch(in: $0.name)) != nil }
        } else {
            shown = model.tensors
        }
    }

    var totals: Inventory { Inventory(shown) }

    // MARK: JSON

    var json: JSONValue {
        var o = JSONObject([("path", .string(model.path)), ("format", .string(model.format.rawValue))])
        switch model.storage {
        case .gguf(let g):
            o["gguf"] = .object(JSONObject([("version", JSONValue(Int(g.version))), ("alignment", JSONValue(g.alignment)),
                                            ("dataOffset", JSONValue(g.dataOffset))]))
            o["metadata"] = .array(g.metadata.map { kv in
                .object(JSONObject([("key", .string(kv.key)), ("type", .string(typeName(kv.value))),
                                    ("value", kv.value.json(arrayLimit: fullArrays ? nil : InspectReport.arrayPreview))]))
            })
        case .safetensors(let s):
            o["safetensors"] = .object(JSONObject([("headerLength", JSONValue(s.headerLength)), ("dataOffset", JSONValue(s.dataOffset))]))
            o["metadata"] = .object(JSONObject(s.metadata.map { ($0.key, JSONValue.string($0.value)) }))
        case .huggingFaceFolder(let d):
            o["files"] = .array(d.files.map { .string($0) })
            o["shards"] = .array(d.shards.map { s in
                .object(JSONObject([("file", .string(String(s.path.split(separator: "/").last ?? ""))),
                                    ("tensorCount", JSONValue(s.tensors.count)),
                                    ("bytes", JSONValue(s.file.count))]))
            })
            if let c = d.config { o["config"] = c }
        }
        o["spec"] = spec.json
        var v = JSONObject([("valid", .bool(validationError == nil)), ("warnings", .array(warnings.map { .string($0) }))])
        if let e = validationError {
            var err = JSONObject([("code", .string(e.codeName)), ("field", .string(e.field)), ("detail", .string(e.detail))])
            if let offset = e.offset { err["offset"] = JSONValue(offset) }
            v["error"] = .object(err)
        }
        o["validation"] = .object(v)
        if let filter { o["filter"] = .string(filter) }
        o["tensors"] = .array(shown.map { t in
            var e = JSONObject([("name", .string(t.name)), ("type", .string(t.typeName)),
                                ("shape", .array(t.shape.map { JSONValue($0) })),
                                ("elements", JSONValue(t.elementCount)), ("bytes", JSONValue(t.byteCount)),
                                ("offset", JSONValue(t.fileOffset))])
            if model.format == .huggingFaceFolder { e["file"] = .string(t.file) }
            return .object(e)
        })
        o["totals"] = totals.json
        if !weights.isEmpty {
            let shownWeights = weights.filter { w in filter.map { f in (try? Regex(f).firstMatch(in: w.name)) != nil } ?? true }
            o["weights"] = .array(shownWeights.map { w in
                .object(JSONObject([("name", .string(w.name)), ("scheme", .string(w.scheme)), ("parameters", JSONValue(w.parameters)),
                                    ("bytes", JSONValue(w.bytes)), ("bitsPerWeight", .double(w.bitsPerWeight))]))
            })
            o["schemes"] = .array(schemeTotals.map { s in
                .object(JSONObject([("scheme", .string(s.scheme)), ("weights", JSONValue(s.count)), ("parameters", JSONValue(s.parameters)),
                                    ("bytes", JSONValue(s.bytes)), ("bitsPerWeight", .double(s.bitsPerWeight))]))
            })
            let p = weights.map(\.parameters).reduce(0, +), b = weights.map(\.bytes).reduce(0, +)
            o["model"] = .object(JSONObject([("parameters", JSONValue(p)), ("bytes", JSONValue(b)),
                                             ("bitsPerWeight", .double(p > 0 ? Double(b) * 8 / Double(p) : 0))]))
        }
        if let pairingError { o["pairingError"] = .string(pairingError) }
        return .object(o)
    }

    func typeName(_ v: GGUFValue) -> String {
        if case .array(let a) = v { return "ARRAY[\(a.elementType)]" }
        return v.type.description
    }

    // MARK: Text

    var text: String {
        var lines: [String] = []
        let inv = Inventory(model.tensors)
        switch model.storage {
        case .gguf(let g):
            lines.append("\(model.path)")
            lines.append("  GGUF v\(g.version), alignment \(g.alignment), \(g.metadata.count) metadata keys, \(g.tensors.count) tensors, data at byte \(g.dataOffset)")
        case .safetensors(let s):
            lines.append("\(model.path)")
            lines.append("  safetensors, header \(s.headerLength) bytes, \(s.tensors.count) tensors, data at byte \(s.dataOffset)")
        case .huggingFaceFolder(let d):
            lines.append("\(model.path)/")
            lines.append("  Hugging Face folder, \(d.shards.count) safetensors shard(s), \(inv.tensorCount) tensors, \(d.files.count) files")
        }
        lines.append("")
        lines.append("architecture")
        lines.append(specLine)
        if let e = validationError {
            lines.append("  INVALID: \(e.field)\(e.offset.map { " at byte \($0)" } ?? ""): \(e.detail)")
        }
        for w in warnings { lines.append("  warning: \(w)") }
        lines.append("")
        lines.append(contentsOf: metadataLines)
        lines.append("")
        lines.append(filter.map { "tensors matching /\($0)/ (\(shown.count) of \(model.tensors.count))" } ?? "tensors (\(shown.count))")
        var table = Table(header: ["name", "type", "shape", "bytes", "offset"], rightAligned: [3, 4])
        if model.format == .huggingFaceFolder { table.header.append("file") }
        for t in shown {
            var row = [t.name, t.typeName, "[" + t.shape.map(String.init).joined(separator: ", ") + "]", String(t.byteCount), String(t.fileOffset)]
            if model.format == .huggingFaceFolder { row.append(t.file) }
            table.rows.append(row)
        }
        lines.append(table.render())
        lines.append("")
        let tot = totals
        lines.append("totals: \(tot.tensorCount) tensors, \(Human.count(tot.parameters)) parameters (\(tot.parameters)), "
                     + "\(Human.bytes(tot.bytes)) (\(tot.bytes) bytes), \(Human.fixed(tot.bitsPerWeight, 3)) bits per weight")
        var types = Table(header: ["type", "tensors", "parameters", "bytes", "share", "bits/weight"], rightAligned: [1, 2, 3, 4, 5])
        for t in tot.byType {
            let share = tot.bytes > 0 ? Double(t.bytes) * 100 / Double(tot.bytes) : 0
            types.rows.append([t.typeName, String(t.tensorCount), Human.count(t.parameters), Human.bytes(t.bytes),
                               Human.fixed(share, 1) + "%", Human.fixed(t.bitsPerWeight, 3)])
        }
        lines.append(types.render())
        if !weights.isEmpty {
            let p = weights.map(\.parameters).reduce(0, +), b = weights.map(\.bytes).reduce(0, +)
            lines.append("")
            lines.append("weights as stored: \(Human.count(p)) parameters in \(Human.bytes(b)), \(Human.fixed(p > 0 ? Double(b) * 8 / Double(p) : 0, 3)) bits per weight")
            var t = Table(header: ["scheme", "weights", "parameters", "bytes", "bits/weight"], rightAligned: [1, 2, 3, 4])
            for s in schemeTotals {
                t.rows.append([s.scheme, String(s.count), Human.count(s.parameters), Human.bytes(s.bytes), Human.fixed(s.bitsPerWeight, 3)])
            }
            lines.append(t.render())
        }
        if let pairingError { lines.append("quantized weights could not be paired with their scales: \(pairingError)") }
        return lines.joined(separator: "\n")
    }

    /// Weights per scheme, in order of first appearance.
    var schemeTotals: [(scheme: String, count: Int, parameters: Int, bytes: Int, bitsPerWeight: Double)] {
        var order: [String] = [], sums: [String: (Int, Int, Int)] = [:]
        for w in weights {
            if sums[w.scheme] == nil { order.append(w.scheme) }
            let (c, p, b) = sums[w.scheme] ?? (0, 0, 0)
            sums[w.scheme] = (c + 1, p + w.parameters, b + w.bytes)
        }
        return order.map { s in
            let (c, p, b) = sums[s]!
            return (s, c, p, b, p > 0 ? Double(b) * 8 / Double(p) : 0)
        }
    }

    var specLine: String {
        var parts: [String] = []
        func add(_ label: String, _ v: Int?) { if let v { parts.append("\(label) \(v)") } }
        guard let arch = spec.architecture else { return "  not stated (no GGUF architecture keys or config.json)" }
        parts.append(arch)
        if let n = spec.name { parts.append("'\(n)'") }
        add("layers", spec.layerCount)
        add("hidden", spec.hiddenSize)
        add("ffn", spec.feedForwardSize)
        if let h = spec.headCount { parts.append("heads \(h)/\(spec.kvHeadCount ?? h) (q/kv)") }
        add("context", spec.contextLength)
        add("vocab", spec.vocabSize)
        add("experts", spec.expertCount)
        if let t = spec.tokenizer { parts.append("tokenizer \(t)") }
        if let tied = spec.tiedEmbeddings { parts.append(tied ? "tied embeddings" : "separate output") }
        return "  " + parts.joined(separator: ", ")
    }

    var metadataLines: [String] {
        switch model.storage {
        case .gguf(let g):
            var t = Table(header: ["key", "type", "value"])
            for kv in g.metadata {
                t.rows.append([kv.key, typeName(kv.value), preview(kv.value)])
            }
            return ["metadata (\(g.metadata.count))", t.render()]
        case .safetensors(let s):
            var t = Table(header: ["key", "value"])
            for kv in s.metadata { t.rows.append([kv.key, kv.value]) }
            return ["__metadata__ (\(s.metadata.count))"] + (s.metadata.isEmpty ? [] : [t.render()])
        case .huggingFaceFolder(let d):
            var out = ["files (\(d.files.count))"]
            out.append(contentsOf: d.files.map { "  \($0)" })
            if let c = d.config?.objectValue {
                out.append("")
                out.append("config.json (\(c.members.count) keys)")
                var t = Table(header: ["key", "value"])
                for m in c.members { t.rows.append([m.key, clip(m.value.serialized())]) }
                out.append(t.render())
            }
            return out
        }
    }

    func clip(_ s: String, _ n: Int = 100) -> String {
        let one = s.replacingAll("\n", with: "\\n")
        return one.count <= n ? one : String(one.prefix(n)) + "…"
    }

    func preview(_ v: GGUFValue) -> String {
        switch v {
        case .string(let s): return clip(JSONValue.string(s.string).serialized())
        case .float32(let x): return "\(x)"
        case .array(let a):
            let n = fullArrays ? a.count : min(a.count, InspectReport.arrayPreview)
            let items = (0 ..< n).map { clip(preview(a.element($0)), 40) }.joined(separator: ", ")
            return "[\(items)\(n < a.count ? ", … (\(a.count) total)" : "")]"
        default: return v.json(arrayLimit: 0).serialized()
        }
    }
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for ch in self { if ch == target { out += replacement } else { out.append(ch) } }
        return out
    }
}

/// What `inspect` shows of a packed artifact: its files, how each compressed, and its tensors.
struct PackReport {
    let artifact: PackedArtifact
    let shown: [PackIndex.Tensor]
    let filter: String?

    init(artifact: PackedArtifact, filter: String?) throws {
        self.artifact = artifact
        self.filter = filter
        if let filter {
            let regex = try Regex(filter)
            shown = artifact.index.tensors.filter { (try? regex.firstMatch(in: $0.name)) != nil }
        } else {
            shown = artifact.index.tensors
        }
    }

    func stored(_ f: PackIndex.File) -> Int { f.frames.reduce(0) { $0 + $1.storedLength } }

    var json: JSONValue {
        let idx = artifact.index
        return .object(JSONObject([
            ("path", .string(artifact.path)), ("format", "ingot-pack"), ("kind", .string(idx.kind)), ("level", JSONValue(idx.level)),
            ("artifactBytes", JSONValue(artifact.file.count)), ("indexOffset", JSONValue(artifact.indexOffset)),
            ("files", .array(idx.files.map { f in
                .object(JSONObject([("path", .string(f.path)), ("format", .string(f.format)), ("bytes", JSONValue(f.size)),
                                    ("storedBytes", JSONValue(stored(f))), ("frames", JSONValue(f.frames.count))]))
            })),
            ("tensors", .array(shown.map { t in
                .object(JSONObject([("name", .string(t.name)), ("type", .string(t.dtype)), ("file", .string(idx.files[t.file].path)),
                                    ("offset", JSONValue(t.offset)), ("bytes", JSONValue(t.length))]))
            })),
        ]))
    }

    var text: String {
        let idx = artifact.index
        let original = idx.files.reduce(0) { $0 + $1.size }
        var lines = ["\(artifact.path)",
                     "  Ingot packed artifact v1 (\(idx.kind)), zstd level \(idx.level), \(Human.bytes(artifact.file.count)) holding \(Human.bytes(original)) "
                     + "(\(Human.fixed(original > 0 ? Double(artifact.file.count) * 100 / Double(original) : 0, 2))%)", ""]
        var files = Table(header: ["file", "format", "bytes", "stored", "ratio", "frames"], rightAligned: [2, 3, 4, 5])
        for f in idx.files {
            let s = stored(f)
            files.rows.append([f.path, f.format, String(f.size), String(s), Human.fixed(f.size > 0 ? Double(s) * 100 / Double(f.size) : 0, 1) + "%",
                               String(f.frames.count)])
        }
        lines.append("files (\(idx.files.count))")
        lines.append(files.render())
        lines.append("")
        lines.append(filter.map { "tensors matching /\($0)/ (\(shown.count) of \(idx.tensors.count))" } ?? "tensors (\(shown.count))")
        var t = Table(header: ["name", "type", "bytes", "offset", "file"], rightAligned: [2, 3])
        for x in shown { t.rows.append([x.name, x.dtype, String(x.length), String(x.offset), idx.files[x.file].path]) }
        lines.append(t.render())
        return lines.joined(separator: "\n")
    }
}
