import MVKernels
import MVModel

/// Receives intermediate activations during a float run: the tensor's name (checkpoint
/// parameter prefix of the layer that produced it, e.g. "mobilevit.encoder.layer.2.conv_kxk",
/// or a derived name such as "….preact" for a convolution's output before its activation),
/// its shape (NHWC [H, W, C] for feature maps, [P, N, C] for transformer tokens, [C] for
/// vectors), and the values. Calibration and the golden tests observe through this. An observer
/// may also change the values in place (fake quantisation); the run continues with them.
public typealias ActivationObserver = (_ name: String, _ shape: [Int], _ values: UnsafeMutableBufferPointer<Float>) -> Void

/// The float32 reference executor: the network's operator list (`Network`) in NHWC on the float
/// kernels, BatchNorm folded. Patch tokens are kept in transformers' unfolded [P, N, C] order.
/// One instance serves one thread; each input size gets a memory plan (one block) on first use,
/// so later inferences at that size allocate nothing.
public final class FloatExecutor {
    public let checkpoint: Checkpoint
    public var graph: MobileViTGraph { checkpoint.graph }
    let network: Network
    let layers: [PreparedOperator]
    var plans: [Int: FloatPlan] = [:]

    public init(checkpoint: Checkpoint) {
        self.checkpoint = checkpoint
        network = checkpoint.graph.network
        layers = network.operators.map { PreparedOperator($0, checkpoint: checkpoint) }
    }

    /// Whether the model predicts per pixel: `run` then returns a logit map, `labels` makes the label map.
    public var isDense: Bool { network.isDense }

    /// The logits' shape for an H×W input: [1, 1, classes], or the logit map's [h, w, classes].
    public func logitShape(height: Int, width: Int) throws -> TensorShape {
        try network.shapes(height: height, width: width)[network.output]!
    }

    /// Bytes of activation memory held (the largest plan).
    public var workingMemoryBytes: Int { plans.values.map(\.bytes).max() ?? 0 }

    /// Runs one image given as NCHW float32 `pixel_values` [1, C, H, W]; returns the logits: one per
    /// class, or for a dense head (`Network.isDense`) the logit map [h, w, classes] (NHWC).
    public func run(nchw input: UnsafeBufferPointer<Float>, height: Int, width: Int,
                    observer: ActivationObserver? = nil) -> [Float] {
        let c = network.inputChannels
        precondition(input.count == c * height * width, "input has \(input.count) values, expected \(c)×\(height)×\(width)")
        let plan = self.plan(height: height, width: width)
        let x = plan.input.data
        for ch in 0..<c {
            for p in 0..<(height * width) { x[p * c + ch] = input[ch * height * width + p] }
        }
        emit(observer, TensorNames.input, plan.input)
        for (i, op) in network.operators.enumerated() {
            execute(op, layers[i], inputs: plan.inputs[i], output: plan.outputs[i], scratch: plan.scratch[i], observer)
        }
        let logits = plan.outputs[plan.outputs.count - 1]
        return Array(UnsafeBufferPointer(start: logits.data, count: logits.count))
    }

    public func run(nchw input: [Float], height: Int, width: Int, observer: ActivationObserver? = nil) -> [Float] {
        input.withUnsafeBufferPointer { run(nchw: $0, height: height, width: width, observer: observer) }
    }

    /// The plan for an input size, made on first use.
    func plan(height: Int, width: Int) -> FloatPlan {
        let key = height << 32 | width
        if let p = plans[key] { return p }
        let p = FloatPlan(network: network, layers: layers, height: height, width: width)
        plans[key] = p
        return p
    }

    // MARK: Operators

