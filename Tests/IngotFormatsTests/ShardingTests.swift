import Foundation
@testable import IngotFormats
import Testing

/// Shares, `--shard` parsing, and merging parts made by hand the way `ingot quantize --shard` makes them; the
/// quantizer's own parts against one process are checked by tools/check-shards.py.
@Suite("Sharded runs")
struct ShardingTests {
    @Test("--shard: I/N, auto/N from the scheduler's index, auto from Slurm's count; out of range refused")
    func parsing() {
        func parse(_ s: String, _ env: [String: String] = [:]) -> String {
            switch ShardSpec.parse(s, environment: { env[$0] }) {
            case .success(let spec): return spec.description
            case .failure: return "error"
            }
        }
        #expect(parse("0/1") == "0/1" && parse("3/4") == "3/4")
        #expect(parse("4/4") == "error" && parse("-1/4") == "error" && parse("1/0") == "error" && parse("2") == "error"
                && parse("a/b") == "error" && parse("1/2/3") == "error" && parse("0/65537") == "error")
        #expect(parse("auto", ["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "8"]) == "2/8")
        // A task submitted again alone: Slurm counts 1 task; auto/N keeps its index.
        #expect(parse("auto/8", ["SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "1"]) == "5/8")
        #expect(parse("auto", ["SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "1"]) == "error")
        #expect(parse("auto/4", ["JOB_COMPLETION_INDEX": "3"]) == "3/4")
        #expect(parse("auto", ["JOB_COMPLETION_INDEX": "3"]) == "error")
        #expect(parse("auto/4") == "error")
    }

    @Test("shares: balanced by cost, the same every time, every shard used when there are enough items")
    func shares() {
        let costs = [100, 1, 1, 50, 50, 30, 20, 1, 1, 1]
        let owner = ShardSpec.assign(costs: costs, count: 3)
        #expect(owner == ShardSpec.assign(costs: costs, count: 3))
        var load = [0, 0, 0]
        for (i, s) in owner.enumerated() { load[s] += costs[i] }
        #expect(load.max()! - load.min()! <= 50 && Set(owner) == [0, 1, 2])
        #expect(ShardSpec.assign(costs: [5, 5], count: 4) == [0, 1])
    }

    /// A file of `n` F32 tensors, whole and as `count` parts.
    func makeParts(_ dir: String, count: Int, source: String = "src", n: Int = 7) throws -> (whole: String, parts: [String]) {
        let metadata = [GGUFKeyValue("general.architecture", .string("llama")), GGUFKeyValue("x.n", .uint32(UInt32(n)))]
        let infos = try (0..<n).map { try GGUFTensorInfo(name: "t\($0)", dimensions: [($0 + 1) * 3], type: .f32) }
        func data(_ i: Int) -> [Float] { (0..<((i + 1) * 3)).map { Float(i * 100 + $0) } }
        let whole = dir + "/whole.gguf"
        let w = try GGUFWriter(path: whole, metadata: metadata, tensors: infos)
        for i in 0..<n { try data(i).withUnsafeBytes { try w.write($0) } }
        try w.finish()
        let digest = PartFile.digest(plan: try GGUFWriter.layout(path: whole, metadata: metadata, tensors: infos).header, source: source)
        let owner = ShardSpec.assign(costs: infos.map(\.byteCount), count: count)
        var parts: [String] = []
        for s in 0..<count {
            let spec = ShardSpec(index: s, count: count)!
            let mine = (0..<n).filter { owner[$0] == s }
            let path = spec.partPath(for: dir + "/out.gguf")
            let p = try GGUFWriter(path: path, metadata: metadata + PartFile.keys(shard: spec, digest: digest, source: source, positions: mine),
                                   tensors: mine.map { infos[$0] })
            for i in mine { try data(i).withUnsafeBytes { try p.write($0) } }
            try p.finish()
            parts.append(path)
        }
        return (whole, parts)
    }

    @Test("merged parts are the whole file, byte for byte, in any order")
    func merge() throws {
        let dir = try Repo.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (whole, parts) = try makeParts(dir, count: 3)
        let out = dir + "/merged.gguf"
        let report = try GGUFPartMerger.merge(parts: parts.reversed(), output: out)
        #expect(report.parts == 3 && report.tensors == 7)
        #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == Data(contentsOf: URL(fileURLWithPath: whole)))
        #expect(GGUFPartMerger.isComplete(path: parts[1], shard: ShardSpec(index: 1, count: 3)!,
                                          digest: try GGUFFile(path: parts[1])["ingot.shard.plan"]!.stringValue!,
                                          tensors: try GGUFFile(path: parts[1]).tensors.count))
    }

    @Test("importance matrices of shards of the windows sum; mean expert outputs weigh each part by its windows")
    func importanceSum() throws {
        func part(_ v: Float, chunks: Int, mean: Float) -> ImportanceMatrix {
            var m = ImportanceMatrix(entries: ["blk.0.ffn_up.weight": .init(sums: [v, 2 * v], counts: [Int64(chunks * 10)])],
                                     datasets: ["t.txt"], chunkCount: chunks, chunkSize: 16)
            var st = ImportanceMatrix.ExpertStatistics(experts: 2)
            st.tokens = [Double(chunks), 0]
            st.gateWeight = [0.5, 0]
            st.outputMeans = [mean, mean, -mean, -mean]
            m.expertStatistics = [0: st]
            return m
        }
        let sum = try ImportanceMatrix.sum([part(1, chunks: 1, mean: 4), part(3, chunks: 3, mean: 0)])
        #expect(sum.chunkCount == 4 && sum.datasets == ["t.txt"] && sum.chunkSize == 16)
        #expect(sum.entries["blk.0.ffn_up.weight"] == .init(sums: [4, 8], counts: [40]))
        #expect(sum.expertStatistics[0]?.tokens == [4, 0] && sum.expertStatistics[0]?.gateWeight == [1, 0])
        #expect(sum.expertStatistics[0]?.outputMeans == [1, 1, -1, -1])
        var wrong = part(1, chunks: 1, mean: 0)
        wrong.entries["blk.0.ffn_up.weight"]?.sums = [1]
        #expect(throws: FormatError.self) { try ImportanceMatrix.sum([part(1, chunks: 1, mean: 0), wrong]) }
    }

    @Test("folder parts: merged = the folder one writer makes; a small file named outside the folder is refused")
    func folderParts() throws {
        let dir = try Repo.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let declared = (0..<5).map { SafetensorsTensor(name: "w\($0).weight", dtype: $0 == 3 ? .bf16 : .f32, shape: [2, $0 + 1]) }
        func data(_ t: SafetensorsTensor) -> [UInt8] { (0..<(t.dtype.byteCount(elements: t.elementCount) ?? 0)).map { UInt8(($0 * 7 + t.name.count) % 251) } }
        let files = [("config.json", Array("{\"a\": 1}\n".utf8))]
        // One process.
        let whole = dir + "/whole"
        let w = try HFModelDirectoryWriter(path: whole, tensors: declared, maxShardBytes: 40)
        for name in w.dataOrder { try data(declared.first { $0.name == name }!).withUnsafeBytes { try w.write($0) } }
        for (n, c) in files { try c.withUnsafeBytes { try w.addFile(named: n, contents: $0) } }
        try w.finish()
        // Two shards; weights 1 and 2 are stored together.
        var parts: [String] = []
        for s in 0..<2 {
            let p = try FolderPartWriter(shard: ShardSpec(index: s, count: 2)!, source: "src", outputPath: dir + "/out", declared: declared,
                                         groups: ["a", "b", "b", "c", "d"], maxShardBytes: 40, files: files)
            for name in p.selected { try data(declared.first { $0.name == name }!).withUnsafeBytes { try p.write($0) } }
            try p.finish()
            parts.append(p.path)
        }
        _ = try GGUFPartMerger.merge(parts: parts, output: dir + "/out")
        let names = try FileManager.default.contentsOfDirectory(atPath: whole).sorted()
        #expect(names == (try FileManager.default.contentsOfDirectory(atPath: dir + "/out").sorted()) && names.count > 2)
        for n in names {
            #expect(try Data(contentsOf: URL(fileURLWithPath: whole + "/" + n)) == Data(contentsOf: URL(fileURLWithPath: dir + "/out/" + n)), "\(n)")
        }
        // Shard 0's part rewritten with its small file named "../evil".
        let part0 = try GGUFFile(path: parts[0])
        let evil = dir + "/evil.part0-of-2"
        let metadata = part0.metadata.map { $0.key == "ingot.folder.files" ? GGUFKeyValue($0.key, .array(.string(["../evil"]))) : GGUFKeyValue($0.key, $0.value) }
        let rw = try GGUFWriter(path: evil, metadata: metadata, tensors: part0.tensors)
        for t in part0.tensors { try rw.write(part0.data(for: t)) }
        try rw.finish()
        // Long names (a vision model's, DeepSeek's scales) are the folder's, not the part's.
        let long = [SafetensorsTensor(name: "model.language_model.layers.61.mlp.shared_experts.gate_proj.weight_scale_inv", dtype: .f32, shape: [2])]
        let p = try FolderPartWriter(shard: ShardSpec(index: 0, count: 1)!, source: "s", outputPath: dir + "/long", declared: long,
                                     groups: ["g"], maxShardBytes: 40, files: [])
        try [Float(1), 2].withUnsafeBytes { try p.write($0) }
        try p.finish()
        _ = try GGUFPartMerger.merge(parts: [p.path], output: dir + "/long")
        #expect(try SafetensorsFile(path: dir + "/long/model.safetensors").tensors.map(\.name) == [long[0].name])
        #expect(throws: FormatError.self) { try GGUFPartMerger.merge(parts: [evil, parts[1]], output: dir + "/out2") }
        #expect(!FileManager.default.fileExists(atPath: dir + "/evil") && !FileManager.default.fileExists(atPath: dir + "/out2"))
    }

    @Test("a missing shard, a shard twice, parts of another input, a file that is not a part: refused, nothing written")
    func refusals() throws {
        let dir = try Repo.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (whole, parts) = try makeParts(dir, count: 3)
        let otherDir = dir + "/other"
        try FileManager.default.createDirectory(atPath: otherDir, withIntermediateDirectories: true)
        let (_, others) = try makeParts(otherDir, count: 3, source: "another")
        let out = dir + "/merged.gguf"
        func code(_ p: [String]) -> String? {
            do { _ = try GGUFPartMerger.merge(parts: p, output: out); return nil } catch let e as FormatError { return e.code.rawValue } catch { return "?" }
        }
        #expect(code(Array(parts.prefix(2))) == "missing-shard")
        #expect(code(parts + [parts[0]]) == "invalid-value")
        #expect(code([parts[0], parts[1], others[2]]) == "invalid-value")
        #expect(code([parts[0], parts[1], whole]) == "missing-field")
        #expect(code([]) == "missing-shard")
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
