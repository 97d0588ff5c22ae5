import MVFormats
import MVKernels
import MVModel

/// Receives int8 activations during a run (for per-layer error reports): the tensor's name (see
/// `TensorNames`), its shape ([H, W, C], or [P, N, C] for attention tensors in unfolded token
/// order), the first element, the distance between rows (≥ C for channel slices), its
/// quantisation, and — for transformer tensors kept in pixel order on the token grid — the patch
/// size with which the float executor reports them unfolded ([P, N, C]).
public typealias Int8Observer = (_ name: String, _ shape: [Int], _ data: UnsafePointer<Int8>, _ pixelStride: Int,
                                 _ params: QuantParams, _ unfoldPatch: Int?) -> Void

/// Executes a `.mvq` model in integer arithmetic only. Weights are packed once at load for the
/// selected ISA; each input size gets a memory plan (one arena, sized by a dry run) the first time
/// it is seen, and later runs at that size allocate nothing. Work inside each operator is split
/// over `threads` threads; the result is bit-identical for every thread count and ISA.
///
/// The only floating point is quantising the input image and dequantising the logits.
public final class Int8Executor {
    public let model: QuantizedModel
    public let isa: KernelISA
    public let threads: Int
    let pool: ThreadPool
    var graph: MobileViTGraph { model.graph }

    let inputParams: QuantParams
    var convs: [String: Int8Conv] = [:]
    var linears: [String: Int8Linear] = [:]
    var adds: [String: AddInt8.Parameters] = [:]
    var layerNorms: [String: IntegerLayerNorm.Parameters] = [:]
    var softmax: [String: IntegerSoftmax.Parameters] = [:]
    var attentionRequant: [String: RequantizationParameters] = [:]
    /// Looked up once here rather than by names built per run (string building allocates).
    var attentionQuantization: [String: AttentionQuantization] = [:]
    var concatQuantization: [String: QuantParams] = [:]
    let classifier: PackedInt8Matrix
    let logitScale: [Float]
    let poolMultiplier: (Int32, Int32)

    /// Per input size: the arena and the size-dependent tables (index maps, resize plans).
    final class Plan {
        let arena = Int8Arena()
        var tokenOffsets: [String: [Int32]] = [:]
        var resizes: [String: (up: BilinearResizeInt8.Plan, down: BilinearResizeInt8.Plan)] = [:]
        var pool: GlobalAveragePoolInt8.Parameters?
        var attention: [String: [AttentionScratch]] = [:]
    }
    var plans: [Int: Plan] = [:]
    var plan = Plan()

