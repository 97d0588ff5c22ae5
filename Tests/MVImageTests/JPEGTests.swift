import MVFormats
import MVImage
import XCTest

/// Hand-built JPEG streams: minimal tables where the DC code "0" means a zero difference and
/// the AC code "0" means end of block, so a run of zero bits decodes to flat grey blocks.
enum TinyJPEG {
    static let soi: [UInt8] = [0xFF, 0xD8]
    static let eoi: [UInt8] = [0xFF, 0xD9]

    static func segment(_ marker: UInt8, _ payload: [UInt8]) -> [UInt8] {
        let n = payload.count + 2
        return [0xFF, marker, UInt8(n >> 8), UInt8(n & 0xFF)] + payload
    }

    static let dqt = segment(0xDB, [0x00] + [UInt8](repeating: 1, count: 64))
    static let dht = segment(0xC4, join([0x00, 1], [UInt8](repeating: 0, count: 15), [0x00],
                                        [0x10, 1], [UInt8](repeating: 0, count: 15), [0x00]))

    /// Concatenation as one call: long `+` chains of array literals take Swift 6.0's type checker
    /// minutes (the aarch64 toolchain), while this is instant.
    static func join(_ parts: [UInt8]...) -> [UInt8] { parts.flatMap { $0 } }

    /// SOF with the given marker, size and (id, sampling) components.
    static func sof(_ marker: UInt8 = 0xC0, precision: UInt8 = 8, width: Int, height: Int,
                    components: [(UInt8, UInt8)] = [(1, 0x11)]) -> [UInt8]
    {
        var p: [UInt8] = [precision, UInt8(height >> 8), UInt8(height & 0xFF), UInt8(width >> 8), UInt8(width & 0xFF),
                          UInt8(components.count)]
        for (id, hv) in components { p += [id, hv, 0] }
        return segment(marker, p)
    }

    static func sos(_ ids: [UInt8]) -> [UInt8] {
        var p: [UInt8] = [UInt8(ids.count)]
        for id in ids { p += [id, 0x00] }
        return segment(0xDA, p + [0, 63, 0])
    }
}

final class JPEGTests: XCTestCase {
    func testFlatGreyFromZeroBits() throws {
        // 16x16 grey: four blocks of two zero bits each.
        let grey = TinyJPEG.join(TinyJPEG.soi, TinyJPEG.dqt, TinyJPEG.sof(width: 16, height: 16), TinyJPEG.dht,
                                 TinyJPEG.sos([1]), [0x00], TinyJPEG.eoi)
        let image = try ImageDecoder.decode(bytes: grey, name: "grey.jpg")
        XCTAssertEqual(image.width, 16)
        XCTAssertEqual(image.pixels, [UInt8](repeating: 128, count: 16 * 16 * 3))

        // 4:2:0 colour, odd size: one MCU of six blocks, twelve zero bits.
        let colour = TinyJPEG.join(TinyJPEG.soi, TinyJPEG.dqt,
                                   TinyJPEG.sof(width: 13, height: 9, components: [(1, 0x22), (2, 0x11), (3, 0x11)]), TinyJPEG.dht,
                                   TinyJPEG.sos([1, 2, 3]), [0x00, 0x0F], TinyJPEG.eoi)
        let rgb = try ImageDecoder.decode(bytes: colour, name: "colour.jpg")
        XCTAssertEqual(rgb.width, 13)
        XCTAssertEqual(rgb.height, 9)
        XCTAssertEqual(rgb.pixels, [UInt8](repeating: 128, count: 13 * 9 * 3))
    }

    func testRestartMarkers() throws {
        // Restart after every block; each interval is "00" padded with ones.
        let dri = TinyJPEG.segment(0xDD, [0, 1])
        var data: [UInt8] = []
        for k in 0..<4 {
            data.append(0x3F)
            if k < 3 { data += [0xFF, 0xD0 + UInt8(k)] }
        }
        let jpeg = TinyJPEG.join(TinyJPEG.soi, TinyJPEG.dqt, TinyJPEG.sof(width: 16, height: 16), TinyJPEG.dht, dri,
                                 TinyJPEG.sos([1]), data, TinyJPEG.eoi)
        let image = try ImageDecoder.decode(bytes: jpeg, name: "restart.jpg")
        XCTAssertEqual(image.pixels, [UInt8](repeating: 128, count: 16 * 16 * 3))
    }

