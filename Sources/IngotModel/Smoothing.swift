import IngotNumerics

/// A place where a per-channel scale can move between a tensor and the linear layers that read its output without
/// changing what the block computes (AWQ's mappings, as llm-compressor and mlx-lm list them for Llama-shaped blocks):
///
///     attn_norm → q, k, v          (the attention branch compares)
///     v → o                        (only where v's rows are o's columns: no grouped KV heads)
///     ffn_norm → gate, up          (the feed-forward branch compares)
///     up → down                    (down alone compares)
///
/// The smoother's output channels are divided by s (a norm's weight, or a linear layer's rows) and the balance layers'
/// input columns multiplied by s.
public struct Smoothing {
    public enum Smoother: Equatable { case norm(String), linear(String) }
    /// What a candidate scale is judged on: the output of branch `branch` of the block fed the branch's normalized
    /// input, or of the first balance layer alone fed its input.
    public enum Judge: Equatable { case branch(Int), balanceLayer }

    public let block: Int
    public let smoother: Smoother
    public let balance: [Linear]
    public let judge: Judge

    /// The name of the smoother's tensor.
    public var smootherName: String {
        switch smoother { case .norm(let n), .linear(let n): return n }
    }
}

extension DecoderModel {
    /// The smoothings of block `i`, in llm-compressor's order; none for parts without a rule (latent attention,
    /// mixtures of experts).
    public func smoothings(block i: Int) -> [Smoothing] {
        var out: [Smoothing] = []
        for (b, branch) in blocks[i].branches.enumerated() {
            let norm = b == 0 ? "blk.\(i).attn_norm.weight" : "blk.\(i).ffn_norm.weight"
            if let a = branch.sublayer as? GroupedQueryAttention {
                out.append(Smoothing(block: i, smoother: .norm(norm), balance: [a.q, a.k, a.v], judge: .branch(b)))
                if a.v.rows == a.o.columns, a.v.bias == nil {
                    out.append(Smoothing(block: i, smoother: .linear(a.v.name), balance: [a.o], judge: .balanceLayer))
                }
            } else if let m = branch.sublayer as? GatedMLP {
                out.append(Smoothing(block: i, smoother: .norm(norm), balance: [m.gate, m.up], judge: .branch(b)))
                out.append(Smoothing(block: i, smoother: .linear(m.up.name), balance: [m.down], judge: .balanceLayer))
            }
        }
        return out
    }

    /// Runs branch `b` of block `i` alone over `n` rows of its normalized input `x` into `out` (n × hidden), with the
    /// weights as they stand (replacements included).
    public func runBranch(_ i: Int, _ b: Int, _ x: UnsafePointer<Float>, rows n: Int, into out: UnsafeMutablePointer<Float>,
                          workspace: MatMulWorkspace, kernels: KernelChoice = Kernels.choice, state: RunState) {
        blocks[i].branches[b].sublayer.run(x, into: out, context(tokens: n, workspace: workspace, kernels: kernels, state: state))
    }

    /// Runs linear layer `l` alone: out (n × rows) = x (n × columns) · Wᵀ (+ b).
    public func runLinear(_ l: Linear, _ x: UnsafePointer<Float>, rows n: Int, into out: UnsafeMutablePointer<Float>,
                          workspace: MatMulWorkspace, kernels: KernelChoice = Kernels.choice, state: RunState) {
        l.apply(x, rows: n, into: out, context(tokens: n, workspace: workspace, kernels: kernels, state: state))
    }

    /// Divides the weight of the block norm named `name` (`blk.3.attn_norm.weight`) by `divisors`, one per channel:
    /// AWQ's smoothing of a norm, applied to the model so that a later method calibrates on the smoothed model.
    public func divideNorm(_ name: String, by divisors: [Float]) throws {
        for i in blocks.indices {
            for b in blocks[i].branches.indices where (b == 0 ? "blk.\(i).attn_norm.weight" : "blk.\(i).ffn_norm.weight") == name {
                guard blocks[i].branches[b].norm.weight.count == divisors.count else {
                    throw ModelError(.shapeMismatch, field: name, "\(divisors.count) divisors for \(blocks[i].branches[b].norm.weight.count) channels", path: path)
                }
                for c in divisors.indices { blocks[i].branches[b].norm.weight[c] /= divisors[c] }
                return
            }
        }
        throw ModelError(.missingTensor, field: name, "the model has no block norm of that name", path: path)
    }

    /// The name the input file gives the tensor the model reads as `name` (its GGUF name): the same for a GGUF file,
    /// Transformers' name for a folder.
    public func sourceName(of name: String) -> String? {
        weightLog.entries.first { $0.request == name }?.tensor.name
    }
}