    public init(model: QuantizedModel, threads: Int = 1, isa: KernelISA = .best) throws {
        self.model = model
        self.isa = isa
        self.threads = max(1, threads)
        pool = ThreadPool(threads: self.threads)
        inputParams = try model.activation(TensorNames.input)
        let g = model.graph
        // The compiler's walk (`int8Operators`): every operator prepared with its input quantisation.
        var preparedConvs: [String: Int8Conv] = [:]
        var preparedLinears: [String: Int8Linear] = [:]
        var adds: [String: AddInt8.Parameters] = [:]
        var layerNorms: [String: IntegerLayerNorm.Parameters] = [:]
        var softmax: [String: IntegerSoftmax.Parameters] = [:]
        var attentionRequant: [String: RequantizationParameters] = [:]
        let operators: [Int8Operator]
        do { operators = try g.int8Operators() } catch let e as InputError { throw e.inFile(model.path) }
        for op in operators {
            switch op {
            case let .conv(l, input, _):
                preparedConvs[l.name] = try Int8Conv(l, model: model, input: try model.activation(input), isa: isa)
            case let .linear(l, input, _, _):
                preparedLinears[l.name] = try Int8Linear(l, model: model, input: try model.activation(input), isa: isa)
            case let .add(name, a, b):
                adds[name] = try addParameters(model, name, a: try model.activation(a), b: try model.activation(b),
                                               y: try model.activation(name))
            case let .layerNorm(l, _, _): layerNorms[l.name] = try layerNormParameters(model, l)
            case let .attention(t):
                softmax[t.name] = try softmaxParameters(model, t)
                attentionRequant[t.name] = RequantizationParameters(
                    multiplier: Int32(try model.scalar("\(t.name).pv.multiplier", in: 0...Int64(Int32.max))),
                    shift: Int32(try model.scalar("\(t.name).pv.shift", in: -31...62)))
            case .pool, .classifier: break  // prepared below
            }
        }
        convs = preparedConvs
        linears = preparedLinears
        self.adds = adds
        self.layerNorms = layerNorms
        self.softmax = softmax
        self.attentionRequant = attentionRequant
        for case let .mobileViT(m) in g.stages {
            concatQuantization[m.name] = try model.activation(TensorNames.concat(m))
            for t in m.transformer {
                attentionQuantization[t.name] = AttentionQuantization(
                    query: try model.activation(t.query.name), key: try model.activation(t.key.name),
                    value: try model.activation(t.value.name), probs: try model.activation(TensorNames.probs(t)),
                    context: try model.activation(TensorNames.context(t)), residual1: adds[TensorNames.residual1(t)]!)
            }
        }
        let c = g.classifier
        let pooled = try model.activation(TensorNames.pooler)
        let w = try model.int8(c.name + ".weight", count: c.outFeatures * c.inFeatures)
        let b = try model.int32(c.name + ".bias", count: c.outFeatures)
        classifier = b.withUnsafeBufferPointer { bias in
            PackedInt8Matrix(rows: w.baseAddress!, rowStride: c.inFeatures, n: c.outFeatures, k: c.inFeatures,
                             bias: bias.baseAddress, aZeroPoint: pooled.zeroPoint, isa: isa)
        }
        logitScale = try model.float32(c.name + ".logit_scale", count: c.outFeatures)
        poolMultiplier = (Int32(try model.scalar("\(TensorNames.pooler).multiplier", in: 0...Int64(Int32.max))),
                          Int32(try model.scalar("\(TensorNames.pooler).shift", in: -31...62)))
    }

    /// Bytes of the activation arena planned for the last input size used.
    public var arenaBytes: Int { plan.arena.capacity }

    /// Logits (dequantised) for one NCHW float32 image [1, C, H, W].
    public func run(nchw input: UnsafeBufferPointer<Float>, height: Int, width: Int,
                    observer: Int8Observer? = nil) -> [Float] {
        var logits = [Float](repeating: 0, count: graph.classifier.outFeatures)
        logits.withUnsafeMutableBufferPointer { run(nchw: input, height: height, width: width, into: $0, observer: observer) }
        return logits
    }

    /// Logits (dequantised) written into `logits` (one per class). After the first run at a given
    /// input size this allocates nothing: every buffer comes from that size's planned arena.
    public func run(nchw input: UnsafeBufferPointer<Float>, height: Int, width: Int,
                    into logits: UnsafeMutableBufferPointer<Float>, observer: Int8Observer? = nil) {
        precondition(logits.count == graph.classifier.outFeatures, "logits buffer has \(logits.count) entries, expected \(graph.classifier.outFeatures)")
        let acc = accumulators(nchw: input, height: height, width: width, observer: observer)
        for i in 0..<logits.count { logits[i] = Float(acc[i]) * logitScale[i] }
    }

    /// The classifier's int32 accumulators: the integer result that must match bit for bit across
    /// ISAs, thread counts and machines.
    public func runAccumulators(nchw input: UnsafeBufferPointer<Float>, height: Int, width: Int,
                                observer: Int8Observer? = nil) -> [Int32] {
        Array(UnsafeBufferPointer(start: accumulators(nchw: input, height: height, width: width, observer: observer),
                                  count: graph.classifier.outFeatures))
    }

    /// Runs the graph with the plan for this input size (planned on first use); the accumulators
    /// live in the arena until the next run.
    func accumulators(nchw input: UnsafeBufferPointer<Float>, height: Int, width: Int,
                      observer: Int8Observer?) -> UnsafeMutablePointer<Int32> {
        let c = graph.config.numChannels
        precondition(input.count == c * height * width, "input has \(input.count) values, expected \(c)×\(height)×\(width)")
        let key = height << 32 | width
        if let p = plans[key] {
            plan = p
        } else {
            plan = Plan()
            plan.arena.planning = true
            _ = forward(input: input, height: height, width: width, observer: nil)
            plan.arena.commit()
            plans[key] = plan
        }
        return forward(input: input, height: height, width: width, observer: observer)
    }

