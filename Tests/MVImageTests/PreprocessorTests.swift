import MVFormats
import MVImage
import TestSupport
import XCTest

final class PreprocessorTests: XCTestCase {
    /// transformers' MobileViTImageProcessor outputs against ours, through our own decoder.
    /// The fixtures were made with `MobileViTImageProcessor(size={"shortest_edge": 288},
    /// crop_size=256×256)`, so `resample` is the class default, which in transformers 5 is
    /// bicubic (their metadata says bilinear, but bilinear differs by up to 29/255 while
    /// bicubic agrees to 1/255): this is `Preprocessor()` with the same two settings.
    func testMatchesTransformersOnFixtures() throws {
        guard let dir = SharedFixtures.path("images/preprocess", for: "preprocess fixtures"),
            let images = SharedFixtures.path("images", for: "preprocess fixtures")
        else { return }
        var pre = Preprocessor()
        pre.resizeTarget = .shortestEdge(288)
        pre.cropSize = ImageSize(height: 256, width: 256)
        let files = try FileSystem.list(dir).filter { $0.hasSuffix(".safetensors") }
        XCTAssertFalse(files.isEmpty)
        for name in files {
            let st = try SafeTensorsFile(path: FileSystem.join(dir, name))
            let info = try st.info("pixel_values")
            XCTAssertEqual(info.shape, [1, 3, 256, 256])
            let reference = try st.floats("pixel_values")
            let source = try XCTUnwrap(st.metadata["source"])
            let (values, height, width) = try pre.pixelValues(path: FileSystem.join(images, source))
            XCTAssertEqual(height, 256)
            XCTAssertEqual(width, 256)
            XCTAssertEqual(values.count, reference.count)
            var maxError: Float = 0
            var sum: Double = 0
            for (a, b) in zip(values, reference) {
                let e = abs(a - b)
                maxError = max(maxError, e)
                sum += Double(e)
            }
            let mean = sum / Double(max(values.count, 1))
            print("preprocess \(source): max |diff| \(formatted(Double(maxError) * 255, 4))/255, mean \(formatted(mean * 255, 5))/255")
            XCTAssertLessThanOrEqual(maxError, 2 / 255 + 1e-6, source)
            XCTAssertLessThanOrEqual(mean, 0.5 / 255, source)
        }
    }

