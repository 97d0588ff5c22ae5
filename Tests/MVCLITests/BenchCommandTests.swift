import MVCLI
import MVFormats
import TestSupport
import XCTest

/// `mvquant bench` options beyond latency.
final class BenchCommandTests: XCTestCase {
    var dir: TemporaryDirectory!

    override func setUpWithError() throws {
        dir = TemporaryDirectory()
        for f in ["config.json", "model.safetensors", "preprocessor_config.json"] {
            try dir.copy(FileSystem.join(SharedFixtures.defaultModel, f), to: f)
        }
    }

    override func tearDown() {
        dir.remove()
    }

    /// bench --layers charges each produced tensor its time (for a model's profile), in execution
    /// order from the input to the logits; a float checkpoint has no int8 layers to time.
    func testBenchLayerTimes() throws {
        let model = dir.file("m.mvq")
        XCTAssertEqual(CLI.main(["calibrate", "--model", dir.path, "--images", FileSystem.join(SharedFixtures.packageRoot, "Calibration/calib"),
                                 "--count", "4", "--method", "minmax", "--report-images", "0", "--no-eval", "--threads", "1",
                                 "--output", model]), 0)
        XCTAssertEqual(CLI.main(["bench", "--model", model, "--iterations", "3", "--warmup", "0", "--threads", "1", "--layers",
                                 "--json", dir.file("b.json")]), 0)
        let report = try JSON.parse(FileSystem.read(dir.file("b.json")))
        let layers = try XCTUnwrap(report["layers"]?.array)
        let names = layers.compactMap { $0["tensor"]?.string }
        XCTAssertEqual(names.count, layers.count)
        XCTAssertGreaterThan(names.count, 50)
        XCTAssertEqual(names.first, "input")
        XCTAssertEqual(names.last, "logits")
        XCTAssertTrue(names.contains("mobilevit.conv_stem"))
        XCTAssertEqual(Set(names).count, names.count, "each tensor once")
        let times = layers.compactMap { $0["median_ms"]?.double }
        XCTAssertEqual(times.count, layers.count)
        XCTAssertTrue(times.allSatisfy { $0 >= 0 })
        XCTAssertGreaterThan(times.reduce(0, +), 0)
        XCTAssertEqual(CLI.main(["bench", "--model", dir.path, "--iterations", "1", "--layers"]), 1)
    }
}
