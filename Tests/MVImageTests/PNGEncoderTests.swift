#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import MVFormats
@testable import MVImage
import TestSupport
import XCTest

final class PNGEncoderTests: XCTestCase {
    // MARK: Deflate

    func testDeflateRoundTripsThroughInflate() throws {
        var random = TestRandom(state: 11)
        let inputs: [(String, [UInt8])] = [
            ("empty", []),
            ("one byte", [42]),
            ("two bytes", [1, 2]),
            ("short text", Array("hello hello hello hello, said the echo".utf8)),
            ("random", randomBytes(100_000, &random)),
            ("text", englishText(120_000, &random)),
            ("zeros", [UInt8](repeating: 0, count: 300_000)),
            ("label rows", blobLabelMap(width: 301, height: 157).indices),
            ("skewed", skewedBytes(50_000, &random)),
            ("mixed", englishText(30_000, &random) + randomBytes(70_000, &random) + [UInt8](repeating: 9, count: 5000)),
        ]
        for (name, data) in inputs {
            for level in [0, 1, 4, 6, 9] {
                let z = Deflate.compress(data, level: level)
                XCTAssertEqual(try Inflate.zlib(z, maxOutput: data.count), data, "\(name) at level \(level)")
                XCTAssertEqual((Int(z[0]) << 8 | Int(z[1])) % 31, 0, "zlib header check bits")
            }
        }
    }

    /// Each block type on an input that suits it, checked by what the encoder reports and by
    /// the block type bits of the stream's first block.
    func testStoredFixedAndDynamicBlocks() throws {
        var random = TestRandom(state: 5)
        let random100k = randomBytes(100_000, &random)
        let short = Array("abcabcabcabc the quick brown fox, abcabc".utf8)
        let text = englishText(60_000, &random)
        for (name, data, expected) in [("random", random100k, 0), ("short", short, 1), ("text", text, 2)] {
            let (z, report) = data.withUnsafeBytes { Deflate.compressReporting($0, level: 6) }
            XCTAssertEqual(Int((z[2] >> 1) & 3), expected, "\(name): first block type")
            XCTAssertEqual(try Inflate.zlib(z, maxOutput: data.count), data, name)
            switch expected {
            case 0: XCTAssertGreaterThan(report.stored, 0, name)
            case 1: XCTAssertGreaterThan(report.fixed, 0, name)
            default: XCTAssertGreaterThan(report.dynamic, 0, name)
            }
        }
        // Stored output: 5 bytes per block (of at most 16384 symbols) over the input.
        let z = Deflate.compress(random100k)
        XCTAssertLessThanOrEqual(z.count, random100k.count + 6 + 5 * (random100k.count / 16000 + 1))

        // Text (dynamic), then noise (stored), then a short tail.
        let mixed = text + random100k + short
        let (zm, report) = mixed.withUnsafeBytes { Deflate.compressReporting($0, level: 6) }
        XCTAssertEqual(try Inflate.zlib(zm, maxOutput: mixed.count), mixed)
        XCTAssertGreaterThan(report.dynamic, 0, "\(report)")
        XCTAssertGreaterThan(report.stored, 0, "\(report)")
        // With short blocks, all three kinds follow one another in one stream, and every
        // change of kind keeps the bit stream aligned.
        for blockSymbols in [100, 1000] {
            let (zs, report) = mixed.withUnsafeBytes { Deflate.compressReporting($0, level: 6, blockSymbols: blockSymbols) }
            XCTAssertEqual(try Inflate.zlib(zs, maxOutput: mixed.count), mixed, "blocks of \(blockSymbols) symbols")
            XCTAssertGreaterThan(report.stored, 0, "\(report)")
            XCTAssertGreaterThan(report.fixed, 0, "\(report)")
            XCTAssertGreaterThan(report.dynamic, 0, "\(report)")
        }
    }

