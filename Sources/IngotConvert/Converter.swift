import IngotFormats
import IngotModel
import IngotNumerics

/// `ingot convert`: a Hugging Face folder to GGUF, a GGUF to a Hugging Face folder, or a folder to a folder in
/// another dtype. Names, the q/k permutation, hyperparameters and tokenizer go through the architecture's table
/// (`Architecture`, `ModelSpec`, `TokenizerFacts`); tensors stream one slab of rows at a time, so memory stays a
/// small multiple of the largest tensor whatever the model size, and the output appears only when complete.
public enum Converter {
    public enum Target: String, Sendable, CaseIterable { case gguf, hf }

    /// The stored float type of converted weights. `auto` means: to GGUF, llama.cpp's `--outtype auto` (F16 when
    /// the folder's first tensor is F16, else BF16); to a folder, each float tensor keeps its type and quantized
    /// GGUF tensors become F16.
    public enum DType: String, Sendable, CaseIterable { case auto, f32, f16, bf16 }

    public struct Options: Sendable {
        public var target: Target
        public var dtype: DType = .auto
        /// Largest shard of a Hugging Face output (a bigger tensor gets a shard of its own).
        public var shardBytes = 5_000_000_000
        /// To a folder: weights quantized by a scheme plan (FP8 with scales per tensor, row or 128 x 128 block; MLX
        /// affine or microscaling, a mixed recipe, per-tensor overrides), the rest as `dtype` says.
        public var scheme: SchemePlan?
        /// Workers for a scheme's quantization (the output does not depend on it).
        public var threads = 1
        /// Write only this shard's share of the tensors, into its part (`ShardedOutput` for GGUF, `FolderPartWriter`
        /// for a folder); the source is the input's `SourceFingerprint`.
        public var shard: (spec: ShardSpec, source: String)?
        /// Quantizes the weights of integer schemes (MLX affine, compressed-tensors' integer presets) in place of
        /// round to nearest.
        public var calibrated: (any CalibratedQuantizer)?
        /// To a folder: lay the safetensors files out and count their bytes (`Report.safetensorsBytes`), writing
        /// nothing.
        public var countOnly = false
        public init(target: Target) { self.target = target }
    }

    public struct Report: Sendable {
        public var input: String, output: String
        public var target: Target
        public var architecture: String
        public var tensorCount = 0
        public var bytesWritten = 0
        public var typeCounts: [String: Int] = [:]
        public var preTokenizer: String?
        /// With a scheme: the weights quantized, and those left in float because their rows do not divide into
        /// the scheme's groups.
        public var quantizedWeights = 0
        public var undivided: [String] = []
        /// What `ModelValidation` found suspect in the input.
        public var warnings: [String] = []
        /// With a shard: the part written (or found complete), its tensors, and whether it was already there.
        public var part: (path: String, tensors: Int, skipped: Bool)?
        /// To a folder: the bytes of its safetensors files, and of their headers (each with its 8-byte length).
        public var safetensorsBytes: (files: Int, headers: Int)?

        public var json: JSONValue {
            .object(JSONObject([
                ("input", .string(input)), ("output", .string(output)), ("to", .string(target.rawValue)),
                ("architecture", .string(architecture)), ("tensors", JSONValue(tensorCount)), ("bytes", JSONValue(bytesWritten)),
                ("types", .object(JSONObject(typeCounts.sorted { $0.key < $1.key }.map { ($0.key, JSONValue($0.value)) }))),
                ("preTokenizer", preTokenizer.map { .string($0) } ?? .null),
                ("quantizedWeights", JSONValue(quantizedWeights)), ("undivided", .array(undivided.map { .string($0) })),
                ("warnings", .array(warnings.map { .string($0) })),
            ]))
        }
    }

    /// Converts `model` into `output`. `progress(done, total)` is called after each tensor.
    public static func convert(_ model: ModelFile, to output: String, options: Options,
                               progress: (Int, Int) -> Void = { _, _ in }) throws -> Report {
        let warnings = try ModelValidation.check(model: model)
        var report: Report
        switch (model.storage, options.target) {
        case (.gguf(let g), .hf): report = try ggufToFolder(g, output: output, options: options, progress: progress)
        case (.huggingFaceFolder(let d), .gguf): report = try folderToGGUF(d, output: output, options: options, progress: progress)
        case (.huggingFaceFolder(let d), .hf): report = try folderToFolder(d, output: output, options: options, progress: progress)
        case (.gguf, .gguf):
            throw ModelError(.invalidValue, field: "--to", "the input is already GGUF (ingot quantize changes its types)", path: model.path)
        case (.safetensors, _):
            throw ModelError(.unsupportedArchitecture, field: "format",
                             "a lone safetensors file has no config.json; give its Hugging Face folder", path: model.path)
        }
        report.warnings = warnings + report.warnings
        return report
    }

    // MARK: Hugging Face folder -> GGUF

    static func folderToGGUF(_ d: HFModelDirectory, output: String, options: Options, progress: (Int, Int) -> Void) throws -> Report {
        let plan = try planGGUF(d, dtype: options.dtype)
        var report = Report(input: d.path, output: output, target: .gguf, architecture: plan.architecture)
        report.preTokenizer = plan.preTokenizer
        try writeGGUF(plan.outputs, metadata: plan.metadata, to: output, shard: options.shard, report: &report, progress: progress)
        return report
    }

    /// What a folder becomes in GGUF: metadata in the order llama.cpp's converter writes it, and each tensor with
    /// the parts its bytes are made of.
    struct GGUFPlan {
        var metadata: [GGUFKeyValue]
        var outputs: [PlannedTensor]
        var architecture: String
        var preTokenizer: String
    }

