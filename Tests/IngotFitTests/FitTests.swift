import Foundation
@testable import IngotFit
import IngotFormats
import IngotModel
import IngotNumerics
import IngotQuantize
import IngotTestSupport
import Testing

/// The GGUF forms the tests name, as fit's candidates.
private extension FitType {
    static let f32 = FitType.gguf(.f32), f16 = FitType.gguf(.f16), q8_0 = FitType.gguf(.q8_0), q6_K = FitType.gguf(.q6_K)
    static let q5_1 = FitType.gguf(.q5_1), q4_K = FitType.gguf(.q4_K), q4_0 = FitType.gguf(.q4_0), iq4_NL = FitType.gguf(.iq4_NL)
    static let iq3_S = FitType.gguf(.iq3_S), q2_K = FitType.gguf(.q2_K), iq2_XXS = FitType.gguf(.iq2_XXS)
    static func affine(_ bits: Int, _ group: Int) -> FitType { .mlx(MLXQuantization(mode: .affine, bits: bits, groupSize: group)!) }
}

@Suite struct FitTests {
    /// The tiny llama in F32, the base model, and windows of its tokens.
    static func tiny() throws -> (dir: String, file: GGUFFile, windows: [[Int32]]) {
        let dir = NSTemporaryDirectory() + "ingot-fit-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try TinyLlama.write(dir + "/f32.gguf", TinyLlama.weights())
        let windows = (0..<3).map { w in TinyLlama.values(48, seed: UInt64(200 + w), scale: 1).map { Int32(abs($0) * 63.99) } }
        return (dir, try GGUFFile(path: dir + "/f32.gguf"), windows)
    }

    @Test("the change the next block sees: none along the state itself, all of it across")
    func normalizedChange() {
        let base: [Float] = [3, 4, 0, 0, 1, 0, 0, 0]
        #expect(SensitivityMeter.normalizedChange(base.map { $0 * 1.5 }, base, hidden: 4) < 1e-12)
        let across: [Float] = [3, 4, 0.5, 0, 1, 0, 0, 0.2]
        // Token 0: 0.25 over 25 / 4; token 1: 0.04 over 1 / 4.
        #expect(abs(SensitivityMeter.normalizedChange(across, base, hidden: 4) - (0.25 / 6.25 + 0.04 / 0.25)) < 1e-6)
    }

