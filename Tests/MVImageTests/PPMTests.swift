import MVFormats
import MVImage
import TestSupport
import XCTest

final class PPMTests: XCTestCase {
    func testBinaryPixmapWithComments() throws {
        let header = Array("P6\n# written by a test\n3 2 # width height\n255\n".utf8)
        let raster: [UInt8] = Array(0..<18)
        let image = try ImageDecoder.decode(bytes: header + raster, name: "t.ppm")
        XCTAssertEqual(image.width, 3)
        XCTAssertEqual(image.height, 2)
        XCTAssertEqual(image.pixels, raster)
    }

    func testBinaryPixmapWrittenToDisk() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("image.ppm")
        var bytes = Array("P6 2 2 255\n".utf8)
        bytes += [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]
        try writeFile(path, bytes)
        let image = try ImageDecoder.decode(path: path)
        XCTAssertEqual(image.pixel(x: 1, y: 0).g, 255)
        XCTAssertEqual(image.pixel(x: 1, y: 1).b, 30)
    }

    func testPlainFormatsAndScaling() throws {
        // P2, maxval 4: round(v / 4 * 255) with Python's half-to-even rounding.
        let pgm = Array("P2\n3 1\n4\n0 2\n# comment in the raster\n 4\n".utf8)
        let grey = try ImageDecoder.decode(bytes: pgm, name: "t.pgm")
        XCTAssertEqual(grey.pixels, [0, 0, 0, 128, 128, 128, 255, 255, 255])
        // P3, maxval 255 keeps values.
        let ppm = Array("P3 1 2 255 1 2 3 250 251 252".utf8)
        XCTAssertEqual(try ImageDecoder.decode(bytes: ppm, name: "t.ppm").pixels, [1, 2, 3, 250, 251, 252])
    }

    func testBinaryMaxvals() throws {
        // maxval 1000 (two bytes per sample, big-endian): round(v / 1000 * 255).
        var bytes = Array("P6 1 1 1000\n".utf8)
        bytes += [0x03, 0xE8, 0x01, 0xF4, 0x00, 0x02]  // 1000, 500, 2
        XCTAssertEqual(try ImageDecoder.decode(bytes: bytes, name: "16.ppm").pixels, [255, 128, 1])
        // maxval 7 in one byte; samples above maxval clamp to 255 as in Pillow.
        let p5 = Array("P5 3 1 7\n".utf8) + [7, 3, 200]
        XCTAssertEqual(try ImageDecoder.decode(bytes: p5, name: "7.pgm").pixels, [255, 255, 255, 109, 109, 109, 255, 255, 255])
    }

    func testRejectsBadFiles() {
        let cases: [(String, [UInt8])] = [
            ("truncated raster", Array("P6 2 2 255\n".utf8) + [1, 2, 3]),
            ("zero size", Array("P6 0 2 255\n".utf8)),
            ("maxval zero", Array("P5 1 1 0\n".utf8) + [0]),
            ("maxval too big", Array("P5 1 1 65536\n".utf8) + [0, 0]),
            ("not a number", Array("P5 1 x 255\n".utf8)),
            ("header ends", Array("P6 1".utf8)),
            ("plain value over maxval", Array("P2 1 1 4 5".utf8)),
            ("plain too few", Array("P3 1 1 255 1 2".utf8)),
            ("too many digits", Array("P5 12345678901 1 255\n".utf8)),
            ("gigantic", Array("P6 99999 99999 255\n".utf8)),
        ]
        for (what, bytes) in cases {
            XCTAssertThrowsError(try ImageDecoder.decode(bytes: bytes, name: what), what) { error in
                XCTAssertTrue(error is InputError || error is DamagedImageError, what)
                XCTAssertTrue("\(error)".hasPrefix("\(what): "), "\(error)")
            }
        }
    }
}
