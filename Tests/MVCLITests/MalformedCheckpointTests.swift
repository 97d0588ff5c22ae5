import MVCLI
import MVFormats
import TestSupport
import XCTest

/// Malformed checkpoints end in a one-line error and exit code 2, never a crash.
final class MalformedCheckpointTests: XCTestCase {
    var dir: TemporaryDirectory!
    var input: String!

    override func setUpWithError() throws {
        dir = TemporaryDirectory()
        for f in ["config.json", "model.safetensors", "preprocessor_config.json"] {
            try dir.copy(FileSystem.join(SharedFixtures.defaultModel, f), to: f)
        }
        input = dir.file("input.safetensors")
        try SafeTensorsWriter.write([.float32("pixel_values", shape: [1, 3, 64, 64], [Float](repeating: 0.5, count: 3 * 64 * 64))],
                                    to: input)
    }

    override func tearDown() {
        dir.remove()
    }

    func infer() -> Int32 {
        CLI.main(["infer", "--model", dir.path, "--input", input, "--output", dir.file("out.safetensors")])
    }

    func testIntactCheckpointRuns() throws {
        XCTAssertEqual(infer(), 0)
        let out = try SafeTensorsFile(path: dir.file("out.safetensors"))
        XCTAssertEqual(try out.info("logits").shape, [1, 10])
    }

    func testTruncatedWeights() throws {
        let bytes = try FileSystem.read(dir.file("model.safetensors"))
        for cut in [0, 4, 8, 100, bytes.count / 2, bytes.count - 1] {
            try FileSystem.writeAtomically(dir.file("model.safetensors"), bytes: Array(bytes[0..<cut]))
            XCTAssertEqual(infer(), 2, "truncated at \(cut)")
        }
    }

    /// Rewrites the header JSON of model.safetensors through `edit`, keeping the data.
    func editHeader(_ edit: (inout [(String, JSON)]) -> Void) throws {
        let bytes = try FileSystem.read(dir.file("model.safetensors"))
        var n = 0
        for k in 0..<8 { n |= Int(bytes[k]) << (8 * k) }
        var header = try JSON.parse(bytes[8..<(8 + n)]).object!
        edit(&header)
        var text = Array(JSON.object(header).serialized().utf8)
        while text.count % 8 != 0 { text.append(0x20) }
        var out: [UInt8] = []
        var len = text.count
        for _ in 0..<8 { out.append(UInt8(len & 0xFF)); len >>= 8 }
        try FileSystem.writeAtomically(dir.file("model.safetensors"), bytes: out + text + bytes[(8 + n)...])
    }

    func replaceEntry(_ name: String, in header: inout [(String, JSON)], _ f: (JSON) -> JSON) {
        let i = header.firstIndex { $0.0 == name }!
        header[i].1 = f(header[i].1)
    }

    func testHeaderLyingAboutOffsets() throws {
        try editHeader { h in
            replaceEntry("classifier.weight", in: &h) { e in
                let o = e["data_offsets"]!.array!
                return .object([("dtype", e["dtype"]!), ("shape", e["shape"]!),
                                ("data_offsets", .array([o[0], .number(o[1].double! + 1e9)]))])
            }
        }
        XCTAssertEqual(infer(), 2)
    }

    func testWrongDtype() throws {
        try editHeader { h in
            replaceEntry("classifier.bias", in: &h) { e in
                .object([("dtype", "I32"), ("shape", e["shape"]!), ("data_offsets", e["data_offsets"]!)])
            }
        }
        XCTAssertEqual(infer(), 2)
    }

    func testMissingTensor() throws {
        try editHeader { h in h.removeAll { $0.0 == "mobilevit.conv_stem.convolution.weight" } }
        XCTAssertEqual(infer(), 2)
    }

    /// Finite but huge weights (a BatchNorm bias of 3e38) overflow float32 inside the network:
    /// an error, not "nan%" and exit 0 (found by fuzzing), and no output file.
    func testOverflowingWeightsGiveAnError() throws {
        let file = try SafeTensorsFile(path: dir.file("model.safetensors"))
        let name = "mobilevit.encoder.layer.1.layer.0.conv_3x3.normalization.bias"
        let at = try file.info(name).dataRange.lowerBound
        var bytes = try FileSystem.read(dir.file("model.safetensors"))
        for (i, b) in withUnsafeBytes(of: Float(3e38).bitPattern.littleEndian, Array.init).enumerated() { bytes[at + i] = b }
        try FileSystem.writeAtomically(dir.file("model.safetensors"), bytes: bytes)
        XCTAssertEqual(infer(), 2)
        XCTAssertFalse(FileSystem.exists(dir.file("out.safetensors")))
        XCTAssertEqual(CLI.main(["classify", "--model", dir.path, FileSystem.join(SharedFixtures.packageRoot, "Calibration/calib/cat/0000.jpg")]), 2)
        // Calibration sees the NaN/inf activations and says so (it used to trap on a histogram
        // position beyond Int), writing nothing.
        XCTAssertEqual(CLI.main(["calibrate", "--model", dir.path, "--images", FileSystem.join(SharedFixtures.packageRoot, "Calibration/calib"),
                                 "--count", "2", "--no-eval", "--report-images", "0", "--threads", "1",
                                 "--output", dir.file("c.mvq")]), 2)
        XCTAssertFalse(FileSystem.exists(dir.file("c.mvq")))
    }

