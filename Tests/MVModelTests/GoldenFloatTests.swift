import MVFloat
import MVFormats
import MVModel
import TestSupport
import XCTest

/// The float executor against transformers' PyTorch MobileViT (../shared/golden): logits and
/// every named intermediate, so a regression points at its layer.
final class GoldenFloatTests: XCTestCase {
    static let cases = ["mobilevit_xxs_256x256", "mobilevit_xs_256x256", "mobilevit_s_256x256",
                        "mobilevit_xxs_192x320", "mobilevit_xxs_224x224"]

    func testXXS256() throws { try check("mobilevit_xxs_256x256") }
    func testXS256() throws { try check("mobilevit_xs_256x256") }
    func testS256() throws { try check("mobilevit_s_256x256") }
    func testXXS192x320() throws { try check("mobilevit_xxs_192x320") }
    /// 224×224 makes the last block's 7×7 map non-divisible by the 2×2 patch (resize path).
    func testXXS224() throws { try check("mobilevit_xxs_224x224") }

    // DeepLabV3 (output stride 16 unless named os8), at sizes that exercise uneven maps.
    func testDeepLabXXS512() throws { try checkSegmentation("deeplabv3_mobilevit_xxs_512x512") }
    func testDeepLabXXS200x300() throws { try checkSegmentation("deeplabv3_mobilevit_xxs_200x300") }
    func testDeepLabXXS320x480() throws { try checkSegmentation("deeplabv3_mobilevit_xxs_320x480") }
    func testDeepLabXXSOutputStride8() throws { try checkSegmentation("deeplabv3_mobilevit_xxs_os8_256x256") }
    func testDeepLabS256() throws { try checkSegmentation("deeplabv3_mobilevit_s_256x256") }

    /// Maps a golden tensor name (transformers module path) to the executor's activation name.
    static func executorName(_ golden: String) -> String? {
        if golden == "stem" { return "mobilevit.conv_stem" }
        if golden.hasPrefix("aspp.") { return "segmentation_head." + golden }
        if golden == "conv_1x1_exp" { return "mobilevit.conv_1x1_exp" }
        guard golden.hasPrefix("layer") else { return nil }
        let rest = golden.dropFirst(5)
        let parts = rest.split(separator: ".", maxSplits: 1)
        guard let n = Int(parts[0]) else { return nil }
        let stage = "mobilevit.encoder.layer.\(n - 1)"
        return parts.count == 1 ? stage : "\(stage).\(parts[1])"
    }

    /// A segmentation golden: the logit map and intermediates within 1e-3 relative; the label map
    /// (logits upsampled to the input, argmax) equal except where transformers' own upsampled
    /// logits are tied within that tolerance.
    func checkSegmentation(_ name: String) throws {
        guard let (golden, executor, h, w, logits, observed) = try run(name) else { return }
        XCTAssertTrue(executor.isDense)
        let info = try golden.info("logits")
        let (classes, lh, lw) = (info.shape[1], info.shape[2], info.shape[3])
        let shape = try executor.logitShape(height: h, width: w)
        XCTAssertEqual([shape.height, shape.width, shape.channels], [lh, lw, classes], "\(name): logit map shape")
        let refNCHW = try golden.floats("logits")
        let ref = (0..<(lh * lw * classes)).map { i in refNCHW[(i % classes) * lh * lw + i / classes] }
        let scale = ref.map(abs).max()!
        let err = zip(ref, logits).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(err, 1e-3 * scale, "\(name): logits max |Δ| \(err), max |logit| \(scale)")
        // Labels: where they differ, transformers' upsampled logits must be tied within tolerance.
        let labels = logits.withUnsafeBufferPointer {
            FloatExecutor.labels(logits: $0, height: lh, width: lw, classes: classes, outputHeight: h, outputWidth: w)
        }
        let refLabels = try golden.int32s("labels")
        XCTAssertEqual(labels.count, refLabels.count)
        var differing = 0, unexplained = 0
        for i in labels.indices where labels[i] != refLabels[i] {
            differing += 1
            let (y, x) = (i / w, i % w)
            let mine = upsampled(ref, lh, lw, classes, at: y, x, outputHeight: h, outputWidth: w, label: Int(labels[i]))
            let theirs = upsampled(ref, lh, lw, classes, at: y, x, outputHeight: h, outputWidth: w, label: Int(refLabels[i]))
            if abs(mine - theirs) > 2e-3 * Double(scale) { unexplained += 1 }
        }
        XCTAssertEqual(unexplained, 0, "\(name): \(unexplained) label(s) differ where the reference logits are not tied")
        print("\(name): logits max|Δ| = \(err) (\(err / scale) of max|logit| \(scale)); labels: \(differing) of \(labels.count) differ, all at near-ties")
        let compared = try compareIntermediates(name, golden, observed, skipping: ["pixel_values", "logits", "labels"])
        XCTAssertEqual(compared, 12, "\(name): stem, layer1…5, aspp.convs.0…4 and aspp.project")
    }

