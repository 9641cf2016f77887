import IngotFormats
import IngotNumerics

/// Builds a `QuantPlan` with llama-quantize's decisions (llama.cpp `src/llama-quant.cpp`): which tensors may be
/// quantized, which get more bits under each preset, the fallbacks for rows that a block type cannot hold, and
/// the order and metadata of the output file.
public enum QuantPlanner {
    public static func plan(metadata: [GGUFKeyValue], tensors: [GGUFTensorInfo], options: QuantOptions) throws -> QuantPlan {
        var state = RuleState(facts: QuantModelFacts(metadata: metadata), options: options)
        let overrides = try options.tensorTypes.map { (try compile($0.pattern), $0.type) }
        let keeps = try options.keep.map(compile)

        // Output order: llama.cpp's loader keeps tensors in a map ordered by layer number ("blk.N.", -1 if none),
        // then by name, bytewise.
        let ordered = tensors.sorted { a, b in
            let la = layerNumber(a.name), lb = layerNumber(b.name)
            if la != lb { return la < lb }
            return a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }
        state.attentionVCount = ordered.filter { TensorCategory(name: $0.name).isAttentionVLike }.count
        state.tiedEmbeddings = !ordered.contains { $0.name == "output.weight" }

        var planned: [PlannedTensor] = []
        var warnings: [String] = []
        for t in ordered {
            var note: String?
            var target: GGMLType
            let category = TensorCategory(name: t.name)
            if keeps.contains(where: { t.name.contains($0) }) {
                target = t.type
                note = "kept (--keep)"
            } else if !allowsQuantization(t) {
                if options.assigned[t.name] != nil {
                    throw QuantError(.unsupportedType, tensor: t.name, "the plan gives a type to a tensor that stays as stored (norms, 1-D and small tensors)")
                }
                target = t.type
            } else if let chosen = options.assigned[t.name] {
                (target, note) = (chosen, "planned")
            } else {
                (target, note) = try state.type(for: t, category: category, overrides: overrides)
            }
            if target != t.type {
                if !BlockCodec.canDequantize(t.type) {
                    throw QuantError(.unsupportedType, tensor: t.name, "cannot read source type \(t.type.name)")
                }
                if needsImportanceMatrix(t.name, target, options.preset) && !options.hasImportanceMatrix {
                    throw QuantError(.needsCalibration, tensor: t.name,
                                     "type \(target.name) needs an importance matrix (calibration data), and none was given")
                }
                if !BlockCodec.canQuantize(target) {
                    throw QuantError(.unsupportedType, tensor: t.name, "Ingot cannot write type \(target.name) yet")
                }
                if t.dimensions[0] % target.blockSize != 0 {
                    throw QuantError(.rowNotBlockMultiple, tensor: t.name,
                                     "rows of \(t.dimensions[0]) values do not fill \(target.name) blocks of \(target.blockSize)")
                }
            }
            var entry: String?
            if let im = options.importance, target != t.type {
                entry = try importanceEntry(im, for: t)
                if entry == nil && needsImportanceMatrix(t.name, target, options.preset) {
                    throw QuantError(.needsCalibration, tensor: t.name,
                                     "type \(target.name) needs an importance matrix, and \(options.importanceFile ?? "the one given") has no entry for this tensor")
                }
            }
            // llama-quantize's rules never plan these without weights (its quantizer asserts them); an override can.
            if target != t.type && entry == nil && BlockCodec.importanceOnlyTypes.contains(target) {
                throw QuantError(.needsCalibration, tensor: t.name,
                                 "type \(target.name) is quantized only under importance weights, and this tensor has none")
            }
            let rows = t.elementCount / max(1, t.dimensions[0])
            let targetBytes = target == t.type ? t.byteCount : rows * (t.dimensions[0] / target.blockSize) * target.bytesPerBlock
            planned.append(PlannedTensor(name: t.name, dimensions: t.dimensions, sourceType: t.type, targetType: target,
                                         sourceBytes: t.byteCount, targetBytes: targetBytes, note: note,
                                         importanceEntry: entry))
        }
        let present = Set(tensors.map(\.name))
        if let stranger = options.assigned.keys.sorted().first(where: { !present.contains($0) }) {
            throw QuantError(.unsupportedType, tensor: stranger, "the plan names a tensor this model does not have")
        }
        if let im = options.importance {
            if let stranger = im.entries.keys.sorted().first(where: { !present.contains($0) }) {
                throw QuantError(.importanceMismatch, tensor: stranger,
                                 "the importance matrix has an entry for a tensor this model does not have: it was computed for another model")
            }
            let unweighted = planned.filter { $0.importanceEntry == nil && !$0.isCopy && BlockCodec.weightedTypes.contains($0.targetType)
                                                  && $0.name.hasPrefix("blk.") }
            if let first = unweighted.first {
                warnings.append("\(unweighted.count) quantized tensors have no importance-matrix entry and are quantized without one, e.g. \(first.name)")
            }
        }
        warnings += state.warnings
        if state.fallbacks > 0 {
            let pairs = state.fallbackPairs.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value))" }.joined(separator: ", ")
            warnings.append("\(state.fallbacks) of \(planned.count) tensors have rows that do not fill the preset's blocks and fall back: \(pairs)")
        }
        if planned.contains(where: { $0.sourceType.isQuantized && $0.targetType != $0.sourceType }) {
            warnings.append("requantizing from an already quantized type: the result is worse than quantizing the original weights")
        }

        // Metadata: the input's, without split keys, then general.quantization_version and general.file_type
        // moved to the end with their new values (gguf_set_val removes and appends).
        var meta = metadata.filter { !["split.no", "split.count", "split.tensors.count"].contains($0.key) }
        meta.removeAll { $0.key == "general.quantization_version" }
        meta.append(GGUFKeyValue("general.quantization_version", .uint32(2)))
        meta.removeAll { $0.key == "general.file_type" }
        meta.append(GGUFKeyValue("general.file_type", .uint32(options.preset.code)))
        if let im = options.importance {
            meta += importanceMetadata(im, file: options.importanceFile ?? im.path ?? "")
        }
        return QuantPlan(metadata: meta, tensors: planned, warnings: warnings, fallbackCount: state.fallbacks, importance: options.importance)
    }

    /// The entry of `im` that weights tensor `t`: its own name, when its size is the tensor's columns times its
    /// experts. A size that differs is an importance matrix made for another model (llama-quantize refuses it too,
    /// except for the token embedding, which it then quantizes without one).
    static func importanceEntry(_ im: ImportanceMatrix, for t: GGUFTensorInfo) throws -> String? {
        guard let e = im.entries[t.name] else { return nil }
        let experts = t.dimensions.count > 2 ? t.dimensions[2] : 1
        let expected = t.dimensions[0] * experts
        if e.sums.count == expected { return t.name }
        if t.name == "token_embd.weight" { return nil }
        throw QuantError(.importanceMismatch, tensor: t.name,
                         "the importance matrix has \(e.matrices) x \(e.columns) values for a weight of \(experts) x \(t.dimensions[0]) (experts x columns): it was computed for another model")
    }

    /// llama-quantize's record of the importance matrix: `quantize.imatrix.file` and `.dataset` (each cut to 127
    /// bytes, as its fixed-size override field holds them), `.entries_count`, and `.chunks_count` when known.
    static func importanceMetadata(_ im: ImportanceMatrix, file: String) -> [GGUFKeyValue] {
        func cut(_ s: String) -> GGUFValue { .string(GGUFString(bytes: Array(s.utf8.prefix(127)))) }
        var kv = [GGUFKeyValue("quantize.imatrix.file", cut(file))]
        if let d = im.datasets.first { kv.append(GGUFKeyValue("quantize.imatrix.dataset", cut(d))) }
        kv.append(GGUFKeyValue("quantize.imatrix.entries_count", .uint32(UInt32(clamping: im.entries.count))))
        if im.chunkCount > 0 { kv.append(GGUFKeyValue("quantize.imatrix.chunks_count", .uint32(UInt32(clamping: im.chunkCount)))) }
        return kv
    }

    static func compile(_ pattern: String) throws -> Regex<AnyRegexOutput> {
        do { return try Regex(pattern) } catch {
            throw QuantError(.badPattern, "invalid regular expression \(pattern): \(error)")
        }
    }

    /// The N of a "blk.N." prefix, or -1.
    static func layerNumber(_ name: String) -> Int {
        let u = Array(name.utf8)
        guard u.count > 4, u[0] == 0x62, u[1] == 0x6C, u[2] == 0x6B, u[3] == 0x2E else { return -1 }
        var i = 4, negative = false
        if i < u.count, u[i] == 0x2D || u[i] == 0x2B { negative = u[i] == 0x2D; i += 1 }
        var v = 0, digits = 0
        while i < u.count, u[i] >= 0x30, u[i] <= 0x39, digits < 9 { v = v * 10 + Int(u[i] - 0x30); i += 1; digits += 1 }
        return digits == 0 ? -1 : (negative ? -v : v)
    }

    /// llama.cpp's `ggml_n_dims`: dimensions up to the last one above 1.
    static func significantDimensions(_ dims: [Int]) -> Int {
        var n = 1
        for (i, d) in dims.enumerated() where d > 1 { n = i + 1 }
        return n
    }

    /// Name parts of tensors llama-quantize never quantizes (norms, routers, positional and tiny tensors).
    static let excludedNameParts = [
        "_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel", "per_layer_model_proj",
        "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight", "indexer.q_proj.weight",
        "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight",
        "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight",
        "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight", "time_mix_g2.weight",
        "time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight",
        "attn_rel_b.weight", ".position_embd", "sam.pos_embd", "sam.neck.", "sam.net_", ".rel_pos",
        ".patch_embd", ".patch_merger", "a.rvq.codebook", "mm.a.code_embd",
    ]

    /// `tensor_allows_quantization`: 2-D and 3-D weights except norms, routers, positional and tiny tensors.
    public static func allowsQuantization(_ t: GGUFTensorInfo) -> Bool {
        guard significantDimensions(t.dimensions) >= 2 else { return false }
        let n = t.name
        guard n.hasSuffix("weight") else { return false }
        if excludedNameParts.contains(where: { n.contains($0) }) { return false }
        if n == "position_embd.weight" || n == "token_types.weight" { return false }
        return true
    }

    /// `tensor_requires_imatrix`.
    static func needsImportanceMatrix(_ name: String, _ type: GGMLType, _ preset: QuantPreset) -> Bool {
        if name == "token_embd.weight" || name == "per_layer_token_embd.weight" || name == "output.weight" { return false }
        switch type {
        case .iq3_XXS, .iq2_XXS, .iq2_XS, .iq2_S, .iq1_M, .iq1_S: return true
        case .q2_K: return preset.name == "Q2_K_S"
        default: return false
        }
    }
}

