import Foundation
import IngotArchitectures
@testable import IngotExperts
import IngotFormats
import Testing

@Suite("Expert pruning")
struct ExpertPrunerTests {
    static let hidden = 8, width = 2, experts = 4

    /// A one-block llama with 4 experts: every value of expert e's tensors is e (router row e too), so a slice shows
    /// which expert it came from.
    static func model(in dir: String, statedExperts: Int = experts, used: Int = 1, groups: Int? = nil) throws -> String {
        let path = dir + "/moe-\(statedExperts)-\(used)-\(groups ?? 0).gguf"
        let (h, w, e) = (hidden, width, experts)
        let specs: [(String, [Int])] = [("blk.0.ffn_gate_inp.weight", [h, e]), ("blk.0.ffn_up_exps.weight", [h, w, e]),
                                        ("blk.0.ffn_down_exps.weight", [w, h, e]), ("blk.0.exp_probs_b.bias", [e]),
                                        ("blk.0.attn_norm.weight", [h])]
        let meta = [GGUFKeyValue("general.architecture", .string(GGUFString("llama"))),
                    GGUFKeyValue("llama.block_count", .uint32(1)),
                    GGUFKeyValue("llama.expert_count", .uint32(UInt32(statedExperts))),
                    GGUFKeyValue("llama.expert_used_count", .uint32(UInt32(used)))]
            + (groups.map { [GGUFKeyValue("llama.expert_group_count", .uint32(UInt32($0)))] } ?? [])
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
        #expect(r.kept == [0: [1, 3]] && r.expertsAfter == 2 && r.experts[0] == [.kept(1), .kept(3)])
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
        refused(g, ExpertPrunerTests.statistics(experts: 4, reap: [1, 2, 3, 4], tokens: [1, 1, 1, 1]), .count(5),
                field: "--keep", code: .invalidValue)
        let wrongRouter = try GGUFFile(path: try ExpertPrunerTests.model(in: dir, statedExperts: 3))
        refused(wrongRouter, stats, .count(2), field: "blk.0.ffn_gate_inp.weight", code: .shapeMismatch)
        // Routing groups that do not divide the experts; groups of 2 cannot keep 1 each (a group scores its best two).
        refused(try GGUFFile(path: try ExpertPrunerTests.model(in: dir, groups: 3)), stats, .count(2),
                field: "llama.expert_group_count", code: .invalidValue)
        refused(try GGUFFile(path: try ExpertPrunerTests.model(in: dir, groups: 2)), stats, .count(2), field: "--keep", code: .invalidValue)
    }

    @Test("average linkage joins the closest groups first, by the mean of their pairwise distances")
    func linkage() {
        // On a line: 0, 0.1 and 5, 5.2 pair first; then {0, 0.1} and {5, 5.2} are 5.05 apart on average, nearer
        // than {5, 5.2} and 10 (4.9 mean): the latter join at 2 clusters.
        let points: [[Float]] = [[0], [5], [10], [0.1], [5.2]]
        #expect(ExpertMerger.averageLinkage(points, into: 5) == [[0], [1], [2], [3], [4]])
        #expect(ExpertMerger.averageLinkage(points, into: 3) == [[0, 3], [1, 4], [2]])
        #expect(ExpertMerger.averageLinkage(points, into: 2) == [[0, 3], [1, 2, 4]])
        #expect(ExpertMerger.averageLinkage(points, into: 1) == [[0, 1, 2, 3, 4]])
        // {0, 1} is 1.7 from 2.2 on average and 2.2 is 1.4 from 3.6: those pair. (Single linkage, the nearest
        // members, would chain 2.2 onto {0, 1} at 1.2.)
        let chain: [[Float]] = [[0], [1], [2.2], [3.6]]
        #expect(ExpertMerger.averageLinkage(chain, into: 2) == [[0, 1], [2, 3]])
    }

    @Test("merging averages each group's experts by their token counts and routes by the most used member")
    func merges() throws {
        let dir = NSTemporaryDirectory() + "ingot-merge-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let g = try GGUFFile(path: try ExpertPrunerTests.model(in: dir))
        var stats = ExpertPrunerTests.statistics(experts: 4, reap: [1, 1, 1, 1], tokens: [30, 10, 20, 20])
        // Experts 0 and 1 answer alike, and so do 2 and 3.
        let outputs: [[Float]] = [[1, 0, 0, 0, 0, 0, 0, 0], [1.1, 0, 0, 0, 0, 0, 0, 0], [0, 3, 0, 0, 0, 0, 0, 0], [0, 3.2, 0, 0, 0, 0, 0, 0]]
        stats.expertStatistics[0]!.outputMeans = outputs.flatMap { $0 }
        let out = dir + "/merged.gguf"
        let r = try ExpertMerger.merge(g, statistics: stats, to: .count(2), to: out)
        #expect(r.experts[0] == [NewExpert(members: [0, 1], weights: [0.75, 0.25], router: 0),
                                 NewExpert(members: [2, 3], weights: [0.5, 0.5], router: 2)])
        let m = try GGUFFile(path: out)
        func values(_ name: String) -> [Float] { m.data(for: m.tensor(named: name)!).withMemoryRebound(to: Float.self) { Array($0) } }
        #expect(m["llama.expert_count"]?.intValue == 2 && m.tensor(named: "blk.0.ffn_up_exps.weight")?.type == .f32)
        // Expert e's values are e: (30·0 + 10·1) / 40 and (20·2 + 20·3) / 40.
        #expect(values("blk.0.ffn_up_exps.weight") == [Float](repeating: 0.25, count: 16) + [Float](repeating: 2.5, count: 16))
        #expect(values("blk.0.ffn_down_exps.weight") == [Float](repeating: 0.25, count: 16) + [Float](repeating: 2.5, count: 16))
        #expect(values("blk.0.ffn_gate_inp.weight") == [Float](repeating: 0, count: 8) + [Float](repeating: 2, count: 8))
        #expect(values("blk.0.exp_probs_b.bias") == [0, 2])
        #expect(values("blk.0.attn_norm.weight") == [Float](repeating: 7, count: 8))
        // Merging to as many experts as there are copies the model's tensors.
        let same = try ExpertMerger.merge(g, statistics: stats, to: .count(4), to: out)
        #expect(same.experts[0] == (0..<4).map(NewExpert.kept) && same.bytesAfter == same.bytesBefore)

        // Refused: statistics without expert outputs, a count below the experts a token uses.
        func refused(_ g: GGUFFile, _ s: ImportanceMatrix, _ to: ExpertKeep, field: String, code: ModelError.Code) {
            let bad = dir + "/bad.gguf"
            do {
                _ = try ExpertMerger.merge(g, statistics: s, to: to, to: bad)
                Issue.record("merging to \(to) was accepted")
            } catch let e as ModelError {
                #expect(e.field == field && e.code == code, "\(e)")
            } catch {
                Issue.record("\(error)")
            }
            #expect(!FileManager.default.fileExists(atPath: bad), "nothing is left at the output path")
        }
        refused(g, ExpertPrunerTests.statistics(experts: 4, reap: [1, 1, 1, 1], tokens: [1, 1, 1, 1]), .count(2),
                field: "blk.0.expert_outputs", code: .missingField)
        refused(try GGUFFile(path: try ExpertPrunerTests.model(in: dir, used: 2)), stats, .count(1), field: "--to", code: .invalidValue)
        var narrow = stats
        narrow.expertStatistics[0]!.outputMeans = Array(repeating: 0, count: 4 * 3)
        refused(g, narrow, .count(2), field: "blk.0.expert_outputs", code: .shapeMismatch)
    }
}
