@testable import MVCLI
import MVFormats
import MVImage
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `mvquant stream`: frames written from decoded images give, frame by frame, what `classify`
/// gives on the image files; I420 frames what their RGB conversion gives; a truncated last frame
/// is an error after every whole frame was answered.
final class StreamCommandTests: XCTestCase {
    var dir: TemporaryDirectory!

    override func setUp() { dir = TemporaryDirectory() }
    override func tearDown() { dir.remove() }

    /// Runs the CLI with `input` on file descriptor 0 and file descriptor 1 captured.
    func run(_ arguments: [String], stdin input: [UInt8]) throws -> (Int32, String) {
        let inPath = dir.file("stdin.bin"), outPath = dir.file("stdout.txt")
        try FileSystem.writeAtomically(inPath, bytes: input)
        let inFD = open(inPath, O_RDONLY)
        let outFD = open(outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        XCTAssertGreaterThanOrEqual(inFD, 0)
        XCTAssertGreaterThanOrEqual(outFD, 0)
        fflush(nil)
        let (savedIn, savedOut) = (dup(0), dup(1))
        dup2(inFD, 0)
        dup2(outFD, 1)
        let status = CLI.main(arguments)
        fflush(nil)
        dup2(savedIn, 0)
        dup2(savedOut, 1)
        for fd in [savedIn, savedOut, inFD, outFD] { close(fd) }
        return (status, String(decoding: try FileSystem.read(outPath), as: UTF8.self))
    }

    /// The first image of each class of Calibration/val (all 32×32).
    func images() throws -> [String] {
        let root = FileSystem.join(SharedFixtures.packageRoot, "Calibration/val")
        return try FileSystem.list(root).sorted().map { c in
            FileSystem.join(FileSystem.join(root, c), try FileSystem.list(FileSystem.join(root, c)).sorted()[0])
        }
    }

    /// [label, index, probability] of each entry of a `top` array.
    func tops(_ json: JSON?) throws -> [[String]] {
        try XCTUnwrap(json?.array).map { t in
            [t["label"]?.string ?? "?", t["index"].map { $0.serialized() } ?? "?", t["probability"].map { $0.serialized() } ?? "?"]
        }
    }

    func testRGBFramesAgreeWithClassify() throws {
        let model = SharedFixtures.defaultModel
        let paths = try images()
        var frames: [UInt8] = []
        for p in paths {
            let image = try ImageDecoder.decode(path: p)
            XCTAssertEqual([image.width, image.height], [32, 32])
            frames += image.pixels
        }
        let (status, out) = try run(["stream", "--model", model, "--size", "32x32", "--format", "rgb24", "--top", "3", "--threads", "1"], stdin: frames)
        XCTAssertEqual(status, 0)
        let lines = out.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, paths.count)
        let (classifyStatus, classifyOut) = try run(["classify", "--model", model, "--top", "3", "--threads", "1", "--json"] + paths, stdin: [])
        XCTAssertEqual(classifyStatus, 0)
        let expected = try XCTUnwrap(JSON.parse(Array(classifyOut.utf8)).array)
        XCTAssertEqual(expected.count, paths.count)
        for (i, line) in lines.enumerated() {
            let frame = try JSON.parse(Array(line.utf8))
            XCTAssertEqual(frame["frame"]?.int, i)
            XCTAssertNotNil(frame["ms"]?.double)
            XCTAssertEqual(try tops(frame["top"]), try tops(expected[i]["top"]), "frame \(i) = \(paths[i])")
        }
    }

    func testI420FramesAgreeWithTheirRGBConversion() throws {
        let model = SharedFixtures.defaultModel
        let (w, h) = (33, 21)  // odd sizes: chroma planes of 17×11
        var i420: [UInt8] = [], rgb: [UInt8] = []
        for f in 0..<3 {
            let frame = (0..<YUV.i420FrameBytes(width: w, height: h)).map { UInt8(truncatingIfNeeded: $0 * (7 + f) + f * 31) }
            var converted = [UInt8](repeating: 0, count: 3 * w * h)
            frame.withUnsafeBytes { src in converted.withUnsafeMutableBufferPointer { YUV.i420ToRGB(src, width: w, height: h, into: $0) } }
            i420 += frame
            rgb += converted
        }
        let a = try run(["stream", "--model", model, "--size", "\(w)x\(h)", "--format", "i420", "--threads", "1"], stdin: i420)
        let b = try run(["stream", "--model", model, "--size", "\(w)x\(h)", "--format", "rgb24", "--threads", "1"], stdin: rgb)
        XCTAssertEqual(a.0, 0)
        XCTAssertEqual(b.0, 0)
        let strip = { (s: String) in try s.split(separator: "\n").map { try self.tops(JSON.parse(Array($0.utf8))["top"]) } }
        XCTAssertEqual(try strip(a.1).count, 3)
        XCTAssertEqual(try strip(a.1), try strip(b.1))
    }

    func testTruncatedLastFrameAndBadArguments() throws {
        let model = SharedFixtures.defaultModel
        let frame = [UInt8](repeating: 90, count: 3 * 16 * 8)
        let (status, out) = try run(["stream", "--model", model, "--size", "16x8", "--format", "rgb24"], stdin: frame + frame + Array(frame.prefix(10)))
        XCTAssertEqual(status, 2)
        XCTAssertEqual(out.split(separator: "\n").count, 2, "both whole frames answered before the error")
        XCTAssertEqual(try run(["stream", "--model", model, "--size", "16x8", "--format", "rgb24"], stdin: []).0, 0)
        XCTAssertEqual(try run(["stream", "--model", model, "--size", "16x8", "--format", "nv12"], stdin: frame).0, 1)
        XCTAssertEqual(try run(["stream", "--model", model, "--size", "16", "--format", "rgb24"], stdin: frame).0, 1)
        XCTAssertEqual(try run(["stream", "--model", model, "--size", "0x8", "--format", "rgb24"], stdin: frame).0, 1)
        XCTAssertEqual(try run(["stream", "--model", dir.file("none.mvq"), "--size", "16x8", "--format", "rgb24"], stdin: frame).0, 2)
        if let seg = SharedFixtures.path("models/deeplabv3_mobilevit_xxs_cifar10_mosaic", for: "stream refuses a segmentation model") {
            XCTAssertEqual(try run(["stream", "--model", seg, "--size", "16x8", "--format", "rgb24"], stdin: frame).0, 2)
        }
    }
}