    @Test("every tensor measured in every type its rows hold: the stored type costs nothing, 8 bits less than 4, and the losses add up to the model's")
    func measure() throws {
        let (dir, file, windows) = try Self.tiny()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try DecoderModel(gguf: file)
        var options = FitOptions()
        options.responseWindows = 3
        let meter = try SensitivityMeter(model: model, source: file, importance: nil, windows: windows, options: options)
        let tensors = try meter.measure(meter.quantizable, alignment: 32)
        #expect(tensors.map(\.name) == file.tensors.filter(QuantPlanner.allowsQuantization).map(\.name))
        for t in tensors {
            let byType = Dictionary(uniqueKeysWithValues: t.candidates.map { ($0.type, $0) })
            #expect(byType[.f32]?.loss == 0 && byType[.f32]?.bytes == t.elementCount * 4)
            // Rows of 256 (ffn_down's) hold the K and IQ types, rows of 128 the 32-value blocks alone; no IQ2_XXS or
            // IQ2_XS without an importance matrix.
            let wide = t.dimensions[0] % 256 == 0
            #expect((byType[.q4_K] != nil) == wide && (byType[.iq3_S] != nil) == wide && byType[.iq2_XXS] == nil)
            #expect(byType[.q4_0] != nil && byType[.q5_1] != nil && byType[.iq4_NL] != nil)
            #expect(t.candidates.allSatisfy { $0.loss >= 0 && $0.loss.isFinite && $0.bytes % 32 == 0 })
            #expect(byType[.q8_0]!.loss < byType[.q4_0]!.loss, "\(t.name)")
            if wide { #expect(byType[.q4_K]!.loss < byType[.q2_K]!.loss, "\(t.name)") }
        }
        // Every tensor in Q4_0 at once: the summed predictions against the model's own KL divergence.
        try TinyLlama.write(dir + "/q4.gguf", TinyLlama.weights()) { name in
            tensors.contains { $0.name == name } ? .q4_0 : .f32
        }
        let measured = try meter.kld(of: try DecoderModel(gguf: try GGUFFile(path: dir + "/q4.gguf")))
        let predicted = tensors.reduce(0) { $0 + $1.candidates.first { $0.type == .q4_0 }!.loss }
        #expect(measured > 0 && predicted > 0.5 * measured && predicted < 2 * measured, "predicted \(predicted), measured \(measured)")
    }

    static func measured() -> [FitTensor] {
        [FitTensor(name: "blk.0.attn_q.weight", dimensions: [256, 8], sourceType: .f16,
                   candidates: [FitCandidate(type: .q4_0, bytes: 288, error: 2, loss: 0.02), FitCandidate(type: .q8_0, bytes: 544, error: 0.1, loss: 0.001),
                                FitCandidate(type: .f16, bytes: 4096, error: 0, loss: 0)], probe: .q4_0, probeKLD: 0.02),
         FitTensor(name: "blk.0.ffn_down.weight", dimensions: [256, 16], sourceType: .f16,
                   candidates: [FitCandidate(type: .q4_K, bytes: 576, error: 3, loss: 0.05), FitCandidate(type: .q6_K, bytes: 832, error: 0.5, loss: 0.004),
                                FitCandidate(type: .f16, bytes: 8192, error: 0, loss: 0)], probe: .q4_K, probeKLD: 0.05)]
    }

    @Test("a plan within its budget, written and read back with its measurements; budgets outside the range refused")
    func plans() throws {
        let tensors = Self.measured()
        #expect(FitPlan.range(tensors, fixedBytes: 1000) == 1864...13288)
        // 1200 bytes for the tensors: Q4_0 and Q6_K (1120 bytes, 0.024) beat Q8_0 and Q4_K (1120, 0.051).
        let plan = try FitPlan.choose(tensors, fixedBytes: 1000, budget: 2200)
        #expect(plan.fileBytes == 2120 && plan.types == ["blk.0.attn_q.weight": .q4_0, "blk.0.ffn_down.weight": .q6_K])
        #expect(abs(plan.predictedKLD - 0.024) < 1e-12)
        let roomier = try FitPlan.choose(tensors, fixedBytes: 1000, budget: 2400)
        #expect(roomier.fileBytes == 2376 && roomier.types == ["blk.0.attn_q.weight": .q8_0, "blk.0.ffn_down.weight": .q6_K])
        let shapes = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0.dimensions) })
        let (read, chosen) = try FitPlan.read(Array(plan.json(format: .gguf).serialized(pretty: true).utf8), shapes: shapes, format: .gguf)
        #expect(chosen == plan.chosen && read.map(\.candidates) == tensors.map(\.candidates) && read.map(\.probeKLD) == [0.02, 0.05])
        do { _ = try FitPlan.choose(tensors, fixedBytes: 1000, budget: 1863); Issue.record("too small accepted") }
        catch let e as FitError { #expect(e.code == .budgetTooSmall) }
        do { _ = try FitPlan.choose(tensors, fixedBytes: 1000, budget: 13288); Issue.record("too large accepted") }
        catch let e as FitError { #expect(e.code == .budgetTooLarge) }
    }

    @Test("a saved plan from another model, or damaged, is refused naming the field")
    func badPlans() throws {
        let plan = try FitPlan.choose(Self.measured(), fixedBytes: 1000, budget: 2200)
        let text = plan.json(format: .gguf).serialized(pretty: true)
        let shapes = ["blk.0.attn_q.weight": [256, 8], "blk.0.ffn_down.weight": [256, 16]]
        func refusal(_ text: String, _ shapes: [String: [Int]]) -> FitError? {
            do { _ = try FitPlan.read(Array(text.utf8), shapes: shapes, format: .gguf); return nil } catch { return error as? FitError }
        }
        #expect(refusal(text, ["blk.0.attn_q.weight": [256, 9], "blk.0.ffn_down.weight": [256, 16]])?.field == "tensors[0].shape")
        #expect(refusal(text, shapes.merging(["blk.1.attn_q.weight": [256, 8]]) { a, _ in a })?.code == .planMismatch)
        #expect(refusal(text, ["blk.0.ffn_down.weight": [256, 16]])?.field == "tensors[0].name")
        #expect(refusal(text.replacingOccurrences(of: "\"loss\": 0.004", with: "\"loss\": -1"), shapes)?.field == "tensors[1].candidates[1]")
        #expect(refusal(text.replacingOccurrences(of: "\"type\": \"Q6_K\"", with: "\"type\": \"Q7_K\""), shapes)?.code == .invalidPlan)
        #expect(refusal("{\"format\": \"other\"}", shapes)?.field == "format")
    }

    @Test("MLX forms by name: every one mlx-lm writes, and float; nothing else")
    func mlxNames() {
        for form in FitType.all(.mlx) + [.float] { #expect(FitType.named(form.name, format: .mlx) == form, "\(form)") }
        #expect(FitType.all(.mlx).count == 21 && FitType.named("affine-4-64", format: .mlx) == .affine(4, 64))
        for bad in ["affine-4", "affine-4-48", "affine-7-64", "mxfp4-32", "Q4_K", "float-16", ""] {
            #expect(FitType.named(bad, format: .mlx) == nil, "\(bad)")
        }
        #expect(FitType.named("affine-4-64", format: .gguf) == nil && FitType.named("Q4_K", format: .gguf) == .q4_K)
        #expect(FitType.affine(4, 64).bitsPerWeight == 4.5 && FitType.named("mxfp4", format: .mlx)!.bitsPerWeight == 4.25)
    }

    @Test("an MLX fit measures every group its rows divide into; float costs nothing; the bytes are the folder's; the losses add up to the model's")
    func measureMLX() throws {
        let (dir, file, windows) = try Self.tiny()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try DecoderModel(gguf: file)
        var options = FitOptions(format: .mlx)
        options.responseWindows = 3
        let meter = try SensitivityMeter(model: model, source: file, importance: nil, windows: windows, options: options)
        let tensors = try meter.measure(meter.quantizable, alignment: 1)
        for t in tensors {
            let byType = Dictionary(uniqueKeysWithValues: t.candidates.map { ($0.type, $0) })
            let (rows, columns) = (t.elementCount / t.dimensions[0], t.dimensions[0])
            // The tiny llama is F32: so are the folder's float weights and the affine forms' scales and biases.
            #expect(t.candidates.last?.type == .float && byType[.float]?.loss == 0 && byType[.float]?.bytes == t.elementCount * 4)
            #expect(byType[.affine(4, 64)]?.bytes == rows * columns / 2 + 2 * rows * columns / 64 * 4)
            #expect(byType[.affine(3, 32)]?.bytes == rows * columns * 3 / 8 + 2 * rows * columns / 32 * 4)
            #expect(t.candidates.count == 19 && t.candidates.allSatisfy { $0.loss >= 0 && $0.loss.isFinite })
            #expect(byType[.affine(8, 64)]!.loss < byType[.affine(4, 64)]!.loss && byType[.affine(4, 64)]!.loss < byType[.affine(2, 64)]!.loss,
                    "\(t.name)")
            #expect(byType[.affine(3, 32)]!.loss > byType[.affine(5, 32)]!.loss, "\(t.name)")
        }
        // Every tensor in affine-4-64 at once, put in another copy of the model as the folder would hold it.
        let other = try DecoderModel(gguf: file)
        for t in file.tensors where tensors.contains(where: { $0.name == t.name }) {
            var values = [Float](repeating: 0, count: t.elementCount)
            values.withUnsafeMutableBufferPointer { BlockCodec.dequantize(.f32, file.data(for: t).baseAddress!, count: t.elementCount, into: $0.baseAddress!) }
            let form = try FitType.affine(4, 64).passForm(values, rows: t.elementCount / t.dimensions[0], columns: t.dimensions[0], importance: nil,
                                                          rowsPerMatrix: t.elementCount / t.dimensions[0], floatType: .f32, threads: 1)
            if t.name == "token_embd.weight" && other.linear(named: "output.weight") != nil && file.tensor(named: "output.weight") == nil {
                try other.replaceWeight("output.weight", type: form.type, bytes: form.bytes)
            }
            if other.computes(t.name) { try other.replaceWeight(t.name, type: form.type, bytes: form.bytes) }
        }
        let measured = try meter.kld(of: other)
        let predicted = tensors.reduce(0) { $0 + $1.candidates.first { $0.type == .affine(4, 64) }!.loss }
        #expect(measured > 0 && predicted > 0.5 * measured && predicted < 2 * measured, "predicted \(predicted), measured \(measured)")
    }

    @Test("a plan says which format it chose for: an MLX plan reads back as one, and is refused for GGUF")
    func planFormats() throws {
        let tensors = [FitTensor(name: "blk.0.attn_q.weight", dimensions: [256, 8], sourceType: .f16,
                                 candidates: [FitCandidate(type: .affine(4, 64), bytes: 1152, error: 2, loss: 0.02),
                                              FitCandidate(type: .affine(8, 32), bytes: 2560, error: 0.1, loss: 0.001),
                                              FitCandidate(type: .float, bytes: 4096, error: 0, loss: 0)], probe: .affine(4, 64), probeKLD: 0.02)]
        let plan = try FitPlan.choose(tensors, fixedBytes: 100, budget: 3000)
        #expect(plan.types == ["blk.0.attn_q.weight": .affine(8, 32)])
        let text = Array(plan.json(format: .mlx).serialized(pretty: true).utf8)
        let (read, chosen) = try FitPlan.read(text, shapes: ["blk.0.attn_q.weight": [256, 8]], format: .mlx)
        #expect(chosen == plan.chosen && read.map(\.candidates) == tensors.map(\.candidates) && read[0].probe == .affine(4, 64))
        do { _ = try FitPlan.read(text, shapes: ["blk.0.attn_q.weight": [256, 8]], format: .gguf); Issue.record("an MLX plan read as GGUF") }
        catch let e as FitError { #expect(e.code == .cannotExpress && e.field == "output") }
        // A form MLX has not (groups of 48).
        let odd = String(decoding: text, as: UTF8.self).replacingOccurrences(of: "affine-8-32", with: "affine-8-48")
        do { _ = try FitPlan.read(Array(odd.utf8), shapes: ["blk.0.attn_q.weight": [256, 8]], format: .mlx); Issue.record("accepted") }
        catch let e as FitError { #expect(e.code == .invalidPlan && e.field == "tensors[0]") }
    }

    @Test("tied tensors take one form: the one of least summed loss whose summed bytes fit, among the forms all of them have")
    func ties() throws {
        func t(_ name: String, _ forms: [(FitType, Int, Double)]) -> FitTensor {
            FitTensor(name: name, dimensions: [64, 4], sourceType: .f16,
                      candidates: forms.map { FitCandidate(type: $0.0, bytes: $0.1, error: $0.2, loss: $0.2) } + [FitCandidate(type: .float, bytes: 512, error: 0, loss: 0)],
                      probe: .float, probeKLD: 0)
        }
        let w4 = FitType.integer(bits: 4, group: 64, symmetric: true), w8 = FitType.integer(bits: 8, group: nil, symmetric: true)
        let a4 = FitType.integer(bits: 4, group: 32, symmetric: false)
        // q is cheap to quantize, k dear; alone, 300 bytes of budget give q W4 and k W8.
        let tensors = [t("blk.0.attn_q.weight", [(w4, 100, 0.01), (w8, 200, 0.001), (a4, 120, 0.005)]),
                       t("blk.0.attn_k.weight", [(w4, 100, 0.5), (w8, 200, 0.01)])]
        let alone = try FitPlan.choose(tensors, fixedBytes: 0, budget: 300)
        #expect(alone.types == ["blk.0.attn_q.weight": w4, "blk.0.attn_k.weight": w8])
        // Tied, they take one form: W4 for both (200 bytes, 0.51) or W8 (400 bytes, too many); a4 is not k's.
        let tied = try FitPlan.choose(tensors, ties: [[0, 1]], fixedBytes: 0, budget: 300)
        #expect(tied.types == ["blk.0.attn_q.weight": w4, "blk.0.attn_k.weight": w4] && tied.fileBytes == 200)
        let roomy = try FitPlan.choose(tensors, ties: [[0, 1]], fixedBytes: 0, budget: 500)
        #expect(roomy.types == ["blk.0.attn_q.weight": w8, "blk.0.attn_k.weight": w8] && abs(roomy.predictedKLD - 0.011) < 1e-12)
        do { _ = try FitPlan.choose(tensors, ties: [[0, 1]], fixedBytes: 0, budget: 199); Issue.record("too small accepted") }
        catch let e as FitError { #expect(e.code == .budgetTooSmall) }
    }

    @Test("compressed-tensors forms by name: llm-compressor's integer presets at each group, and float")
    func integerNames() {
        let all = FitType.all(.compressedTensors)
        #expect(all.count == 12 && Set(all.map(\.name)).count == 12)
        for form in all + [.float] { #expect(FitType.named(form.name, format: .compressedTensors) == form, "\(form)") }
        #expect(FitType.named("W4A16-g128", format: .compressedTensors) == .integer(bits: 4, group: 128, symmetric: true))
        #expect(FitType.named("W8A16-channel", format: .compressedTensors) == .integer(bits: 8, group: nil, symmetric: true))
        for bad in ["W4A16", "W8A16_ASYM-g64", "W4A16-g48", "affine-4-64", "FP8"] { #expect(FitType.named(bad, format: .compressedTensors) == nil, "\(bad)") }
        // SmolLM2's 576 x 1536 up projection in W4A16 groups of 64: packed words, F16 scales, the shape, no zero points.
        #expect(FitType.integer(bits: 4, group: 64, symmetric: true).dataBytes(rows: 1536, columns: 576, floatType: .f16)
                == 1536 * 72 * 4 + 1536 * 9 * 2 + 16)
        #expect(FitType.integer(bits: 4, group: 64, symmetric: false).dataBytes(rows: 1536, columns: 576, floatType: .f16)
                == 1536 * 72 * 4 + 1536 * 9 * 2 + 16 + 9 * 192 * 4)
    }
}
