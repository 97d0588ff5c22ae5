import MVFormats
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class FileSystemTests: XCTestCase {
    /// checkCanCreate accepts a new file in a writable directory and refuses, with the path in the
    /// message, a missing directory and a path that is a directory; it creates nothing.
    func testCheckCanCreate() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        XCTAssertNoThrow(try FileSystem.checkCanCreate(dir.file("model.mvq")))
        XCTAssertFalse(FileSystem.exists(dir.file("model.mvq")))
        let missing = dir.file("missing/model.mvq")
        XCTAssertThrowsError(try FileSystem.checkCanCreate(missing)) { error in
            XCTAssertTrue("\(error)".contains(missing), "\(error)")
        }
        XCTAssertFalse(FileSystem.exists(dir.file("missing")))
        XCTAssertThrowsError(try FileSystem.checkCanCreate(dir.path))
        XCTAssertNoThrow(try FileSystem.checkCanCreate("relative-name.mvq"))  // the current directory
    }

    /// A special file (`--output /dev/null`, a FIFO) is written in place: the atomic
    /// temporary-and-rename would replace the node itself with a regular file (as root, a device
    /// such as /dev/null). Checked with a FIFO (no privileges needed) and, as root, with private
    /// copies of /dev/null and /dev/full (a write error is reported, the node stays a device).
    func testSpecialFilesAreWrittenInPlace() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let fifo = dir.file("fifo")
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let reader = open(fifo, O_RDONLY | O_NONBLOCK)  // a reader, so opening for writing does not block
        XCTAssertGreaterThanOrEqual(reader, 0)
        defer { close(reader) }
        XCTAssertTrue(FileSystem.isSpecialFile(fifo))
        XCTAssertNoThrow(try FileSystem.checkCanCreate(fifo))
        try FileSystem.writeAtomically(fifo, bytes: Array("written in place".utf8))
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = read(reader, &buffer, 64)
        XCTAssertEqual(String(decoding: buffer.prefix(max(n, 0)), as: UTF8.self), "written in place")
        XCTAssertTrue(FileSystem.isSpecialFile(fifo), "the FIFO was replaced")
        XCTAssertEqual(try FileSystem.list(dir.path), ["fifo"], "no temporary file left beside it")
        XCTAssertFalse(FileSystem.isSpecialFile(dir.path))
        XCTAssertFalse(FileSystem.isSpecialFile(dir.file("missing")))

        guard getuid() == 0 else {
            print("SKIP device-node part of testSpecialFilesAreWrittenInPlace: needs root to create device nodes")
            return
        }
        let null = dir.file("null"), full = dir.file("full")
        // Linux device numbers (major 1, minor 3 and 7): makedev is a C macro Swift cannot call.
        XCTAssertEqual(mknod(null, S_IFCHR | 0o666, dev_t(1 << 8 | 3)), 0)
        XCTAssertEqual(mknod(full, S_IFCHR | 0o666, dev_t(1 << 8 | 7)), 0)
        try FileSystem.writeAtomically(null, bytes: [1, 2, 3])
        XCTAssertTrue(FileSystem.isSpecialFile(null), "the null device was replaced by a file")
        XCTAssertThrowsError(try FileSystem.writeAtomically(full, bytes: [1, 2, 3])) { error in
            XCTAssertTrue("\(error)".contains(full), "\(error)")
        }
        XCTAssertTrue(FileSystem.isSpecialFile(full), "the full device was replaced by a file")
    }
}
