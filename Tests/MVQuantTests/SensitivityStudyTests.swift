import MVFloat
import MVModel
@testable import MVQuant
import TestSupport
import XCTest

/// The float simulation of the int8 model: the rounding it applies, and a study run end to end.
final class SensitivityStudyTests: XCTestCase {
    func testEightBitRoundingIsTheInt8Grid() {
        let perChannel = QuantParams(channelRanges: [(-1, 2), (-0.1, 0.05), (-3, 0)])
        let perTensor = QuantParams(lo: -0.7, hi: 1.9)
        func sample(_ i: Int) -> Float { Float(i % 37) * 0.11 - 1.5 }
        var values: [Float] = (0..<300).map(sample)
        for params in [perChannel, perTensor] {
            var copy = values
            copy.withUnsafeMutableBufferPointer { FakeQuantization.round($0, channels: 3, params: params, bits: 8) }
            for i in 0..<values.count {
                XCTAssertEqual(copy[i], params.dequantize(params.quantize(values[i], channel: i % 3), channel: i % 3),
                               accuracy: 1e-6)
            }
        }
        // 16 bits: the same range, 257 times finer; the 8-bit grid points are on it.
        let grid: [Float] = (0..<256).map { perTensor.dequantize(Int8(truncatingIfNeeded: $0 - 128)) }
        var wide = grid
        wide.withUnsafeMutableBufferPointer { FakeQuantization.round($0, channels: 1, params: perTensor, bits: 16) }
        for (a, b) in zip(wide, grid) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        values.withUnsafeMutableBufferPointer { FakeQuantization.round($0, channels: 1, params: perTensor, bits: 16) }
        let step = Float(perTensor.scale / 257)
        for (i, v) in values.enumerated() where sample(i) > -0.7 && sample(i) < 1.9 {
            XCTAssertLessThanOrEqual(abs(v - sample(i)), step / 2 + 1e-6)
        }
        // 10 bits: 1023 steps over the same range, clamped at its ends.
        let lo = perTensor.dequantize(-128), hi = perTensor.dequantize(127)
        let step10 = (hi - lo) / 1023
        var ten: [Float] = (0..<300).map(sample)
        ten.withUnsafeMutableBufferPointer { FakeQuantization.round($0, channels: 1, params: perTensor, bits: 10) }
        for (i, v) in ten.enumerated() {
            let x = min(max(sample(i), lo), hi)
            XCTAssertLessThanOrEqual(abs(v - x), step10 / 2 + 1e-5, "\(sample(i))")
            let k = (v - lo) / step10
            XCTAssertEqual(k, k.rounded(), accuracy: 1e-3, "on the 10-bit grid")
        }
    }

    func testQuantizedWeightsLieOnTheirPerChannelGrid() throws {
        let checkpoint = try Checkpoint.load(directory: SharedFixtures.defaultModel)
        let q = FakeQuantization.quantizedWeights(checkpoint, inputSecondMoments: [:])
        for op in checkpoint.graph.network.operators {
            guard case let .conv(l) = op.kind else { continue }
            let w = q.tensor("\(l.name).convolution.weight").values
            let per = w.count / l.outChannels
            for o in 0..<l.outChannels {
                let row = w[(o * per)..<((o + 1) * per)]
                let scale = Double(row.map { abs($0) }.max()!) / 127
                guard scale > 0 else { continue }
                for v in row { XCTAssertEqual(Double(v) / scale, (Double(v) / scale).rounded(), accuracy: 1e-3, l.name) }
            }
        }
    }

    func testStudyOnTheDefaultModel() throws {
        let checkpoint = try Checkpoint.load(directory: SharedFixtures.defaultModel)
        let images: [[Float]] = (0..<6).map { i in
            (0..<(3 * 64 * 64)).map { (j: Int) -> Float in Float((j * (7 + i) + i * 13) % 256) / 255 }
        }
        let calibrator = Calibrator(checkpoint: checkpoint, height: 64, width: 64, threads: 2)
        let observers = try calibrator.collect(count: images.count) { images[$0] }
        var ranges: [String: (lo: Float, hi: Float)] = [:]
        for (name, o) in observers { ranges[name] = o.range(.minmax) }
        let compiler = try Int8Compiler(checkpoint: checkpoint, ranges: ranges, calibration: [:])
        let quantised = Set(compiler.activations.keys)
        let variants = SensitivityStudy.standardVariants(checkpoint.graph, quantised: quantised)
        XCTAssertEqual(variants.first?.wide, [])
        XCTAssertTrue(variants.contains { $0.wide == quantised })
        let exact = SensitivityStudy.Variant(name: "float weights, all 16-bit", wide: quantised, floatWeights: true)
        let (top1, results) = try SensitivityStudy.run(
            checkpoint: checkpoint, weights: FakeQuantization.quantizedWeights(checkpoint, inputSecondMoments: [:]),
            activations: compiler.activations, variants: variants + [exact], count: images.count, height: 64, width: 64,
            threads: 2, image: { (images[$0], $0 % 2) })
        XCTAssertEqual(results.count, variants.count + 1)
        XCTAssertNotNil(top1)
        for r in results { XCTAssertTrue((0...1).contains(r.agreement), r.variant.name) }
        // 16-bit activations with float weights are close enough to float not to change a prediction.
        XCTAssertEqual(results.last?.agreement, 1)
    }
}
