import Foundation
@testable import IngotFormats
import Testing

@Suite("Temporary outputs: names that say who writes them")
struct TemporariesTests {
    func touch(_ path: String, folder: Bool = false) throws {
        if folder {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            FileManager.default.createFile(atPath: path + "/model.safetensors", contents: Data([1, 2, 3]))
        } else {
            FileManager.default.createFile(atPath: path, contents: Data([1, 2, 3]))
        }
    }

    @Test("a temporary's name holds this host, this process and its start time")
    func names() throws {
        let dir = try Repo.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = try OutputFile(path: dir + "/m.gguf")
        let name = String(out.temporaryPath.split(separator: "/").last!)
        let parts = name.dropFirst(".m.gguf.ingot-tmp-".count).split(separator: "-")
        #expect(name.hasPrefix(".m.gguf.ingot-tmp-"))
        #expect(parts.count == 4 && parts[0] == Temporaries.hostTag() && parts[1] == "\(getpid())")
        #if os(Linux)
        #expect(UInt64(parts[2]) == Temporaries.startTime(of: getpid()) && UInt64(parts[2])! > 0)
        #endif
        out.abort()
        #expect(!FileManager.default.fileExists(atPath: out.temporaryPath))
    }

    @Test("a later writer removes what dead writers of this host left, never a live writer's or another host's")
    func abandoned() throws {
        let dir = try Repo.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let host = Temporaries.hostTag()
        let me = getpid()
        let start = Temporaries.startTime(of: me) ?? 0
        // A process id above Linux's largest (2^22) is never running.
        let dead = ".a.gguf.ingot-tmp-\(host)-4194305-77-Ab12Cd"
        let deadFolder = ".hf.ingot-tmp-\(host)-4194306-78-Ef34Gh"
        let live = ".b.gguf.ingot-tmp-\(host)-\(me)-\(start)-Ij56Kl"
        let otherHost = ".c.gguf.ingot-tmp-elsewhere.example-4194305-77-Mn78Op"
        let older = ".d.gguf.ingot-tmp-Qr90St"
        var expected = [dead, deadFolder]
        for n in [dead, live, otherHost, older] { try touch(dir + "/" + n) }
        try touch(dir + "/" + deadFolder, folder: true)
        #if os(Linux)
        // The same process id under another start time: the id was reused, the writer is gone.
        let reused = ".e.gguf.ingot-tmp-\(host)-\(me)-\(start + 1)-Uv12Wx"
        try touch(dir + "/" + reused)
        expected.append(reused)
        #endif
        // Creating an output in the folder clears it up.
        let out = try OutputFile(path: dir + "/new.gguf")
        defer { out.abort() }
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: dir))
        for n in expected { #expect(!left.contains(n), "\(n) should be gone") }
        for n in [live, otherHost, older] { #expect(left.contains(n), "\(n) should stay") }
        #expect(left.contains(String(out.temporaryPath.split(separator: "/").last!)))
    }

    @Test("a temporary folder is registered until it is renamed or discarded")
    func registry() throws {
        let dir = try Repo.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let folder = try TemporaryFolder(beside: dir + "/hf")
        #expect(Temporaries.lock.locked { Temporaries.live[folder.path] } == true)
        try folder.rename(to: dir + "/hf")
        #expect(Temporaries.lock.locked { Temporaries.live[folder.path] } == nil)
        let gone = try TemporaryFolder(beside: dir + "/hf2")
        let path = gone.path
        gone.discard()
        #expect(Temporaries.lock.locked { Temporaries.live[path] } == nil && !FileManager.default.fileExists(atPath: path))
    }

    @Test("an error about a file inside a temporary output folder names the file where the user will look for it")
    func errorsNameTheDestination() throws {
        let dir = try Repo.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let folder = try TemporaryFolder(beside: dir + "/out-hf")
        let inner = folder.path + "/model.safetensors"
        #expect(inner.contains(".ingot-tmp-"))
        let e = FormatError(.writeFailed, field: "output", offset: 7, "write failed", path: inner)
        #expect(e.path == dir + "/out-hf/model.safetensors")
        #expect(FormatError(.writeFailed, field: "output", offset: nil, "x", path: folder.path).path == dir + "/out-hf")
        // A path that only starts like the folder's name is left alone, and so is everything once the folder is gone.
        #expect(Temporaries.userPath(folder.path + "x/a") == folder.path + "x/a")
        folder.discard()
        #expect(Temporaries.userPath(inner) == inner)
    }
}
