/// The choice of one option per item (a type per tensor) that minimizes the summed loss with the summed bytes within a
/// budget: a multiple-choice knapsack, solved as the Lagrangian relaxation solves it and then filled.
///
/// Each item's options are reduced to their lower convex hull in (bytes, loss); every item starts at its smallest
/// option, and the step that buys the most loss per byte across all items is taken while it fits (the greedy order
/// of the relaxation: at a budget where the last step ends exactly, the result is optimal). When the best step no
/// longer fits, that item stops climbing and the others go on. What budget is left then goes, step by step, to the
/// single change of any item to any option (off the hull too) that lowers the loss most and still fits.
public enum Allocation {
    public struct Option: Sendable, Equatable {
        public var bytes: Int
        public var loss: Double
        public init(bytes: Int, loss: Double) { (self.bytes, self.loss) = (bytes, loss) }
    }

    /// The index of the chosen option of each item, or nil when even the smallest options exceed `budget`.
    /// Every item needs at least one option; losses must be finite.
    public static func choose(_ items: [[Option]], budget: Int) -> [Int]? {
        precondition(items.allSatisfy { !$0.isEmpty }, "an item without options")
        // Each item's options by bytes (ties: lower loss first), then its lower convex hull.
        let orders = items.map { o in o.indices.sorted { (o[$0].bytes, o[$0].loss) < (o[$1].bytes, o[$1].loss) } }
        let hulls = zip(items, orders).map { hull($0, order: $1) }
        var chosen = hulls.map { $0[0] }
        var position = [Int](repeating: 0, count: items.count)
        var used = zip(items, chosen).reduce(0) { $0 + $1.0[$1.1].bytes }
        guard used <= budget else { return nil }

        // The steps up each hull, best gain per byte first (a binary heap of (rate, item)).
        var heap = Heap()
        func push(_ i: Int) {
            let h = hulls[i], p = position[i]
            guard p + 1 < h.count else { return }
            let a = items[i][h[p]], b = items[i][h[p + 1]]
            heap.push(rate: (a.loss - b.loss) / Double(max(1, b.bytes - a.bytes)), item: i)
        }
        for i in items.indices { push(i) }
        while let (_, i) = heap.pop() {
            let h = hulls[i], p = position[i]
            let extra = items[i][h[p + 1]].bytes - items[i][h[p]].bytes
            guard used + extra <= budget else { continue }
            used += extra
            position[i] = p + 1
            chosen[i] = h[p + 1]
            push(i)
        }

        // Fill: the best single change that fits, until none lowers the loss.
        while true {
            var best: (gain: Double, item: Int, option: Int)?
            for (i, options) in items.enumerated() {
                let current = options[chosen[i]]
                for (k, o) in options.enumerated() where o.loss < current.loss && used - current.bytes + o.bytes <= budget {
                    let gain = current.loss - o.loss
                    if gain > (best?.gain ?? 0) { best = (gain, i, k) }
                }
            }
            guard let (_, i, k) = best else { break }
            used += items[i][k].bytes - items[i][chosen[i]].bytes
            chosen[i] = k
        }
        return chosen
    }

    /// The lower convex hull of `options` in (bytes, loss), as indices from the smallest option, each next one
    /// larger and of lower loss.
    static func hull(_ options: [Option], order: [Int]) -> [Int] {
        // Pareto front first: by bytes, keep each option with a loss below all smaller ones.
        var front: [Int] = []
        for k in order where front.isEmpty || options[k].loss < options[front.last!].loss {
            if let last = front.last, options[last].bytes == options[k].bytes { front.removeLast() }
            front.append(k)
        }
        var h: [Int] = []
        for k in front {
            // Drop the last point while it lies on or above the segment from the one before it to k.
            while h.count >= 2 {
                let a = options[h[h.count - 2]], b = options[h[h.count - 1]], c = options[k]
                let cross = Double(b.bytes - a.bytes) * (c.loss - a.loss) - (b.loss - a.loss) * Double(c.bytes - a.bytes)
                if cross <= 0 { h.removeLast() } else { break }
            }
            h.append(k)
        }
        return h
    }

    /// A max-heap of (rate, item); ties go to the lower item, so that the result does not depend on the heap's order.
    struct Heap {
        var entries: [(rate: Double, item: Int)] = []

        static func above(_ a: (rate: Double, item: Int), _ b: (rate: Double, item: Int)) -> Bool {
            a.rate > b.rate || (a.rate == b.rate && a.item < b.item)
        }

        mutating func push(rate: Double, item: Int) {
            entries.append((rate, item))
            var c = entries.count - 1
            while c > 0 {
                let p = (c - 1) / 2
                guard Self.above(entries[c], entries[p]) else { break }
                entries.swapAt(c, p)
                c = p
            }
        }

        mutating func pop() -> (rate: Double, item: Int)? {
            guard let top = entries.first else { return nil }
            let last = entries.removeLast()
            if !entries.isEmpty {
                entries[0] = last
                var p = 0
                while true {
                    let l = 2 * p + 1, r = l + 1
                    var m = p
                    if l < entries.count && Self.above(entries[l], entries[m]) { m = l }
                    if r < entries.count && Self.above(entries[r], entries[m]) { m = r }
                    if m == p { break }
                    entries.swapAt(p, m)
                    p = m
                }
            }
            return top
        }
    }
}
