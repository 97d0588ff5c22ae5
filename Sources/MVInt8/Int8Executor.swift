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

/// Executes a `.mvq` model in integer arithmetic only, by interpreting the network's operator list
/// (`Network`). Weights are packed once at load for the selected ISA; each input size gets a
/// memory plan (`Int8Plan`: one arena, buffers placed by lifetime) the first time it is seen, and
/// later runs at that size allocate nothing. Work inside each operator is split over `threads`
/// threads; the result is bit-identical for every thread count and ISA.
///
/// Patch tokens stay in pixel order on their grid: the query, key and value projections write
/// them in unfolded token order through an index map, and the attention output reads the context
/// back through it, so unfold and fold move no memory unless the grid is resized.
///
/// The only floating point is quantising the input image and dequantising the logits.
public final class Int8Executor {
    public let model: QuantizedModel
    public let isa: KernelISA
    public let threads: Int
    let pool: ThreadPool
    let network: Network
    let operations: [Int8Operation]
    /// Tensors kept in unfolded token order: the attention operators' operands.
    let tokenOrdered: Set<String>
    let inputParams: QuantParams
    let logitCount: Int
    var plans: [Int: Int8Plan] = [:]

    public init(model: QuantizedModel, threads: Int = 1, isa: KernelISA = .best) throws {
        self.model = model
        self.isa = isa
        self.threads = max(1, threads)
        pool = ThreadPool(threads: self.threads)
        network = model.graph.network
        inputParams = try model.activation(TensorNames.input)
        var tokenOrdered = Set<String>()
        for op in network.operators {
            if case .attention = op.kind { tokenOrdered.formUnion(op.inputs + [op.output]) }
        }
        self.tokenOrdered = tokenOrdered
        let network = self.network
        do {
            operations = try network.operators.map { try Int8Operation($0, network: network, model: model, isa: isa) }
        } catch let e as InputError {
            throw e.inFile(model.path)
        }
        guard case let .classifier(c) = operations.last else { throw InputError("\(model.path): the network does not end in a classifier") }
        logitCount = c.logitScale.count
        if network.isDense && c.labelRescale == nil { throw InputError("\(model.path): the pixel classifier has no label rescale") }
    }

    /// Whether the model predicts per pixel (a segmentation head): use `runDense`.
    public var isDense: Bool { network.isDense }

    /// The logits' shape for an H×W input: [1, 1, classes], or the logit map's [h, w, classes].
    public func logitShape(height: Int, width: Int) throws -> TensorShape {
        try network.shapes(height: height, width: width)[network.output]!
    }

    /// Bytes of the activation arena planned for the last input size used.
    public var arenaBytes: Int { lastPlan?.arena.bytes ?? 0 }
    var lastPlan: Int8Plan?

    /// Logits (dequantised) for one NCHW float32 image [1, C, H, W]: one per class, or a dense
    /// head's logit map [h, w, classes] (NHWC).
    public func run(nchw input: UnsafeBufferPointer<Float>, height: Int, width: Int,
                    observer: Int8Observer? = nil) -> [Float] {
        let acc = accumulators(nchw: input, height: height, width: width, observer: observer)
        let count = lastPlan!.outputs[operations.count - 1].pixels * logitCount
        return [Float](unsafeUninitializedCapacity: count) { buffer, done in
            dequantize(acc, into: UnsafeMutableBufferPointer(rebasing: buffer[0..<count]))
            done = count
        }
    }

    /// The one floating-point step after the integers: logit = accumulator · s_in · s_w[class].
    func dequantize(_ acc: UnsafePointer<Int32>, into logits: UnsafeMutableBufferPointer<Float>) {
        guard case let .classifier(c) = operations.last else { preconditionFailure("no classifier") }
        let classes = logitCount
        for i in 0..<logits.count { logits[i] = Float(acc[i]) * c.logitScale[i % classes] }
    }

    /// A dense head's outputs for one NCHW float32 image [1, C, H, W]: the label map into `labels`
    /// (row-major, at the input's size or at `labelSize`, e.g. the original image's), and when
    /// `logits` is given the dequantised logit map [h, w, classes] (NHWC) into it. The labels are
    /// computed in integers from the accumulators: brought to one scale per class
    /// (`label_multiplier`), upsampled bilinearly and reduced to the argmax (`BilinearArgmaxInt32`).
    /// After the first run at a size (and label size) this allocates nothing.
    /// - Throws: `InputError` for a label size outside 1…2^20.
    public func runDense(nchw input: UnsafeBufferPointer<Float>, height: Int, width: Int,
                         logits: UnsafeMutableBufferPointer<Float>?, labels: UnsafeMutableBufferPointer<Int32>,
                         labelSize: (height: Int, width: Int)? = nil, observer: Int8Observer? = nil) throws {
        guard case let .classifier(c) = operations.last, let rescale = c.labelRescale else { preconditionFailure("not a dense head") }
        let (lh, lw) = labelSize ?? (height, width)
        precondition(labels.count == lh * lw, "labels buffer has \(labels.count) entries, expected \(lh)×\(lw)")
        let acc = accumulators(nchw: input, height: height, width: width, observer: observer)
        let map = lastPlan!.labelMap!
        let p: BilinearArgmaxInt32.Plan
        do { p = try map.plan(height: lh, width: lw) } catch { throw InputError("label map size \(lh)×\(lw): \(error)") }
        let classes = p.classes, count = p.height * p.width * classes
        if let logits {
            precondition(logits.count == count, "logits buffer has \(logits.count) entries, expected \(count)")
            dequantize(acc, into: logits)
        }
        for px in 0..<(p.height * p.width) {
            for k in 0..<classes {
                let (m, s) = rescale.pair(k)
                map.values[px * classes + k] = requantize(acc[px * classes + k], multiplier: m, shift: s)
            }
        }
        parallel(lh, grain: 8, LabelStep(values: map.values, plan: p, labels: labels.baseAddress!, scratch: map.scratch))
    }

