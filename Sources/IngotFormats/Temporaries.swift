#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The temporary files and folders this process is writing beside their destinations, and the rules that keep
/// them from outliving it:
///
/// - Each name says who writes it: `.NAME.ingot-tmp-HOST-PID-START-XXXXXX`, with the host name, the process id and
///   the process's start time (Linux: clock ticks after boot, from /proc; elsewhere 0).
/// - SIGINT, SIGTERM and SIGHUP (once `handleInterrupts()` ran) remove every temporary still registered and end
///   the process with 128 + the signal's number. A commit (the rename into place) holds the same lock, so an
///   interrupt either comes before it, and the destination is untouched, or after it, and the output is whole.
/// - A process killed outright (SIGKILL, power loss) leaves its temporaries; the next writer into the same folder
///   removes those of this host whose process is gone (or is another process under a reused id), and never a live
///   writer's nor another host's (a folder shared over the network).
public enum Temporaries {
    static let lock = SystemLock()
    nonisolated(unsafe) static var live: [String: Bool] = [:]  // path -> is a folder

    /// The marker every temporary name carries after the destination's name.
    static let marker = ".ingot-tmp-"

    /// `HOST-PID-START` of this process.
    static let writer: String = "\(hostTag())-\(getpid())-\(startTime(of: getpid()) ?? 0)"

    /// The template for `mkstemp`/`mkdtemp`: a temporary for `name` inside `folder`.
    static func template(folder: String, name: String) -> String {
        "\(folder)/.\(name)\(marker)\(writer)-XXXXXX"
    }

    /// Registers a temporary; a folder's `destination` is what errors about the files inside it name.
    static func register(_ path: String, folder: Bool, destination: String? = nil) {
        lock.locked { live[path] = folder }
        if let destination { destinationLock.locked { destinations[path] = destination } }
    }

    static func unregister(_ path: String) {
        _ = lock.locked { live.removeValue(forKey: path) }
        forgetDestination(of: path)
    }

    /// Temporary folders and the paths they become, so that an error about a file inside one names the file the
    /// user asked for rather than a temporary that is gone once the error is read. A lock of its own: errors are
    /// made while `lock` is held (a failed rename).
    static let destinationLock = SystemLock()
    nonisolated(unsafe) static var destinations: [String: String] = [:]

    static func forgetDestination(of temporary: String) {
        _ = destinationLock.locked { destinations.removeValue(forKey: temporary) }
    }

    /// `path` with a live temporary folder at its start replaced by that folder's destination.
    public static func userPath(_ path: String) -> String {
        guard path.contains(marker) else { return path }
        return destinationLock.locked {
            for (temporary, destination) in destinations where path.hasPrefix(temporary) {
                let rest = path.dropFirst(temporary.count)
                if rest.isEmpty || rest.hasPrefix("/") { return destination + rest }
            }
            return path
        }
    }

    /// Runs `commit` (the rename of `path` into place) where no interrupt can remove `path` halfway, then forgets it.
    static func committing<T>(_ path: String, _ commit: () throws -> T) rethrows -> T {
        defer { forgetDestination(of: path) }
        return try lock.locked {
            defer { live.removeValue(forKey: path) }
            return try commit()
        }
    }

    /// Removes every registered temporary; returns how many. Called with the lock free; takes it and keeps it (the
    /// process ends next).
    static func removeAllForExit() -> Int {
        lock.lock()
        for (path, isFolder) in live {
            if isFolder { removeTree(path) } else { unlink(path) }
        }
        defer { live.removeAll() }
        return live.count
    }

