import Foundation
import IngotFormats
import IngotNumerics
@testable import IngotQuantize
import Testing

/// A llama-shaped model's tensor list (GGUF dims, ne[0] first) with 256-multiple widths.
func llamaTensors(layers: Int, hidden: Int = 512, ffn: Int = 1536, kv: Int = 128, vocab: Int = 1024,
                  tiedOutput: Bool = false, type: GGMLType = .f16) throws -> [GGUFTensorInfo] {
    var t: [GGUFTensorInfo] = [try GGUFTensorInfo(name: "token_embd.weight", dimensions: [hidden, vocab], type: type),
                               try GGUFTensorInfo(name: "output_norm.weight", dimensions: [hidden], type: .f32)]
    if !tiedOutput { t.append(try GGUFTensorInfo(name: "output.weight", dimensions: [hidden, vocab], type: type)) }
    for i in 0..<layers {
        for (n, d) in [("attn_q", [hidden, hidden]), ("attn_k", [hidden, kv]), ("attn_v", [hidden, kv]),
                       ("attn_output", [hidden, hidden]), ("ffn_gate", [hidden, ffn]), ("ffn_up", [hidden, ffn]),
                       ("ffn_down", [ffn, hidden])] {
            t.append(try GGUFTensorInfo(name: "blk.\(i).\(n).weight", dimensions: d, type: type))
        }
        t.append(try GGUFTensorInfo(name: "blk.\(i).attn_norm.weight", dimensions: [hidden], type: .f32))
        t.append(try GGUFTensorInfo(name: "blk.\(i).ffn_norm.weight", dimensions: [hidden], type: .f32))
    }
    return t
}

func llamaMetadata(layers: Int, heads: Int = 8, kvHeads: Int = 2) -> [GGUFKeyValue] {
    [GGUFKeyValue("general.architecture", .string("llama")), GGUFKeyValue("general.file_type", .uint32(1)),
     GGUFKeyValue("split.count", .uint16(1)), GGUFKeyValue("llama.block_count", .uint32(UInt32(layers))),
     GGUFKeyValue("llama.attention.head_count", .uint32(UInt32(heads))),
     GGUFKeyValue("llama.attention.head_count_kv", .uint32(UInt32(kvHeads)))]
}

func plan(_ preset: String, layers: Int = 16, tied: Bool = false, heads: Int = 8, kvHeads: Int = 2,
          _ configure: (inout QuantOptions) -> Void = { _ in }) throws -> QuantPlan {
    var o = QuantOptions(preset: QuantPreset.named(preset)!)
    configure(&o)
    return try QuantPlanner.plan(metadata: llamaMetadata(layers: layers, heads: heads, kvHeads: kvHeads),
                                 tensors: try llamaTensors(layers: layers, tiedOutput: tied), options: o)
}

extension QuantPlan {
    func type(_ name: String) -> String? { tensors.first { $0.name == name }?.targetType.name }
}

@Suite struct PlannerRules {
    @Test func q4KMGivesMoreBitsWhereLlamaQuantizeDoes() throws {
        let p = try plan("Q4_K_M", layers: 16)
        // use_more_bits(i, 16): i < 2, i >= 14, or (i - 2) % 3 == 2.
        let more: Set<Int> = [0, 1, 4, 7, 10, 13, 14, 15]
        for i in 0..<16 {
            #expect(p.type("blk.\(i).ffn_down.weight") == (more.contains(i) ? "Q6_K" : "Q4_K"), "ffn_down \(i)")
            // attn_v: gqa 4 makes no difference for Q4_K_M; the same use_more_bits over the attn_v count.
            #expect(p.type("blk.\(i).attn_v.weight") == (more.contains(i) ? "Q6_K" : "Q4_K"), "attn_v \(i)")
            #expect(p.type("blk.\(i).attn_q.weight") == "Q4_K")
            #expect(p.type("blk.\(i).attn_norm.weight") == "F32")
        }
        #expect(p.type("output.weight") == "Q6_K")
        #expect(p.type("token_embd.weight") == "Q4_K")  // untied: the embedding keeps the default
        #expect(p.fallbackCount == 0)
    }