/// The counters and facts llama-quantize's rules carry from tensor to tensor.
struct RuleState {
    let facts: QuantModelFacts
    let options: QuantOptions
    var attentionVCount = 0
    var attentionVIndex = 0
    var ffnDownIndex = 0, ffnGateIndex = 0, ffnUpIndex = 0
    var tiedEmbeddings = true
    var fallbacks = 0
    var warnings: [String] = []
    /// "FROM -> TO" fallbacks and how many tensors took each.
    var fallbackPairs: [String: Int] = [:]

    init(facts: QuantModelFacts, options: QuantOptions) { self.facts = facts; self.options = options }

    var preset: String { options.preset.name }

    /// `llama_tensor_get_type`.
    mutating func type(for t: GGUFTensorInfo, category: TensorCategory,
                       overrides: [(Regex<AnyRegexOutput>, GGMLType)]) throws -> (GGMLType, String?) {
        if let e = options.tokenEmbeddingType, category == .tokenEmbedding {
            let named = t.name == "per_layer_token_embd.weight" && overrides.contains { t.name.contains($0.0) }
            if !named { return (e, "--token-embedding-type") }
        }
        if let o = options.outputTensorType, category == .output { return (o, "--output-tensor-type") }
        let base = options.preset.defaultType
        var type = base
        var note: String?
        if base.isQuantized {
            var manual = false
            if let match = overrides.first(where: { t.name.contains($0.0) }) {
                type = match.1
                manual = true
                note = "--tensor-type"
            }
            if !manual && !options.pure {
                type = try rule(type, t, category)
                if type != base { note = "preset rule" }
            }
            let fallback = fallbackType(t, type)
            if fallback != type {
                fallbackPairs["\(type.name) -> \(fallback.name)", default: 0] += 1
                note = "fallback from \(type.name)"
                type = fallback
            }
        }
        return (type, note)
    }