    func execute(_ op: Operator, _ layer: PreparedOperator, inputs: [Tensor], output: Tensor,
                 scratch: UnsafeMutablePointer<Float>, _ observer: ActivationObserver?) {
        switch (op.kind, layer) {
        case (.conv, let .conv(p)), (.pixelClassifier, let .conv(p)):
            conv(p, inputs[0], output, scratch: scratch, observer)
        case (let .linear(_, activation), let .linear(p)):
            let act = PreparedConv.kernelActivation(activation)
            let fused = observer == nil && act != .gelu ? act : .none
            linear(p, inputs[0], output, activation: fused)
            if act != .none && fused == .none {
                emit(observer, TensorNames.preact(op.output), output)
                Float32Kernels.activation(output.data, count: output.count, kind: act)
            }
        case (.add, _):
            let a = inputs[0], b = inputs[1]
            for px in 0..<output.pixels {
                let pa = a.data + px * a.stride, pb = b.data + px * b.stride, po = output.data + px * output.stride
                for ch in 0..<output.c { po[ch] = pa[ch] + pb[ch] }
            }
        case (.layerNorm, let .layerNorm(p)):
            layerNorm(p, inputs[0].data, rows: inputs[0].pixels, channels: inputs[0].c, output.data)
        case let (.attention(t), _):
            attention(t, patchSize: network.tokenPatchSize[op.output]!, q: inputs[0], k: inputs[1], v: inputs[2],
                      context: output, scratch: scratch)
        case let (.unfold(ps), _):
            let x = inputs[0]
            let grid = output.h * output.w == x.h * x.w ? x : Tensor(data: scratch, h: output.h, w: output.w, c: x.c)
            if grid.data != x.data { bilinearResize(x, into: grid) }
            forEachToken(height: grid.h, width: grid.w, patchSize: ps) { pixel, token in
                (output.data + token * x.c).update(from: grid.data + pixel * x.c, count: x.c)
            }
        case let (.fold(ps, _), _):
            let tokens = inputs[0]
            let resized = tokens.h * tokens.w != output.h * output.w
            let grid = resized ? Tensor(data: scratch, h: tokens.h, w: tokens.w, c: tokens.c) : output
            forEachToken(height: tokens.h, width: tokens.w, patchSize: ps) { pixel, token in
                (grid.data + pixel * tokens.c).update(from: tokens.data + token * tokens.c, count: tokens.c)
            }
            if resized { bilinearResize(grid, into: output) }
        case (.concat, _):
            break  // the inputs were written into the concat's buffer
        case (.globalAveragePool, _):
            let x = inputs[0], pooled = output.data
            for ch in 0..<x.c { pooled[ch] = 0 }
            for p in 0..<x.pixels {
                let row = x.data + p * x.stride
                for ch in 0..<x.c { pooled[ch] += row[ch] }
            }
            let inv = 1 / Float(x.pixels)
            for ch in 0..<x.c { pooled[ch] *= inv }
        case (.resize, _):
            bilinearResize(inputs[0], into: output)
        case (.classifier, let .linear(p)):
            linear(p, inputs[0], output, activation: .none)
        default:
            preconditionFailure("operator \(op.output) was prepared as another kind")
        }
        guard let observer, op.isReported else { return }
        let shape: [Int]
        if let ps = network.tokenPatchSize[op.output] {
            shape = [ps * ps, output.pixels / (ps * ps), output.c]
        } else if output.h == 1 && output.w == 1 {
            shape = [output.c]
        } else {
            shape = [output.h, output.w, output.c]
        }
        report(observer, op.output, shape, output)
        for alias in network.aliases[op.output] ?? [] { report(observer, alias, shape, output) }
    }

    /// A tensor the float executor holds: NHWC with `stride` floats between pixels (> c for a
    /// slice of a concat buffer). Tokens are stored [P, N, C], that is as P·N rows.
    struct Tensor {
        var data: UnsafeMutablePointer<Float>
        var h: Int
        var w: Int
        var c: Int
        var stride: Int

        init(data: UnsafeMutablePointer<Float>, h: Int, w: Int, c: Int, stride: Int? = nil) {
            self.data = data
            self.h = h
            self.w = w
            self.c = c
            self.stride = stride ?? c
        }

        var pixels: Int { h * w }
        var count: Int { h * w * c }
    }

    func emit(_ observer: ActivationObserver?, _ name: String, _ t: Tensor) {
        report(observer, name, [t.h, t.w, t.c], t)
    }

    /// Reports a tensor; a channel slice of a wider buffer goes out as a contiguous copy, and what
    /// the observer changed is written back (only when observing, so the copy's allocation is fine).
    func report(_ observer: ActivationObserver?, _ name: String, _ shape: [Int], _ t: Tensor) {
        guard let observer else { return }
        guard t.stride != t.c else {
            return observer(name, shape, UnsafeMutableBufferPointer(start: t.data, count: t.count))
        }
        var copy = [Float](repeating: 0, count: t.count)
        copy.withUnsafeMutableBufferPointer { c in
            for p in 0..<t.pixels { (c.baseAddress! + p * t.c).update(from: t.data + p * t.stride, count: t.c) }
            observer(name, shape, c)
            for p in 0..<t.pixels { (t.data + p * t.stride).update(from: c.baseAddress! + p * t.c, count: t.c) }
        }
    }

