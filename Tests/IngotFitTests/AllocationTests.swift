@testable import IngotFit
import Testing

@Suite struct AllocationTests {
    typealias Option = Allocation.Option

    static func random(_ items: Int, _ options: Int, seed: UInt64, convex: Bool) -> [[Option]] {
        var s = seed
        func next() -> Double {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Double(s >> 11) / Double(1 << 53)
        }
        return (0..<items).map { _ in
            if convex {
                // Losses falling ever more slowly per byte as bytes grow: every option on the hull.
                var bytes = 10 + Int(next() * 20), loss = 4 + next() * 3, rate = 0.05 + 0.05 * next()
                var out: [Option] = []
                for _ in 0..<options {
                    out.append(Option(bytes: bytes, loss: loss))
                    let step = 5 + Int(next() * 20)
                    bytes += step
                    loss -= rate * Double(step)
                    rate *= 0.3 + 0.4 * next()
                }
                var g = LCG(seed: s)
                return out.shuffled(using: &g)
            }
            return (0..<options).map { _ in Option(bytes: 5 + Int(next() * 60), loss: next() * 4) }
        }
    }

    static func bruteForce(_ items: [[Option]], budget: Int) -> Double? {
        var best: Double?
        func go(_ i: Int, _ bytes: Int, _ loss: Double) {
            if bytes > budget { return }
            if i == items.count { if best == nil || loss < best! { best = loss }; return }
            for o in items[i] { go(i + 1, bytes + o.bytes, loss + o.loss) }
        }
        go(0, 0, 0)
        return best
    }

    static func cost(_ items: [[Option]], _ chosen: [Int]) -> (bytes: Int, loss: Double) {
        zip(items, chosen).reduce((0, 0)) { ($0.0 + $1.0[$1.1].bytes, $0.1 + $1.0[$1.1].loss) }
    }

    @Test("the lower convex hull: the Pareto front without the points above the segments between their neighbours")
    func hull() {
        let o = [Option(bytes: 10, loss: 10), Option(bytes: 20, loss: 6), Option(bytes: 30, loss: 5), Option(bytes: 40, loss: 1),
                 Option(bytes: 25, loss: 8), Option(bytes: 10, loss: 12), Option(bytes: 50, loss: 1)]
        let order = o.indices.sorted { (o[$0].bytes, o[$0].loss) < (o[$1].bytes, o[$1].loss) }
        // (20, 6) lies above the segment from (10, 10) to (40, 1)? 10 - 9 * 10 / 30 = 7 > 6: below, kept; (30, 5) lies
        // above the segment (20, 6)-(40, 1) at 3.5: dropped. (25, 8) is dominated, (50, 1) too, (10, 12) too.
        #expect(Allocation.hull(o, order: order) == [0, 1, 3])
    }

    @Test("within the budget, no single change that fits lowers the loss, and nil below the smallest choice", arguments: [false, true])
    func budgets(convex: Bool) {
        for seed in 1...40 {
            let items = Self.random(4, 4, seed: UInt64(seed), convex: convex)
            let smallest = items.reduce(0) { $0 + $1.map(\.bytes).min()! }
            #expect(Allocation.choose(items, budget: smallest - 1) == nil)
            for budget in stride(from: smallest, through: smallest + 150, by: 7) {
                guard let chosen = Allocation.choose(items, budget: budget) else { Issue.record("no plan at \(budget)"); continue }
                let (bytes, loss) = Self.cost(items, chosen)
                #expect(bytes <= budget)
                for (i, options) in items.enumerated() {
                    for o in options where bytes - items[i][chosen[i]].bytes + o.bytes <= budget {
                        #expect(o.loss >= items[i][chosen[i]].loss, "seed \(seed) budget \(budget): item \(i) could improve")
                    }
                }
                // Never worse than the best plan by more than the largest loss one item's options span.
                let spread = items.map { o in o.map(\.loss).max()! - o.map(\.loss).min()! }.max()!
                #expect(loss <= Self.bruteForce(items, budget: budget)! + spread)
            }
        }
    }

    @Test("at every budget where the steps of best loss per byte end, the plan is the best there is")
    func breakpoints() {
        for seed in 1...40 {
            let items = Self.random(4, 4, seed: UInt64(100 + seed), convex: true)
            // The steps along every item's options by bytes, best rate first (convex items: each item's in order).
            var steps: [(rate: Double, bytes: Int)] = []
            for o in items {
                let s = o.sorted { $0.bytes < $1.bytes }
                for k in 1..<s.count { steps.append(((s[k - 1].loss - s[k].loss) / Double(s[k].bytes - s[k - 1].bytes), s[k].bytes - s[k - 1].bytes)) }
            }
            steps.sort { $0.rate > $1.rate }
            var budget = items.reduce(0) { $0 + $1.map(\.bytes).min()! }
            for step in steps {
                budget += step.bytes
                let chosen = Allocation.choose(items, budget: budget)!
                let (bytes, loss) = Self.cost(items, chosen)
                #expect(bytes <= budget)
                #expect(abs(loss - Self.bruteForce(items, budget: budget)!) < 1e-9, "seed \(seed) budget \(budget)")
            }
        }
    }
}

/// A deterministic generator for shuffles.
struct LCG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed | 1 }
    mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return state
    }
}
