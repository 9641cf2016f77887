import Foundation
import IngotFormats
@testable import IngotModel
import Testing

private let root: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0 ..< 3 { url.deleteLastPathComponent() }
    return url.path
}()

@Suite("ModelSpec and Inventory")
struct ModelSpecTests {
    @Test("SmolLM2's GGUF keys give its architecture")
    func smolLM2() throws {
        let path = root + "/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
        if !FileManager.default.fileExists(atPath: path) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/bash")
            p.arguments = [root + "/tools/fetch-fixtures.sh"]
            try p.run()
            p.waitUntilExit()
        }
        let model = try ModelFile.open(path)
        let spec = ModelSpec(model: model)
        // Values from SmolLM2-135M's config.json: 30 layers, hidden 576, 9 heads, 3 KV heads.
        #expect(spec.architecture == "llama")
        #expect(spec.layerCount == 30)
        #expect(spec.hiddenSize == 576)
        #expect(spec.feedForwardSize == 1536)
        #expect(spec.headCount == 9)
        #expect(spec.kvHeadCount == 3)
        #expect(spec.headDimension == 64)
        #expect(spec.contextLength == 8192)
        #expect(spec.vocabSize == 49152)
        #expect(spec.ropeFreqBase == 100000)
        #expect(spec.tokenizer == "gpt2")
        #expect(spec.tiedEmbeddings == true)

        let inv = Inventory(model.tensors)
        #expect(inv.tensorCount == 272)
        #expect(inv.parameters == 134_515_008)
        #expect(inv.byType.map(\.typeName) == ["Q4_1", "Q8_0", "F32"])
        #expect(inv.byType.map(\.tensorCount) == [210, 1, 61])
        #expect(inv.byType.first { $0.typeName == "Q4_1" }?.bitsPerWeight == 5.0)
        #expect(inv.byType.first { $0.typeName == "Q8_0" }?.bitsPerWeight == 8.5)
    }

    @Test("config.json gives the same vocabulary")
    func config() throws {
        let model = try ModelFile.open(root + "/fixtures/safetensors/sharded")
        let spec = ModelSpec(model: model)
        #expect(spec.architecture == "llama")
        #expect(spec.layerCount == 1)
        #expect(spec.hiddenSize == 8)
        #expect(spec.feedForwardSize == 12)
        #expect(spec.headCount == 2)
        #expect(spec.kvHeadCount == 1)
        #expect(spec.headDimension == 4)
        #expect(spec.rmsNormEpsilon == 1e-5)
        #expect(spec.ropeFreqBase == 10000)
        #expect(spec.tiedEmbeddings == false)
        let inv = Inventory(model.tensors)
        #expect(inv.parameters == 16 * 8 + 8 * 8 + 12 * 8 + 8 + 16 * 8)
        #expect(inv.bytes == (16 * 8 + 12 * 8 + 16 * 8) * 2 + (8 * 8 + 8) * 4)
    }
}