    func testLongRuns() throws {
        var data = [UInt8](repeating: 0, count: 100_000)
        data += [UInt8](repeating: 7, count: 259)
        data += [UInt8](repeating: 8, count: 258)
        data += [UInt8](repeating: 9, count: 517)
        data += [1, 2, 3] + [UInt8](repeating: 1, count: 1000)
        for level in 1...9 {
            let z = Deflate.compress(data, level: level)
            XCTAssertEqual(try Inflate.zlib(z, maxOutput: data.count), data, "level \(level)")
            // About two bits per 258-byte match: a few hundred bytes at most.
            XCTAssertLessThan(z.count, 400, "level \(level)")
        }
    }

    /// Matches reach exactly 32768 bytes back, never 32769.
    func testWindowDistanceEdges() throws {
        var random = TestRandom(state: 99)
        let r = randomBytes(32769 + 500, &random)
        // The last 500 bytes repeat the first 500, 32768 back: one long match at the window's edge.
        let atEdge = Array(r[0..<32768]) + Array(r[0..<500])
        let (z1, report1) = atEdge.withUnsafeBytes { Deflate.compressReporting($0, level: 6) }
        XCTAssertEqual(try Inflate.zlib(z1, maxOutput: atEdge.count), atEdge)
        XCTAssertEqual(report1.longestDistance, 32768)
        XCTAssertLessThan(z1.count, 32768 + 100, "the repeat was matched")

        // 32769 back is out of reach: the repeat goes as literals.
        let pastEdge = Array(r[0..<32769]) + Array(r[0..<500])
        let (z2, report2) = pastEdge.withUnsafeBytes { Deflate.compressReporting($0, level: 9) }
        XCTAssertEqual(try Inflate.zlib(z2, maxOutput: pastEdge.count), pastEdge)
        XCTAssertLessThan(report2.longestDistance, 32768)
        XCTAssertGreaterThan(z2.count, pastEdge.count - 100, "nothing to match")

        // A period of exactly 32768: every match is at the edge, and chains keep working
        // while positions 32768 apart share a slot.
        let periodic = Array(r[0..<32768]) + Array(r[0..<32768]) + Array(r[0..<32768]) + Array(r[0..<1000])
        for level in [1, 6, 9] {
            let (z3, report3) = periodic.withUnsafeBytes { Deflate.compressReporting($0, level: level) }
            XCTAssertEqual(try Inflate.zlib(z3, maxOutput: periodic.count), periodic, "level \(level)")
            XCTAssertEqual(report3.longestDistance, 32768, "level \(level)")
            XCTAssertLessThan(z3.count, 32768 + 2000, "level \(level)")
        }
    }

    /// Frequencies like Fibonacci numbers want codes far longer than 15 bits unlimited.
    func testHuffmanLengthsRespectTheLimit() throws {
        var fib = [1, 1]
        while fib.count < 40 { fib.append(fib[fib.count - 1] + fib[fib.count - 2]) }
        for maxBits in [7, 9, 15] {
            let count = maxBits == 7 ? 19 : 40
            let frequencies = Array(fib.prefix(count))
            let lengths = DeflateHuffman.lengths(frequencies, maxBits: maxBits)
            XCTAssertEqual(lengths.max().map(Int.init), maxBits, "the limit binds")
            XCTAssertTrue(lengths.allSatisfy { $0 >= 1 })
            // Complete: the Kraft sum is exactly 1.
            let kraft = lengths.reduce(0) { $0 + (1 << (maxBits - Int($1))) }
            XCTAssertEqual(kraft, 1 << maxBits, "maxBits \(maxBits)")
            // Optimal among codes within the limit: no worse than the unlimited Huffman cost
            // plus what the limit must add; at least check that heavier never gets longer.
            for i in 1..<count { XCTAssertLessThanOrEqual(lengths[i], lengths[i - 1]) }
        }
        // An unconstrained case matches Huffman's cost: frequencies 1,1,2,4 → lengths 3,3,2,1.
        XCTAssertEqual(DeflateHuffman.lengths([1, 1, 2, 4], maxBits: 15), [3, 3, 2, 1])
        // One or no used symbol still gives a two-code table.
        XCTAssertEqual(DeflateHuffman.lengths([0, 5, 0], maxBits: 15), [1, 1, 0])
        XCTAssertEqual(DeflateHuffman.lengths([0, 0, 0], maxBits: 15), [1, 1, 0])
        // Data whose byte histogram is Fibonacci-like round-trips through the limited codes.
        var random = TestRandom(state: 17)
        let data = skewedBytes(200_000, &random)
        let z = Deflate.compress(data, level: 6)
        XCTAssertEqual(try Inflate.zlib(z, maxOutput: data.count), data)
    }

