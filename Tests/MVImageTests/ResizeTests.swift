#if canImport(Glibc)
import Glibc
#endif
import MVFormats
import MVImage
import TestSupport
import XCTest

final class ResizeTests: XCTestCase {
    /// Optional wider check against Pillow: each .safetensors in MVIMAGE_RESIZE_FIXTURES holds
    /// `rgb` = Pillow's resize of the image named by metadata `source` with `filter`, `width`,
    /// `height`; ours must be identical.
    func testResizeFixturesMatchPillow() throws {
        guard let env = getenv("MVIMAGE_RESIZE_FIXTURES") else {
            print("SKIP resize fixtures: MVIMAGE_RESIZE_FIXTURES is not set")
            return
        }
        let dir = String(cString: env)
        var sources: [String: RGBImage] = [:]
        var checked = 0
        var differing: [String] = []
        for name in try FileSystem.list(dir) where name.hasSuffix(".safetensors") {
            let st = try SafeTensorsFile(path: FileSystem.join(dir, name))
            guard let source = st.metadata["source"], let f = st.metadata["filter"].flatMap({ Int($0) }),
                let w = st.metadata["width"].flatMap({ Int($0) }), let h = st.metadata["height"].flatMap({ Int($0) })
            else { continue }
            let image = try sources[source] ?? ImageDecoder.decode(path: source)
            sources[source] = image
            let ours = try Resize.resize(image, width: w, height: h, filter: try ResampleFilter(pillowCode: f))
            let ref = try st.uint8s("rgb")
            if ours.pixels != ref {
                let d = channelDifferences(ours.pixels, ref)
                differing.append("\(name): mean \(d.mean.map { formatted($0, 4) }) max \(d.max)")
            }
            checked += 1
        }
        print("resize fixtures: \(checked) checked, \(differing.count) differ")
        for d in differing { print("  differs: \(d)") }
        XCTAssertTrue(differing.isEmpty)
    }

    /// A 6x4 test pattern resized with every filter, checked against Pillow 13's output
    /// (CRC-32 of the RGB bytes; bilinear also element by element). 4x3 shrinks both ways,
    /// 9x7 enlarges, 8x2 widens while shrinking the height (Pillow's vertical-first case).
    func testSmallPatternMatchesPillow() throws {
        var pixels: [UInt8] = []
        for y in 0..<4 {
            for x in 0..<6 {
                let r: Int = (x * 40 + y * 13) % 256
                let g: Int = (x * x * 7 + y * 31) % 256
                let b: Int = (255 - x * 20 - y * 50 + 512) % 256
                pixels += [UInt8(r), UInt8(g), UInt8(b)]
            }
        }
        let image = RGBImage(width: 6, height: 4, pixels: pixels)
        let crcs: [String: [UInt32]] = [
            "4x3": [1_226_656_526, 2_407_487_571, 3_797_688_031, 1_678_254_089, 2_874_125_008, 414_387_368],
            "9x7": [1_547_019_224, 3_270_923_246, 2_347_153_195, 2_558_731_233, 583_696_863, 4_240_767_929],
            "8x2": [4_041_526_771, 2_246_826_431, 1_031_263_941, 2_986_430_103, 1_986_366_260, 2_471_132_190],
        ]
        for (size, expected) in crcs {
            let parts = size.split(separator: "x").compactMap { Int($0) }
            for code in 0..<6 {
                let out = try Resize.resize(image, width: parts[0], height: parts[1], filter: try ResampleFilter(pillowCode: code))
                XCTAssertEqual(Checksum.crc32(out.pixels), expected[code], "\(size) filter \(code)")
            }
        }
        let bilinear43: [UInt8] = [19, 12, 233, 75, 34, 204, 133, 84, 176, 189, 160, 148, 35, 50, 173, 91, 72, 144, 149, 122, 116, 205, 198, 88, 50, 87, 113, 106, 109, 84, 164, 159, 56, 220, 123, 28]
        XCTAssertEqual(try Resize.resize(image, width: 4, height: 3, filter: .bilinear).pixels, bilinear43)
        let bilinear82: [UInt8] = [9, 22, 219, 34, 26, 207, 64, 37, 192, 94, 54, 177, 124, 81, 162, 154, 116, 147, 184, 158, 132, 209, 197, 119, 30, 71, 141, 55, 75, 129, 85, 86, 114, 115, 103, 99, 145, 130, 84, 175, 165, 69, 205, 165, 54, 230, 136, 41]
        XCTAssertEqual(try Resize.resize(image, width: 8, height: 2, filter: .bilinear).pixels, bilinear82)
    }

    func testSameSizeAndInvalidSizes() throws {
        let image = RGBImage(width: 2, height: 1, pixels: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try Resize.resize(image, width: 2, height: 1, filter: .lanczos), image)
        XCTAssertThrowsError(try Resize.resize(image, width: 0, height: 1, filter: .bilinear))
        XCTAssertThrowsError(try ResampleFilter(pillowCode: 6))
        // A 1x1 image grows to a flat image with every filter.
        let dot = RGBImage(width: 1, height: 1, pixels: [9, 99, 199])
        for f in ResampleFilter.allCases {
            let big = try Resize.resize(dot, width: 5, height: 3, filter: f)
            XCTAssertEqual(big.pixels, [UInt8]((0..<15).flatMap { _ in [9, 99, 199] as [UInt8] }), "\(f)")
        }
    }
}
