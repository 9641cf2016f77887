import IngotFormats
import IngotNumerics

/// mlx-lm's mixed-precision recipes (`mlx_lm.convert --quant-predicate`): affine quantization at a low bit width,
/// with more bits for the value projections and down projections of the first and last eighth of the layers and of
/// every third layer between, and for an untied output head (llama.cpp's Q4_K_M choices).
public enum MixedRecipe: String, Sendable, CaseIterable {
    case mixed_2_6, mixed_3_4, mixed_3_6, mixed_4_6

    public var lowBits: Int {
        switch self {
        case .mixed_2_6: 2
        case .mixed_3_4, .mixed_3_6: 3
        case .mixed_4_6: 4
        }
    }

    public var highBits: Int { self == .mixed_3_4 ? 4 : 6 }

    /// The bits mlx-lm's predicate gives the module at `path` (a Hugging Face module path such as
    /// `model.layers.7.mlp.down_proj`) of a model with `layers` layers.
    public func bits(forModule path: String, layers: Int) -> Int {
        let index = SchemePlan.layerIndex(path) ?? 0
        let more = index < layers / 8 || index >= 7 * layers / 8 || (index - layers / 8) % 3 == 2
        if (path.contains("v_proj") || path.contains("v_a_proj") || path.contains("v_b_proj")) && more { return highBits }
        if path.contains("down_proj") && more { return highBits }
        if path.contains("lm_head") { return highBits }
        return lowBits
    }
}

/// Which scheme each weight of a folder gets: a base scheme for every weight it applies to, an mlx-lm mixed
/// recipe (MLX affine), and `--tensor-type REGEX=SCHEME` overrides matched against the Hugging Face tensor name,
/// the first match winning (nil: keep the weight in float); before all of them, a scheme assigned to a weight by its
/// exact name (what `ingot fit` chose).
public struct SchemePlan: Sendable {
    public var base: WeightScheme
    public var recipe: MixedRecipe?
    public var overrides: [(pattern: String, scheme: WeightScheme?)] = []
    /// Schemes by Hugging Face weight name (nil: float), as explicit as an override.
    public var assigned: [String: WeightScheme?] = [:]

    public init(base: WeightScheme, recipe: MixedRecipe? = nil, overrides: [(pattern: String, scheme: WeightScheme?)] = []) {
        self.base = base
        self.recipe = recipe
        self.overrides = overrides
    }

    /// An override's scheme as written after `=`: `float` (keep), and for MLX `affine-B` or `affine-B-G` (group size
    /// defaulting to the base's), `mxfp4`, `mxfp8`, `nvfp4`. FP8 folders take only `float`: one
    /// `quantization_config` describes every FP8 weight of a checkpoint.
    public static func parseOverride(_ text: String, base: WeightScheme) -> WeightScheme?? {
        if text == "float" { return .some(nil) }
        guard case .mlx(let b) = base else { return nil }
        let parts = text.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        guard let mode = MLXQuantization.Mode(rawValue: parts[0]) else { return nil }
        if mode != .affine { return parts.count == 1 ? MLXQuantization(mode: mode).map { .some(.mlx($0)) } : nil }
        guard parts.count == 2 || parts.count == 3, let bits = Int(parts[1]) else { return nil }
        let group = parts.count == 3 ? Int(parts[2]) : (b.mode == .affine ? b.groupSize : 64)
        guard let group, let q = MLXQuantization(mode: .affine, bits: bits, groupSize: group) else { return nil }
        return .some(.mlx(q))
    }

    /// The index of the first all-digit component of a dotted path (the layer of `model.layers.7.mlp.down_proj`).
    static func layerIndex(_ path: String) -> Int? {
        for c in path.split(separator: ".") where !c.isEmpty && c.allSatisfy(\.isASCII) && c.allSatisfy(\.isNumber) {
            return Int(c)
        }
        return nil
    }

    /// What a weight the scheme may quantize gets: the first matching override, else the recipe, else the base.
    func scheme(for name: String, module: String, layers: Int, overrides compiled: [(Regex<AnyRegexOutput>, WeightScheme?)]) -> (WeightScheme?, explicit: Bool) {
        if let a = assigned[name] { return (a, true) }
        if let o = compiled.first(where: { name.contains($0.0) }) { return (o.1, true) }
        if let recipe, case .mlx(let b) = base {
            let q = MLXQuantization(mode: .affine, bits: recipe.bits(forModule: module, layers: layers), groupSize: b.groupSize)
            return (q.map { .mlx($0) }, false)
        }
        return (base, false)
    }
}
