#if canImport(Glibc)
import Glibc
#endif
import MVFormats
import MVImage
import TestSupport
import XCTest

/// Damaged inputs must give a clean `InputError` or `DamagedImageError` (one line, naming the
/// file) or a clean decode: never a trap, a hang or a huge allocation.
final class RobustnessTests: XCTestCase {
    /// Decodes `bytes`, accepting either outcome, and checks the outcome is well formed.
    /// Returns the seconds taken.
    @discardableResult
    func decodeCleanly(_ bytes: [UInt8], name: String, file: StaticString = #filePath, line: UInt = #line) -> Double {
        let start = monotonicSeconds()
        do {
            let image = try ImageDecoder.decode(bytes: bytes, name: name, maxPixels: 4_000_000)
            XCTAssertEqual(image.pixels.count, image.width * image.height * 3, name, file: file, line: line)
            XCTAssertGreaterThan(image.width, 0, name, file: file, line: line)
        } catch let error as InputError {
            let message = error.message
            XCTAssertTrue(message.hasPrefix("\(name): "), "\(name): \(message)", file: file, line: line)
            XCTAssertFalse(message.contains("\n"), "\(name): \(message)", file: file, line: line)
        } catch let error as DamagedImageError {
            let message = error.description
            XCTAssertEqual(error.file, name, file: file, line: line)
            XCTAssertTrue(message.hasPrefix("\(name): "), "\(name): \(message)", file: file, line: line)
            XCTAssertFalse(message.contains("\n"), "\(name): \(message)", file: file, line: line)
        } catch {
            XCTFail("\(name): unexpected error type \(error)", file: file, line: line)
        }
        return monotonicSeconds() - start
    }

    /// Truncations and bit flips of every fixture, plus generated images when ../shared is absent.
    func testTruncatedAndBitFlippedFiles() throws {
        var inputs: [(String, [UInt8])] = []
        if let files = sharedImageFiles(for: "robustness on fixtures") {
            for f in files { inputs.append((FileSystem.baseName(f), try FileSystem.read(f))) }
        }
        // Always include some generated ones, so the test means something without ../shared.
        let samples: [[[Int]]] = (0..<9).map { (y: Int) -> [[Int]] in (0..<11).map { (x: Int) -> [Int] in [x * 20, y * 25, (x * y) % 256] } }
        inputs.append(("generated.png", makePNG(width: 11, height: 9, bitDepth: 8, colorType: 2, samples: samples, interlaced: true)))
        inputs.append(("generated.ppm", Array("P6 4 4 255\n".utf8) + (0..<48).map { UInt8($0 * 5) }))
        inputs.append(("generated.jpg", TinyJPEG.join(TinyJPEG.soi, TinyJPEG.dqt, TinyJPEG.sof(width: 16, height: 16), TinyJPEG.dht,
                                                      TinyJPEG.sos([1]), [0x00], TinyJPEG.eoi)))

        var random = TestRandom(state: 42)
        var decodes = 0
        var slowest = (0.0, "")
        for (name, bytes) in inputs {
            let n = bytes.count
            let cuts = Set([0, 1, 8, n / 3, n / 2, n * 9 / 10, n - 1].filter { $0 >= 0 && $0 < n })
            for cut in cuts.sorted() {
                let label = "\(name)[cut \(cut)]"
                let t = decodeCleanly(Array(bytes.prefix(cut)), name: label)
                if t > slowest.0 { slowest = (t, label) }
                decodes += 1
            }
            // Bit flips: several in the first kilobyte (headers, tables) and some anywhere.
            for k in 0..<10 {
                var damaged = bytes
                let position = k < 5 ? random.below(min(n, 1024)) : random.below(n)
                damaged[position] ^= UInt8(1 << random.below(8))
                let label = "\(name)[flip \(position)]"
                let t = decodeCleanly(damaged, name: label)
                if t > slowest.0 { slowest = (t, label) }
                decodes += 1
            }
        }
        print("robustness: \(decodes) damaged decodes, slowest \(formatted(slowest.0, 3)) s (\(slowest.1))")
    }

    /// Many random corruptions of small generated images of each format.
    func testRandomCorruptionOfSmallImages() {
        let samples: [[[Int]]] = (0..<5).map { (y: Int) -> [[Int]] in (0..<7).map { (x: Int) -> [Int] in [x * 30, y * 50, 255 - x * 30] } }
        let inputs: [(String, [UInt8])] = [
            ("small.png", makePNG(width: 7, height: 5, bitDepth: 8, colorType: 2, samples: samples)),
            ("small-adam7.png", makePNG(width: 7, height: 5, bitDepth: 8, colorType: 2, samples: samples, interlaced: true)),
            ("small.jpg", TinyJPEG.join(TinyJPEG.soi, TinyJPEG.dqt,
                                        TinyJPEG.sof(width: 13, height: 9, components: [(1, 0x22), (2, 0x11), (3, 0x11)]),
                                        TinyJPEG.dht, TinyJPEG.sos([1, 2, 3]), [0x00, 0x0F], TinyJPEG.eoi)),
            ("small.pgm", Array("P2 3 2 255 0 1 2 3 4 5\n".utf8)),
        ]
        var random = TestRandom(state: 5)
        for (name, bytes) in inputs {
            for trial in 0..<300 {
                var damaged = bytes
                for _ in 0..<(1 + random.below(3)) {
                    let p = random.below(damaged.count)
                    damaged[p] = random.below(2) == 0 ? damaged[p] ^ UInt8(1 << random.below(8)) : UInt8(random.below(256))
                }
                decodeCleanly(damaged, name: "\(name)#\(trial)")
            }
        }
    }

