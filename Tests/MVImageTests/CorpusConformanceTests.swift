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

/// The decoders against a peer's test corpus: every JPEG, PNG and PPM/PGM in Pillow's own
/// Tests/images and the PngSuite images pypng carries, each compared with Pillow's decode.
///
/// The corpus and Pillow's decodes come from `Tests/ImageCorpus/prepare.sh` (run by .ci/run),
/// which sets MVQUANT_IMAGE_CORPUS to its folder; without it the test prints SKIP and passes.
///
/// A file Pillow decodes must decode within its tolerance (JPEG 2/255, 8-bit PNG and PPM
/// exactly, 16-bit PGM 1), or be refused as damaged by the default policy and then match
/// when decoded with `recoverDamaged` (Pillow is lenient where the policy is not: a missing
/// PNG IEND, a bad CRC in or after the image data, bytes before a JPEG restart marker).
/// A file Pillow refuses must be refused too, except the documented cases below.
///
/// One allowance: a recovered JPEG whose entropy-coded data is corrupt decodes garbage
/// coefficients, far outside what an encoder writes; where they overflow the IDCT, libjpeg-turbo's
/// SIMD IDCT (16-bit lanes) wraps differently from the exact islow arithmetic here, flipping
/// isolated pixels between 0 and 255. Such files must match on at least 95% of their pixels.
final class CorpusConformanceTests: XCTestCase {
    /// Files Pillow refuses for reasons that do not apply to mvquant, with the reason.
    static let documentedExceptions: [String: String] = [
        // Pillow limits how far a text chunk may inflate; mvquant never inflates text chunks.
        "files/pillow/png_decompression_dos.png": "Pillow's text-chunk size limit; mvquant ignores text chunks",
        // APNG frame-control errors: mvquant decodes the default image (IDAT) and ignores the
        // animation chunks, as a PNG decoder that does not know APNG does.
        "files/pillow/apng/chunk_no_fctl.png": "APNG frame sequence error; mvquant reads only the default image",
    ]

    func testCorpusMatchesPillow() throws {
        guard let env = getenv("MVQUANT_IMAGE_CORPUS") else {
            print("SKIP image corpus: MVQUANT_IMAGE_CORPUS is not set (.ci/run sets it after Tests/ImageCorpus/prepare.sh)")
            return
        }
        let root = String(cString: env)
        let manifestPath = FileSystem.join(root, "manifest.json")
        guard FileSystem.exists(manifestPath) else {
            print("SKIP image corpus: \(manifestPath) is missing")
            return
        }
        let manifest = try JSON.parse(FileSystem.read(manifestPath))
        let entries = try XCTUnwrap(manifest["files"]?.array)
        XCTAssertGreaterThan(entries.count, 500, "the corpus should hold Pillow's and PngSuite's images")

        var matched = 0
        var refusedByBoth = 0
        var recoveredMatches: [String] = []
        var exceptions: [String] = []
        var bothRefused: [String] = []
        var worst = (diff: 0, file: "")
        for entry in entries {
            let file = try XCTUnwrap(entry["file"]?.string)
            let path = FileSystem.join(root, file)
            let strict = Result { try ImageDecoder.decode(path: path) }
            // Recovery must never crash or hang either, whatever the file holds.
            let lenient = Result { try ImageDecoder.decode(path: path, options: DecodeOptions(recoverDamaged: true)) }

            if entry["pillow"]?.string != "decoded" {
                if case .failure(let error) = strict {
                    refusedByBoth += 1
                    bothRefused.append("\(file): Pillow \(entry["reason"]?.string ?? "?"); mvquant \(error)")
                } else if let why = Self.documentedExceptions[file] {
                    exceptions.append("\(file) (\(why))")
                } else {
                    XCTFail("\(file): Pillow refuses it (\(entry["reason"]?.string ?? "?")) but mvquant decodes it")
                }
                continue
            }
            let width = try XCTUnwrap(entry["width"]?.int)
            let height = try XCTUnwrap(entry["height"]?.int)
            let tolerance = try XCTUnwrap(entry["tolerance"]?.int)
            let reference = try FileSystem.read(FileSystem.join(root, try XCTUnwrap(entry["rgb"]?.string)))
            XCTAssertEqual(reference.count, width * height * 3, file)

            let image: RGBImage
            switch strict {
            case .success(let decoded):
                image = decoded
                matched += 1
            case .failure(let error as DamagedImageError):
                // Refused by the policy: the recovering decode must give Pillow's pixels.
                guard case .success(let recovered) = lenient else {
                    XCTFail("\(file): Pillow decodes it; mvquant refuses it (\(error)) even when recovering")
                    continue
                }
                XCTAssertNotNil(recovered.damage, "\(file): a recovering decode must report the damage")
                image = recovered
                recoveredMatches.append("\(file) (\(error.summary))")
            case .failure(let error):
                XCTFail("\(file): Pillow decodes it; mvquant refuses it: \(error)")
                continue
            }
            guard image.width == width, image.height == height else {
                XCTFail("\(file): \(image.width)x\(image.height), Pillow \(width)x\(height)")
                continue
            }
            var maxDiff = 0
            var pixelsOff = 0
            for p in 0..<(width * height) {
                var d = 0
                for c in 0..<3 { d = max(d, abs(Int(image.pixels[3 * p + c]) - Int(reference[3 * p + c]))) }
                if d > tolerance { pixelsOff += 1 }
                maxDiff = max(maxDiff, d)
            }
            if let damage = image.damage, damage.format == "JPEG", damage.damage == .corruptData {
                let share = Double(pixelsOff) / Double(max(width * height, 1))
                XCTAssertLessThanOrEqual(share, 0.05, "\(file): \(pixelsOff) pixels differ from Pillow by more than \(tolerance)")
                recoveredMatches[recoveredMatches.count - 1] += ", \(pixelsOff) of \(width * height) pixels off by more than \(tolerance)"
            } else {
                XCTAssertLessThanOrEqual(maxDiff, tolerance, "\(file): differs from Pillow by up to \(maxDiff)")
                if maxDiff > worst.diff { worst = (maxDiff, file) }
            }
        }
        let decodedByPillow = entries.filter { $0["pillow"]?.string == "decoded" }.count
        print("image corpus: \(entries.count) files (Pillow \(manifest["pillow_version"]?.string ?? "?")): " +
              "\(decodedByPillow) decoded by Pillow, \(matched) matched by the default decode, " +
              "\(recoveredMatches.count) refused as damaged by default and matched when recovering; " +
              "\(entries.count - decodedByPillow) refused by Pillow, \(refusedByBoth) refused by both, " +
              "\(exceptions.count) documented exceptions; " +
              (worst.diff == 0 ? "all compared pixels identical" : "largest difference \(worst.diff) (\(worst.file))"))
        for r in recoveredMatches { print("  refused by default, matched when recovering: \(r)") }
        for e in exceptions { print("  documented exception: \(e)") }
        for r in bothRefused { print("  refused by both: \(r)") }
    }
}