    static func planGGUF(_ d: HFModelDirectory, dtype: DType) throws -> GGUFPlan {
        let (spec, table) = try specAndTable(d)
        let sources = try SourceTensor.all(d)
        let outType: GGMLType
        switch dtype {
        case .f32: outType = .f32
        case .f16: outType = .f16
        case .bf16: outType = .bf16
        case .auto:
            // llama.cpp: the type of the first tensor the folder yields (first shard, names sorted).
            let first = d.shards.first?.tensors.min { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
            outType = first?.dtype == .f16 ? .f16 : .bf16
        }
        var outputs: [PlannedTensor] = []
        // Llama 3.1 rope scaling becomes the rope_freqs tensor, first, as llama.cpp's converter writes it.
        if let rs = spec.ropeScaling, table.role("rope_freqs") != nil, let dims = spec.ropeDimensions {
            let factors = rs.llama3Factors(base: spec.ropeFreqBase ?? 10000, dims: dims)
            outputs.append(PlannedTensor(name: "rope_freqs.weight", type: .f32, dims: [factors.count], parts: [.values(factors)]))
        } else if let other = spec.otherRopeScaling {
            throw ModelError(.unsupportedArchitecture, field: "config.json rope_scaling",
                             "RoPE scaling '\(other)' is not converted yet (llama3, yarn and linear are)", path: d.path)
        }
        // DeepSeek's multi-token-prediction layers follow the last block; llama.cpp's converter drops them.
        let predictionLayers = (d.config?["num_nextn_predict_layers"]?.intValue ?? 0) > 0
        let blocks = spec.layerCount ?? Int.max
        var stacks: [String: (index: Int, experts: [Int: SourceTensor])] = [:]
        for s in sources {
            if s.name.hasSuffix(".rotary_emb.inv_freq") { continue }
            if predictionLayers, let layer = layerIndex(s.name), layer >= blocks { continue }
            guard let mapped = table.ggufName(forHF: s.name) else {
                throw ModelError(.unsupportedArchitecture, field: "tensor '\(s.name)'", offset: s.entryOffset,
                                 "is not a tensor of \(table.name) (\(s.file))", path: d.path)
            }
            try checkShape(s, role: mapped.role, spec: spec, latent: table.latentAttention, path: d.path)
            let type = storedType(name: mapped.name, role: mapped.role, dims: s.dims.count, chosen: outType)
            if mapped.role.scope == .expertStack, let x = mapped.expert {
                if var stack = stacks[mapped.name] {
                    guard stack.experts[x] == nil else {
                        throw FormatError(.duplicateTensor, field: "tensor '\(s.name)'", offset: nil, "expert \(x) appears twice", path: d.path)
                    }
                    stack.experts[x] = s
                    stacks[mapped.name] = stack
                } else {
                    stacks[mapped.name] = (outputs.count, [x: s])
                    outputs.append(PlannedTensor(name: mapped.name, type: type, dims: [], parts: []))
                }
                continue
            }
            if table.latentAttention && mapped.role.gguf == "attn_kv_b" {
                outputs += try splitLatentKV(s, layer: mapped.layer ?? 0, type: type, spec: spec, path: d.path)
                continue
            }
            let perm = try permutation(mapped.role, table: table, spec: spec, rows: s.rows, tensor: s, path: d.path)
            outputs.append(PlannedTensor(name: mapped.name, type: type, dims: s.dims,
                                         parts: [.rows(s, 0..<s.rows, permute: perm.map { ($0, true) })]))
        }
        // Stacked experts: [experts, rows, cols] in expert order, each expert's shape the same.
        for (name, stack) in stacks {
            let n = stack.experts.count
            guard let first = stack.experts[0], (0..<n).allSatisfy({ stack.experts[$0] != nil }) else {
                throw ModelError(.missingTensor, field: name, "experts must be numbered 0..<\(n) without gaps", path: d.path)
            }
            if let count = spec.expertCount, count != n {
                throw ModelError(.shapeMismatch, field: name, "the folder has \(n) experts; config.json says \(count)", path: d.path)
            }
            var parts: [Part] = []
            for x in 0..<n {
                guard let e = stack.experts[x], e.dims == first.dims else {
                    throw ModelError(.shapeMismatch, field: name, "expert \(x)'s shape differs from expert 0's \(first.shape)", path: d.path)
                }
                parts.append(.rows(e, 0..<e.rows, permute: nil))
            }
            outputs[stack.index].dims = first.dims + [n]
            outputs[stack.index].parts = parts
        }
        // Metadata in the order llama.cpp's converter writes it: general.*, hyperparameters, tokenizer.
        let parameters = outputs.reduce(0) { $0 + $1.dims.reduce(1, *) }
        let expertParameters = outputs.filter { $0.name.contains("_exps.") }.reduce(0) { $0 + $1.dims.reduce(1, *) }
        var metadata: [GGUFKeyValue] = [GGUFKeyValue("general.architecture", .string(GGUFString(table.name))),
                                        GGUFKeyValue("general.type", .string("model"))]
        let folderName = String(d.path.split(separator: "/").last ?? "model")
        metadata += ModelCard.ggufKeys(readmePath: d.path + "/README.md", folderName: folderName,
                                       nameOrPath: d.config?["_name_or_path"]?.stringValue, parameters: parameters,
                                       expertCount: expertParameters > 0 ? spec.expertCount ?? 0 : 0, expertParameters: expertParameters)
        let fileType: UInt32 = outType == .f32 ? 0 : outType == .f16 ? 1 : 32
        metadata += spec.ggufKeys(architecture: table, fileType: fileType)
        metadata.append(GGUFKeyValue("general.quantization_version", .uint32(2)))
        let tok = try TokenizerFacts(folder: d.path, files: d.files, vocabSize: spec.vocabSize, config: d.config,
                                     llamaVocabRules: table.llamaVocabRules)
        metadata += tok.ggufKeys
        return GGUFPlan(metadata: metadata, outputs: outputs, architecture: table.name, preTokenizer: tok.pre)
    }

    /// `model.layers.N.…` -> N.
    static func layerIndex(_ name: String) -> Int? {
        guard name.hasPrefix("model.layers.") else { return nil }
        return Int(name.dropFirst("model.layers.".count).prefix { $0.isASCII && $0.isNumber })
    }

    /// The per-head widths of latent attention: (qk_nope_head_dim, v_head_dim), from the MLA lengths.
    static func latentWidths(_ spec: ModelSpec, tensor: String, path: String) throws -> (nope: Int, v: Int) {
        let k = try spec.require(.keyLengthMLA, path: path), v = try spec.require(.valueLengthMLA, path: path)
        let rope = try spec.require(.ropeDimensionCount, path: path)
        guard k > rope else {
            throw ModelError(.invalidValue, field: spec.sources[.keyLengthMLA]?.field ?? "qk_nope_head_dim",
                             "the q/k head width \(k) leaves no room beside \(rope) rotary dimensions (\(tensor))", path: path)
        }
        return (k - rope, v)
    }

    /// llama.cpp's storage of latent attention's kv up-projection (`DeepseekV2Model.modify_tensors`): `kv_b`,
    /// [heads · (nope + v), kv_lora] with each head's nope key rows then its v rows, becomes `k_b` [heads, kv_lora,
    /// nope] (each head's key rows transposed) and `v_b` [heads, v, kv_lora].
    static func splitLatentKV(_ s: SourceTensor, layer: Int, type: GGMLType, spec: ModelSpec, path: String) throws -> [PlannedTensor] {
        let (nope, v) = try latentWidths(spec, tensor: s.name, path: path)
        let kvLora = s.dims.first ?? 0, perHead = nope + v
        guard s.dims.count == 2, s.name.hasSuffix(".weight"), s.rows % perHead == 0, spec.headCount.map({ $0 * perHead == s.rows }) ?? true else {
            throw ModelError(.shapeMismatch, field: "tensor '\(s.name)'", offset: s.entryOffset,
                             "\(s.shape) is not [heads x (\(nope) + \(v)), kv_lora_rank] for \(spec.headCount ?? 0) heads", path: path)
        }
        let heads = s.rows / perHead
        let p = "blk.\(layer)."
        return [
            PlannedTensor(name: p + "attn_k_b.weight", type: type, dims: [nope, kvLora, heads],
                          parts: (0..<heads).map { .transposed(s, (($0 * perHead)..<($0 * perHead + nope))) }),
            PlannedTensor(name: p + "attn_v_b.weight", type: type, dims: [kvLora, v, heads],
                          parts: (0..<heads).map { .rows(s, ($0 * perHead + nope)..<(($0 + 1) * perHead), permute: nil) }),
        ]
    }

    /// The inverse of `splitLatentKV`: `k_b` and `v_b` back to one `kv_b` [heads · (nope + v), kv_lora].
    static func joinLatentKV(k: SourceTensor, v: SourceTensor, name: String, type: GGMLType, path: String) throws -> PlannedTensor {
        guard k.dims.count == 3, v.dims.count == 3, k.dims[2] == v.dims[2], k.dims[1] == v.dims[0] else {
            throw ModelError(.shapeMismatch, field: "tensor '\(k.name)'", offset: k.entryOffset,
                             "k_b \(k.shape) and v_b \(v.shape) are not [heads, kv_lora, nope] and [heads, v, kv_lora]", path: path)
        }
        let (nope, kvLora, heads, vd) = (k.dims[0], k.dims[1], k.dims[2], v.dims[1])
        var parts: [Part] = []
        for h in 0..<heads {
            parts.append(.transposed(k, (h * kvLora)..<((h + 1) * kvLora)))
            parts.append(.rows(v, (h * vd)..<((h + 1) * vd), permute: nil))
        }
        return PlannedTensor(name: name, type: type, dims: [kvLora, heads * (nope + vd)], parts: parts)
    }

    /// The type llama.cpp's converter stores a tensor in: F32 for 1-D tensors, norms, routers and anything not named
    /// `.weight`; the chosen type otherwise.
    static func storedType(name: String, role: TensorRole?, dims: Int, chosen: GGMLType) -> GGMLType {
        if dims <= 1 || name.hasSuffix("_norm.weight") || role?.keepsF32 == true || !name.hasSuffix(".weight") { return .f32 }
        return chosen
    }

    // MARK: GGUF -> Hugging Face folder

    static func ggufToFolder(_ g: GGUFFile, output: String, options: Options, progress: (Int, Int) -> Void) throws -> Report {
        let spec = ModelSpec(gguf: g)
        let archOffset = g.metadata.first { $0.key == "general.architecture" }?.fileOffset
        guard let table = spec.table else {
            throw ModelError(.unsupportedArchitecture, field: "general.architecture", offset: archOffset,
                             "architecture '\(spec.architecture ?? "none")' is not one Ingot converts (\(Architecture.supportedNames))",
                             path: g.path)
        }
        // Llama 3.1's rope_freqs go back to config.json's rope_scaling (verified by recomputing them), not as a tensor.
        var ropeScaling: JSONValue = .null
        if let t = g.tensor(named: "rope_freqs.weight") {
            var factors = [Float](repeating: 0, count: t.elementCount)
            if t.type == .f32, let base = g.data(for: t).baseAddress, t.elementCount > 0 {
                factors.withUnsafeMutableBufferPointer { BlockCodec.dequantize(.f32, base, count: t.elementCount, into: $0.baseAddress!) }
            }
            guard t.type == .f32, let dims = spec.ropeDimensions,
                  let rs = RopeScaling.llama3(factors: factors, base: spec.ropeFreqBase ?? 10000, dims: dims) else {
                throw ModelError(.unsupportedArchitecture, field: "tensor 'rope_freqs.weight'", offset: t.infoOffset,
                                 "these RoPE factors match no Llama 3.1 rope_scaling (factor, low 1, high 4, original context)",
                                 path: g.path)
            }
            ropeScaling = rs.json
        }
        if let k = spec.keyedRopeScaling { ropeScaling = k.json }
        let tok = try TokenizerFacts(gguf: g)
        let sources = SourceTensor.all(g)
        let byName = Dictionary(sources.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var outputs: [PlannedTensor] = []
        for s in sources where s.name != "rope_freqs.weight" {
            if table.latentAttention, let stem = s.name.dropSuffix("attn_k_b.weight") ?? s.name.dropSuffix("attn_v_b.weight") {
                // Latent attention: k_b and v_b become one kv_b, written where k_b was.
                guard s.name.hasSuffix("attn_k_b.weight") else { continue }
                guard let v = byName[stem + "attn_v_b.weight"], let kv = table.hfName(forGGUF: stem + "attn_kv_b.weight") else {
                    throw ModelError(.missingTensor, field: "tensor '\(stem)attn_v_b.weight'", offset: s.entryOffset,
                                     "k_b has no v_b beside it", path: g.path)
                }
                for t in [s, v] where !BlockCodec.canDequantize(t.type) {
                    throw ModelError(.unsupportedTensorType, field: "tensor '\(t.name)'", offset: t.entryOffset,
                                     "type \(t.type.name) cannot be dequantized", path: g.path)
                }
                outputs.append(try joinLatentKV(k: s, v: v, name: kv.name, type: folderType(source: s.type, chosen: options.dtype),
                                                path: g.path))
                continue
            }
            guard let mapped = table.hfName(forGGUF: s.name) else {
                throw ModelError(.unsupportedArchitecture, field: "tensor '\(s.name)'", offset: s.entryOffset,
                                 "is not a tensor of \(table.name)", path: g.path)
            }
            guard BlockCodec.canDequantize(s.type) else {
                throw ModelError(.unsupportedTensorType, field: "tensor '\(s.name)'", offset: s.entryOffset,
                                 "type \(s.type.name) cannot be dequantized", path: g.path)
            }
            let type = folderType(source: s.type, chosen: options.dtype)
            if mapped.role.scope == .expertStack {
                guard s.dims.count == 3 else {
                    throw ModelError(.shapeMismatch, field: "tensor '\(s.name)'", offset: s.entryOffset,
                                     "a stacked expert tensor has 3 dimensions, not \(s.dims.count)", path: g.path)
                }
                let rows = s.dims[1]
                for x in 0..<s.dims[2] {
                    outputs.append(PlannedTensor(name: mapped.hfName(expert: x), type: type, dims: Array(s.dims[0..<2]),
                                                 parts: [.rows(s, (x * rows)..<((x + 1) * rows), permute: nil)]))
                }
                continue
            }
            let perm = try permutation(mapped.role, table: table, spec: spec, rows: s.rows, tensor: s, path: g.path)
            outputs.append(PlannedTensor(name: mapped.name, type: type, dims: s.dims,
                                         parts: [.rows(s, 0..<s.rows, permute: perm.map { ($0, false) })]))
        }
        var outcome = SchemeOutcome()
        if let plan = options.scheme { (outputs, outcome) = try quantizedOutputs(outputs, table: table, plan: plan, path: g.path) }
        // config.json: the class, the table's hyperparameters, tying, dtype and special tokens.
        let experts = (spec.expertCount ?? 0) > 1
        var config: [(String, JSONValue)] = [
            ("architectures", [.string(experts ? table.expertClassName ?? table.className : table.className)]),
            ("model_type", .string(experts ? table.expertModelType ?? table.modelTypes[0] : table.modelTypes[0])),
        ]
        config += spec.configMembers(architecture: table).map { k, v in
            // GGUF stores these as float32; write the shortest decimal that gives the same float32.
            if case .double(let d) = v, let f = Double("\(Float(d))") { return (k, .double(f)) }
            return (k, v)
        }
        // Every Transformers config needs the vocabulary size, also where GGUF has no key for it (qwen2, qwen3).
        if !config.contains(where: { $0.0 == "vocab_size" }), let n = spec.vocabSize { config.append(("vocab_size", JSONValue(n))) }
        for (k, v) in table.configConstants where !config.contains(where: { $0.0 == k }) {
            if k == "attention_bias" { config.append((k, .bool(g.tensor(named: "blk.0.attn_q.bias") != nil))); continue }
            config.append((k, v))
        }
        if table.latentAttention { config.append(("num_nextn_predict_layers", JSONValue(0))) }
        config.append(("tie_word_embeddings", .bool(g.tensor(named: "output.weight") == nil)))
        config.append(("torch_dtype", .string(torchDType(outputs.filter { $0.quantized == nil }))))
        config.append(("rope_scaling", ropeScaling))
        config += tok.configTokenIDs
        if let plan = options.scheme { config += schemeConfig(plan, outcome) }
        var generation: [(String, JSONValue)] = [("_from_model_config", true)]
        if let b = tok.bos { generation.append(("bos_token_id", JSONValue(b))) }
        if let e = tok.eos { generation.append(("eos_token_id", JSONValue(e))) }
        let files: [(String, String)] = [
            ("config.json", JSONValue.object(JSONObject(config)).serialized(pretty: true) + "\n"),
            ("generation_config.json", JSONValue.object(JSONObject(generation)).serialized(pretty: true) + "\n"),
            ("README.md", ModelCard.readme(from: g)),
        ]
        var report = Report(input: g.path, output: output, target: .hf, architecture: table.name)
        (report.quantizedWeights, report.undivided) = (outcome.chosen.count, outcome.undivided)
        report.preTokenizer = tok.pre
        try writeFolder(outputs, files: files.map { ($0.0, Array($0.1.utf8)) } + tok.folderFiles, to: output, options: options,
                        calibrated: outcome.calibrated, report: &report, progress: progress)
        return report
    }

    /// config.json's `torch_dtype`: the type of the matrices when they share one, else float16.
    static func torchDType(_ outputs: [PlannedTensor]) -> String {
        let types = Set(outputs.filter { $0.dims.count > 1 }.map(\.type))
        return types == [.bf16] ? "bfloat16" : types == [.f32] ? "float32" : "float16"
    }

    static func folderType(source: GGMLType, chosen: DType) -> GGMLType {
        switch chosen {
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        case .auto: return source == .f32 || source == .f16 || source == .bf16 ? source : .f16
        }
    }

    // MARK: folder -> folder

    static func folderToFolder(_ d: HFModelDirectory, output: String, options: Options, progress: (Int, Int) -> Void) throws -> Report {
        let (_, table) = try specAndTable(d)
        var outputs: [PlannedTensor] = []
        var decodedFP8 = false
        for s in try SourceTensor.all(d) {
            // FP8 weights decode to BF16 under auto, as DeepSeek's fp8_cast_bf16.py writes them.
            let type = s.decoder != nil && options.dtype == .auto ? .bf16 : folderType(source: s.type, chosen: options.dtype)
            decodedFP8 = decodedFP8 || s.decoder != nil
            outputs.append(PlannedTensor(name: s.name, type: type, dims: s.dims, parts: [.rows(s, 0..<s.rows, permute: nil)]))
        }
        var outcome = SchemeOutcome()
        if let plan = options.scheme { (outputs, outcome) = try quantizedOutputs(outputs, table: table, plan: plan, path: d.path) }
        var files: [(String, [UInt8])] = []
        for name in d.files where !name.hasSuffix(".safetensors") && name != HFModelDirectory.indexName {
            if name == "config.json", decodedFP8 || options.scheme != nil, var config = d.config?.objectValue {
                // The weights are no longer quantized (or quantized anew): the config says how they are stored now.
                config["quantization_config"] = nil
                config["quantization"] = nil
                for (k, v) in options.scheme.map({ schemeConfig($0, outcome) }) ?? [] { config[k] = v }
                config["torch_dtype"] = .string(torchDType(outputs.filter { $0.quantized == nil }))
                files.append((name, Array((JSONValue.object(config).serialized(pretty: true) + "\n").utf8)))
                continue
            }
            let f = try MappedFile(path: d.path + "/" + name)
            files.append((name, Array(f.bytes)))
        }
        var report = Report(input: d.path, output: output, target: .hf, architecture: table.name)
        (report.quantizedWeights, report.undivided) = (outcome.chosen.count, outcome.undivided)
        try writeFolder(outputs, files: files, to: output, options: options, calibrated: outcome.calibrated, report: &report,
                        progress: progress)
        return report
    }

    // MARK: Quantized output

    /// The linear layers a scheme quantizes: every projection of the blocks (attention, dense and expert
    /// feed-forward, DeepSeek's low-rank projections); embeddings, the output head, norms and routers stay in float
    /// for FP8, as in DeepSeek's FP8 checkpoints. MLX also quantizes the token embedding and the output head, as
    /// mlx-lm does (every Linear and Embedding whose rows divide into groups).
    static let linearRoles: Set<String> = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down",
                                           "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps", "ffn_gate_shexp", "ffn_up_shexp",
                                           "ffn_down_shexp", "attn_q_a", "attn_q_b", "attn_kv_a_mqa", "attn_kv_b"]

    /// The weights a scheme may quantize: the linear layers for FP8 and compressed-tensors; for MLX also the token
    /// embedding and the output head. Norms, routers, biases and other tensors stay in float whatever is asked.
    static func quantizable(role: String?, scheme: WeightScheme) -> Bool {
        guard let role else { return false }
        switch scheme {
        case .fp8, .compressedTensors: return linearRoles.contains(role)
        case .mlx: return linearRoles.contains(role) || role == "token_embd" || role == "output"
        }
    }

    /// For each tensor of `model` (by its GGUF name) that a scheme quantizes in a folder written from it, the weights
    /// the folder holds for it: one, or one per expert of a stacked tensor. Latent attention's `k_b` and `v_b` both
    /// name the one `kv_b` the folder joins them into.
    public static func folderWeights(_ model: ModelFile, scheme: WeightScheme) throws -> [String: [String]] {
        let table: Architecture
        switch model.storage {
        case .gguf(let g):
            guard let t = ModelSpec(gguf: g).table else {
                throw ModelError(.unsupportedArchitecture, field: "general.architecture", "not an architecture Ingot converts (\(Architecture.supportedNames))",
                                 path: model.path)
            }
            table = t
        case .huggingFaceFolder(let d): table = try specAndTable(d).1
        case .safetensors:
            throw ModelError(.unsupportedArchitecture, field: "format", "a lone safetensors file has no config.json; give its Hugging Face folder",
                             path: model.path)
        }
        guard let tensors = try model.ggufTensors()?.tensors else { return [:] }
        var out: [String: [String]] = [:]
        for t in tensors {
            guard let mapped = table.hfName(forGGUF: t.name), t.dimensions.count >= 2, t.name.hasSuffix(".weight"),
                  quantizable(role: mapped.role.gguf, scheme: scheme) else { continue }
            if table.latentAttention && (mapped.role.gguf == "attn_k_b" || mapped.role.gguf == "attn_v_b"),
               let kv = table.hfName(forGGUF: t.name.replacing(mapped.role.gguf, with: "attn_kv_b")) {
                out[t.name] = [kv.name]
                continue
            }
            out[t.name] = mapped.role.scope == .expertStack && t.dimensions.count == 3
                ? (0..<t.dimensions[2]).map { mapped.hfName(expert: $0) } : [mapped.name]
        }
        return out
    }

    /// The module path of a weight (`model.layers.0.mlp.down_proj` for `...down_proj.weight`).
    static func modulePath(_ name: String) -> String { name.dropSuffix(".weight") ?? name }

    /// What a scheme plan did: the scheme of each quantized weight (by module path, in tensor order) and the weights
    /// it left in float because their rows do not divide into its groups.
    struct SchemeOutcome {
        var chosen: [(module: String, scheme: WeightScheme)] = []
        var undivided: [String] = []
        /// Linear layers left in float (compressed-tensors lists them in `ignore`, as vLLM needs to know).
        var floatLinears: [String] = []
        /// The weights of integer schemes a calibrated method may quantize: each a whole 2-D tensor of the model.
        var calibrated: [CalibratedWeight] = []
    }

    /// Each weight the plan quantizes becomes its stored tensors: FP8 codes and scales; MLX packed codes, scales
    /// (and biases); compressed-tensors' packed codes, scales and the rest of its layout. A weight the base scheme or recipe would quantize but whose rows do not divide into groups stays
    /// in float, as mlx-lm leaves it; one an override names explicitly is an error then, and so is an override that
    /// names only tensors that must stay in float.
    static func quantizedOutputs(_ outputs: [PlannedTensor], table: Architecture, plan: SchemePlan,
                                 path: String) throws -> ([PlannedTensor], SchemeOutcome) {
        let compiled: [(Regex<AnyRegexOutput>, WeightScheme?)] = try plan.overrides.map { o in
            do { return (try Regex(o.pattern), o.scheme) } catch {
                throw ModelError(.invalidValue, field: "--tensor-type", "'\(o.pattern)' is not a regular expression: \(error)", path: path)
            }
        }
        let layers = outputs.compactMap { SchemePlan.layerIndex(modulePath($0.name)) }.max().map { $0 + 1 } ?? 0
        var matched = Array(repeating: false, count: compiled.count)
        var floatOnly: [Int: String] = [:]
        var outcome = SchemeOutcome()
        var out: [PlannedTensor] = []
        for t in outputs {
            let role = t.dims.count == 2 && t.name.hasSuffix(".weight") ? table.ggufName(forHF: t.name)?.role.gguf : nil
            let module = modulePath(t.name)
            guard quantizable(role: role, scheme: plan.base) else {
                if case .some(.some) = plan.assigned[t.name] {
                    throw ModelError(.invalidValue, field: "tensor '\(t.name)'",
                                     "was assigned a scheme, but stays in float (norms, routers, biases and vectors are not quantized)", path: path)
                }
                for (i, o) in compiled.enumerated() where o.1 != nil && floatOnly[i] == nil && t.name.contains(o.0) { floatOnly[i] = t.name }
                // Linear layers of the model a scheme leaves alone (routers, an untied output head).
                if role != nil && role != "token_embd" { outcome.floatLinears.append(module) }
                out.append(t)
                continue
            }
            if let i = compiled.firstIndex(where: { t.name.contains($0.0) }) { matched[i] = true }
            let (chosen, explicit) = plan.scheme(for: t.name, module: module, layers: layers, overrides: compiled)
            guard let scheme = chosen else {
                outcome.floatLinears.append(module)
                out.append(t)
                continue
            }
            let (cols, rows) = (t.dims[0], t.dims[1])
            let group: Int? = switch scheme {
            case .mlx(let m): m.groupSize
            case .compressedTensors(let p): p.groupSize
            case .fp8: nil
            }
            if let group, cols % group != 0 {
                if explicit {
                    throw ModelError(.shapeMismatch, field: "tensor '\(t.name)'",
                                     "rows of \(cols) values do not divide into groups of \(group) (--tensor-type asked for them)", path: path)
                }
                outcome.undivided.append(t.name)
                outcome.floatLinears.append(module)
                out.append(t)
                continue
            }
            func part(_ r: QuantizedPart.Role, _ name: String, _ dims: [Int]) -> PlannedTensor {
                var p = PlannedTensor(name: name, type: .f32, dims: dims, parts: t.parts)
                p.quantized = QuantizedPart(role: r, scheme: scheme, weight: t.name, rows: rows, cols: cols, floatType: t.type)
                return p
            }
            outcome.chosen.append((module, scheme))
            if let c = calibratedWeight(t, scheme: scheme, table: table, rows: rows, cols: cols) { outcome.calibrated.append(c) }
            switch scheme {
            case .fp8(let strategy):
                let scaleDims: [Int]
                switch strategy {
                case .tensor: scaleDims = [1]   // shape [1], as compressed-tensors and DeepSeek's tooling store one scale
                case .channel: scaleDims = [1, rows]
                case .block: scaleDims = [(cols + 127) / 128, (rows + 127) / 128]
                }
                out += [part(.codes, t.name, t.dims),
                        part(.scales, module + (strategy == .block ? ".weight_scale_inv" : ".weight_scale"), scaleDims)]
            case .mlx(let m):
                out += [part(.codes, t.name, [cols * m.bits / 32, rows]), part(.scales, module + ".scales", [cols / m.groupSize, rows])]
                if m.hasBiases { out.append(part(.biases, module + ".biases", [cols / m.groupSize, rows])) }
            case .compressedTensors(let p) where p.isInteger:
                let groups = p.groupSize.map { cols / $0 } ?? 1
                out += [part(.codes, module + ".weight_packed", [CompressedTensorsInt.wordsPerRow(cols, bits: p.bits), rows]),
                        part(.scales, module + ".weight_scale", [groups, rows]), part(.shape, module + ".weight_shape", [2])]
                if !p.symmetric {
                    out.append(part(.zeroPoints, module + ".weight_zero_point", [groups, CompressedTensorsInt.wordsPerRow(rows, bits: p.bits)]))
                }
            case .compressedTensors(let p) where p.name == .NVFP4A16:
                out += [part(.codes, module + ".weight_packed", [cols / 2, rows]), part(.scales, module + ".weight_scale", [cols / 16, rows]),
                        part(.globalScale, module + ".weight_global_scale", [1])]
            case .compressedTensors(let p):
                out += [part(.codes, t.name, t.dims),
                        part(.scales, module + ".weight_scale", p.name == .FP8_BLOCK ? [(cols + 127) / 128, (rows + 127) / 128] : [1, rows])]
            }
        }
        let written = Set(outputs.map(\.name))
        if let stranger = plan.assigned.keys.sorted().first(where: { !written.contains($0) }) {
            throw ModelError(.missingTensor, field: "tensor '\(stranger)'", "was assigned a scheme, but the folder has no such weight", path: path)
        }
        for (i, o) in plan.overrides.enumerated() where !matched[i] {
            if let name = floatOnly[i] {
                throw ModelError(.invalidValue, field: "--tensor-type",
                                 "'\(o.pattern)' names '\(name)', which stays in float (norms, routers, biases and vectors are not quantized)", path: path)
            }
        }
        return (out, outcome)
    }

    /// What a calibrated method needs of a weight an integer scheme quantizes, when it is one whole tensor of the model
    /// (not an expert cut from a stack, nor joined from several).
    static func calibratedWeight(_ t: PlannedTensor, scheme: WeightScheme, table: Architecture, rows: Int, cols: Int) -> CalibratedWeight? {
        let arithmetic = QuantizedPart(role: .codes, scheme: scheme, weight: t.name, rows: rows, cols: cols, floatType: t.type).arithmetic
        let rule: IntegerGrid.Rule, group: Int
        switch scheme {
        case .mlx(let m) where m.mode == .affine: (rule, group) = (.mlxAffine(bits: m.bits, storedAs: arithmetic), m.groupSize)
        case .compressedTensors(let p) where p.isInteger:
            (rule, group) = (.compressedTensors(bits: p.bits, symmetric: p.symmetric, arithmetic: arithmetic), p.groupSize ?? cols)
        default: return nil
        }
        guard t.parts.count == 1, case .rows(let s, let range, let permute) = t.parts[0], range == 0..<s.rows, s.rows == rows,
              let mapped = table.ggufName(forHF: t.name), mapped.role.scope != .expertStack else { return nil }
        let order = permute.map { p in (0..<rows).map { ConversionScratch.sourceRow($0, rowsPerHead: rows / p.heads, toGGUF: p.toGGUF) } }
        return CalibratedWeight(name: t.name, modelName: mapped.name, rows: rows, cols: cols, rule: rule, groupSize: group, rowOrder: order)
    }

    /// The stored tensors of a weight whose codes and grid a calibrated method chose.
    static func encode(codes: [Int32], grid: IntegerGrid, _ q: QuantizedPart, scratch: inout ConversionScratch) -> [QuantizedPart.Role: [UInt8]] {
        let type = q.arithmetic
        switch q.scheme {
        case .mlx(let m):
            let gs = grid.groupSize, gb = MLXAffine.bytesPerGroup(bits: m.bits, groupSize: gs)
            var packed = [UInt8](repeating: 0, count: q.rows * q.cols / gs * gb)
            packed.withUnsafeMutableBufferPointer { p in
                for g in 0..<(q.rows * q.cols / gs) { MLXAffine.pack(gs, bits: m.bits, into: p.baseAddress! + g * gb) { codes[g * gs + $0] } }
            }
            return [.codes: packed, .scales: floatBytes(grid.storedScales, as: type, scratch: &scratch),
                    .biases: floatBytes(grid.storedOffsets, as: type, scratch: &scratch)]
        case .compressedTensors(let p):
            return integerTensors(codes: codes.map { Int8(truncatingIfNeeded: $0) }, scales: grid.scales,
                                  zeroPoints: grid.offsets.map { Int8($0) }, p, q, scratch: &scratch)
        case .fp8: return [:]
        }
    }

    /// compressed-tensors' stored tensors of an integer preset (`pack-quantized`): packed codes, scales in the weight's
    /// float type, the shape, and for an asymmetric preset the zero points (rows × groups, packed down each column).
    static func integerTensors(codes: [Int8], scales: [Float], zeroPoints: [Int8], _ p: CompressedTensorsPreset, _ q: QuantizedPart,
                               scratch: inout ConversionScratch) -> [QuantizedPart.Role: [UInt8]] {
        var shape = [UInt8]()   // `weight_shape`: rows and columns as int64
        for v in [q.rows, q.cols] { withUnsafeBytes(of: Int64(v).littleEndian) { shape += $0 } }
        var stored: [QuantizedPart.Role: [UInt8]] = [.codes: CompressedTensorsInt.pack(codes, rows: q.rows, cols: q.cols, bits: p.bits),
                                                     .scales: floatBytes(scales, as: q.arithmetic, scratch: &scratch), .shape: shape]
        if !p.symmetric {
            stored[.zeroPoints] = CompressedTensorsInt.packColumns(zeroPoints, rows: q.rows, groups: scales.count / q.rows, bits: p.bits)
        }
        return stored
    }

    /// Float values as stored in `type` (F32, F16 or BF16).
    static func floatBytes(_ v: [Float], as type: GGMLType, scratch: inout ConversionScratch) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: v.count * (type == .f32 ? 4 : 2))
        v.withUnsafeBufferPointer { src in out.withUnsafeMutableBytes { BlockCodec.quantize(type, src.baseAddress!, count: v.count, into: $0.baseAddress!, scratch: &scratch.quant) } }
        return out
    }


    /// config.json members of a scheme: DeepSeek's `quantization_config` for FP8; mlx-lm's `quantization` (and its
    /// copy `quantization_config`) for MLX, with an entry per module whose quantization differs from the top level
    /// (for a mixed recipe, an entry per quantized module, as mlx-lm writes it); compressed-tensors' config.
    static func schemeConfig(_ plan: SchemePlan, _ outcome: SchemeOutcome) -> [(String, JSONValue)] {
        switch plan.base {
        case .fp8(let strategy):
            var o: [(String, JSONValue)] = [("quant_method", "fp8"), ("fmt", "e4m3"), ("activation_scheme", "dynamic")]
            if strategy == .block { o.append(("weight_block_size", [128, 128])) }
            return [("quantization_config", .object(JSONObject(o)))]
        case .mlx(let base):
            func entry(_ m: MLXQuantization) -> JSONValue {
                .object(JSONObject([("group_size", JSONValue(m.groupSize)), ("bits", JSONValue(m.bits)), ("mode", .string(m.mode.rawValue))]))
            }
            var members: [(String, JSONValue)] = [("group_size", JSONValue(base.groupSize)), ("bits", JSONValue(base.bits)),
                                                  ("mode", .string(base.mode.rawValue))]
            for (module, scheme) in outcome.chosen {
                guard case .mlx(let m) = scheme, m != base || plan.recipe != nil else { continue }
                members.append((module, entry(m)))
            }
            let q = JSONValue.object(JSONObject(members))
            return [("quantization", q), ("quantization_config", q)]
        case .compressedTensors(let p):
            // One config group for one preset (every Linear, as llm-compressor writes it); for several (what `ingot fit`
            // chooses), a group per preset naming its modules.
            var groups: [(preset: CompressedTensorsPreset, targets: [String])] = []
            for (module, scheme) in outcome.chosen {
                guard case .compressedTensors(let q) = scheme else { continue }
                if let k = groups.firstIndex(where: { $0.preset == q }) { groups[k].targets.append(module) } else { groups.append((q, [module])) }
            }
            if groups.count <= 1 { groups = [(groups.first?.preset ?? p, ["Linear"])] }
            return [("quantization_config", compressedTensorsConfig(groups, ignore: outcome.floatLinears))]
        }
    }

    /// compressed-tensors' `QuantizationConfig`, as llm-compressor saves it (`model_dump` of compressed-tensors 0.20):
    /// a config group per preset with its targets (`Linear` for one preset applied to every Linear), and `ignore`
    /// listing the output head and every linear layer left in float.
    static func compressedTensorsConfig(_ presets: [(preset: CompressedTensorsPreset, targets: [String])], ignore: [String]) -> JSONValue {
        func args(bits: Int, type: String, symmetric: Bool, group: Int?, strategy: String, dynamic: Bool, block: Bool = false,
                  scaleType: String? = nil) -> JSONValue {
            var o: [(String, JSONValue)] = [("num_bits", JSONValue(bits)), ("type", .string(type)), ("symmetric", .bool(symmetric)),
                                            ("group_size", group.map { JSONValue($0) } ?? .null), ("strategy", .string(strategy))]
            if block { o.append(("block_structure", [128, 128])) }
            o.append(("dynamic", .bool(dynamic)))
            if let scaleType { o.append(("scale_dtype", .string(scaleType))) }
            return .object(JSONObject(o))
        }
        func group(_ p: CompressedTensorsPreset, targets: [String]) -> JSONValue {
            let weights: JSONValue, inputs: JSONValue
            switch p.name {
            case .W4A16, .W4A16_ASYM, .W8A16:
                weights = args(bits: p.bits, type: "int", symmetric: p.symmetric, group: p.groupSize,
                               strategy: p.groupSize == nil ? "channel" : "group", dynamic: false)
                inputs = .null
            case .FP8_DYNAMIC:
                weights = args(bits: 8, type: "float", symmetric: true, group: nil, strategy: "channel", dynamic: false)
                inputs = args(bits: 8, type: "float", symmetric: true, group: nil, strategy: "token", dynamic: true)
            case .FP8_BLOCK:
                weights = args(bits: 8, type: "float", symmetric: true, group: nil, strategy: "block", dynamic: false, block: true)
                inputs = args(bits: 8, type: "float", symmetric: true, group: 128, strategy: "group", dynamic: true)
            case .NVFP4A16:
                weights = args(bits: 4, type: "float", symmetric: true, group: 16, strategy: "tensor_group", dynamic: false,
                               scaleType: "torch.float8_e4m3fn")
                inputs = .null
            }
            return .object(JSONObject([("targets", .array(targets.map { .string($0) })), ("weights", weights), ("input_activations", inputs),
                                       ("output_activations", .null), ("format", .string(p.format))]))
        }
        let first = presets.first?.preset ?? CompressedTensorsPreset(.W4A16)!
        var ignored = ["lm_head"]
        for m in ignore where !ignored.contains(m) { ignored.append(m) }
        return .object(JSONObject([
            ("config_groups", .object(JSONObject(presets.enumerated().map { ("group_\($0.offset)", group($0.element.preset, targets: $0.element.targets)) }))),
            ("quant_method", "compressed-tensors"), ("kv_cache_scheme", .null),
            ("format", .string(Set(presets.map(\.preset.format)).count > 1 ? "mixed-precision" : first.format)), ("quantization_status", "compressed"),
            ("global_compression_ratio", .null), ("ignore", .array(ignored.map { .string($0) })), ("moe_sparsity_config", .null),
        ]))
    }

    // MARK: shared

    static func specAndTable(_ d: HFModelDirectory) throws -> (ModelSpec, Architecture) {
        guard let c = d.config else {
            throw ModelError(.missingField, field: "config.json", "the folder has no config.json", path: d.path)
        }
        let spec = ModelSpec(config: c, files: d.files)
        guard let table = spec.table else {
            throw ModelError(.unsupportedArchitecture, field: "config.json model_type",
                             "model_type '\(spec.modelType ?? "none")' is not one Ingot converts (\(Architecture.all.flatMap(\.modelTypes).joined(separator: ", ")))",
                             path: d.path)
        }
        return (spec, table)
    }

    /// The head count whose rows a q/k tensor permutes, checked against its row count.
    static func permutation(_ role: TensorRole, table: Architecture, spec: ModelSpec, rows: Int, tensor: SourceTensor,
                            path: String) throws -> Int? {
        guard table.permutesQK, let p = role.permutation else { return nil }
        let heads = try spec.require(p == .queryHeads ? .headCount : .kvHeadCount, path: path)
        guard rows % (2 * heads) == 0 else {
            throw ModelError(.shapeMismatch, field: "tensor '\(tensor.name)'", offset: tensor.entryOffset,
                             "\(rows) rows do not split into \(heads) heads of an even size", path: path)
        }
        return heads
    }

    /// Checks a tensor's shape against config.json for the roles whose shape the hyperparameters fix.
    static func checkShape(_ s: SourceTensor, role: TensorRole, spec: ModelSpec, latent: Bool, path: String) throws {
        guard let hidden = spec.hiddenSize, let heads = spec.headCount, let d = spec.headDimension else { return }
        let kv = spec.kvHeadCount ?? heads
        let expected: [Int]?
        let qk = spec.int(.keyLengthMLA), vd = spec.int(.valueLengthMLA), rope = spec.ropeDimensions
        switch role.gguf {
        case "attn_q" where latent: expected = qk.map { [heads * $0, hidden] }
        case "attn_q_b" where latent: expected = qk.flatMap { q in spec.int(.qLoraRank).map { [heads * q, $0] } }
        case "attn_q_a" where latent: expected = spec.int(.qLoraRank).map { [$0, hidden] }
        case "attn_kv_a_mqa" where latent: expected = rope.flatMap { r in spec.int(.kvLoraRank).map { [$0 + r, hidden] } }
        case "attn_output" where latent: expected = vd.map { [hidden, heads * $0] }
        case "attn_q": expected = s.name.hasSuffix(".bias") ? [heads * d] : [heads * d, hidden]
        case "attn_k", "attn_v": expected = s.name.hasSuffix(".bias") ? [kv * d] : [kv * d, hidden]
        case "attn_output": expected = [hidden, heads * d]
        case "attn_norm", "ffn_norm", "output_norm": expected = [hidden]
        case "ffn_gate", "ffn_up": expected = spec.feedForwardSize.map { [$0, hidden] }
        case "ffn_down": expected = spec.feedForwardSize.map { [hidden, $0] }
        case "token_embd", "output": expected = spec.vocabSize.map { [$0, hidden] }
        default: expected = nil
        }
        if let expected, s.shape != expected {
            throw ModelError(.shapeMismatch, field: "tensor '\(s.name)'", offset: s.entryOffset,
                             "config.json implies shape \(expected), the file holds \(s.shape)", path: path)
        }
    }

    static func nonFiniteWarning(_ tensor: String) -> String {
        "\(tensor) holds NaN or infinity, written as it is (a runtime computing with it gives NaN)"
    }

    static func writeGGUF(_ outputs: [PlannedTensor], metadata: [GGUFKeyValue], to path: String,
                          shard: (spec: ShardSpec, source: String)? = nil, report: inout Report,
                          progress: (Int, Int) -> Void) throws {
        let infos = try outputs.map { try GGUFTensorInfo(name: $0.name, dimensions: $0.dims, type: $0.type) }
        var selected = Array(outputs.indices), partMetadata = metadata, partPath = path
        if let (spec, source) = shard {
            let part = try ShardedOutput(shard: spec, source: source, outputPath: path, metadata: metadata, tensors: infos,
                                         costs: infos.map(\.byteCount))
            (selected, partMetadata, partPath) = (part.selected, part.metadata, part.path)
            report.part = (part.path, part.selected.count, part.isComplete)
            if part.isComplete { return }
        }
        let writer = try GGUFWriter(path: partPath, metadata: partMetadata, tensors: selected.map { infos[$0] })
        var done = false
        defer { if !done { writer.abort() } }
        var scratch = ConversionScratch()
        for i in selected {
            let t = outputs[i]
            if infos[i].byteCount == 0 {
                try writer.write(UnsafeRawBufferPointer(start: nil, count: 0))
            }
            for part in t.parts {
                try scratch.produce(part, as: t.type) { try writer.append($0) }
            }
            if scratch.takeNonFinite() { report.warnings.append(nonFiniteWarning(t.name)) }
            report.typeCounts[t.type.name, default: 0] += 1
            progress(i + 1, outputs.count)
        }
        try writer.finish()
        done = true
        report.tensorCount = selected.count
        report.bytesWritten = writer.bytesWritten
    }

    /// The stored tensors of a quantized weight: its floats produced from its parts, checked finite, then quantized
    /// by the scheme; bytes by role.
    static func quantize(_ t: PlannedTensor, _ q: QuantizedPart, scratch: inout ConversionScratch, threads: Int,
                         path: String) throws -> [QuantizedPart.Role: [UInt8]] {
        var floats = [Float]()
        floats.reserveCapacity(q.rows * q.cols)
        for part in t.parts {
            try scratch.produce(part, as: .f32) { b in
                let old = floats.count, n = b.count / 4
                guard n > 0 else { return }
                floats.append(contentsOf: repeatElement(0, count: n))
                floats.withUnsafeMutableBytes { $0.baseAddress!.advanced(by: old * 4).copyMemory(from: b.baseAddress!, byteCount: n * 4) }
            }
        }
        guard q.rows > 0, q.cols > 0, floats.count == q.rows * q.cols else {
            throw ModelError(.shapeMismatch, field: "tensor '\(q.weight)'", "\(floats.count) values for \(q.rows) x \(q.cols)", path: path)
        }
        if let bad = floats.firstIndex(where: { !$0.isFinite }) {
            throw ModelError(.invalidValue, field: "tensor '\(q.weight)'",
                             "value \(bad) is \(floats[bad]): NaN or infinite weights cannot be quantized", path: path)
        }
        // Quantize the weight as it would be stored unquantized (a dequantized GGUF type is rounded to the float type
        // first), so that a folder and the GGUF made from it quantize alike.
        let type = q.arithmetic
        let exact = t.parts.allSatisfy { part in
            switch part {
            case .rows(let s, _, _), .transposed(let s, _): return s.decoder == nil && s.type == type && scratch.scaling[s.name] == nil
            case .values: return type == .f32
            }
        }
        if !exact && type != .f32 { for i in floats.indices { floats[i] = type.roundTrip(floats[i]) } }
        func bytes(_ v: [Float], as type: GGMLType) -> [UInt8] { floatBytes(v, as: type, scratch: &scratch) }
        switch q.scheme {
        case .fp8(let strategy):
            let (codes, scales) = floats.withUnsafeBufferPointer {
                FP8Quantization.quantize($0.baseAddress!, rows: q.rows, cols: q.cols, strategy: strategy, threads: threads)
            }
            return [.codes: codes, .scales: bytes(scales, as: .f32)]
        case .mlx(let m):
            if m.mode != .affine {
                let r = floats.withUnsafeBufferPointer {
                    MLXMicroscaling.quantize($0.baseAddress!, rows: q.rows, cols: q.cols, mode: m.mode, arithmetic: type, threads: threads)
                }
                return [.codes: r.packed, .scales: r.scales]
            }
            let r = floats.withUnsafeBufferPointer {
                MLXAffine.quantize($0.baseAddress!, rows: q.rows, cols: q.cols, bits: m.bits, groupSize: m.groupSize, storedAs: type, threads: threads)
            }
            return [.codes: r.packed, .scales: bytes(r.scales, as: type), .biases: bytes(r.biases, as: type)]
        case .compressedTensors(let p) where p.isInteger:
            let r = floats.withUnsafeBufferPointer {
                CompressedTensorsInt.quantize($0.baseAddress!, rows: q.rows, cols: q.cols, bits: p.bits, groupSize: p.groupSize,
                                              symmetric: p.symmetric, arithmetic: type)
            }
            return integerTensors(codes: r.codes, scales: r.scales, zeroPoints: r.zeroPoints, p, q, scratch: &scratch)
        case .compressedTensors(let p) where p.name == .NVFP4A16:
            let r = floats.withUnsafeBufferPointer { CompressedTensorsNVFP4.quantize($0.baseAddress!, rows: q.rows, cols: q.cols, arithmetic: type) }
            return [.codes: r.packed, .scales: r.scales, .globalScale: bytes([r.global], as: .f32)]
        case .compressedTensors(let p):
            let r = floats.withUnsafeBufferPointer {
                FP8Quantization.quantize($0.baseAddress!, rows: q.rows, cols: q.cols, strategy: p.name == .FP8_BLOCK ? .block : .channel,
                                         arithmetic: .compressedTensors(type), threads: threads)
            }
            return [.codes: r.codes, .scales: bytes(r.scales, as: type)]
        }
    }

    static func writeFolder(_ outputs: [PlannedTensor], files: [(String, [UInt8])], to path: String, options: Options,
                            calibrated: [CalibratedWeight] = [], report: inout Report, progress: (Int, Int) -> Void) throws {
        let declared = outputs.map { SafetensorsTensor(name: $0.name, dtype: $0.safetensorsDType, shape: Array($0.dims.reversed())) }
        report.safetensorsBytes = try HFModelDirectoryWriter.safetensorsBytes(declared, maxShardBytes: options.shardBytes)
        if options.countOnly { return }
        // With a shard, its share of the tensors (a weight with its scales) goes into its part instead of the folder.
        var writer: HFModelDirectoryWriter?
        var part: FolderPartWriter?
        if let (spec, source) = options.shard {
            let p = try FolderPartWriter(shard: spec, source: source, outputPath: path, declared: declared,
                                         groups: outputs.map { $0.quantized?.weight ?? $0.name }, maxShardBytes: options.shardBytes, files: files)
            report.part = (p.path, p.selected.count, p.isComplete)
            if p.isComplete { return }
            part = p
        } else {
            writer = try HFModelDirectoryWriter(path: path, tensors: declared, maxShardBytes: options.shardBytes)
        }
        var done = false
        defer { if !done { writer?.abort(); part?.abort() } }
        let names = part?.selected ?? writer?.dataOrder ?? []
        let byName = Dictionary(outputs.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var scratch = ConversionScratch()
        var buffer: [UInt8] = []
        // The stored tensors of each quantized weight, and those computed with the first of them the writer asked for.
        var storedOf: [String: [(name: String, role: QuantizedPart.Role)]] = [:]
        for o in outputs { if let q = o.quantized { storedOf[q.weight, default: []].append((o.name, q.role)) } }
        var pending: [String: [UInt8]] = [:]
        // Only the weights this writer (or shard) writes are asked for.
        let writes = Set(names.compactMap { byName[$0]?.quantized?.weight })
        let asked = options.calibrated == nil ? [] : calibrated.filter { writes.contains($0.name) }
        scratch.scaling = try options.calibrated?.prepare(asked) ?? [:]
        let askedNames = Set(asked.map(\.name))
        for (i, name) in names.enumerated() {
            guard let t = byName[name] else { continue }
            buffer.removeAll(keepingCapacity: true)
            if let q = t.quantized {
                if let ready = pending.removeValue(forKey: name) {
                    buffer = ready
                } else {
                    let stored: [QuantizedPart.Role: [UInt8]]
                    if askedNames.contains(q.weight), let c = try options.calibrated?.quantize(q.weight) {
                        stored = encode(codes: c.codes, grid: c.grid, q, scratch: &scratch)
                    } else {
                        stored = try quantize(t, q, scratch: &scratch, threads: options.threads, path: path)
                    }
                    for other in storedOf[q.weight] ?? [] {
                        if other.name == name { buffer = stored[other.role] ?? [] } else { pending[other.name] = stored[other.role] }
                    }
                }
            } else {
                for part in t.parts {
                    try scratch.produce(part, as: t.type) { buffer.append(contentsOf: $0) }
                }
                if scratch.takeNonFinite() { report.warnings.append(nonFiniteWarning(t.name)) }
            }
            try buffer.withUnsafeBytes { if let writer { try writer.write($0) } else { try part?.write($0) } }
            report.typeCounts[t.safetensorsDType.rawValue, default: 0] += 1
            report.bytesWritten += buffer.count
            progress(i + 1, names.count)
        }
        if let writer {
            for (name, contents) in files {
                try contents.withUnsafeBytes { try writer.addFile(named: name, contents: $0) }
            }
            try writer.finish()
        }
        try part?.finish()
        done = true
        report.tensorCount = outputs.count
    }
}

