import Foundation
import IngotFormats
import IngotNumerics

/// What went wrong with a budget or a saved plan.
public struct FitError: IngotError, Sendable {
    public enum Code: String, Sendable {
        case budgetTooSmall = "budget-too-small"
        case budgetTooLarge = "budget-too-large"
        case invalidPlan = "invalid-plan"
        case planMismatch = "plan-mismatch"
        /// The output format cannot hold a plan of this kind (forms of another format; one form per tensor where the
        /// format stores several tensors as one weight, or one tensor as several).
        case cannotExpress = "format-cannot-express"
    }
    public var code: Code
    public var field: String?
    public var detail: String
    public var offset: Int?
    public init(_ code: Code, field: String? = nil, offset: Int? = nil, _ detail: String) {
        (self.code, self.field, self.offset, self.detail) = (code, field, offset, detail)
    }
    public var description: String { (field.map { "\($0): " } ?? "") + detail + (offset.map { " (at byte \($0))" } ?? "") }
    public var codeName: String { code.rawValue }
    public var reportFields: [(String, String?)] { [("field", field), ("detail", detail)] }
}

/// The measured tensors and a type for each: the smallest predicted loss whose file fits the budget.
public struct FitPlan: Sendable {
    public var tensors: [FitTensor]
    /// Index into each tensor's candidates.
    public var chosen: [Int]
    /// The file's bytes that no choice changes: the header and the tensors that stay as stored, padded.
    public var fixedBytes: Int
    public var budget: Int

    public init(tensors: [FitTensor], chosen: [Int], fixedBytes: Int, budget: Int) {
        (self.tensors, self.chosen, self.fixedBytes, self.budget) = (tensors, chosen, fixedBytes, budget)
    }

    public var fileBytes: Int { fixedBytes + zip(tensors, chosen).reduce(0) { $0 + $1.0.candidates[$1.1].bytes } }
    public var predictedKLD: Double { zip(tensors, chosen).reduce(0) { $0 + $1.0.candidates[$1.1].loss } }
    public var types: [String: FitType] {
        Dictionary(uniqueKeysWithValues: zip(tensors, chosen).map { ($0.name, $0.candidates[$1].type) })
    }

    /// The smallest and the largest file the candidates allow.
    public static func range(_ tensors: [FitTensor], fixedBytes: Int) -> ClosedRange<Int> {
        let low = tensors.reduce(fixedBytes) { $0 + ($1.candidates.map(\.bytes).min() ?? 0) }
        let high = tensors.reduce(fixedBytes) { $0 + ($1.candidates.map(\.bytes).max() ?? 0) }
        return low...max(low, high)
    }

    /// The plan of least predicted loss within `budget` bytes of file (`Allocation.choose`); `field` names the option
    /// the budget came from in errors. `ties`: groups of tensors (indices) that must take one form, as a runtime that
    /// fuses them into one layer needs (vLLM's q, k, v and gate, up): each group chooses among the forms all its
    /// tensors have, at their summed bytes and losses.
    public static func choose(_ tensors: [FitTensor], ties: [[Int]] = [], fixedBytes: Int, budget: Int, field: String = "--budget") throws -> FitPlan {
        let (groups, forms, merged) = grouping(tensors, ties: ties)
        let low = merged.reduce(fixedBytes) { $0 + ($1.map(\.bytes).min() ?? 0) }
        let high = merged.reduce(fixedBytes) { $0 + ($1.map(\.bytes).max() ?? 0) }
        let r = low...max(low, high)
        guard budget >= r.lowerBound else {
            throw FitError(.budgetTooSmall, field: field,
                           "\(budget) bytes is below the smallest file the candidate types allow, \(r.lowerBound) bytes (\(mib(r.lowerBound)))")
        }
        guard budget < r.upperBound else {
            throw FitError(.budgetTooLarge, field: field,
                           "\(budget) bytes holds every tensor as it is stored (\(r.upperBound) bytes, \(mib(r.upperBound))): nothing to fit")
        }
        let items = merged.map { $0.map { Allocation.Option(bytes: $0.bytes, loss: $0.loss) } }
        guard let picked = Allocation.choose(items, budget: budget - fixedBytes) else {
            throw FitError(.budgetTooSmall, field: field, "\(budget) bytes cannot hold the smallest plan")
        }
        return FitPlan(tensors: tensors, chosen: expand(tensors, groups: groups, forms: forms, picked: picked), fixedBytes: fixedBytes, budget: budget)
    }

