import MVFormats
import MVImage
import MVQuantC
import MVQuantRuntime
import TestSupport
import XCTest

/// The C API's functions called from Swift: the same logits as the runtime, every bad call a
/// nonzero code with a one-line message for the calling thread, nothing trapping.
final class CAPITests: XCTestCase {
    func lastError() -> String { String(cString: mvq_last_error()) }

    func open(_ path: String) throws -> OpaquePointer {
        var model: OpaquePointer?
        XCTAssertEqual(mvq_model_open(path, &model), 0, lastError())
        return try XCTUnwrap(model)
    }

    func session(_ model: OpaquePointer, threads: Int32 = 1) throws -> OpaquePointer {
        var session: OpaquePointer?
        XCTAssertEqual(mvq_session_create(model, threads, &session), 0, lastError())
        return try XCTUnwrap(session)
    }

    func testLabelsAndLogitsMatchTheRuntime() throws {
        for path in [SharedFixtures.defaultModel, try XCTUnwrap(RuntimeTests.int8Path)] {
            let model = try open(path)
            defer { mvq_model_close(model) }
            let runtime = try MVQModel(path: path)
            XCTAssertEqual(Int(mvq_model_num_labels(model)), runtime.labels.count)
            for (i, label) in runtime.labels.enumerated() { XCTAssertEqual(String(cString: try XCTUnwrap(mvq_model_label(model, Int32(i)))), label) }
            var h: Int32 = 0, w: Int32 = 0
            XCTAssertEqual(mvq_model_input_size(model, &h, &w), 0)
            XCTAssertEqual([h, w], [64, 64])
            let s = try session(model, threads: 2)
            defer { mvq_session_destroy(s) }
            let reference = try runtime.makeSession()
            for image in try RuntimeTests.valImages(perClass: 1).prefix(3) {
                let expected = try reference.run(imageFile: image)
                var logits = [Float](repeating: -1, count: 11)
                XCTAssertEqual(mvq_session_run_file(s, image, &logits, 11), 0, lastError())
                XCTAssertEqual(Array(logits.prefix(10)), expected)
                XCTAssertEqual(logits[10], -1)  // only the label count is written
                let decoded = try ImageDecoder.decode(path: image)
                logits = [Float](repeating: 0, count: 10)
                XCTAssertEqual(mvq_session_run_rgb(s, decoded.pixels, Int32(decoded.width), Int32(decoded.height), Int32(decoded.width * 3), &logits, 10), 0, lastError())
                XCTAssertEqual(logits, expected)
                let x = try runtime.preprocessor.pixelValues(for: decoded)
                logits = [Float](repeating: 0, count: 10)
                XCTAssertEqual(mvq_session_run_pixels(s, x.values, Int32(x.height), Int32(x.width), &logits, 10), 0, lastError())
                XCTAssertEqual(logits, expected)
            }
        }
        XCTAssertFalse(String(cString: mvq_version()).isEmpty)
    }

