import MVCLI
import MVFormats
import MVImage
import TestSupport
import XCTest

/// The commands on a segmentation model (the trained CIFAR-10 mosaic DeepLabV3 of ../shared):
/// eval's mIoU report, infer's logit and label maps, segment's PNGs, and the bad inputs — a mask
/// of another size, a mask value past the classes, a segmentation model given to classify — each
/// exit 2 with nothing written.
final class SegmentationCommandTests: XCTestCase {
    var dir: TemporaryDirectory!
    var model: String!

    override func setUpWithError() throws {
        guard let m = SharedFixtures.path("models/deeplabv3_mobilevit_xxs_cifar10_mosaic", for: "segmentation commands"),
              let val = SharedFixtures.path("data/cifar10_seg/val", for: "segmentation commands") else {
            throw XCTSkip("../shared is not present")
        }
        model = m
        dir = TemporaryDirectory()
        for sub in ["set", "set/images", "set/masks"] { mkdir(dir.file(sub), 0o755) }
        for name in ["00000", "00001", "00002"] {
            try dir.copy(FileSystem.join(val, "images/\(name).jpg"), to: "set/images/\(name).jpg")
            try dir.copy(FileSystem.join(val, "masks/\(name).png"), to: "set/masks/\(name).png")
        }
    }

    override func tearDown() {
        dir?.remove()
    }

    func testEvalReportsMeanIoUAndComparesTwoModels() throws {
        let json = dir.file("eval.json")
        let mvq = dir.file("seg.mvq")
        XCTAssertEqual(CLI.main(["calibrate", "--model", model, "--images", dir.file("set"), "--count", "3", "--no-eval",
                                 "--report-images", "0", "--threads", "2", "--output", mvq]), 0)
        XCTAssertEqual(CLI.main(["eval", "--model", mvq, "--compare", model, "--images", dir.file("set"), "--threads", "2",
                                 "--json", json]), 0)
        let report = try JSON.parse(FileSystem.read(json))
        XCTAssertEqual(report["images"]?.int, 3)
        let miou = try XCTUnwrap(report["miou"]?.double), accuracy = try XCTUnwrap(report["pixel_accuracy"]?.double)
        XCTAssertTrue(miou > 0 && miou <= 1 && accuracy > 0.5 && accuracy <= 1, "\(miou) \(accuracy)")
        let perClass = try XCTUnwrap(report["per_class_iou"]?.object)
        XCTAssertEqual(perClass.count, 11)
        XCTAssertEqual(perClass.first?.0, "background")
        XCTAssertTrue(perClass.contains { $0.1 == .null }, "classes absent from 3 mosaics are null")
        XCTAssertNotNil(report["compare"]?["miou"]?.double)
        XCTAssertNotNil(report["miou_drop_points"]?.double)
        let agreement = try XCTUnwrap(report["pixel_agreement"]?.double)
        XCTAssertGreaterThan(agreement, 0.9)

        // A segmentation .mvq is refused by classify.
        XCTAssertEqual(CLI.main(["classify", "--model", mvq, dir.file("set/images/00000.jpg")]), 2)
    }

    func testMaskOfAnotherSizeStopsEval() throws {
        let small = try PNGEncoder.encodeIndexed(indices: [UInt8](repeating: 0, count: 64 * 64), width: 64, height: 64,
                                                 palette: VOCPalette.colors256)
        try FileSystem.writeAtomically(dir.file("set/masks/00001.png"), bytes: small)
        let json = dir.file("eval.json")
        XCTAssertEqual(CLI.main(["eval", "--model", model, "--images", dir.file("set"), "--threads", "1", "--json", json]), 2)
        XCTAssertFalse(FileSystem.exists(json))
    }

    func testMaskValuePastTheClassesStopsEval() throws {
        var labels = try ImageDecoder.decodeLabels(path: dir.file("set/masks/00002.png")).labels
        labels[5] = 11  // classes are 0…10; 255 alone means ignore
        try FileSystem.writeAtomically(dir.file("set/masks/00002.png"),
                                       bytes: try PNGEncoder.encodeIndexed(indices: labels, width: 128, height: 128,
                                                                           palette: VOCPalette.colors256))
        let json = dir.file("eval.json")
        XCTAssertEqual(CLI.main(["eval", "--model", model, "--images", dir.file("set"), "--threads", "1", "--json", json]), 2)
        XCTAssertFalse(FileSystem.exists(json))
        labels[5] = 255
        try FileSystem.writeAtomically(dir.file("set/masks/00002.png"),
                                       bytes: try PNGEncoder.encodeIndexed(indices: labels, width: 128, height: 128,
                                                                           palette: VOCPalette.colors256))
        XCTAssertEqual(CLI.main(["eval", "--model", model, "--images", dir.file("set"), "--threads", "1", "--json", json]), 0)
    }

    func testInferWritesLogitAndLabelMaps() throws {
        let out = dir.file("out.safetensors")
        XCTAssertEqual(CLI.main(["infer", "--model", model, "--images", dir.file("set/images"), "--output", out]), 0)
        let file = try SafeTensorsFile(path: out)
        XCTAssertEqual(try file.info("logits").shape, [3, 11, 16, 16], "output stride 8")
        XCTAssertEqual(try file.info("labels").shape, [3, 128, 128])
        let labels = try file.int32s("labels")
        XCTAssertTrue(labels.allSatisfy { (0..<11).contains($0) })
    }

    func testSegmentWritesPaletteLabelMapsAtTheImageSize() throws {
        let out = dir.file("maps")
        XCTAssertEqual(CLI.main(["segment", "--model", model, dir.file("set/images/00000.jpg"), "--output", out, "--overlay"]), 0)
        let map = try ImageDecoder.decodeLabels(path: FileSystem.join(out, "00000.png"))
        XCTAssertEqual([map.width, map.height], [128, 128])
        let truth = try ImageDecoder.decodeLabels(path: dir.file("set/masks/00000.png"))
        let agree = zip(map.labels, truth.labels).filter { $0 == $1 }.count
        XCTAssertGreaterThan(Double(agree) / Double(map.labels.count), 0.8, "a trained model's map resembles the mask")
        let overlay = try ImageDecoder.decode(path: FileSystem.join(out, "00000.overlay.png"))
        XCTAssertEqual([overlay.width, overlay.height], [128, 128])
        // A classification model is refused, and writes nothing.
        let other = dir.file("other")
        XCTAssertEqual(CLI.main(["segment", "--model", SharedFixtures.defaultModel, dir.file("set/images/00000.jpg"),
                                 "--output", other]), 2)
        XCTAssertFalse(FileSystem.exists(other))
    }
}