    func testDeterministic() {
        var random = TestRandom(state: 3)
        let data = englishText(50_000, &random) + blobLabelMap(width: 200, height: 100).indices
        XCTAssertEqual(Deflate.compress(data), Deflate.compress(data))
    }

    // MARK: PNG

    func testIndexedRoundTrip() throws {
        var random = TestRandom(state: 21)
        let palette = VOCPalette.colors256
        for (width, height) in [(1, 1), (3, 7), (257, 129), (1, 300), (300, 1), (64, 64)] {
            let randomIndices = (0..<(width * height)).map { _ in UInt8(random.below(256)) }
            let stripes = (0..<(width * height)).map { i in UInt8((i % width) / 5 % 21) }
            let blobs = blobLabelMap(width: width, height: height).indices
            for (kind, indices) in [("random", randomIndices), ("stripes", stripes), ("blobs", blobs)] {
                let png = try PNGEncoder.encodeIndexed(indices: indices, width: width, height: height, palette: palette)
                let name = "\(kind)-\(width)x\(height)"
                let image = try ImageDecoder.decode(bytes: png, name: name + ".png")
                XCTAssertEqual(image.width, width, name)
                XCTAssertEqual(image.height, height, name)
                XCTAssertEqual(image.pixels, lookUp(indices, palette), name)
            }
        }
        // A small palette: only its entries are written.
        let indices: [UInt8] = [0, 1, 2, 1, 0, 2]
        let small: [UInt8] = [10, 20, 30, 40, 50, 60, 70, 80, 90]
        let png = try PNGEncoder.encodeIndexed(indices: indices, width: 3, height: 2, palette: small)
        XCTAssertEqual(try ImageDecoder.decode(bytes: png, name: "small.png").pixels, lookUp(indices, small))
        let chunks = try pngChunks(png)
        XCTAssertEqual(chunks.map(\.type), ["IHDR", "PLTE", "IDAT", "IEND"])
        XCTAssertEqual(chunks[1].data, small)
        XCTAssertEqual(Array(chunks[0].data[8...]), [8, 3, 0, 0, 0], "8-bit palette, not interlaced")
    }

    func testRGBRoundTrip() throws {
        var random = TestRandom(state: 8)
        for (width, height) in [(1, 1), (3, 7), (257, 129), (2, 33)] {
            let noise = (0..<(width * height * 3)).map { _ in UInt8(random.below(256)) }
            let gradient = (0..<(width * height * 3)).map { i in
                let p = i / 3, x = p % width, y = p / width
                return UInt8(truncatingIfNeeded: [x * 3 + y, y * 2, x + y * 5][i % 3])
            }
            let flat = [UInt8](repeating: 200, count: width * height * 3)
            let overlay = overlayImage(width: width, height: height).pixels
            for (kind, pixels) in [("noise", noise), ("gradient", gradient), ("flat", flat), ("overlay", overlay)] {
                let image = RGBImage(width: width, height: height, pixels: pixels)
                let png = try PNGEncoder.encodeRGB(image)
                let name = "\(kind)-\(width)x\(height)"
                let decoded = try ImageDecoder.decode(bytes: png, name: name + ".png")
                XCTAssertEqual(decoded, image, name)
                XCTAssertEqual(Array(try pngChunks(png)[0].data[8...]), [8, 2, 0, 0, 0], "8-bit RGB, not interlaced")
            }
        }
    }