    /// NaN or infinite pixel values are refused (the float path turned them into NaN logits).
    func testNonFiniteInputIsRefused() throws {
        for bad in [Float.nan, .infinity, -.infinity] {
            var values = [Float](repeating: 0.5, count: 3 * 64 * 64)
            values[100] = bad
            try SafeTensorsWriter.write([.float32("pixel_values", shape: [1, 3, 64, 64], values)], to: input)
            XCTAssertEqual(infer(), 2, "\(bad)")
            XCTAssertFalse(FileSystem.exists(dir.file("out.safetensors")))
        }
    }

    /// Every --images path must yield images: one that does not is an error even beside a folder
    /// that does (it used to be left out of the output silently).
    func testEveryImagesPathMustHoldImages() throws {
        let folder = FileSystem.join(SharedFixtures.packageRoot, "Calibration/calib/cat")
        let out = dir.file("out.safetensors")
        XCTAssertEqual(CLI.main(["infer", "--model", dir.path, "--images", folder, "--output", out]), 0)
        try FileSystem.writeAtomically(dir.file("notes.txt"), bytes: Array("not an image".utf8))
        XCTAssertEqual(CLI.main(["infer", "--model", dir.path, "--images", folder, "--images", dir.file("notes.txt"),
                                 "--output", dir.file("out2.safetensors")]), 2)
        XCTAssertFalse(FileSystem.exists(dir.file("out2.safetensors")))
    }

    /// A preprocessor config may ask for crops up to 8192 a side, but the networks run at most 4096
    /// a side and 4 megapixels: classify, eval and infer refuse such a crop before decoding any
    /// image (a float run at 8000×8000 died allocating a 2 GB arena), `--size` overrides it, and
    /// without a crop (the size then follows each image) the run itself refuses the size.
    func testHugePreprocessorSizeIsRefused() throws {
        var pre = try JSON.parse(try FileSystem.read(dir.file("preprocessor_config.json"))).object!
        func write(_ key: String, _ value: JSON) throws {
            if let i = pre.firstIndex(where: { $0.0 == key }) { pre[i].1 = value } else { pre.append((key, value)) }
            try FileSystem.writeAtomically(dir.file("preprocessor_config.json"), bytes: Array(JSON.object(pre).serialized().utf8))
        }
        try write("crop_size", .object([("height", 8000), ("width", 8000)]))
        try write("size", .object([("shortest_edge", 8000)]))
        let image = FileSystem.join(SharedFixtures.packageRoot, "Calibration/calib/cat/0000.jpg")
        let val = FileSystem.join(SharedFixtures.packageRoot, "Calibration/val")
        let out = dir.file("out.safetensors")
        XCTAssertEqual(CLI.main(["classify", "--model", dir.path, image]), 2)
        XCTAssertEqual(CLI.main(["eval", "--model", dir.path, "--images", val, "--limit", "2"]), 2)
        XCTAssertEqual(CLI.main(["infer", "--model", dir.path, "--images", image, "--output", out]), 2)
        XCTAssertFalse(FileSystem.exists(out))
        XCTAssertEqual(CLI.main(["classify", "--model", dir.path, "--size", "64x64", image]), 0)
        // No crop: a 32×32 image resized to a 2100 shortest edge is 4.4 megapixels.
        try write("do_center_crop", false)
        try write("size", .object([("shortest_edge", 2100)]))
        XCTAssertEqual(CLI.main(["infer", "--model", dir.path, "--images", image, "--output", out]), 2)
        XCTAssertFalse(FileSystem.exists(out))
    }

    func testConfigInconsistentWithWeights() throws {
        var config = try JSON.parse(try FileSystem.read(dir.file("config.json"))).object!
        let i = config.firstIndex { $0.0 == "hidden_sizes" }!
        config[i].1 = [64, 80, 128]
        try FileSystem.writeAtomically(dir.file("config.json"), bytes: Array(JSON.object(config).serialized().utf8))
        XCTAssertEqual(infer(), 2)
    }

