import MVFloat
import MVFormats
import MVImage
import MVInt8
import MVModel
import MVQuant
import MVQuantRuntime
import TestSupport
import XCTest

/// The embedding facade: the same logits as the executors `mvquant infer` runs, bit for bit, on
/// files, RGB bytes with padded rows and pixel values; sessions on two threads sharing one model;
/// every bad argument an `MVQError`, never a trap.
final class RuntimeTests: XCTestCase {
    /// A small int8 model of the default checkpoint, written once (minmax, 16 images).
    static let int8Path: String? = {
        do {
            let checkpoint = try Checkpoint.load(directory: SharedFixtures.defaultModel)
            let pre = try Preprocessor(config: checkpoint.preprocessor!)
            let images = try valImages(perClass: 2).map { try pre.pixelValues(path: $0).values }
            var options = QuantizationOptions()
            options.method = .minmax
            options.threads = 2
            let compiler = try quantize(checkpoint, height: 64, width: 64, imageCount: 16, options: options) { images[$0 % images.count] }.compiler
            let dir = TemporaryDirectory()
            try compiler.model.write(to: dir.file("m.mvq"))
            return dir.file("m.mvq")
        } catch {
            XCTFail("setup failed: \(error)")
            return nil
        }
    }()

    static func valImages(perClass n: Int) throws -> [String] {
        let root = FileSystem.join(SharedFixtures.packageRoot, "Calibration/val")
        var paths: [String] = []
        for c in try FileSystem.list(root).sorted() {
            for f in try FileSystem.list(FileSystem.join(root, c)).sorted().prefix(n) { paths.append(FileSystem.join(FileSystem.join(root, c), f)) }
        }
        return paths
    }

    /// The logits `mvquant infer --images` computes: decode, the model's preprocessor, the executor.
    func referenceLogits(model path: String, image: String) throws -> [Float] {
        if FileSystem.isDirectory(path) {
            let c = try Checkpoint.load(directory: path)
            let x = try Preprocessor(config: c.preprocessor!).pixelValues(path: image)
            return FloatExecutor(checkpoint: c).run(nchw: x.values, height: x.height, width: x.width)
        }
        let m = try QuantizedModel(path: path)
        let x = try Preprocessor(config: m.preprocessor!).pixelValues(path: image)
        return x.values.withUnsafeBufferPointer { try! Int8Executor(model: m, threads: 1).run(nchw: $0, height: x.height, width: x.width) }
    }

    func modelPaths() throws -> [String] {
        [SharedFixtures.defaultModel, try XCTUnwrap(Self.int8Path)]
    }

    func testLogitsBitIdenticalToExecutorsOnFilesRGBAndPixels() throws {
        for path in try modelPaths() {
            let model = try MVQModel(path: path)
            XCTAssertEqual(model.labels.count, 10)
            XCTAssertEqual(model.isInt8, !FileSystem.isDirectory(path))
            let session = try model.makeSession(threads: 2)
            for image in try Self.valImages(perClass: 1).prefix(4) {
                let expected = try referenceLogits(model: path, image: image)
                XCTAssertEqual(try session.run(imageFile: image), expected, "\(path) \(image) file")
                // RGB bytes with 7 bytes of padding per row (and none after the last row).
                let decoded = try ImageDecoder.decode(path: image)
                let stride = decoded.width * 3 + 7
                var padded = [UInt8](repeating: 0xAB, count: (decoded.height - 1) * stride + decoded.width * 3)
                for y in 0..<decoded.height {
                    for x in 0..<(decoded.width * 3) { padded[y * stride + x] = decoded.pixels[y * decoded.width * 3 + x] }
                }
                let rgb = try padded.withUnsafeBytes { try session.run(rgb: $0, width: decoded.width, height: decoded.height, rowBytes: stride) }
                XCTAssertEqual(rgb, expected, "\(path) \(image) rgb")
                let x = try model.preprocessor.pixelValues(for: decoded)
                XCTAssertEqual(try session.run(pixels: x.values, height: x.height, width: x.width), expected, "\(path) \(image) pixels")
            }
        }
    }

    func testTopKMatchesClassifyOrder() throws {
        let model = try MVQModel(path: SharedFixtures.defaultModel)
        let top = model.top(3, of: [0.5, 2, -1, 2, 0, 0, 0, 0, 0, 1])
        XCTAssertEqual(top.map(\.index), [1, 3, 9])
        XCTAssertEqual(top[0].label, model.labels[1])
        XCTAssertEqual(top[0].probability, top[1].probability)
        let total = [0.5, 2, -1, 2, 0, 0, 0, 0, 0, 1].map { exp($0 - 2.0) }.reduce(0, +)
        XCTAssertEqual(top[0].probability, 1 / total, accuracy: 1e-12)
        XCTAssertEqual(model.top(20, of: [1, 2]).count, 2)
    }

    /// One model, two sessions on two threads at once: each gives the single-threaded logits.
    func testTwoThreadsShareOneModel() throws {
        let model = try MVQModel(path: try XCTUnwrap(Self.int8Path))
        let images = try Self.valImages(perClass: 1)
        let serial = try model.makeSession(threads: 1)
        let expected = try images.map { try serial.run(imageFile: $0) }
        final class Results: @unchecked Sendable { var values: [[[Float]]] = [[], []] }
        let results = Results()
        let group = DispatchGroup()
        for t in 0..<2 {
            DispatchQueue.global().async(group: group) {
                let session = try! model.makeSession(threads: 1 + t)
                for _ in 0..<3 { for image in images { results.values[t].append(try! session.run(imageFile: image)) } }
            }
        }
        group.wait()
        for t in 0..<2 {
            XCTAssertEqual(results.values[t].count, 3 * images.count)
            for (i, v) in results.values[t].enumerated() { XCTAssertEqual(v, expected[i % images.count], "thread \(t) run \(i)") }
        }
    }

