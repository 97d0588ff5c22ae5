import MVFormats
import MVImage
import XCTest

final class InflateTests: XCTestCase {
    func testChecksumKnownValues() {
        XCTAssertEqual(Checksum.crc32(Array("123456789".utf8)), 0xCBF4_3926)
        XCTAssertEqual(Checksum.adler32(Array("Wikipedia".utf8)), 0x11E6_0398)
        XCTAssertEqual(Checksum.crc32([]), 0)
        XCTAssertEqual(Checksum.adler32([]), 1)
        // Chained calls equal one call over the concatenation.
        let a = Array("hello ".utf8), b = Array("world".utf8)
        XCTAssertEqual(Checksum.crc32(b, continuing: Checksum.crc32(a)), Checksum.crc32(a + b))
        XCTAssertEqual(Checksum.adler32(b, continuing: Checksum.adler32(a)), Checksum.adler32(a + b))
        // Long input: Adler's deferred modulo must not overflow.
        let long = [UInt8](repeating: 255, count: 100_000)
        XCTAssertEqual(Checksum.adler32(long), testAdler32(long))
    }

    func testStoredBlocks() throws {
        var random = TestRandom(state: 3)
        let data = (0..<150_000).map { _ in UInt8(random.below(256)) }
        // Several stored blocks, the last one final.
        let z = zlibStored(data, blockSize: 40_000)
        XCTAssertEqual(try Inflate.zlib(z, maxOutput: data.count), data)
        // An empty stored block.
        XCTAssertEqual(try Inflate.zlib(zlibStored([]), maxOutput: 10), [])
    }

    func testFixedHuffmanBlock() throws {
        // zlib.compress(b"hello hello hello hello", 9)
        let z: [UInt8] = [120, 218, 203, 72, 205, 201, 201, 87, 200, 64, 39, 1, 104, 3, 8, 177]
        XCTAssertEqual(try Inflate.zlib(z, maxOutput: 100), Array("hello hello hello hello".utf8))
    }

    func testDynamicHuffmanBlock() throws {
        // zlib.compress(671 bytes of Greek letter names, 9): one dynamic-Huffman block.
        let z: [UInt8] = [120, 218, 101, 82, 65, 18, 195, 32, 8, 252, 74, 190, 134, 163, 211, 100, 170, 141, 51, 77, 46, 190, 190, 150, 5, 129, 246, 98, 128, 93, 151, 5, 147, 75, 189, 104, 123, 82, 239, 180, 29, 231, 12, 31, 212, 26, 109, 163, 172, 234, 181, 127, 227, 74, 45, 101, 45, 37, 67, 169, 246, 93, 57, 165, 191, 143, 122, 190, 160, 147, 89, 24, 103, 187, 133, 193, 8, 31, 114, 195, 148, 209, 23, 252, 80, 98, 122, 129, 10, 186, 9, 204, 46, 192, 241, 94, 212, 69, 204, 208, 15, 188, 41, 36, 122, 197, 164, 253, 176, 110, 7, 220, 4, 82, 168, 130, 1, 159, 42, 46, 134, 220, 52, 138, 172, 161, 173, 251, 88, 53, 228, 134, 64, 116, 56, 153, 56, 3, 88, 2, 77, 203, 48, 52, 131, 95, 73, 247, 74, 19, 149, 11, 97, 181, 210, 90, 93, 202, 55, 173, 137, 195, 163, 35, 225, 186, 237, 196, 246, 20, 77, 42, 230, 22, 231, 77, 9, 217, 239, 220, 220, 255, 255, 64, 31, 220, 200, 242, 31]
        XCTAssertEqual((z[2] >> 1) & 3, 2, "block type")
        let out = try Inflate.zlib(z, maxOutput: 1000)
        XCTAssertEqual(out.count, 671)
        XCTAssertEqual(Checksum.crc32(out), 2_245_366_783)
        XCTAssertTrue(String(decoding: out, as: UTF8.self).hasPrefix("delta kappa iota gamma"))
    }

