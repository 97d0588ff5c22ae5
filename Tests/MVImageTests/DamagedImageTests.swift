#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import MVFormats
import MVImage
import XCTest

/// The damaged-image policy: damage is a `DamagedImageError` naming the file, the damage and
/// the offset by default; `recoverDamaged` decodes past it and reports it in `RGBImage.damage`.
final class DamagedImageTests: XCTestCase {
    let recovering = DecodeOptions(recoverDamaged: true)

    /// The damage a strict decode of `bytes` throws (failing the test if it throws none or another error).
    func damage(_ bytes: [UInt8], _ name: String, file: StaticString = #filePath, line: UInt = #line) -> DamagedImageError? {
        do {
            _ = try ImageDecoder.decode(bytes: bytes, name: name)
            XCTFail("\(name): decoded, expected a DamagedImageError", file: file, line: line)
        } catch let e as DamagedImageError {
            XCTAssertEqual(e.file, name, file: file, line: line)
            XCTAssertTrue(e.description.hasPrefix("\(name): "), e.description, file: file, line: line)
            XCTAssertFalse(e.description.contains("\n"), file: file, line: line)
            return e
        } catch {
            XCTFail("\(name): \(error), expected a DamagedImageError", file: file, line: line)
        }
        return nil
    }

    func testJPEGWithoutEOIIsTruncated() throws {
        // 16x16 flat grey whose file stops right after the scan data.
        let bytes = TinyJPEG.join(TinyJPEG.soi, TinyJPEG.dqt, TinyJPEG.sof(width: 16, height: 16), TinyJPEG.dht,
                                  TinyJPEG.sos([1]), [0x00])
        let e = try XCTUnwrap(damage(bytes, "noeoi.jpg"))
        XCTAssertEqual(e.damage, .truncated)
        XCTAssertEqual(e.offset, bytes.count)
        XCTAssertTrue(e.description.contains("truncated JPEG file at byte \(bytes.count)"), e.description)
        XCTAssertTrue(e.description.contains("EOI"), e.description)
        let image = try ImageDecoder.decode(bytes: bytes, name: "noeoi.jpg", options: recovering)
        XCTAssertEqual(image.pixels, [UInt8](repeating: 128, count: 16 * 16 * 3))
        XCTAssertEqual(image.damage?.damage, .truncated)
        XCTAssertNil(try ImageDecoder.decode(bytes: bytes + TinyJPEG.eoi, name: "whole.jpg").damage)
    }

    func testJPEGScanCutShortIsTruncatedAndPaddedWhenRecovering() throws {
        // 64x64 needs 64 blocks of two bits; 8 bytes hold 32 of them.
        let bytes = TinyJPEG.join(TinyJPEG.soi, TinyJPEG.dqt, TinyJPEG.sof(width: 64, height: 64), TinyJPEG.dht,
                                  TinyJPEG.sos([1]), [UInt8](repeating: 0, count: 8))
        let e = try XCTUnwrap(damage(bytes, "short.jpg"))
        XCTAssertEqual(e.damage, .truncated)
        XCTAssertTrue(e.description.contains("ends early"), e.description)
        // Recovering pads with zero bits, which here decode as the same flat grey.
        let image = try ImageDecoder.decode(bytes: bytes, name: "short.jpg", options: recovering)
        XCTAssertEqual(image.pixels, [UInt8](repeating: 128, count: 64 * 64 * 3))
        XCTAssertNotNil(image.damage)
    }

    /// Bytes that belong to no block before a restart marker (libjpeg: "extraneous bytes before
    /// marker"): refused with where they start; recovering resumes at the marker.
    func testBytesBeforeRestartMarker() throws {
        let dri = TinyJPEG.segment(0xDD, [0, 1])
        let head = TinyJPEG.join(TinyJPEG.soi, TinyJPEG.dqt, TinyJPEG.sof(width: 16, height: 16), TinyJPEG.dht, dri, TinyJPEG.sos([1]))
        func scan(junk: [UInt8], markers: [UInt8] = [0, 1, 2]) -> [UInt8] {
            var data: [UInt8] = []
            for k in 0..<4 {
                data.append(0x3F)
                if k == 0 { data += junk }
                if k < 3 { data += [0xFF, 0xD0 + markers[k]] }
            }
            return head + data + TinyJPEG.eoi
        }
        let grey = [UInt8](repeating: 128, count: 16 * 16 * 3)
        XCTAssertEqual(try ImageDecoder.decode(bytes: scan(junk: []), name: "clean.jpg").pixels, grey)

        let junk = scan(junk: [0x12, 0x34, 0x56, 0x78])
        let e = try XCTUnwrap(damage(junk, "junk.jpg"))
        XCTAssertEqual(e.damage, .corruptData)
        XCTAssertEqual(e.offset, head.count + 1, "where the junk starts")
        XCTAssertTrue(e.description.contains("at byte \(head.count + 1)"), e.description)
        XCTAssertTrue(e.detail.contains("4 bytes") && e.detail.contains("RST0"), e.detail)
        let recovered = try ImageDecoder.decode(bytes: junk, name: "junk.jpg", options: recovering)
        XCTAssertEqual(recovered.pixels, grey)
        XCTAssertEqual(recovered.damage, e)

        let outOfSequence = scan(junk: [], markers: [0, 2, 3])
        let s = try XCTUnwrap(damage(outOfSequence, "sequence.jpg"))
        XCTAssertTrue(s.detail.contains("RST2 where RST1 was expected"), s.detail)
        XCTAssertEqual(try ImageDecoder.decode(bytes: outOfSequence, name: "sequence.jpg", options: recovering).pixels, grey)
    }