    func testUnsupportedAndInvalidFrames() {
        let cases: [(String, [UInt8], String)] = [
            ("gigantic", TinyJPEG.sof(width: 65535, height: 65535), "limit"),
            ("zero width", TinyJPEG.sof(width: 0, height: 8), "empty"),
            ("zero height", TinyJPEG.sof(width: 8, height: 0), "DNL"),
            ("12-bit", TinyJPEG.sof(precision: 12, width: 8, height: 8), "12-bit"),
            ("arithmetic", TinyJPEG.sof(0xC9, width: 8, height: 8), "arithmetic"),
            ("lossless", TinyJPEG.sof(0xC3, width: 8, height: 8), "lossless"),
            ("two components", TinyJPEG.sof(width: 8, height: 8, components: [(1, 0x11), (2, 0x11)]), "2 components"),
            ("bad sampling", TinyJPEG.sof(width: 8, height: 8, components: [(1, 0x51), (2, 0x11), (3, 0x11)]), "sampling"),
            ("fractional sampling", TinyJPEG.sof(width: 8, height: 8, components: [(1, 0x31), (2, 0x21), (3, 0x11)]), "fractional"),
        ]
        for (what, sof, phrase) in cases {
            let bytes = TinyJPEG.join(TinyJPEG.soi, TinyJPEG.dqt, sof, TinyJPEG.dht, TinyJPEG.sos([1]), [0x00], TinyJPEG.eoi)
            XCTAssertThrowsError(try ImageDecoder.decode(bytes: bytes, name: what), what) { error in
                XCTAssertTrue("\(error)".hasPrefix("\(what): "), "\(error)")
                XCTAssertTrue("\(error)".contains(phrase), "\(what): \(error)")
            }
        }
    }

    /// With no pixel budget at all, a header claiming 65535x65535 on a few bytes of data is
    /// still refused before the component planes are allocated.
    func testLyingSizeWithoutBudgetIsRefusedBeforeAllocation() {
        let bytes = TinyJPEG.join(TinyJPEG.soi, TinyJPEG.dqt, TinyJPEG.sof(width: 65535, height: 65535), TinyJPEG.dht,
                                  TinyJPEG.sos([1]), [UInt8](repeating: 0, count: 100), TinyJPEG.eoi)
        XCTAssertThrowsError(try ImageDecoder.decode(bytes: bytes, name: "liar.jpg", maxPixels: Int.max)) { error in
            XCTAssertTrue("\(error)".contains("cannot hold"), "\(error)")
        }
    }

    func testMissingTablesAndTruncation() {
        let noTables = TinyJPEG.join(TinyJPEG.soi, TinyJPEG.sof(width: 8, height: 8), TinyJPEG.sos([1]), [0x00], TinyJPEG.eoi)
        XCTAssertThrowsError(try ImageDecoder.decode(bytes: noTables, name: "notables.jpg"))
        let noScan = TinyJPEG.join(TinyJPEG.soi, TinyJPEG.dqt, TinyJPEG.sof(width: 8, height: 8), TinyJPEG.eoi)
        XCTAssertThrowsError(try ImageDecoder.decode(bytes: noScan, name: "noscan.jpg"))
        // 64x64 needs 64 blocks (128 bits); 4 bytes of data is not enough.
        let short = TinyJPEG.join(TinyJPEG.soi, TinyJPEG.dqt, TinyJPEG.sof(width: 64, height: 64), TinyJPEG.dht,
                                  TinyJPEG.sos([1]), [0, 0, 0, 0])
        XCTAssertThrowsError(try ImageDecoder.decode(bytes: short, name: "short.jpg")) { error in
            XCTAssertTrue("\(error)".contains("truncated"), "\(error)")
        }
    }
}
