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
