#if canImport(Glibc)
import Glibc
#endif
import MVFormats
import MVImage
import TestSupport
import XCTest

/// Every image of ../shared/images against Pillow's decode of it.
final class FixtureDecodeTests: XCTestCase {
    func testLosslessFormatsMatchPillowExactly() throws {
        guard let files = sharedImageFiles(for: "lossless fixtures") else { return }
        let lossless = files.filter { !$0.hasSuffix(".jpg") }
        XCTAssertFalse(lossless.isEmpty)
        for path in lossless {
            let image = try ImageDecoder.decode(path: path)
            let ref = try pillowReference(path)
            XCTAssertEqual(image.width, ref.width, path)
            XCTAssertEqual(image.height, ref.height, path)
            let d = channelDifferences(image.pixels, ref.pixels)
            print("decode \(FileSystem.baseName(path)): \(image.width)x\(image.height) max diff \(d.max)")
            XCTAssertTrue(image.pixels == ref.pixels, "\(path) differs from Pillow (max \(d.max))")
        }
    }

    func testJPEGsMatchPillowClosely() throws {
        guard let files = sharedImageFiles(for: "JPEG fixtures") else { return }
        let jpegs = files.filter { $0.hasSuffix(".jpg") }
        XCTAssertFalse(jpegs.isEmpty)
        for path in jpegs {
            let image = try ImageDecoder.decode(path: path)
            let ref = try pillowReference(path)
            XCTAssertEqual(image.width, ref.width, path)
            XCTAssertEqual(image.height, ref.height, path)
            guard image.pixels.count == ref.pixels.count else { continue }
            let d = channelDifferences(image.pixels, ref.pixels)
            let identical = image.pixels == ref.pixels
            print("decode \(FileSystem.baseName(path)): \(image.width)x\(image.height) mean |diff| R/G/B \(d.mean.map { formatted($0, 4) }) max \(d.max)\(identical ? " (identical)" : "")")
            for c in 0..<3 {
                XCTAssertLessThanOrEqual(d.mean[c], 0.5, "\(path) channel \(c) mean difference")
                XCTAssertLessThanOrEqual(d.max[c], 4, "\(path) channel \(c) max difference")
            }
        }
    }
}

/// Optional wider check: every image in the directory named by MVIMAGE_EXTRA_FIXTURES that has
/// an X.rgb.safetensors (Pillow's decode) beside it must decode identically.
final class ExtraFixtureTests: XCTestCase {
    func testExtraFixturesMatchPillow() throws {
        guard let env = getenv("MVIMAGE_EXTRA_FIXTURES") else {
            print("SKIP extra fixtures: MVIMAGE_EXTRA_FIXTURES is not set")
            return
        }
        let dir = String(cString: env)
        var checked = 0
        var differing: [String] = []
        for name in try FileSystem.list(dir) where !name.hasSuffix(".safetensors") {
            let path = FileSystem.join(dir, name)
            guard FileSystem.exists(path + ".rgb.safetensors") else { continue }
            let ref = try pillowReference(path)
            do {
                let image = try ImageDecoder.decode(path: path)
                let same = image.width == ref.width && image.height == ref.height && image.pixels == ref.pixels
                if !same {
                    let d = channelDifferences(image.pixels, ref.pixels)
                    differing.append("\(name) \(image.width)x\(image.height) vs \(ref.width)x\(ref.height) mean \(d.mean.map { formatted($0, 4) }) max \(d.max)")
                }
            } catch {
                differing.append("\(name): \(error)")
            }
            checked += 1
        }
        print("extra fixtures: \(checked) checked, \(differing.count) differ")
        for d in differing { print("  differs: \(d)") }
        XCTAssertTrue(differing.isEmpty)
    }
}
