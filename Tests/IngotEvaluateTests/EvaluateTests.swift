import Foundation
@testable import IngotEvaluate
import Testing

@Suite("Evaluation statistics")
struct EvaluateTests {
    @Test("a model against itself: zero KLD, full top-1 agreement, zero Δp; NLL is ln-sum-exp minus the logit")
    func selfComparison() {
        let vocab = 1000
        let logits: [Float] = (0..<vocab).map { Float(($0 * 7919) % 1000) / 100 - 5 }
        logits.withUnsafeBufferPointer { p in
            let c = Position.compare(p.baseAddress!, p.baseAddress!, vocab: vocab, token: 17)
            #expect(abs(c.kld) < 1e-6 && c.sameTop && c.pDiff == 0)
            let lse = log(logits.map { exp(Double($0)) }.reduce(0, +))
            #expect(abs(c.nll - (lse - Double(logits[17]))) < 1e-5)
        }
    }

    @Test("KLD of two known distributions")
    func knownKLD() {
        // p = softmax([0, ln 3]) = (1/4, 3/4); q = (1/2, 1/2): KL(p‖q) = 1/4 ln(1/2) + 3/4 ln(3/2).
        let base: [Float] = [0, Float(log(3.0))], model: [Float] = [0, 0]
        model.withUnsafeBufferPointer { m in base.withUnsafeBufferPointer { b in
            let c = Position.compare(m.baseAddress!, b.baseAddress!, vocab: 2, token: 1)
            #expect(abs(c.kld - (0.25 * log(0.5) + 0.75 * log(1.5))) < 1e-6)
            #expect(abs(c.pDiff - (0.5 - 0.75)) < 1e-6)
            #expect(c.sameTop == false)
        } }
    }

    @Test("percentiles interpolate as llama-perplexity's")
    func percentiles() {
        let v: [Float] = [1, 2, 3, 4]
        #expect(Accumulator.percentile(v, 0.5) == 2.5)
        #expect(Accumulator.percentile(v, 0.99) == Double(Float(0.99 * 3 - 2) * 1 + 3) || abs(Accumulator.percentile(v, 0.99) - 3.97) < 1e-5)
        #expect(Accumulator.percentile(v, 1) == 4 && Accumulator.percentile(v, 0) == 1)
    }
}
