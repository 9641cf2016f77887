#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// llama.cpp's importance matrix: for every linear layer, the sum of the squared inputs each column saw during
/// calibration and the number of tokens that contributed (per expert where a layer has experts). llama-imatrix
/// writes it and llama-quantize `--imatrix` reads it (tools/imatrix/imatrix.cpp, common/imatrix-loader.cpp).
///
/// GGUF layout (`general.type` = `imatrix`):
///  1. metadata `imatrix.datasets` (array of strings: the calibration text files), `imatrix.chunk_count` (u32:
///     windows seen), `imatrix.chunk_size` (u32: tokens per window);
///  2. per weight `W`, in name order: `W.in_sum2`, F32 [columns, matrices] (Σ x² per column, one row per expert)
///     and `W.counts`, F32 [1, matrices] (tokens seen per matrix); a dense layer's (one matrix) are 1-D.
/// Legacy `.dat` layout (little-endian): i32 entry count; per entry i32 name length, the name, i32 ncall,
/// i32 value count, f32 values (the mean of x² times ncall); then optionally i32 chunk count, i32 length and
/// the dataset name.
///
/// The quantizer's weights are the per-matrix means: in_sum2 / count (GGUF), values / ncall (legacy); a
/// matrix that saw no token gets weights of 1, as llama-quantize does for experts calibration never reached.
///
/// Ingot adds its expert statistics to the GGUF form under names llama.cpp's loader passes over (it reads only
/// `.in_sum2` and `.counts`): per mixture-of-experts block N, `blk.N.expert_stats`, F32 [4, experts] (rows: tokens
/// routed to each expert, Σ gate weight, Σ output L2 norm, Σ gate weight × output norm), and where calibration ran
/// every expert on a sample of tokens, `blk.N.expert_outputs`, F32 [hidden, experts]: each expert's mean output over
/// the sample, what expert merging compares experts by.
public struct ImportanceMatrix: Sendable {
    /// How one mixture-of-experts block routed the calibration text, per expert (sums in Double while counting).
    public struct ExpertStatistics: Sendable, Equatable {
        public var tokens: [Double]
        public var gateWeight: [Double]
        public var outputNorm: [Double]
        public var weightedNorm: [Double]
        /// Each expert's mean output over the tokens every expert was run on (`experts` rows of the hidden width,
        /// expert-major); empty where none was recorded.
        public var outputMeans: [Float] = []

        public init(experts: Int) {
            tokens = Array(repeating: 0, count: experts)
            (gateWeight, outputNorm, weightedNorm) = (tokens, tokens, tokens)
        }

        /// The hidden width of `outputMeans` (0 without them).
        public var outputWidth: Int { experts > 0 ? outputMeans.count / experts : 0 }

        public var experts: Int { tokens.count }
        /// Share of the block's routed tokens each expert got.
        public var frequency: [Double] {
            let total = tokens.reduce(0, +)
            return tokens.map { total > 0 ? $0 / total : 0 }
        }
        /// REAP: the mean over an expert's tokens of gate weight × output norm (0 for an expert never chosen).
        public var reap: [Double] { zip(weightedNorm, tokens).map { $1 > 0 ? $0 / $1 : 0 } }
        /// EAN: the expert's summed output norm over its tokens.
        public var ean: [Double] { outputNorm }
        /// Entropy (nats) of the block's token shares; ln(experts) when routing is even.
        public var entropy: Double { -frequency.filter { $0 > 0 }.reduce(0) { $0 + $1 * log($1) } }
    }

    /// Expert statistics by block index (empty for a dense model or a file llama-imatrix wrote).
    public var expertStatistics: [Int: ExpertStatistics] = [:]
    public static let expertStatsSuffix = ".expert_stats"
    public static let expertOutputsSuffix = ".expert_outputs"

    public struct Entry: Sendable, Equatable {
        /// Σ x² per column, `matrices` rows of `columns` (legacy files: the mean times ncall).
        public var sums: [Float]
        /// Tokens seen by each matrix (legacy files: one ncall).
        public var counts: [Int64]
        public init(sums: [Float], counts: [Int64]) {
            self.sums = sums
            self.counts = counts
        }
        public var matrices: Int { counts.count }
        public var columns: Int { counts.isEmpty ? 0 : sums.count / counts.count }
    }

