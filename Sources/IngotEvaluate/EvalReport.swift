import Foundation
import IngotFormats

/// KL divergence against a base model, in llama-perplexity's terms.
public struct KLDReport: Sendable {
    public var basePerplexity = 0.0, basePerplexityError = 0.0
    public var lnPerplexityRatio = 0.0, lnPerplexityRatioError = 0.0
    public var perplexityRatio = 0.0, perplexityRatioError = 0.0
    public var meanKLD = 0.0, meanKLDError = 0.0
    /// (name, value): max, 99.9, 99, 95, 90, median, 10, 5, 1, min.
    public var kldPercentiles: [(String, Double)] = []
    public var meanDeltaP = 0.0, meanDeltaPError = 0.0
    public var rmsDeltaP = 0.0, rmsDeltaPError = 0.0
    public var deltaPPercentiles: [(String, Double)] = []
    /// How many positions' KL divergence falls in each bin: bin k holds those above 10^(-6 + (k-1)/4) up to
    /// 10^(-6 + k/4) (bin 0: at most 1e-6; the last: everything above 1e2).
    public var kldHistogram: [Int] = []
    public static func histogramUpperEdge(_ k: Int) -> Double { pow(10, -6 + Double(k) / 4) }
    public static let histogramBins = 34
    /// Fraction of scored tokens where both models put the same token first.
    public var sameTop = 0.0, sameTopError = 0.0
}

/// Everything `ingot eval` reports, as text or JSON.
public struct EvalReport: Sendable {
    public var model = ""
    public var base: String?
    public var context = 0, chunks = 0, threads = 0, scoredTokens = 0
    public var kernels = ""
    public var perplexity = 0.0, perplexityError = 0.0
    public var tokensPerSecond = 0.0
    public var baseTokensPerSecond: Double?
    public var kld: KLDReport?

    public var json: JSONValue {
        var o = JSONObject([
            ("model", .string(model)), ("context", JSONValue(context)), ("chunks", JSONValue(chunks)),
            ("scored_tokens", JSONValue(scoredTokens)), ("threads", JSONValue(threads)), ("kernels", .string(kernels)),
            ("perplexity", .double(perplexity)), ("perplexity_error", .double(perplexityError)),
            ("tokens_per_second", .double(tokensPerSecond)),
        ])
        if let base { o["base"] = .string(base) }
        if let b = baseTokensPerSecond { o["base_tokens_per_second"] = .double(b) }
        if let k = kld {
            o["kld"] = .object(JSONObject([
                ("base_perplexity", .double(k.basePerplexity)), ("base_perplexity_error", .double(k.basePerplexityError)),
                ("ln_ppl_ratio", .double(k.lnPerplexityRatio)), ("ln_ppl_ratio_error", .double(k.lnPerplexityRatioError)),
                ("ppl_ratio", .double(k.perplexityRatio)), ("ppl_ratio_error", .double(k.perplexityRatioError)),
                ("mean", .double(k.meanKLD)), ("mean_error", .double(k.meanKLDError)),
                ("percentiles", .object(JSONObject(k.kldPercentiles.map { ($0.0, JSONValue.double($0.1)) }))),
                ("same_top", .double(k.sameTop)), ("same_top_error", .double(k.sameTopError)),
                ("mean_delta_p", .double(k.meanDeltaP)), ("mean_delta_p_error", .double(k.meanDeltaPError)),
                ("rms_delta_p", .double(k.rmsDeltaP)), ("rms_delta_p_error", .double(k.rmsDeltaPError)),
                ("delta_p_percentiles", .object(JSONObject(k.deltaPPercentiles.map { ($0.0, JSONValue.double($0.1)) }))),
                ("histogram", .array(k.kldHistogram.enumerated().map { i, c in
                    .object(JSONObject([("upTo", i == k.kldHistogram.count - 1 ? .null : .double(KLDReport.histogramUpperEdge(i))),
                                        ("positions", JSONValue(c))]))
                })),
            ]))
        }
        return .object(o)
    }
}