    /// The plan of fewest bytes (each group of tied tensors in its smallest common form).
    public static func smallest(_ tensors: [FitTensor], ties: [[Int]] = [], fixedBytes: Int) -> FitPlan {
        let (groups, forms, merged) = grouping(tensors, ties: ties)
        let picked = merged.map { m in m.indices.min { (m[$0].bytes, m[$0].loss) < (m[$1].bytes, m[$1].loss) } ?? 0 }
        let plan = FitPlan(tensors: tensors, chosen: expand(tensors, groups: groups, forms: forms, picked: picked), fixedBytes: fixedBytes, budget: 0)
        return FitPlan(tensors: tensors, chosen: plan.chosen, fixedBytes: fixedBytes, budget: plan.fileBytes)
    }

    /// Every tensor in one group (its own, or its tie's), each group's forms (those every member has, in the first
    /// member's order) and their summed bytes and losses.
    static func grouping(_ tensors: [FitTensor], ties: [[Int]]) -> (groups: [[Int]], forms: [[FitType]], merged: [[(bytes: Int, loss: Double)]]) {
        var groups: [[Int]] = [], grouped = Set<Int>()
        for tie in ties where tie.count > 1 && tie.allSatisfy(tensors.indices.contains) && grouped.isDisjoint(with: tie) {
            groups.append(tie)
            grouped.formUnion(tie)
        }
        for i in tensors.indices where !grouped.contains(i) { groups.append([i]) }
        // Each group's forms: those every member has, in the first member's order.
        let forms: [[FitType]] = groups.map { g in
            tensors[g[0]].candidates.map(\.type).filter { type in g.allSatisfy { tensors[$0].candidates.contains { $0.type == type } } }
        }
        func candidate(_ i: Int, _ type: FitType) -> FitCandidate { tensors[i].candidates.first { $0.type == type }! }
        let merged = zip(groups, forms).map { g, types in
            types.map { type in
                (bytes: g.reduce(0) { $0 + candidate($1, type).bytes }, loss: g.reduce(0.0) { $0 + candidate($1, type).loss })
            }
        }
        return (groups, forms, merged)
    }

    /// Each tensor's candidate index from its group's pick.
    static func expand(_ tensors: [FitTensor], groups: [[Int]], forms: [[FitType]], picked: [Int]) -> [Int] {
        var chosen = [Int](repeating: 0, count: tensors.count)
        for (k, g) in groups.enumerated() {
            for i in g { chosen[i] = tensors[i].candidates.firstIndex { $0.type == forms[k][picked[k]] }! }
        }
        return chosen
    }

    /// The plan as a file `--plan` reads back: every measurement, so that another budget is planned without measuring again.
    public func json(format: FitFormat, extra: [(String, JSONValue)] = []) -> JSONValue {
        .object(JSONObject([
            ("format", "ingot-fit-plan"), ("version", 1), ("output", .string(format.rawValue)), ("budget", JSONValue(budget)), ("fileBytes", JSONValue(fileBytes)),
            ("fixedBytes", JSONValue(fixedBytes)), ("predictedKLD", .double(predictedKLD)),
        ] + extra + [
            ("tensors", .array(zip(tensors, chosen).map { t, c in
                .object(JSONObject([
                    ("name", .string(t.name)), ("shape", .array(t.dimensions.reversed().map { JSONValue($0) })),
                    ("from", .string(t.sourceType.name)), ("type", .string(t.candidates[c].type.name)),
                    ("bytes", JSONValue(t.candidates[c].bytes)), ("loss", .double(t.candidates[c].loss)),
                    ("probe", .string(t.probe.name)), ("probeKLD", .double(t.probeKLD)),
                    ("candidates", .array(t.candidates.map { k in
                        .object(JSONObject([("type", .string(k.type.name)), ("bytes", JSONValue(k.bytes)),
                                            ("error", .double(k.error)), ("loss", .double(k.loss))]))
                    })),
                ]))
            })),
        ]))
    }