    /// Gigantic and empty sizes in headers are refused by the budget check.
    func testPixelBudget() throws {
        let samples: [[[Int]]] = (0..<40).map { _ in (0..<50).map { _ in [1, 2, 3] } }
        let png = makePNG(width: 50, height: 40, bitDepth: 8, colorType: 2, samples: samples)
        XCTAssertNoThrow(try ImageDecoder.decode(bytes: png, name: "ok.png", maxPixels: 2000))
        XCTAssertThrowsError(try ImageDecoder.decode(bytes: png, name: "over.png", maxPixels: 1999)) { error in
            XCTAssertEqual("\(error)", "over.png: PNG image is 50x40, more than the limit of 1999 pixels")
        }
        XCTAssertThrowsError(try ImageDecoder.decode(bytes: Array("P6 70000 70000 255\n".utf8), name: "big.ppm")) { error in
            XCTAssertTrue("\(error)".contains("limit"), "\(error)")
        }
    }

    func testUnknownAndMissingFiles() {
        XCTAssertThrowsError(try ImageDecoder.decode(bytes: [], name: "empty.bin")) { error in
            XCTAssertEqual("\(error)", "empty.bin: empty file, not an image")
        }
        XCTAssertThrowsError(try ImageDecoder.decode(bytes: Array("GIF89a...".utf8), name: "x.gif")) { error in
            XCTAssertTrue("\(error)".hasPrefix("x.gif: not a JPEG, PNG or PPM/PGM image"), "\(error)")
        }
        XCTAssertThrowsError(try ImageDecoder.decode(path: "/nonexistent/mvimage/file.jpg")) { error in
            XCTAssertTrue("\(error)".hasPrefix("/nonexistent/mvimage/file.jpg: cannot open"), "\(error)")
        }
        // Format is sniffed from content, not the name.
        let ppm = Array("P5 1 1 255\n".utf8) + [9]
        XCTAssertEqual(try ImageDecoder.decode(bytes: ppm, name: "misnamed.jpg").pixels, [9, 9, 9])
    }

    /// A longer random-mutation run, only when MVIMAGE_FUZZ_ITERATIONS is set (e.g. under
    /// `-sanitize=address`): every fixture, and the files of MVIMAGE_EXTRA_FIXTURES if set.
    func testExtendedFuzzing() throws {
        guard let env = getenv("MVIMAGE_FUZZ_ITERATIONS"), let iterations = Int(String(cString: env)) else {
            print("SKIP extended fuzzing: MVIMAGE_FUZZ_ITERATIONS is not set")
            return
        }
        var paths = sharedImageFiles(for: "extended fuzzing") ?? []
        if let extra = getenv("MVIMAGE_EXTRA_FIXTURES") {
            let dir = String(cString: extra)
            paths += try FileSystem.list(dir).filter { !$0.hasSuffix(".safetensors") }.map { FileSystem.join(dir, $0) }
        }
        var random = TestRandom(state: UInt64(iterations))
        var slowest = (0.0, "")
        for path in paths {
            let bytes = try FileSystem.read(path)
            guard !bytes.isEmpty else { continue }
            for trial in 0..<iterations {
                var damaged = bytes
                switch random.below(4) {
                case 0:
                    for _ in 0..<(1 + random.below(8)) { damaged[random.below(damaged.count)] ^= UInt8(1 << random.below(8)) }
                case 1:
                    for _ in 0..<(1 + random.below(4)) { damaged[random.below(damaged.count)] = UInt8(random.below(256)) }
                case 2:
                    damaged = Array(damaged.prefix(random.below(damaged.count)))
                default:
                    // Duplicate or drop a stretch, shifting everything after it.
                    let start = random.below(damaged.count)
                    let length = min(1 + random.below(64), damaged.count - start)
                    if random.below(2) == 0 {
                        damaged.insert(contentsOf: damaged[start..<(start + length)], at: start)
                    } else {
                        damaged.removeSubrange(start..<(start + length))
                    }
                }
                let label = "\(FileSystem.baseName(path))#\(trial)"
                let t = decodeCleanly(damaged, name: label)
                if t > slowest.0 { slowest = (t, label) }
            }
        }
        print("extended fuzzing: \(paths.count) files x \(iterations), slowest \(formatted(slowest.0, 3)) s (\(slowest.1))")
    }
}