    /// The filter heuristic picks different filters for different content.
    func testRGBRowFilters() throws {
        let width = 64, height = 48
        var random = TestRandom(state: 4)
        var pixels: [UInt8] = []
        for y in 0..<height {
            for x in 0..<width {
                switch y / 12 {
                case 0: pixels += [UInt8(x * 4), UInt8(x * 2), UInt8(x)]  // horizontal ramp: Sub
                case 1: pixels += [UInt8(random.below(256)), UInt8(random.below(256)), UInt8(random.below(256))]
                case 2: pixels += [UInt8(y * 5), UInt8(y * 3), 9]  // vertical ramp: Up
                default: pixels += [UInt8(truncatingIfNeeded: x * 3 + y * 7), UInt8(truncatingIfNeeded: x * y), UInt8(truncatingIfNeeded: x + 2 * y)]
                }
            }
        }
        let image = RGBImage(width: width, height: height, pixels: pixels)
        let png = try PNGEncoder.encodeRGB(image)
        let raw = try Inflate.zlib(try idatData(png), maxOutput: height * (width * 3 + 1))
        let filters = Set((0..<height).map { raw[$0 * (width * 3 + 1)] })
        XCTAssertGreaterThanOrEqual(filters.count, 3, "filters used: \(filters.sorted())")
        XCTAssertEqual(raw[0], 1, "a horizontal ramp's first row: Sub")
        XCTAssertEqual(raw[5 * (width * 3 + 1)], 2, "a repeated row: Up")
        XCTAssertEqual(raw[30 * (width * 3 + 1)], 4, "a row of one colour: Paeth (above for the first pixel, then left)")
        XCTAssertEqual(try ImageDecoder.decode(bytes: png, name: "filters.png"), image)
    }

    func testIDATIsSplitIntoChunks() throws {
        var random = TestRandom(state: 2)
        let width = 300, height = 300
        let image = RGBImage(width: width, height: height, pixels: randomBytes(width * height * 3, &random))
        let png = try PNGEncoder.encodeRGB(image)
        let chunks = try pngChunks(png)
        let idat = chunks.filter { $0.type == "IDAT" }
        XCTAssertGreaterThan(idat.count, 1)
        XCTAssertTrue(idat.allSatisfy { $0.data.count <= PNGEncoder.idatChunkSize })
        XCTAssertEqual(chunks.last?.type, "IEND")
        XCTAssertEqual(try ImageDecoder.decode(bytes: png, name: "noise.png"), image)
    }

    /// Compression is real: a label map of a few blobs shrinks to well under 5% of its raw
    /// size, which an encoder of stored blocks (over 100%) cannot reach.
    func testLabelMapCompresses() throws {
        let map = blobLabelMap(width: 512, height: 512)
        let raw = 512 * 512
        let png = try PNGEncoder.encodeIndexed(indices: map.indices, width: 512, height: 512, palette: VOCPalette.colors256)
        let stored = try PNGEncoder.encodeIndexed(indices: map.indices, width: 512, height: 512,
                                                  palette: VOCPalette.colors256, level: 0)
        print("512x512 label map: \(png.count) bytes, \(formatted(100 * Double(png.count) / Double(raw), 2))% of \(raw); stored only: \(stored.count)")
        XCTAssertLessThan(png.count * 20, raw)
        XCTAssertGreaterThan(stored.count * 20, raw, "the bound would fail for a stored-only encoder")
        XCTAssertEqual(try ImageDecoder.decode(bytes: png, name: "blobs.png").pixels, lookUp(map.indices, VOCPalette.colors256))
        XCTAssertEqual(try ImageDecoder.decode(bytes: stored, name: "stored.png").pixels, lookUp(map.indices, VOCPalette.colors256))

        let overlay = overlayImage(width: 512, height: 512)
        let rgb = try PNGEncoder.encodeRGB(overlay)
        print("512x512 overlay: \(rgb.count) bytes, \(formatted(100 * Double(rgb.count) / Double(raw * 3), 2))% of \(raw * 3)")
        XCTAssertLessThan(rgb.count * 4, raw * 3)
        XCTAssertEqual(try ImageDecoder.decode(bytes: rgb, name: "overlay.png"), overlay)
    }