    /// Removes the temporaries in `folder` left by writers of this host that no longer run. Returns their names.
    @discardableResult
    public static func removeAbandoned(in folder: String) -> [String] {
        guard let names = try? directoryEntries(folder) else { return [] }
        let host = hostTag()
        var removed: [String] = []
        for name in names where name.hasPrefix(".") {
            guard let r = name.firstRange(of: marker) else { continue }
            // HOST-PID-START-XXXXXX; the host tag holds no '-' of its own (see hostTag).
            let parts = name[r.upperBound...].split(separator: "-")
            guard parts.count == 4, parts[0] == host, let pid = Int32(parts[1]), let start = UInt64(parts[2]) else { continue }
            if isRunning(pid: pid, start: start) { continue }
            removeTree(folder + "/" + name)
            removed.append(name)
        }
        return removed
    }

    /// Whether process `pid` runs and, where start times are known, is the one that started at `start`.
    static func isRunning(pid: Int32, start: UInt64) -> Bool {
        guard pid > 0 else { return false }
        #if os(Linux)
        guard let now = startTime(of: pid) else { return false }
        return start == 0 || now == start
        #else
        return kill(pid, 0) == 0 || errno == EPERM
        #endif
    }

    /// The start time of process `pid` in clock ticks after boot (field 22 of /proc/PID/stat), Linux only.
    static func startTime(of pid: Int32) -> UInt64? {
        #if os(Linux)
        let fd = open("/proc/\(pid)/stat", O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
        guard n > 0 else { return nil }
        // The command name (field 2) is in parentheses and may hold spaces: count fields after its last ')'.
        guard let close = buffer[..<n].lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = buffer[(close + 1) ..< n].split(separator: UInt8(ascii: " "))
        // fields[0] is field 3 (state), so field 22 is fields[19].
        guard fields.count > 19 else { return nil }
        return UInt64(String(decoding: fields[19], as: UTF8.self))
        #else
        return nil
        #endif
    }

    /// The host name in letters, digits and dots (at most 40), so that it parses back out of a temporary's name.
    static func hostTag() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "host" }
        let name = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        let kept = name.unicodeScalars.filter { ($0.isASCII && ($0.properties.isAlphabetic || ("0" ... "9").contains($0))) || $0 == "." }
        let tag = String(String.UnicodeScalarView(kept.prefix(40)))
        return tag.isEmpty ? "host" : tag
    }

    /// From now on, SIGINT, SIGTERM and SIGHUP end the process through `removeAllForExit`, on a thread of their own.
    /// Call first thing in `main`, before any other thread starts (threads inherit the blocked mask).
    /// `message(signal, removed)` is called after the temporaries are removed, before the process ends.
    public static func handleInterrupts(message: @escaping @Sendable (Int32, Int) -> Void = { _, _ in }) {
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&set, s) }
        guard pthread_sigmask(SIG_BLOCK, &set, nil) == 0 else { return }
        let waiter = InterruptWaiter(set: set, message: message)
        #if canImport(Glibc)
        var thread = pthread_t()
        #else
        var thread: pthread_t?
        #endif
        let context = Unmanaged.passRetained(waiter).toOpaque()
        let started = pthread_create(&thread, nil, { raw in
            #if canImport(Glibc)
            let w = Unmanaged<InterruptWaiter>.fromOpaque(raw!).takeRetainedValue()
            #else
            let w = Unmanaged<InterruptWaiter>.fromOpaque(raw).takeRetainedValue()
            #endif
            w.wait()
            return nil
        }, context)
        if started != 0 {
            Unmanaged<InterruptWaiter>.fromOpaque(context).release()
            pthread_sigmask(SIG_UNBLOCK, &set, nil)
        }
    }
}

final class InterruptWaiter: @unchecked Sendable {
    var set: sigset_t
    let message: @Sendable (Int32, Int) -> Void
    init(set: sigset_t, message: @escaping @Sendable (Int32, Int) -> Void) {
        self.set = set
        self.message = message
    }

    func wait() -> Never {
        var signal: Int32 = 0
        while sigwait(&set, &signal) != 0 {}
        let removed = Temporaries.removeAllForExit()
        message(signal, removed)
        _exit(128 + signal)
    }
}

/// A pthread mutex (the package supports macOS releases older than the Synchronization module's Mutex).
final class SystemLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }

    func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}