    var planning: Bool { plan.arena.planning }

    /// The quantisation a transformer layer's attention reads, and its first residual addition.
    struct AttentionQuantization {
        let query, key, value, probs, context: QuantParams
        let residual1: AddInt8.Parameters
    }

    struct Tensor {
        var data: UnsafeMutablePointer<Int8>
        var h: Int
        var w: Int
        var c: Int
        /// Elements between pixels (≥ c for a channel slice of a wider buffer).
        var stride: Int
    }

    /// Reports a tensor to the observer. The name is an autoclosure so that the names built from
    /// layer prefixes cost nothing (no string allocation) when nobody observes.
    func observe(_ observer: Int8Observer?, _ name: @autoclosure () -> String, _ t: Tensor, params: QuantParams? = nil,
                 unfoldPatch: Int? = nil) {
        guard let observer, !planning else { return }
        let name = name()
        guard let p = params ?? model.activations[name] else { return }
        observer(name, [t.h, t.w, t.c], t.data, t.stride, p, unfoldPatch)
    }

    func forward(input: UnsafeBufferPointer<Float>, height: Int, width: Int,
                 observer: Int8Observer?) -> UnsafeMutablePointer<Int32> {
        let arena = plan.arena
        arena.reset()
        let c = graph.config.numChannels
        var x = Tensor(data: arena.allocate(Int8.self, height * width * c), h: height, w: width, c: c, stride: c)
        if !planning { quantizeInput(input, into: x.data, pixels: height * width, channels: c) }
        observe(observer, TensorNames.input, x)
        x = conv(graph.stem, x, observer)
        for stage in graph.stages {
            switch stage {
            case let .mobileNet(_, blocks):
                for b in blocks { x = invertedResidual(b, x, observer, into: nil) }
            case let .mobileViT(m):
                x = mobileViTBlock(m, x, observer)
            }
        }
        x = conv(graph.expansion, x, observer)
        return globalPoolAndClassify(x, observer: observer)
    }

    /// The one floating-point step before the logits: q = clamp(round(x / s) + z, −128, 127) from
    /// NCHW floats to NHWC codes, over pixel ranges in parallel (`InputQuantizationStep`).
    func quantizeInput(_ input: UnsafeBufferPointer<Float>, into out: UnsafeMutablePointer<Int8>, pixels: Int, channels c: Int) {
        parallel(pixels, grain: 4096, InputQuantizationStep(input: input.baseAddress!, output: out, planePixels: pixels, channels: c,
                                                            inverseScale: Float(1 / inputParams.scale),
                                                            zeroPoint: inputParams.zeroPoint))
    }

    /// Splits `count` units of work into tasks of at least `grain` units and runs them on the pool
    /// (`Int8ParallelSteps.swift`: a step is a value, so this allocates nothing).
    func parallel<Step: ParallelRangeJob>(_ count: Int, grain: Int, _ step: Step) {
        guard count > 0, !planning else { return }
        pool.parallelFor(count, tasks: min(max(1, count / max(grain, 1)), threads * 4), step)
    }