extension String {
    func dropSuffix(_ suffix: String) -> String? { hasSuffix(suffix) ? String(dropLast(suffix.count)) : nil }
}

extension GGMLType {
    /// The safetensors dtype of a float type (the only ones a folder is written in).
    var safetensorsDType: SafetensorsDType {
        switch self {
        case .f16: .f16
        case .bf16: .bf16
        default: .f32
        }
    }
}

/// A Hugging Face folder seen as the GGUF `ingot convert --to gguf` would write, tensor by tensor, without a file:
/// what `ingot quantize` reads a folder through. Each tensor's bytes are produced when asked for (one tensor held at
/// a time).
public final class FolderAsGGUF: GGUFTensorSource {
    public let path: String
    public let metadata: [GGUFKeyValue]
    public let tensors: [GGUFTensorInfo]
    let planned: [String: PlannedTensor]
    var scratch = ConversionScratch()
    var buffer: [UInt8] = []

    public init(_ d: HFModelDirectory, dtype: Converter.DType = .auto) throws {
        let plan = try Converter.planGGUF(d, dtype: dtype)
        path = d.path
        metadata = plan.metadata
        tensors = try plan.outputs.map { try GGUFTensorInfo(name: $0.name, dimensions: $0.dims, type: $0.type) }
        planned = Dictionary(plan.outputs.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    public func withBytes<R>(of tensor: GGUFTensorInfo, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard let t = planned[tensor.name] else {
            throw FormatError(.tensorNotFound, field: "tensor '\(tensor.name)'", offset: nil, "not a tensor of this folder", path: path)
        }
        buffer.removeAll(keepingCapacity: true)
        for part in t.parts { try scratch.produce(part, as: t.type) { buffer.append(contentsOf: $0) } }
        return try buffer.withUnsafeBytes(body)
    }

    public func release(_ tensor: GGUFTensorInfo, bytes range: Range<Int>) {}
}

extension ModelFile {
    /// The model as GGUF tensors: a GGUF file itself, or a folder seen as the GGUF `ingot convert` would write
    /// (`FolderAsGGUF`); nil for a lone safetensors file, which has no config to name its tensors by.
    public func ggufTensors() throws -> GGUFTensorSource? {
        switch storage {
        case .gguf(let g): return g
        case .huggingFaceFolder(let d): return try FolderAsGGUF(d)
        case .safetensors: return nil
        }
    }
}