    func code(_ body: () throws -> Void) -> MVQError.Code? {
        do {
            try body()
            return nil
        } catch let e as MVQError {
            XCTAssertFalse(e.message.isEmpty)
            XCTAssertFalse(e.message.contains("\n"), e.message)
            return e.code
        } catch {
            XCTFail("not an MVQError: \(error)")
            return nil
        }
    }

    func testOpenErrors() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        XCTAssertEqual(code { _ = try MVQModel(path: dir.file("missing.mvq")) }, .notFound)
        try FileSystem.writeAtomically(dir.file("junk.mvq"), bytes: [UInt8](repeating: 7, count: 300))
        XCTAssertEqual(code { _ = try MVQModel(path: dir.file("junk.mvq")) }, .badModel)
        // A truncated copy of a valid model.
        let bytes = try FileSystem.read(try XCTUnwrap(Self.int8Path))
        try FileSystem.writeAtomically(dir.file("cut.mvq"), bytes: Array(bytes.prefix(bytes.count / 2)))
        XCTAssertEqual(code { _ = try MVQModel(path: dir.file("cut.mvq")) }, .badModel)
        XCTAssertEqual(code { _ = try MVQModel(path: dir.path) }, .badModel)  // a directory without a checkpoint
        if let seg = SharedFixtures.path("models/deeplabv3_mobilevit_xxs_cifar10_mosaic", for: "segmentation model refused") {
            XCTAssertEqual(code { _ = try MVQModel(path: seg) }, .unsupported)
        }
        let model = try MVQModel(path: SharedFixtures.defaultModel)
        XCTAssertEqual(code { _ = try model.makeSession(threads: 0) }, .invalidArgument)
        XCTAssertEqual(code { _ = try model.makeSession(threads: 100_000) }, .invalidArgument)
    }

    func testRunErrors() throws {
        for path in try modelPaths() {
            let session = try MVQModel(path: path).makeSession()
            let good = [Float](repeating: 0.5, count: 3 * 64 * 64)
            XCTAssertNil(code { _ = try session.run(pixels: good, height: 64, width: 64) })
            var nan = good
            nan[1234] = .nan
            XCTAssertEqual(code { _ = try session.run(pixels: nan, height: 64, width: 64) }, .badInput)
            nan[1234] = -.infinity
            XCTAssertEqual(code { _ = try session.run(pixels: nan, height: 64, width: 64) }, .badInput)
            XCTAssertEqual(code { _ = try session.run(pixels: good, height: 32, width: 64) }, .invalidArgument)  // count mismatch
            XCTAssertEqual(code { _ = try session.run(pixels: [], height: 0, width: 0) }, .invalidArgument)
            XCTAssertEqual(code { _ = try session.run(pixels: [], height: 5000, width: 64) }, .invalidArgument)
            XCTAssertEqual(code { _ = try session.run(pixels: [], height: 4096, width: 4096) }, .invalidArgument)  // 16 MP
            // The smallest input runs (padding keeps every stage at least 1×1).
            XCTAssertEqual(try session.run(pixels: [0, 0, 0], height: 1, width: 1).count, 10)
            good.withUnsafeBufferPointer { p in
                var small = [Float](repeating: 0, count: 9)
                XCTAssertEqual(code { try small.withUnsafeMutableBufferPointer { try session.run(pixels: p, height: 64, width: 64, into: $0) } }, .invalidArgument)
            }
            let rgb = [UInt8](repeating: 128, count: 40 * 30 * 3)
            try rgb.withUnsafeBytes { b in
                XCTAssertNil(code { _ = try session.run(rgb: b, width: 40, height: 30, rowBytes: 120) })
                XCTAssertEqual(code { _ = try session.run(rgb: b, width: 40, height: 30, rowBytes: 119) }, .invalidArgument)
                XCTAssertEqual(code { _ = try session.run(rgb: b, width: 40, height: 31, rowBytes: 120) }, .invalidArgument)  // buffer too short
                XCTAssertEqual(code { _ = try session.run(rgb: b, width: 0, height: 30, rowBytes: 120) }, .invalidArgument)
                XCTAssertEqual(code { _ = try session.run(rgb: b, width: 40, height: -1, rowBytes: 120) }, .invalidArgument)
                XCTAssertEqual(code { _ = try session.run(rgb: b, width: 20_000, height: 1, rowBytes: 60_000) }, .invalidArgument)
                XCTAssertEqual(try session.run(rgb: b, width: 40, height: 30, rowBytes: 120).count, 10)
            }
            XCTAssertEqual(code { _ = try session.run(imageFile: "/nonexistent/x.png") }, .badInput)
            // Degenerate but valid images run (resized by the short side, centre-cropped).
            for (w, h) in [(1, 1), (1, 300), (300, 1), (2, 3)] {
                let bytes = [UInt8](repeating: 77, count: 3 * w * h)
                let logits = try bytes.withUnsafeBytes { try session.run(rgb: $0, width: w, height: h, rowBytes: 3 * w) }
                XCTAssertEqual(logits.count, 10, "\(w)×\(h)")
                XCTAssertTrue(logits.allSatisfy(\.isFinite), "\(w)×\(h)")
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Dispatch
