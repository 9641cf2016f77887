import IngotFormats

/// One shard's share of an evaluation (`ingot eval --shard I/N -o OUT`): every scored position of its windows (the
/// negative log-likelihoods, KL divergence, top-1 agreement and Δp) and how it ran. `ingot merge` adds the parts'
/// positions in window order, as one run adds them, so the merged report is one run's: the same sums, the same
/// percentiles, to the bit (only the speeds are the parts' own).
///
/// The file is a GGUF (`general.type` ingot-eval): keys `eval.model`, `eval.base`, `eval.context`, `eval.threads`,
/// `eval.kernels`, `eval.windows` (of the whole run), `eval.has_base`, `eval.seconds`, `eval.base_seconds`; F64 tensors
/// `eval.nll`, `eval.nll_base`, `eval.kld`, `eval.p_diff` and I8 `eval.same_top`, one entry per scored position;
/// then the shard keys (`PartFile`, positions: the windows).
public struct EvalPart: Sendable {
    public var model: String
    public var base: String?
    public var context: Int
    public var threads: Int
    public var kernels: String
    public var totalWindows: Int
    public var windows: [Int]
    public var hasBase: Bool
    public var seconds: Double
    public var baseSeconds: Double?
    var positions: [Position]

    public static let type = PartFile.evaluationType

    /// Writes the part with its shard keys (`PartFile.keys`, the windows as positions) after the evaluation's.
    public func write(to path: String, keys: [GGUFKeyValue]) throws {
        var metadata = [GGUFKeyValue("general.type", .string(GGUFString(EvalPart.type))),
                        GGUFKeyValue("eval.model", .string(GGUFString(model))),
                        GGUFKeyValue("eval.context", .uint32(UInt32(context))),
                        GGUFKeyValue("eval.threads", .uint32(UInt32(threads))),
                        GGUFKeyValue("eval.kernels", .string(GGUFString(kernels))),
                        GGUFKeyValue("eval.windows", .uint32(UInt32(totalWindows))),
                        GGUFKeyValue("eval.has_base", .bool(hasBase)),
                        GGUFKeyValue("eval.seconds", .float64(seconds))]
        if let base { metadata.append(GGUFKeyValue("eval.base", .string(GGUFString(base)))) }
        if let baseSeconds { metadata.append(GGUFKeyValue("eval.base_seconds", .float64(baseSeconds))) }
        metadata += keys
        let n = positions.count
        let columns: [(String, [Double])] = [("eval.nll", positions.map(\.nll)), ("eval.nll_base", positions.map(\.nllBase)),
                                             ("eval.kld", positions.map(\.kld)), ("eval.p_diff", positions.map(\.pDiff))]
        let infos = try columns.map { try GGUFTensorInfo(name: $0.0, dimensions: [n], type: .f64) }
            + [try GGUFTensorInfo(name: "eval.same_top", dimensions: [n], type: .i8)]
        let w = try GGUFWriter(path: path, metadata: metadata, tensors: infos)
        do {
            for (_, values) in columns { try values.map { $0.bitPattern.littleEndian }.withUnsafeBytes { try w.write($0) } }
            try positions.map { $0.sameTop ? Int8(1) : 0 }.withUnsafeBytes { try w.write($0) }
            try w.finish()
        } catch {
            w.abort()
            throw error
        }
    }

    /// The report of all windows from every shard's part (any order); refused as `ingot merge` refuses a bad set.
    public static func merge(parts paths: [String]) throws -> EvalReport {
        let parts = try paths.map { try GGUFPartMerger.Part(GGUFFile(path: $0)) }
        try GGUFPartMerger.checkSet(parts, output: "report")
        let sorted = try GGUFPartMerger.windowsInOrder(parts, output: "report")
        let first = sorted[0].file
        func fail(_ key: String, _ file: GGUFFile) -> FormatError {
            FormatError(.missingField, field: "kv '\(key)'", offset: nil, "an evaluation part needs it", path: file.path)
        }
        var stats = Accumulator()
        var seconds = 0.0, baseSeconds: Double?
        for p in sorted {
            let f = p.file
            guard f["general.type"]?.stringValue == type else {
                throw FormatError(.invalidValue, field: "kv 'general.type'", offset: nil, "not an evaluation part", path: f.path)
            }
            func column(_ name: String) throws -> UnsafeRawBufferPointer {
                guard let t = f.tensor(named: name), t.dimensions.count == 1 else { throw fail(name, f) }
                return f.data(for: t)
            }
            let nll = try column("eval.nll"), nllBase = try column("eval.nll_base"), kld = try column("eval.kld")
            let pDiff = try column("eval.p_diff"), same = try column("eval.same_top")
            let n = same.count
            guard nll.count == 8 * n, nllBase.count == 8 * n, kld.count == 8 * n, pDiff.count == 8 * n else {
                throw FormatError(.sizeMismatch, field: "eval.nll", offset: nil, "the columns hold different numbers of positions", path: f.path)
            }
            func value(_ b: UnsafeRawBufferPointer, _ i: Int) -> Double {
                Double(bitPattern: UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))
            }
            for i in 0..<n {
                stats.add(Position(nll: value(nll, i), nllBase: value(nllBase, i), kld: value(kld, i),
                                   sameTop: same[i] != 0, pDiff: value(pDiff, i)))
            }
            seconds += f["eval.seconds"]?.doubleValue ?? 0
            if let b = f["eval.base_seconds"]?.doubleValue { baseSeconds = (baseSeconds ?? 0) + b }
        }
        guard let model = first["eval.model"]?.stringValue, let context = first["eval.context"]?.intValue,
              let windows = first["eval.windows"]?.intValue else { throw fail("eval.model", first) }
        guard stats.count > 0 else {
            throw FormatError(.invalidValue, field: "eval.nll", offset: nil, "the parts hold no scored position", path: first.path)
        }
        var options = EvalOptions()
        options.context = context
        options.threads = first["eval.threads"]?.intValue ?? 1
        var report = stats.report(modelPath: model, basePath: first["eval.base"]?.stringValue, options: options, chunks: windows,
                                  hasBase: first["eval.has_base"]?.boolValue ?? false, seconds: seconds, baseSeconds: baseSeconds)
        report.kernels = first["eval.kernels"]?.stringValue ?? report.kernels
        return report
    }
}