    /// Logits (dequantised) written into `logits` (one per class). After the first run at a given
    /// input size this allocates nothing: every buffer comes from that size's planned arena.
    public func run(nchw input: UnsafeBufferPointer<Float>, height: Int, width: Int,
                    into logits: UnsafeMutableBufferPointer<Float>, observer: Int8Observer? = nil) {
        precondition(!isDense, "a dense head's logits are a map: use runDense")
        precondition(logits.count == logitCount, "logits buffer has \(logits.count) entries, expected \(logitCount)")
        dequantize(accumulators(nchw: input, height: height, width: width, observer: observer), into: logits)
    }

    /// The classifier's int32 accumulators (per class, or [h, w, classes] for a dense head): the
    /// integer result that must match bit for bit across ISAs, thread counts and machines.
    public func runAccumulators(nchw input: UnsafeBufferPointer<Float>, height: Int, width: Int,
                                observer: Int8Observer? = nil) -> [Int32] {
        let acc = accumulators(nchw: input, height: height, width: width, observer: observer)
        return Array(UnsafeBufferPointer(start: acc, count: lastPlan!.outputs[operations.count - 1].pixels * logitCount))
    }

    /// Runs the operator list with the plan for this input size (made on first use); the
    /// accumulators live in the arena until the next run.
    func accumulators(nchw input: UnsafeBufferPointer<Float>, height: Int, width: Int,
                      observer: Int8Observer?) -> UnsafeMutablePointer<Int32> {
        let c = network.inputChannels
        precondition(input.count == c * height * width, "input has \(input.count) values, expected \(c)×\(height)×\(width)")
        let key = height << 32 | width
        let plan: Int8Plan
        if let p = plans[key] {
            plan = p
        } else {
            plan = Int8Plan(executor: self, height: height, width: width)
            plans[key] = plan
        }
        lastPlan = plan
        quantizeInput(input, into: plan.input.data, pixels: height * width, channels: c)
        observe(observer, TensorNames.input, plan.input, unfoldPatch: nil)
        for i in operations.indices {
            execute(i, plan)
            if let observer { report(i, plan, observer) }
        }
        return UnsafeMutableRawPointer(plan.outputs[operations.count - 1].data).assumingMemoryBound(to: Int32.self)
    }

    /// The quantisation an observer is told for a tensor (a concat input's is the concat's).
    func report(_ i: Int, _ plan: Int8Plan, _ observer: @escaping Int8Observer) {
        let op = network.operators[i]
        guard !op.isLayout, i < operations.count - 1 else { return }
        let out = plan.outputs[i]
        if tokenOrdered.contains(op.output) {
            let ps = network.tokenPatchSize[op.output]!
            let t = Tensor(data: out.data, h: ps * ps, w: out.h * out.w / (ps * ps), c: out.c, stride: out.stride)
            observe(observer, op.output, t, unfoldPatch: nil)
        } else {
            observe(observer, op.output, out, unfoldPatch: network.tokenPatchSize[op.output])
        }
    }

    func observe(_ observer: Int8Observer?, _ name: String, _ t: Tensor, unfoldPatch: Int?) {
        guard let observer, let p = model.activations[network.quantizedName(name)] else { return }
        observer(name, [t.h, t.w, t.c], t.data, t.stride, p, unfoldPatch)
    }

    /// An int8 tensor in the arena: NHWC, `stride` elements between pixels (≥ c for a channel
    /// slice of a concat buffer).
    struct Tensor {
        var data: UnsafeMutablePointer<Int8>
        var h: Int
        var w: Int
        var c: Int
        var stride: Int

        var pixels: Int { h * w }
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
        guard count > 0 else { return }
        pool.parallelFor(count, tasks: min(max(1, count / max(grain, 1)), threads * 4), step)
    }

    func withTable<R>(_ table: [Int8]?, _ body: (UnsafePointer<Int8>?) -> R) -> R {
        guard let table else { return body(nil) }
        return table.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
