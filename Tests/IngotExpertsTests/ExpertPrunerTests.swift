import Foundation
import IngotArchitectures
import IngotExperts
import IngotFormats
import Testing

@Suite("Expert pruning")
struct ExpertPrunerTests {
    static let hidden = 8, width = 2, experts = 4

    /// A one-block llama with 4 experts: every value of expert e's tensors is e (router row e too), so a slice shows
    /// which expert it came from.
    static func model(in dir: String, statedExperts: Int = experts, used: Int = 1) throws -> String {
        let path = dir + "/moe-\(statedExperts)-\(used).gguf"
        let (h, w, e) = (hidden, width, experts)
        let specs: [(String, [Int])] = [("blk.0.ffn_gate_inp.weight", [h, e]), ("blk.0.ffn_up_exps.weight", [h, w, e]),
                                        ("blk.0.ffn_down_exps.weight", [w, h, e]), ("blk.0.exp_probs_b.bias", [e]),
                                        ("blk.0.attn_norm.weight", [h])]
        let meta = [GGUFKeyValue("general.architecture", .string(GGUFString("llama"))),
                    GGUFKeyValue("llama.block_count", .uint32(1)),
                    GGUFKeyValue("llama.expert_count", .uint32(UInt32(statedExperts))),
                    GGUFKeyValue("llama.expert_used_count", .uint32(UInt32(used)))]
        let infos = try specs.map { try GGUFTensorInfo(name: $0.0, dimensions: $0.1, type: .f32) }
        let writer = try GGUFWriter(path: path, metadata: meta, tensors: infos)
        for (name, dims) in specs {
            let n = dims.reduce(1, *), per = name.contains("attn_norm") ? n : n / e
            let values = (0..<n).map { name.contains("attn_norm") ? Float(7) : Float($0 / per) }
            try values.withUnsafeBytes { try writer.write($0) }
        }
        try writer.finish()
        return path
    }

    static func statistics(experts: Int, reap: [Double], tokens: [Double]) -> ImportanceMatrix {
        var m = ImportanceMatrix(entries: ["blk.0.ffn_up_exps.weight": .init(sums: [Float](repeating: 1, count: hidden * experts),
                                                                             counts: [Int64](repeating: 1, count: experts))],
                                 datasets: ["t"], chunkCount: 1, chunkSize: 16)
        var st = ImportanceMatrix.ExpertStatistics(experts: experts)
        st.tokens = tokens
        st.weightedNorm = zip(reap, tokens).map { $0 * $1 }
        st.outputNorm = reap.map { 10 - $0 }
        m.expertStatistics = [0: st]
        return m
    }

    @Test("the best experts by the chosen score are kept, in order; stacks, router rows and bias are sliced to them")
    func keeps() throws {
        let dir = NSTemporaryDirectory() + "ingot-prune-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let g = try GGUFFile(path: try ExpertPrunerTests.model(in: dir))
        let stats = ExpertPrunerTests.statistics(experts: 4, reap: [0.5, 3, 1, 2], tokens: [40, 10, 30, 20])
        let out = dir + "/pruned.gguf"
        let r = try ExpertPruner.prune(g, statistics: stats, keep: .fraction(0.5), score: .reap, to: out)
        #expect(r.kept == [0: [1, 3]] && r.expertsAfter == 2)
        let p = try GGUFFile(path: out)
        #expect(p["llama.expert_count"]?.intValue == 2)
        func values(_ name: String) -> [Float] {
            let t = p.tensor(named: name)!
            return p.data(for: t).withMemoryRebound(to: Float.self) { Array($0) }
        }
        #expect(p.tensor(named: "blk.0.ffn_up_exps.weight")?.dimensions == [8, 2, 2])
        #expect(Set(values("blk.0.ffn_up_exps.weight")) == [1, 3] && values("blk.0.ffn_up_exps.weight").first == 1)
        #expect(values("blk.0.ffn_gate_inp.weight") == [Float](repeating: 1, count: 8) + [Float](repeating: 3, count: 8))
        #expect(values("blk.0.exp_probs_b.bias") == [1, 3])
        #expect(values("blk.0.attn_norm.weight") == [Float](repeating: 7, count: 8))
        // By frequency the most used experts stay; by EAN (10 - reap here) the other end.
        let f = try ExpertPruner.prune(g, statistics: stats, keep: .count(2), score: .frequency, to: out)
        #expect(f.kept == [0: [0, 2]])
        let e = try ExpertPruner.prune(g, statistics: stats, keep: .count(3), score: .ean, to: out)
        #expect(e.kept == [0: [0, 2, 3]])
    }

    @Test("refused: fewer experts than a token uses, statistics of another model, a router of another size")
    func refusals() throws {
        let dir = NSTemporaryDirectory() + "ingot-prune-bad-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let stats = ExpertPrunerTests.statistics(experts: 4, reap: [1, 2, 3, 4], tokens: [1, 1, 1, 1])
        func refused(_ g: GGUFFile, _ s: ImportanceMatrix, _ keep: ExpertKeep, field: String, code: ModelError.Code) {
            let out = dir + "/out.gguf"
            do {
                _ = try ExpertPruner.prune(g, statistics: s, keep: keep, score: .reap, to: out)
                Issue.record("pruning to \(keep) was accepted")
            } catch let e as ModelError {
                #expect(e.field == field && e.code == code, "\(e)")
            } catch {
                Issue.record("\(error)")
            }
            #expect(!FileManager.default.fileExists(atPath: out), "nothing is left at the output path")
        }
        let twoUsed = try GGUFFile(path: try ExpertPrunerTests.model(in: dir, used: 2))
        refused(twoUsed, stats, .count(1), field: "--keep", code: .invalidValue)
        let g = try GGUFFile(path: try ExpertPrunerTests.model(in: dir))
        refused(g, ExpertPrunerTests.statistics(experts: 3, reap: [1, 2, 3], tokens: [1, 1, 1]), .count(2),
                field: "blk.0.expert_stats", code: .shapeMismatch)
        let wrongRouter = try GGUFFile(path: try ExpertPrunerTests.model(in: dir, statedExperts: 3))
        refused(wrongRouter, stats, .count(2), field: "blk.0.ffn_gate_inp.weight", code: .shapeMismatch)
    }
}