    @Test func tiedEmbeddingTakesTheOutputRule() throws {
        #expect(try plan("Q4_K_M", tied: true).type("token_embd.weight") == "Q6_K")
        #expect(try plan("Q8_0", tied: true).type("token_embd.weight") == "Q8_0")
        #expect(try plan("Q4_0", tied: true).type("token_embd.weight") == "Q6_K")
    }

    @Test func gqaAndPresetSpecificRules() throws {
        let q2 = try plan("Q2_K")  // gqa 4
        #expect(q2.type("blk.3.attn_v.weight") == "Q4_K")
        #expect(q2.type("blk.3.ffn_down.weight") == "Q3_K")
        #expect(q2.type("blk.3.attn_output.weight") == "Q3_K")
        #expect(q2.type("blk.3.attn_q.weight") == "Q2_K")
        let q2gqa1 = try plan("Q2_K", heads: 8, kvHeads: 8)
        #expect(q2gqa1.type("blk.3.attn_v.weight") == "Q3_K")
        let q3m = try plan("Q3_K_M")
        #expect(q3m.type("blk.0.attn_v.weight") == "Q5_K" && q3m.type("blk.1.attn_v.weight") == "Q5_K")
        #expect(q3m.type("blk.2.attn_v.weight") == "Q4_K")
        #expect(q3m.type("blk.0.ffn_down.weight") == "Q5_K" && q3m.type("blk.5.ffn_down.weight") == "Q4_K")
        let q4s = try plan("Q4_K_S")
        #expect((0..<4).allSatisfy { q4s.type("blk.\($0).attn_v.weight") == "Q5_K" })
        #expect(q4s.type("blk.4.attn_v.weight") == "Q4_K")
        #expect(q4s.type("blk.1.ffn_down.weight") == "Q5_K" && q4s.type("blk.2.ffn_down.weight") == "Q4_K")
        let nl = try plan("IQ4_NL")
        #expect(nl.type("blk.0.attn_v.weight") == "Q5_K" && nl.type("blk.0.ffn_down.weight") == "Q5_K")
        #expect(nl.type("blk.9.ffn_down.weight") == "IQ4_NL")
        #expect(try plan("MXFP4").type("blk.3.ffn_up.weight") == "Q8_0")  // dense: MXFP4 goes to experts only
    }

    @Test func fallbacksForRowsABlockCannotHold() throws {
        let meta = llamaMetadata(layers: 1)
        let tensors = [try GGUFTensorInfo(name: "blk.0.ffn_up.weight", dimensions: [576, 64], type: .f16),
                       try GGUFTensorInfo(name: "blk.0.ffn_gate.weight", dimensions: [100, 64], type: .f16),
                       try GGUFTensorInfo(name: "blk.0.attn_q.weight", dimensions: [576, 64], type: .f16)]
        let p = try QuantPlanner.plan(metadata: meta, tensors: tensors, options: QuantOptions(preset: .named("Q6_K")!))
        #expect(p.type("blk.0.ffn_up.weight") == "Q8_0")
        #expect(p.type("blk.0.ffn_gate.weight") == "F16")  // not even a multiple of 32
        let k = try QuantPlanner.plan(metadata: meta, tensors: tensors, options: QuantOptions(preset: .named("Q4_K_S")!))
        #expect(k.type("blk.0.attn_q.weight") == "Q5_0")
        #expect(k.fallbackCount == 3 && k.warnings.contains { $0.contains("fall back") })
    }

