import IngotFormats
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Base-model log-probabilities saved for reuse, in the file format of llama-perplexity's
/// `--kl-divergence-base` (tools/perplexity/perplexity.cpp), so a file written by either tool works with both:
///
///     "_logits_"  u32 n_ctx  i32 n_vocab  i32 n_chunk  i32 tokens[n_chunk · n_ctx]
///     per chunk, per scored position (n_ctx - 1 - n_ctx/2 of them), nv = 2·((n_vocab + 1)/2) + 4 u16:
///         f32 scale, f32 min_log_prob, 4 padding bytes... (the first 4 u16), then n_vocab u16 q with
///         ln p = scale · q + min_log_prob (log-probabilities within 16 of the maximum; below that q = 0)
///
/// Every value is little-endian. The 16-bit quantization makes KLD from a saved file approximate (llama.cpp's).
public final class BaseLogProbs {
    public enum Mode: Sendable { case write, read }
    public let mode: Mode
    public let path: String
    var output: OutputFile?
    var input: MappedFile?
    var context = 0, vocab = 0, chunks = 0
    var dataOffset = 0

    public init(writing path: String) { mode = .write; self.path = path }
    public init(reading path: String) throws {
        mode = .read
        self.path = path
        input = try MappedFile(path: path)
    }

    var rowValues: Int { 2 * ((vocab + 1) / 2) + 4 }

    func begin(context: Int, vocab: Int, tokens: [[Int32]]) throws {
        self.context = context; self.vocab = vocab; chunks = tokens.count
        let out = try OutputFile(path: path)
        var header = Array("_logits_".utf8)
        func i32(_ v: Int32) { withUnsafeBytes(of: v.littleEndian) { header += $0 } }
        i32(Int32(context)); i32(Int32(vocab)); i32(Int32(tokens.count))
        for w in tokens { for t in w { i32(t) } }
        try out.write(header)
        output = out
    }

    func check(context: Int, vocab: Int, tokens: [[Int32]]) throws {
        guard let f = input else { return }
        let b = f.bytes
        guard b.count >= 20, Array(b[0..<8]) == Array("_logits_".utf8) else {
            throw FormatError(.badMagic, field: "magic", offset: 0, "not a llama.cpp log-probability file (no \"_logits_\" header)", path: path)
        }
        func i32(_ at: Int) -> Int { Int(Int32(littleEndian: b.loadUnaligned(fromByteOffset: at, as: Int32.self))) }
        let ctx = i32(8), nv = i32(12), nc = i32(16)
        guard ctx == context else {
            throw FormatError(.invalidValue, field: "n_ctx", offset: 8, "the file was computed with a context of \(ctx), this run uses \(context)", path: path)
        }
        guard nv == vocab else {
            throw FormatError(.invalidValue, field: "n_vocab", offset: 12, "the file has \(nv) tokens, the model \(vocab)", path: path)
        }
        guard nc >= tokens.count else {
            throw FormatError(.invalidValue, field: "n_chunk", offset: 16, "the file has \(nc) chunks, this run needs \(tokens.count)", path: path)
        }
        self.context = ctx; self.vocab = nv; chunks = nc
        let scored = ctx - 1 - ctx / 2
        dataOffset = 20 + 4 * nc * ctx
        guard let rowsBytes = Checked.mul(nc * scored, rowValues * 2), let need = Checked.add(rowsBytes, dataOffset),
              need <= b.count else {
            throw FormatError(.truncated, field: "log_probs", offset: b.count, "the file ends before its \(nc) chunks of log-probabilities", path: path)
        }
        for (ci, w) in tokens.enumerated() {
            for (j, t) in w.enumerated() {
                let at = 20 + 4 * (ci * ctx + j)
                guard i32(at) == Int(t) else {
                    throw FormatError(.invalidValue, field: "tokens[\(ci * ctx + j)]", offset: at,
                                      "the saved tokens differ from this text's: use the same text and tokenizer", path: path)
                }
            }
        }
    }

    func writeChunk(_ logits: UnsafePointer<Float>, rows: Int, vocab: Int) throws {
        guard let out = output else { return }
        let nv = rowValues
        var buf = [UInt16](repeating: 0, count: rows * nv)
        for r in 0..<rows {
            let row = logits + r * vocab
            var mx = row[0], mn = row[0]
            for i in 1..<vocab { mx = max(mx, row[i]); mn = min(mn, row[i]) }
            mn = max(mn, mx - 16)
            var sum: Double = 0
            for i in 0..<vocab { sum += Double(expf(row[i] - mx)) }
            let lse = Float(log(sum))
            let minLogProb = mn - mx - lse
            let scale = (mx - mn) / 65535
            buf.withUnsafeMutableBufferPointer { b in
                let base = UnsafeMutableRawPointer(b.baseAddress! + r * nv)
                base.storeBytes(of: scale.bitPattern.littleEndian, as: UInt32.self)
                base.storeBytes(of: minLogProb.bitPattern.littleEndian, toByteOffset: 4, as: UInt32.self)
                if scale != 0 {
                    let inv = 1 / scale
                    for i in 0..<vocab where row[i] > mn {
                        let v = inv * (row[i] - mn) + 12582912
                        b[r * nv + 4 + i] = UInt16(truncatingIfNeeded: (Int32(bitPattern: v.bitPattern) & 0x007f_ffff) - 0x0040_0000)
                    }
                }
            }
        }
        try buf.withUnsafeBytes { try out.write(Array($0)) }
    }

    func finish() throws {
        if let out = output { try out.commit(); output = nil }
    }

    /// One chunk's saved rows.
    func readChunk(_ chunk: Int, rows: Int) throws -> SavedChunk? {
        guard let f = input else { return nil }
        let nv = rowValues
        return SavedChunk(base: f.bytes.baseAddress! + dataOffset + chunk * rows * nv * 2, rowValues: nv)
    }
}

/// Saved log-probabilities of one chunk, compared with llama-perplexity's formula.
struct SavedChunk: @unchecked Sendable {
    let base: UnsafeRawPointer
    let rowValues: Int

    func compare(_ row: UnsafePointer<Float>, row r: Int, vocab: Int, token: Int) -> Position {
        let p = base + r * rowValues * 2
        let scale = Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(as: UInt32.self)))
        let minLogProb = Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
        func q(_ i: Int) -> Float { Float(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 8 + 2 * i, as: UInt16.self))) }
        let s = Position.logSumExp(row, vocab)
        let lse = Float(s.lse)
        let nll = Double(lse - row[token])
        let nllBase = Double(-(scale * q(token) + minLogProb))
        var kld: Double = 0
        var best: Float = 0, arg = 0
        for i in 0..<vocab {
            let lb = scale * q(i) + minLogProb
            if i == 0 || lb > best { best = lb; arg = i }
            if lb > -16 { kld += Double(expf(lb) * (lb - row[i] + lse)) }
        }
        return Position(nll: nll, nllBase: nllBase, kld: kld, sameTop: arg == s.argmax,
                        pDiff: Double(expf(Float(-nll)) - expf(Float(-nllBase))))
    }
}