    /// One class's logit bilinearly upsampled (align_corners=False) at output pixel (y, x), in double.
    func upsampled(_ map: [Float], _ h: Int, _ w: Int, _ classes: Int, at y: Int, _ x: Int, outputHeight: Int,
                   outputWidth: Int, label: Int) -> Double {
        func source(_ o: Int, _ n: Int, _ m: Int) -> (Int, Int, Double) {
            let s = max((Double(o) + 0.5) * Double(n) / Double(m) - 0.5, 0)
            let i0 = min(Int(s), n - 1)
            return (i0, min(i0 + 1, n - 1), s - Double(i0))
        }
        let (y0, y1, ty) = source(y, h, outputHeight), (x0, x1, tx) = source(x, w, outputWidth)
        func v(_ yy: Int, _ xx: Int) -> Double { Double(map[(yy * w + xx) * classes + label]) }
        return (1 - ty) * ((1 - tx) * v(y0, x0) + tx * v(y0, x1)) + ty * ((1 - tx) * v(y1, x0) + tx * v(y1, x1))
    }

    func check(_ name: String) throws {
        guard let (golden, _, _, _, logits, observed) = try run(name) else { return }
        // Logits: same argmax, max |Δ| ≤ 1e-3 · max |logit|.
        let ref = try golden.floats("logits")
        let scale = ref.map(abs).max()!
        let err = zip(ref, logits).map { abs($0 - $1) }.max()!
        XCTAssertEqual(argmax(logits), argmax(ref), "\(name): argmax")
        XCTAssertLessThanOrEqual(err, 1e-3 * scale, "\(name): logits max |Δ| \(err), max |logit| \(scale)")
        print("\(name): logits max|Δ| = \(err) (\(err / scale) of max|logit| \(scale))")
        let compared = try compareIntermediates(name, golden, observed, skipping: ["pixel_values", "logits"])
        XCTAssertGreaterThan(compared, 10, "\(name): too few intermediates compared")
    }

    /// Runs the float executor on a golden case's input (nil, after printing SKIP, without
    /// ../shared): the golden file, the executor, the input size, the logits and the intermediates
    /// the golden file also holds.
    func run(_ name: String) throws
        -> (SafeTensorsFile, FloatExecutor, Int, Int, [Float], [String: ([Int], [Float])])? {
        guard let path = SharedFixtures.path("golden/\(name).safetensors", for: "golden \(name)") else { return nil }
        let golden = try SafeTensorsFile(path: path)
        guard let model = golden.metadata["model"],
              let dir = SharedFixtures.path(model, for: "golden \(name) checkpoint") else { return nil }
        let input = try golden.info("pixel_values")
        let (h, w) = (input.shape[2], input.shape[3])
        var observed: [String: ([Int], [Float])] = [:]
        let wanted = Set(golden.names.compactMap(Self.executorName))
        let executor = FloatExecutor(checkpoint: try Checkpoint.load(directory: dir))
        let logits = executor.run(nchw: try golden.floats("pixel_values"), height: h, width: w) { n, shape, values in
            if wanted.contains(n) { observed[n] = (shape, Array(values)) }
        }
        return (golden, executor, h, w, logits, observed)
    }

    /// Every golden intermediate the executor reported, within 1e-3 relative (max |Δ| over max |ref|);
    /// feature maps are NCHW in the golden file, NHWC in the executor. Returns how many were compared.
    func compareIntermediates(_ name: String, _ golden: SafeTensorsFile, _ observed: [String: ([Int], [Float])],
                              skipping: Set<String>) throws -> Int {
        var compared = 0
        for g in golden.names where !skipping.contains(g) {
            guard let mine = Self.executorName(g) else { continue }
            guard let (shape, values) = observed[mine] else {
                XCTFail("\(name): executor did not produce \(g) (\(mine))")
                continue
            }
            let info = try golden.info(g)
            let reference = try golden.floats(g)
            let nhwc: [Float]
            if info.shape.count == 4 {
                let (c, hh, ww) = (info.shape[1], info.shape[2], info.shape[3])
                XCTAssertEqual(shape, [hh, ww, c], "\(name) \(g): shape")
                guard shape == [hh, ww, c] else { continue }
                nhwc = (0..<(hh * ww * c)).map { i in reference[(i % c) * hh * ww + i / c] }
            } else {
                XCTAssertEqual(shape, info.shape, "\(name) \(g): shape")
                nhwc = reference
            }
            let refMax = nhwc.map(abs).max()!
            let diff = zip(nhwc, values).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(diff, 1e-3 * refMax, "\(name) \(g): max |Δ| \(diff) vs max |ref| \(refMax)")
            compared += 1
        }
        return compared
    }

    func argmax(_ v: [Float]) -> Int { v.indices.max { v[$0] < v[$1] }! }
}
