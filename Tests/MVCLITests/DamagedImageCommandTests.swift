import MVCLI
import MVFormats
import TestSupport
import XCTest

/// eval and calibrate over a folder holding one truncated file: stopped by default (exit 2,
/// nothing written), left out and listed with --skip-damaged; preprocess and classify refuse it
/// unless --recover-damaged.
final class DamagedImageCommandTests: XCTestCase {
    var dir: TemporaryDirectory!
    let model = SharedFixtures.defaultModel

    /// An ImageFolder tree of two classes, three images each, one of them cut short.
    override func setUpWithError() throws {
        dir = TemporaryDirectory()
        let val = FileSystem.join(SharedFixtures.packageRoot, "Calibration/val")
        for name in ["cat", "dog"] {
            mkdir(dir.file(name), 0o755)
            for f in ["0000.jpg", "0001.jpg", "0002.jpg"] {
                try dir.copy(FileSystem.join(val, "\(name)/\(f)"), to: "\(name)/\(f)")
            }
        }
        let whole = try FileSystem.read(dir.file("dog/0001.jpg"))
        try FileSystem.writeAtomically(dir.file("dog/0001.jpg"), bytes: Array(whole.prefix(whole.count * 2 / 3)))
    }

    override func tearDown() {
        dir.remove()
    }

    var truncated: String { dir.file("dog/0001.jpg") }

    func testEvalStopsOnATruncatedFileUnlessSkipping() throws {
        let json = dir.file("eval.json")
        XCTAssertEqual(CLI.main(["eval", "--model", model, "--images", dir.path, "--threads", "1", "--json", json]), 2)
        XCTAssertFalse(FileSystem.exists(json), "nothing written")

        XCTAssertEqual(CLI.main(["eval", "--model", model, "--images", dir.path, "--threads", "2", "--json", json,
                                 "--skip-damaged"]), 0)
        let report = try JSON.parse(FileSystem.read(json))
        XCTAssertEqual(report["images"]?.int, 5)
        let skipped = try XCTUnwrap(report["skipped"]?.array)
        XCTAssertEqual(skipped.count, 1)
        XCTAssertEqual(skipped.first?["file"]?.string, truncated)
        XCTAssertTrue(skipped.first?["reason"]?.string?.contains("truncated JPEG file") == true, "\(skipped)")
        let predictions = try XCTUnwrap(report["predictions"]?.array)
        XCTAssertEqual(predictions.count, 6)
        XCTAssertEqual(predictions[4].int, -1, "the skipped file's place")
        let perClass = try XCTUnwrap(report["per_class"]?.array)
        XCTAssertEqual(perClass.compactMap { $0["total"]?.int }.reduce(0, +), 5)

        // An intact tree reports an empty list.
        XCTAssertEqual(unlink(truncated), 0)
        XCTAssertEqual(CLI.main(["eval", "--model", model, "--images", dir.path, "--threads", "1", "--json", json]), 0)
        XCTAssertEqual(try JSON.parse(FileSystem.read(json))["skipped"]?.array?.count, 0)
    }

    func testCalibrateStopsBeforeWritingUnlessSkipping() throws {
        let output = dir.file("m.mvq")
        let common = ["calibrate", "--model", model, "--images", dir.path, "--count", "4", "--method", "minmax",
                      "--report-images", "0", "--threads", "1", "--output", output]
        XCTAssertEqual(CLI.main(common + ["--eval", dir.path]), 2)
        XCTAssertFalse(FileSystem.exists(output), "nothing written")

        let json = dir.file("c.json")
        XCTAssertEqual(CLI.main(common + ["--no-eval", "--skip-damaged", "--json", json]), 0)
        XCTAssertTrue(FileSystem.exists(output))
        let report = try JSON.parse(FileSystem.read(json))
        XCTAssertEqual(report["skipped"]?.array?.compactMap { $0["file"]?.string }, [truncated])
        XCTAssertEqual(report["calibration"]?["images"]?.int, 4)
    }

    func testSingleImageCommandsRefuseUnlessRecovering() throws {
        let out = dir.file("p.safetensors")
        XCTAssertEqual(CLI.main(["preprocess", "--model", model, truncated, "--output", out]), 2)
        XCTAssertFalse(FileSystem.exists(out))
        XCTAssertEqual(CLI.main(["preprocess", "--model", model, truncated, "--output", out, "--recover-damaged"]), 0)
        XCTAssertTrue(FileSystem.exists(out))
        XCTAssertEqual(CLI.main(["classify", "--model", model, truncated]), 2)
        XCTAssertEqual(CLI.main(["classify", "--model", model, truncated, "--recover-damaged"]), 0)
        let logits = dir.file("l.safetensors")
        XCTAssertEqual(CLI.main(["infer", "--model", model, "--images", truncated, "--output", logits]), 2)
        XCTAssertFalse(FileSystem.exists(logits))
        XCTAssertEqual(CLI.main(["infer", "--model", model, "--images", truncated, "--output", logits, "--recover-damaged"]), 0)
    }
}
