import MVKernels
import MVModel

/// Receives intermediate activations during a float run: the tensor's name (checkpoint
/// parameter prefix of the layer that produced it, e.g. "mobilevit.encoder.layer.2.conv_kxk",
/// or a derived name such as "….preact" for a convolution's output before its activation),
/// its shape (NHWC [H, W, C] for feature maps, [P, N, C] for transformer tokens, [C] for
/// vectors), and the values. Calibration and the golden tests observe through this. An observer
/// may also change the values in place (fake quantisation); the run continues with them.
public typealias ActivationObserver = (_ name: String, _ shape: [Int], _ values: UnsafeMutableBufferPointer<Float>) -> Void

/// The float32 reference executor: MobileViT in NHWC on the float kernels, BatchNorm folded.
/// One instance serves one thread; it keeps its working memory between runs, so after the
/// first inference at a given input size no further memory is allocated.
public final class FloatExecutor {
    public let checkpoint: Checkpoint
    public var graph: MobileViTGraph { checkpoint.graph }
    let stem: PreparedConv
    let stages: [PreparedStage]
    let expansion: PreparedConv
    let classifier: PreparedLinear
    let arena = FloatArena()

    public init(checkpoint: Checkpoint) {
        self.checkpoint = checkpoint
        let g = checkpoint.graph
        stem = PreparedConv(g.stem, checkpoint: checkpoint)
        stages = g.stages.map { stage in
            switch stage {
            case let .mobileNet(name, blocks):
                return .mobileNet(name: name, blocks: blocks.map { PreparedInvertedResidual($0, checkpoint: checkpoint) })
            case let .mobileViT(block):
                return .mobileViT(PreparedMobileViTBlock(block, checkpoint: checkpoint))
            }
        }
        expansion = PreparedConv(g.expansion, checkpoint: checkpoint)
        classifier = PreparedLinear(g.classifier, checkpoint: checkpoint)
    }

    /// Bytes of activation memory held (after a run).
    public var workingMemoryBytes: Int { arena.capacity * 4 }

    /// Runs one image given as NCHW float32 `pixel_values` [1, C, H, W]; returns the logits.
    public func run(nchw input: UnsafeBufferPointer<Float>, height: Int, width: Int,
                    observer: ActivationObserver? = nil) -> [Float] {
        let c = graph.config.numChannels
        precondition(input.count == c * height * width, "input has \(input.count) values, expected \(c)×\(height)×\(width)")
        arena.reset()
        let x = arena.allocate(height * width * c)
        for ch in 0..<c {
            for p in 0..<(height * width) { x[p * c + ch] = input[ch * height * width + p] }
        }
        return runNHWC(x, height: height, width: width, observer: observer)
    }

    public func run(nchw input: [Float], height: Int, width: Int, observer: ActivationObserver? = nil) -> [Float] {
        input.withUnsafeBufferPointer { run(nchw: $0, height: height, width: width, observer: observer) }
    }

    func runNHWC(_ input: UnsafeMutablePointer<Float>, height: Int, width: Int, observer: ActivationObserver?) -> [Float] {
        var t = Tensor(data: input, h: height, w: width, c: graph.config.numChannels)
        emit(observer, "input", t)
        t = conv(stem, t, observer)
        for stage in stages {
            switch stage {
            case let .mobileNet(name, blocks):
                for b in blocks { t = invertedResidual(b, t, observer) }
                emit(observer, name, t)
            case let .mobileViT(block):
                t = mobileViTBlock(block, t, observer)
                emit(observer, block.block.name, t)
            }
        }
        t = conv(expansion, t, observer)
        // Global average pooling, then the classifier.
        let pooled = arena.allocate(t.c)
        for ch in 0..<t.c { pooled[ch] = 0 }
        for p in 0..<(t.h * t.w) {
            let row = t.data + p * t.c
            for ch in 0..<t.c { pooled[ch] += row[ch] }
        }
        let inv = 1 / Float(t.h * t.w)
        for ch in 0..<t.c { pooled[ch] *= inv }
        observer?("mobilevit.pooler", [t.c], UnsafeMutableBufferPointer(start: pooled, count: t.c))
        let n = classifier.layer.outFeatures
        var logits = [Float](repeating: 0, count: n)
        logits.withUnsafeMutableBufferPointer { out in
            linear(classifier, pooled, rows: 1, out.baseAddress!)
        }
        logits.withUnsafeMutableBufferPointer { observer?("classifier", [n], $0) }
        return logits
    }

    // MARK: Layers

    struct Tensor {
        var data: UnsafeMutablePointer<Float>
        var h: Int
        var w: Int
        var c: Int
        var count: Int { h * w * c }
    }

    func emit(_ observer: ActivationObserver?, _ name: String, _ t: Tensor) {
        observer?(name, [t.h, t.w, t.c], UnsafeMutableBufferPointer(start: t.data, count: t.count))
    }

