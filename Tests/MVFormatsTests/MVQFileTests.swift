import MVFormats
import TestSupport
import XCTest

final class MVQFileTests: XCTestCase {
    func sample() -> [UInt8] {
        MVQFile.encode(header: ["arch": "test", "n": 3], tensors: [
            MVQFile.Tensor("w", int8: [1, -2, 3, -128, 127], shape: [5]),
            MVQFile.Tensor("b", int32: [1, -70000, Int32.max]),
            MVQFile.Tensor("s", float32: [0.5, 1e-6]),
        ])
    }

    func testRoundTripIsExactAndAligned() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("m.mvq")
        try FileSystem.writeAtomically(path, bytes: sample())
        let r = try MVQReader(path: path)
        XCTAssertEqual(r.model["arch"]?.string, "test")
        XCTAssertEqual(Array(try r.int8s("w")), [1, -2, 3, -128, 127])
        XCTAssertEqual(try r.int32s("b"), [1, -70000, Int32.max])
        XCTAssertEqual(try r.float32s("s"), [0.5, 1e-6])
        for name in ["w", "b", "s"] {
            XCTAssertEqual(Int(bitPattern: try r.raw(name).baseAddress!) % 64, 0, "\(name) is 64-byte aligned in the mapping")
        }
        XCTAssertThrowsError(try r.int32s("w"))
    }

    func testRejectsTruncatedFlippedAndFutureFiles() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let good = sample()
        let path = dir.file("bad.mvq")
        func rejects(_ bytes: [UInt8], _ why: String) {
            try? FileSystem.writeAtomically(path, bytes: bytes)
            XCTAssertThrowsError(try MVQReader(path: path), why)
        }
        for cut in [0, 8, 63, 64, 100, good.count / 2, good.count - 1] { rejects(Array(good[0..<cut]), "truncated at \(cut)") }
        for position in stride(from: 0, to: good.count, by: max(1, good.count / 97)) {
            var flipped = good
            flipped[position] ^= 0x10
            rejects(flipped, "bit flip at \(position)")
        }
        var future = good
        future[8] = UInt8(MVQFile.version + 1)
        rejects(future, "unknown version")
    }

    func testWriteIsAtomicOnFailure() throws {
        XCTAssertThrowsError(try MVQFile.write(header: [:], tensors: [], to: "/nonexistent-dir/x.mvq"))
        XCTAssertFalse(FileSystem.exists("/nonexistent-dir/x.mvq"))
    }
}