    /// `tensor_type_fallback`.
    mutating func fallbackType(_ t: GGUFTensorInfo, _ target: GGMLType) -> GGMLType {
        let columns = t.dimensions[0]
        guard columns % target.blockSize != 0 else { return target }
        fallbacks += 1
        var result: GGMLType
        switch target {
        case .iq1_S, .iq1_M, .iq2_XXS, .iq2_XS, .iq2_S, .iq3_XXS, .iq3_S, .iq4_XS: result = .iq4_NL
        case .q2_K, .q3_K, .tq1_0, .tq2_0: result = .q4_0
        case .q4_K: result = .q5_0
        case .q5_K: result = .q5_1
        case .q6_K: result = .q8_0
        default: result = target
        }
        if columns % result.blockSize != 0 { result = .f16 }
        return result
    }

    static func useMoreBits(_ i: Int, _ n: Int) -> Bool { i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2 }

    func layer(_ counter: Int, _ name: String) throws -> (Int, Int) {
        let n = facts.layerCount
        guard max(1, facts.expertCount) > 1 else { return (counter, n) }
        let l = QuantPlanner.layerNumber(name)
        guard l >= 0, l < n else { throw QuantError(.badLayer, tensor: name, "layer number outside [0, \(n))") }
        return (l, n)
    }