    public var entries: [String: Entry]
    public var datasets: [String]
    public var chunkCount: Int
    public var chunkSize: Int
    /// Read from a legacy `.dat` file.
    public var isLegacy = false
    public var path: String?

    public static let inSum2Suffix = ".in_sum2"
    public static let countsSuffix = ".counts"

    public init(entries: [String: Entry], datasets: [String], chunkCount: Int, chunkSize: Int) {
        self.entries = entries
        self.datasets = datasets
        self.chunkCount = chunkCount
        self.chunkSize = chunkSize
    }

    /// The weights llama-quantize gives `name`'s quantizer (`matrices × columns` floats), or nil when the file has
    /// no entry for it.
    public func importance(for name: String) -> [Float]? {
        guard let e = entries[name] else { return nil }
        let n = e.columns
        var out = [Float](repeating: 1, count: e.sums.count)
        if isLegacy {
            let ncall = e.counts.first ?? 0
            for i in 0..<e.sums.count { out[i] = ncall > 0 ? e.sums[i] / Float(ncall) : e.sums[i] }
            return out
        }
        for m in 0..<e.matrices where e.counts[m] > 0 {
            let count = Float(e.counts[m])
            for j in 0..<n { out[m * n + j] = e.sums[m * n + j] / count }
        }
        return out
    }

    // MARK: Reading

    /// Reads a GGUF importance matrix, or a legacy `.dat` file when the file does not start with `GGUF`.
    public static func read(path: String) throws -> ImportanceMatrix {
        try read(file: MappedFile(path: path))
    }

    /// The same, from a file already mapped (or bytes held in memory).
    public static func read(file: MappedFile) throws -> ImportanceMatrix {
        let path = file.path
        var m: ImportanceMatrix
        if file.count >= 4 && Array(file.bytes[0..<4]) == GGUFFile.magic {
            m = try readGGUF(GGUFFile(file: file))
        } else {
            do { m = try readLegacy(file.bytes) } catch let e as FormatError { throw e.inFile(path) }
        }
        m.path = path
        return m
    }

