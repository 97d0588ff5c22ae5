import MVFormats
import TestSupport
import XCTest

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
}
