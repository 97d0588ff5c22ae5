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

    /// Maps a golden tensor name (transformers module path) to the executor's activation name.
    static func executorName(_ golden: String) -> String? {
        if golden == "stem" { return "mobilevit.conv_stem" }
        if golden == "conv_1x1_exp" { return "mobilevit.conv_1x1_exp" }
        guard golden.hasPrefix("layer") else { return nil }
        let rest = golden.dropFirst(5)
        let parts = rest.split(separator: ".", maxSplits: 1)
        guard let n = Int(parts[0]) else { return nil }
        let stage = "mobilevit.encoder.layer.\(n - 1)"
        return parts.count == 1 ? stage : "\(stage).\(parts[1])"
    }

    func check(_ name: String) throws {
        guard let path = SharedFixtures.path("golden/\(name).safetensors", for: "golden \(name)") else { return }
        let golden = try SafeTensorsFile(path: path)
        guard let model = golden.metadata["model"],
              let dir = SharedFixtures.path(model, for: "golden \(name) checkpoint") else { return }
        let checkpoint = try Checkpoint.load(directory: dir)
        let input = try golden.info("pixel_values")
        let (h, w) = (input.shape[2], input.shape[3])
        var observed: [String: ([Int], [Float])] = [:]
        let wanted = Set(golden.names.compactMap(Self.executorName))
        let executor = FloatExecutor(checkpoint: checkpoint)
        let logits = executor.run(nchw: try golden.floats("pixel_values"), height: h, width: w) { n, shape, values in
            if wanted.contains(n) { observed[n] = (shape, Array(values)) }
        }
        // Logits: same argmax, max |Δ| ≤ 1e-3 · max |logit|.
        let ref = try golden.floats("logits")
        let scale = ref.map(abs).max()!
        let err = zip(ref, logits).map { abs($0 - $1) }.max()!
        XCTAssertEqual(argmax(logits), argmax(ref), "\(name): argmax")
        XCTAssertLessThanOrEqual(err, 1e-3 * scale, "\(name): logits max |Δ| \(err), max |logit| \(scale)")
        print("\(name): logits max|Δ| = \(err) (\(err / scale) of max|logit| \(scale))")
        // Intermediates within 1e-3 relative (max |Δ| over max |ref|).
        var compared = 0
        for g in golden.names where g != "pixel_values" && g != "logits" {
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
        XCTAssertGreaterThan(compared, 10, "\(name): too few intermediates compared")
    }

    func argmax(_ v: [Float]) -> Int { v.indices.max { v[$0] < v[$1] }! }
}