    /// `llama_tensor_get_type_impl` for the architectures Ingot reads (Falcon's and GLM5-Next's special cases
    /// included where they are one line).
    mutating func rule(_ start: GGMLType, _ t: GGUFTensorInfo, _ category: TensorCategory) throws -> GGMLType {
        var newType = start
        let ft = preset
        let arch = facts.architecture
        let falcon = arch == "falcon"
        let gqa = facts.gqa, experts = facts.expertCount
        let iqLow = ["IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M"]
        if category == .output || (tiedEmbeddings && category == .tokenEmbedding) {
            if let o = options.outputTensorType {
                newType = o
            } else {
                if ft == "MXFP4_MOE" { newType = .q8_0 }
                else if falcon || t.dimensions[0] % newType.blockSize != 0 { newType = .q8_0 }
                else if ["IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M"].contains(ft) { newType = .q5_K }
                else if newType != .q8_0 { newType = .q6_K }
            }
        } else if ft == "MXFP4_MOE" {
            newType = t.dimensions.count > 2 && t.dimensions[2] > 1 ? .mxfp4 : .q8_0
        } else if category == .tokenEmbedding {
            if let e = options.tokenEmbeddingType { newType = e }
            else if ["IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ1_M"].contains(ft) { newType = .q2_K }
            else if ["IQ2_S", "IQ2_M", "IQ3_XXS"].contains(ft) { newType = .iq3_S }
            else if ["TQ1_0", "TQ2_0"].contains(ft) { newType = .q4_K }
        } else if iqLow.contains(ft) {
            if category.isAttentionVLike {
                if gqa >= 4 || experts >= 4 { newType = .q4_K }
                else { newType = ft == "IQ2_S" || ft == "IQ2_M" ? .iq3_S : .q2_K }
                attentionVIndex += 1
            } else if experts == 8 && category == .attentionK {
                newType = .q4_K
            } else if category == .ffnDown {
                if ffnDownIndex < facts.layerCount / 8 { newType = ft == "IQ2_S" || ft == "IQ2_M" ? .iq3_S : .q2_K }
                ffnDownIndex += 1
            } else if category == .attentionOutput {
                if experts == 8 { newType = .q5_K }
                else if ft == "IQ1_S" || ft == "IQ1_M" { newType = .iq2_XXS }
                else if ft == "IQ2_S" || ft == "IQ2_M" { newType = .iq3_S }
            }
        } else if category.isAttentionVLike {
            let i = attentionVIndex, n = attentionVCount
            if ft == "Q2_K" { newType = gqa >= 4 ? .q4_K : .q3_K }
            else if ft == "Q2_K_S" && gqa >= 4 { newType = .q4_K }
            else if ft == "IQ3_XXS" { newType = gqa >= 4 ? .q4_K : (!options.hasImportanceMatrix ? .iq3_S : .iq3_XXS) }
            else if (ft == "IQ3_XS" || ft == "IQ3_S") && gqa >= 4 { newType = .q4_K }
            else if ft == "IQ3_M" { newType = .q4_K }
            else if ft == "Q3_K_M" { newType = i < 2 ? .q5_K : .q4_K }
            else if ft == "Q3_K_L" { newType = .q5_K }
            else if (ft == "IQ4_NL" || ft == "IQ4_XS") && gqa >= 4 { newType = .q5_K }
            else if (ft == "Q4_K_M" || ft == "Q5_K_M") && Self.useMoreBits(i, n) { newType = .q6_K }
            else if ft == "Q4_K_S" && i < 4 { newType = .q5_K }
            if facts.is70B && (newType == .q3_K || newType == .q4_K) { newType = .q5_K }
            if experts == 8 { newType = .q8_0 }
            attentionVIndex += 1
        } else if category == .attentionK {
            if experts == 8 { newType = .q8_0 }
            else if ft == "IQ3_XS" { newType = .iq3_XXS }
            else if ft == "IQ3_XXS" { newType = .iq2_S }
        } else if category == .attentionQ {
            if ft == "IQ3_XS" { newType = .iq3_XXS }
            else if ft == "IQ3_XXS" { newType = .iq2_S }
        } else if category == .ffnDown {
            let (i, n) = try layer(ffnDownIndex, t.name)
            if ft == "Q2_K" { newType = .q3_K }
            else if ft == "Q2_K_S" { if i < n / 8 { newType = .q4_K } }
            else if ft == "IQ3_XXS" && !options.hasImportanceMatrix { newType = i < n / 8 ? .q4_K : .q3_K }
            else if ft == "Q3_K_M" {
                newType = i < n / 16 ? .q5_K : (!falcon || Self.useMoreBits(i, n) ? .q4_K : .q3_K)
            }
            else if ft == "IQ3_M" && (i < n / 8 || (experts == 8 && Self.useMoreBits(i, n))) { newType = .q4_K }
            else if ft == "Q3_K_L" { newType = falcon ? .q4_K : .q5_K }
            else if ft == "Q4_K_M" {
                if falcon { newType = i < n / 16 ? .q6_K : (Self.useMoreBits(i, n) ? .q5_K : .q4_K) }
                else if Self.useMoreBits(i, n) { newType = .q6_K }
            }
            else if i < n / 8 && (ft == "IQ4_NL" || ft == "IQ4_XS") && !options.hasImportanceMatrix { newType = .q5_K }
            else if ft == "Q5_K_M" && Self.useMoreBits(i, n) { newType = .q6_K }
            else if ft == "Q4_K_S" && !falcon && i < n / 8 { newType = .q5_K }
            else if (ft == "Q4_0" || ft == "Q5_0") && options.hasImportanceMatrix && i < n / 8 {
                newType = ft == "Q4_0" ? .q4_1 : .q5_1
            }
            ffnDownIndex += 1
        } else if category == .attentionOutput {
            if !falcon {
                if experts == 8 {
                    if ["Q2_K", "IQ3_XS", "IQ3_XXS", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M", "IQ3_S", "IQ3_M",
                        "IQ4_XS"].contains(ft) { newType = .q5_K }
                } else {
                    if ft == "Q2_K" { newType = .q3_K }
                    else if ft == "IQ3_XXS" { newType = .iq3_S }
                    else if ft == "Q3_K_M" { newType = .q4_K }
                    else if ft == "Q3_K_L" { newType = .q5_K }
                    else if ft == "IQ3_M" { newType = .q4_K }
                }
            } else if ft == "Q3_K_L" {
                newType = .q4_K
            }
        } else if category == .attentionQKV {
            if ft == "Q3_K_M" || ft == "Q3_K_L" || ft == "IQ3_M" { newType = .q4_K }
            else if ft == "Q4_K_M" { newType = .q5_K }
            else if ft == "Q5_K_M" { newType = .q6_K }
        } else if category == .ffnGate {
            let (i, n) = try layer(ffnGateIndex, t.name)
            if ft == "IQ3_XS" && i >= n / 8 && i < 7 * n / 8 { newType = .iq3_XXS }
            ffnGateIndex += 1
        } else if category == .ffnUp {
            let (i, n) = try layer(ffnUpIndex, t.name)
            if ft == "IQ3_XS" && i >= n / 8 && i < 7 * n / 8 { newType = .iq3_XXS }
            ffnUpIndex += 1
        }
        return newType
    }
}
