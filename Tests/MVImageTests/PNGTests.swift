import MVFormats
import MVImage
import XCTest

final class PNGTests: XCTestCase {
    /// Every colour type and bit depth, plain and interlaced, against the RGB that Pillow's
    /// rules give (grey scaled to 0…255 and replicated, palette looked up, alpha dropped,
    /// 16-bit samples' high byte).
    func testAllColourTypesAndDepthsRoundTrip() throws {
        let combos: [(colorType: Int, depths: [Int])] = [(0, [1, 2, 4, 8, 16]), (2, [8, 16]), (3, [1, 2, 4, 8]), (4, [8, 16]), (6, [8, 16])]
        var random = TestRandom(state: 7)
        for (colorType, depths) in combos {
            for depth in depths {
                for interlaced in [false, true] {
                    for (width, height) in [(1, 1), (3, 2), (13, 11), (9, 17)] {
                        let channels = [0: 1, 2: 3, 3: 1, 4: 2, 6: 4][colorType] ?? 1
                        let maxValue = (1 << depth) - 1
                        let paletteEntries = colorType == 3 ? min(1 << depth, 5) : 0
                        let palette: [UInt8]? = colorType == 3 ? (0..<(3 * paletteEntries)).map { _ in UInt8(random.below(256)) } : nil
                        // Palette indices may run past the palette: Pillow shows those as black.
                        let samples: [[[Int]]] = (0..<height).map { _ in
                            (0..<width).map { _ in (0..<channels).map { _ in random.below(maxValue + 1) } }
                        }
                        let png = makePNG(width: width, height: height, bitDepth: depth, colorType: colorType,
                                          samples: samples, palette: palette, interlaced: interlaced)
                        let name = "ct\(colorType)-d\(depth)-\(interlaced ? "adam7" : "plain")-\(width)x\(height)"
                        let image = try ImageDecoder.decode(bytes: png, name: name)
                        XCTAssertEqual(image.width, width, name)
                        XCTAssertEqual(image.height, height, name)
                        var expected: [UInt8] = []
                        for row in samples {
                            for s in row {
                                func eight(_ v: Int) -> UInt8 { depth == 16 ? UInt8(v >> 8) : UInt8(v * 255 / maxValue) }
                                switch colorType {
                                case 0, 4: expected += [eight(s[0]), eight(s[0]), eight(s[0])]
                                case 3:
                                    let i = s[0]
                                    expected += i < paletteEntries ? Array(palette![(3 * i)..<(3 * i + 3)]) : [0, 0, 0]
                                default: expected += [eight(s[0]), eight(s[1]), eight(s[2])]
                                }
                            }
                        }
                        XCTAssertEqual(image.pixels, expected, name)
                    }
                }
            }
        }
    }

    func testChecksumsAreVerified() throws {
        let samples: [[[Int]]] = [[[1, 2, 3], [4, 5, 6]]]
        let good = makePNG(width: 2, height: 1, bitDepth: 8, colorType: 2, samples: samples)
        XCTAssertEqual(try ImageDecoder.decode(bytes: good, name: "good.png").pixels, [1, 2, 3, 4, 5, 6])

        // A flipped bit in IHDR's data breaks its CRC.
        var badCRC = good
        badCRC[8 + 8 + 3] ^= 0x01
        XCTAssertThrowsError(try ImageDecoder.decode(bytes: badCRC, name: "crc.png")) { error in
            XCTAssertTrue("\(error)".hasPrefix("crc.png: "), "\(error)")
            XCTAssertTrue("\(error)".contains("CRC"), "\(error)")
        }

        // Wrong Adler-32 inside a correctly CRC'd IDAT.
        var raw: [UInt8] = [0, 1, 2, 3, 4, 5, 6]
        var z = zlibStored(raw)
        z[z.count - 1] ^= 0xFF
        let badAdler = pngSignature + pngIHDR(width: 2, height: 1, bitDepth: 8, colorType: 2)
            + pngChunk("IDAT", z) + pngChunk("IEND", [])
        XCTAssertThrowsError(try ImageDecoder.decode(bytes: badAdler, name: "adler.png")) { error in
            XCTAssertTrue("\(error)".contains("Adler-32"), "\(error)")
        }

        // Too little image data for the header's size.
        raw.removeLast()
        let short = pngSignature + pngIHDR(width: 2, height: 1, bitDepth: 8, colorType: 2)
            + pngChunk("IDAT", zlibStored(raw)) + pngChunk("IEND", [])
        XCTAssertThrowsError(try ImageDecoder.decode(bytes: short, name: "short.png"))
    }

    func testRejectsBadHeaders() {
        func png(_ w: UInt32, _ h: UInt32, depth: UInt8 = 8, colorType: UInt8 = 2) -> [UInt8] {
            pngSignature + pngIHDR(width: w, height: h, bitDepth: depth, colorType: colorType)
                + pngChunk("IDAT", zlibStored([0, 0, 0, 0])) + pngChunk("IEND", [])
        }
        let cases: [(String, [UInt8], String)] = [
            ("zero width", png(0, 5), "empty"),
            ("zero height", png(5, 0), "empty"),
            ("gigantic", png(100_000, 100_000), "limit"),
            ("bad depth", png(1, 1, depth: 3), "bit depth"),
            ("bad colour type", png(1, 1, colorType: 5), "colour type"),
            ("palette without PLTE", png(1, 1, colorType: 3), "PLTE"),
        ]
        for (what, bytes, phrase) in cases {
            XCTAssertThrowsError(try ImageDecoder.decode(bytes: bytes, name: what)) { error in
                XCTAssertTrue("\(error)".contains(phrase), "\(what): \(error)")
            }
        }
    }

    /// A header claiming far more pixels than the compressed data could expand to is refused
    /// before any buffer is sized from it, even with no pixel budget.
    func testLyingDimensionsAreRefusedWithoutBudget() {
        let bytes = pngSignature + pngIHDR(width: 100_000, height: 100_000, bitDepth: 8, colorType: 2)
            + pngChunk("IDAT", zlibStored([0, 1, 2, 3])) + pngChunk("IEND", [])
        XCTAssertThrowsError(try ImageDecoder.decode(bytes: bytes, name: "liar.png", maxPixels: Int.max)) { error in
            XCTAssertTrue("\(error)".contains("cannot hold"), "\(error)")
        }
    }
}
