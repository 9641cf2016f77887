import Foundation
@testable import IngotEvaluate
import IngotFormats
import Testing

/// Parts of a sharded evaluation: written, merged in any order, they give the report of one accumulator over all
/// positions in window order; a set without positions is refused rather than divided by.
@Suite("Evaluation parts")
struct EvalPartTests {
    static func positions(_ n: Int, from k: Int) -> [Position] {
        (0..<n).map { i in
            let x = Double(k + i)
            return Position(nll: 1 + 0.1 * x, nllBase: 1 + 0.05 * x, kld: 0.001 * x, sameTop: (k + i) % 3 != 0, pDiff: 0.01 * sin(x))
        }
    }

    func write(_ dir: String, windows: [[Int]], perWindow: Int) throws -> [String] {
        let n = windows.count
        return try windows.enumerated().map { s, w in
            let part = EvalPart(model: "m.gguf", base: "b.gguf", context: 16, threads: 1, kernels: "scalar",
                                totalWindows: windows.joined().count, windows: w, hasBase: true, seconds: 1, baseSeconds: 1,
                                positions: w.flatMap { Self.positions(perWindow, from: $0 * perWindow) })
            let path = dir + "/eval.part\(s)-of-\(n)"
            try part.write(to: path, keys: PartFile.keys(shard: ShardSpec(index: s, count: n)!, digest: "d", source: "s", positions: w))
            return path
        }
    }

    @Test("merged parts are one accumulator's report over every position in order")
    func merge() throws {
        let dir = NSTemporaryDirectory() + "ingot-evalpart-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let parts = try write(dir, windows: [[0, 1], [2], [3, 4, 5]], perWindow: 7)
        var one = Accumulator()
        Self.positions(42, from: 0).forEach { one.add($0) }
        var options = EvalOptions()
        options.context = 16
        options.threads = 1
        let want = one.report(modelPath: "m.gguf", basePath: "b.gguf", options: options, chunks: 6, hasBase: true, seconds: 3, baseSeconds: 3)
        let got = try EvalPart.merge(parts: parts.reversed())
        #expect(got.perplexity == want.perplexity && got.perplexityError == want.perplexityError)
        #expect(got.kld?.meanKLD == want.kld?.meanKLD && got.kld?.sameTop == want.kld?.sameTop)
        #expect(got.kld?.kldPercentiles.map(\.1) == want.kld?.kldPercentiles.map(\.1))
        #expect(got.chunks == 6 && got.scoredTokens == 42)
    }

    @Test("parts without a scored position are refused, not divided by zero")
    func empty() throws {
        let dir = NSTemporaryDirectory() + "ingot-evalpart-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let parts = try write(dir, windows: [[], []], perWindow: 3)
        #expect(throws: FormatError.self) { try EvalPart.merge(parts: parts) }
        let gap = try write(dir, windows: [[0], [2]], perWindow: 3)
        #expect(throws: FormatError.self) { try EvalPart.merge(parts: gap) }
    }
}