    func testUnknownArchitecture() throws {
        let original = try JSON.parse(try FileSystem.read(dir.file("config.json"))).object!
        let i = original.firstIndex { $0.0 == "model_type" }!
        // Another architecture, and configs that do not say which (found by fuzzing: these ran).
        for value: JSON? in ["mobilevitv2", 5, .null, ["mobilevit"], nil] {
            var config = original
            if let value { config[i].1 = value } else { config.remove(at: i) }
            try FileSystem.writeAtomically(dir.file("config.json"), bytes: Array(JSON.object(config).serialized().utf8))
            XCTAssertEqual(infer(), 2, "model_type \(value.map { $0.serialized() } ?? "missing")")
        }
    }

    /// Zero attention heads once divided by zero in the config check (a crash, not an error).
    func testZeroAttentionHeads() throws {
        var config = try JSON.parse(try FileSystem.read(dir.file("config.json"))).object!
        let i = config.firstIndex { $0.0 == "num_attention_heads" }!
        config[i].1 = 0
        try FileSystem.writeAtomically(dir.file("config.json"), bytes: Array(JSON.object(config).serialized().utf8))
        XCTAssertEqual(infer(), 2)
    }

    func testCorruptConfigJSON() throws {
        try FileSystem.writeAtomically(dir.file("config.json"), bytes: Array("{\"hidden_sizes\": [64,".utf8))
        XCTAssertEqual(infer(), 2)
    }

    func testWrongInputShape() throws {
        try SafeTensorsWriter.write([.float32("pixel_values", shape: [1, 4, 8, 8], [Float](repeating: 0, count: 256))], to: input)
        XCTAssertEqual(infer(), 2)
    }

    func testUsageErrors() {
        XCTAssertEqual(CLI.main(["infer", "--model"]), 1)
        for size in ["32x", "x32", "x", "32x32x32", "0x32", "32X-1"] {
            XCTAssertEqual(CLI.main(["inspect", "--model", dir.path, "--size", size]), 1, "--size \(size)")
        }
        XCTAssertEqual(CLI.main(["inspect", "--model", dir.path, "--size", "32X48"]), 0)
        XCTAssertEqual(CLI.main(["infer", "--bogus"]), 1)
        XCTAssertEqual(CLI.main(["no-such-command"]), 1)
        XCTAssertEqual(CLI.main(["infer", "--model", dir.path]), 1)
    }

    /// calibrate refuses bad options and missing paths before calibrating, and writes nothing.
    func testCalibrateChecksItsArgumentsFirst() throws {
        let output = dir.file("never.mvq")
        XCTAssertEqual(CLI.main(["calibrate", "--model", dir.path, "--sensitivity", "-1", "--output", output]), 1)
        XCTAssertEqual(CLI.main(["calibrate", "--model", dir.path, "--eval", dir.file("missing"), "--output", output]), 2)
        // An --eval folder without class subfolders (it used to score 0% after writing the model)
        // and one without images.
        mkdir(dir.file("flat"), 0o755)
        mkdir(dir.file("empty"), 0o755)
        try dir.copy(FileSystem.join(SharedFixtures.packageRoot, "Calibration/val/airplane/0000.jpg"), to: "flat/0000.jpg")
        XCTAssertEqual(CLI.main(["calibrate", "--model", dir.path, "--eval", dir.file("flat"), "--output", output]), 2)
        XCTAssertEqual(CLI.main(["calibrate", "--model", dir.path, "--eval", dir.file("empty"), "--output", output]), 2)
        XCTAssertEqual(CLI.main(["calibrate", "--model", dir.path, "--output", dir.file("missing/never.mvq")]), 2)
        XCTAssertFalse(FileSystem.exists(dir.file("missing")))
        XCTAssertFalse(FileSystem.exists(output))
    }

    /// eval checks its --json path and --compare model before the first evaluation, and refuses
    /// to compare models whose labels differ (agreement between their indices means nothing).
    func testEvalChecksItsArgumentsFirst() throws {
        let images = FileSystem.join(SharedFixtures.packageRoot, "Calibration/val")
        XCTAssertEqual(CLI.main(["eval", "--model", dir.path, "--images", images, "--json", dir.file("missing/r.json")]), 2)
        XCTAssertEqual(CLI.main(["eval", "--model", dir.path, "--images", images, "--compare", dir.file("missing")]), 2)
        // The same checkpoint with one label renamed.
        let other = TemporaryDirectory()
        defer { other.remove() }
        for f in ["model.safetensors", "preprocessor_config.json"] { try other.copy(dir.file(f), to: f) }
        let config = try String(decoding: FileSystem.read(dir.file("config.json")), as: UTF8.self)
        XCTAssertTrue(config.contains("\"airplane\""))
        let renamed = config.replacing("\"airplane\"", with: "\"aeroplane\"")
        try FileSystem.writeAtomically(other.file("config.json"), bytes: Array(renamed.utf8))
        XCTAssertEqual(CLI.main(["eval", "--model", dir.path, "--images", images, "--compare", other.path, "--json", dir.file("r.json")]), 2)
        XCTAssertFalse(FileSystem.exists(dir.file("r.json")))
    }
}
