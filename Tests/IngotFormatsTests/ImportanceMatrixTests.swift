import Foundation
import IngotFormats
import Testing

@Suite("Importance matrices (llama.cpp's imatrix files)")
struct ImportanceMatrixTests {
    @Test("GGUF written and read back; weights are sums over counts per matrix, 1 where a matrix saw nothing")
    func roundTrip() throws {
        let dir = try Repo.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let m = ImportanceMatrix(entries: [
            "blk.0.attn_q.weight": .init(sums: [2, 4, 6], counts: [2]),
            "blk.0.ffn_down_exps.weight": .init(sums: [3, 6, 9, 1, 1, 1], counts: [3, 0]),
        ], datasets: ["macbeth.txt"], chunkCount: 4, chunkSize: 512)
        let path = dir + "/m.gguf"
        try m.write(to: path)
        let back = try ImportanceMatrix.read(path: path)
        #expect(back.entries == m.entries && back.datasets == ["macbeth.txt"] && back.chunkCount == 4 && back.chunkSize == 512)
        #expect(back.importance(for: "blk.0.attn_q.weight") == [1, 2, 3])
        #expect(back.importance(for: "blk.0.ffn_down_exps.weight") == [1, 2, 3, 1, 1, 1])
        #expect(back.importance(for: "output.weight") == nil)
        // Laid out as llama-imatrix writes: a dense entry 1-D, an expert entry [columns, experts].
        let g = try GGUFFile(path: path)
        #expect(g.tensors.map(\.name) == ["blk.0.attn_q.weight.in_sum2", "blk.0.attn_q.weight.counts",
                                          "blk.0.ffn_down_exps.weight.in_sum2", "blk.0.ffn_down_exps.weight.counts"])
        #expect(g.tensors.map(\.dimensions) == [[3], [1], [3, 2], [1, 2]])
        #expect(g["general.type"]?.stringValue == "imatrix")
    }

    @Test("expert statistics ride along as blk.N.expert_stats; REAP, frequency, EAN and entropy follow from them")
    func expertStatistics() throws {
        let dir = try Repo.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var m = ImportanceMatrix(entries: ["blk.1.ffn_up_exps.weight": .init(sums: [1, 1, 1, 1], counts: [3, 1])],
                                 datasets: ["t"], chunkCount: 1, chunkSize: 16)
        var st = ImportanceMatrix.ExpertStatistics(experts: 2)
        st.tokens = [3, 1]
        st.gateWeight = [1.5, 0.25]
        st.outputNorm = [6, 4]
        st.weightedNorm = [3, 1]
        m.expertStatistics = [1: st]
        let path = dir + "/s.gguf"
        try m.write(to: path)
        let back = try ImportanceMatrix.read(path: path)
        #expect(back.expertStatistics == [1: st] && back.entries == m.entries)
        #expect(st.frequency == [0.75, 0.25] && st.reap == [1, 1] && st.ean == [6, 4])
        #expect(abs(st.entropy - (-(0.75 * log(0.75) + 0.25 * log(0.25)))) < 1e-12)
        // llama.cpp's loader reads only .in_sum2 and .counts; the statistics come after them.
        #expect(try GGUFFile(path: path).tensors.map(\.name).last == "blk.1.expert_stats")
        // A negative token count is refused with the tensor's name and the value's offset.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let g = try GGUFFile(path: path)
        let t = g.tensors.last!
        bytes.replaceSubrange((g.dataOffset + t.offset)..<(g.dataOffset + t.offset + 4), with: withUnsafeBytes(of: Float(-1).bitPattern.littleEndian) { Data($0) })
        try bytes.write(to: URL(fileURLWithPath: dir + "/bad.gguf"))
        do {
            _ = try ImportanceMatrix.read(path: dir + "/bad.gguf")
            Issue.record("a negative token count was accepted")
        } catch let e as FormatError {
            #expect(e.field == "blk.1.expert_stats" && e.offset == g.dataOffset + t.offset)
        }

        // Mean expert outputs (what merging groups by) follow as blk.N.expert_outputs, F32 [hidden, experts].
        st.outputMeans = [1, 2, 3, -4, 5, 6]
        m.expertStatistics = [1: st]
        try m.write(to: path)
        let withOutputs = try GGUFFile(path: path)
        #expect(withOutputs.tensors.suffix(2).map(\.name) == ["blk.1.expert_stats", "blk.1.expert_outputs"])
        #expect(withOutputs.tensors.last?.dimensions == [3, 2])
        #expect(try ImportanceMatrix.read(path: path).expertStatistics == [1: st] && st.outputWidth == 3)
        // A NaN among them is refused with the tensor and the offset.
        var nan = try Data(contentsOf: URL(fileURLWithPath: path))
        let o = withOutputs.tensors.last!, at = withOutputs.dataOffset + o.offset + 8
        nan.replaceSubrange(at..<(at + 4), with: withUnsafeBytes(of: Float.nan.bitPattern.littleEndian) { Data($0) })
        try nan.write(to: URL(fileURLWithPath: dir + "/nan.gguf"))
        do {
            _ = try ImportanceMatrix.read(path: dir + "/nan.gguf")
            Issue.record("a NaN expert output was accepted")
        } catch let e as FormatError {
            #expect(e.field == "blk.1.expert_outputs" && e.offset == at)
        }
    }

    static func legacy(_ entries: [(String, Int32, [Float])], trailer: Bool) -> [UInt8] {
        var b: [UInt8] = []
        func i32(_ v: Int32) { withUnsafeBytes(of: v.littleEndian) { b += $0 } }
        i32(Int32(entries.count))
        for (name, ncall, values) in entries {
            i32(Int32(name.utf8.count)); b += Array(name.utf8); i32(ncall); i32(Int32(values.count))
            for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { b += $0 } }
        }
        if trailer { i32(10); i32(3); b += Array("abc".utf8) }
        return b
    }

    @Test("legacy .dat: values are means times ncall; the trailer gives the chunk count and dataset")
    func legacyDat() throws {
        let dir = try Repo.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/m.dat"
        try Data(Self.legacy([("blk.0.attn_q.weight", 4, [8, 4, 2])], trailer: true)).write(to: URL(fileURLWithPath: path))
        let m = try ImportanceMatrix.read(path: path)
        #expect(m.isLegacy && m.chunkCount == 10 && m.datasets == ["abc"])
        #expect(m.importance(for: "blk.0.attn_q.weight") == [2, 1, 0.5])
        try Data(Self.legacy([("x", 4, [1])], trailer: false)).write(to: URL(fileURLWithPath: path))
        #expect(try ImportanceMatrix.read(path: path).chunkCount == 0)
    }

    @Test("bad files are typed errors naming the entry and the byte offset")
    func badFiles() throws {
        let dir = try Repo.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/m.dat"
        func refused(_ bytes: [UInt8]) -> FormatError? {
            try? Data(bytes).write(to: URL(fileURLWithPath: path))
            do { _ = try ImportanceMatrix.read(path: path); return nil } catch let e as FormatError { return e } catch { return nil }
        }
        // A NaN at value 1 of the only entry: 4 + 4 + 1 + 4 + 4 + 4 = byte 21.
        let nan = refused(Self.legacy([("a", 1, [1, .nan])], trailer: false))
        #expect(nan?.code == .invalidValue && nan?.field == "a" && nan?.offset == 21)
        #expect(refused(Self.legacy([("a", 0, [1])], trailer: false))?.code == .invalidValue)
        #expect(refused(Array(Self.legacy([("a", 1, [1, 2])], trailer: false).dropLast(2)))?.code == .truncated)
        #expect(refused([0, 0, 0, 0])?.code == .invalidValue)
        // A GGUF whose entry saw no tokens, and one that is a model, not an importance matrix.
        let g = dir + "/z.gguf"
        try ImportanceMatrix(entries: ["a": .init(sums: [1], counts: [0])], datasets: [], chunkCount: 1, chunkSize: 8).write(to: g)
        #expect(throws: FormatError.self) { try ImportanceMatrix.read(path: g) }
        let model = try GGUFWriter(path: dir + "/model.gguf", metadata: [GGUFKeyValue("general.type", .string("model"))], tensors: [])
        try model.finish()
        #expect { try ImportanceMatrix.read(path: dir + "/model.gguf") } throws: { ($0 as? FormatError)?.field == "general.type" }
    }
}
