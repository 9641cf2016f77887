import ArgumentParser
import IngotArchitectures
import IngotCalibrate
import IngotConvert
import IngotFormats
import IngotModel
import IngotNumerics
import IngotQuantize

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Quantize a GGUF model to a llama-quantize preset (Q4_K_M, Q8_0, ...), byte for byte as llama.cpp would.",
        discussion: """
        Presets: \(QuantPreset.all.filter { BlockCodec.canQuantize($0.defaultType) }.map(\.name).joined(separator: ", ")) \
        (MXFP4 names MXFP4_MOE). Each preset applies llama-quantize's per-tensor rules: the output and tied token \
        embedding get Q6_K, some attention-value and feed-forward-down layers more bits, 1-D tensors and norms stay \
        as they are, and rows a block type cannot hold fall back to a smaller block type. An already quantized \
        input is dequantized first (with a warning). Tensors stream through one at a time over --threads workers; \
        the output appears only when complete.

        --scheme writes a Hugging Face folder instead. fp8: every linear layer of the blocks as FP8 E4M3 codes with \
        F32 scales (--strategy tensor or channel: `weight_scale`; block: DeepSeek-V3's 128x128 `weight_scale_inv` \
        and its quantization_config); scales are max|w| / 448 per group, codes round w / scale to nearest even. \
        mlx: MLX quantization of every linear layer and the embedding whose rows divide into groups, as \
        mlx.core.quantize computes it on the CPU, with mlx-lm's `quantization` in config.json: --mode affine \
        (--bits 2, 3, 4, 5, 6 or 8, default 4; --group-size 32, 64 or 128, default 64), mxfp4 (E2M1 values, an \
        E8M0 scale per 32), mxfp8 (E4M3 values, E8M0 scale per 32) or nvfp4 (E2M1 values, an E4M3 scale per 16). \
        --recipe mixed_2_6|mixed_3_4|mixed_3_6|mixed_4_6 applies mlx-lm's mixed-precision recipe. \
        compressed-tensors: llm-compressor's --preset W4A16, W4A16_ASYM, W8A16 (integers in groups of --group-size, \
        default 128, or per channel), FP8_DYNAMIC, FP8_BLOCK or NVFP4A16 for every linear layer, in the layout vLLM \
        reads; layers whose rows the groups do not divide stay in float and are listed in `ignore`. \
        --tensor-type REGEX=TYPE gives matching weights another scheme (or float). The rest stays as stored. NaN or \
        infinite weights are refused.

        --method gptq --calibration TEXT quantizes the weights of the blocks by GPTQ instead of rounding to nearest, for \
        MLX affine and compressed-tensors' integer presets, as llm-compressor does: the text's windows run through \
        the model block by block, each block's linear layers are quantized against the Hessian of their inputs \
        (scales and zero points as round to nearest chooses them, the codes by GPTQ), and the quantized block gives \
        the next its inputs. --dampening, --block-size and --activation-order none|weight as llm-compressor's. With \
        --type, GPTQ rounds the block types whose values are levels of a scale (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, \
        Q2_K to Q6_K, IQ4_XS): each type's scales are fitted first by its own quantizer (under --imatrix when given), \
        then GPTQ chooses every value's level against them; the codebook types (IQ1, IQ2, IQ3), the embedding and the \
        output head keep the type's quantizer.

        --method awq --calibration TEXT (with --scheme mlx or compressed-tensors as GPTQ, and with --type, --imatrix \
        too) rescales input channels before rounding, as llm-compressor's AWQModifier searches the scales: for each \
        norm or layer whose output linear layers read (attn_norm → q, k, v; ffn_norm → gate, up; up → down; v → o \
        without grouped KV heads), --grid-points candidates from the activations' and weights' magnitudes \
        (--awq-scaling duo|activations|both), each judged by the error of the branch's output with the layers rounded \
        as the output stores them; the best divides the norm (or rows) and multiplies the layers' columns, which \
        leaves the model's function as it was.

        --method awq+gptq runs both, as an llm-compressor recipe of AWQ then GPTQ: AWQ's scales are searched, the model \
        is rescaled by them, and GPTQ calibrates and quantizes the rescaled weights.
        """
    )

    @Argument(help: "A .gguf model, or a Hugging Face folder (safetensors in F32/F16/BF16 or FP8 with scales), read as `ingot convert --to gguf` would write it.")
    var input: String

    @Option(name: .shortAndLong, help: "The GGUF file (or, with --scheme, the Hugging Face folder) to write.")
    var output: String?

    @Option(name: .long, help: "The preset (llama-quantize file type), e.g. Q4_K_M, Q8_0, F16.")
    var type: String?

    @Option(name: .long, help: "A safetensors scheme instead of a GGUF preset: fp8, mlx or compressed-tensors.")
    var scheme: String?

    @Option(name: .long, help: "With --scheme fp8: tensor, channel or block (128x128, DeepSeek-V3's layout).")
    var strategy: String = "block"

    @Option(name: .long, help: "With --scheme mlx: affine, mxfp4, mxfp8 or nvfp4.")
    var mode: String = "affine"

    @Option(name: .long, help: "With --scheme mlx: bits per weight (affine: 2, 3, 4, 5, 6, 8; default 4; the float modes have one).")
    var bits: Int?

    @Option(name: .customLong("group-size"), help: "With --scheme mlx: values per scale (affine: 32, 64, 128; default 64; the float modes have one). With --scheme compressed-tensors: columns per scale of the integer presets (default 128, as llm-compressor), or channel.")
    var groupSizeText: String?

    @Option(name: .long, help: "With --scheme compressed-tensors: \(CompressedTensorsPreset.Name.allCases.map(\.rawValue).joined(separator: ", ")).")
    var preset: String?

    /// --group-size as a number (nil: not given or `channel`).
    var groupSize: Int? { groupSizeText.flatMap { Int($0) } }

    @Option(name: .long, help: "With --scheme mlx (affine): an mlx-lm mixed recipe, \(MixedRecipe.allCases.map(\.rawValue).joined(separator: ", ")).")
    var recipe: String?

    @Option(name: .customLong("tensor-type"), help: ArgumentHelp("Give tensors whose name matches REGEX this type (repeatable; first match wins). With --scheme mlx: affine-B[-G], mxfp4, mxfp8, nvfp4 or float; with --scheme fp8 or compressed-tensors: float.", valueName: "REGEX=TYPE"))
    var tensorTypes: [String] = []

    @Option(name: .customLong("output-tensor-type"), help: "Type of output.weight (and of a tied token embedding).")
    var outputTensorType: String?

    @Option(name: .customLong("token-embedding-type"), help: "Type of token_embd.weight.")
    var tokenEmbeddingType: String?

    @Option(name: .customLong("keep"), help: ArgumentHelp("Copy tensors whose name matches REGEX unchanged (repeatable).", valueName: "REGEX"))
    var keep: [String] = []

    @Option(name: .long, help: "An importance matrix (from `ingot calibrate` or llama-imatrix; GGUF or legacy .dat): importance-weighted quantizers and llama-quantize's rules for them.")
    var imatrix: String?

    @Option(name: .long, help: "With --type, --scheme mlx (affine) or compressed-tensors (W4A16, W4A16_ASYM, W8A16): gptq, awq, awq+gptq (AWQ's scales, then GPTQ), or rtn (round to nearest, the default).")
    var method: String = "rtn"

    @Option(name: .long, help: "With --method gptq, awq or awq+gptq: the calibration text (UTF-8), cut into windows of --ctx tokens.")
    var calibration: String?

    @Option(name: .customLong("grid-points"), help: "With --method awq: candidate scales per smoothing (llm-compressor's n_grid).")
    var gridPoints: Int = 20

    @Option(name: .customLong("awq-scaling"), help: "With --method awq: duo (from activations and weights, llm-compressor's default), activations, or both (half the grid each).")
    var awqScaling: String = "duo"

    @OptionGroup var windows: WindowOptions

    @Option(name: .long, help: "With --method gptq: added to the Hessian's diagonal, as a fraction of its mean (llm-compressor's dampening_frac).")
    var dampening: Double = 0.01

    @Option(name: .customLong("block-size"), help: "With --method gptq: columns whose error is fed forward at once.")
    var blockSize: Int = 128

    @Option(name: .customLong("activation-order"), help: "With --method gptq: weight (columns in order of decreasing activation, each keeping its group's scale; llm-compressor's default) or none.")
    var activationOrder: String = "weight"

    @Flag(name: .long, help: "No per-tensor rules: every quantizable tensor gets the preset's type.")
    var pure = false

    @Flag(name: .customLong("dry-run"), help: "Print the plan (tensor -> type, sizes, bits per weight) and write nothing.")
    var dryRun = false

    @Option(name: .long, help: ArgumentHelp("Quantize only shard I of N (from 0) of the tensors, into OUTPUT.partI-of-N; `ingot merge` makes the output of all parts. auto/N: the scheduler's index (SLURM_ARRAY_TASK_ID, or JOB_COMPLETION_INDEX); auto: N from SLURM_ARRAY_TASK_COUNT (a whole array 0-(N-1)).", valueName: "I/N|auto"))
    var shard: String?

    @Flag(name: .customLong("allow-non-finite"), help: "Write tensors that hold NaN or infinity (each named in the warnings) instead of stopping at the first.")
    var allowNonFinite = false

    @OptionGroup var parallel: ParallelOptions

    @OptionGroup var common: CommonOptions

    func validate() throws {
        if output == nil && !dryRun { throw ValidationError("give --output (or --dry-run)") }
        if (type == nil) == (scheme == nil) { throw ValidationError("give --type PRESET (GGUF) or --scheme fp8 (Hugging Face folder), one of them") }
        if let scheme, !["fp8", "mlx", "compressed-tensors"].contains(scheme) {
            throw ValidationError("--scheme: unknown scheme '\(scheme)'; known: fp8, mlx, compressed-tensors")
        }
        if let g = groupSizeText, Int(g) == nil && !(g == "channel" && scheme == "compressed-tensors") {
            throw ValidationError("--group-size: '\(g)' is not a number" + (scheme == "compressed-tensors" ? " or channel" : ""))
        }
        if (scheme == "compressed-tensors") != (preset != nil) { throw ValidationError("--preset goes with --scheme compressed-tensors, and it needs one") }
        if scheme == "fp8" && FP8Quantization.Strategy(rawValue: strategy) == nil {
            throw ValidationError("--strategy: unknown '\(strategy)'; known: tensor, channel, block")
        }
        if scheme != "mlx" && (bits != nil || mode != "affine" || recipe != nil) {
            throw ValidationError("--mode, --bits and --recipe go with --scheme mlx")
        }
        if scheme == "fp8" && groupSizeText != nil { throw ValidationError("--group-size goes with --scheme mlx or compressed-tensors") }
        if scheme != nil { _ = try schemePlan() }
        if scheme != nil && dryRun { throw ValidationError("--dry-run plans GGUF presets only") }
        if scheme != nil && imatrix != nil { throw ValidationError("--imatrix weights the GGUF presets (--type); the safetensors schemes take --method gptq") }
        switch method {
        case "rtn":
            if calibration != nil { throw ValidationError("--calibration goes with --method gptq or awq") }
            if windows.chunks != nil || windows.ctx != WindowOptions.defaultContext {
                throw ValidationError("\(windows.chunks != nil ? "--chunks" : "--ctx") cuts the calibration text of --method gptq or awq")
            }
        case "gptq", "awq", "awq+gptq":
            if dryRun { throw ValidationError("--dry-run plans; --method \(method) calibrates while it writes") }
            if scheme == "fp8" || (scheme == "mlx" && mode != "affine") || (scheme == "compressed-tensors" && !((try? compressedTensorsPreset())?.isInteger ?? false)) {
                throw ValidationError("--method \(method) rounds to integer codes: give --scheme mlx --mode affine, or compressed-tensors with W4A16, W4A16_ASYM or W8A16")
            }
            if calibration == nil { throw ValidationError("--method \(method) needs --calibration TEXT") }
            if !(2...1000).contains(gridPoints) { throw ValidationError("--grid-points must be between 2 and 1000, not \(gridPoints)") }
            if AWQOptions.Scaling(rawValue: awqScaling) == nil { throw ValidationError("--awq-scaling: duo, activations or both, not '\(awqScaling)'") }
            if !(0...1).contains(dampening) { throw ValidationError("--dampening must be between 0 and 1, not \(dampening)") }
            if !(1...4096).contains(blockSize) { throw ValidationError("--block-size must be between 1 and 4096, not \(blockSize)") }
            if !["weight", "none"].contains(activationOrder) { throw ValidationError("--activation-order: weight or none, not '\(activationOrder)'") }
        default:
            throw ValidationError("--method: unknown '\(method)'; known: rtn, gptq, awq, awq+gptq")
        }
        if shard != nil && dryRun { throw ValidationError("--shard splits the writing; --dry-run writes nothing") }
        _ = try shardSpec()
    }

    /// --shard, read.
    func shardSpec() throws -> ShardSpec? {
        guard let shard else { return nil }
        switch ShardSpec.parse(shard) {
        case .success(let spec): return spec
        case .failure(let e): throw ValidationError("--shard: \(e)")
        }
    }

    static func ggmlType(_ name: String, option: String) throws -> GGMLType {
        guard let t = GGMLType.named(name) else {
            throw QuantError(.unknownType, "\(option): unknown type '\(name)'; known: \(GGMLType.all.map(\.name).joined(separator: ", "))")
        }
        return t
    }

    func options() throws -> QuantOptions {
        guard let preset = QuantPreset.named(type ?? "") else {
            throw QuantError(.unknownType, "--type: unknown preset '\(type ?? "")'; known: \(QuantPreset.all.map(\.name).joined(separator: ", "))")
        }
        var o = QuantOptions(preset: preset)
        for spec in tensorTypes {
            guard let eq = spec.lastIndex(of: "="), eq != spec.startIndex else {
                throw QuantError(.badPattern, "--tensor-type expects REGEX=TYPE, got '\(spec)'")
            }
            o.tensorTypes.append((String(spec[..<eq]), try Self.ggmlType(String(spec[spec.index(after: eq)...]), option: "--tensor-type")))
        }
        o.outputTensorType = try outputTensorType.map { try Self.ggmlType($0, option: "--output-tensor-type") }
        o.tokenEmbeddingType = try tokenEmbeddingType.map { try Self.ggmlType($0, option: "--token-embedding-type") }
        o.keep = keep
        o.pure = pure
        if let imatrix {
            o.importance = try ImportanceMatrix.read(path: imatrix)
            o.importanceFile = imatrix
        }
        return o
    }

    /// The MLX mode, bits and group size asked for, checked against what MLX has.
    func mlxQuantization() throws -> MLXQuantization {
        guard let m = MLXQuantization.Mode(rawValue: mode) else {
            throw ValidationError("--mode: unknown '\(mode)'; known: \(MLXQuantization.Mode.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let q = MLXQuantization(mode: m, bits: bits, groupSize: groupSize) else {
            let d = MLXQuantization.defaults(m)
            throw ValidationError("--scheme mlx --mode \(mode) has no \(bits ?? d.bits)-bit group-\(groupSize ?? d.groupSize) form: it takes \(MLXQuantization.accepted(m))")
        }
        return q
    }

    /// The compressed-tensors preset asked for.
    func compressedTensorsPreset() throws -> CompressedTensorsPreset {
        guard let name = CompressedTensorsPreset.Name(rawValue: (preset ?? "").uppercased()) else {
            throw ValidationError("--preset: unknown '\(preset ?? "")'; known: \(CompressedTensorsPreset.Name.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let group: Int? = groupSizeText == "channel" ? nil : groupSize ?? 128
        guard let p = CompressedTensorsPreset(name, groupSize: group) else {
            throw ValidationError("--preset \(name.rawValue) has no group size \(groupSizeText ?? "")"
                                  + (name.rawValue.hasPrefix("FP8") ? ": its scales are per channel or per 128x128 block" : ": give a multiple of 8, or channel"))
        }
        return p
    }

    /// The scheme of every weight: the base scheme, the recipe and the `--tensor-type` overrides.
    func schemePlan() throws -> SchemePlan {
        let base: WeightScheme
        switch scheme {
        case "mlx": base = .mlx(try mlxQuantization())
        case "compressed-tensors": base = .compressedTensors(try compressedTensorsPreset())
        default: base = .fp8(FP8Quantization.Strategy(rawValue: strategy) ?? .block)
        }
        var plan = SchemePlan(base: base)
        if let recipe {
            guard let r = MixedRecipe(rawValue: recipe) else {
                throw ValidationError("--recipe: unknown '\(recipe)'; known: \(MixedRecipe.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard case .mlx(let q) = base, q.mode == .affine, bits == nil else {
                throw ValidationError("--recipe \(recipe) chooses the bits of MLX affine quantization: give it with --mode affine and without --bits")
            }
            plan.recipe = r
        }
        for spec in tensorTypes {
            guard let eq = spec.lastIndex(of: "="), eq != spec.startIndex else {
                throw ValidationError("--tensor-type expects REGEX=TYPE, got '\(spec)'")
            }
            let text = String(spec[spec.index(after: eq)...])
            guard let s = SchemePlan.parseOverride(text, base: base) else {
                throw ValidationError("--tensor-type: '\(text)' is not a type for --scheme \(scheme ?? ""); "
                                      + (scheme == "mlx" ? "give affine-B or affine-B-G (bits 2, 3, 4, 5, 6, 8; group 32, 64, 128), mxfp4, mxfp8, nvfp4 or float" : "give float (one scheme per checkpoint)"))
            }
            plan.overrides.append((String(spec[..<eq]), s))
        }
        return plan
    }

    /// `--scheme fp8`: the model written as a Hugging Face folder with FP8 linear layers, by the converter's writer.
    func runScheme() throws {
        let file = try ModelFile.open(input)
        var options = Converter.Options(target: .hf)
        options.threads = parallel.count
        let plan = try schemePlan()
        options.scheme = plan
        if let spec = try shardSpec() { options.shard = (spec, try SourceFingerprint.of(path: input)) }
        var what: String
        switch plan.base {
        case .mlx(let q): what = plan.recipe.map { "mlx \($0.rawValue) (affine, group \(q.groupSize))" } ?? "mlx \(q)"
        case .compressedTensors(let p): what = "compressed-tensors \(p.name.rawValue)" + (p.isInteger ? " (\(p.groupSize.map { "group \($0)" } ?? "per channel"))" : "")
        case .fp8: what = "fp8 (\(strategy) scales)"
        }
        if !plan.overrides.isEmpty { what += ", \(plan.overrides.count) --tensor-type override\(plan.overrides.count == 1 ? "" : "s")" }
        let line = ProgressLine(verb: "quantizing", enabled: !common.json)
        let clock = Stopwatch()
        var gptq: SequentialGPTQ?, awq: AWQ?
        if let calibration, method != "rtn" {
            let model = try DecoderModel.open(file)
            let cut = try calibrationWindows(file, model: model, calibration: calibration)
            if method.hasPrefix("awq") { awq = makeAWQ(model, windows: cut, line: line) }
            if method.hasSuffix("gptq") { gptq = try makeGPTQ(model, windows: cut, line: line) }
            if let awq, let gptq {
                options.calibrated = SmoothedGPTQ(awq: awq, gptq: gptq)
                what += ", AWQ then GPTQ on \(gptq.windowCount) windows of \(windows.ctx) tokens"
            } else if let awq {
                options.calibrated = awq
                what += ", AWQ on \(awq.windowCount) windows of \(windows.ctx) tokens"
            } else if let gptq {
                options.calibrated = gptq
                what += ", GPTQ on \(gptq.windowCount) windows of \(windows.ctx) tokens"
            }
        }
        let report = try Converter.convert(file, to: output!, options: options) { done, total in
            line.show("quantizing tensor \(done)/\(total), \(Human.fixed(clock.seconds, 1)) s")
        }
        line.finish()
        if let part = report.part {
            if common.json {
                print(JSONValue.object(JSONObject([("part", partJSON(path: part.path, shard: shard ?? "", skipped: part.skipped,
                                                                     [("tensors", JSONValue(part.tensors))]))])).serialized(pretty: true))
            } else {
                print(part.skipped ? "shard \(shard ?? ""): \(part.path) is already complete; nothing written"
                                   : "shard \(shard ?? ""): \(part.tensors) stored tensors as \(what) -> \(part.path)")
            }
            return
        }
        if common.json {
            var o = report.json.objectValue ?? JSONObject()
            o["scheme"] = .string(scheme ?? "")
            o["detail"] = .string(what)
            o["seconds"] = .double(clock.seconds)
            if let gptq { o["gptq"] = gptqJSON(gptq) }
            if let awq { o["awq"] = awqJSON(awq) }
            print(JSONValue.object(o).serialized(pretty: true))
        } else {
            let types = report.typeCounts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            print("quantized \(input) -> \(output!) as \(what): \(report.quantizedWeights) weights quantized, \(report.tensorCount) tensors (\(types)), "
                  + "\(Human.bytes(report.bytesWritten)) in \(Human.fixed(clock.seconds, 2)) s")
            if !report.undivided.isEmpty {
                print("  kept in float (rows do not divide into groups): \(report.undivided.count) weights, e.g. \(report.undivided[0])")
            }
            if let gptq { print(gptqSummary(gptq)) }
            if let awq { print(awqSummary(awq)) }
        }
    }

    /// The windows of --ctx tokens (at most --chunks) the calibration text is cut into, read and tokenized once for
    /// whichever methods run.
    func calibrationWindows(_ file: ModelFile, model: DecoderModel, calibration: String) throws -> [[Int32]] {
        let text = try MappedFile(path: calibration)
        return try SequentialGPTQ.calibrationWindows(model: model, tokenizer: try TokenizerLoader.load(file), text: Array(text.bytes),
                                                     context: windows.ctx, chunks: windows.chunks)
    }

    func makeGPTQ(_ model: DecoderModel, windows: [[Int32]], line: ProgressLine) throws -> SequentialGPTQ {
        var o = GPTQOptions()
        (o.dampening, o.blockSize, o.activationOrder, o.threads) = (dampening, blockSize, activationOrder == "weight", parallel.count)
        return try SequentialGPTQ(model: model, windows: windows, options: o) { p in
            line.show("GPTQ: block \(p.block)/\(p.blocks) calibrated and quantized, \(Human.fixed(p.seconds, 1)) s")
        }
    }

    func gptqJSON(_ g: SequentialGPTQ) -> JSONValue {
        .object(JSONObject([
            ("calibration", .string(calibration ?? "")), ("windows", JSONValue(g.windowCount)), ("tokens", JSONValue(g.tokenCount)),
            ("dampening", .double(dampening)), ("blockSize", JSONValue(blockSize)), ("activationOrder", .string(activationOrder)),
            ("weights", JSONValue(g.outcomes.count)), ("loss", .double(g.totalLoss)),
            ("losses", .object(JSONObject(g.outcomes.map { ($0.name, JSONValue.double($0.loss)) }))),
            ("roundedToNearest", .array(g.outcomes.filter(\.roundedToNearest).map { .string($0.name) })),
            ("seconds", .object(JSONObject([("calibration", .double(g.seconds.calibration)),
                                            ("quantization", .double(g.seconds.quantization)),
                                            ("propagation", .double(g.seconds.propagation))]))),
        ]))
    }

    func gptqSummary(_ g: SequentialGPTQ) -> String {
        let fallback = g.outcomes.filter(\.roundedToNearest)
        let t = g.seconds
        return "  GPTQ: \(g.outcomes.count) weights, total loss \(Human.fixed(g.totalLoss, 3)); "
            + "\(Human.fixed(t.calibration, 1)) s recording Hessians, \(Human.fixed(t.quantization, 1)) s quantizing, "
            + "\(Human.fixed(t.propagation, 1)) s through the quantized blocks"
            + (fallback.isEmpty ? "" : "; \(fallback.count) rounded to nearest (Hessian not positive definite), e.g. \(fallback[0].name)")
    }

    func makeAWQ(_ model: DecoderModel, windows: [[Int32]], line: ProgressLine) -> AWQ {
        var o = AWQOptions()
        (o.gridPoints, o.threads) = (gridPoints, parallel.count)
        o.scaling = AWQOptions.Scaling(rawValue: awqScaling) ?? .duo
        return AWQ(model: model, windows: windows, options: o) { p in
            line.show("AWQ: block \(p.block)/\(p.blocks) searched, \(Human.fixed(p.seconds, 1)) s")
        }
    }

    func awqJSON(_ a: AWQ) -> JSONValue {
        .object(JSONObject([
            ("calibration", .string(calibration ?? "")), ("windows", JSONValue(a.windowCount)), ("tokens", JSONValue(a.tokenCount)),
            ("gridPoints", JSONValue(gridPoints)), ("scaling", .string(awqScaling)), ("seconds", .double(a.seconds)),
            ("split", .object(JSONObject([("passes", .double(a.split.passes)), ("rounding", .double(a.split.rounding)),
                                          ("judging", .double(a.split.judging))]))),
            ("smoothings", .array(a.outcomes.map { o in
                .object(JSONObject([("smoother", .string(o.smoother)), ("ratio", .double(Double(o.ratio))), ("duo", .bool(o.duo)),
                                    ("initialLoss", .double(o.initialLoss)), ("loss", .double(o.loss))]))
            })),
        ]))
    }

    func awqSummary(_ a: AWQ) -> String {
        let initial = a.outcomes.reduce(0) { $0 + $1.initialLoss }, best = a.outcomes.reduce(0) { $0 + $1.loss }
        let kept = a.outcomes.filter { $0.ratio == 0 && !$0.duo }.count
        return "  AWQ: \(a.outcomes.count) smoothings in \(Human.fixed(a.seconds, 1)) s; summed loss \(Human.fixed(best / max(initial, .leastNonzeroMagnitude) * 100, 1))% "
            + "of round to nearest's" + (kept == 0 ? "" : "; \(kept) left unscaled (no candidate did better)")
    }

    func run() throws {
        try reportingErrors(json: common.json) {
            if scheme != nil { return try runScheme() }
            let opts = try options()
            let file = try ModelFile.open(input)
            let checked = try ModelValidation.check(model: file)
            // A Hugging Face folder is read as the GGUF `ingot convert --to gguf` would write, with no file between.
            guard let gguf = try file.ggufTensors() else {
                throw QuantError(.unsupportedType, "\(input): a lone safetensors file has no config.json; give its Hugging Face folder")
            }
            var plan = try QuantPlanner.plan(metadata: gguf.metadata, tensors: gguf.tensors, options: opts)
            plan.warnings = checked + plan.warnings
            Warnings(items: plan.warnings).print(json: common.json)
            if dryRun {
                report(plan: plan, preset: opts.preset, result: nil)
                return
            }
            let line = ProgressLine(verb: "quantizing", enabled: !common.json)
            let clock = Stopwatch()
            var awq: AWQ?, gptq: SequentialGPTQ?
            var scaling: [String: ChannelScaling] = [:]
            if let calibration, method != "rtn" {
                // Each quantized tensor's type and importance weights, by GGUF name.
                var types: [String: GGMLType] = [:], importance: [String: [Float]] = [:]
                for t in plan.tensors where !t.isCopy {
                    types[t.name] = t.targetType
                    if let e = t.importanceEntry, let w = plan.importance?.importance(for: e) { importance[t.name] = w }
                }
                let model = try DecoderModel.open(file)
                let cut = try calibrationWindows(file, model: model, calibration: calibration)
                if method.hasPrefix("awq") {
                    // The search rounds each balance layer to the type the plan gives it, with the importance matrix.
                    let a = makeAWQ(model, windows: cut, line: line)
                    scaling = try a.search(BlockRounding(types: types, importance: importance))
                    awq = a
                }
                if method.hasSuffix("gptq") {
                    let g = try makeGPTQ(model, windows: cut, line: line)
                    try g.smooth(scaling)
                    _ = try g.prepare(blocks: types.map { name, type in
                        SequentialGPTQ.BlockTarget(name: name, type: type,
                                                   importance: importance[name].map { scaling[name]?.importance($0) ?? $0 })
                    })
                    gptq = g
                }
            }
            // The parts' source: the model, the importance matrix and calibration text (their names alone are in the
            // output's metadata).
            let sharding = try shardSpec().map {
                ($0, try SourceFingerprint.of(paths: [input] + (imatrix.map { [$0] } ?? []) + (calibration.map { [$0] } ?? [])))
            }
            let result = try GGUFQuantizer.run(input: gguf, plan: plan, outputPath: output!, threads: parallel.count,
                                               allowNonFinite: allowNonFinite, shard: sharding, scaling: scaling,
                                               calibrated: gptq.map { g in { try g.quantizedBlocks($0) } }) { p in
                let t = clock.seconds
                let rate = Double(p.doneBytes) / max(t, 1e-9)
                let eta = rate > 0 ? Double(p.totalBytes - p.doneBytes) / rate : 0
                line.show("quantizing tensor \(p.tensorIndex + 1)/\(p.tensorCount) \(p.tensorName), \(Human.fixed(rate / 1048576, 1)) MB/s, ETA \(Human.fixed(eta, 0)) s")
            }
            line.finish()
            Warnings(items: result.warnings).print(json: common.json)
            report(plan: plan, preset: opts.preset, result: result, awq: awq, gptq: gptq)
        }
    }

    var kernelName: String { Kernels.choice == .best ? Kernels.bestName : Kernels.choice.rawValue }

    func report(plan: QuantPlan, preset: QuantPreset, result: QuantResult?, awq: AWQ? = nil, gptq: SequentialGPTQ? = nil) {
        var byType: [String: (count: Int, elements: Int, bytes: Int)] = [:]
        for t in plan.tensors {
            var e = byType[t.targetType.name] ?? (0, 0, 0)
            e.count += 1; e.elements += t.elementCount; e.bytes += t.targetBytes
            byType[t.targetType.name] = e
        }
        let sortedTypes = byType.sorted { $0.value.bytes > $1.value.bytes }
        let sourceBPW = plan.elementCount == 0 ? 0 : Double(plan.sourceBytes * 8) / Double(plan.elementCount)
        if common.json {
            var o = JSONObject([
                ("input", .string(input)), ("output", output.map { .string($0) } ?? .null), ("preset", .string(preset.name)),
                ("dryRun", .bool(dryRun)), ("tensors", JSONValue(plan.tensors.count)),
                ("sourceBytes", JSONValue(plan.sourceBytes)), ("targetBytes", JSONValue(plan.targetBytes)),
                ("sourceBitsPerWeight", .double(sourceBPW)), ("bitsPerWeight", .double(plan.bitsPerWeight)),
                ("fallbacks", JSONValue(plan.fallbackCount)), ("kernels", .string(kernelName)), ("warnings", .array((plan.warnings + (result?.warnings ?? [])).map { .string($0) })),
                ("plan", .array(plan.tensors.map { t in
                    .object(JSONObject([("name", .string(t.name)), ("shape", .array(t.dimensions.reversed().map { JSONValue($0) })),
                                        ("from", .string(t.sourceType.name)), ("to", .string(t.targetType.name)),
                                        ("bytes", JSONValue(t.targetBytes)), ("note", t.note.map { .string($0) } ?? .null)]))
                })),
            ])
            if let r = result {
                o["seconds"] = .double(r.seconds)
                o["outputBytes"] = JSONValue(r.outputBytes)
                if let part = r.part {
                    o["part"] = partJSON(path: part.path, shard: shard ?? "", skipped: part.skipped, [("tensors", JSONValue(part.tensors))])
                }
            }
            if let awq { o["awq"] = awqJSON(awq) }
            if let gptq { o["gptq"] = gptqJSON(gptq) }
            print(JSONValue.object(o).serialized(pretty: true))
            return
        }
        if dryRun {
            var t = Table(header: ["tensor", "shape", "from", "to", "size", "note"], rightAligned: [4])
            for p in plan.tensors {
                t.rows.append([p.name, p.dimensions.reversed().map(String.init).joined(separator: "x"), p.sourceType.name,
                               p.targetType.name, Human.bytes(p.targetBytes), p.note ?? ""])
            }
            print(t.render())
        }
        if let result, let part = result.part {
            print(part.skipped ? "shard \(shard ?? ""): \(part.path) is already complete (\(part.tensors) tensors); nothing written"
                               : "shard \(shard ?? ""): \(part.tensors) of \(plan.tensors.count) tensors -> \(part.path) (\(Human.bytes(result.outputBytes)))")
            print("when every shard is done: ingot merge \(output ?? "").part*-of-\((try? shardSpec())??.count ?? 0) -o \(output ?? "")")
            return
        }
        var s = Table(header: ["type", "tensors", "weights", "size"], rightAligned: [1, 2, 3])
        for (name, e) in sortedTypes { s.rows.append([name, String(e.count), Human.count(e.elements), Human.bytes(e.bytes)]) }
        print(s.render())
        let verb = result == nil ? "would quantize" : "quantized"
        if result != nil { print("kernels: \(kernelName)") }
        print("\(verb) \(input) -> \(output ?? "(dry run)") as \(preset.name)")
        print("  \(Human.bytes(plan.sourceBytes)) (\(Human.fixed(sourceBPW, 2)) bits/weight) -> \(Human.bytes(plan.targetBytes)) (\(Human.fixed(plan.bitsPerWeight, 2)) bits/weight)"
              + (result.map { " in \(Human.fixed($0.seconds, 2)) s" } ?? ""))
        if let awq { print(awqSummary(awq)) }
        if let gptq { print(gptqSummary(gptq)) }
    }
}
