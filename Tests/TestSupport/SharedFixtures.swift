import MVFormats

/// Where the read-only fixtures of ../shared live, when they are present. Tests that need them
/// call `require` and skip (printing why) when the folder is absent, so `swift test` also passes
/// on a clone without ../shared.
public enum SharedFixtures {
    /// `MVQUANT_SHARED` overrides; otherwise ../shared beside the package root.
    public static let root: String? = {
        if let env = getenv("MVQUANT_SHARED") { return String(cString: env) }
        let candidate = FileSystem.join(packageRoot, "../shared")
        return FileSystem.isDirectory(candidate) ? candidate : nil
    }()

    /// The package root, found from this source file's path.
    public static let packageRoot: String = {
        var dir = FileSystem.directoryName(#filePath)  // Tests/TestSupport
        dir = FileSystem.directoryName(dir)  // Tests
        return FileSystem.directoryName(dir)
    }()

    /// The path below ../shared, or nil (after printing a skip reason naming `what`) when absent.
    public static func path(_ relative: String, for what: String) -> String? {
        guard let root else {
            print("SKIP \(what): ../shared is not present (set MVQUANT_SHARED to point at it)")
            return nil
        }
        let p = FileSystem.join(root, relative)
        guard FileSystem.exists(p) else {
            print("SKIP \(what): \(p) is missing")
            return nil
        }
        return p
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A fresh temporary directory, removed by `remove()`.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init() {
        var template = Array("/tmp/mvquant-test-XXXXXX".utf8CString)
        // The name is read inside the closure: mkdtemp's result points into `template`, whose
        // storage may be freed as soon as the closure returns (it is not used afterwards).
        // Reading it later made the new String's storage overlap the freed one on aarch64.
        let created = template.withUnsafeMutableBufferPointer { buffer -> String? in
            mkdtemp(buffer.baseAddress!).map { String(cString: $0) }
        }
        guard let created else { preconditionFailure("mkdtemp failed") }
        path = created
    }

    public func file(_ name: String) -> String { FileSystem.join(path, name) }

    /// Removes the directory and everything below it.
    public func remove() { Self.removeTree(path) }

    private static func removeTree(_ path: String) {
        if FileSystem.isDirectory(path) {
            for name in (try? FileSystem.list(path)) ?? [] { removeTree(FileSystem.join(path, name)) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    /// Copies a file byte for byte.
    public func copy(_ source: String, to name: String) throws {
        try FileSystem.writeAtomically(file(name), bytes: try FileSystem.read(source))
    }
}

extension SharedFixtures {
    /// The embedded default checkpoint (always in the repository).
    public static var defaultModel: String { FileSystem.join(packageRoot, "Calibration/mobilevit_xxs_cifar10_64") }
}
