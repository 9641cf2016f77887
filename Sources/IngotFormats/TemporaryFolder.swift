#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A folder created beside its destination, renamed into place when complete, removed otherwise (also when the
/// process is interrupted: see `Temporaries`).
public final class TemporaryFolder {
    public let path: String
    private var done = false

    /// Creates the folder; fails if `destination` exists already.
    public init(beside destination: String) throws {
        try Self.checkDestination(destination)
        let (parent, base) = splitPath(destination)
        Temporaries.removeAbandoned(in: parent)
        var template = Array(Temporaries.template(folder: parent, name: base).utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw FormatError(.writeFailed, field: "output", offset: nil, "cannot create a folder beside '\(destination)': \(String(cString: strerror(errno)))")
        }
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        Temporaries.register(path, folder: true, destination: destination)
    }

    /// Fails as `init` would where `destination` exists already: for a command to say so before its long work.
    public static func checkDestination(_ destination: String) throws {
        var st = stat()
        if lstat(destination, &st) == 0 {
            throw FormatError(.writeFailed, field: "output", offset: nil, "'\(destination)' already exists", path: destination)
        }
    }

    /// Creates the folders above `relative` inside this one.
    public func makeParents(of relative: String) throws {
        var dir = path
        for part in relative.split(separator: "/").dropLast() {
            dir += "/" + part
            if mkdir(dir, 0o755) != 0 && errno != EEXIST {
                throw FormatError(.writeFailed, field: "output", offset: nil, "cannot create '\(dir)': \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Gives the folder an ordinary mode (mkdtemp makes it 0700) and renames it to `destination`.
    public func rename(to destination: String) throws {
        chmod(path, 0o777 & ~OutputFile.umaskValue)
        try Temporaries.committing(path) {
            guard systemRename(path, destination) == 0 else {
                throw FormatError(.writeFailed, field: "output", offset: nil, "cannot rename the finished folder to '\(destination)': \(String(cString: strerror(errno)))")
            }
        }
        done = true
    }

    /// Removes the folder and everything in it.
    public func discard() {
        if !done {
            removeTree(path)
            Temporaries.unregister(path)
        }
        done = true
    }

    deinit { discard() }
}

func removeTree(_ path: String) {
    var st = stat()
    guard lstat(path, &st) == 0 else { return }
    if (st.st_mode & S_IFMT) == S_IFDIR {
        for n in (try? directoryEntries(path)) ?? [] { removeTree(path + "/" + n) }
        rmdir(path)
    } else {
        unlink(path)
    }
}

@inline(__always)
func systemRename(_ a: String, _ b: String) -> Int32 {
    #if canImport(Glibc)
    return Glibc.rename(a, b)
    #else
    return Darwin.rename(a, b)
    #endif
}