    func testConfigParsing() throws {
        let config = try JSON.parse("""
            {"image_processor_type": "MobileViTImageProcessor", "do_resize": true, "size": {"shortest_edge": 64},
             "resample": 3, "do_center_crop": true, "crop_size": {"height": 48, "width": 40}, "do_rescale": true,
             "rescale_factor": 0.5, "do_flip_channel_order": false}
            """)
        let p = try Preprocessor(config: config)
        XCTAssertEqual(p.resizeTarget, .shortestEdge(64))
        XCTAssertEqual(p.resample, .bicubic)
        XCTAssertEqual(p.cropSize, ImageSize(height: 48, width: 40))
        XCTAssertEqual(p.rescaleFactor, 0.5)
        XCTAssertFalse(p.doFlipChannelOrder)

        // Defaults: transformers 4's MobileViTImageProcessor.
        let d = try Preprocessor(config: JSON.parse("{}"))
        XCTAssertEqual(d.resizeTarget, .shortestEdge(224))
        XCTAssertEqual(d.resample, .bicubic)
        XCTAssertEqual(d.cropSize, ImageSize(height: 256, width: 256))
        XCTAssertTrue(d.doFlipChannelOrder)

        let exact = try Preprocessor(config: JSON.parse(#"{"size": {"height": 30, "width": 20}}"#))
        XCTAssertEqual(exact.resizeTarget, .exact(ImageSize(height: 30, width: 20)))

        for bad in [#"{"resample": 9}"#, #"{"size": {"shortest_edge": 0}}"#, #"{"size": {"foo": 1}}"#,
                    #"{"do_resize": "yes"}"#, #"{"crop_size": {"height": 5}}"#, #"[1]"#,
                    #"{"image_processor_type": "ViTImageProcessor"}"#,
                    // Sizes no one means (a crop of 2^40 rows once aborted on allocation).
                    #"{"crop_size": {"height": 1099511627776, "width": 64}}"#, #"{"crop_size": 8193}"#,
                    #"{"size": {"shortest_edge": 100000}}"#, #"{"size": {"height": 64, "width": 9000}}"#,
                    // Rescale factors that overflow float32 pixels (1e308: every pixel infinite) or make no sense.
                    #"{"rescale_factor": 1e308}"#, #"{"rescale_factor": 0}"#, #"{"rescale_factor": -0.5}"#, #"{"rescale_factor": "1"}"#]
        {
            XCTAssertThrowsError(try Preprocessor(config: JSON.parse(bad)), bad)
        }
    }

    /// The reference checkpoints' configs: shortest edge 288, bilinear, crop 256, BGR.
    func testCheckpointConfigs() throws {
        for (model, edge, crop) in [("reference/mobilevit_xxs", 288, 256), ("mobilevit_xxs_cifar10_64", 64, 64)] {
            guard let path = SharedFixtures.path("models/\(model)/preprocessor_config.json", for: "checkpoint config") else { return }
            let p = try Preprocessor(configPath: path)
            XCTAssertEqual(p.resizeTarget, .shortestEdge(edge))
            XCTAssertEqual(p.resample, .bilinear)
            XCTAssertEqual(p.cropSize, ImageSize(height: crop, width: crop))
            XCTAssertEqual(p.rescaleFactor, 1 / 255, accuracy: 1e-12)
            XCTAssertTrue(p.doFlipChannelOrder)
        }
    }

    /// get_resize_output_image_size: the long side is int(edge * long / short).
    func testShortestEdgeArithmetic() throws {
        var p = Preprocessor()
        p.resizeTarget = .shortestEdge(288)
        p.doCenterCrop = false
        XCTAssertEqual(try p.outputSize(forHeight: 300, width: 451), ImageSize(height: 288, width: 432))
        XCTAssertEqual(try p.outputSize(forHeight: 451, width: 300), ImageSize(height: 432, width: 288))
        XCTAssertEqual(try p.outputSize(forHeight: 512, width: 512), ImageSize(height: 288, width: 288))
        XCTAssertEqual(try p.outputSize(forHeight: 872, width: 1000), ImageSize(height: 288, width: 330))
        p.targetSize = ImageSize(height: 100, width: 60)
        XCTAssertEqual(try p.outputSize(forHeight: 872, width: 1000), ImageSize(height: 100, width: 60))
    }

    /// Centre crop with padding, rescale and channel flip on a tiny image, without resizing.
    func testCropPaddingRescaleAndFlip() throws {
        // 3 wide, 2 high; R = 10·x + y, G = 100, B = 200.
        var pixels: [UInt8] = []
        for y in 0..<2 { for x in 0..<3 { pixels += [UInt8(10 * x + y), 100, 200] } }
        let image = RGBImage(width: 3, height: 2, pixels: pixels)
        var p = Preprocessor()
        p.doResize = false
        p.cropSize = ImageSize(height: 4, width: 2)
        p.rescaleFactor = 0.5
        let (values, h, w) = try p.pixelValues(for: image)
        XCTAssertEqual(h, 4)
        XCTAssertEqual(w, 2)
        // Rows: top = floor((2 − 4) / 2) = −1 → rows −1, 0, 1, 2; columns: left = floor((3 − 2) / 2) = 0.
        // Channel 0 is B (flipped), channel 2 is R.
        let b = Array(values[0..<8]), r = Array(values[16..<24])
        XCTAssertEqual(b, [0, 0, 100, 100, 100, 100, 0, 0])
        XCTAssertEqual(r, [0, 0, 0, 5, 0.5, 5.5, 0, 0])

        // A crop inside the image: one column of three, left = 1.
        p.cropSize = ImageSize(height: 2, width: 1)
        p.doFlipChannelOrder = false
        let inner = try p.pixelValues(for: image)
        XCTAssertEqual(Array(inner.values[0..<2]), [5, 5.5])
    }

    /// The explicit size override resizes straight to H×W with the configured filter, no crop.
    func testTargetSizeOverride() throws {
        var pixels: [UInt8] = []
        for i in 0..<(20 * 10) { pixels += [UInt8(i % 256), UInt8((i * 3) % 256), 7] }
        let image = RGBImage(width: 20, height: 10, pixels: pixels)
        var p = Preprocessor()
        p.targetSize = ImageSize(height: 6, width: 9)
        let (values, h, w) = try p.pixelValues(for: image)
        XCTAssertEqual(h, 6)
        XCTAssertEqual(w, 9)
        let resized = try Resize.resize(image, width: 9, height: 6, filter: p.resample)
        // Channel 2 of the output (R after the flip) is resized R / 255.
        for i in 0..<(6 * 9) {
            XCTAssertEqual(values[2 * 54 + i], Float(Double(resized.pixels[3 * i]) / 255.0))
        }
    }

    func testRefusesHugeIntermediateSizes() {
        let image = RGBImage(width: 1, height: 5000, pixels: [UInt8](repeating: 0, count: 15000))
        var p = Preprocessor()
        p.resizeTarget = .shortestEdge(288)
        XCTAssertThrowsError(try p.pixelValues(for: image)) { error in
            XCTAssertTrue(error is InputError)
        }
    }
}