    func testBadArgumentsAreRefused() {
        let palette = VOCPalette.colors256
        func refuses(_ what: String, _ contains: String, _ body: () throws -> [UInt8]) {
            XCTAssertThrowsError(try body(), what) { error in
                guard let e = error as? InputError else { return XCTFail("\(what): \(error) is not an InputError") }
                XCTAssertFalse(e.message.contains("\n"), "\(what): one line")
                XCTAssertTrue(e.message.contains(contains), "\(what): \(e.message)")
            }
        }
        refuses("zero width", "0x4") { try PNGEncoder.encodeIndexed(indices: [], width: 0, height: 4, palette: palette) }
        refuses("zero height", "4x0") { try PNGEncoder.encodeIndexed(indices: [], width: 4, height: 0, palette: palette) }
        refuses("negative", "-1x1") { try PNGEncoder.encodeIndexed(indices: [0], width: -1, height: 1, palette: palette) }
        refuses("too wide", "2147483648x1") {
            try PNGEncoder.encodeIndexed(indices: [0], width: 1 << 31, height: 1, palette: palette)
        }
        refuses("too tall", "1x2147483648") {
            try PNGEncoder.encodeIndexed(indices: [0], width: 1, height: 1 << 31, palette: palette)
        }
        refuses("count mismatch", "5 indices") { try PNGEncoder.encodeIndexed(indices: [0, 0, 0, 0, 0], width: 2, height: 2, palette: palette) }
        refuses("empty palette", "0 bytes") { try PNGEncoder.encodeIndexed(indices: [0], width: 1, height: 1, palette: []) }
        refuses("257 entries", "771 bytes") {
            try PNGEncoder.encodeIndexed(indices: [0], width: 1, height: 1, palette: palette + [1, 2, 3])
        }
        refuses("ragged palette", "4 bytes") { try PNGEncoder.encodeIndexed(indices: [0], width: 1, height: 1, palette: [1, 2, 3, 4]) }
        refuses("index past palette", "index 3 at (1, 1)") {
            try PNGEncoder.encodeIndexed(indices: [0, 1, 2, 3], width: 2, height: 2, palette: [UInt8](repeating: 5, count: 9))
        }
        refuses("empty RGB", "0x3") { try PNGEncoder.encodeRGB(RGBImage(width: 0, height: 3, pixels: [])) }
        // The largest index of a full palette is fine.
        XCTAssertNoThrow(try PNGEncoder.encodeIndexed(indices: [255], width: 1, height: 1, palette: palette))
    }

    func testVOCColours() {
        let expected: [(Int, (UInt8, UInt8, UInt8))] = [
            (0, (0, 0, 0)), (1, (128, 0, 0)), (2, (0, 128, 0)), (3, (128, 128, 0)), (4, (0, 0, 128)),
            (15, (192, 128, 128)), (20, (0, 64, 128)), (255, (224, 224, 192)),
        ]
        for (label, (r, g, b)) in expected {
            let c = VOCPalette.color(label)
            XCTAssertTrue(c == (r, g, b), "label \(label): \(c)")
        }
        XCTAssertEqual(VOCPalette.colors256.count, 768)
        for label in 0..<256 {
            let c = VOCPalette.color(label)
            XCTAssertEqual(Array(VOCPalette.colors256[(3 * label)..<(3 * label + 3)]), [c.0, c.1, c.2])
        }
        XCTAssertEqual(Set((0..<256).map { l in VOCPalette.colors256[(3 * l)..<(3 * l + 3)].map(Int.init) }).count, 256, "all distinct")
    }

    // MARK: An independent decoder