    static func readGGUF(_ g: GGUFFile) throws -> ImportanceMatrix {
        func fail(_ code: FormatError.Code, _ field: String, _ offset: Int?, _ detail: String) -> FormatError {
            FormatError(code, field: field, offset: offset, detail, path: g.path)
        }
        let typeKV = g.metadata.first { $0.key == "general.type" }
        if let t = typeKV, t.value.stringValue != "imatrix" {
            throw fail(.invalidValue, "general.type", t.fileOffset, "the file is a GGUF '\(t.value)', not an importance matrix (imatrix)")
        }
        // llama-quantize refuses a GGUF importance matrix without these three keys; so does Ingot.
        func required(_ key: String) throws -> GGUFKeyValue {
            guard let kv = g.metadata.first(where: { $0.key == key }) else {
                throw fail(.missingField, key, nil, "an importance matrix names its datasets, chunk count and chunk size; this GGUF has no \(key)")
            }
            return kv
        }
        let datasetsKV = try required("imatrix.datasets")
        guard case .array(.string(let names)) = datasetsKV.value else {
            throw fail(.wrongValueType, "imatrix.datasets", datasetsKV.fileOffset, "expected an array of strings, found \(datasetsKV.value.type)")
        }
        let datasets = names.map(\.string)
        func count(_ key: String) throws -> Int {
            let kv = try required(key)
            guard case .uint32(let v) = kv.value else {
                throw fail(.wrongValueType, key, kv.fileOffset, "expected a UINT32, found \(kv.value.type)")
            }
            return Int(v)
        }
        let chunkCount = try count("imatrix.chunk_count"), chunkSize = try count("imatrix.chunk_size")
        var sums: [String: GGUFTensorInfo] = [:], counts: [String: GGUFTensorInfo] = [:]
        var statistics: [Int: ExpertStatistics] = [:], outputs: [Int: GGUFTensorInfo] = [:]
        for t in g.tensors {
            if t.name.hasSuffix(inSum2Suffix) { sums[String(t.name.dropLast(inSum2Suffix.count))] = t }
            else if t.name.hasSuffix(countsSuffix) { counts[String(t.name.dropLast(countsSuffix.count))] = t }
            else if t.name.hasSuffix(expertStatsSuffix) {
                let parts = t.name.split(separator: ".")
                guard parts.count == 3, parts[0] == "blk", let block = Int(parts[1]), block >= 0, t.type == .f32,
                      t.dimensions.count == 2, t.dimensions[1] == 4, t.dimensions[0] >= 1 else {
                    throw fail(.invalidValue, t.name, t.infoOffset, "expert statistics are blk.N.expert_stats, F32 [4, experts]")
                }
                let v = floats(g, t), e = t.dimensions[0]
                if let bad = v.firstIndex(where: { !$0.isFinite || $0 < 0 }) {
                    throw fail(.invalidValue, t.name, g.dataOffset + t.offset + 4 * bad, "value \(bad) is \(v[bad])")
                }
                var st = ExpertStatistics(experts: e)
                st.tokens = v[0..<e].map(Double.init)
                st.gateWeight = v[e..<(2 * e)].map(Double.init)
                st.outputNorm = v[(2 * e)..<(3 * e)].map(Double.init)
                st.weightedNorm = v[(3 * e)..<(4 * e)].map(Double.init)
                statistics[block] = st
            } else if t.name.hasSuffix(expertOutputsSuffix) {
                let parts = t.name.split(separator: ".")
                guard parts.count == 3, parts[0] == "blk", let block = Int(parts[1]), block >= 0, t.type == .f32,
                      t.dimensions.count == 2, t.dimensions[0] >= 1, t.dimensions[1] >= 1 else {
                    throw fail(.invalidValue, t.name, t.infoOffset, "expert outputs are blk.N.expert_outputs, F32 [hidden, experts]")
                }
                outputs[block] = t
            }
        }
        for (block, t) in outputs {
            guard statistics[block]?.experts == t.dimensions[1] else {
                throw fail(.invalidValue, t.name, t.infoOffset,
                           "\(t.dimensions[1]) experts' outputs beside statistics of \(statistics[block]?.experts ?? 0)")
            }
            let v = floats(g, t)
            if let bad = v.firstIndex(where: { !$0.isFinite }) {
                throw fail(.invalidValue, t.name, g.dataOffset + t.offset + 4 * bad, "value \(bad) is \(v[bad])")
            }
            statistics[block]?.outputMeans = v
        }
        guard !sums.isEmpty || !counts.isEmpty else {
            throw fail(.missingField, "tensors", nil, "the importance matrix has no entries")
        }
        var entries: [String: Entry] = [:]
        for name in Set(sums.keys).union(counts.keys).sorted() {
            guard let s = sums[name], let c = counts[name] else {
                let have = sums[name] ?? counts[name]
                throw fail(.missingField, have?.name ?? name, have?.infoOffset,
                           "\(name) has \(sums[name] == nil ? "counts but no in_sum2" : "in_sum2 but no counts")")
            }
            for t in [s, c] where t.type != .f32 {
                throw fail(.wrongValueType, t.name, t.infoOffset, "importance sums and counts are F32, not \(t.type.name)")
            }
            let sumValues = floats(g, s), countValues = floats(g, c)
            guard !countValues.isEmpty, sumValues.count % countValues.count == 0, sumValues.count > 0 else {
                throw fail(.sizeMismatch, s.name, s.infoOffset,
                           "\(sumValues.count) sums do not divide into \(countValues.count) matrices")
            }
            let base = g.dataOffset + s.offset
            if let bad = sumValues.firstIndex(where: { !$0.isFinite || $0 < 0 }) {
                throw fail(.invalidValue, s.name, base + 4 * bad,
                           "value \(bad) is \(sumValues[bad]): sums of squares are finite and not negative")
            }
            var n: [Int64] = []
            for (i, v) in countValues.enumerated() {
                guard v.isFinite, v >= 0, v < 9.0e18 else {
                    throw fail(.invalidValue, c.name, g.dataOffset + c.offset + 4 * i, "token count \(i) is \(v)")
                }
                n.append(Int64(v.rounded(.toNearestOrAwayFromZero)))
            }
            if n.allSatisfy({ $0 == 0 }) {
                throw fail(.invalidValue, c.name, g.dataOffset + c.offset,
                           "\(name) saw no tokens (every count is 0): its importance is undefined")
            }
            entries[name] = Entry(sums: sumValues, counts: n)
        }
        var m = ImportanceMatrix(entries: entries, datasets: datasets, chunkCount: chunkCount, chunkSize: chunkSize)
        m.expertStatistics = statistics
        return m
    }