    /// conv(x) into a new arena buffer (or `into`, with a pixel stride, for the concat buffer).
    func conv(_ p: PreparedConv, _ x: Tensor, _ observer: ActivationObserver?,
              into destination: UnsafeMutablePointer<Float>? = nil, outStride: Int? = nil) -> Tensor {
        let (oh, ow) = p.layer.outputSize(x.h, x.w)
        let cout = p.layer.outChannels
        let ldc = outStride ?? cout
        let out = destination ?? arena.allocate(oh * ow * cout)
        // Fuse the activation into the kernel's epilogue unless an observer wants the values
        // before it (calibration of the activation's input range), or it is GELU.
        let fused = observer == nil && p.activation != .gelu ? p.activation : .none
        p.weights.withUnsafeBufferPointer { w in
            p.bias.withUnsafeBufferPointer { b in
                switch p.kind {
                case .pointwise:
                    Float32Kernels.gemm(a: x.data, lda: x.c, m: x.h * x.w, k: x.c, packedB: w.baseAddress!,
                                        bias: b.baseAddress!, n: cout, c: out, ldc: ldc, activation: fused)
                case .depthwise:
                    Float32Kernels.depthwise3x3(input: x.data, height: x.h, width: x.w, channels: x.c,
                                                weights: w.baseAddress!, bias: b.baseAddress!, stride: p.layer.stride,
                                                output: out, outWidth: ow, rows: 0..<oh, activation: fused)
                case .dense:
                    denseConv(p, x, oh: oh, ow: ow, weights: w.baseAddress!, bias: b.baseAddress!, out: out, ldc: ldc,
                              activation: fused)
                }
            }
        }
        let result = Tensor(data: out, h: oh, w: ow, c: cout)
        if p.activation != .none && fused == .none {
            if observer != nil { emitSlice(observer, p.layer.name + ".preact", result, stride: ldc) }
            if ldc == cout {
                Float32Kernels.activation(out, count: oh * ow * cout, kind: p.activation)
            } else {
                for px in 0..<(oh * ow) { Float32Kernels.activation(out + px * ldc, count: cout, kind: p.activation) }
            }
        }
        if observer != nil { emitSlice(observer, p.layer.name, result, stride: ldc) }
        return result
    }

    /// Dense k×k convolution: im2col of 64-row tiles into scratch, then the GEMM.
    func denseConv(_ p: PreparedConv, _ x: Tensor, oh: Int, ow: Int, weights: UnsafePointer<Float>,
                   bias: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, ldc: Int,
                   activation: Float32Kernels.ActivationKind) {
        let k = p.layer.kernel, s = p.layer.stride, pad = p.layer.padding, cin = x.c
        let kk = k * k * cin
        let tile = 64
        let mark = arena.mark
        let cols = arena.allocate(tile * kk)
        var m0 = 0
        let total = oh * ow
        while m0 < total {
            let rows = min(tile, total - m0)
            for r in 0..<rows {
                let oy = (m0 + r) / ow, ox = (m0 + r) % ow
                let dst = cols + r * kk
                for ky in 0..<k {
                    let iy = oy * s + ky - pad
                    for kx in 0..<k {
                        let ix = ox * s + kx - pad
                        let d = dst + (ky * k + kx) * cin
                        if iy < 0 || iy >= x.h || ix < 0 || ix >= x.w {
                            d.update(repeating: 0, count: cin)
                        } else {
                            d.update(from: x.data + (iy * x.w + ix) * cin, count: cin)
                        }
                    }
                }
            }
            Float32Kernels.gemm(a: cols, lda: kk, m: rows, k: kk, packedB: weights, bias: bias,
                                n: p.layer.outChannels, c: out + m0 * ldc, ldc: ldc, activation: activation)
            m0 += rows
        }
        arena.release(to: mark)
    }

    func invertedResidual(_ b: PreparedInvertedResidual, _ x: Tensor, _ observer: ActivationObserver?) -> Tensor {
        let (oh, ow) = b.depthwise.layer.outputSize(x.h, x.w)
        let out = arena.allocate(oh * ow * b.reduce.layer.outChannels)
        let mark = arena.mark
        let e = conv(b.expand, x, observer)
        let d = conv(b.depthwise, e, observer)
        var r = conv(b.reduce, d, observer, into: out)
        arena.release(to: mark)
        r.data = out
        if b.block.useResidual {
            for i in 0..<r.count { out[i] += x.data[i] }
        }
        emit(observer, b.block.name, r)
        return r
    }

    func linear(_ l: PreparedLinear, _ x: UnsafePointer<Float>, rows: Int, _ out: UnsafeMutablePointer<Float>,
                activation: Float32Kernels.ActivationKind = .none) {
        l.packed.withUnsafeBufferPointer { w in
            l.bias.withUnsafeBufferPointer { b in
                Float32Kernels.gemm(a: x, lda: l.layer.inFeatures, m: rows, k: l.layer.inFeatures,
                                    packedB: w.baseAddress!, bias: b.baseAddress!, n: l.layer.outFeatures, c: out,
                                    ldc: l.layer.outFeatures, activation: activation)
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