    /// Each bad call: its code, a one-line message naming the problem, and NULL outputs.
    func testErrorPaths() throws {
        func expect(_ code: Int32, _ expected: Int32, _ fragment: String, line: UInt = #line) {
            XCTAssertEqual(code, expected, "got \(String(cString: mvq_error_name(code))): \(lastError())", line: line)
            XCTAssertTrue(lastError().contains(fragment), "'\(lastError())' lacks '\(fragment)'", line: line)
            XCTAssertFalse(lastError().contains("\n"), line: line)
        }
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var m: OpaquePointer? = OpaquePointer(bitPattern: 0x1234)
        expect(mvq_model_open(nil, &m), 1, "path is NULL")
        XCTAssertNil(m)
        expect(mvq_model_open(SharedFixtures.defaultModel, nil), 1, "model is NULL")
        m = OpaquePointer(bitPattern: 0x1234)
        expect(mvq_model_open(dir.file("none.mvq"), &m), 2, "none.mvq: no such file")
        XCTAssertNil(m)
        try FileSystem.writeAtomically(dir.file("bad.mvq"), bytes: Array("MVQUANT\0garbage".utf8) + [UInt8](repeating: 0, count: 100))
        expect(mvq_model_open(dir.file("bad.mvq"), &m), 3, "bad.mvq")
        XCTAssertNil(m)
        if let seg = SharedFixtures.path("models/deeplabv3_mobilevit_xxs_cifar10_mosaic", for: "C API: segmentation refused") {
            expect(mvq_model_open(seg, &m), 4, "segmentation")
            XCTAssertNil(m)
        }
        mvq_model_close(nil)
        mvq_session_destroy(nil)
        XCTAssertEqual(mvq_model_num_labels(nil), -1)
        XCTAssertNil(mvq_model_label(nil, 0))

        let model = try open(SharedFixtures.defaultModel)
        defer { mvq_model_close(model) }
        XCTAssertNil(mvq_model_label(model, 10))
        XCTAssertTrue(lastError().contains("index 10"))
        XCTAssertNil(mvq_model_label(model, -1))
        var s: OpaquePointer? = OpaquePointer(bitPattern: 0x1234)
        expect(mvq_session_create(model, 0, &s), 1, "threads 0")
        XCTAssertNil(s)
        expect(mvq_session_create(nil, 1, &s), 1, "model is NULL")
        expect(mvq_session_create(model, 1, nil), 1, "session is NULL")
        let session = try self.session(model)
        defer { mvq_session_destroy(session) }

        var logits = [Float](repeating: 0, count: 10)
        let rgb = [UInt8](repeating: 100, count: 32 * 32 * 3)
        XCTAssertEqual(mvq_session_run_rgb(session, rgb, 32, 32, 96, &logits, 10), 0)
        expect(mvq_session_run_rgb(nil, rgb, 32, 32, 96, &logits, 10), 1, "session is NULL")
        expect(mvq_session_run_rgb(session, nil, 32, 32, 96, &logits, 10), 1, "rgb is NULL")
        expect(mvq_session_run_rgb(session, rgb, 32, 32, 96, nil, 10), 1, "logits is NULL")
        expect(mvq_session_run_rgb(session, rgb, 32, 32, 96, &logits, 9), 1, "capacity 9")
        expect(mvq_session_run_rgb(session, rgb, 0, 32, 96, &logits, 10), 1, "image size")
        expect(mvq_session_run_rgb(session, rgb, 32, -5, 96, &logits, 10), 1, "image size")
        expect(mvq_session_run_rgb(session, rgb, 32, 32, 95, &logits, 10), 1, "row_bytes 95")
        expect(mvq_session_run_rgb(session, rgb, 100_000, 1, 300_000, &logits, 10), 1, "image size")
        expect(mvq_session_run_rgb(session, rgb, 16_000, 16_000, 48_000, &logits, 10), 1, "image size")

        let pixels = [Float](repeating: 0.25, count: 3 * 64 * 64)
        XCTAssertEqual(mvq_session_run_pixels(session, pixels, 64, 64, &logits, 10), 0)
        expect(mvq_session_run_pixels(nil, pixels, 64, 64, &logits, 10), 1, "session is NULL")
        expect(mvq_session_run_pixels(session, nil, 64, 64, &logits, 10), 1, "nchw is NULL")
        expect(mvq_session_run_pixels(session, pixels, 64, 64, &logits, 0), 1, "capacity 0")
        expect(mvq_session_run_pixels(session, pixels, 0, 64, &logits, 10), 1, "input size")
        expect(mvq_session_run_pixels(session, pixels, 64, -64, &logits, 10), 1, "input size")
        expect(mvq_session_run_pixels(session, pixels, 4097, 1, &logits, 10), 1, "input size")
        expect(mvq_session_run_pixels(session, pixels, 4096, 4096, &logits, 10), 1, "input size")
        var nan = pixels
        nan[777] = .nan
        expect(mvq_session_run_pixels(session, nan, 64, 64, &logits, 10), 5, "NaN")
        expect(mvq_session_run_file(session, dir.file("missing.png"), &logits, 10), 5, "missing.png")
        expect(mvq_session_run_file(session, nil, &logits, 10), 1, "path is NULL")
    }

    /// The last error is per thread: a failure on another thread does not replace this one's, and
    /// the returned pointer stays valid until this thread fails again.
    func testLastErrorIsPerThread() throws {
        var m: OpaquePointer?
        XCTAssertNotEqual(mvq_model_open("/nonexistent/first.mvq", &m), 0)
        let mine = mvq_last_error()
        let done = DispatchSemaphore(value: 0)
        final class Box: @unchecked Sendable { var message = "" }
        let other = Box()
        PThread.detach {
            var m: OpaquePointer?
            other.message = String(cString: mvq_last_error())
            _ = mvq_model_open("/nonexistent/second.mvq", &m)
            other.message += "|" + String(cString: mvq_last_error())
            done.signal()
        }
        done.wait()
        XCTAssertEqual(other.message, "|/nonexistent/second.mvq: no such file or directory")
        XCTAssertEqual(String(cString: mine), "/nonexistent/first.mvq: no such file or directory")
        XCTAssertEqual(mvq_last_error(), mine)
    }
}

/// A detached pthread running `body` (Foundation's Thread is not used by this package).
enum PThread {
    static func detach(_ body: @escaping @Sendable () -> Void) {
        final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
        var thread = pthread_t()
        let arg = Unmanaged.passRetained(Box(body)).toOpaque()
        let r = pthread_create(&thread, nil, { arg in
            Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue().body()
            return nil
        }, arg)
        precondition(r == 0)
        pthread_detach(thread)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Dispatch