    /// The tensors (with their measurements) and chosen forms of a saved plan, checked against the model's tensors
    /// (`shapes`: GGUF dimensions by name, of the tensors the plan must cover) and the output format (a plan without
    /// `output` is a GGUF one).
    public static func read(_ bytes: [UInt8], shapes: [String: [Int]], format: FitFormat) throws -> (tensors: [FitTensor], chosen: [Int]) {
        let root = try JSONParser.parse(bytes, field: "plan")
        guard let o = root.objectValue, o["format"]?.stringValue == "ingot-fit-plan" else {
            throw FitError(.invalidPlan, field: "format", offset: 0, "not a plan of `ingot fit` (format \"ingot-fit-plan\")")
        }
        guard o["version"]?.intValue == 1 else { throw FitError(.invalidPlan, field: "version", offset: offset(o, "version"), "version 1 is the one known") }
        let made = o["output"]?.stringValue ?? FitFormat.gguf.rawValue
        guard made == format.rawValue else {
            throw FitError(.cannotExpress, field: "output", offset: offset(o, "output"),
                           "the plan chose among \(made) forms; it cannot be written as \(format.rawValue): measure again with --format \(format.rawValue)")
        }
        func form(_ v: JSONValue?) -> FitType? { v?.stringValue.flatMap { FitType.named($0, format: format) } }
        guard let list = o["tensors"]?.arrayValue else { throw FitError(.invalidPlan, field: "tensors", offset: offset(o, "tensors"), "no tensor list") }
        var tensors: [FitTensor] = [], chosen: [Int] = []
        for (i, v) in list.enumerated() {
            let field = "tensors[\(i)]"
            guard let t = v.objectValue, let name = t["name"]?.stringValue, let shape = t["shape"]?.arrayValue?.compactMap(\.intValue),
                  let from = t["from"]?.stringValue.flatMap(GGMLType.named), let type = form(t["type"]),
                  let probe = form(t["probe"]), let probeKLD = t["probeKLD"]?.doubleValue,
                  let cands = t["candidates"]?.arrayValue else {
                throw FitError(.invalidPlan, field: field, "each tensor needs name, shape, from, type, probe, probeKLD and candidates")
            }
            guard let dims = shapes[name] else {
                throw FitError(.planMismatch, field: "\(field).name", "the plan names \(name), which this model does not have to quantize: it was made for another model")
            }
            guard dims == Array(shape.reversed()) else {
                throw FitError(.planMismatch, field: "\(field).shape", "\(name) is \(dims.reversed()) in this model, \(shape) in the plan: it was made for another model")
            }
            var candidates: [FitCandidate] = []
            for (k, c) in cands.enumerated() {
                guard let co = c.objectValue, let ct = form(co["type"]), let bytes = co["bytes"]?.intValue,
                      let error = co["error"]?.doubleValue, let loss = co["loss"]?.doubleValue,
                      bytes > 0, error.isFinite, error >= 0, loss.isFinite, loss >= 0, writable(ct, from: from),
                      dims[0] % ct.rowUnit == 0 else {
                    throw FitError(.invalidPlan, field: "\(field).candidates[\(k)]",
                                   "a candidate needs a known form whose blocks or groups the rows fill, bytes above 0, and a finite error and loss of at least 0")
                }
                candidates.append(FitCandidate(type: ct, bytes: bytes, error: error, loss: loss))
            }
            guard let c = candidates.firstIndex(where: { $0.type == type }) else {
                throw FitError(.invalidPlan, field: "\(field).type", "\(type.name) is not among the tensor's candidates")
            }
            guard probeKLD.isFinite, probeKLD >= 0 else { throw FitError(.invalidPlan, field: "\(field).probeKLD", "not a finite divergence") }
            tensors.append(FitTensor(name: name, dimensions: dims, sourceType: from, candidates: candidates, probe: probe, probeKLD: probeKLD))
            chosen.append(c)
        }
        let named = Set(tensors.map(\.name))
        guard named.count == tensors.count else { throw FitError(.invalidPlan, field: "tensors", "a tensor is named twice") }
        if let missing = shapes.keys.sorted().first(where: { !named.contains($0) }) {
            throw FitError(.planMismatch, field: "tensors", "the plan has no entry for \(missing): it was made for another model")
        }
        return (tensors, chosen)
    }

    /// Whether a plan's form can be written for a tensor stored as `from`: its own GGUF type, one Ingot quantizes to, or
    /// any MLX form.
    static func writable(_ type: FitType, from: GGMLType) -> Bool {
        if case .gguf(let g) = type { return g == from || BlockCodec.canQuantize(g) }
        return true
    }

    static func mib(_ bytes: Int) -> String { String(format: "%.2f MiB", Double(bytes) / 1048576) }

    static func offset(_ o: JSONObject, _ key: String) -> Int? {
        o.members.firstIndex { $0.key == key }.flatMap { o.offset(ofMember: $0) }
    }
}
