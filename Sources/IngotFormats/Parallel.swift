import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Seconds on the monotonic clock, for measuring how long work took.
package func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// Runs `body(i, w)` for every i in `range` on `threads` workers, worker w taking w, w + threads,
/// ... (so per-worker state indexed by w is never shared), and rethrows the error of the lowest
/// failing index.
package func parallelFor(_ range: Range<Int>, threads: Int, _ body: @Sendable (Int, Int) throws -> Void) throws {
    let n = range.count
    guard n > 0 else { return }
    let workers = max(1, min(threads, n))
    if workers == 1 {
        for i in range { try body(i, 0) }
        return
    }
    let errors = Slots<Error>(count: n)
    DispatchQueue.concurrentPerform(iterations: workers) { w in
        var k = w
        while k < n {
            do { try body(range.lowerBound + k, w) } catch { errors[k] = error }
            k += workers
        }
    }
    if let e = (0 ..< n).lazy.compactMap({ errors[$0] }).first { throw e }
}

/// One slot per job of a parallel window. Each worker writes only its own jobs' slots; the
/// storage is a fixed allocation (not an Array, whose copy-on-write check would make
/// concurrent writes to different indices a data race).
package final class Slots<T>: @unchecked Sendable {
    private let values: UnsafeMutablePointer<T?>
    private let count: Int

    package init(count: Int) {
        self.count = count
        values = UnsafeMutablePointer<T?>.allocate(capacity: count)
        values.initialize(repeating: nil, count: count)
    }

    deinit {
        values.deinitialize(count: count)
        values.deallocate()
    }

    package subscript(i: Int) -> T? {
        get { values[i] }
        set { values[i] = newValue }
    }
}

/// A grow-only raw buffer, reused from job to job so that large frames do not cost an
/// allocation and fresh page faults each time.
package final class ReusableBuffer: @unchecked Sendable {
    private var storage = UnsafeMutableRawBufferPointer(start: nil, count: 0)

    package init() {}

    /// The first `count` bytes (contents unspecified).
    package func get(_ count: Int) -> UnsafeMutableRawBufferPointer {
        if storage.count < count {
            storage.deallocate()
            storage = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 64)
        }
        return UnsafeMutableRawBufferPointer(rebasing: storage[0 ..< count])
    }

    deinit { storage.deallocate() }
}
