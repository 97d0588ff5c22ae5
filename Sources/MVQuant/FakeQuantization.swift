import MVModel

/// The int8 model simulated in float: activations rounded to their quantisation grid in place
/// (through the float executor's observer) and weights to their per-channel int8 grid. It asks
/// "what if this tensor had 16 bits" without writing kernels (`SensitivityStudy`); the integer
/// non-linearities are not simulated (the float ones run on the rounded values).
public enum FakeQuantization {
    /// Rounds `values` ([..., channels]) to the grid of `params` (`bits` = 8), or to the grid of
    /// `bits` (8…16) over the same real range: 2^bits − 1 steps instead of 255, so the step is
    /// s·255/(2^bits − 1) (257 times finer at 16 bits) and the real minimum stays where it was.
    public static func round(_ values: UnsafeMutableBufferPointer<Float>, channels: Int, params p: QuantParams, bits: Int) {
        guard channels > 0, values.count % channels == 0, (8...16).contains(bits) else { return }
        let finer = Double((1 << bits) - 1) / 255
        let qmin = -Double(1 << (bits - 1)), qmax = Double((1 << (bits - 1)) - 1)
        let z = qmin + Double(128 + p.zeroPoint) * finer
        let scales = (0..<channels).map { p.channelScale($0) / finer }
        var i = 0
        while i < values.count {
            for c in 0..<channels {
                let s = scales[c]
                // z is fractional for widths other than 8 and 16: round after adding it.
                let q = min(max((Double(values[i + c]) / s + z).rounded(), qmin), qmax)
                values[i + c] = Float((q - z) * s)
            }
            i += channels
        }
    }

    /// `checkpoint` with every convolution and linear weight on its per-output-channel int8 grid,
    /// rounded as the compiler rounds it: with error compensation for the GEMM layers whose input
    /// second moment is given, else to nearest. (BatchNorm folding scales whole output channels,
    /// which moves neither the grid nor the rounding, so rounding the unfolded weights is the same.)
    /// Not simulated: the compiler's coarser scale for a channel whose bias would not fit the
    /// accumulator (`Int8Compiler.biasLimit`); it applies only where the weights' whole range is
    /// below 2⁻²⁴ of the bias in accumulator units, i.e. a dead channel whose output is its bias.
    public static func quantizedWeights(_ checkpoint: Checkpoint, inputSecondMoments: [String: [Double]]) -> Checkpoint {
        var result = checkpoint
        func quantize(_ name: String, rows: Int, secondMoment: [Double]?) {
            guard let t = result.parameters[name] else { return }
            let (q, scales) = Int8Compiler.roundWeights(t.values, channels: rows, inputSecondMoment: secondMoment)
            let per = t.values.count / rows
            result.parameters[name] = FloatTensor(shape: t.shape, values: q.indices.map { Float(Double(q[$0]) * scales[$0 / per]) })
        }
        let network = checkpoint.graph.network
        for op in network.operators {
            let moment = network.secondMomentTensor(op).flatMap { inputSecondMoments[$0] }
            switch op.kind {
            case let .conv(l), let .pixelClassifier(l):
                quantize("\(l.name).convolution.weight", rows: l.outChannels, secondMoment: moment)
            case let .linear(l, _), let .classifier(l): quantize("\(l.name).weight", rows: l.outFeatures, secondMoment: moment)
            default: break
            }
        }
        return result
    }
}