    /// conv(x) into `out` (a buffer of its own or a slice of a concat buffer).
    func conv(_ p: PreparedConv, _ x: Tensor, _ out: Tensor, scratch: UnsafeMutablePointer<Float>,
              _ observer: ActivationObserver?) {
        let cout = p.layer.outChannels
        // Fuse the activation into the kernel's epilogue unless an observer wants the values
        // before it (calibration of the activation's input range), or it is GELU.
        let fused = observer == nil && p.activation != .gelu ? p.activation : .none
        p.weights.withUnsafeBufferPointer { w in
            p.bias.withUnsafeBufferPointer { b in
                switch p.layer.form {
                case .pointwise:
                    Float32Kernels.gemm(a: x.data, lda: x.stride, m: x.pixels, k: x.c, packedB: w.baseAddress!,
                                        bias: b.baseAddress!, n: cout, c: out.data, ldc: out.stride, activation: fused)
                case .depthwise:
                    precondition(x.stride == x.c && out.stride == out.c, "depthwise convolutions read and write whole buffers")
                    Float32Kernels.depthwise3x3(input: x.data, height: x.h, width: x.w, channels: x.c,
                                                weights: w.baseAddress!, bias: b.baseAddress!, stride: p.layer.stride,
                                                dilation: p.layer.dilation, output: out.data, outWidth: out.w, rows: 0..<out.h, activation: fused)
                case .dense, .grouped:
                    denseConv(p, x, out, weights: w.baseAddress!, bias: b.baseAddress!, cols: scratch, activation: fused)
                }
            }
        }
        if p.activation != .none && fused == .none {
            emit(observer, TensorNames.preact(p.layer.name), out)
            if out.stride == cout {
                Float32Kernels.activation(out.data, count: out.count, kind: p.activation)
            } else {
                for px in 0..<out.pixels { Float32Kernels.activation(out.data + px * out.stride, count: cout, kind: p.activation) }
            }
        }
    }

    /// Rows of output pixels a dense convolution's im2col covers at a time.
    static let denseTile = 64

    /// Dense k×k convolution (any stride and dilation): im2col of 64-row tiles into `cols`, then the GEMM.
    func denseConv(_ p: PreparedConv, _ x: Tensor, _ out: Tensor, weights: UnsafePointer<Float>,
                   bias: UnsafePointer<Float>, cols: UnsafeMutablePointer<Float>, activation: Float32Kernels.ActivationKind) {
        let l = p.layer, k = l.kernel, s = l.stride, d = l.dilation, pad = l.padding, cin = x.c
        let kk = k * k * cin
        var m0 = 0
        let total = out.pixels
        while m0 < total {
            let rows = min(Self.denseTile, total - m0)
            for r in 0..<rows {
                let oy = (m0 + r) / out.w, ox = (m0 + r) % out.w
                let dst = cols + r * kk
                for ky in 0..<k {
                    let iy = oy * s + ky * d - pad
                    for kx in 0..<k {
                        let ix = ox * s + kx * d - pad
                        let t = dst + (ky * k + kx) * cin
                        if iy < 0 || iy >= x.h || ix < 0 || ix >= x.w {
                            t.update(repeating: 0, count: cin)
                        } else {
                            t.update(from: x.data + (iy * x.w + ix) * x.stride, count: cin)
                        }
                    }
                }
            }
            Float32Kernels.gemm(a: cols, lda: kk, m: rows, k: kk, packedB: weights, bias: bias,
                                n: l.outChannels, c: out.data + m0 * out.stride, ldc: out.stride, activation: activation)
            m0 += rows
        }
    }

    func linear(_ l: PreparedLinear, _ x: Tensor, _ out: Tensor, activation: Float32Kernels.ActivationKind) {
        l.packed.withUnsafeBufferPointer { w in
            l.bias.withUnsafeBufferPointer { b in
                Float32Kernels.gemm(a: x.data, lda: x.stride, m: x.pixels, k: l.layer.inFeatures,
                                    packedB: w.baseAddress!, bias: b.baseAddress!, n: l.layer.outFeatures, c: out.data,
                                    ldc: out.stride, activation: activation)
            }
        }
    }

    func layerNorm(_ p: PreparedLayerNorm, _ x: UnsafePointer<Float>, rows: Int, channels c: Int,
                   _ out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let src = x + r * c, dst = out + r * c
            var mean: Float = 0
            for i in 0..<c { mean += src[i] }
            mean /= Float(c)
            var variance: Float = 0
            for i in 0..<c { let d = src[i] - mean; variance += d * d }
            variance /= Float(c)
            let inv = 1 / (variance + p.eps).squareRoot()
            for i in 0..<c { dst[i] = (src[i] - mean) * inv * p.gamma[i] + p.beta[i] }
        }
    }
}