    /// Python's zlib (standard library only) decompresses the encoder's streams and PNGs'
    /// concatenated IDAT data; the script undoes the PNG filters itself.
    func testPythonZlibAgrees() throws {
        guard system("command -v python3 >/dev/null 2>&1") == 0 else {
            print("SKIP testPythonZlibAgrees: python3 is not on PATH")
            return
        }
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var random = TestRandom(state: 77)
        let r = randomBytes(33_000, &random)

        var streams: [String: [UInt8]] = [
            "empty": [],
            "text": englishText(100_000, &random),
            "random": randomBytes(70_000, &random),
            "runs": [UInt8](repeating: 3, count: 70_000) + [1, 2] + [UInt8](repeating: 4, count: 1000),
            "edge": Array(r[0..<32768]) + Array(r[0..<500]),
            "periodic": Array(r[0..<32768]) + Array(r[0..<32768]) + Array(r[0..<700]),
            "skewed": skewedBytes(100_000, &random),
        ]
        streams["mixed"] = streams["text"]! + streams["random"]! + Array("abcabcabc tail".utf8)
        for (name, data) in streams {
            for level in [0, 1, 6, 9] {
                try writeFile(dir.file("\(name)-\(level).zlib"), Deflate.compress(data, level: level))
            }
        }
        // Short blocks: stored, fixed and dynamic blocks alternate in one stream.
        let mixed = streams["mixed"]!
        let (shortBlocks, report) = mixed.withUnsafeBytes { Deflate.compressReporting($0, level: 6, blockSymbols: 100) }
        XCTAssertTrue(report.stored > 0 && report.fixed > 0 && report.dynamic > 0, "\(report)")
        try writeFile(dir.file("short-blocks.zlib"), shortBlocks)

        var images: [String: (width: Int, height: Int, rows: [UInt8])] = [:]
        for (width, height) in [(1, 1), (3, 7), (257, 129)] {
            let blobs = blobLabelMap(width: width, height: height).indices
            let noise = (0..<(width * height)).map { _ in UInt8(random.below(256)) }
            for (kind, indices) in [("blobs", blobs), ("noise", noise)] {
                let name = "indexed-\(kind)-\(width)x\(height)"
                try writeFile(dir.file(name + ".png"),
                              try PNGEncoder.encodeIndexed(indices: indices, width: width, height: height, palette: VOCPalette.colors256))
                images[name] = (width, height, indices)
            }
            let overlay = overlayImage(width: width, height: height)
            let noiseRGB = RGBImage(width: width, height: height, pixels: randomBytes(width * height * 3, &random))
            for (kind, image) in [("overlay", overlay), ("noise", noiseRGB)] {
                let name = "rgb-\(kind)-\(width)x\(height)"
                try writeFile(dir.file(name + ".png"), try PNGEncoder.encodeRGB(image))
                images[name] = (width, height, image.pixels)
            }
        }
        let big = blobLabelMap(width: 1024, height: 700)
        try writeFile(dir.file("indexed-big.png"), try PNGEncoder.encodeIndexed(indices: big.indices, width: 1024, height: 700,
                                                                                  palette: VOCPalette.colors256))
        images["indexed-big"] = (1024, 700, big.indices)

        try writeFile(dir.file("check.py"), Array(pythonChecker.utf8))
        let status = system("python3 '\(dir.file("check.py"))' '\(dir.path)' > '\(dir.file("log"))' 2>&1")
        let log = String(decoding: (try? FileSystem.read(dir.file("log"))) ?? [], as: UTF8.self)
        XCTAssertEqual(status, 0, "python3 check failed:\n\(log)")
        guard status == 0 else { return }

        for (name, data) in streams {
            for level in [0, 1, 6, 9] {
                XCTAssertEqual(try FileSystem.read(dir.file("\(name)-\(level).zlib.out")), data, "\(name) at level \(level)")
            }
        }
        XCTAssertEqual(try FileSystem.read(dir.file("short-blocks.zlib.out")), mixed, "short blocks")
        for (name, image) in images {
            let rows = try FileSystem.read(dir.file(name + ".png.rows"))
            XCTAssertEqual(rows.count, image.rows.count, name)
            XCTAssertTrue(rows == image.rows, "\(name): Python's unfiltered scanlines differ")
        }
        print("python3 zlib agreed on \(streams.count * 4 + 1) streams and \(images.count) PNGs")
    }

