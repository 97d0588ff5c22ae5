@testable import MVCLI
import MVFormats
import MVImage
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// What commands report: `bench --layers`, and `--json -` leaving stdout to the JSON document.
final class CLIOutputTests: XCTestCase {
    /// The tests only read the float checkpoint; what they write goes to `dir`.
    let checkpoint = SharedFixtures.defaultModel
    var dir: TemporaryDirectory!

    override func setUp() {
        dir = TemporaryDirectory()
    }

    override func tearDown() {
        dir.remove()
    }

    /// One small model calibrated from the embedded checkpoint, shared by the tests that only read
    /// it (calibrating takes seconds; the tests used to calibrate one each). Lives in its own
    /// directory, removed after the last test of the class.
    static let calibratedDirectory = TemporaryDirectory()
    static let calibrationExitCode: Int32 = CLI.main(["calibrate", "--model", SharedFixtures.defaultModel,
                                                  "--images", FileSystem.join(SharedFixtures.packageRoot, "Calibration/calib"),
                                                  "--count", "4", "--method", "minmax", "--report-images", "0", "--no-eval",
                                                  "--threads", "1", "--output", calibratedDirectory.file("m.mvq")])

    override class func tearDown() {
        calibratedDirectory.remove()
    }

    /// The shared calibrated model's path (failing the test if calibration failed).
    func calibrated() throws -> String {
        try XCTUnwrap(Self.calibrationExitCode == 0 ? Self.calibratedDirectory.file("m.mvq") : nil,
                      "calibrating the shared test model exited with \(Self.calibrationExitCode)")
    }

    /// bench --layers charges each produced tensor its time (for a model's profile), in execution
    /// order from the input to the logits; a float checkpoint has no int8 layers to time.
    func testBenchLayerTimes() throws {
        let model = try calibrated()
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
        XCTAssertEqual(CLI.main(["bench", "--model", checkpoint, "--iterations", "1", "--layers"]), 1)
    }

    /// bench --image times the model on a real image (a segmentation model's label map costs what
    /// the image's regions make it); a file that is not an image is bad input (exit 2).
    func testBenchOnAnImage() throws {
        let model = try calibrated()
        let calib = FileSystem.join(SharedFixtures.packageRoot, "Calibration/calib")
        let image = try XCTUnwrap(ImageDataset.load(path: calib).items.first?.path)
        XCTAssertEqual(CLI.main(["bench", "--model", model, "--image", image, "--iterations", "1", "--warmup", "0",
                                 "--threads", "1"]), 0)
        let notAnImage = dir.file("not-an-image.jpg")
        try FileSystem.writeAtomically(notAnImage, bytes: Array("plain text".utf8))
        XCTAssertEqual(CLI.main(["bench", "--model", model, "--image", notAnImage, "--iterations", "1"]), 2)
        XCTAssertEqual(CLI.main(["bench", "--model", model, "--image", dir.file("missing.jpg"), "--iterations", "1"]), 2)
    }

    /// Runs `body` with file descriptor 1 sent to a file; its exit code and what it wrote there.
    func capturingStandardOutput(_ body: () -> Int32) throws -> (Int32, String) {
        let path = dir.file("stdout.txt")
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        fflush(nil)
        let saved = dup(1)
        dup2(fd, 1)
        let status = body()
        fflush(nil)
        dup2(saved, 1)
        close(saved)
        close(fd)
        return (status, String(decoding: try FileSystem.read(path), as: UTF8.self))
    }

    /// With `--json -` the human-readable report goes to stderr, so stdout parses as JSON (it used
    /// to hold the text report followed by the JSON).
    func testJSONOnStandardOutputIsAllOfIt() throws {
        for command in [["inspect", "--model", checkpoint, "--json", "-"],
                        ["bench", "--model", checkpoint, "--iterations", "1", "--warmup", "0", "--json", "-"]] {
            let (status, text) = try capturingStandardOutput { CLI.main(command) }
            XCTAssertEqual(status, 0, command[0])
            let json = try JSON.parse(Array(text.utf8)[...])
            XCTAssertEqual(json["model"]?.string, checkpoint, command[0])
        }
    }

    /// Number formatting never traps: values whose digits do not fit 2⁵³ units of the last place
    /// are printed in Swift's shortest form (a huge activation scale in a hand-edited model used
    /// to end `inspect` with "Double value cannot be converted to Int").
    func testFixedFormattingOfExtremeValues() {
        XCTAssertEqual(fixed(1.5, 2), "1.50")
        XCTAssertEqual(fixed(-0.004, 2), "0.00")
        XCTAssertEqual(fixed(-2.5, 0), "-3")  // halves away from zero
        XCTAssertEqual(fixed(1e308, 3), "1e+308")
        XCTAssertEqual(fixed(-1e300, 1), "-1e+300")
        XCTAssertEqual(fixed(Double.greatestFiniteMagnitude, 0), "\(Double.greatestFiniteMagnitude)")
        XCTAssertEqual(fixed(Double.infinity, 2), "inf")
        XCTAssertEqual(formatScale(1e-30), "1.000e-30")
        XCTAssertEqual(formatScale(1e30), "1.000e30")
    }

    /// A model file whose activation scale is out of the plausible range (here 1e308, with a valid
    /// checksum) is refused with one line and exit 2 by every command that loads it; a large but
    /// plausible one (1e29) is described by `inspect`.
    func testImplausibleActivationScaleIsRefused() throws {
        let model = try calibrated()
        let reader = try MVQReader(path: model)
        let tensors = try reader.copiedTensors()
        guard case var .object(sections) = reader.model, let a = sections.firstIndex(where: { $0.0 == "activations" }),
              case var .object(activations) = sections[a].1,
              let pooler = activations.firstIndex(where: { $0.0 == "mobilevit.pooler" }),
              case var .array(params) = activations[pooler].1 else {
            return XCTFail("the model header has no activation parameters for the pooler")
        }
        for (scale, expected) in [(1e308, Int32(2)), (1e29, Int32(0))] {
            params[0] = .number(scale)
            activations[pooler].1 = .array(params)
            sections[a].1 = .object(activations)
            let edited = dir.file("edited-\(expected).mvq")
            try MVQFile.write(header: .object(sections), tensors: tensors, to: edited)
            XCTAssertEqual(CLI.main(["inspect", "--model", edited, "--json", dir.file("i.json")]), expected, "scale \(scale)")
            if expected == 2 {
                XCTAssertEqual(CLI.main(["classify", "--model", edited, FileSystem.join(SharedFixtures.packageRoot, "Calibration/calib/cat/0000.jpg")]), 2)
            }
        }
    }
}
