#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory. Tensors in safetensors and .mvq files are read in
/// place from the mapping, so loading a model copies nothing it does not have to convert.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let count: Int
    private let base: UnsafeMutableRawPointer?

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw InputError("\(path): cannot open (\(errnoDescription()))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw InputError("\(path): cannot stat (\(errnoDescription()))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw InputError("\(path): not a regular file") }
        count = Int(st.st_size)
        if count == 0 {
            base = nil
            return
        }
        let p = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw InputError("\(path): cannot map (\(errnoDescription()))") }
        base = p
    }

    deinit {
        if let base { munmap(base, count) }
    }

    /// The mapped bytes. Valid for the lifetime of this object.
    public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base.map { UnsafeRawPointer($0) }, count: count)
    }
}

func errnoDescription() -> String {
    String(cString: strerror(errno))
}