    /// A convolution into a new arena buffer, or into `destination` with a pixel stride.
    func conv(_ l: ConvLayer, _ x: Tensor, _ observer: Int8Observer?, into destination: Tensor? = nil) -> Tensor {
        let op = convs[l.name]!
        let (oh, ow) = l.outputSize(x.h, x.w)
        let out = destination ?? Tensor(data: plan.arena.allocate(Int8.self, oh * ow * l.outChannels), h: oh, w: ow,
                                         c: l.outChannels, stride: l.outChannels)
        let o = op.output
        withTable(o.table) { table in
            switch op.kernel {
            case let .pointwise(b):
                parallel(oh * ow, grain: max(16, 32768 / max(1, x.c * l.outChannels)),
                         GEMMStep(a: x.data, aRows: .strided(x.stride), k: x.c, b: b, output: out.data,
                                  outRows: .strided(out.stride), stage: o, table: table))
            case let .depthwise(d):
                parallel(oh, grain: max(1, 4096 / max(1, ow * x.c)),
                         DepthwiseStep(kernel: d, x: x, stride: l.stride, out: out, stage: o, table: table))
            case let .dense(d):
                let tile = d.recommendedTilePixels
                let scratchBytes = d.scratchSize(tilePixels: tile)
                let mark = plan.arena.mark
                let scratch = plan.arena.allocate(Int8.self, scratchBytes * threads)
                // Grain by work, not pixels: a row of the 32×32 fusion convolution is ~1.8 M
                // multiply-adds, and a pixel-count grain (2048 / ow) put all its rows in one task.
                parallel(oh, grain: max(d.rowGranularity, 32768 / max(1, ow * d.k * l.outChannels)),
                         DenseConvStep(kernel: d, x: x, out: out, stage: o, table: table, scratch: scratch,
                                       scratchBytes: scratchBytes, tilePixels: tile))
                plan.arena.release(to: mark)
            }
        }
        if destination == nil { observe(observer, l.name, out) }
        return out
    }

    func withTable<R>(_ table: [Int8]?, _ body: (UnsafePointer<Int8>?) -> R) -> R {
        guard let table else { return body(nil) }
        return table.withUnsafeBufferPointer { body($0.baseAddress) }
    }

    func invertedResidual(_ b: InvertedResidual, _ x: Tensor, _ observer: Int8Observer?, into destination: Tensor?) -> Tensor {
        let (oh, ow) = b.depthwise.outputSize(x.h, x.w)
        let cout = b.reduce.outChannels
        let out = destination ?? Tensor(data: plan.arena.allocate(Int8.self, oh * ow * cout), h: oh, w: ow, c: cout, stride: cout)
        let mark = plan.arena.mark
        let e = conv(b.expand, x, observer)
        let d = conv(b.depthwise, e, observer)
        _ = conv(b.reduce, d, observer, into: out)
        plan.arena.release(to: mark)
        if b.useResidual {
            observe(observer, b.reduce.name, out)
            let p = adds[b.name]!
            parallel(oh * ow, grain: 1024 / max(1, cout) + 1,
                     AddStep(a: x.data, aStride: x.stride, b: out.data, bStride: out.stride, output: out.data,
                             outputStride: out.stride, columns: cout, parameters: p, isa: isa))
            observe(observer, b.name, out)
        } else if destination == nil {
            observe(observer, b.reduce.name, out)
        }
        return out
    }

    /// Pools and classifies into int32 accumulators in the arena.
    func globalPoolAndClassify(_ x: Tensor, observer: Int8Observer?) -> UnsafeMutablePointer<Int32> {
        let pixels = x.h * x.w
        if plan.pool == nil || plan.pool!.pixelCount != pixels {
            let input = model.activations[graph.expansion.name]!, output = model.activations[TensorNames.pooler]!
            plan.pool = try? poolParameters(multiplier: poolMultiplier.0, shift: poolMultiplier.1, inputZeroPoint: input.zeroPoint,
                                       outputZeroPoint: output.zeroPoint, pixelCount: pixels)
        }
        let pooled = plan.arena.allocate(Int8.self, x.c)
        let scratch = plan.arena.allocate(Int32.self, GlobalAveragePoolInt8.scratchCount(channels: x.c))
        let logits = plan.arena.allocate(Int32.self, graph.classifier.outFeatures)
        guard !planning else { return logits }
        GlobalAveragePoolInt8.run(input: x.data, width: x.w, rowStride: x.w * x.stride, pixelStride: x.stride,
                                  output: pooled, channels: 0..<x.c, parameters: plan.pool!, scratch: scratch)
        observe(observer, TensorNames.pooler, Tensor(data: pooled, h: 1, w: 1, c: x.c, stride: x.c))
        Int8GEMM.runInt32(a: pooled, aRows: .strided(x.c), m: 1, k: x.c, b: classifier, output: logits,
                          outRows: .strided(graph.classifier.outFeatures))
        return logits
    }
}
