import IngotFormats
import IngotModel
import Testing

@Suite("SentencePiece model files")
struct SentencePieceTests {
    /// A model as the protobuf library writes one: pieces (piece 1, score 2, type 3), a trainer spec (model_type 3 = BPE,
    /// byte_fallback 35, unk/bos/eos/pad ids 40-43 with pad -1) and a normalizer spec (name 1, add_dummy_prefix 3),
    /// plus a field number Ingot does not know (self_test_data, 4), which is skipped.
    static let handWritten: [UInt8] = {
        var out: [UInt8] = []
        func piece(_ s: String, _ score: Float, _ type: UInt8) {
            var p: [UInt8] = [0x0a, UInt8(s.utf8.count)] + Array(s.utf8)
            p += [0x15] + withUnsafeBytes(of: score.bitPattern.littleEndian) { Array($0) }
            p += [0x18, type]
            out += [0x0a, UInt8(p.count)] + p
        }
        piece("<unk>", 0, 2)
        piece("<s>", 0, 3)
        piece("\u{2581}the", -1.5, 1)
        piece("<0x41>", 0, 6)
        let trainer: [UInt8] = [0x18, 0x02, 0x98, 0x02, 0x01, 0xc0, 0x02, 0x00, 0xc8, 0x02, 0x01, 0xd0, 0x02, 0x02,
                                0xd8, 0x02] + [UInt8](repeating: 0xff, count: 9) + [0x01]
        out += [0x12, UInt8(trainer.count)] + trainer
        let normalizer: [UInt8] = [0x0a, 0x08] + Array("identity".utf8) + [0x18, 0x00]
        out += [0x1a, UInt8(normalizer.count)] + normalizer
        out += [0x22, 0x02, 0x08, 0x01]
        return out
    }()

    @Test("reads pieces, trainer and normalizer settings; writes bytes that read back the same")
    func roundTrip() throws {
        let m = try SentencePieceModel(bytes: SentencePieceTests.handWritten, path: "t")
        #expect(m.pieces.map(\.piece) == ["<unk>", "<s>", "\u{2581}the", "<0x41>"])
        #expect(m.pieces.map(\.type) == [2, 3, 1, 6])
        #expect(m.pieces[2].score == -1.5)
        #expect(m.modelType == 2 && m.byteFallback && m.unkID == 0 && m.bosID == 1 && m.eosID == 2 && m.padID == -1)
        #expect(m.normalizerName == "identity" && !m.addDummyPrefix)
        let again = try SentencePieceModel(bytes: m.serialized, path: "t")
        #expect(again == m)
    }

    @Test("truncated or malformed files are typed errors with an offset, never a trap")
    func malformed() throws {
        let good = SentencePieceTests.handWritten
        for cut in 1..<good.count {
            do {
                _ = try SentencePieceModel(bytes: Array(good[..<cut]), path: "t")
            } catch let e as ModelError {
                #expect(e.offset != nil && e.offset! < cut)
            }
        }
        // Every single-byte corruption either parses or fails with a typed error.
        for i in good.indices {
            var bad = good
            bad[i] ^= 0xa5
            do { _ = try SentencePieceModel(bytes: bad, path: "t") } catch is ModelError {}
        }
        #expect(throws: ModelError.self) { try SentencePieceModel(bytes: [], path: "t") }
        #expect(throws: ModelError.self) { try SentencePieceModel(bytes: [0x0a, 0x7f, 0x00], path: "t") }
        #expect(throws: ModelError.self) { try SentencePieceModel(bytes: [0x0f], path: "t") }
    }
}
