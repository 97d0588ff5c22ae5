import MVFloat
import MVFormats
import MVImage
import MVInt8
import MVKernels
import MVModel
import MVQuant
import TestSupport
import XCTest

/// DeepLabV3-MobileViT in int8: the trained CIFAR-10 mosaic model of ../shared calibrated on a few
/// mosaics, against float, across ISAs and thread counts, and its integer label map against a
/// direct computation from the accumulators.
final class SegmentationInt8Tests: XCTestCase {
    static let size = 128

    static let setup: (checkpoint: Checkpoint, model: QuantizedModel, images: [[Float]])? = {
        guard let dir = SharedFixtures.path("models/deeplabv3_mobilevit_xxs_cifar10_mosaic", for: "int8 segmentation"),
              let calib = SharedFixtures.path("data/cifar10_seg/calib/images", for: "int8 segmentation"),
              let val = SharedFixtures.path("data/cifar10_seg/val/images", for: "int8 segmentation") else { return nil }
        do {
            let checkpoint = try Checkpoint.load(directory: dir)
            let preprocessor = try Preprocessor(config: checkpoint.preprocessor!)
            func load(_ folder: String, _ n: Int) throws -> [[Float]] {
                try FileSystem.list(folder).sorted().prefix(n).map { try preprocessor.pixelValues(path: FileSystem.join(folder, $0)).values }
            }
            let calibration = try load(calib, 16)
            var options = QuantizationOptions()
            options.threads = 2
            let compiler = try quantize(checkpoint, height: size, width: size, imageCount: calibration.count, options: options) {
                calibration[$0]
            }.compiler
            let tmp = TemporaryDirectory()
            defer { tmp.remove() }
            try compiler.model.write(to: tmp.file("seg.mvq"))
            return (checkpoint, try QuantizedModel(path: tmp.file("seg.mvq")), try load(val, 12))
        } catch {
            XCTFail("setup failed: \(error)")
            return nil
        }
    }()

    func testLabelsAgreeWithFloat() throws {
        guard let s = Self.setup else { return }
        let n = Self.size
        let float = FloatExecutor(checkpoint: s.checkpoint)
        let int8 = try Int8Executor(model: s.model, threads: 1)
        XCTAssertTrue(int8.isDense)
        let shape = try int8.logitShape(height: n, width: n)
        XCTAssertEqual([shape.height, shape.width, shape.channels], [16, 16, 11], "output stride 8, 11 classes")
        var agree = 0
        for image in s.images {
            let f = float.run(nchw: image, height: n, width: n)
            let fl = f.withUnsafeBufferPointer { FloatExecutor.labels(logits: $0, height: 16, width: 16, classes: 11, outputHeight: n, outputWidth: n) }
            var labels = [Int32](repeating: -1, count: n * n)
            try image.withUnsafeBufferPointer { x in
                try labels.withUnsafeMutableBufferPointer { try int8.runDense(nchw: x, height: n, width: n, logits: nil, labels: $0) }
            }
            agree += zip(fl, labels).filter { $0 == $1 }.count
        }
        let fraction = Double(agree) / Double(s.images.count * n * n)
        print("int8 vs float label maps on \(s.images.count) mosaics: pixel agreement \(fraction)")
        // Measured 0.98 on the 1000 val mosaics with 256 calibration images; 16 here.
        XCTAssertGreaterThan(fraction, 0.95)
    }

    /// The label map is the argmax of the accumulators rescaled to one scale and upsampled with
    /// Q15 weights, computed here directly in Int64 per pixel.
    func testLabelMapIsTheArgmaxOfTheUpsampledAccumulators() throws {
        guard let s = Self.setup else { return }
        let n = Self.size, (lh, lw) = (100, 150)  // also a label size other than the input's
        let int8 = try Int8Executor(model: s.model, threads: 2)
        let record = try ClassifierRecord(s.model, name: "segmentation_head.classifier", classes: 11, inputs: 256, dense: true)
        let (multipliers, shifts) = try XCTUnwrap(record.labelRescale)
        for image in s.images.prefix(3) {
            let acc = image.withUnsafeBufferPointer { int8.runAccumulators(nchw: $0, height: n, width: n) }
            var labels = [Int32](repeating: -1, count: lh * lw)
            try image.withUnsafeBufferPointer { x in
                try labels.withUnsafeMutableBufferPointer {
                    try int8.runDense(nchw: x, height: n, width: n, logits: nil, labels: $0, labelSize: (lh, lw))
                }
            }
            let rescaled = acc.indices.map { requantize(acc[$0], multiplier: multipliers[$0 % 11], shift: shifts[$0 % 11]) }
            func axis(_ o: Int, _ size: Int, _ out: Int) -> (Int, Int, Int64) {
                // source = ((2o + 1)·size − out) / (2·out), clamped at 0; weight of i1 in Q15.
                let num = max(0, (2 * o + 1) * size - out), den = 2 * out
                let i0 = num / den, w = (Int64(num % den) << 16 + Int64(den)) / Int64(2 * den)
                return (i0, min(i0 + 1, size - 1), w)
            }
            var mismatches = 0
            for y in 0..<lh {
                let (y0, y1, wy) = axis(y, 16, lh)
                for x in 0..<lw {
                    let (x0, x1, wx) = axis(x, 16, lw)
                    var best = Int64.min, label = -1
                    for k in 0..<11 {
                        func v(_ yy: Int, _ xx: Int) -> Int64 { Int64(rescaled[(yy * 16 + xx) * 11 + k]) }
                        let top = (32768 - wx) * v(y0, x0) + wx * v(y0, x1), bottom = (32768 - wx) * v(y1, x0) + wx * v(y1, x1)
                        let value = (32768 - wy) * top + wy * bottom
                        if value > best { best = value; label = k }
                    }
                    if labels[y * lw + x] != Int32(label) { mismatches += 1 }
                }
            }
            XCTAssertEqual(mismatches, 0)
        }
    }

    func testBitIdenticalAcrossThreadsAndISAs() throws {
        guard let s = Self.setup else { return }
        let n = Self.size
        let reference = try Int8Executor(model: s.model, threads: 1, isa: .reference)
        var executors = [try Int8Executor(model: s.model, threads: 2, isa: .reference)]
        for isa in KernelISA.available where isa != .reference {
            executors.append(try Int8Executor(model: s.model, threads: 1, isa: isa))
            executors.append(try Int8Executor(model: s.model, threads: 2, isa: isa))
        }
        func outputs(_ e: Int8Executor, _ image: [Float]) throws -> ([Int32], [Int32]) {
            var labels = [Int32](repeating: -1, count: n * n)
            let acc = image.withUnsafeBufferPointer { e.runAccumulators(nchw: $0, height: n, width: n) }
            try image.withUnsafeBufferPointer { x in
                try labels.withUnsafeMutableBufferPointer { try e.runDense(nchw: x, height: n, width: n, logits: nil, labels: $0) }
            }
            return (acc, labels)
        }
        // One mosaic: the reference ISA is slow in debug builds and under qemu.
        for image in s.images.prefix(1) {
            let expected = try outputs(reference, image)
            for e in executors {
                let got = try outputs(e, image)
                XCTAssertEqual(got.0, expected.0, "\(e.isa) with \(e.threads) threads: accumulators")
                XCTAssertEqual(got.1, expected.1, "\(e.isa) with \(e.threads) threads: labels")
            }
        }
    }
}
