import MVKernels
import MVModel

/// The int8 executor's plan for one input size: every tensor and every operator's scratch placed
/// in one arena by lifetime (`ArenaLayout`), each operator's operands resolved to pointers, and
/// the size-dependent tables (token index maps, resize plans, pool parameters, attention scratch).
/// Made once per input size; runs at that size then allocate nothing.
///
/// Buffers are shared where an operator may write over its input: a residual addition whose
/// operand is read by nobody after it, and an unfold or fold that does not resize (pixel order is
/// the token order's storage, so they are the same bytes).
final class Int8Plan {
    typealias Tensor = Int8Executor.Tensor

    let arena: Arena
    let input: Tensor
    let inputs: [[Tensor]]
    let outputs: [Tensor]
    let scratch: [UnsafeMutableRawPointer]
    /// Per linear operator whose output or input is in token order: the element offset of each
    /// grid pixel's token row (the unfold/fold as an index map).
    let tokenOffsets: [UnsafeMutablePointer<Int32>?]
    /// Per linear operator: how its GEMM addresses input and output rows (strided, or through
    /// `tokenOffsets` on the token-ordered side), resolved here so a run looks nothing up by name.
    let gemmRows: [(input: RowAddressing, output: RowAddressing)?]
    /// Per operator: the patch size of its output's token grid, 0 outside a transformer.
    let tokenPatchSize: [Int]
    let resizes: [BilinearResizeInt8.Plan?]
    let pool: [GlobalAveragePoolInt8.Parameters?]
    let attentionScratch: [[Int8Executor.AttentionScratch]?]
    /// A dense head's label-map working memory, nil for a classifier.
    let labelMap: LabelMap?

    /// The logits brought to one scale (int32 [h, w, classes]), the argmax plan to the input size
    /// (and to other label sizes asked for, made on first use) and each worker's row scratch.
    final class LabelMap {
        let plan: BilinearArgmaxInt32.Plan
        let values: UnsafeMutablePointer<Int32>
        let scratch: UnsafeMutablePointer<Int64>
        var otherSizes: [Int: BilinearArgmaxInt32.Plan] = [:]

        init(plan: BilinearArgmaxInt32.Plan, threads: Int) {
            self.plan = plan
            values = .allocate(capacity: plan.height * plan.width * plan.classes)
            scratch = .allocate(capacity: plan.scratchCount * threads)
        }

        /// The argmax plan to labels of `height`×`width`.
        func plan(height: Int, width: Int) throws -> BilinearArgmaxInt32.Plan {
            if height == plan.outputHeight && width == plan.outputWidth { return plan }
            let key = height << 32 | width
            if let p = otherSizes[key] { return p }
            let p = try BilinearArgmaxInt32.Plan(height: plan.height, width: plan.width, classes: plan.classes,
                                                 outputHeight: height, outputWidth: width)
            otherSizes[key] = p
            return p
        }

        deinit {
            values.deallocate()
            scratch.deallocate()
        }
    }