    /// Opt-in timing (MVQUANT_BENCH=1; meaningful in a release build).
    func testEncodeSpeed() throws {
        guard getenv("MVQUANT_BENCH") != nil else {
            print("SKIP testEncodeSpeed: set MVQUANT_BENCH=1")
            return
        }
        let map = blobLabelMap(width: 2048, height: 2048)
        let start = monotonicSeconds()
        let png = try PNGEncoder.encodeIndexed(indices: map.indices, width: 2048, height: 2048, palette: VOCPalette.colors256)
        let elapsed = monotonicSeconds() - start
        print("2048x2048 label map: \(png.count) bytes (\(formatted(100 * Double(png.count) / Double(2048 * 2048), 3))%) in \(formatted(elapsed * 1000, 1)) ms")
    }
}

// MARK: Test data

private func randomBytes(_ n: Int, _ random: inout TestRandom) -> [UInt8] {
    (0..<n).map { _ in UInt8(truncatingIfNeeded: random.next()) }
}

/// Bytes with a steeply skewed (Fibonacci-like) histogram: byte k about 1.6^-k as often.
private func skewedBytes(_ n: Int, _ random: inout TestRandom) -> [UInt8] {
    (0..<n).map { _ in
        var k = 0
        while k < 40 && random.below(1000) < 618 { k += 1 }
        return UInt8(k)
    }
}

/// Words from a small vocabulary with Zipf-like frequencies: compresses well, with a skewed
/// literal histogram, so dynamic Huffman codes win.
private func englishText(_ n: Int, _ random: inout TestRandom) -> [UInt8] {
    let words = ["the", "of", "and", "a", "to", "in", "is", "label", "map", "segment", "pixel", "colour", "blob",
                 "palette", "mobile", "vision", "transformer", "quantised", "integer", "image", "deflate", "window"]
    var out: [UInt8] = []
    out.reserveCapacity(n + 16)
    while out.count < n {
        let w = words[min(random.below(words.count), random.below(words.count))]
        out += Array(w.utf8)
        out.append(random.below(12) == 0 ? UInt8(ascii: ".") : UInt8(ascii: " "))
        if random.below(40) == 0 { out += Array("\(random.below(100000))\n".utf8) }
    }
    return Array(out.prefix(n))
}

/// A label map like a segmentation's: background 0 and a few ellipses of labels 1…20.
private func blobLabelMap(width: Int, height: Int) -> (indices: [UInt8], labels: Int) {
    var indices = [UInt8](repeating: 0, count: width * height)
    let blobs: [(cx: Double, cy: Double, rx: Double, ry: Double, label: UInt8)] = [
        (0.3, 0.35, 0.2, 0.25, 15), (0.7, 0.6, 0.25, 0.2, 12), (0.5, 0.8, 0.15, 0.1, 1), (0.8, 0.2, 0.1, 0.15, 20),
    ]
    for y in 0..<height {
        for x in 0..<width {
            let u = (Double(x) + 0.5) / Double(width), v = (Double(y) + 0.5) / Double(height)
            for b in blobs {
                let dx = (u - b.cx) / b.rx, dy = (v - b.cy) / b.ry
                if dx * dx + dy * dy <= 1 { indices[y * width + x] = b.label }
            }
        }
    }
    return (indices, 4)
}

/// An overlay like `segment --overlay` writes: a smooth photo-like background blended half
/// and half with the label colours.
private func overlayImage(width: Int, height: Int) -> RGBImage {
    let map = blobLabelMap(width: width, height: height).indices
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    for y in 0..<height {
        for x in 0..<width {
            let i = y * width + x
            let background = [(x * 255) / max(width, 1), (y * 255) / max(height, 1), ((x + y) * 127) / max(width + height, 1)]
            let c = VOCPalette.color(Int(map[i]))
            let label = [Int(c.0), Int(c.1), Int(c.2)]
            for k in 0..<3 { pixels[3 * i + k] = UInt8((background[k] + label[k] + 1) / 2) }
        }
    }
    return RGBImage(width: width, height: height, pixels: pixels)
}

private func lookUp(_ indices: [UInt8], _ palette: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(indices.count * 3)
    for i in indices { out += palette[(3 * Int(i))..<(3 * Int(i) + 3)] }
    return out
}

