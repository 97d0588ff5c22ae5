#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Small file-system helpers on the C library, so the runtime needs no Foundation.
public enum FileSystem {
    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Reads a whole file into memory.
    public static func read(_ path: String) throws -> [UInt8] {
        let file = try MappedFile(path: path)
        return Array(file.bytes)
    }

    public static func readText(_ path: String) throws -> String {
        String(decoding: try read(path), as: UTF8.self)
    }

    /// Names in a directory (no "." or ".."), sorted by byte order so every run sees the same order.
    public static func list(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw InputError("\(path): cannot open directory (\(errnoDescription()))") }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    public static func join(_ a: String, _ b: String) -> String {
        a.hasSuffix("/") ? a + b : a + "/" + b
    }

    public static func baseName(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        if let i = p.lastIndex(of: "/") { return String(p[p.index(after: i)...]) }
        return String(p)
    }

    public static func directoryName(_ path: String) -> String {
        guard let i = path.lastIndex(of: "/") else { return "." }
        return i == path.startIndex ? "/" : String(path[..<i])
    }

    /// Throws unless a file could be created at `path`: its directory exists and is writable, and
    /// `path` is not a directory. Lets a long job (calibration) fail at once rather than after the
    /// work whose result it could not save.
    public static func checkCanCreate(_ path: String) throws {
        if isSpecialFile(path) {
            guard access(path, W_OK) == 0 else { throw InputError("\(path): cannot write (\(errnoDescription()))") }
            return
        }
        let dir = directoryName(path)
        guard isDirectory(dir) else { throw InputError("\(path): directory \(dir) does not exist") }
        guard !isDirectory(path) else { throw InputError("\(path): is a directory") }
        guard access(dir, W_OK) == 0 else { throw InputError("\(path): cannot write in \(dir) (\(errnoDescription()))") }
    }

    /// Whether `path` (after symbolic links) exists and is neither a regular file nor a directory:
    /// a device such as /dev/null or /dev/stdout's target, a FIFO, a socket.
    public static func isSpecialFile(_ path: String) -> Bool {
        var st = stat()
        guard stat(path, &st) == 0 else { return false }
        let type = st.st_mode & S_IFMT
        return type != S_IFREG && type != S_IFDIR
    }

    /// Writes `bytes` to `path` atomically: a temporary file beside it, flushed, then renamed over
    /// the target. An interrupted write never leaves a partial file at `path`. A special file
    /// (`--output /dev/null`, a FIFO) is written in place instead: renaming over it would replace
    /// the device node itself with a regular file, and it has no partial state to protect.
    public static func writeAtomically(_ path: String, _ write: (inout FileWriter) throws -> Void) throws {
        if isSpecialFile(path) {
            let fd = open(path, O_WRONLY)
            guard fd >= 0 else { throw InputError("\(path): cannot open for writing (\(errnoDescription()))") }
            defer { close(fd) }
            var writer = FileWriter(fd: fd, path: path)
            try write(&writer)
            try writer.flush()
            return
        }
        let tmp = "\(path).tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw InputError("\(path): cannot create (\(errnoDescription()))") }
        var writer = FileWriter(fd: fd, path: path)
        do {
            try write(&writer)
            try writer.flush()
            guard fsync(fd) == 0 else { throw InputError("\(path): cannot sync (\(errnoDescription()))") }
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
        close(fd)
        guard rename(tmp, path) == 0 else {
            let message = errnoDescription()
            unlink(tmp)
            throw InputError("\(path): cannot rename into place (\(message))")
        }
    }

    public static func writeAtomically(_ path: String, bytes: [UInt8]) throws {
        try writeAtomically(path) { try $0.write(bytes) }
    }
}

/// A buffered writer over a file descriptor, counting the bytes it has written.
public struct FileWriter {
    let fd: Int32
    let path: String
    private var buffer: [UInt8] = []
    public private(set) var offset: Int = 0

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
        buffer.reserveCapacity(1 << 20)
    }

    public mutating func write(_ bytes: UnsafeRawBufferPointer) throws {
        buffer.append(contentsOf: bytes)
        offset += bytes.count
        if buffer.count >= 1 << 20 { try flush() }
    }

    public mutating func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    public mutating func writeZeros(_ n: Int) throws {
        try write([UInt8](repeating: 0, count: n))
    }

    public mutating func flush() throws {
        var done = 0
        while done < buffer.count {
            let n = buffer.withUnsafeBytes { systemWrite(fd, $0.baseAddress! + done, $0.count - done) }
            guard n > 0 else { throw InputError("\(path): write failed (\(errnoDescription()))") }
            done += n
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

/// `write(2)`, named so that it does not clash with `FileWriter.write`.
private func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    write(fd, p, n)
}