    func testInvalidHuffmanCodeHasAnOffset() throws {
        // The DC table has the single code "0": a 1 bit starts no code.
        let bytes = TinyJPEG.join(TinyJPEG.soi, TinyJPEG.dqt, TinyJPEG.sof(width: 8, height: 8), TinyJPEG.dht,
                                  TinyJPEG.sos([1]), [0xF0, 0x00, 0x00], TinyJPEG.eoi)
        let e = try XCTUnwrap(damage(bytes, "code.jpg"))
        XCTAssertEqual(e.damage, .corruptData)
        XCTAssertTrue(e.detail.contains("bad Huffman code"), e.detail)
        XCTAssertNotNil(e.offset)
        XCTAssertNoThrow(try ImageDecoder.decode(bytes: bytes, name: "code.jpg", options: recovering))
    }

    /// PNG: a missing IEND and bad checksums are damage (Pillow reads past them); recovering
    /// gives the intact pixels.
    func testPNGEndAndChecksums() throws {
        let samples: [[[Int]]] = [[[1, 2, 3], [4, 5, 6]]]
        let good = makePNG(width: 2, height: 1, bitDepth: 8, colorType: 2, samples: samples)
        let iend = pngChunk("IEND", [])
        XCTAssertEqual(Array(good.suffix(iend.count)), iend)

        let noIEND = Array(good.dropLast(iend.count))
        let e = try XCTUnwrap(damage(noIEND, "noiend.png"))
        XCTAssertEqual(e.damage, .truncated)
        XCTAssertEqual(e.offset, noIEND.count)
        XCTAssertTrue(e.detail.contains("IEND"), e.detail)

        var badCRC = good
        badCRC[good.count - iend.count - 1] ^= 1  // the last byte of IDAT's CRC
        let c = try XCTUnwrap(damage(badCRC, "crc.png"))
        XCTAssertEqual(c.damage, .badChecksum)
        XCTAssertTrue(c.detail.contains("IDAT"), c.detail)

        var z = zlibStored([0, 1, 2, 3, 4, 5, 6])
        z[z.count - 1] ^= 0xFF
        let badAdler = pngSignature + pngIHDR(width: 2, height: 1, bitDepth: 8, colorType: 2) + pngChunk("IDAT", z) + iend
        XCTAssertEqual(try XCTUnwrap(damage(badAdler, "adler.png")).damage, .badChecksum)

        for (name, bytes) in [("noiend.png", noIEND), ("crc.png", badCRC), ("adler.png", badAdler)] {
            let image = try ImageDecoder.decode(bytes: bytes, name: name, options: recovering)
            XCTAssertEqual(image.pixels, [1, 2, 3, 4, 5, 6], name)
            XCTAssertNotNil(image.damage, name)
        }
        // Image data cut short cannot be recovered: it is refused either way.
        let cut = Array(good.prefix(good.count - iend.count - 8))
        XCTAssertEqual(damage(cut, "cut.png")?.damage, .truncated)
        XCTAssertThrowsError(try ImageDecoder.decode(bytes: cut, name: "cut.png", options: recovering))
    }

    /// The two files of Pillow's corpus the issue names, when the corpus is there.
    func testPillowCorpusFiles() throws {
        guard let env = getenv("MVQUANT_IMAGE_CORPUS") else {
            print("SKIP Pillow's damaged files: MVQUANT_IMAGE_CORPUS is not set")
            return
        }
        let dir = FileSystem.join(String(cString: env), "files/pillow")
        let truncated = FileSystem.join(dir, "truncated_jpeg.jpg")
        XCTAssertThrowsError(try ImageDecoder.decode(path: truncated)) { error in
            let e = error as? DamagedImageError
            XCTAssertEqual(e?.damage, .truncated, "\(error)")
            XCTAssertTrue("\(error)".hasPrefix("\(truncated): truncated JPEG file at byte 6698"), "\(error)")
        }
        XCTAssertNotNil(try ImageDecoder.decode(path: truncated, options: recovering).damage)

        let badExif = FileSystem.join(dir, "hopper_bad_exif.jpg")
        XCTAssertThrowsError(try ImageDecoder.decode(path: badExif)) { error in
            let e = error as? DamagedImageError
            XCTAssertEqual(e?.damage, .corruptData, "\(error)")
            XCTAssertEqual(e?.offset, 2083, "libjpeg: 1214 extraneous bytes before marker 0xd0, which is at 3297")
            XCTAssertTrue("\(error)".contains("1214 bytes"), "\(error)")
        }
        let image = try ImageDecoder.decode(path: badExif, options: recovering)
        XCTAssertEqual(image.width, 500)
        XCTAssertEqual(image.damage?.offset, 2083)
    }
}