    static func floats(_ g: GGUFFile, _ t: GGUFTensorInfo) -> [Float] {
        let b = g.data(for: t)
        return (0..<(b.count / 4)).map { Float(bitPattern: UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
    }

    static func readLegacy(_ bytes: UnsafeRawBufferPointer) throws -> ImportanceMatrix {
        var c = ByteCursor(bytes)
        let n = Int32(bitPattern: try c.readU32("entry count"))
        guard n >= 1 else {
            throw FormatError(.invalidValue, field: "entry count", offset: 0,
                              "\(n) entries: neither a GGUF nor a legacy .dat importance matrix")
        }
        var entries: [String: Entry] = [:]
        for i in 0..<Int(n) {
            let at = c.offset
            let len = Int(Int32(bitPattern: try c.readU32("entry \(i) name length")))
            guard len > 0, len <= 4096 else {
                throw FormatError(.invalidValue, field: "entry \(i) name length", offset: at, "name length \(len) (1 to 4096)")
            }
            let nameBytes = try c.slice(len, "entry \(i) name")
            guard let name = String(validating: Array(nameBytes), as: UTF8.self) else {
                throw FormatError(.invalidUTF8, field: "entry \(i) name", offset: at + 4, "the name is not UTF-8")
            }
            let ncall = Int32(bitPattern: try c.readU32("\(name) ncall"))
            let countAt = c.offset
            let nval = Int(Int32(bitPattern: try c.readU32("\(name) value count")))
            guard nval >= 1 else {
                throw FormatError(.invalidValue, field: "\(name) value count", offset: countAt, "\(nval) values")
            }
            try c.require(4 * nval, "\(name) values")
            let valuesAt = c.offset
            var values = [Float](repeating: 0, count: nval)
            for j in 0..<nval {
                values[j] = Float(bitPattern: try c.readU32("\(name) values"))
                if !values[j].isFinite || values[j] < 0 {
                    throw FormatError(.invalidValue, field: name, offset: valuesAt + 4 * j,
                                      "value \(j) is \(values[j]): mean squares are finite and not negative")
                }
            }
            guard ncall > 0 else {
                throw FormatError(.invalidValue, field: "\(name) ncall", offset: countAt - 4,
                                  "\(name) was computed on \(ncall) chunks: its importance is undefined")
            }
            guard entries[name] == nil else {
                throw FormatError(.duplicateTensor, field: name, offset: at, "the entry appears twice")
            }
            entries[name] = Entry(sums: values, counts: [Int64(ncall)])
        }
        var chunks = 0
        var datasets: [String] = []
        if c.remaining >= 4 {
            chunks = Int(Int32(bitPattern: try c.readU32("chunk count")))
            if c.remaining >= 4 {
                let len = Int(Int32(bitPattern: try c.readU32("dataset length")))
                if len > 0, c.remaining >= len, let s = String(validating: Array(try c.slice(len, "dataset")), as: UTF8.self) {
                    datasets = [s]
                }
            }
        }
        var m = ImportanceMatrix(entries: entries, datasets: datasets, chunkCount: chunks, chunkSize: 0)
        m.isLegacy = true
        return m
    }

    // MARK: Writing

    /// The statistics of several runs over different windows of one text, as one run over all of them would give
    /// them up to the order of floating-point sums: sums and counts added (in the order given), expert statistics
    /// added, mean expert outputs weighted by each part's windows (each window samples the same tokens).
    public static func sum(_ parts: [ImportanceMatrix]) throws -> ImportanceMatrix {
        guard var out = parts.first else { return ImportanceMatrix(entries: [:], datasets: [], chunkCount: 0, chunkSize: 0) }
        func mismatch(_ what: String, _ k: Int) -> FormatError {
            FormatError(.sizeMismatch, field: what, offset: nil, "part \(k + 1) disagrees with the first on \(what)'s shape", path: parts[k].path)
        }
        var means = out.expertStatistics.mapValues { $0.outputMeans.map { Double($0) * Double(parts[0].chunkCount) } }
        for (k, p) in parts.enumerated().dropFirst() {
            for (name, e) in p.entries {
                guard var acc = out.entries[name] else { out.entries[name] = e; continue }
                guard acc.sums.count == e.sums.count, acc.counts.count == e.counts.count else { throw mismatch(name, k) }
                for i in acc.sums.indices { acc.sums[i] += e.sums[i] }
                for i in acc.counts.indices { acc.counts[i] += e.counts[i] }
                out.entries[name] = acc
            }
            for (b, st) in p.expertStatistics {
                let weighted = st.outputMeans.map { Double($0) * Double(p.chunkCount) }
                guard var acc = out.expertStatistics[b] else {
                    out.expertStatistics[b] = st
                    means[b] = weighted
                    continue
                }
                guard acc.experts == st.experts, acc.outputMeans.count == st.outputMeans.count else { throw mismatch("blk.\(b)\(expertStatsSuffix)", k) }
                for i in 0..<acc.experts {
                    acc.tokens[i] += st.tokens[i]; acc.gateWeight[i] += st.gateWeight[i]
                    acc.outputNorm[i] += st.outputNorm[i]; acc.weightedNorm[i] += st.weightedNorm[i]
                }
                out.expertStatistics[b] = acc
                means[b] = zip(means[b] ?? [], weighted).map { $0 + $1 }
            }
            out.chunkCount += p.chunkCount
        }
        for (b, m) in means where !m.isEmpty { out.expertStatistics[b]?.outputMeans = m.map { Float($0 / Double(max(1, out.chunkCount))) } }
        out.path = nil
        return out
    }

    /// Writes the GGUF form, laid out as llama-imatrix writes it (entries in name order, in_sum2 then counts), with
    /// `extraMetadata` after llama-imatrix's keys. Atomic: nothing appears at `path` unless the whole file was written.
    public func write(to path: String, extraMetadata: [GGUFKeyValue] = []) throws {
        let sorted = entries.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        var infos: [GGUFTensorInfo] = []
        for (name, e) in sorted {
            // ggml writes the dimensions up to the last one above 1: a dense layer's entries are 1-D.
            let experts = e.matrices > 1 ? [e.matrices] : []
            infos.append(try GGUFTensorInfo(name: name + Self.inSum2Suffix, dimensions: [e.columns] + experts, type: .f32))
            infos.append(try GGUFTensorInfo(name: name + Self.countsSuffix, dimensions: [1] + experts, type: .f32))
        }
        let blocks = expertStatistics.keys.sorted()
        for b in blocks {
            let st = expertStatistics[b]!
            infos.append(try GGUFTensorInfo(name: "blk.\(b)" + Self.expertStatsSuffix, dimensions: [st.experts, 4], type: .f32))
            if st.outputWidth > 0 {
                infos.append(try GGUFTensorInfo(name: "blk.\(b)" + Self.expertOutputsSuffix, dimensions: [st.outputWidth, st.experts], type: .f32))
            }
        }
        let metadata = [
            GGUFKeyValue("general.type", .string(GGUFString("imatrix"))),
            GGUFKeyValue("imatrix.datasets", .array(.string(datasets.map { GGUFString($0) }))),
            GGUFKeyValue("imatrix.chunk_count", .uint32(UInt32(clamping: chunkCount))),
            GGUFKeyValue("imatrix.chunk_size", .uint32(UInt32(clamping: chunkSize))),
        ] + extraMetadata
        let w = try GGUFWriter(path: path, metadata: metadata, tensors: infos)
        do {
            for (_, e) in sorted {
                try e.sums.map { $0.bitPattern.littleEndian }.withUnsafeBytes { try w.write($0) }
                try e.counts.map { Float($0).bitPattern.littleEndian }.withUnsafeBytes { try w.write($0) }
            }
            for b in blocks {
                let st = expertStatistics[b]!
                let values = st.tokens + st.gateWeight + st.outputNorm + st.weightedNorm
                try values.map { Float($0).bitPattern.littleEndian }.withUnsafeBytes { try w.write($0) }
                if st.outputWidth > 0 { try st.outputMeans.map { $0.bitPattern.littleEndian }.withUnsafeBytes { try w.write($0) } }
            }
            try w.finish()
        } catch {
            w.abort()
            throw error
        }
    }
}