    final class Arena {
        let base: UnsafeMutableRawPointer
        let bytes: Int
        init(bytes: Int) {
            self.bytes = bytes
            base = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: ArenaLayout.alignment)
        }
        deinit { base.deallocate() }
    }

    deinit { for t in tokenOffsets { t?.deallocate() } }

    init(executor e: Int8Executor, height: Int, width: Int) {
        let network = e.network, ops = network.operators, threads = e.threads
        let shapes: [String: TensorShape]
        do { shapes = try network.shapes(height: height, width: width) } catch {
            preconditionFailure("\(error)")  // callers check the input size first (checkInputSize)
        }
        // Which tensors share a buffer: root[t] is the tensor owning t's bytes.
        var root: [String: String] = [:]
        func owner(_ t: String) -> String { root[t].map(owner) ?? t }
        var groupLastUse: [String: Int] = [Network.input: network.lastUse[Network.input] ?? 0]
        func isShareable(_ t: String) -> Bool { network.concatSlices[t] == nil && t != Network.input }
        for (i, op) in ops.enumerated() {
            let out = op.output
            var shared: String?
            switch e.operations[i] {
            case .add where network.concatSlices[out] == nil:
                shared = op.inputs.reversed().first { isShareable($0) && groupLastUse[owner($0)] == i && shapes[$0] == shapes[out] }
            case .resample where shapes[op.inputs[0]]!.pixels == shapes[out]!.pixels:
                precondition(groupLastUse[owner(op.inputs[0])] == i, "\(out): an unfold or fold must be its input's last reader")
                shared = op.inputs[0]
            default: break
            }
            let lastUse = max(i, network.lastUse[out] ?? i)
            if let s = shared {
                root[out] = owner(s)
                groupLastUse[owner(s)] = max(groupLastUse[owner(s)]!, lastUse)
            } else if let slice = network.concatSlices[out] {
                root[out] = slice.concat
            } else {
                groupLastUse[out] = lastUse
            }
            for t in op.inputs where !groupLastUse.keys.contains(owner(t)) { groupLastUse[owner(t)] = i }
        }
        // Buffers: one per owner, one per operator scratch.
        var buffers: [ArenaLayout.Buffer] = []
        var bufferOf: [String: Int] = [:]
        var firstUse: [String: Int] = [Network.input: 0]
        for (i, op) in ops.enumerated() { let o = owner(op.output); firstUse[o] = min(firstUse[o] ?? i, i) }
        for t in [Network.input] + ops.map(\.output) where owner(t) == t && bufferOf[t] == nil {
            let bytes = t == network.output ? 4 * shapes[t]!.channels : shapes[t]!.count
            bufferOf[t] = buffers.count
            buffers.append(ArenaLayout.Buffer(bytes: bytes, firstUse: firstUse[t]!, lastUse: groupLastUse[t] ?? firstUse[t]!))
        }
        var scratchBuffer: [Int?] = []
        for (i, op) in ops.enumerated() {
            let bytes = Self.scratchBytes(e.operations[i], op, shapes: shapes, network: network, threads: threads)
            scratchBuffer.append(bytes > 0 ? buffers.count : nil)
            if bytes > 0 { buffers.append(ArenaLayout.Buffer(bytes: bytes, firstUse: i, lastUse: i)) }
        }
        let layout = ArenaLayout(buffers)
        arena = Arena(bytes: layout.size)
        let base = arena.base
        func tensor(_ name: String) -> Tensor {
            let s = shapes[name]!
            if let slice = network.concatSlices[name] {
                let concat = shapes[slice.concat]!
                let data = (base + layout.offsets[bufferOf[owner(slice.concat)]!]).assumingMemoryBound(to: Int8.self)
                return Tensor(data: data + slice.channelOffset, h: s.height, w: s.width, c: s.channels, stride: concat.channels)
            }
            let data = (base + layout.offsets[bufferOf[owner(name)]!]).assumingMemoryBound(to: Int8.self)
            return Tensor(data: data, h: s.height, w: s.width, c: s.channels, stride: s.channels)
        }
        input = tensor(Network.input)
        inputs = ops.map { $0.inputs.map(tensor) }
        outputs = ops.map { tensor($0.output) }
        scratch = scratchBuffer.map { $0.map { base + layout.offsets[$0] } ?? base }

        // Size-dependent tables.
        var offsets: [UnsafeMutablePointer<Int32>?] = []
        var gemmRows: [(input: RowAddressing, output: RowAddressing)?] = []
        var resizes: [BilinearResizeInt8.Plan?] = []
        var pool: [GlobalAveragePoolInt8.Parameters?] = []
        var attention: [[Int8Executor.AttentionScratch]?] = []
        var attentionByShape: [[Int]: [Int8Executor.AttentionScratch]] = [:]
        for (i, op) in ops.enumerated() {
            var map: UnsafeMutablePointer<Int32>?
            var rows: (input: RowAddressing, output: RowAddressing)?
            var resize: BilinearResizeInt8.Plan?
            var poolParameters: GlobalAveragePoolInt8.Parameters?
            var scratchSet: [Int8Executor.AttentionScratch]?
            switch e.operations[i] {
            case .linear:
                let tokenSide = e.tokenOrdered.contains(op.output) ? op.output : e.tokenOrdered.contains(op.inputs[0]) ? op.inputs[0] : nil
                let x = inputs[i][0], y = outputs[i]
                rows = (.strided(x.stride), .strided(y.stride))
                if let t = tokenSide, !(e.tokenOrdered.contains(op.output) && e.tokenOrdered.contains(op.inputs[0])) {
                    let m = Self.tokenOffsets(shapes[t]!, patchSize: network.tokenPatchSize[t]!)
                    map = m
                    rows = t == op.output ? (.strided(x.stride), .indexed(m)) : (.indexed(m), .strided(y.stride))
                }
            case .resample, .resize:
                let x = shapes[op.inputs[0]]!, y = shapes[op.output]!
                if x.pixels != y.pixels || e.operations[i].isResize {
                    resize = try! BilinearResizeInt8.Plan.make(inputHeight: x.height, inputWidth: x.width,
                                                               outputHeight: y.height, outputWidth: y.width)
                }
            case let .pool(p):
                do { poolParameters = try p.parameters(pixelCount: shapes[op.inputs[0]]!.pixels) } catch {
                    preconditionFailure("\(op.output): \(error)")
                }
            case let .attention(a):
                let ps = network.tokenPatchSize[op.output]!
                let key = [shapes[op.output]!.pixels / (ps * ps), a.headSize]
                if attentionByShape[key] == nil {
                    attentionByShape[key] = (0..<threads).map { _ in Int8Executor.AttentionScratch(tokens: key[0], headSize: key[1], isa: e.isa) }
                }
                scratchSet = attentionByShape[key]
            default:
                for t in op.inputs + [op.output] where e.tokenOrdered.contains(t) {
                    preconditionFailure("\(op.output): only linear layers and attention read or write token-ordered tensors")
                }
            }
            offsets.append(map)
            gemmRows.append(rows)
            resizes.append(resize)
            pool.append(poolParameters)
            attention.append(scratchSet)
        }
        tokenOffsets = offsets
        self.gemmRows = gemmRows
        tokenPatchSize = ops.map { network.tokenPatchSize[$0.output] ?? 0 }
        self.resizes = resizes
        self.pool = pool
        attentionScratch = attention
        if network.isDense {
            let y = shapes[network.output]!
            do {
                labelMap = LabelMap(plan: try BilinearArgmaxInt32.Plan(height: y.height, width: y.width, classes: y.channels,
                                                                       outputHeight: height, outputWidth: width),
                                    threads: threads)
            } catch {
                preconditionFailure("\(error)")  // sizes were checked by checkInputSize
            }
        } else {
            labelMap = nil
        }
    }

    /// Element offsets of the token rows of a grid in pixel order: pixel (y, x) is token
    /// p·N + n with p its position inside its patch and n its patch (transformers' unfold).
    static func tokenOffsets(_ s: TensorShape, patchSize ps: Int) -> UnsafeMutablePointer<Int32> {
        let pixels = s.pixels, tokens = pixels / (ps * ps)
        let offsets = UnsafeMutablePointer<Int32>.allocate(capacity: pixels)
        for y in 0..<s.height {
            for x in 0..<s.width {
                let p = (y % ps) * ps + x % ps, n = (y / ps) * (s.width / ps) + x / ps
                offsets[y * s.width + x] = Int32((p * tokens + n) * s.channels)
            }
        }
        return offsets
    }

    /// Attention's per-worker working memory: QKᵀ scores (int32) and probabilities (int8) for one
    /// block of query rows, and the softmax's scratch, each block 64-byte aligned.
    struct AttentionLayout {
        let scores, probs, softmax, total: Int
        /// Query rows taken at a time: QKᵀ, softmax and P·V of a block run while its scores (about
        /// 128 KiB) stay in the L2 cache, instead of writing and re-reading a tokens² matrix.
        let rowBlock: Int

        init(tokens: Int, threads: Int) {
            func aligned(_ n: Int) -> Int { (n + 63) & ~63 }
            rowBlock = min(tokens, max(16, 32768 / max(tokens, 1) / 16 * 16))
            scores = 0
            probs = aligned(4 * rowBlock * tokens * threads)
            softmax = probs + aligned(rowBlock * tokens * threads)
            total = softmax + 4 * IntegerSoftmax.scratchCount(rowLength: tokens) * threads
        }
    }

    static func scratchBytes(_ operation: Int8Operation, _ op: Operator, shapes: [String: TensorShape], network: Network,
                             threads: Int) -> Int {
        switch operation {
        case let .conv(c):
            guard case let .dense(d) = c.kernel else { return 0 }
            return d.scratchSize(tilePixels: d.recommendedTilePixels) * threads
        case .attention:
            let ps = network.tokenPatchSize[op.output]!
            return AttentionLayout(tokens: shapes[op.output]!.pixels / (ps * ps), threads: threads).total
        case .pool:
            return 4 * GlobalAveragePoolInt8.scratchCount(channels: shapes[op.inputs[0]]!.channels)
        default:
            return 0
        }
    }
}