    @Test func overridesKeepPureAndOrder() throws {
        let p = try plan("Q4_K_M") { o in
            o.tensorTypes = [("ffn_down", .q8_0), ("ffn", .q5_0)]
            o.keep = ["attn_k"]
            o.outputTensorType = .q4_0
        }
        #expect(p.type("blk.0.ffn_down.weight") == "Q8_0")
        #expect(p.type("blk.0.ffn_up.weight") == "Q5_0")
        #expect(p.type("blk.0.attn_k.weight") == "F16")
        #expect(p.type("output.weight") == "Q4_0")
        let pure = try plan("Q4_K_M") { $0.pure = true }
        #expect(pure.tensors.filter { $0.dimensions.count == 2 }.allSatisfy { $0.targetType == .q4_K })
        // Output order: non-layer tensors first, then by layer number (10 after 9), then by name.
        let names = pure.tensors.map(\.name)
        #expect(names.prefix(3) == ["output.weight", "output_norm.weight", "token_embd.weight"])
        #expect(names.firstIndex(of: "blk.9.attn_k.weight")! < names.firstIndex(of: "blk.10.attn_k.weight")!)
        // Metadata: split keys dropped, quantization version and file type moved to the end.
        #expect(pure.metadata.suffix(2).map(\.key) == ["general.quantization_version", "general.file_type"])
        #expect(pure.metadata.last?.value == .uint32(15))
        #expect(!pure.metadata.contains { $0.key == "split.count" })
    }

