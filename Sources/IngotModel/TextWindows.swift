import IngotArchitectures

extension Tokenizer {
    /// The windows llama-perplexity and llama-imatrix run over a text: the text tokenized once (BOS where the model
    /// adds one, special tokens not parsed) and cut into `tokens / context` consecutive windows of `context` tokens
    /// (at most `chunks`); each window runs with its first token replaced by BOS where the model adds one
    /// (`runnable`). Both tools refuse a text of fewer than two windows; so does this (`text-too-short`).
    public func windows(_ text: [UInt8], context: Int, chunks: Int?) throws -> [[Int32]] {
        let tokens = encode(text, addSpecial: true, parseSpecial: false)
        guard tokens.count >= 2 * context else {
            throw ModelError(.textTooShort, field: "--text",
                             "the text is \(tokens.count) tokens; a context of \(context) needs at least \(2 * context) (two windows), as llama.cpp's tools require")
        }
        let n = min(chunks ?? Int.max, tokens.count / context)
        return (0..<n).map { c in Array(tokens[(c * context)..<((c + 1) * context)]) }
    }

    /// `window` as the tools run it: its first token BOS where the model adds one.
    public func runnable(_ window: [Int32]) -> [Int32] {
        var w = window
        if addsBOS, let bos, !w.isEmpty { w[0] = bos }
        return w
    }
}
