import MVFormats
import MVKernels
import MVModel
import MVQuant
import TestSupport
import XCTest

final class FoldingAndRoundTripTests: XCTestCase {
    /// conv → BatchNorm (unfolded, in double precision) equals the folded convolution, for every
    /// convolution of the default model, at sample pixels of a random input.
    func testBatchNormFoldingIsExactAgainstTheUnfoldedGraph() throws {
        let checkpoint = try Checkpoint.load(directory: SharedFixtures.defaultModel)
        var state: UInt64 = 1
        func random() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53) * 2 - 1
        }
        var worst = 0.0
        for layer in checkpoint.graph.convolutions where layer.batchNorm {
            let folded = FoldedConv(layer, from: checkpoint)
            let w = checkpoint.tensor("\(layer.name).convolution.weight").values
            let g = checkpoint.tensor("\(layer.name).normalization.weight").values
            let b = checkpoint.tensor("\(layer.name).normalization.bias").values
            let mean = checkpoint.tensor("\(layer.name).normalization.running_mean").values
            let variance = checkpoint.tensor("\(layer.name).normalization.running_var").values
            let perOut = w.count / layer.outChannels
            for o in 0..<layer.outChannels {
                // One receptive field's worth of input for output channel o.
                let x = (0..<perOut).map { _ in random() }
                var conv = 0.0, foldedConv = Double(folded.bias[o])
                for i in 0..<perOut {
                    conv += Double(w[o * perOut + i]) * x[i]
                    foldedConv += Double(folded.weight[o * perOut + i]) * x[i]
                }
                let bn = (conv - Double(mean[o])) / (Double(variance[o]) + 1e-5).squareRoot() * Double(g[o]) + Double(b[o])
                worst = max(worst, abs(bn - foldedConv) / max(1, abs(bn)))
            }
        }
        // Float32 storage of the folded weights is the only difference.
        XCTAssertLessThan(worst, 1e-5, "worst relative difference \(worst)")
    }

    /// The compiler's parameters survive the .mvq file unchanged.
    func testCompiledParametersRoundTripThroughTheFile() throws {
        let checkpoint = try Checkpoint.load(directory: SharedFixtures.defaultModel)
        var ranges: [String: (lo: Float, hi: Float)] = [:]
        var channels: [String: [(lo: Float, hi: Float)]] = [:]
        // Synthetic but valid ranges for every tensor the compiler asks for.
        var names = Set([TensorNames.input])
        for op in checkpoint.graph.network.operators where !op.isLayout {
            names.insert(op.output)
            names.insert(TensorNames.preact(op.output))
        }
        let channelRanges: [(lo: Float, hi: Float)] = (0..<512).map { (c: Int) -> (lo: Float, hi: Float) in
            let lo: Float = -Float(c % 3 + 1) / 10
            let hi: Float = Float(c % 4 + 1) / 5
            return (lo: lo, hi: hi)
        }
        for (i, n) in names.sorted().enumerated() {
            let lo: Float = -Float(i % 7 + 1) / 3
            let hi: Float = Float(i % 5 + 1) / 2
            ranges[n] = (lo: lo, hi: hi)
            channels[n] = channelRanges
        }
        let compiler = try Int8Compiler(checkpoint: checkpoint, ranges: ranges, channelRanges: channels, calibration: ["method": "test"])
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try compiler.model.write(to: dir.file("m.mvq"))
        let loaded = try QuantizedModel(path: dir.file("m.mvq"))
        XCTAssertEqual(loaded.activations, compiler.activations)
        XCTAssertEqual(loaded.scalars, compiler.model.scalars)
        XCTAssertEqual(loaded.config, checkpoint.config)
        XCTAssertEqual(loaded.calibration["method"]?.string, "test")
        let stem = checkpoint.graph.stem.name
        XCTAssertEqual(try loaded.int8(stem + ".weight", count: 16 * 27).count, 16 * 27)
        // Writing the loaded model's file again gives the same bytes (deterministic encoding).
        XCTAssertEqual(compiler.model.encode(), try FileSystem.read(dir.file("m.mvq")))

        // A range whose scale a model file could not hold (a broken float model) is refused by
        // the compiler, naming the tensor, rather than written into a file no loader accepts.
        var huge = ranges
        huge[TensorNames.pooler] = (lo: -1e36, hi: 1e36)
        XCTAssertThrowsError(try Int8Compiler(checkpoint: checkpoint, ranges: huge, channelRanges: channels,
                                              calibration: ["method": "test"])) { error in
            XCTAssertTrue("\(error)".contains(TensorNames.pooler), "\(error)")
        }
    }
}