    @Test func badRequestsAreTypedErrors() throws {
        #expect(throws: QuantError.self) { try plan("IQ2_XXS") }
        do { _ = try plan("IQ2_XXS") } catch let e as QuantError { #expect(e.code == .needsCalibration) }
        do { _ = try plan("Q8_0") { $0.tensorTypes = [("attn_q", .iq3_S)] } } catch let e as QuantError {
            #expect(e.code == .unsupportedType && e.tensor == "blk.0.attn_q.weight")
        }
        // An explicit type is not subject to fallbacks: rows it cannot hold are an error, naming the tensor.
        #expect(try plan("Q8_0") { $0.tokenEmbeddingType = .q4_K }.type("token_embd.weight") == "Q4_K")  // 512 fits
        let narrow = [try GGUFTensorInfo(name: "token_embd.weight", dimensions: [576, 64], type: .f16)]
        var o = QuantOptions(preset: .named("Q8_0")!)
        o.tokenEmbeddingType = .q4_K
        do {
            _ = try QuantPlanner.plan(metadata: llamaMetadata(layers: 1), tensors: narrow, options: o)
            Issue.record("576-value rows accepted for Q4_K")
        } catch let e as QuantError {
            #expect(e.code == .rowNotBlockMultiple && e.tensor == "token_embd.weight")
        }
        do { _ = try plan("Q8_0") { $0.tensorTypes = [("(", .q4_0)] } } catch let e as QuantError { #expect(e.code == .badPattern) }
    }
}

@Suite struct AssignedTypes {
    @Test("types assigned by name (a fit's plan) replace the preset's rules and overrides for those tensors only")
    func assigned() throws {
        let p = try plan("Q4_K_M", layers: 4) {
            $0.assigned = ["blk.0.ffn_down.weight": .q4_1, "output.weight": .q5_0, "blk.3.attn_v.weight": .f16]
            $0.tensorTypes = [("ffn_down", .q8_0)]
        }
        #expect(p.type("blk.0.ffn_down.weight") == "Q4_1")
        #expect(p.tensors.first { $0.name == "blk.0.ffn_down.weight" }?.note == "planned")
        #expect(p.type("blk.1.ffn_down.weight") == "Q8_0")   // the override still rules the others
        #expect(p.type("output.weight") == "Q5_0")
        #expect(p.type("blk.3.attn_v.weight") == "F16")      // the stored type: a copy
        #expect(p.type("blk.1.attn_v.weight") == "Q4_K")     // use_more_bits(1, 4) is false
        #expect(p.tensors.first { $0.name == "output.weight" }?.targetBytes == 1024 * 512 / 32 * 22)
    }

    @Test("a plan naming a tensor the model lacks, or one that stays as stored, is refused, naming it")
    func refusals() throws {
        do {
            _ = try plan("Q8_0") { $0.assigned = ["blk.99.attn_q.weight": .q4_0] }
            Issue.record("a stranger accepted")
        } catch let e as QuantError { #expect(e.tensor == "blk.99.attn_q.weight") }
        do {
            _ = try plan("Q8_0") { $0.assigned = ["blk.0.attn_norm.weight": .q8_0] }
            Issue.record("a norm quantized")
        } catch let e as QuantError { #expect(e.code == .unsupportedType && e.tensor == "blk.0.attn_norm.weight") }
        do {
            _ = try plan("Q8_0", tied: true) { $0.assigned = ["token_embd.weight": .q4_K, "blk.0.attn_q.weight": .q4_K] }
        } catch let e as QuantError { Issue.record("512-wide rows refused for Q4_K: \(e)") }
    }
}

@Suite struct StreamingQuantizer {
    func makeModel(_ dir: String) throws -> String {
        let path = dir + "/in.gguf"
        let tensors = try llamaTensors(layers: 2, hidden: 256, ffn: 512, kv: 64, vocab: 64, type: .f32)
        let w = try GGUFWriter(path: path, metadata: llamaMetadata(layers: 2), tensors: tensors)
        var state: UInt64 = 1
        for t in tensors {
            let values = (0..<t.elementCount).map { _ -> Float in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Float(Int64(bitPattern: state >> 11) % 2001 - 1000) / 40000
            }
            try values.withUnsafeBytes { try w.write($0) }
        }
        try w.finish()
        return path
    }

    @Test func threadCountDoesNotChangeBytesAndOutputReadsBack() throws {
        let dir = NSTemporaryDirectory() + "ingot-q-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let input = try GGUFFile(path: try makeModel(dir))
        for preset in ["Q4_K_M", "Q8_0", "IQ4_XS"] {
            let p = try QuantPlanner.plan(metadata: input.metadata, tensors: input.tensors,
                                          options: QuantOptions(preset: .named(preset)!))
            var outputs: [Data] = []
            for threads in [1, 3] {
                let out = dir + "/\(preset)-\(threads).gguf"
                let r = try GGUFQuantizer.run(input: input, plan: p, outputPath: out, threads: threads)
                #expect(r.outputBytes == (try FileManager.default.attributesOfItem(atPath: out)[.size] as? Int))
                outputs.append(try Data(contentsOf: URL(fileURLWithPath: out)))
                let q = try GGUFFile(path: out)
                #expect(q.tensors.map(\.type) == p.tensors.map(\.targetType))
                // Dequantized weights stay close to the originals.
                let t = try #require(q.tensor(named: "blk.1.ffn_down.weight"))
                let src = input.data(for: try #require(input.tensor(named: t.name))).bindMemory(to: Float.self)
                var back = [Float](repeating: 0, count: t.elementCount)
                back.withUnsafeMutableBufferPointer { b in
                    BlockCodec.dequantize(t.type, q.data(for: t).baseAddress!, count: t.elementCount, into: b.baseAddress!)
                }
                let err = zip(src, back).map { abs($0 - $1) }.max()!
                #expect(err < 0.004, "\(preset) max error \(err)")  // inputs within ±0.025
            }
            #expect(outputs[0] == outputs[1], "\(preset): 1 and 3 threads differ")
        }
    }

    @Test func failureLeavesNoOutput() throws {
        let dir = NSTemporaryDirectory() + "ingot-q-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let input = try GGUFFile(path: try makeModel(dir))
        let p = try QuantPlanner.plan(metadata: input.metadata, tensors: input.tensors, options: QuantOptions(preset: .named("Q8_0")!))
        #expect(throws: FormatError.self) { try GGUFQuantizer.run(input: input, plan: p, outputPath: dir + "/missing/out.gguf", threads: 2) }
        // A plan naming a tensor the input lacks fails midway; the temporary file is removed.
        var broken = p
        broken.tensors[5].name = "blk.0.nothing.weight"
        #expect(throws: QuantError.self) { try GGUFQuantizer.run(input: input, plan: broken, outputPath: dir + "/out.gguf", threads: 2) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["in.gguf"])
    }
}