/// The chunks of a PNG (checking only the structure; CRCs are checked against the
/// independent bitwise CRC of TestEncoders).
private func pngChunks(_ png: [UInt8]) throws -> [(type: String, data: [UInt8])] {
    XCTAssertEqual(Array(png.prefix(8)), pngSignature)
    var chunks: [(String, [UInt8])] = []
    var p = 8
    while p + 12 <= png.count {
        let length = Int(png[p]) << 24 | Int(png[p + 1]) << 16 | Int(png[p + 2]) << 8 | Int(png[p + 3])
        let typeAndData = Array(png[(p + 4)..<(p + 8 + length)])
        let crc = UInt32(png[p + 8 + length]) << 24 | UInt32(png[p + 9 + length]) << 16
            | UInt32(png[p + 10 + length]) << 8 | UInt32(png[p + 11 + length])
        XCTAssertEqual(crc, testCRC32(typeAndData))
        chunks.append((String(decoding: typeAndData.prefix(4), as: UTF8.self), Array(typeAndData[4...])))
        p += 12 + length
    }
    XCTAssertEqual(p, png.count)
    return chunks
}

private func idatData(_ png: [UInt8]) throws -> [UInt8] {
    try pngChunks(png).filter { $0.type == "IDAT" }.flatMap(\.data)
}

/// For every X.zlib in the folder, writes zlib.decompress of it to X.zlib.out; for every X.png,
/// checks the signature and chunk CRCs, decompresses the concatenated IDAT data, undoes the
/// filters and writes the unfiltered scanlines (without filter bytes) to X.png.rows.
private let pythonChecker = #"""
import os, struct, sys, zlib

folder = sys.argv[1]

def unfilter(raw, width, height, bpp):
    stride = width * bpp
    out = bytearray()
    prior = bytearray(stride)
    pos = 0
    for _ in range(height):
        ftype = raw[pos]
        row = bytearray(raw[pos + 1:pos + 1 + stride])
        pos += 1 + stride
        for i in range(stride):
            a = row[i - bpp] if i >= bpp else 0
            b = prior[i]
            c = prior[i - bpp] if i >= bpp else 0
            if ftype == 0:
                pred = 0
            elif ftype == 1:
                pred = a
            elif ftype == 2:
                pred = b
            elif ftype == 3:
                pred = (a + b) // 2
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            else:
                raise ValueError("filter type %d" % ftype)
            row[i] = (row[i] + pred) & 0xFF
        out += row
        prior = row
    if pos != len(raw):
        raise ValueError("%d bytes after the scanlines" % (len(raw) - pos))
    return bytes(out)

for name in sorted(os.listdir(folder)):
    path = os.path.join(folder, name)
    if name.endswith(".zlib"):
        with open(path, "rb") as f:
            data = f.read()
        d = zlib.decompressobj()
        out = d.decompress(data) + d.flush()
        if not d.eof or d.unused_data:
            raise ValueError(name + ": stream not ended exactly")
        with open(path + ".out", "wb") as f:
            f.write(out)
    elif name.endswith(".png"):
        with open(path, "rb") as f:
            png = f.read()
        assert png[:8] == b"\x89PNG\r\n\x1a\n", name
        pos, idat, header = 8, b"", None
        while pos < len(png):
            (length,) = struct.unpack(">I", png[pos:pos + 4])
            ctype = png[pos + 4:pos + 8]
            body = png[pos + 8:pos + 8 + length]
            (crc,) = struct.unpack(">I", png[pos + 8 + length:pos + 12 + length])
            if zlib.crc32(ctype + body) & 0xFFFFFFFF != crc:
                raise ValueError(name + ": CRC of " + ctype.decode())
            if ctype == b"IHDR":
                header = struct.unpack(">IIBBBBB", body)
            elif ctype == b"IDAT":
                idat += body
            pos += 12 + length
        width, height, depth, colour, _, _, interlace = header
        assert depth == 8 and interlace == 0 and colour in (2, 3), (name, header)
        raw = zlib.decompress(idat)
        with open(path + ".rows", "wb") as f:
            f.write(unfilter(raw, width, height, 3 if colour == 2 else 1))
print("ok")
"""#