    func testRawDeflateReportsConsumedBytes() throws {
        let z: [UInt8] = [120, 218, 203, 72, 205, 201, 201, 87, 200, 64, 39, 1, 104, 3, 8, 177]
        let body = Array(z[2..<(z.count - 4)]) + [0xAA, 0xBB]
        let (out, consumed) = try Inflate.deflate(body, maxOutput: 100)
        XCTAssertEqual(out, Array("hello hello hello hello".utf8))
        XCTAssertEqual(consumed, body.count - 2)
    }

    func testCorruptStreamsThrow() {
        let good: [UInt8] = [120, 218, 203, 72, 205, 201, 201, 87, 200, 64, 39, 1, 104, 3, 8, 177]
        var badHeader = good
        badHeader[1] ^= 1
        var badAdler = good
        badAdler[good.count - 1] ^= 1
        let cases: [(String, [UInt8])] = [
            ("empty", []),
            ("header check", badHeader),
            ("not deflate", [0x79, 0x9C] + good.dropFirst(2)),
            ("preset dictionary", [0x78, 0xBB, 0, 0, 0, 1]),
            ("truncated", Array(good.prefix(8))),
            ("no checksum", Array(good.prefix(good.count - 2))),
            ("adler", badAdler),
            ("reserved block type", [0x78, 0x01, 0x07, 0, 0, 0, 0]),
            ("stored length check", [0x78, 0x01, 0x01, 5, 0, 0, 0]),
            // Fixed block: length code then a distance reaching before the start of output.
            ("distance too far", [0x78, 0x01, 0x03, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01]),
        ]
        for (what, bytes) in cases {
            XCTAssertThrowsError(try Inflate.zlib(bytes, maxOutput: 1000), what) { error in
                XCTAssertTrue(error is InputError, what)
            }
        }
    }

    /// A fixed-Huffman stream of one literal and `matches` copies of (length 258, distance 1).
    func repeatedZeros(matches: Int) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var buffer: UInt32 = 0
        var count = 0
        func bits(_ v: Int, _ n: Int) {
            buffer |= UInt32(v) << UInt32(count)
            count += n
            while count >= 8 {
                out.append(UInt8(buffer & 0xFF))
                buffer >>= 8
                count -= 8
            }
        }
        // Huffman codes go most significant bit first.
        func code(_ v: Int, _ n: Int) {
            for i in stride(from: n - 1, through: 0, by: -1) { bits((v >> i) & 1, 1) }
        }
        bits(1, 1)  // final
        bits(1, 2)  // fixed Huffman
        code(0x30, 8)  // literal 0
        for _ in 0..<matches {
            code(0xC5, 8)  // length symbol 285 = 258
            code(0, 5)  // distance code 0 = 1
        }
        code(0, 7)  // end of block
        if count > 0 { bits(0, 8 - count) }
        out += bigEndian32(testAdler32([UInt8](repeating: 0, count: 1 + 258 * matches)))
        return out
    }

    func testMatchesAndOutputLimit() throws {
        let small = repeatedZeros(matches: 10)
        XCTAssertEqual(try Inflate.zlib(small, maxOutput: 10_000), [UInt8](repeating: 0, count: 2581))
        // About 1 MB from 6.5 kB: refused once it passes the limit, without expanding further.
        let bomb = repeatedZeros(matches: 4000)
        XCTAssertLessThan(bomb.count, 7000)
        XCTAssertThrowsError(try Inflate.zlib(bomb, maxOutput: 100_000)) { error in
            XCTAssertTrue("\(error)".contains("larger than expected"), "\(error)")
        }
        XCTAssertEqual(try Inflate.zlib(bomb, maxOutput: 2_000_000).count, 1 + 258 * 4000)
        // The same limit for stored data.
        XCTAssertThrowsError(try Inflate.zlib(zlibStored([UInt8](repeating: 7, count: 5000)), maxOutput: 1000))
    }

    func testRandomCorruptionNeverTraps() {
        let good: [UInt8] = [120, 218, 101, 82, 65, 18, 195, 32, 8, 252, 74, 190, 134, 163, 211, 100, 170, 141, 51, 77]
        var random = TestRandom(state: 11)
        for _ in 0..<2000 {
            var bytes = good
            for _ in 0..<3 { bytes[2 + random.below(bytes.count - 2)] ^= UInt8(1 << random.below(8)) }
            _ = try? Inflate.zlib(bytes, maxOutput: 10_000)
        }
    }
}
